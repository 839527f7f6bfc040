// For the `natter bench` tests: servers to benchmark (natter, and Debian's nats-server when installed) on
// free ports, killed after the file (and on process exit, even when a test fails); and the bench itself run
// as a process, as a user runs it.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { freePort } from "../harness/free-port.ts";

export const REPO = path.resolve(import.meta.dirname, "../..");
export const BUN = path.join(REPO, "node_modules/.bin/bun");
export const MAIN = path.join(REPO, "src/main.ts");
export const NATS_SERVER = process.env.NATS_SERVER_BIN ?? "/usr/sbin/nats-server";
export const HAVE_NATS_SERVER = existsSync(NATS_SERVER);

const HOST = "127.0.0.1";
const live = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of live) child.kill("SIGKILL");
});

export { freePort };

/** True once `port` answers with a line starting "INFO ". */
function answersInfo(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    let buf = "";
    const sock = net.connect({ host: HOST, port });
    const finish = (ok: boolean) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => finish(false), 2_000);
    sock.on("data", (d) => {
      buf += d.toString("latin1");
      if (buf.includes("\n")) finish(buf.startsWith("INFO "));
    });
    sock.on("error", () => finish(false));
  });
}

export interface TestServer {
  kind: "natter" | "nats-server";
  port: number;
  url: string;
  stop(): Promise<void>;
}

export async function startServer(kind: "natter" | "nats-server"): Promise<TestServer> {
  const port = await freePort();
  const [cmd, args] = kind === "natter" ? [BUN, [MAIN, "-a", HOST, "-p", String(port)]] : [NATS_SERVER, ["-a", HOST, "-p", String(port)]];
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
  live.add(child);
  let log = "";
  child.stdout!.on("data", (d) => (log += d));
  child.stderr!.on("data", (d) => (log += d));
  let exited = false;
  const exit = new Promise<void>((resolve) =>
    child.on("exit", () => {
      exited = true;
      live.delete(child);
      resolve();
    }),
  );
  const stop = async () => {
    if (exited) return;
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 3_000);
    await exit;
    clearTimeout(timer);
  };
  const deadline = Date.now() + 15_000;
  while (!(await answersInfo(port))) {
    if (exited || Date.now() > deadline) {
      await stop();
      throw new Error(`${kind} did not start on port ${port}: ${log}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { kind, port, url: `nats://${HOST}:${port}`, stop };
}

export interface BenchRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface BenchProcess {
  child: ChildProcess;
  /** Resolves when stderr has a line matching `re`. */
  stderrLine(re: RegExp): Promise<string>;
  done: Promise<BenchRun>;
}

/** Starts `natter bench <args>`; killed after `timeoutMs` (the promise then rejects with its output). */
export function startBench(args: string[], timeoutMs = 60_000): BenchProcess {
  const child = spawn(BUN, [MAIN, "bench", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  live.add(child);
  let stdout = "";
  let stderr = "";
  const watchers: Array<{ re: RegExp; resolve: (line: string) => void }> = [];
  child.stdout!.on("data", (d) => (stdout += d));
  child.stderr!.on("data", (d) => {
    stderr += d;
    for (const w of [...watchers]) {
      const line = stderr.split("\n").find((l) => w.re.test(l));
      if (line !== undefined) {
        watchers.splice(watchers.indexOf(w), 1);
        w.resolve(line);
      }
    }
  });
  const done = new Promise<BenchRun>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`natter bench ${args.join(" ")} did not finish in ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
    child.on("exit", (code) => {
      clearTimeout(timer);
      live.delete(child);
      resolve({ code, stdout, stderr });
    });
  });
  const stderrLine = (re: RegExp) =>
    new Promise<string>((resolve, reject) => {
      const line = stderr.split("\n").find((l) => re.test(l));
      if (line !== undefined) return resolve(line);
      watchers.push({ re, resolve });
      done.then((r) => reject(new Error(`natter bench exited (${r.code}) before printing ${re}: ${r.stderr}`)), reject);
    });
  return { child, stderrLine, done };
}

export function bench(args: string[], timeoutMs?: number): Promise<BenchRun> {
  return startBench(args, timeoutMs).done;
}

/** Runs the bench with --json and parses stdout (with the output in the error when it is not JSON). */
export async function benchJson(args: string[], timeoutMs?: number): Promise<{ run: BenchRun; json: any }> {
  const run = await bench([...args, "--json"], timeoutMs);
  try {
    return { run, json: JSON.parse(run.stdout) };
  } catch {
    throw new Error(`not JSON (exit ${run.code}):\nstdout: ${run.stdout}\nstderr: ${run.stderr}`);
  }
}
