// Where a latency tail comes from, by a scheduler trace (issue 20: "find where the tail comes from with a
// trace, not a guess"). The bench's paced one-way latency (latency-20k) or request-reply runs against natter
// and a nats-server, rounds alternating, each under `perf sched record` (the kernel's scheduler events,
// machine-wide). Then every time a thread of the load generator, or the server's event-loop thread, was
// ready to run but waited at least --threshold-us for a CPU, the wait is charged to what ran on that CPU
// meanwhile: the server's event-loop thread, its other threads (natter: JavaScriptCore's compiler and
// collector threads, the allocator's scavenger), the load generator's other thread, kernel threads, other
// processes, the trace itself (perf), or nothing ("idle": the CPU was free, so the wait was the machine's,
// not another task's: waking an idle virtual CPU goes through the hypervisor).
//
//   bun bench/sched-tail.ts [--scenario latency-20k|req-reply] [--rounds 2] [--warmup 1] [--duration 3]
//                           [--threshold-us 100] [--against PATH]
//
// Needs `perf` (Debian: linux-perf) and root (or kernel.perf_event_paranoid ≤ 1). --against: the nats-server
// binary (default NATS_SERVER or the one on the PATH), or an old natter through a wrapper script for an A/B.
import { rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { buildLoadgen, runLoadgen, type LoadgenResult } from "./loadgen.ts";
import { killChildrenOnExit } from "./children.ts";
import { startServer, type ServerKind } from "./servers.ts";
import { numberArg, stringArg } from "./args.ts";
import { finiteMedian } from "./stats.ts";
import { defaultNatsServerBin } from "./references.ts";
import { chargeWaits, OCCUPANTS, parseTimehist, type Waits } from "./sched-trace.ts";

const SCENARIO = stringArg("scenario", "latency-20k");
const ROUNDS = numberArg("rounds", 2);
const WARMUP_MS = numberArg("warmup", 1) * 1000;
const DURATION_MS = numberArg("duration", 3) * 1000;
const THRESHOLD_MS = numberArg("threshold-us", 100) / 1000;
const NATS_BIN = stringArg("against", defaultNatsServerBin());
const RATE = 20_000;

killChildrenOnExit();

interface Run {
  result: LoadgenResult;
  loadgen: Waits;
  server: Waits;
}

async function runOnce(kind: ServerKind, loadgenBin: string): Promise<Run | string> {
  const server = await startServer(kind, false, { natsBin: NATS_BIN });
  const trace = join(tmpdir(), `natter-sched-tail-${process.pid}-${server.port}.data`);
  try {
    const oneway = SCENARIO === "latency-20k";
    const args = ["--mode", oneway ? "oneway" : "latency", "--port", String(server.port), "--size", "128", "--server-pid", String(server.pid),
      "--warmup-ms", String(WARMUP_MS), "--duration-ms", String(DURATION_MS)];
    if (oneway) args.push("--subs", "1", "--rate", String(RATE));
    const result = await runLoadgen("perf", ["sched", "record", "-q", "-o", trace, "--", loadgenBin, ...args], WARMUP_MS + DURATION_MS + 60_000);
    if (!result.ok) return String(result.error);
    const timehist = Bun.spawnSync(["perf", "sched", "timehist", "-i", trace], { stdout: "pipe", stderr: "pipe" });
    if (timehist.exitCode !== 0) return `perf sched timehist failed: ${timehist.stderr.toString().slice(0, 300)}`;
    const stretches = parseTimehist(timehist.stdout.toString());
    // The load generator is the process named loadgen; its timed phase is the last DURATION_MS of its life.
    const ofLoadgen = stretches.filter((s) => s.name.startsWith("loadgen"));
    if (ofLoadgen.length === 0) return "no load generator in the trace";
    const loadgenPid = ofLoadgen[0]!.pid;
    const lastEnd = Math.max(...ofLoadgen.map((s) => s.end));
    const charged = chargeWaits(stretches, server.pid, kind === "natter", loadgenPid, lastEnd - DURATION_MS, lastEnd, THRESHOLD_MS);
    return { result, ...charged };
  } finally {
    await server.stop();
    rmSync(trace, { force: true });
  }
}


function report(side: string, runs: Run[], loop: boolean): void {
  const latency = (key: string) => finiteMedian(runs.map((r) => Number(r.result[key])));
  const late = runs.map((r) => Number(r.result.late_sends ?? NaN)).filter(Number.isFinite);
  console.log(`\n${side}: p50 ${latency("p50_us").toFixed(0)} µs, p99 ${latency("p99_us").toFixed(0)} µs, p99.9 ${latency("p999_us").toFixed(0)} µs (medians of ${runs.length})${late.length ? `; late paced sends ${late.join(", ")}` : ""}`);
  for (const group of ["loadgen", "server"] as const) {
    const waits = runs.map((r) => r[group]);
    const total = (w: Waits) => OCCUPANTS.reduce((sum, o) => sum + w.behind[o], 0);
    console.log(
      `  ${group === "loadgen" ? "load generator's threads" : loop ? "server's event loop" : "server's threads"}: waits ≥ ${(THRESHOLD_MS * 1000).toFixed(0)} µs ${waits.map((w) => w.count).join(", ")}; ` +
        `waited ${waits.map((w) => w.ms.toFixed(1)).join(", ")} ms; the longest ${waits.map((w) => w.longest.toFixed(2)).join(", ")} ms. Behind (share of the waits, per run):`,
    );
    for (const o of OCCUPANTS) {
      const shares = waits.map((w) => (total(w) > 0 ? (100 * w.behind[o]) / total(w) : 0));
      if (shares.every((x) => x < 0.5)) continue;
      let names = "";
      if (o !== "idle" && o !== "server event loop") {
        const byName = new Map<string, number>();
        for (const w of waits) for (const [n, ms] of w.names[o]) byName.set(n, (byName.get(n) ?? 0) + ms);
        names = ` (${[...byName].sort((a, b) => b[1] - a[1]).slice(0, 4).map(([n, ms]) => `${n} ${ms.toFixed(1)} ms`).join(", ")})`;
      }
      console.log(`    ${o.padEnd(22)} ${shares.map((x) => `${x.toFixed(0)}%`.padStart(4)).join(" ")}${names}`);
    }
  }
}

if (Bun.spawnSync(["perf", "--version"], { stdout: "ignore", stderr: "ignore" }).exitCode !== 0) {
  console.error("sched-tail: needs perf (Debian: apt-get install linux-perf)");
  process.exit(1);
}
const loadgenBin = buildLoadgen();
console.log(`sched-tail: ${SCENARIO}, natter vs ${NATS_BIN}, ${ROUNDS} rounds, warm-up ${WARMUP_MS} ms, timed ${DURATION_MS} ms, waits ≥ ${THRESHOLD_MS * 1000} µs`);
console.log(`load average at start: ${loadavg().map((l) => l.toFixed(2)).join(", ")} (${cpus().length} cores)`);
const runs: Record<"natter" | "nats", Run[]> = { natter: [], nats: [] };
for (let round = 0; round < ROUNDS; round++) {
  const order: ("natter" | "nats")[] = round % 2 === 0 ? ["natter", "nats"] : ["nats", "natter"];
  for (const kind of order) {
    const r = await runOnce(kind, loadgenBin);
    if (typeof r === "string") console.log(`  ${kind} round ${round + 1}: FAILURE ${r}`);
    else runs[kind].push(r);
  }
}
report("natter", runs.natter, true);
report(NATS_BIN, runs.nats, false);
console.log(`\nload average at end: ${loadavg().map((l) => l.toFixed(2)).join(", ")}`);
