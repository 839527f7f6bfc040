// The tails of a just-started server, interval by interval: request-reply and paced one-way latency
// (the bench's req-reply and latency-20k), each round on a fresh server after the bench's default
// 0.5 s warm-up, the timed phase cut into intervals. natter's JIT compiles its hot path in the first
// seconds after start; nats-server (Go) has nothing to compile. This shows where in the run a tail is.
//
//   bun bench/first-seconds.ts [--rounds 4] [--interval-ms 250] [--duration 3] [--warmup 0.5]
//                              [--scenario req-reply,latency-20k] [--against PATH]
//
// Side A is natter (this checkout), side B the nats-server of --against / NATS_SERVER / the PATH (an old
// natter through a wrapper script for an A/B of a change, see the common brief). Rounds alternate A B, B A.
// Per interval: p50 / p99 / p99.9 / max in µs, the median over rounds; then the whole timed phase.
// Request-reply's samples are taken one at a time, so an interval is the sum of the round trips in it.
// Then the server's threads per interval from the load generator's start (its warm-up first), read from
// /proc/<pid>/task/*/schedstat every 50 ms: CPU per message (a measure a busy machine disturbs less than
// latency: a thread's CPU time is what it used, however long it waited), the CPU of JavaScriptCore's
// compiler threads (JITWorker), and how long the threads waited for a CPU (how busy the machine was).
import { readdirSync, readFileSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { buildLoadgen, runLoadgen } from "./loadgen.ts";
import { killChildrenOnExit } from "./children.ts";
import { startServer, type ServerKind } from "./servers.ts";
import { defaultNatsServerBin } from "./references.ts";
import { numberArg, stringArg } from "./args.ts";
import { finiteMedian } from "./stats.ts";

const ROUNDS = numberArg("rounds", 4);
const INTERVAL_MS = numberArg("interval-ms", 250);
const DURATION_MS = numberArg("duration", 3) * 1000;
const WARMUP_MS = numberArg("warmup", 0.5) * 1000;
const SCENARIOS = stringArg("scenario", "req-reply,latency-20k").split(",");
const NATS_BIN = stringArg("against", defaultNatsServerBin());
const RATE = 20_000;

killChildrenOnExit();

/** The samples (ns) the load generator wrote, in the order they were taken. */
function readSamples(file: string): Float64Array {
  const bytes = readFileSync(file);
  const aligned = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength - (bytes.byteLength % 8));
  const raw = new BigUint64Array(aligned);
  const out = new Float64Array(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = Number(raw[i]);
  return out;
}

interface Percentiles {
  n: number;
  p50: number;
  p99: number;
  p999: number;
  max: number;
}

function percentiles(values: Float64Array): Percentiles {
  const sorted = Float64Array.from(values).sort();
  const at = (p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((sorted.length - 1) * p))]! / 1000 : NaN);
  return { n: sorted.length, p50: at(0.5), p99: at(0.99), p999: at(0.999), max: sorted.length ? sorted[sorted.length - 1]! / 1000 : NaN };
}

/** Cuts the samples into intervals: by send time (one-way, paced) or by elapsed round trips (request-reply). */
function intervals(samples: Float64Array, oneway: boolean): Percentiles[] {
  const out: Percentiles[] = [];
  const perInterval = (RATE * INTERVAL_MS) / 1000;
  let from = 0;
  while (from < samples.length) {
    let to = from;
    if (oneway) to = Math.min(samples.length, from + perInterval);
    else {
      let elapsed = 0;
      while (to < samples.length && elapsed < INTERVAL_MS * 1e6) elapsed += samples[to++]!;
    }
    out.push(percentiles(samples.subarray(from, to)));
    from = to;
  }
  return out;
}

interface Run {
  whole: Percentiles;
  intervals: Percentiles[];
  /** Per interval from the load generator's start (ms): see ThreadTimes. */
  cpu: ThreadTimes[];
}

