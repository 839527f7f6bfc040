// `npm run bench:procs`: natter --procs 2 (src/workers/) against natter in one process and nats-server,
// in the same run, with the C load generator. Each round starts every server fresh on free ports and
// rotates their order, so drift on this shared machine hits all alike; figures are medians over rounds.
//
//   pub-only-4   four publishers, no subscribers, 128 B. With --procs 2 the publishers are spread two
//                per worker (--placement spread: the kernel's own choice is random per connection).
//   pub-sub      one publisher, one subscriber, 128 B. With --procs 2 twice: both on one worker
//                (same), and publisher and subscriber on different workers (cross: every message
//                crosses the loopback route between them).
//   req-reply    round trip of one request at a time, 128 B: same worker, and across workers (each round
//                trip crosses the route twice).
//
// The load generator tells the workers apart by INFO server_id and reconnects until a connection lands
// on the wanted one (bench/loadgen/conn.c, --placement). Cross-worker runs wait until the subscriber's
// (responder's) interest has reached the publisher's worker before anything is timed (--sub-ports).
//
//   bun bench/procs.ts [--rounds 5] [--duration 2] [--warmup 1.5] [--procs 2]
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { rmSync, writeFileSync, mkdirSync } from "node:fs";
import { buildLoadgen, runLoadgen, type LoadgenResult } from "./loadgen.ts";
import { killChildrenOnExit } from "./children.ts";
import { ROOT, serverVersion, startServer, type RunningServer } from "./servers.ts";
import { latencyFromSamples, spread } from "./stats.ts";
import { childPids, waitForWorkers } from "./workers.ts";
import { numberArg } from "./args.ts";

const ROUNDS = numberArg("rounds", 5);
const DURATION_MS = numberArg("duration", 2) * 1000;
const LATENCY_MS = numberArg("latency-duration", 3) * 1000;
const WARMUP_MS = numberArg("warmup", 1.5) * 1000;
const PROCS = numberArg("procs", 2);
const SIZE = 128;

type Target = "natter" | "procs" | "nats";
const TITLE: Record<Target, string> = { natter: "natter (1 process)", procs: `natter --procs ${PROCS}`, nats: "nats-server" };

interface Case {
  scenario: "pub-only-4" | "pub-sub" | "req-reply";
  target: Target;
  placement: "any" | "spread" | "same" | "cross";
}

const CASES: Case[] = [
  { scenario: "pub-only-4", target: "natter", placement: "any" },
  { scenario: "pub-only-4", target: "procs", placement: "spread" },
  { scenario: "pub-only-4", target: "nats", placement: "any" },
  { scenario: "pub-sub", target: "natter", placement: "any" },
  { scenario: "pub-sub", target: "procs", placement: "same" },
  { scenario: "pub-sub", target: "procs", placement: "cross" },
  { scenario: "pub-sub", target: "nats", placement: "any" },
  { scenario: "req-reply", target: "natter", placement: "any" },
  { scenario: "req-reply", target: "procs", placement: "same" },
  { scenario: "req-reply", target: "procs", placement: "cross" },
  { scenario: "req-reply", target: "nats", placement: "any" },
];

const label = (c: Case) => `${c.scenario} ${TITLE[c.target]}${c.placement === "same" || c.placement === "cross" ? ` (${c.placement === "same" ? "same worker" : "across workers"})` : ""}`;

async function start(target: Target): Promise<{ server: RunningServer; extraPids: number[] }> {
  if (target === "nats") return { server: await startServer("nats", false), extraPids: [] };
  if (target === "natter") return { server: await startServer("natter", false), extraPids: [] };
  const server = await startServer("natter", false, { args: ["--procs", String(PROCS)] });
  await waitForWorkers(server.port, PROCS);
  return { server, extraPids: childPids(server.pid) };
}

interface Record_ {
  case: string;
  round: number;
  ok: boolean;
  error?: string;
  msgsPerSec?: number;
  p50?: number;
  p99?: number;
  p999?: number;
  serverCpu?: number;
  otherCpu?: number;
}

const bin = buildLoadgen();
killChildrenOnExit();

