// When are request-reply's slowest exchanges, and what was natter doing then? One natter (bin/natter)
// under the load generator's request-reply load (the bench's req-reply), with JavaScriptCore's collector
// log on (BUN_JSC_logGC=1; --jit adds the compile logs), every log line stamped with the wall clock when it
// arrived. The load generator writes each exchange's round trip in order and the timed phase's start on the
// wall clock (--samples FILE, FILE.start), so every exchange has a start and an end on the same clock.
//
//   bun bench/rr-tail.ts [--size 128] [--warmup 0.5] [--duration 3] [--runs 3] [--jit] [--natter PATH]
//                        [--slow-us 0] [--slack 0.3] [--lag 6] [--taskset CPUS] [--log FILE]
//
// Per run: p50 / p99 / p99.9; the collections in the timed phase (count, kinds, pauses) and how many
// exchanges overlapped one; the exchanges slower than --slow-us (default: the run's p99.9), and of those how
// many overlapped a collection's pause, a compilation (--jit) or neither; then the slow ones listed with
// what was logged nearest. A collection's line is printed when it ends and holds its pause (p=ms): the pause
// is [stamp - p, stamp], widened by --slack ms at its end and by --lag ms at its start: a line reaches this
// script through a pipe, 2–6 ms late when the machine is busy (the slowest exchange near a pause started that
// much before it). Compared with chance: how many slow exchanges windows that long, placed anywhere, would meet.
// --taskset runs natter pinned to those CPUs (a diagnosis: the load generator's threads then share less).
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir, loadavg } from "node:os";
import { buildLoadgen, runLoadgen } from "./loadgen.ts";
import { track, untrack, killChildrenOnExit } from "./children.ts";
import { freePort, ROOT } from "./servers.ts";
import { stampLines, waitForInfo, type Stamped } from "./natter-log.ts";
import { numberArg, stringArg } from "./args.ts";

const SIZE = numberArg("size", 128);
const WARMUP_MS = numberArg("warmup", 0.5) * 1000;
const DURATION_MS = numberArg("duration", 3) * 1000;
const RUNS = numberArg("runs", 3);
const JIT = process.argv.includes("--jit");
const NATTER = stringArg("natter", join(ROOT, "bin", "natter"));
const SLOW_US = numberArg("slow-us", 0);
const SLACK_MS = numberArg("slack", 0.3);
const LAG_MS = numberArg("lag", 6);
const TASKSET = stringArg("taskset", "");
const LOG = stringArg("log", "");

killChildrenOnExit();

const wallMs = () => performance.timeOrigin + performance.now();

/** Something natter did for a while: [from, to] in ms since the epoch. */
interface Span {
  from: number;
  to: number;
  what: string;
}

