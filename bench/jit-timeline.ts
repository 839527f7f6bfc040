// What JavaScriptCore compiles, and where its optimized code fails its speculations, from natter's first
// SUB on: one natter (bin/natter) under the load generator's request-reply (or paced one-way) load, with
// JavaScriptCore's logs on (BUN_JSC_reportBaselineCompileTimes / reportDFGCompileTimes /
// reportFTLCompileTimes / printEachOSRExit), each log line stamped when it arrives. It answers "which
// functions are compiled or de-optimized after the warm-up (src/warm-up.ts) ended, under clients' traffic?".
//
//   bun bench/jit-timeline.ts [--scenario req-reply|latency-20k] [--warmup 0.5] [--duration 3]
//                             [--interval-ms 250] [--top 25] [--log FILE] [--natter PATH] [--no-exits]
//                             [--settle MS]
//
// Times are ms from the load generator's start (its responder's SUB, the first, starts natter's warm-up a
// few ms later). Per interval: compilations per tier and their ms, speculation failures (OSR exits); then
// the functions compiled or exiting after the warm-up's end, most first. --log keeps the stamped lines.
// --natter runs another natter (a wrapper script, e.g. an old commit's) instead of this checkout's.
import { writeFileSync } from "node:fs";
import net from "node:net";
import { join } from "node:path";
import { buildLoadgen, runLoadgen } from "./loadgen.ts";
import { track, untrack, killChildrenOnExit } from "./children.ts";
import { freePort, ROOT } from "./servers.ts";
import { stampLines, waitForInfo, type Stamped } from "./natter-log.ts";
import { numberArg, stringArg } from "./args.ts";

const SCENARIO = stringArg("scenario", "req-reply");
const WARMUP_MS = numberArg("warmup", 0.5) * 1000;
const DURATION_MS = numberArg("duration", 3) * 1000;
const INTERVAL_MS = numberArg("interval-ms", 250);
const TOP = numberArg("top", 25);
const LOG = stringArg("log", "");
const NATTER = stringArg("natter", join(ROOT, "bin", "natter"));
/** printEachOSRExit dumps the registers at every exit: it slows natter several-fold while exits are frequent. */
const EXITS = !process.argv.includes("--no-exits");
/**
 * --settle MS: a client subscribes first (the warm-up starts) and the load generator starts MS later: then
 * what is compiled and exits under the load is what the warm-up's code met, alone (the exits' logging slows
 * a warm-up that runs beside the load several-fold, and the load's own profile would mix into its code).
 */
const SETTLE_MS = numberArg("settle", 0);

killChildrenOnExit();


