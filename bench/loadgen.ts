// Builds the C load generator (bench/loadgen/*.c → bench/build/loadgen) and runs it once.
import { mkdirSync, readdirSync, renameSync, statSync } from "node:fs";
import { join } from "node:path";
import { track, untrack } from "./children.ts";
import { ROOT } from "./servers.ts";

const SRC_DIR = join(ROOT, "bench", "loadgen");
const BIN = join(ROOT, "bench", "build", "loadgen");

export interface CpuPercent {
  pub: number; // publisher / requester thread, % of one core
  subs: number; // subscriber threads / responder thread, together
  user: number; // whole generator process
  sys: number;
  server: number; // server process (all its threads); -1 if unknown
  other: number; // the rest of the machine: other work that disturbed this run
  steal: number; // hypervisor steal time
}

export interface LoadgenResult {
  ok: boolean;
  error?: string;
  mode?: string;
  cpu?: CpuPercent;
  [key: string]: unknown;
}

// Recompiles when any source is newer than the binary.
export function buildLoadgen(): string {
  const sources = readdirSync(SRC_DIR).filter((f) => f.endsWith(".c") || f.endsWith(".h"));
  const newest = Math.max(...sources.map((f) => statSync(join(SRC_DIR, f)).mtimeMs));
  let binTime = 0;
  try {
    binTime = statSync(BIN).mtimeMs;
  } catch {}
  if (binTime > newest) return BIN;
  mkdirSync(join(ROOT, "bench", "build"), { recursive: true });
  // Build beside it and rename: another bench running at the same time keeps a whole binary.
  const tmp = `${BIN}.${process.pid}.tmp`;
  const cmd = ["gcc", "-O2", "-Wall", "-D_GNU_SOURCE", "-pthread", "-o", tmp,
    ...sources.filter((f) => f.endsWith(".c")).map((f) => join(SRC_DIR, f))];
  const p = Bun.spawnSync(cmd, { stderr: "pipe", stdout: "pipe" });
  if (p.exitCode !== 0) throw new Error(`building the load generator failed:\n${cmd.join(" ")}\n${p.stderr}`);
  renameSync(tmp, BIN);
  return BIN;
}

export async function runLoadgen(bin: string, args: string[], timeoutMs: number): Promise<LoadgenResult> {
  const proc = Bun.spawn([bin, ...args], { stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  track(proc);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    proc.kill("SIGKILL");
  }, timeoutMs);
  const [stdout, stderr] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  await proc.exited;
  untrack(proc);
  clearTimeout(timer);
  if (timedOut) return { ok: false, error: `load generator did not finish within ${timeoutMs / 1000} s` };
  const line = stdout.trim().split("\n").pop() ?? "";
  try {
    return JSON.parse(line) as LoadgenResult;
  } catch {
    return { ok: false, error: `load generator exited ${proc.exitCode}: ${(stderr || stdout).trim().slice(0, 500)}` };
  }
}
