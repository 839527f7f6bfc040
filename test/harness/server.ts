// Starts a real server process for integration tests: natter by default, nats-server (the reference) when
// NATTER_TEST_SERVER=nats-server. Both get the same settings, mapped in one place: OPTION_KEYS (a test option
// → its nats-server config key, which natter also takes as a `--key value` flag) and the two ws* functions.
//
// Every server started here is stopped after the test (or the file, when started in a hook) that started it,
// even when that test fails; a process 'exit' handler SIGKILLs anything left over.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, onTestFinished } from "vitest";
import { freePort } from "./free-port.ts";
import { printOnFailure } from "./failure-log.ts";

export type ServerKind = "natter" | "nats-server";

/** Which server the suite runs against. */
export const serverKind: ServerKind = process.env.NATTER_TEST_SERVER === "nats-server" ? "nats-server" : "natter";

const REPO = path.resolve(import.meta.dirname, "../..");
const HOST = "127.0.0.1";
const START_DEADLINE_MS = 15_000;
const STOP_DEADLINE_MS = 5_000;
const LOG_LIMIT = 1 << 20; // keep the last 1 MiB of output

export interface ServerOptions {
  /** Also listen for WebSocket clients (plain ws, no TLS) on a free port. */
  ws?: boolean;
  /**
   * Accept permessage-deflate on the WebSocket port (implies ws). Off by default, as in nats-server
   * (`websocket { compression: true }`); natter gets `--ws_compression` when this is set.
   */
  wsCompression?: boolean;
  /** Origins allowed to open a WebSocket (implies ws): nats-server's `allowed_origins`. */
  wsAllowedOrigins?: string[];
  /** Only the server's own origin may open a WebSocket (implies ws): nats-server's `same_origin`. */
  wsSameOrigin?: boolean;
  maxPayload?: number;
  maxPending?: number;
  maxControlLine?: number;
  maxConnections?: number;
  /** A duration such as "1s". */
  pingInterval?: string;
  pingMax?: number;
  /** A duration such as "2s". */
  writeDeadline?: string;
  /** Debug logging (kept in log()). */
  debug?: boolean;
  /**
   * Extra config-file text (nats-server syntax) both servers get; `{{port}}` and `{{ws_port}}` become the
   * chosen ports. When it has a `websocket` block, nats-server gets no block of the harness's own.
   */
  config?: string;
  /** Extra command-line flags both servers take under the same names (e.g. `--user`, `--tls`). */
  args?: string[];
  /** JetStream on: natter gets `-js -sd <dir>`, nats-server a `jetstream { store_dir: <dir> }` block. */
  jetstream?: boolean;
  /** The JetStream store directory (default: a temp dir kept across restart() and removed by stop()). */
  storeDir?: string;
}

/** Test option → nats-server config key; natter takes the same key as `--key value` (`--key` for a true flag). */
const OPTION_KEYS = {
  maxPayload: "max_payload",
  maxPending: "max_pending",
  maxControlLine: "max_control_line",
  maxConnections: "max_connections",
  pingInterval: "ping_interval",
  pingMax: "ping_max",
  writeDeadline: "write_deadline",
  debug: "debug",
} as const satisfies Partial<Record<keyof ServerOptions, string>>;

/**
 * WebSocket settings. nats-server nests them in `websocket { host, port, no_tls, compression }` and
 * compresses only when told to; natter takes `--ws_host`, `--ws_port` and compresses unless given
 * `--ws_compression`. Both end up with the same behaviour for the same ServerOptions.
 */
function wsNatsServerBlock(opts: ServerOptions, wsPort: number): string {
  const ws = [`host: ${JSON.stringify(HOST)}`, `port: ${wsPort}`, "no_tls: true"];
  if (opts.wsCompression) ws.push("compression: true");
  if (opts.wsAllowedOrigins) ws.push(`allowed_origins: ${JSON.stringify(opts.wsAllowedOrigins)}`);
  if (opts.wsSameOrigin) ws.push("same_origin: true");
  return `websocket {\n  ${ws.join("\n  ")}\n}`;
}

function wsNatterFlags(opts: ServerOptions, wsPort: number): string[] {
  const flags = ["--ws_host", HOST, "--ws_port", String(wsPort)];
  if (opts.wsCompression) flags.push("--ws_compression");
  if (opts.wsAllowedOrigins) flags.push("--ws_allowed_origins", opts.wsAllowedOrigins.join(","));
  if (opts.wsSameOrigin) flags.push("--ws_same_origin");
  return flags;
}

