// Starts natter and nats-server processes side by side for the leafnode tests: each from a config file
// written to a temp dir, on free ports chosen at run time. Placeholders in the config text:
//   {{port}}       the client port          {{leaf_port}}  a leafnode listen port
//   {{ws_port}}    a websocket port          {{cluster_port}}  a cluster (route) port
// Every process is SIGKILLed when the test (or file) that started it ends, pass or fail; a process
// 'exit' handler kills anything left over. Waiting is by deadline (poll until true), never a fixed sleep.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, onTestFinished } from "vitest";
import { printOnFailure } from "../harness/failure-log.ts";
import { freePort } from "../harness/server.ts";

const REPO = path.resolve(import.meta.dirname, "../..");
const BUN = path.join(REPO, "node_modules/.bin/bun");
export const HOST = "127.0.0.1";
export const NATS_SERVER = process.env.NATS_SERVER_BIN ?? Bun.which("nats-server");

export type Kind = "natter" | "nats-server";

export interface Proc {
  readonly kind: Kind;
  readonly name: string;
  readonly port: number;
  readonly leafPort: number;
  readonly wsPort: number;
  readonly clusterPort: number;
  readonly url: string;
  readonly running: boolean;
  log(): string;
  /** Everything logged since the last (re)start. */
  logSinceStart(): string;
  stop(): Promise<void>;
  kill9(): Promise<void>;
  /** Stops and starts again on the same ports with the same config. */
  restart(): Promise<void>;
  start(): Promise<void>;
}

export interface ProcOptions {
  name: string;
  /** Config file text (see the header for placeholders). */
  config: string;
  /** Extra command-line arguments. */
  args?: string[];
  /** Debug and trace logging (-DV). */
  trace?: boolean;
}

const live = new Set<ChildProcess>();
const procs = new Set<Proc>();
const dirs = new Set<string>();
let hooked = false;

afterAll(async () => {
  await Promise.all([...procs].map((p) => p.kill9()));
  procs.clear();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  dirs.clear();
});

/** Polls `check` until truthy; throws `what` (and `detail()`) past the deadline. */
export async function waitFor<T>(what: string, check: () => T | Promise<T>, timeoutMs = 10_000, detail?: () => string): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail ? `\n${detail()}` : ""}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function probe(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: HOST, port });
    let done = false;
    const finish = (ok: boolean) => {
      if (done) return;
      done = true;
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(2000, () => finish(false));
    sock.on("data", (d) => finish(d.toString("latin1").startsWith("INFO ")));
    sock.on("error", () => finish(false));
    sock.on("close", () => finish(false));
  });
}

export async function startProc(kind: Kind, opts: ProcOptions): Promise<Proc> {
  if (!hooked) {
    hooked = true;
    process.on("exit", () => {
      for (const c of live) c.kill("SIGKILL");
    });
  }
  const port = await freePort();
  const leafPort = await freePort();
  const wsPort = await freePort();
  const clusterPort = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), `natter-leaf-${opts.name}-`));
  const conf = path.join(dir, "server.conf");
  writeFileSync(
    conf,
    opts.config.replaceAll("{{port}}", String(port)).replaceAll("{{leaf_port}}", String(leafPort)).replaceAll("{{ws_port}}", String(wsPort)).replaceAll("{{cluster_port}}", String(clusterPort)),
  );
  const trace = opts.trace ? ["-DV"] : ["-D"];
  const [cmd, args] =
    kind === "natter"
      ? [BUN, [path.join(REPO, "src/main.ts"), "-c", conf, "-a", HOST, "-p", String(port), "-n", opts.name, ...trace, ...(opts.args ?? [])]]
      : [NATS_SERVER ?? "nats-server", ["-c", conf, "-a", HOST, "-p", String(port), "-n", opts.name, ...trace, ...(opts.args ?? [])]];
  let child: ChildProcess | null = null;
  let exited: Promise<void> = Promise.resolve();
  let running = false;
  let logText = "";
  let startMark = 0;

  const proc: Proc = {
    kind,
    name: opts.name,
    port,
    leafPort,
    wsPort,
    clusterPort,
    url: `nats://${HOST}:${port}`,
    get running() {
      return running;
    },
    log: () => logText,
    logSinceStart: () => logText.slice(startMark),
    async kill9() {
      if (!running || child === null) return;
      child.kill("SIGKILL");
      await exited;
    },
    async stop() {
      if (!running || child === null) return;
      const c = child;
      c.kill("SIGTERM");
      const t = setTimeout(() => c.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(t);
    },
    async restart() {
      await proc.stop();
      await proc.start();
    },
    async start() {
      startMark = logText.length;
      const c = spawn(cmd, args, { cwd: REPO, stdio: ["ignore", "pipe", "pipe"] });
      child = c;
      running = true;
      live.add(c);
      logText += `--- start ${opts.name} (${kind}): ${cmd} ${args.join(" ")}\n`;
      c.stdout!.on("data", (d: Buffer) => (logText += d.toString()));
      c.stderr!.on("data", (d: Buffer) => (logText += d.toString()));
      exited = new Promise((resolve) => {
        c.on("exit", (code, signal) => {
          running = false;
          live.delete(c);
          logText += `--- exited code=${code} signal=${signal}\n`;
          resolve();
        });
        c.on("error", (error) => {
          running = false;
          live.delete(c);
          logText += `--- spawn error: ${error.message}\n`;
          resolve();
        });
      });
      try {
        await waitFor(`${opts.name} to accept clients`, async () => {
          if (!running) throw new Error(`${opts.name} exited during start-up:\n${logText}`);
          return probe(port);
        }, 15_000, () => logText);
      } catch (error) {
        c.kill("SIGKILL");
        throw error;
      }
    },
  };
  try {
    await proc.start();
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  procs.add(proc);
  dirs.add(dir);
  printOnFailure(`${opts.name} (${kind}, client port ${port})`, () => logText);
  try {
    onTestFinished(async () => {
      procs.delete(proc);
      await proc.kill9();
      dirs.delete(dir);
      rmSync(dir, { recursive: true, force: true });
    });
  } catch {
    // started in a hook: the file's afterAll kills it
  }
  return proc;
}