const gcLine = /\[GC<[^>]*>: START .*?=> (\w+Collection).*? p=([\d.]+)ms/;
const compiled = /^Optimized (\S+?)#\S+:\[.*? using (Baseline|DFG|FTL\w*) with \S+ into \d+ bytes in ([\d.]+) ms/;

async function run(n: number): Promise<void> {
  const port = await freePort();
  const env = { ...process.env, BUN_JSC_logGC: "1", ...(JIT ? { BUN_JSC_reportDFGCompileTimes: "1", BUN_JSC_reportFTLCompileTimes: "1", BUN_JSC_reportBaselineCompileTimes: "1" } : {}) };
  const cmd = [NATTER, "-a", "127.0.0.1", "-p", String(port), "-D"];
  const proc = Bun.spawn(TASKSET ? ["taskset", "-c", TASKSET, ...cmd] : cmd, { cwd: ROOT, env, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  track(proc);
  const lines: Stamped[] = [];
  const collecting = Promise.all([stampLines(proc.stdout, wallMs, lines), stampLines(proc.stderr, wallMs, lines)]);
  await waitForInfo(port);
  const samplesFile = join(tmpdir(), `rr-tail-${process.pid}-${n}.bin`);
  const args = ["--mode", "latency", "--port", String(port), "--size", String(SIZE), "--warmup-ms", String(WARMUP_MS), "--duration-ms", String(DURATION_MS), "--samples", samplesFile];
  const result = await runLoadgen(buildLoadgen(), args, WARMUP_MS + DURATION_MS + 60_000);
  await Bun.sleep(200); // the last lines
  let rssMiB = NaN;
  try {
    rssMiB = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${proc.pid}/status`, "utf8"))![1]) / 1024;
  } catch {} // not Linux, or a wrapper's pid
  proc.kill("SIGTERM");
  await proc.exited;
  untrack(proc);
  await collecting;
  if (!result.ok) throw new Error(`load generator: ${result.error}`);
  const bytes = readFileSync(samplesFile);
  const raw = new BigUint64Array(bytes.buffer, bytes.byteOffset, Math.floor(bytes.byteLength / 8));
  const startMs = Number(BigInt(readFileSync(`${samplesFile}.start`, "utf8").trim()) / 1000n) / 1000;
  rmSync(samplesFile, { force: true });
  rmSync(`${samplesFile}.start`, { force: true });
  if (LOG) writeFileSync(`${LOG}.${n}`, lines.map((l) => `${(l.t - startMs).toFixed(3)} ${l.line}`).join("\n") + "\n");

  // Each exchange's [start, end] in ms since the epoch (the requester sends the next one right after a reply).
  const count = raw.length;
  const from = new Float64Array(count);
  const dur = new Float64Array(count);
  let at = startMs;
  for (let i = 0; i < count; i++) {
    from[i] = at;
    dur[i] = Number(raw[i]) / 1e6;
    at += dur[i]!;
  }
  const endMs = at;
  const sorted = Float64Array.from(dur).sort();
  const pct = (p: number) => sorted[Math.floor((count - 1) * p)]! * 1000;
  const slowUs = SLOW_US > 0 ? SLOW_US : pct(0.999);

  const pauses: Span[] = [];
  const compiles: Span[] = [];
  for (const l of lines) {
    const g = gcLine.exec(l.line);
    if (g) pauses.push({ from: l.t - Number(g[2]) - LAG_MS, to: l.t + SLACK_MS, what: `${g[1]} ${g[2]} ms` });
    const c = compiled.exec(l.line);
    if (c) compiles.push({ from: l.t - Number(c[3]) - LAG_MS, to: l.t + SLACK_MS, what: `${c[2]} ${c[1]} ${c[3]} ms` });
  }
  const inPhase = (s: Span) => s.to >= startMs && s.from <= endMs;
  const timedPauses = pauses.filter(inPhase);
  const timedCompiles = compiles.filter(inPhase);
  const overlap = (spans: Span[], a: number, b: number) => spans.find((s) => s.from < b && s.to > a);

  let inPause = 0;
  const slow: number[] = [];
  for (let i = 0; i < count; i++) {
    const a = from[i]!;
    const b = a + dur[i]!;
    if (overlap(timedPauses, a, b)) inPause++;
    if (dur[i]! * 1000 >= slowUs) slow.push(i);
  }
  let slowPause = 0;
  let slowCompile = 0;
  let slowNeither = 0;
  for (const i of slow) {
    const p = overlap(timedPauses, from[i]!, from[i]! + dur[i]!);
    const c = overlap(timedCompiles, from[i]!, from[i]! + dur[i]!);
    if (p) slowPause++;
    else if (c) slowCompile++;
    else slowNeither++;
  }
  const kinds = new Map<string, number>();
  for (const p of timedPauses) kinds.set(p.what.split(" ")[0]!, (kinds.get(p.what.split(" ")[0]!) ?? 0) + 1);
  const pauseMs = timedPauses.map((p) => p.to - SLACK_MS - p.from - LAG_MS).sort((x, y) => x - y);
  const windowMs = timedPauses.reduce((t, p) => t + (p.to - p.from), 0);
  const byChance = (slow.length * windowMs) / (endMs - startMs);
  console.log(
    `run ${n + 1}: ${count} exchanges in ${(endMs - startMs).toFixed(0)} ms, p50 ${pct(0.5).toFixed(0)} µs, p99 ${pct(0.99).toFixed(0)} µs, p99.9 ${pct(0.999).toFixed(0)} µs, max ${pct(1).toFixed(0)} µs; RSS after it ${rssMiB.toFixed(1)} MiB; load ${loadavg()[0]!.toFixed(2)}`,
  );
  console.log(
    `  collections in the timed phase: ${timedPauses.length} (${[...kinds].map(([k, v]) => `${v} ${k}`).join(", ")}), pauses ${pauseMs.length ? `${pauseMs[0]!.toFixed(2)}–${pauseMs[pauseMs.length - 1]!.toFixed(2)} ms, median ${pauseMs[pauseMs.length >> 1]!.toFixed(2)}` : "-"}; exchanges overlapping one: ${inPause} (${((inPause / count) * 100).toFixed(2)}%)`,
  );
  if (JIT) console.log(`  compilations in the timed phase: ${timedCompiles.length}`);
  console.log(`  exchanges ≥ ${slowUs.toFixed(0)} µs: ${slow.length}; overlapping a collection ${slowPause} (by chance ${byChance.toFixed(1)}), else a compilation ${slowCompile}, neither ${slowNeither}`);
  // Each collection: the slowest exchange from 5 ms before its pause to 5 ms after, and where it was.
  for (const p of timedPauses) {
    let worst = -1;
    for (let i = 0; i < count; i++) {
      if (from[i]! + dur[i]! < p.from - 5 || from[i]! > p.to + 5) continue;
      if (worst < 0 || dur[i]! > dur[worst]!) worst = i;
    }
    if (worst >= 0) console.log(`    collection ${p.what} at ${(p.from - startMs).toFixed(1)} ms: the slowest exchange near it ${(dur[worst]! * 1000).toFixed(0)} µs at ${(from[worst]! - startMs).toFixed(1)} ms`);
  }
  for (const i of slow.slice(0, 40)) {
    const a = from[i]!;
    const b = a + dur[i]!;
    const p = overlap(timedPauses, a, b);
    const c = overlap(timedCompiles, a, b);
    console.log(`    at ${(a - startMs).toFixed(1)} ms: ${(dur[i]! * 1000).toFixed(0)} µs${p ? `, collection ${p.what}` : ""}${c ? `, compile ${c.what}` : ""}`);
  }
}

console.log(`natter ${NATTER}${TASKSET ? ` pinned to CPUs ${TASKSET}` : ""}, request-reply ${SIZE} B, ${WARMUP_MS} ms warm-up, ${DURATION_MS} ms timed; load ${loadavg().map((x) => x.toFixed(2)).join(" ")}`);
for (let n = 0; n < RUNS; n++) await run(n);
