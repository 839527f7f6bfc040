// Where the workers of `natter --procs N -js` keep their streams, and what stays the same across starts.
//
// Each worker is a JetStream node of the workers' cluster with a store of its own, as each nats-server of
// a cluster has its own store_dir: `<store_dir>/worker-<i>` (its streams under `worker-<i>/jetstream/`, as
// a single natter's are under `<store_dir>/jetstream/`). A worker's Raft id is its route address, so the
// loopback route ports must be the same at every start: they are kept, with the number of workers and the
// cluster name, in `<store_dir>/procs.json` (written once, extended when N grows). In a cluster of the
// user's the ports are the user's (the cluster port + i) and procs.json only records them.
//
// A store is never silently lost nor opened by two processes:
// - `<store_dir>/procs.pid` holds the supervisor's pid while it runs: a second `--procs` on the same
//   store_dir is refused (a pid file left by kill -9 is taken over when that pid is gone).
// - A single natter (no --procs) on a store_dir with procs.json is refused (start.ts): the streams are in
//   the workers' directories and a single process would start empty.
// - Fewer workers than procs.json records is refused: worker-<i> ≥ N would hold streams no one serves.
// - A single natter's store found at the first --procs start (`<store_dir>/jetstream`) becomes worker 0's
//   (moved, logged): worker 0 then records its streams in the meta group, as any node with streams from
//   before it joined a cluster does. Moved only when no process has a file open under it (checked in
//   /proc, Linux): a single natter still running there is refused.
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, unlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { writeAtomically } from "../config/lifecycle.ts";
import type { Logger } from "../log.ts";

/** `<store_dir>/procs.json`: what every start of the workers on this store_dir must keep the same. */
export interface ProcsLayout {
  procs: number;
  /** The route port of worker i on 127.0.0.1: its Raft id in the meta group and the streams' groups. */
  routes: number[];
  cluster: string;
}

export const LAYOUT_FILE = "procs.json";
const LOCK_FILE = "procs.pid";

/** The store_dir JetStream uses when none is given (start.ts has the same default). */
export function storeRoot(storeDir: string): string {
  return storeDir || path.join(os.tmpdir(), "nats");
}

export function workerStoreDir(root: string, index: number): string {
  return path.join(root, `worker-${index}`);
}

/** The layout kept in `root`, or null when none (no --procs ever ran JetStream there). */
export function readLayout(root: string): ProcsLayout | null {
  const file = path.join(root, LAYOUT_FILE);
  if (!existsSync(file)) return null;
  const layout = JSON.parse(readFileSync(file, "utf8")) as ProcsLayout;
  if (!Number.isInteger(layout.procs) || !Array.isArray(layout.routes) || typeof layout.cluster !== "string") {
    throw new Error(`${file} is not a natter --procs layout`);
  }
  return layout;
}

/** Whether pid is a live process (a zombie, dead but not yet reaped, is not). */
function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return true;
  }
}

/** A process with a file open under `dir` (from /proc/<pid>/fd), or null; undefined where /proc cannot tell. */
function processUsing(dir: string): number | null | undefined {
  let pids: string[];
  try {
    pids = readdirSync("/proc").filter((name) => /^\d+$/.test(name));
  } catch {
    return undefined;
  }
  const prefix = dir.endsWith(path.sep) ? dir : dir + path.sep;
  for (const pid of pids) {
    if (Number(pid) === process.pid) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue; // gone, or another user's
    }
    for (const fd of fds) {
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith(prefix)) return Number(pid);
      } catch {
        // closed meanwhile
      }
    }
  }
  return null;
}

/**
 * Prepares `root` for N workers (the lock, the layout, worker 0 taking a single natter's store) and
 * returns the layout; throws with the one line to print when it must not start. `routesFor(kept)`: the N
 * workers' route ports, given those the layout kept (the loopback routes keep them and add new ones; a
 * cluster of the user's has its ports from the user). `cluster`: the user's cluster name, if any.
 */
export function prepareWorkerStores(
  root: string,
  n: number,
  routesFor: (kept: number[]) => number[],
  log: Logger,
  cluster?: string,
): { layout: ProcsLayout; release(): void } {
  mkdirSync(root, { recursive: true });
  const lock = path.join(root, LOCK_FILE);
  try {
    writeFileSync(lock, String(process.pid), { flag: "wx", mode: 0o644 }); // created only if absent: two starts at once, one wins
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    const holder = Number(readFileSync(lock, "utf8").trim());
    if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && running(holder)) {
      throw new Error(`store_dir ${root} is in use by natter --procs (pid ${holder})`);
    }
    writeAtomically(lock, String(process.pid), 0o644); // left by a supervisor that is gone (kill -9)
  }
  const release = () => {
    try {
      if (readFileSync(lock, "utf8").trim() === String(process.pid)) unlinkSync(lock);
    } catch {
      // already gone
    }
  };
  try {
    let layout = readLayout(root);
    if (layout !== null && n < layout.procs) {
      throw new Error(
        `store_dir ${root} holds the stores of ${layout.procs} --procs workers (worker-0 … worker-${layout.procs - 1}): ` +
          `--procs ${n} would leave the streams of worker-${n}${layout.procs - n > 1 ? ` … worker-${layout.procs - 1}` : ""} unserved; start with --procs ${layout.procs} or more`,
      );
    }
    if (layout === null) adoptSingleStore(root, log);
    const routes = routesFor(layout?.routes.slice() ?? []);
    const next: ProcsLayout = { procs: n, routes, cluster: cluster || (layout?.cluster ?? `natter-procs-${process.pid}`) };
    if (JSON.stringify(next) !== JSON.stringify(layout)) writeAtomically(path.join(root, LAYOUT_FILE), `${JSON.stringify(next)}\n`, 0o644);
    layout = next;
    for (let i = 0; i < n; i++) mkdirSync(workerStoreDir(root, i), { recursive: true });
    return { layout, release };
  } catch (error) {
    release();
    throw error;
  }
}

/** A single natter's store (`<root>/jetstream`) becomes worker 0's at the first --procs start. */
function adoptSingleStore(root: string, log: Logger): void {
  const single = path.join(root, "jetstream");
  if (!existsSync(single)) return;
  if (existsSync(path.join(single, "$SYS", "_js_", "_meta_"))) {
    throw new Error(`store_dir ${root} holds a JetStream cluster node's store (${single} has a meta group log): --procs does not take it over`);
  }
  const user = processUsing(single);
  if (user === undefined) throw new Error(`store_dir ${root} holds a single natter's store; move ${single} to ${path.join(workerStoreDir(root, 0), "jetstream")} once no natter uses it`);
  if (user !== null) throw new Error(`store_dir ${root} holds a single natter's store that process ${user} has open: stop it first`);
  const target = path.join(workerStoreDir(root, 0), "jetstream");
  mkdirSync(workerStoreDir(root, 0), { recursive: true });
  if (existsSync(target)) throw new Error(`store_dir ${root} holds both ${single} and ${target}: move one away`);
  renameSync(single, target);
  log.info(`JetStream: the single-process store ${single} is now worker 0's (${target})`);
}

/** For a single natter (start.ts): why it must not open this store_dir, or null. */
export function singleStoreRefusal(root: string): string | null {
  if (!existsSync(path.join(root, LAYOUT_FILE))) return null;
  let procs = "N";
  try {
    procs = String(readLayout(root)?.procs ?? "N");
  } catch {
    // the line below still says what to do
  }
  return `store_dir ${root} holds the stores of natter --procs ${procs} (worker-0 …): start with --procs ${procs}, a single process would not see their streams`;
}