export interface RunningServer {
  readonly kind: ServerKind;
  readonly port: number;
  readonly wsPort?: number;
  /** nats://127.0.0.1:PORT */
  readonly url: string;
  /** ws://127.0.0.1:WSPORT */
  readonly wsUrl?: string;
  /** "127.0.0.1:PORT", the form nats.js v3 / transport-node accept too. */
  readonly hostport: string;
  /** pid of the current process (changes on restart). */
  readonly pid: number;
  /** SIGTERM, then SIGKILL after a deadline; resolves once the process has exited. */
  stop(): Promise<void>;
  /** SIGKILL; resolves once the process has exited. */
  kill9(): Promise<void>;
  /** Stops (if running) and starts again on the same ports. */
  restart(): Promise<void>;
  /** Everything the server wrote to stdout and stderr, across restarts. */
  log(): string;
  /** The JetStream store directory (when started with jetstream). */
  readonly storeDir?: string;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  const killAll = () => {
    for (const child of live) {
      try {
        child.kill("SIGKILL");
      } catch {
        // already gone
      }
    }
  };
  process.on("exit", killAll);
}

const started = new Set<RunningServer>();
// Servers started from a beforeAll (outside any test) are stopped when the file is done.
afterAll(async () => {
  await Promise.all([...started].map((s) => s.stop()));
});

export { freePort };

function natsConfValue(v: string | number | boolean): string {
  return typeof v === "string" ? JSON.stringify(v) : String(v);
}

/** nats-server config file text for these options. */
function natsServerConfig(opts: ServerOptions, wsPort?: number): string {
  const lines: string[] = [];
  for (const [opt, key] of Object.entries(OPTION_KEYS)) {
    const v = opts[opt as keyof typeof OPTION_KEYS];
    if (v !== undefined) lines.push(`${key}: ${natsConfValue(v)}`);
  }
  if (wsPort !== undefined && !/\bwebsocket\b/.test(opts.config ?? "")) lines.push(wsNatsServerBlock(opts, wsPort));
  return lines.join("\n") + "\n";
}

/** natter command-line flags for these options. */
function natterFlags(opts: ServerOptions, wsPort?: number): string[] {
  const flags: string[] = [];
  for (const [opt, key] of Object.entries(OPTION_KEYS)) {
    const v = opts[opt as keyof typeof OPTION_KEYS];
    if (v === undefined || v === false) continue;
    if (v === true) flags.push(`--${key}`);
    else flags.push(`--${key}`, String(v));
  }
  if (wsPort !== undefined) flags.push(...wsNatterFlags(opts, wsPort));
  return flags;
}

/** Resolves true once `port` answers with a line starting "INFO " (or just accepts, when !wantInfo). */
function probe(port: number, wantInfo: boolean): Promise<boolean> {
  return new Promise((resolve) => {
    let buf = "";
    let done = false;
    const sock = net.connect({ host: HOST, port });
    const finish = (ok: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => finish(false), 2_000);
    sock.on("connect", () => {
      if (!wantInfo) finish(true);
    });
    sock.on("data", (d) => {
      buf += d.toString("latin1");
      if (!"INFO ".startsWith(buf.slice(0, 5))) finish(false);
      else if (buf.includes("\n")) finish(true);
    });
    sock.on("error", () => finish(false));
    sock.on("close", () => finish(false));
  });
}

async function waitReady(port: number, wsPort: number | undefined, exited: () => boolean, deadline: number): Promise<void> {
  while (Date.now() < deadline) {
    if (exited()) throw new Error("server process exited during start-up");
    if ((await probe(port, true)) && (wsPort === undefined || (await probe(wsPort, false)))) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`server not ready within ${START_DEADLINE_MS} ms`);
}

