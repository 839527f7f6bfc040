// How much of natter's memory under load is the runtime's (issue 20: "RSS under every bench scenario ≤ 2×
// nats-server's"). The bench's single-server loads against three servers, rounds alternating: natter
// (bin/natter), nats-server, and bench/floor-server.ts, the least NATS server Bun can run (no accounts,
// limits, monitoring or validation; no per-message garbage but a new subject's string). Per scenario:
// the servers' RSS at the end of the timed phase (the load generator's --server-pid reading, as the bench's)
// and their throughput or latency (p99 and p99.9). What the floor server holds any server on Bun holds; natter over the
// floor is natter's own, and the floor over nats-server is the runtime's.
//
//   bun bench/runtime-floor.ts [--rounds 3] [--scenario pub-only,pub-sub,...] [--size 16,128,1024]
//                              [--duration 2] [--warmup 0.5] [--nats-server PATH]
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { rmSync } from "node:fs";
import { buildLoadgen, runLoadgen } from "./loadgen.ts";
import { track, untrack, killChildrenOnExit } from "./children.ts";
import { freePort, ROOT, rssKb } from "./servers.ts";
import { waitForInfo } from "./natter-log.ts";
import { numberArg, stringArg } from "./args.ts";
import { findScenario, type Scenario } from "./scenarios.ts";
import { defaultNatsServerBin } from "./references.ts";
import { finiteMedian, latencyFromSamples } from "./stats.ts";

const ROUNDS = numberArg("rounds", 3);
const WARMUP_MS = numberArg("warmup", 0.5) * 1000;
const DURATION_MS = numberArg("duration", 2) * 1000;
const SCENARIOS = stringArg("scenario", "pub-only,pub-sub,fan-out-10,queue-10,req-reply,latency-20k").split(",");
const SIZES = stringArg("size", "16,128,1024").split(",").map(Number);
const NATS_BIN = stringArg("nats-server", defaultNatsServerBin());

type Side = "floor" | "natter" | "nats-server";
const SIDES: Side[] = ["floor", "natter", "nats-server"];

killChildrenOnExit();

function command(side: Side, port: number): string[] {
  if (side === "floor") return [process.execPath, join(ROOT, "bench", "floor-server.ts"), "--port", String(port)];
  if (side === "natter") return [join(ROOT, "bin", "natter"), "-a", "127.0.0.1", "-p", String(port)];
  return [NATS_BIN, "-a", "127.0.0.1", "-p", String(port)];
}

interface Measured {
  rssMiB: number;
  /** msgs/s (throughput) or p99 µs (latency, one-way). */
  figure: number;
  /** Latency, one-way: p99.9 µs. */
  tail: number;
}

function loadgenArgs(s: Scenario, size: number, port: number, pid: number, samples: string): string[] {
  const args = ["--mode", s.kind, "--port", String(port), "--size", String(size), "--server-pid", String(pid),
    "--warmup-ms", String(WARMUP_MS), "--duration-ms", String(DURATION_MS)];
  if (s.kind === "latency") return [...args, "--samples", samples];
  args.push("--subs", String(s.subs));
  if (s.kind === "oneway") args.push("--samples", samples, "--rate", String(s.rate ?? 20_000));
  if (s.pubs) args.push("--pubs", String(s.pubs));
  if (s.queue) args.push("--queue");
  return args;
}

async function measure(side: Side, s: Scenario, size: number): Promise<Measured> {
  const port = await freePort();
  const proc = Bun.spawn(command(side, port), { cwd: ROOT, stdin: "ignore", stdout: "ignore", stderr: "ignore" });
  track(proc);
  const samples = join(tmpdir(), `runtime-floor-${process.pid}.bin`);
  try {
    await waitForInfo(port);
    const result = await runLoadgen(buildLoadgen(), loadgenArgs(s, size, port, proc.pid, samples), WARMUP_MS + DURATION_MS + 60_000);
    if (!result.ok) throw new Error(`${side}, ${s.name} ${size} B: ${result.error}`);
    const rssMiB = (typeof result.server_rss_kb === "number" ? result.server_rss_kb : (rssKb(proc.pid) ?? NaN)) / 1024; // latency modes: read now
    if (s.kind === "throughput") return { rssMiB, figure: Number(result.msgs_per_sec), tail: NaN };
    const latency = latencyFromSamples(samples);
    return { rssMiB, figure: latency.p99_us, tail: latency.p999_us };
  } finally {
    proc.kill("SIGKILL");
    await proc.exited;
    untrack(proc);
    rmSync(samples, { force: true });
    rmSync(`${samples}.start`, { force: true });
  }
}

const plan: { s: Scenario; size: number }[] = [];
for (const name of SCENARIOS) {
  const s = findScenario(name);
  if (s === undefined || s.ws || s.cluster || s.leaf || s.baseline) throw new Error(`runtime-floor: no single-server TCP scenario "${name}"`);
  const sizes = s.kind === "throughput" ? SIZES : [128];
  for (const size of sizes) plan.push({ s, size });
}

console.log(`runtime floor: ${ROUNDS} rounds, warm-up ${WARMUP_MS} ms, timed ${DURATION_MS} ms; nats-server ${NATS_BIN}; load ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
console.log("scenario              size | RSS MiB: floor  natter  nats-server | natter/floor floor/nats natter/nats | figure: floor natter nats-server");
for (const { s, size } of plan) {
  const got = new Map<Side, Measured[]>(SIDES.map((side) => [side, []]));
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? SIDES : [...SIDES].reverse();
    for (const side of order) got.get(side)!.push(await measure(side, s, size));
  }
  const rss = (side: Side) => finiteMedian(got.get(side)!.map((m) => m.rssMiB));
  const median = (side: Side, of: (m: Measured) => number) => finiteMedian(got.get(side)!.map(of));
  const figure = (side: Side) =>
    s.kind === "throughput"
      ? `${(median(side, (m) => m.figure) / 1e6).toFixed(2)}M`
      : `${median(side, (m) => m.figure).toFixed(0)}/${median(side, (m) => m.tail).toFixed(0)}`;
  const unit = s.kind === "throughput" ? "msgs/s" : "µs p99/p99.9";
  console.log(
    `${s.name.padEnd(20)} ${String(size).padStart(5)} | ${rss("floor").toFixed(1).padStart(12)} ${rss("natter").toFixed(1).padStart(7)} ${rss("nats-server").toFixed(1).padStart(12)} | ` +
      `${(rss("natter") / rss("floor")).toFixed(2).padStart(11)}× ${(rss("floor") / rss("nats-server")).toFixed(2).padStart(9)}× ${(rss("natter") / rss("nats-server")).toFixed(2).padStart(10)}× | ` +
      `${figure("floor")} ${figure("natter")} ${figure("nats-server")} ${unit}`,
  );
  // A latency load's tail moves a lot from round to round (the 2-core machine's scheduling): each round's, in order.
  if (s.kind !== "throughput") {
    for (const side of SIDES) console.log(`  ${side.padEnd(11)} rounds p99/p99.9 µs: ${got.get(side)!.map((m) => `${m.figure.toFixed(0)}/${m.tail.toFixed(0)}`).join(" ")}`);
  }
}
console.log(`load at the end ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
