// Server processes under test: natter and nats-server, each started fresh on free ports for one run
// and always killed afterwards. Both run with their defaults (max_pending etc.), so they see the
// same settings.
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { join } from "node:path";
import { track, untrack } from "./children.ts";
import { defaultNatsServerBin } from "./references.ts";

export type ServerKind = "natter" | "nats" | "relay";
export const SERVER_KINDS: ServerKind[] = ["natter", "nats", "relay"];

export const ROOT = join(import.meta.dir, "..");
const LOG_DIR = join(ROOT, "bench", "build", "logs");
const START_DEADLINE_MS = 15_000;
const STOP_GRACE_MS = 3_000;

export interface RunningServer {
  kind: ServerKind;
  pid: number;
  port: number;
  wsPort: number | null;
  logFile: string;
  // Kills the server; its log is deleted unless keepLog (a failed run keeps it for reading).
  stop(keepLog?: boolean): Promise<void>;
}

export function serverTitle(kind: ServerKind): string {
  return kind === "nats" ? "nats-server" : kind === "relay" ? "bun relay" : "natter";
}

function natsServerBin(): string {
  return defaultNatsServerBin();
}

function bunBin(): string {
  const local = join(ROOT, "node_modules", ".bin", "bun");
  return existsSync(local) ? local : process.execPath;
}

function natterBin(): string {
  return join(ROOT, "bin", "natter");
}

/** How the natter side runs: "bin/natter" (a bundle) or "src/main.ts" (NATTER_FROM_SOURCES=1). */
export function natterEntry(): string {
  return process.env.NATTER_FROM_SOURCES === "1" ? "src/main.ts" : "bin/natter";
}

// A port the OS just gave out and took back. Other benches may run on this machine: never pick one.
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

// The command line, and a config file to delete afterwards (nats-server enables WebSocket only
// from a config file).
function command(kind: ServerKind, port: number, wsPort: number | null, natsBin: string): { cmd: string[]; conf: string | null } {
  if (kind === "relay") return { cmd: [bunBin(), "bench/relay.ts", "--host", "127.0.0.1", "--port", String(port)], conf: null };
  if (kind === "natter") {
    // bin/natter, what `npm start` runs: a bundle of the sources, 2–4 MiB less RSS idle and under load than
    // src/main.ts's modules at the same throughput (README, "Memory under load"). NATTER_FROM_SOURCES=1
    // (bin/natter reads it) runs src/main.ts instead. bin/natter ends in exec: the pid is the server's.
    const cmd = [natterBin(), "-a", "127.0.0.1", "-p", String(port)];
    if (wsPort) cmd.push("--ws_port", String(wsPort));
    // NATTER_BENCH_ARGS: more flags for natter only, e.g. "-m 18299 -c console.conf" to bench it with the
    // console on (bench/console-cost.ts --attach then keeps consoles open on it).
    if (process.env.NATTER_BENCH_ARGS) cmd.push(...process.env.NATTER_BENCH_ARGS.split(" ").filter(Boolean));
    return { cmd, conf: null };
  }
  const cmd = [natsBin, "-a", "127.0.0.1", "-p", String(port)];
  if (!wsPort) return { cmd, conf: null };
  const conf = join(LOG_DIR, `nats-ws-${port}.conf`);
  writeFileSync(conf, `websocket {\n  host: "127.0.0.1"\n  port: ${wsPort}\n  no_tls: true\n}\n`);
  cmd.push("-c", conf);
  return { cmd, conf };
}

