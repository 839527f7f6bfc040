// Starting `natter --procs N` as real processes for the tests of src/workers/: the supervisor, its workers
// (found as its children), clients that land on chosen workers, and cleanup of everything started.
import { expect } from "vitest";
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import * as nats from "nats";
import { freePort } from "../harness/server.ts";
import { waitFor } from "../cluster/spawn.ts";

export const REPO = path.resolve(import.meta.dirname, "../..");
export const BUN = path.join(REPO, "node_modules/.bin/bun");
export const HOST = "127.0.0.1";
export const sc = nats.StringCodec();

export const live = new Set<ChildProcess>();
const open = new Set<nats.NatsConnection>();

/** For afterAll: closes the clients, then stops every process started (gracefully first, then SIGKILL). */
export async function stopAll(): Promise<void> {
  await Promise.all([...open].map((nc) => nc.close().catch(() => {})));
  // Graceful first (the supervisor takes its workers along), then SIGKILL.
  await Promise.all([...live].map((c) => new Promise<void>((resolve) => {
    const timer = setTimeout(() => c.kill("SIGKILL"), 5000);
    c.once("exit", () => {
      clearTimeout(timer);
      resolve();
    });
    c.kill("SIGTERM");
  })));
}

/** Runs natter with `args` to its exit (SIGKILL after 15 s): its exit code and stderr (refusals, one line each). */
export function runToExit(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(BUN, [path.join(REPO, "src/main.ts"), ...args], { cwd: REPO, stdio: ["ignore", "pipe", "pipe"] });
    live.add(child);
    let stderr = "";
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
    child.on("exit", (code) => {
      clearTimeout(timer);
      live.delete(child);
      resolve({ code, stderr });
    });
  });
}

export interface Procs {
  port: number;
  httpPort: number;
  child: ChildProcess;
  log(): string;
  exited: Promise<number | null>;
  /** The workers' pids right now (children of the supervisor). */
  workers(): number[];
  /** The pid of the worker whose server id this is (from its start-up log lines). */
  pidOf(serverId: string): number;
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export function childrenOf(pid: number): number[] {
  const out = Bun.spawnSync(["pgrep", "-P", String(pid)]).stdout.toString();
  return out.split("\n").filter((l) => /^\d+$/.test(l.trim())).map(Number);
}

export async function startProcs(extra: string[] = [], n = 2): Promise<Procs> {
  const port = await freePort();
  const httpPort = await freePort();
  const args = [path.join(REPO, "src/main.ts"), "--procs", String(n), "-a", HOST, "-p", String(port), "-m", String(httpPort), ...extra];
  const child = spawn(BUN, args, { cwd: REPO, stdio: ["ignore", "pipe", "pipe"] });
  live.add(child);
  let text = "";
  child.stdout!.on("data", (d: Buffer) => (text += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (text += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => {
    live.delete(child);
    resolve(code);
  }));
  const procs: Procs = {
    port,
    httpPort,
    child,
    log: () => text,
    exited,
    workers: () => childrenOf(child.pid!),
    pidOf(serverId) {
      const m = new RegExp(`\\[(\\d+)\\] [^\\n]*\\[INF\\]   ID:\\s+${serverId}`).exec(text);
      if (!m) throw new Error(`no worker with server id ${serverId} in the log:\n${text}`);
      return Number(m[1]);
    },
  };
  await waitFor("the supervisor to be ready", () => {
    if (child.exitCode !== null) throw new Error(`natter --procs exited during start-up:\n${text}`);
    return /Supervisor is ready/.test(text) && (text.match(/Route connection created/g) ?? []).length >= n * (n - 1);
  }, 20_000, () => text);
  return procs;
}

export async function connect(port: number, opts: nats.ConnectionOptions = {}): Promise<nats.NatsConnection> {
  const nc = await nats.connect({ servers: `${HOST}:${port}`, reconnect: false, timeout: 5000, ...opts });
  open.add(nc);
  return nc;
}

export function serverIdOf(nc: nats.NatsConnection): string {
  return (nc as unknown as { info: { server_id: string } }).info.server_id;
}

/** Connects until clients on two different workers are found (the kernel picks the worker of each connection). */
export async function clientsOnTwoWorkers(port: number, opts: nats.ConnectionOptions = {}): Promise<[nats.NatsConnection, nats.NatsConnection, Set<string>]> {
  const byServer = new Map<string, nats.NatsConnection>();
  for (let i = 0; i < 64 && byServer.size < 2; i++) {
    const nc = await connect(port, opts);
    const id = serverIdOf(nc);
    if (byServer.has(id)) await nc.close();
    else byServer.set(id, nc);
  }
  expect(byServer.size).toBe(2);
  const [a, b] = [...byServer.values()] as [nats.NatsConnection, nats.NatsConnection];
  return [a, b, new Set(byServer.keys())];
}

/** Subscribes on `sub` and waits until a probe from `pub` arrives: the interest crossed the route. */
export async function subscribeReady(sub: nats.NatsConnection, pub: nats.NatsConnection, subject: string, queue?: string): Promise<string[]> {
  const got: string[] = [];
  let probes = 0;
  sub.subscribe(subject, { queue, callback: (_e, m) => (m.subject.endsWith(".probe") ? probes++ : got.push(sc.decode(m.data))) });
  await sub.flush();
  await waitFor(`interest in ${subject} to reach the other worker`, async () => {
    pub.publish(subject.replace(/>$/, "probe"), sc.encode("p"));
    await pub.flush();
    await new Promise((r) => setTimeout(r, 20));
    return probes > 0;
  });
  await new Promise((r) => setTimeout(r, 50));
  return got;
}

/** The pid of worker `index` (its NATTER_WORKER in /proc/<pid>/environ), among the supervisor's children. */
export function workerPid(p: Procs, index: number): number | null {
  for (const pid of p.workers()) {
    try {
      if (readFileSync(`/proc/${pid}/environ`, "latin1").split("\0").includes(`NATTER_WORKER=${index}`)) return pid;
    } catch {
      // gone meanwhile
    }
  }
  return null;
}