console.log(`natter bench:procs: ${CASES.length} cases x ${ROUNDS} rounds, ${SIZE} B, ${cpus().length} CPUs (${cpus()[0]?.model})`);
console.log(`versions: ${await serverVersion("natter")}; ${await serverVersion("nats")}`);
const records: Record_[] = [];
const loads: number[] = [];
for (let round = 0; round < ROUNDS; round++) {
  loads.push(loadavg()[0]!);
  console.log(`round ${round + 1}/${ROUNDS} (load average ${loadavg().map((l) => l.toFixed(2)).join(" ")})`);
  // Rotate the order each round.
  const order = CASES.map((_, i) => CASES[(i + round * 3) % CASES.length]!);
  for (const c of order) {
    const rec: Record_ = { case: label(c), round, ok: false };
    let started: Awaited<ReturnType<typeof start>> | null = null;
    const samples = join(tmpdir(), `natter-bench-procs-${process.pid}.lat`);
    try {
      started = await start(c.target);
      const { server, extraPids } = started;
      const latency = c.scenario === "req-reply";
      const args = ["--mode", latency ? "latency" : "throughput", "--port", String(server.port), "--size", String(SIZE),
        "--server-pid", String(server.pid), "--warmup-ms", String(WARMUP_MS), "--duration-ms", String(latency ? LATENCY_MS : DURATION_MS)];
      if (extraPids.length > 0) args.push("--server-pids", extraPids.join(","));
      if (c.scenario === "pub-only-4") args.push("--subs", "0", "--pubs", "4");
      if (c.scenario === "pub-sub") args.push("--subs", "1");
      if (latency) args.push("--samples", samples);
      if (c.placement !== "any") args.push("--placement", c.placement);
      if (c.placement === "same" || c.placement === "cross") args.push("--sub-ports", String(server.port));
      const result: LoadgenResult = await runLoadgen(bin, args, WARMUP_MS + DURATION_MS + 60_000);
      rec.ok = result.ok;
      if (!result.ok) rec.error = result.error;
      else {
        rec.serverCpu = result.cpu?.server;
        rec.otherCpu = result.cpu?.other;
        if (latency) {
          const l = latencyFromSamples(samples);
          Object.assign(rec, { p50: l.p50_us, p99: l.p99_us, p999: l.p999_us });
        } else rec.msgsPerSec = result.msgs_per_sec as number;
      }
    } catch (error) {
      rec.error = (error as Error).message.split("\n")[0];
    } finally {
      await started?.server.stop(!rec.ok);
      rmSync(samples, { force: true });
    }
    records.push(rec);
    const figure = !rec.ok ? `FAILURE: ${rec.error}`
      : rec.msgsPerSec !== undefined ? `${(rec.msgsPerSec / 1e6).toFixed(3)}M msgs/s`
      : `p50 ${rec.p50!.toFixed(1)} µs  p99 ${rec.p99!.toFixed(1)} µs  p99.9 ${rec.p999!.toFixed(1)} µs`;
    console.log(`  ${rec.case.padEnd(52)} ${figure}  (server CPU ${rec.serverCpu?.toFixed(0) ?? "-"}%, other ${rec.otherCpu?.toFixed(0) ?? "-"}%)`);
  }
}

console.log(`\nMedians over ${ROUNDS} rounds (min–max); load average at round starts: ${loads.map((l) => l.toFixed(2)).join(", ")}`);
console.log("| case | figure | server CPU | other CPU |\n|---|---:|---:|---:|");
const fmtRate = (n: number) => `${(n / 1e6).toFixed(2)}M`;
const summary: Record<string, unknown>[] = [];
for (const c of CASES) {
  const name = label(c);
  const rs = records.filter((r) => r.case === name && r.ok);
  const failed = records.filter((r) => r.case === name && !r.ok).length;
  const cpu = spread(rs.map((r) => r.serverCpu ?? 0));
  const other = spread(rs.map((r) => r.otherCpu ?? 0));
  let figure = "-";
  if (c.scenario === "req-reply") {
    const p50 = spread(rs.map((r) => r.p50!));
    const p99 = spread(rs.map((r) => r.p99!));
    if (p50 && p99) figure = `p50 ${p50.median.toFixed(0)} µs (${p50.min.toFixed(0)}–${p50.max.toFixed(0)}), p99 ${p99.median.toFixed(0)} µs (${p99.min.toFixed(0)}–${p99.max.toFixed(0)})`;
    summary.push({ case: name, p50, p99, cpu, other, failed });
  } else {
    const rate = spread(rs.map((r) => r.msgsPerSec!));
    if (rate) figure = `${fmtRate(rate.median)} msgs/s (${fmtRate(rate.min)}–${fmtRate(rate.max)})`;
    summary.push({ case: name, rate, cpu, other, failed });
  }
  console.log(`| ${name} | ${figure}${failed ? ` (${failed} failed)` : ""} | ${cpu ? `${cpu.median.toFixed(0)}%` : "-"} | ${other ? `${other.median.toFixed(0)}%` : "-"} |`);
}
mkdirSync(join(ROOT, "bench", "results"), { recursive: true });
const file = join(ROOT, "bench", "results", `procs-${new Date().toISOString().replace(/[:.]/g, "-")}.json`);
writeFileSync(file, JSON.stringify({ rounds: ROUNDS, loads, summary, records }, null, 2));
console.log(`\nResults: ${file.slice(ROOT.length + 1)}`);
process.exit(records.some((r) => !r.ok) ? 1 : 0);