/** The server's threads' times (ms): on a CPU (but the JIT's), the JIT compiler threads', and waiting for a CPU. */
interface ThreadTimes {
  busy: number;
  jit: number;
  wait: number;
}

/** A process's threads' times so far, from /proc/<pid>/task/<tid>/schedstat (ns on CPU, ns runnable but waiting). */
function threadTimes(pid: number): ThreadTimes | null {
  const times = { busy: 0, jit: 0, wait: 0 };
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const name = readFileSync(`/proc/${pid}/task/${tid}/comm`, "latin1").trim();
      const [onCpu, waiting] = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "latin1").split(" ").map((n) => Number(n) / 1e6);
      if (name.startsWith("JITWorker")) times.jit += onCpu!;
      else times.busy += onCpu!;
      times.wait += waiting!;
    }
  } catch {
    return null; // the process is gone
  }
  return times;
}

/** Samples a server's thread times every 50 ms until stopped; then what each interval from the start used. */
function sampleThreads(pid: number): () => ThreadTimes[] {
  const started = performance.now();
  const samples: (ThreadTimes & { t: number })[] = [];
  const take = () => {
    const c = threadTimes(pid);
    if (c !== null) samples.push({ t: performance.now() - started, ...c });
  };
  take();
  const timer = setInterval(take, 50);
  return () => {
    clearInterval(timer);
    take();
    const at = (t: number) => samples.findLast((s) => s.t <= t) ?? samples[0]!;
    const out: ThreadTimes[] = [];
    for (let from = 0; from + INTERVAL_MS <= samples[samples.length - 1]!.t; from += INTERVAL_MS) {
      const a = at(from);
      const b = at(from + INTERVAL_MS);
      out.push({ busy: b.busy - a.busy, jit: b.jit - a.jit, wait: b.wait - a.wait });
    }
    return out;
  };
}

async function runOnce(kind: ServerKind, scenario: string, bin: string): Promise<Run | string> {
  const server = await startServer(kind, false, { natsBin: NATS_BIN });
  const samples = join(tmpdir(), `natter-first-seconds-${process.pid}-${server.port}.lat`);
  const oneway = scenario === "latency-20k";
  try {
    const args = ["--mode", oneway ? "oneway" : "latency", "--port", String(server.port), "--size", "128", "--server-pid", String(server.pid),
      "--warmup-ms", String(WARMUP_MS), "--duration-ms", String(DURATION_MS), "--samples", samples];
    if (oneway) args.push("--subs", "1", "--rate", String(RATE));
    const cpu = sampleThreads(server.pid);
    const result = await runLoadgen(bin, args, WARMUP_MS + DURATION_MS + 60_000);
    const cpuIntervals = cpu();
    if (!result.ok) return String(result.error);
    const values = readSamples(samples);
    return { whole: percentiles(values), intervals: intervals(values, oneway), cpu: cpuIntervals };
  } finally {
    await server.stop();
    rmSync(samples, { force: true });
  }
}

const range = (xs: number[]) => `${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)}`;
const f = (x: number) => (Number.isFinite(x) ? x.toFixed(0).padStart(6) : "     -");
const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1).padStart(8) : "       -");

