#!/usr/bin/env bun
// The long fuzz run (`npm run fuzz`): natter is started with JetStream and WebSocket, and fuzzed for a
// while; a summary is printed, and every failure's input is written to a JSON file for reproduction.
//
//   bun test/fuzz/run.ts [--duration <s>] [--cases <n>] [--seed <s>] [--concurrency <n>] [--round <n>]
//                        [--families protocol,scenario,connect,jetstream,websocket,mqtt] [--out <dir>]
//                        [--canary-bound <ms>] [--rss-growth <MiB>] [--rss-max <MiB>] [--max-failures <n>]
//   bun test/fuzz/run.ts --seed <s> --case <index>     regenerate and run one case of a run
//   bun test/fuzz/run.ts --replay <failure file>        run the cases written by a failure, one by one, then together
//
// Exit code 0 when nothing failed, 1 otherwise. FUZZ_SEED in the environment sets the seed too.
import { readFileSync } from "node:fs";
import path from "node:path";
import { deserializeCase, FAMILIES, type Family, type SerializedCase } from "./cases.ts";
import { Engine, type EngineOptions, type EngineResult } from "./engine.ts";
import { newSeed } from "./prng.ts";
import { exitOnSignals } from "./server-process.ts";

exitOnSignals();

function usage(): never {
  process.stderr.write(readFileSync(import.meta.filename, "utf8").split("\n").filter((l) => l.startsWith("//")).slice(0, 12).map((l) => l.slice(3)).join("\n") + "\n");
  process.exit(2);
}

const args = process.argv.slice(2);
const flags = new Map<string, string>();
for (let i = 0; i < args.length; i++) {
  const a = args[i]!;
  if (a === "-h" || a === "--help") usage();
  if (!a.startsWith("--")) usage();
  const eq = a.indexOf("=");
  if (eq > 0) flags.set(a.slice(2, eq), a.slice(eq + 1));
  else {
    const v = args[i + 1];
    if (v === undefined || v.startsWith("--")) usage();
    flags.set(a.slice(2), v);
    i++;
  }
}
const num = (k: string, d: number) => {
  const v = flags.get(k);
  if (v === undefined) return d;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) usage();
  return n;
};

const seed = flags.get("seed") ?? process.env.FUZZ_SEED ?? newSeed();
let weights: Partial<Record<Family, number>> | undefined;
if (flags.has("families")) {
  const wanted = flags.get("families")!.split(",");
  for (const f of wanted) if (!FAMILIES.includes(f as Family)) usage();
  weights = Object.fromEntries(FAMILIES.map((f) => [f, wanted.includes(f) ? (f === "scenario" ? 10 : 25) : 0]));
}

const base: EngineOptions = {
  seed,
  concurrency: num("concurrency", 8),
  roundSize: num("round", 200),
  canaryIntervalMs: 100,
  canaryBoundMs: num("canary-bound", 2_000),
  rssGrowthMiB: num("rss-growth", 150),
  rssMaxMiB: num("rss-max", 1_500),
  maxFailures: num("max-failures", 20),
  outDir: path.resolve(flags.get("out") ?? "fuzz-failures"),
  maxPayload: 65_536,
  weights,
  log: (line) => process.stdout.write(`${line}\n`),
};

function summary(r: EngineResult): void {
  const out = process.stdout;
  out.write(`\n==== natter fuzz summary (seed ${r.seed}) ====\n`);
  out.write(`cases: ${r.cases} in ${(r.durationMs / 1000).toFixed(1)} s (${(r.cases / Math.max(1, r.durationMs / 1000)).toFixed(0)}/s)\n`);
  out.write(`by family: ${Object.entries(r.byFamily).map(([k, v]) => `${k} ${v}`).join(", ")}\n`);
  out.write(`outcomes: ${Object.entries(r.outcomes).sort().map(([k, v]) => `${k} ${v}`).join(", ")}\n`);
  out.write(`canary: ${r.canary.rounds} round trips, p50 ${r.canary.p50Ms.toFixed(2)} ms, max ${r.canary.maxMs.toFixed(1)} ms\n`);
  if (r.canary.slowestDuring.length > 0) out.write(`  slowest round trip while these cases were in flight:\n${r.canary.slowestDuring.map((c) => `    ${c.slice(0, 160)}`).join("\n")}\n`);
  if (r.slowCases.length > 0) out.write(`slowest cases: ${r.slowCases.map((c) => `\n  ${c.ms} ms  ${c.what}`).join("")}\n`);
  const rss = r.rssKiB.filter((k) => k > 0).map((k) => Math.round(k / 1024));
  out.write(`server RSS (MiB, per round): ${rss.length > 40 ? `${rss.slice(0, 20).join(",")} … ${rss.slice(-20).join(",")}` : rss.join(",")}\n`);
  if (r.failures.length === 0) out.write("result: OK, no failures\n");
  else {
    out.write(`result: ${r.failures.length} FAILURE(S)\n`);
    for (const f of r.failures) out.write(`- [${f.kind}]${f.repeats ? ` (×${f.repeats})` : ""} ${f.message.split("\n")[0]}\n  ${f.file ? `input: ${f.file}` : "(no file)"}\n`);
  }
}

let result: EngineResult;
if (flags.has("replay")) {
  const file = JSON.parse(readFileSync(flags.get("replay")!, "utf8")) as { seed: string; message: string; cases: SerializedCase[] };
  const cases = file.cases.map(deserializeCase);
  process.stdout.write(`replaying ${cases.length} case(s) from ${flags.get("replay")} (originally: ${file.message.split("\n")[0]})\n`);
  process.stdout.write("one at a time:\n");
  const one = await new Engine({ ...base, seed: file.seed, replay: cases, concurrency: 1, roundSize: 1 }).run();
  summary(one);
  process.stdout.write("all together:\n");
  result = await new Engine({ ...base, seed: file.seed, replay: cases, concurrency: Math.max(1, cases.length), roundSize: cases.length }).run();
  summary(result);
  result.ok &&= one.ok;
} else if (flags.has("case")) {
  process.stdout.write(`seed ${seed}, case ${flags.get("case")}\n`);
  result = await new Engine({ ...base, onlyIndex: num("case", 0), concurrency: 1, roundSize: 1 }).run();
  summary(result);
} else {
  const durationS = flags.has("cases") && !flags.has("duration") ? undefined : num("duration", 600);
  process.stdout.write(`natter fuzz: seed ${seed}${durationS !== undefined ? `, ${durationS} s` : ""}${flags.has("cases") ? `, ${num("cases", 0)} cases` : ""} (repeat with --seed ${seed})\n`);
  result = await new Engine({ ...base, durationMs: durationS === undefined ? undefined : durationS * 1000, cases: flags.has("cases") ? num("cases", 0) : undefined }).run();
  summary(result);
}
process.exit(result.ok ? 0 : 1);
