// A tiny spawner for the monitoring tests: natter or nats-server (the reference) with a client port
// and a monitoring port (-m), both free ports picked at run time. (test/harness/server.ts has no
// monitoring port option, so these tests start their own.) Every process started here is killed
// by stop(), and SIGKILLed at exit if a test forgot.
import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { printOnFailure } from "../harness/failure-log.ts";
import { freePorts } from "../harness/free-port.ts";

export type Kind = "natter" | "nats-server";

const REPO = path.resolve(import.meta.dirname, "../..");
const HOST = "127.0.0.1";
const START_DEADLINE_MS = 15_000;
const STOP_DEADLINE_MS = 5_000;

export interface Monitored {
  readonly kind: Kind;
  readonly port: number;
  readonly httpPort: number;
  /** "127.0.0.1:PORT" for NATS clients. */
  readonly hostport: string;
  /** http://127.0.0.1:HTTPPORT (https:// with `https`) */
  readonly base: string;
  /** With `https`: the CA (PEM) that the monitoring port's certificate chains to, for fetch's `tls`. */
  readonly tls?: { ca: string };
  stop(): Promise<void>;
  log(): string;
}

const live = new Set<ChildProcess>();
process.on("exit", () => {
  for (const c of live) {
    try {
      c.kill("SIGKILL");
    } catch {
      // gone
    }
  }
});


async function probeHttp(base: string, tls: { ca: string } | undefined): Promise<boolean> {
  try {
    const res = await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(1_000), tls });
    await res.arrayBuffer();
    return res.status === 200;
  } catch {
    return false;
  }
}

async function startOnce(kind: Kind, port: number, httpPort: number, extra: string[], https: HttpsOption | undefined): Promise<Monitored> {
  const args = ["-a", HOST, "-p", String(port), https ? "--https_port" : "-m", String(httpPort), ...extra];
  const [cmd, argv] =
    kind === "natter"
      ? [path.join(REPO, "node_modules/.bin/bun"), [path.join(REPO, "src/main.ts"), ...args]]
      : [process.env.NATS_SERVER_BIN ?? "nats-server", args];
  let logText = `--- ${cmd} ${argv.join(" ")}\n`;
  const child = spawn(cmd, argv, { cwd: REPO, stdio: ["ignore", "pipe", "pipe"] });
  live.add(child);
  let exited = false;
  child.stdout!.on("data", (d: Buffer) => (logText += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (logText += d.toString()));
  const exit = new Promise<void>((resolve) => {
    child.on("exit", (code, signal) => {
      exited = true;
      live.delete(child);
      logText += `--- exited code=${code} signal=${signal}\n`;
      resolve();
    });
    child.on("error", (err) => {
      exited = true;
      live.delete(child);
      logText += `--- spawn error: ${err.message}\n`;
      resolve();
    });
  });
  const stop = async () => {
    if (exited) return;
    child.kill("SIGTERM");
    const timer = setTimeout(() => {
      if (!exited) child.kill("SIGKILL");
    }, STOP_DEADLINE_MS);
    await exit;
    clearTimeout(timer);
  };
  const base = `${https ? "https" : "http"}://${HOST}:${httpPort}`;
  const tls = https ? { ca: https.ca } : undefined;
  const deadline = Date.now() + START_DEADLINE_MS;
  // Ready = /healthz answers 200: both servers open the client port before (natter, in the same
  // synchronous start) or check it in /healthz (nats-server). No TCP probe: it would be listed as a
  // closed connection in /connz?state=closed.
  while (!(await probeHttp(base, tls))) {
    if (exited || Date.now() > deadline) {
      await stop();
      throw new Error(`${kind} did not start: ${exited ? "it exited" : "not ready in time"}\n${logText}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  printOnFailure(`${kind} on port ${port}`, () => logText);
  return { kind, port, httpPort, hostport: `${HOST}:${port}`, base, ...(tls ? { tls } : {}), stop, log: () => logText };
}

/** Monitoring over HTTPS (--https_port; the server's tls block, in `extra`, has the certificate): its CA. */
export interface HttpsOption {
  ca: string;
}

/**
 * Starts `kind` on free ports and waits until both ports answer (retrying if a port was taken meanwhile).
 * `https`: the monitoring port is --https_port instead of -m.
 */
export async function startMonitored(kind: Kind, extra: string[] = [], https?: HttpsOption): Promise<Monitored> {
  let last: Error | undefined;
  for (let attempt = 0; attempt < 3; attempt++) {
    const [port, httpPort] = await freePorts(2);
    try {
      return await startOnce(kind, port!, httpPort!, extra, https);
    } catch (error) {
      last = error as Error;
      if (!/address already in use|EADDRINUSE/i.test(last.message)) throw last;
    }
  }
  throw last!;
}

export interface Fetched {
  status: number;
  contentType: string;
  text: string;
}

export async function get(server: Monitored, pathAndQuery: string): Promise<Fetched> {
  const res = await fetch(`${server.base}${pathAndQuery}`, { signal: AbortSignal.timeout(10_000), tls: server.tls });
  return { status: res.status, contentType: res.headers.get("content-type") ?? "", text: await res.text() };
}

/** GET and parse JSON; fails with the body when the status is not 200. */
export async function getJson<T = Record<string, unknown>>(server: Monitored, pathAndQuery: string): Promise<T> {
  const r = await get(server, pathAndQuery);
  if (r.status !== 200) throw new Error(`${server.kind} ${pathAndQuery}: HTTP ${r.status}: ${r.text}`);
  return JSON.parse(r.text) as T;
}

/** Polls `check` until it returns a value (not undefined) or the deadline passes. */
export async function eventually<T>(what: string, check: () => Promise<T | undefined>, deadlineMs = 5_000): Promise<T> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