const port = await freePort();
const env = {
  ...process.env,
  BUN_JSC_reportBaselineCompileTimes: "1",
  BUN_JSC_reportDFGCompileTimes: "1",
  BUN_JSC_reportFTLCompileTimes: "1",
  ...(EXITS ? { BUN_JSC_printEachOSRExit: "1" } : {}),
};
const proc = Bun.spawn([NATTER, "-a", "127.0.0.1", "-p", String(port), "-D"], { cwd: ROOT, env, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
track(proc);
let origin = performance.now();
const lines: Stamped[] = [];
// Stamped in ms from the load generator's start (negative before it).
const clock = () => performance.now() - origin;
const collecting = Promise.all([stampLines(proc.stdout, clock, lines), stampLines(proc.stderr, clock, lines)]);

await waitForInfo(port);

let settler: net.Socket | null = null;
if (SETTLE_MS > 0) {
  settler = net.connect(port, "127.0.0.1");
  settler.on("error", () => {});
  settler.write("CONNECT {\"verbose\":false}\r\nSUB jit.timeline.settle 1\r\nPING\r\n");
  await Bun.sleep(SETTLE_MS);
}
const bin = buildLoadgen();
const oneway = SCENARIO === "latency-20k";
const args = ["--mode", oneway ? "oneway" : "latency", "--port", String(port), "--size", "128", "--warmup-ms", String(WARMUP_MS), "--duration-ms", String(DURATION_MS)];
if (oneway) args.push("--subs", "1", "--rate", "20000");
const startedAt = lines.length;
origin = performance.now();
const result = await runLoadgen(bin, args, WARMUP_MS + DURATION_MS + 60_000);
await Bun.sleep(200); // the last lines
settler?.destroy();
proc.kill("SIGTERM");
await proc.exited;
untrack(proc);
await collecting;
for (const l of lines.slice(0, startedAt)) l.t = -1; // before the load generator's start (start-up's own compilations)
if (LOG) writeFileSync(LOG, lines.map((l) => `${l.t.toFixed(1)} ${l.line}`).join("\n") + "\n");

const optimized = /^Optimized (\S+?)#\S+:\[.*? using (Baseline|DFG|FTL\w*) with \S+ into \d+ bytes in ([\d.]+) ms/;
const exited = /^Speculation failure in (\S+?)#\S+:\[.*?, (\w+), \d+.*?\] @ exit #\d+ \((bc#\d+), (\w+)\)/;
const warmed = /Hot path warmed up: (\d+) synthetic messages in (\d+) ms \((\d+) ms of CPU/;
const warm = lines.find((l) => warmed.test(l.line));
const warmEnd = warm ? warm.t : NaN;
const w = warm ? warmed.exec(warm.line)! : null;
console.log(`natter ${NATTER} under ${SCENARIO}, load generator: ${result.ok ? `p50 ${Number(result.p50_us).toFixed(0)} µs, p99 ${Number(result.p99_us).toFixed(0)} µs, p99.9 ${Number(result.p999_us).toFixed(0)} µs` : result.error}`);
console.log(w ? `warm-up: ${w[1]} messages, ended at ${warmEnd.toFixed(0)} ms (lasted ${w[2]} ms, ${w[3]} ms of CPU)` : "warm-up: no log line (NATTER_WARM_UP=0?)");
console.log(`timed phase from ${WARMUP_MS} ms to ${WARMUP_MS + DURATION_MS} ms\n`);

interface Bucket {
  baseline: number;
  baselineMs: number;
  dfg: number;
  dfgMs: number;
  ftl: number;
  ftlMs: number;
  exits: number;
}
const buckets: Bucket[] = [];
/** A function compiled or exiting after the warm-up: its compilations (tier@ms), its exits by site and kind. */
interface After {
  compiles: string[];
  exits: Map<string, number>;
  ms: number;
}
const after = new Map<string, After>();
for (const { t, line } of lines) {
  if (t < 0) continue;
  const k = Math.floor(t / INTERVAL_MS);
  const b = (buckets[k] ??= { baseline: 0, baselineMs: 0, dfg: 0, dfgMs: 0, ftl: 0, ftlMs: 0, exits: 0 });
  const o = optimized.exec(line);
  const x = o ? null : exited.exec(line);
  if (o) {
    const ms = Number(o[3]);
    if (o[2] === "Baseline") (b.baseline++, (b.baselineMs += ms));
    else if (o[2] === "DFG") (b.dfg++, (b.dfgMs += ms));
    else (b.ftl++, (b.ftlMs += ms));
  } else if (x) b.exits++;
  if (!(t > warmEnd) || (!o && !x)) continue;
  const name = (o ?? x)![1]!;
  const entry: After = after.get(name) ?? { compiles: [], exits: new Map(), ms: 0 };
  after.set(name, entry);
  if (o) {
    entry.compiles.push(`${o[2]}@${t.toFixed(0)}`);
    entry.ms += Number(o[3]);
  } else {
    const why = `${x![2]} ${x![3]} ${x![4]}`;
    entry.exits.set(why, (entry.exits.get(why) ?? 0) + 1);
  }
}
console.log("per interval from the load generator's start: compilations (count / ms) and speculation failures");
console.log(`  ${"from ms".padStart(7)} | ${"Baseline".padStart(12)} ${"DFG".padStart(12)} ${"FTL".padStart(12)} | ${"exits".padStart(6)}`);
const cm = (n: number, ms: number) => `${n} / ${ms.toFixed(1)}`.padStart(12);
for (let k = 0; k < buckets.length; k++) {
  const b = buckets[k] ?? { baseline: 0, baselineMs: 0, dfg: 0, dfgMs: 0, ftl: 0, ftlMs: 0, exits: 0 };
  console.log(`  ${String(k * INTERVAL_MS).padStart(7)} | ${cm(b.baseline, b.baselineMs)} ${cm(b.dfg, b.dfgMs)} ${cm(b.ftl, b.ftlMs)} | ${String(b.exits).padStart(6)}`);
}
let total = 0;
let timed = 0;
let timedCount = 0;
let afterWarmUp = 0;
let last = 0;
for (const { t, line } of lines) {
  const o = t >= 0 ? optimized.exec(line) : null;
  if (o === null) continue;
  const ms = Number(o[3]);
  total += ms;
  if (t >= WARMUP_MS) (timed += ms, timedCount++);
  if (t > warmEnd) afterWarmUp += ms;
  last = t;
}
console.log(`summary: compilations ${total.toFixed(0)} ms in all, ${afterWarmUp.toFixed(0)} ms after the warm-up's end, ${timed.toFixed(0)} ms (${timedCount}) in the timed phase; the last one at ${last.toFixed(0)} ms`);
console.log(`\nafter the warm-up's end: functions compiled or exiting (${after.size}), by compile ms and exits`);
const rows = [...after].sort((a, b) => b[1].ms + [...b[1].exits.values()].reduce((s, n) => s + n, 0) / 100 - (a[1].ms + [...a[1].exits.values()].reduce((s, n) => s + n, 0) / 100));
for (const [name, e] of rows.slice(0, TOP)) {
  const exits = [...e.exits].sort((a, b) => b[1] - a[1]).slice(0, 3).map(([why, n]) => `${n}× ${why}`).join(", ");
  console.log(`  ${name.padEnd(32)} ${e.ms.toFixed(1).padStart(6)} ms  ${e.compiles.slice(0, 6).join(" ")}${e.compiles.length > 6 ? ` (+${e.compiles.length - 6})` : ""}${exits ? `  exits: ${exits}` : ""}`);
}