const bin = buildLoadgen();
console.log(`first seconds: natter (A) vs ${NATS_BIN} (B), ${ROUNDS} rounds, warm-up ${WARMUP_MS} ms, timed ${DURATION_MS} ms, intervals of ${INTERVAL_MS} ms`);
console.log(`load average at start: ${loadavg().map((l) => l.toFixed(2)).join(", ")} (${cpus().length} cores)`);
for (const scenario of SCENARIOS) {
  const runs: Record<ServerKind, Run[]> = { natter: [], nats: [], relay: [] };
  for (let round = 0; round < ROUNDS; round++) {
    const order: ServerKind[] = round % 2 === 0 ? ["natter", "nats"] : ["nats", "natter"];
    for (const kind of order) {
      const r = await runOnce(kind, scenario, bin);
      if (typeof r === "string") console.log(`  ${scenario} ${kind} round ${round + 1}: FAILURE ${r}`);
      else {
        runs[kind].push(r);
        console.log(`  ${scenario} ${kind === "nats" ? "B" : "A"} round ${round + 1}: p99 ${r.whole.p99.toFixed(0)} µs, p99.9 ${r.whole.p999.toFixed(0)} µs, first interval p99 ${r.intervals[0]!.p99.toFixed(0)} µs`);
      }
    }
  }
  console.log(`\n${scenario}: per interval of the timed phase, median over rounds (µs)`);
  console.log(`  ${"from ms".padStart(7)} | ${"A p50".padStart(6)} ${"A p99".padStart(6)} ${"p99.9".padStart(6)} ${"max".padStart(6)} | ${"B p50".padStart(6)} ${"B p99".padStart(6)} ${"p99.9".padStart(6)} ${"max".padStart(6)}`);
  const count = Math.max(...[...runs.natter, ...runs.nats].map((r) => r.intervals.length));
  for (let k = 0; k < count; k++) {
    const col = (rs: Run[], key: keyof Percentiles) => f(finiteMedian(rs.map((r) => r.intervals[k]?.[key] ?? NaN)));
    const side = (rs: Run[]) => `${col(rs, "p50")} ${col(rs, "p99")} ${col(rs, "p999")} ${col(rs, "max")}`;
    console.log(`  ${String(k * INTERVAL_MS).padStart(7)} | ${side(runs.natter)} | ${side(runs.nats)}`);
  }
  console.log(`\n${scenario}: the server's threads per interval from the load generator's start (its ${WARMUP_MS} ms warm-up first), median over rounds:`);
  console.log("  CPU µs per message (all threads but the JIT's), JIT compiler threads' CPU ms, ms its threads waited for a CPU");
  console.log(`  ${"from ms".padStart(7)} | ${"A µs/msg".padStart(8)} ${"JIT ms".padStart(6)} ${"wait".padStart(6)} | ${"B µs/msg".padStart(8)} ${"JIT ms".padStart(6)} ${"wait".padStart(6)}`);
  const cpuCount = Math.max(...[...runs.natter, ...runs.nats].map((r) => r.cpu.length));
  // Messages per interval: the paced rate; request-reply's from the samples (two messages per request), by the
  // timed phase's intervals (its warm-up's rate taken as its first interval's).
  const perMessage = (r: Run, k: number) => {
    const timed = k - WARMUP_MS / INTERVAL_MS;
    const n = scenario === "latency-20k" ? (RATE * INTERVAL_MS) / 1000 : 2 * (r.intervals[Math.max(0, timed)]?.n ?? NaN);
    return ((r.cpu[k]?.busy ?? NaN) * 1000) / n;
  };
  for (let k = 0; k < cpuCount; k++) {
    const side = (rs: Run[]) =>
      `${f1(finiteMedian(rs.map((r) => perMessage(r, k))))} ${f(finiteMedian(rs.map((r) => r.cpu[k]?.jit ?? NaN)))} ${f(finiteMedian(rs.map((r) => r.cpu[k]?.wait ?? NaN)))}`;
    console.log(`  ${String(k * INTERVAL_MS - WARMUP_MS).padStart(7)} | ${side(runs.natter)} | ${side(runs.nats)}`);
  }
  for (const key of ["p50", "p99", "p999"] as const) {
    const a = runs.natter.map((r) => r.whole[key]);
    const b = runs.nats.map((r) => r.whole[key]);
    if (a.length && b.length) {
      console.log(`  whole ${key}: A ${finiteMedian(a).toFixed(0)} (${range(a)}) µs, B ${finiteMedian(b).toFixed(0)} (${range(b)}) µs, A/B ${(finiteMedian(a) / finiteMedian(b)).toFixed(2)}×`);
    }
  }
  console.log("");
}
console.log(`load average at end: ${loadavg().map((l) => l.toFixed(2)).join(", ")}`);
