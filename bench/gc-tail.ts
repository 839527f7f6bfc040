// Do the slow R3 sync publishes (the p99 tail) coincide with the servers' garbage collections? Lines up the
// publishes bench/r3-sync-latency.ts wrote (LAT_FILE) with each server's JavaScriptCore GC log, every line of
// which was stamped with the time it arrived (ms since the epoch). A GC line is printed when the collection
// ends and holds its pause (`p=<ms>`), so the pause is [stamp - p, stamp]. Reported: how many publishes of all,
// and of those over 1 ms, overlapped a pause on some node (the bench's client and servers share the machine:
// a stamp can be late by a scheduling delay, so each pause is widened by --slack ms at its end).
//
//   # a server wrapper: natter with BUN_JSC_logGC=1, its output stamped line by line
//   NATS_SERVER_BIN=<wrapper> ONLY=nats-server LAT_FILE=/tmp/lat.txt bun bench/r3-sync-latency.ts --rounds 2
//   bun bench/gc-tail.ts /tmp/lat.txt /tmp/gc.*.log [--slack 0.5]
import { readFileSync } from "node:fs";

const args = process.argv.slice(2);
const slackAt = args.indexOf("--slack");
const slack = slackAt >= 0 ? Number(args.splice(slackAt, 2)[1]) : 0.5;
const [latFile, ...gcFiles] = args;
if (latFile === undefined || gcFiles.length === 0) {
  console.error("usage: bun bench/gc-tail.ts <LAT_FILE> <stamped GC log>... [--slack ms]");
  process.exit(2);
}

interface Pause {
  from: number;
  to: number;
  kind: string;
}

/** Each collection's pause, from a log whose lines are "<ms since the epoch> <line>". */
function pauses(file: string): Pause[] {
  const out: Pause[] = [];
  for (const line of readFileSync(file, "utf8").split("\n")) {
    const m = /^(\d+\.\d+) \[GC<[^>]*>: START .*?=> (\w+Collection).*? p=([\d.]+)ms/.exec(line);
    if (m) out.push({ from: Number(m[1]) - Number(m[3]), to: Number(m[1]) + slack, kind: m[2]! });
  }
  return out;
}

const perNode = gcFiles.map((f) => ({ file: f, pauses: pauses(f) }));
const all = perNode.flatMap((n) => n.pauses).sort((a, b) => a.from - b.from);
const overlaps = (start: number, end: number) => all.some((p) => p.from < end && p.to > start);

const rows = readFileSync(latFile, "utf8").trim().split("\n").map((l) => l.split(" "));
const byPlace = new Map<string, { n: number; slow: number; slowInGc: number; inGc: number }>();
for (const [place, startText, usText] of rows) {
  const start = Number(startText), us = Number(usText);
  const s = byPlace.get(place!) ?? { n: 0, slow: 0, slowInGc: 0, inGc: 0 };
  const inGc = overlaps(start, start + us / 1000);
  s.n++;
  if (inGc) s.inGc++;
  if (us > 1000) {
    s.slow++;
    if (inGc) s.slowInGc++;
  }
  byPlace.set(place!, s);
}
for (const n of perNode) {
  const eden = n.pauses.filter((p) => p.kind === "EdenCollection");
  const ms = n.pauses.map((p) => p.to - slack - p.from).sort((a, b) => a - b);
  console.log(`${n.file}: ${n.pauses.length} collections (${eden.length} eden), pause median ${(ms[Math.floor(ms.length / 2)] ?? 0).toFixed(2)} ms, max ${(ms[ms.length - 1] ?? 0).toFixed(2)} ms`);
}
const pct = (a: number, b: number) => (b === 0 ? "-" : `${((100 * a) / b).toFixed(1)}%`);
for (const [place, s] of byPlace) {
  console.log(`${place}: ${s.n} publishes, ${s.slow} over 1 ms (${pct(s.slow, s.n)}); during a GC pause: ${pct(s.slowInGc, s.slow)} of the slow ones, ${pct(s.inGc, s.n)} of all`);
}
