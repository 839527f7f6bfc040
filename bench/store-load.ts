// How fast the file store loads (what a restart waits for per stream), A/B in alternating rounds: this
// checkout's FileStore against another checkout's (`--against <dir>`, e.g. a worktree of an older commit),
// each on the same messages written (and indexed, in its own index format) by its own code.
//
//   bun bench/store-load.ts [--msgs 300000] [--size 64] [--rounds 7] [--against /tmp/ab-old] [--warm 5] [--tail N]
//                           [--max-msgs N]
//
// One store of `--msgs` messages of `--size` bytes (subjects s.0 … s.99) is written once per checkout (with
// `--max-msgs`, under that limit: its front moved past the first messages, as a limits stream's), closed
// cleanly, then opened again and again, each time in a new process (as a restart does: its code not yet compiled
// by the JIT), which reports the wall and CPU time of `new FileStore(...)`. Each round opens it
//   - "saved index": as a clean restart finds it (every segment with its saved index, if the store saves one),
//   - "after kill -9": as kill -9 leaves it: the active segment's index saved (by the interval sync) before
//     its last ~1 MiB (`--tail` messages) were written, so those records are read one by one,
//   - "active unindexed": the active segment without an index (kill -9 before its first save; or a
//     checkout that saves none for it): that one is read whole,
//   - "no index": every saved index removed (everything read record by record),
// with this checkout and with `--against`'s. With `--warm N` each process first loads a copy of the store
// N times (as the case leaves it), so that the timed load runs compiled code (what loading a second
// stream sees; a restart's first load is the default, cold). A line is the median and the range over the rounds, and the
// segment bytes loaded per second at the median wall time and at the median CPU time (the process's,
// which includes the JIT compiling on other threads; on a busy machine the wall time mostly measures
// the wait for a core).
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";

const argv = process.argv.slice(2);
const flag = (name: string, dflt: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1]! : dflt;
};

interface Store {
  append(subject: string, headers: Buffer | null, data: Buffer): unknown;
  state(): { messages: number; lastSeq: number };
  close(): void;
}
type StoreClass = new (options: { dir: string }, limits?: object) => Store;
const storeClass = async (checkout: string): Promise<StoreClass> => (await import(path.join(checkout, "src/jetstream/store/file.ts"))).FileStore;

const segmentsOf = (dir: string) => readdirSync(dir).filter((f) => f.endsWith(".seg")).sort((a, b) => parseInt(a) - parseInt(b));
/** Removes the saved indexes a case does without: all, or the active (last) segment's. */
const dropIndexes = (dir: string, which: "all" | "active") => {
  const idx = readdirSync(dir).filter((f) => f.endsWith(".idx"));
  for (const f of which === "all" ? idx : idx.filter((f) => parseInt(f) === parseInt(segmentsOf(dir).at(-1)!))) unlinkSync(path.join(dir, f));
};

if (argv[0] === "--child") {
  // One open in this fresh process (after `warm` opens of a copy): prints messages, wall ms, CPU ms;
  // closes if asked (which may save an index).
  const FileStore = await storeClass(argv[1]!);
  const warm = Number(argv[4] ?? "0");
  for (let i = 0; i < warm; i++) {
    const copy = mkdtempSync(path.join(os.tmpdir(), "store-load-warm-"));
    for (const f of readdirSync(argv[2]!)) copyFileSync(path.join(argv[2]!, f), path.join(copy, f));
    new FileStore({ dir: copy }).close();
    rmSync(copy, { recursive: true, force: true });
  }
  Bun.gc(true);
  const cpu = process.cpuUsage();
  const began = performance.now();
  const s = new FileStore({ dir: argv[2]! });
  const took = performance.now() - began;
  const used = process.cpuUsage(cpu);
  console.log(JSON.stringify({ messages: s.state().messages, ms: took, cpuMs: (used.user + used.system) / 1000 }));
  if (argv[3] !== "no-close") s.close();
  process.exit(0);
}

const MSGS = Number(flag("msgs", "300000"));
const MAX_MSGS = Number(flag("max-msgs", "-1"));
/** What each load must find. */
const KEPT = MAX_MSGS > 0 ? Math.min(MSGS, MAX_MSGS) : MSGS;
const SIZE = Number(flag("size", "64"));
const ROUNDS = Number(flag("rounds", "7"));
const AGAINST = flag("against", "");
const WARM = flag("warm", "0");
const here = path.resolve(import.meta.dirname, "..");
const impls: [string, string][] = [["this", here]];
if (AGAINST !== "") impls.push([`against ${AGAINST}`, path.resolve(AGAINST)]);

