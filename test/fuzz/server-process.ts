// The natter process under fuzz: started on free ports with JetStream (in a temp store dir) and a
// WebSocket listener, watched for its exit, its RSS (/proc/<pid>/status) and its log. Independent of
// vitest, so the long runner (run.ts) can use it; the process is killed on stop(), on the runner's exit
// and on SIGINT/SIGTERM of the runner, and the temp dir is removed.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";

const REPO = path.resolve(import.meta.dirname, "../..");
export const HOST = "127.0.0.1";
const START_DEADLINE_MS = 20_000;
const STOP_DEADLINE_MS = 5_000;
const LOG_KEEP = 2 << 20;

export interface FuzzServerOptions {
  maxPayload: number;
  /** Extra flags. */
  args?: string[];
}

export interface LogFinding {
  line: string;
  /** A few lines around it (a stack trace). */
  context: string;
}

const live = new Set<ChildProcess>();
/** Store dirs of servers not stopped yet: removed on exit too. */
const liveDirs = new Set<string>();
let hooksInstalled = false;
function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  const killAll = () => {
    for (const c of live) {
      try {
        c.kill("SIGKILL");
      } catch {
        // gone
      }
    }
    for (const dir of liveDirs) rmSync(dir, { recursive: true, force: true });
  };
  process.on("exit", killAll);
}

/**
 * For a standalone runner (run.ts): SIGINT/SIGTERM end the process through exit(), so the 'exit' hooks
 * (here and in engine.ts) SIGKILL every child. (A plain signal death would run no hook.)
 */
export function exitOnSignals(): void {
  process.on("SIGINT", () => process.exit(130));
  process.on("SIGTERM", () => process.exit(143));
}

// The probes below repeat test/harness/server.ts's on purpose: that module imports vitest, and
// the fuzzer also runs standalone (`npm run fuzz`, and its canary process), outside vitest.
import { freePort } from "../harness/free-port.ts";

export { freePort };

function probeInfo(port: number): Promise<boolean> {
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
    sock.on("data", (d) => {
      buf += d.toString("latin1");
      if (buf.includes("\n")) finish(buf.startsWith("INFO "));
    });
    sock.on("error", () => finish(false));
    sock.on("close", () => finish(false));
  });
}

function probeOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: HOST, port });
    const timer = setTimeout(() => done(false), 2_000);
    const done = (ok: boolean) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    };
    sock.on("connect", () => done(true));
    sock.on("error", () => done(false));
  });
}

/**
 * Lines of the server log that mean an exception escaped somewhere it should not. Every line natter's
 * logger writes starts with `[pid] `; anything else on stdout/stderr (Bun's uncaught-exception report
 * "error: …" with its source excerpt, stack frames, console output) is a finding. Among logger lines:
 * a TCP data handler that threw (natter logs it as a debug "socket error" with the exception's message),
 * an internal client handler or JetStream API handler that failed with something other than an API
 * error (logged with a stack), and fatal lines.
 */
const NETWORK_ERRORS = /ECONNRESET|EPIPE|ETIMEDOUT|ECONNABORTED|ENOTCONN|EHOSTUNREACH|ENETUNREACH|Connection reset|Broken pipe|connection (?:was )?(?:reset|closed|aborted)/i;
const LOGGER_LINE = /^\[\d+\] /;
export function scanLog(text: string): LogFinding[] {
  const lines = text.split("\n");
  const found: LogFinding[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.trim() === "") continue;
    let bad: boolean;
    if (!LOGGER_LINE.test(line)) bad = !/^--- /.test(line);
    else {
      bad =
        /\[FTL\]/.test(line) ||
        (/ - (?:MQTT )?socket error: /.test(line) && !NETWORK_ERRORS.test(line)) ||
        / MQTT internal error: /.test(line) ||
        / \[ERR\] internal client \S+: handler for .* failed: /.test(line) ||
        / \[ERR\] JetStream API \S+: /.test(line);
    }
    if (bad) {
      found.push({ line, context: lines.slice(Math.max(0, i - 3), i + 10).join("\n") });
      // One finding per report: skip the rest of this stack trace / excerpt.
      while (i + 1 < lines.length && lines[i + 1]!.trim() !== "" && !LOGGER_LINE.test(lines[i + 1]!)) i++;
    }
  }
  return found;
}

export class FuzzServer {
  port = 0;
  wsPort = 0;
  mqttPort = 0;
  /** The monitoring port (/connz: MQTT connections left open are a leak). */
  httpPort = 0;
  storeDir = "";
  private child: ChildProcess | null = null;
  private exited = false;
  exitInfo = "";
  private exitPromise: Promise<void> = Promise.resolve();
  private logText = "";
  /** Offset in logText up to which scanLog has looked (and the text dropped so far). */
  private scanned = 0;
  private dropped = 0;
  private readonly findings: LogFinding[] = [];
  private readonly exitListeners = new Set<(info: string) => void>();