/** Starts a server on free ports and waits until it answers; throws with its log if it does not. */
export async function startServer(opts: ServerOptions = {}): Promise<RunningServer> {
  installExitHook();
  const wantWs = opts.ws || opts.wsCompression || opts.wsAllowedOrigins !== undefined || opts.wsSameOrigin;
  let port = await freePort();
  let wsPort = wantWs ? await freePort() : undefined;
  let logText = "";
  const appendLog = (s: string) => {
    logText += s;
    if (logText.length > LOG_LIMIT * 2) logText = logText.slice(-LOG_LIMIT);
  };

  let tmpDir: string | undefined;
  // JetStream's store outlives restarts (that is what they test); stop() removes it unless the test gave it.
  const jsDir = opts.jetstream ? (opts.storeDir ?? mkdtempSync(path.join(os.tmpdir(), "natter-js-"))) : undefined;
  // Resolved per spawn: nats-server's config file lives in a temp dir that stop() removes.
  const command = (): [string, string[]] => {
    const extra = (opts.config ?? "").replaceAll("{{port}}", String(port)).replaceAll("{{ws_port}}", String(wsPort ?? 0));
    if (serverKind === "nats-server") {
      tmpDir ??= mkdtempSync(path.join(os.tmpdir(), "natter-test-"));
      const conf = path.join(tmpDir, "server.conf");
      const js = jsDir === undefined ? "" : `jetstream {\n  store_dir: ${JSON.stringify(jsDir)}\n}\n`;
      writeFileSync(conf, natsServerConfig(opts, wsPort) + js + extra);
      return [process.env.NATS_SERVER_BIN ?? "nats-server", ["-a", HOST, "-p", String(port), "-c", conf, ...(opts.args ?? [])]];
    }
    return [
      path.join(REPO, "node_modules/.bin/bun"),
      [path.join(REPO, "src/main.ts"), "-a", HOST, "-p", String(port), ...natterFlags(opts, wsPort), ...(jsDir === undefined ? [] : ["-js", "-sd", jsDir]), ...natterConfig(extra), ...(opts.args ?? [])],
    ];
  };

  // natter reads the extra config text from a file; the flags above win over it, as for nats-server's.
  const natterConfig = (text: string): string[] => {
    if (!text) return [];
    tmpDir ??= mkdtempSync(path.join(os.tmpdir(), "natter-test-"));
    const conf = path.join(tmpDir, "natter.conf");
    writeFileSync(conf, text);
    return ["-c", conf];
  };

  let child: ChildProcess | undefined;
  let exitPromise: Promise<void> = Promise.resolve();
  let hasExited = true;

  const spawnOnce = async () => {
    const [cmd, args] = command();
    appendLog(`--- ${serverKind}: ${cmd} ${args.join(" ")}\n`);
    const c = spawn(cmd, args, { cwd: REPO, stdio: ["ignore", "pipe", "pipe"] });
    child = c;
    hasExited = false;
    live.add(c);
    c.stdout!.on("data", (d: Buffer) => appendLog(d.toString()));
    c.stderr!.on("data", (d: Buffer) => appendLog(d.toString()));
    exitPromise = new Promise<void>((resolve) => {
      c.on("exit", (code, signal) => {
        hasExited = true;
        live.delete(c);
        appendLog(`--- exited code=${code} signal=${signal}\n`);
        resolve();
      });
      c.on("error", (err) => {
        appendLog(`--- spawn error: ${err.message}\n`);
        hasExited = true;
        live.delete(c);
        resolve();
      });
    });
    try {
      await waitReady(port, wsPort, () => hasExited, Date.now() + START_DEADLINE_MS);
    } catch (err) {
      c.kill("SIGKILL");
      await exitPromise;
      throw new Error(`${serverKind} failed to start: ${(err as Error).message}\n${logText}`);
    }
  };

  const stopWith = async (first: NodeJS.Signals) => {
    if (!child || hasExited) return;
    const c = child;
    c.kill(first);
    const timer = setTimeout(() => {
      if (!hasExited) c.kill("SIGKILL");
    }, STOP_DEADLINE_MS);
    await exitPromise;
    clearTimeout(timer);
  };

  // A port picked by freePort() can be taken by another test worker before the server binds it: pick again.
  for (let attempt = 1; ; attempt++) {
    try {
      await spawnOnce();
      break;
    } catch (err) {
      if (attempt >= 3 || !/in use|EADDRINUSE/i.test(logText)) {
        if (tmpDir) rmSync(tmpDir, { recursive: true, force: true });
        if (jsDir !== undefined && opts.storeDir === undefined) rmSync(jsDir, { recursive: true, force: true });
        throw err;
      }
      port = await freePort();
      wsPort = wantWs ? await freePort() : undefined;
      logText = "";
    }
  }

  const server: RunningServer = {
    kind: serverKind,
    port,
    wsPort,
    url: `nats://${HOST}:${port}`,
    wsUrl: wsPort === undefined ? undefined : `ws://${HOST}:${wsPort}`,
    hostport: `${HOST}:${port}`,
    get pid() {
      return child?.pid ?? -1;
    },
    async stop() {
      await stopWith("SIGTERM");
      started.delete(server);
      if (tmpDir) rmSync(tmpDir, { recursive: true, force: true });
      tmpDir = undefined;
      if (jsDir !== undefined && opts.storeDir === undefined) rmSync(jsDir, { recursive: true, force: true });
    },
    async kill9() {
      await stopWith("SIGKILL");
    },
    async restart() {
      await stopWith("SIGTERM");
      await spawnOnce();
      started.add(server);
    },
    log: () => logText,
    storeDir: jsDir,
  };
  started.add(server);
  printOnFailure(`${serverKind} on port ${port}`, () => logText);
  try {
    onTestFinished(() => server.stop());
  } catch {
    // Not inside a test (a beforeAll): the file-level afterAll above stops it.
  }
  return server;
}