// Each checkout's store, and its active segment's index from before the last TAIL messages (what the
// interval sync had saved when kill -9 came).
const TAIL = Number(flag("tail", String(Math.round((1024 * 1024) / (SIZE + 40)))));
interface Prepared {
  readonly dir: string;
  readonly staleActiveIndex: [string, Buffer] | null;
}
const prepared = new Map<string, Prepared>();
const tmpDirs: string[] = [];
process.on("exit", () => tmpDirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
for (const [, checkout] of impls) {
  const dir = mkdtempSync(path.join(os.tmpdir(), "store-load-"));
  tmpDirs.push(dir);
  const FileStore = await storeClass(checkout);
  const { NO_LIMITS } = await import(path.join(checkout, "src/jetstream/store/store.ts"));
  const limits = { ...NO_LIMITS, maxMsgs: MAX_MSGS };
  const payload = Buffer.alloc(SIZE, 120);
  let s = new FileStore({ dir }, limits);
  for (let i = 0; i < MSGS - TAIL; i++) s.append(`s.${i % 100}`, null, payload);
  s.close();
  const active = segmentsOf(dir).at(-1)!.replace(".seg", ".idx");
  let staleActiveIndex: [string, Buffer] | null = existsSync(path.join(dir, active)) ? [active, readFileSync(path.join(dir, active))] : null;
  s = new FileStore({ dir }, limits);
  for (let i = MSGS - TAIL; i < MSGS; i++) s.append(`s.${i % 100}`, null, payload);
  s.close();
  // The tail must have stayed in that segment for its old index to be a beginning of it.
  if (staleActiveIndex !== null && segmentsOf(dir).at(-1)!.replace(".seg", ".idx") !== staleActiveIndex[0]) staleActiveIndex = null;
  prepared.set(checkout, { dir, staleActiveIndex });
}
const first = prepared.get(here)!;
const segments = () => segmentsOf(first.dir);
const segBytes = segments().reduce((n, f) => n + statSync(path.join(first.dir, f)).size, 0);
const openIn = (checkout: string, dir: string, close = true) => {
  const r = spawnSync(process.execPath, [import.meta.filename, "--child", checkout, dir, close ? "close" : "no-close", close ? "0" : WARM], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout.trim().split("\n").at(-1)!) as { messages: number; ms: number; cpuMs: number };
};

type Case = "saved index" | "after kill -9" | "active unindexed" | "no index";
const killed = [...prepared.values()].every((p) => p.staleActiveIndex !== null);
const cases: Case[] = ["saved index", ...(killed ? ["after kill -9" as const] : []), "active unindexed", "no index"];
const times = new Map<string, { ms: number[]; cpuMs: number[] }>();
for (let r = 0; r < ROUNDS; r++) {
  for (const c of cases) {
    for (const [name, checkout] of r % 2 === 0 ? impls : [...impls].reverse()) {
      // Each open starts from the state its case names: a clean open and close with the checkout first
      // (which saves every index, in its format), then what the case removes.
      const { dir, staleActiveIndex } = prepared.get(checkout)!;
      openIn(checkout, dir);
      if (c === "after kill -9") writeFileSync(path.join(dir, staleActiveIndex![0]), staleActiveIndex![1]);
      if (c === "active unindexed") dropIndexes(dir, "active");
      if (c === "no index") dropIndexes(dir, "all");
      const got = openIn(checkout, dir, false);
      if (got.messages !== KEPT) throw new Error(`${name}: ${got.messages} messages, not ${KEPT}`);
      const key = `${c.padEnd(16)} ${name}`;
      const t = times.get(key) ?? { ms: [], cpuMs: [] };
      t.ms.push(got.ms);
      t.cpuMs.push(got.cpuMs);
      times.set(key, t);
    }
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const range = (xs: number[]) => `${median(xs).toFixed(1)} ms (${Math.min(...xs).toFixed(1)}–${Math.max(...xs).toFixed(1)})`;
console.log(`${MSGS} × ${SIZE} B${MAX_MSGS > 0 ? ` (max_msgs ${MAX_MSGS})` : ""}, ${segments().length} segments, ${(segBytes / 1e6).toFixed(1)} MB; ${ROUNDS} rounds${WARM !== "0" ? `, warm (${WARM} loads first)` : ""}; load average ${os.loadavg().map((l) => l.toFixed(1)).join(" ")}`);
for (const [key, t] of times) {
  const rate = (ms: number) => (segBytes / 1e9 / (ms / 1000)).toFixed(2);
  console.log(`  ${key.padEnd(40)} wall ${range(t.ms)}  cpu ${range(t.cpuMs)}  ${rate(median(t.ms))} GB/s (wall), ${rate(median(t.cpuMs))} GB/s (cpu)`);
}
process.exit(0);