  constructor(readonly options: FuzzServerOptions) {}

  get pid(): number {
    return this.child?.pid ?? -1;
  }

  get alive(): boolean {
    return this.child !== null && !this.exited;
  }

  onExit(listener: (info: string) => void): () => void {
    this.exitListeners.add(listener);
    return () => this.exitListeners.delete(listener);
  }

  async start(): Promise<void> {
    installHooks();
    this.storeDir = mkdtempSync(path.join(os.tmpdir(), "natter-fuzz-"));
    liveDirs.add(this.storeDir);
    for (let attempt = 1; ; attempt++) {
      this.port = await freePort();
      this.wsPort = await freePort();
      this.mqttPort = await freePort();
      this.httpPort = await freePort();
      try {
        await this.spawnOnce();
        return;
      } catch (error) {
        if (attempt >= 3 || !/in use|EADDRINUSE/i.test(this.logText)) {
          await this.stop();
          throw error;
        }
      }
    }
  }

  private async spawnOnce(): Promise<void> {
    const args = [
      path.join(REPO, "src/main.ts"),
      "-a", HOST, "-p", String(this.port),
      "--ws_host", HOST, "--ws_port", String(this.wsPort), "--ws_compression",
      "--mqtt_port", String(this.mqttPort), "-m", String(this.httpPort),
      "--max_payload", String(this.options.maxPayload),
      "-js", "-sd", this.storeDir,
      "-D",
      ...(this.options.args ?? []),
    ];
    const bun = path.join(REPO, "node_modules/.bin/bun");
    this.logText = "";
    this.scanned = 0;
    this.exited = false;
    const c = spawn(bun, args, { cwd: REPO, stdio: ["ignore", "pipe", "pipe"] });
    this.child = c;
    live.add(c);
    const append = (d: Buffer) => {
      this.logText += d.toString();
      if (this.logText.length > LOG_KEEP * 2) this.trimLog();
    };
    c.stdout!.on("data", append);
    c.stderr!.on("data", append);
    this.exitPromise = new Promise<void>((resolve) => {
      const done = (info: string) => {
        if (this.exited) return;
        this.exited = true;
        this.exitInfo = info;
        live.delete(c);
        for (const l of this.exitListeners) l(info);
        resolve();
      };
      c.on("exit", (code, signal) => done(`exited code=${code} signal=${signal}`));
      c.on("error", (err) => done(`spawn error: ${err.message}`));
    });
    const deadline = Date.now() + START_DEADLINE_MS;
    while (Date.now() < deadline) {
      if (this.exited) throw new Error(`natter exited during start-up (${this.exitInfo}):\n${this.logText}`);
      if ((await probeInfo(this.port)) && (await probeOpen(this.wsPort)) && (await probeOpen(this.mqttPort)) && (await probeOpen(this.httpPort))) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    c.kill("SIGKILL");
    await this.exitPromise;
    throw new Error(`natter not ready within ${START_DEADLINE_MS} ms:\n${this.logText}`);
  }

  /** Keeps the newest part of the log (after scanning what is dropped). */
  private trimLog(): void {
    this.scan();
    const cut = this.logText.lastIndexOf("\n", this.logText.length - LOG_KEEP);
    if (cut <= 0) return;
    this.logText = this.logText.slice(cut + 1);
    this.dropped += cut + 1;
    this.scanned = Math.max(0, this.scanned - (cut + 1));
  }

  /** Scans the log written since the last call (whole lines only); returns all findings so far. */
  scan(): LogFinding[] {
    const end = this.logText.lastIndexOf("\n");
    if (end + 1 > this.scanned) {
      // Start a few lines back so that a stack trace split across two scans is still seen whole.
      const chunk = this.logText.slice(this.scanned, end + 1);
      this.findings.push(...scanLog(chunk));
      this.scanned = end + 1;
    }
    return this.findings;
  }

  log(): string {
    return this.logText;
  }

  /** The tail of the log (for reports). */
  logTail(chars = 8_000): string {
    return this.logText.slice(-chars);
  }

  /** Resident set size in KiB (VmRSS), or -1 when the process is gone. */
  rssKiB(): number {
    if (!this.alive) return -1;
    try {
      const status = readFileSync(`/proc/${this.pid}/status`, "utf8");
      const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
      return m ? Number(m[1]) : -1;
    } catch {
      return -1;
    }
  }

  /** SIGTERM, then SIGKILL after a deadline; removes the store dir. Safe to call twice. */
  async stop(): Promise<void> {
    const c = this.child;
    if (c !== null && !this.exited) {
      c.kill("SIGTERM");
      const timer = setTimeout(() => {
        if (!this.exited) c.kill("SIGKILL");
      }, STOP_DEADLINE_MS);
      await this.exitPromise;
      clearTimeout(timer);
    }
    if (this.storeDir) rmSync(this.storeDir, { recursive: true, force: true });
    liveDirs.delete(this.storeDir);
  }
}
