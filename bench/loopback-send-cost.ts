// What sending over loopback TCP costs the sender's thread in the kernel, by write size, without a server:
// the floor under natter's fan-out rows with large payloads, where one event loop makes every send (README,
// Benchmarks: "Fan-out 1:10 1 KiB against 2.12.0"). Builds bench/loopback/send-cost.c, runs it for each write
// size in turn (rounds alternate the sizes), and prints medians [min–max] of the sender's CPU time per KiB (all
// but a fraction of a ns of it in the kernel) and of the two reader threads' CPU per KiB (what the load
// generator's subscriber threads pay).
// `bun bench/loopback-send-cost.ts [--rounds 3] [--seconds 1.5] [--subs 10]`
import { mkdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { numberArg } from "./args.ts";
import { ROOT } from "./servers.ts";

const SOURCE = join(ROOT, "bench", "loopback", "send-cost.c");
const BIN = join(ROOT, "bench", "build", "loopback-send-cost");
/**
 * Loopback's MSS (MTU 65536 less the IP and TCP headers and the timestamp option): a write that is a multiple
 * of it leaves no short segment at its end, and that segment costs the sender about what a full one does.
 */
const LOOPBACK_MSS = 65483;
const CHUNKS = [...[16, 64, 128, 256, 512].map((kib) => kib * 1024), 2 * LOOPBACK_MSS, 4 * LOOPBACK_MSS];
const rounds = numberArg("rounds", 3);
const seconds = numberArg("seconds", 1.5);
const subs = numberArg("subs", 10);

interface Sample {
  gbPerSec: number;
  senderUserNsPerKiB: number;
  senderSysNsPerKiB: number;
  readersNsPerKiB: number;
  shortWrites: number;
}

function build(): void {
  let built = 0;
  try {
    built = statSync(BIN).mtimeMs;
  } catch {}
  if (built > statSync(SOURCE).mtimeMs) return;
  mkdirSync(join(ROOT, "bench", "build"), { recursive: true });
  const p = Bun.spawnSync(["gcc", "-O2", "-Wall", "-pthread", "-o", BIN, SOURCE], { stderr: "pipe" });
  if (p.exitCode !== 0) throw new Error(`building ${SOURCE} failed:\n${p.stderr}`);
}

function run(chunk: number): Sample {
  const p = Bun.spawnSync([BIN, String(chunk), String(seconds), String(subs)], { stdout: "pipe", stderr: "pipe" });
  if (p.exitCode !== 0) throw new Error(`send-cost ${chunk} failed: ${p.stderr}`);
  return JSON.parse(p.stdout.toString()) as Sample;
}

function spread(values: number[], digits: number): string {
  const sorted = [...values].sort((a, b) => a - b);
  const f = (v: number) => v.toFixed(digits);
  return `${f(sorted[Math.floor(sorted.length / 2)]!)} [${f(sorted[0]!)}–${f(sorted[sorted.length - 1]!)}]`;
}

build();
const load = (await Bun.file("/proc/loadavg").text()).split(" ").slice(0, 3).join(" ");
console.log(`loopback send cost: ${subs} sockets, ${rounds} round(s) of ${seconds} s per write size; load average ${load}`);
const samples = new Map<number, Sample[]>(CHUNKS.map((chunk) => [chunk, []]));
for (let round = 0; round < rounds; round++) {
  // Alternate the order, so that drift on a shared machine hits every size alike.
  const order = round % 2 === 0 ? CHUNKS : [...CHUNKS].reverse();
  for (const chunk of order) samples.get(chunk)!.push(run(chunk));
}
console.log("write size    GB/s                sender CPU ns/KiB      readers ns/KiB         short writes");
for (const chunk of CHUNKS) {
  const s = samples.get(chunk)!;
  console.log(
    `${(chunk % 1024 === 0 ? `${chunk / 1024} KiB` : `${chunk / LOOPBACK_MSS} × MSS`).padStart(10)}  ${spread(s.map((x) => x.gbPerSec), 2).padEnd(18)}  ${spread(s.map((x) => x.senderSysNsPerKiB + x.senderUserNsPerKiB), 0).padEnd(21)}  ${spread(s.map((x) => x.readersNsPerKiB), 0).padEnd(21)}  ${s.reduce((n, x) => n + x.shortWrites, 0)}`,
  );
}
console.log(`load average at the end ${(await Bun.file("/proc/loadavg").text()).split(" ").slice(0, 3).join(" ")}`);