// Resolves true once something on port answers; with wantInfo, once it sends a NATS INFO line.
function probe(port: number, wantInfo: boolean): Promise<boolean> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (ok: boolean) => {
      if (done) return;
      done = true;
      sock.destroy();
      resolve(ok);
    };
    const sock = net.connect(port, "127.0.0.1");
    let got = "";
    sock.setTimeout(1000, () => finish(false));
    sock.on("error", () => finish(false));
    sock.on("close", () => finish(false));
    sock.on("connect", () => {
      if (!wantInfo) finish(true);
    });
    sock.on("data", (d) => {
      got += d.toString("latin1");
      if (got.startsWith("INFO ")) finish(true);
      else if (got.length >= 5) finish(false);
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function logTail(file: string, lines = 15): string {
  try {
    return readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

/** This process's open-file limits (servers it starts inherit them). */
export function fdLimits(): { soft: number; hard: number } {
  try {
    const line = readFileSync("/proc/self/limits", "utf8").split("\n").find((l) => l.startsWith("Max open files"));
    const [soft, hard] = line!.slice("Max open files".length).trim().split(/\s+/);
    const n = (v: string | undefined) => (v === "unlimited" ? Infinity : Number(v));
    return { soft: n(soft), hard: n(hard) };
  } catch {
    return { soft: 1024, hard: 1024 };
  }
}

export interface StartOptions {
  /** The server needs this many descriptors: its soft limit is raised (up to the hard limit) when lower. */
  fdLimit?: number;
  /** More command-line arguments for the server (natter and nats-server only), e.g. cluster flags. */
  args?: string[];
  /** The nats-server binary for kind "nats" (a bench reference); default NATS_SERVER or the one on the PATH. */
  natsBin?: string;
}

export async function startServer(kind: ServerKind, withWs: boolean, start: StartOptions = {}): Promise<RunningServer> {
  mkdirSync(LOG_DIR, { recursive: true });
  const port = await freePort();
  let wsPort = withWs ? await freePort() : null;
  while (wsPort === port) wsPort = await freePort();
  const logFile = join(LOG_DIR, `${kind}-${port}.log`);
  const fd = openSync(logFile, "w");
  const { cmd: baseCmd, conf } = command(kind, port, wsPort, start.natsBin ?? natsServerBin());
  const serverCmd = kind === "relay" ? baseCmd : [...baseCmd, ...(start.args ?? [])];
  let cmd = serverCmd;
  const limits = fdLimits();
  if (start.fdLimit !== undefined && limits.soft < start.fdLimit) {
    // exec keeps the pid: the server is still the process we measure.
    const raise = Number.isFinite(limits.hard) ? limits.hard : start.fdLimit;
    cmd = ["/bin/sh", "-c", `ulimit -n ${raise} && exec "$0" "$@"`, ...serverCmd];
  }
  const proc = Bun.spawn(cmd, { cwd: ROOT, stdin: "ignore", stdout: fd, stderr: fd });
  closeSync(fd);
  track(proc);

  const stop = async (keepLog = false) => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill("SIGTERM");
      const exited = await Promise.race([proc.exited.then(() => true), sleep(STOP_GRACE_MS).then(() => false)]);
      if (!exited) {
        proc.kill("SIGKILL");
        await proc.exited;
      }
    }
    untrack(proc);
    if (conf) rmSync(conf, { force: true });
    if (!keepLog) rmSync(logFile, { force: true });
  };

  const deadline = Date.now() + START_DEADLINE_MS;
  const ready = async (p: number, info: boolean) => {
    while (Date.now() < deadline) {
      if (proc.exitCode !== null || proc.signalCode !== null) return false;
      if (await probe(p, info)) return true;
      await sleep(50);
    }
    return false;
  };
  if (!(await ready(port, true)) || (wsPort !== null && !(await ready(wsPort, false)))) {
    const why =
      proc.exitCode !== null
        ? `exited with code ${proc.exitCode}`
        : `not answering on ${wsPort && (await probe(port, true)) ? `WebSocket port ${wsPort}` : `port ${port}`} within ${START_DEADLINE_MS / 1000} s`;
    await stop(true);
    throw new Error(`${serverTitle(kind)} did not start (${why}): ${cmd.join(" ")} (log: ${logFile})\n${logTail(logFile)}`);
  }
  return { kind, pid: proc.pid, port, wsPort, logFile, stop };
}

/** A process's resident set (VmRSS) in KiB, or null when it is gone. */
export function rssKb(pid: number): number | null {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

export async function serverVersion(kind: ServerKind): Promise<string> {
  try {
    if (kind === "nats") {
      const p = Bun.spawnSync([natsServerBin(), "--version"]);
      return p.stdout.toString().trim().split("\n")[0];
    }
    if (kind === "relay") return `bench/relay.ts (bun ${Bun.version})`;
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
    return `natter ${pkg.version} (${natterEntry()}, bun ${Bun.version})`;
  } catch {
    return "unknown";
  }
}
