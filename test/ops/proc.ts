// natter as a real process for the operations tests: spawned with given arguments (a config file, signals,
// files on disk), its output collected, every wait with a deadline and no fixed sleeps. Every process started
// here is SIGKILLed when the test that started it finishes (even on failure), and at process exit.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, onTestFinished } from "vitest";
import { printOnFailure } from "../harness/failure-log.ts";

export const REPO = path.resolve(import.meta.dirname, "../..");
export const BUN = path.join(REPO, "node_modules/.bin/bun");
export const MAIN = path.join(REPO, "src/main.ts");

const live = new Set<ChildProcess>();
process.on("exit", () => {
  for (const c of live) c.kill("SIGKILL");
});
afterAll(async () => {
  await Promise.all([...live].map((c) => killAndWait(c)));
});

function killAndWait(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    c.once("exit", () => resolve());
    c.kill("SIGKILL");
  });
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface NatterProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** stdout and stderr so far. */
  output(): string;
  /** Resolves with the output once it matches `re` (checked on every write); throws at the deadline or if the process exits first. */
  waitForOutput(re: RegExp, timeoutMs?: number): Promise<string>;
  /** Resolves when the process exits; throws at the deadline. */
  waitForExit(timeoutMs?: number): Promise<Exit>;
  signal(sig: NodeJS.Signals): void;
}

/** Starts `<command> <args>` (natter under bun by default); killed when the current test finishes. */
export function spawnNatter(args: string[], opts: { command?: string[]; cwd?: string; env?: NodeJS.ProcessEnv } = {}): NatterProcess {
  const [cmd, ...pre] = opts.command ?? [BUN, MAIN];
  const child = spawn(cmd!, [...pre, ...args], {
    cwd: opts.cwd ?? REPO,
    env: opts.env ?? process.env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  live.add(child);
  let out = "";
  const listeners = new Set<() => void>();
  const wake = () => {
    for (const l of [...listeners]) l();
  };
  child.stdout!.on("data", (d: Buffer) => {
    out += d.toString();
    wake();
  });
  child.stderr!.on("data", (d: Buffer) => {
    out += d.toString();
    wake();
  });
  let exit: Exit | null = null;
  const exited = new Promise<Exit>((resolve) => {
    child.on("exit", (code, signal) => {
      exit = { code, signal };
      live.delete(child);
      // Let the pipes drain before waiters look at the output one last time.
      setImmediate(() => {
        resolve(exit!);
        wake();
      });
    });
    child.on("error", (err) => {
      out += `spawn error: ${err.message}\n`;
      exit = { code: null, signal: null };
      live.delete(child);
      resolve(exit);
      wake();
    });
  });
  printOnFailure(`${path.basename(cmd!)} ${[...pre.slice(1), ...args].join(" ")}`, () => out);
  try {
    onTestFinished(() => killAndWait(child));
  } catch {
    // outside a test: the afterAll above kills it
  }

  const waitForOutput = (re: RegExp, timeoutMs = 15_000) =>
    new Promise<string>((resolve, reject) => {
      const check = () => {
        if (re.test(out)) {
          done();
          resolve(out);
        } else if (exit) {
          done();
          reject(new Error(`process exited (${JSON.stringify(exit)}) before output matched ${re}; output:\n${out}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`output did not match ${re} within ${timeoutMs} ms; output:\n${out}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        listeners.delete(check);
      };
      listeners.add(check);
      check();
    });

  const waitForExit = async (timeoutMs = 15_000): Promise<Exit> => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`process did not exit within ${timeoutMs} ms; output:\n${out}`)), timeoutMs);
    });
    try {
      return await Promise.race([exited, deadline]);
    } finally {
      clearTimeout(timer);
    }
  };

  return {
    child,
    pid: child.pid ?? -1,
    output: () => out,
    waitForOutput,
    waitForExit,
    signal: (sig) => {
      if (!exit) child.kill(sig);
    },
  };
}

/** Runs natter to completion (for commands that exit: errors, -t, --signal). */
export async function runNatter(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<Exit & { output: string }> {
  const p = spawnNatter(args, opts);
  const exit = await p.waitForExit(opts.timeoutMs ?? 15_000);
  return { ...exit, output: p.output() };
}

/** A temporary directory, removed when the file's tests are done. */
export function tempDir(prefix = "natter-ops-"): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Writes a config file into `dir` and returns its path. */
export function writeConfig(dir: string, name: string, text: string): string {
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return file;
}

/** True once `port` on 127.0.0.1 refuses connections (polled with a deadline). */
export async function refuses(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: "127.0.0.1", port });
    const timer = setTimeout(() => {
      s.destroy();
      resolve(false);
    }, 2_000);
    s.on("connect", () => {
      clearTimeout(timer);
      s.destroy();
      resolve(false);
    });
    s.on("error", () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

export { freePort } from "../harness/server.ts";
export { connectRaw, connectReady, waitFor } from "../harness/raw.ts";
