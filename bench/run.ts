// `npm run bench`: natter and nats-server side by side. For every scenario and size, each round
// starts each server fresh on free ports, drives it with the C load generator, and kills it; the
// order alternates A B B A ... so drift on this noisy machine hits both servers alike.
import { rmSync } from "node:fs";
import { cpus, release, tmpdir } from "node:os";
import { join } from "node:path";
import { buildLoadgen, runLoadgen } from "./loadgen.ts";
import { parseOptions, sizesFor, type BenchOptions } from "./options.ts";
import { printReport, summarize, writeJson, type RunRecord, type Side } from "./report.ts";
import type { Scenario } from "./scenarios.ts";
import { killAll } from "./children.ts";
import { logTail, ROOT, serverTitle, serverVersion, startServer, type ServerKind } from "./servers.ts";
import { latencyFromSamples } from "./stats.ts";
import { evaluateTargets, printTargets } from "./targets.ts";
import { CLUSTER_TARGETS, clusterLoadgenArgs, startCluster, type RunningCluster } from "./cluster.ts";
import { startLeafPair } from "./leaf.ts";

const opts = parseOptions(process.argv.slice(2));
const plan = opts.scenarios.flatMap((scenario) => sizesFor(opts, scenario).map((size) => ({ scenario, size })));
const kinds: Record<Side, ServerKind> = { A: opts.servers[0], B: opts.servers[1] };
const same = kinds.A === kinds.B;
const labels: Record<Side, string> = {
  A: serverTitle(kinds.A) + (same ? " A" : ""),
  B: serverTitle(kinds.B) + (same ? " B" : ""),
};

function timedMs(s: Scenario): number {
  return s.kind === "throughput" ? opts.durationMs : opts.latencyMs;
}

// The server a side runs for a scenario: a baseline scenario puts the relay in B's place.
function kindFor(side: Side, s: Scenario): ServerKind {
  return side === "B" && s.baseline ? s.baseline : kinds[side];
}

// Rough: warm-up + timed phase + server start/stop and connection setup.
const estimateS = plan.reduce((t, p) => t + 2 * opts.rounds * ((opts.warmupMs + timedMs(p.scenario)) / 1000 + 1.0), 0);
console.log(
  `natter bench: ${labels.A} (A) vs ${labels.B} (B), ${plan.length} scenario/size pairs x ${opts.rounds} round(s) x 2 servers` +
    ` = ${plan.length * opts.rounds * 2} runs, about ${Math.ceil(estimateS / 60)} min`,
);
if (opts.dryRun) {
  for (const p of plan) console.log(`  ${p.scenario.name} ${p.size} B: ${p.scenario.description}`);
  process.exit(0);
}

const onSignal = () => {
  killAll();
  process.exit(130);
};
process.on("SIGINT", onSignal);
process.on("SIGTERM", onSignal);
process.on("exit", killAll);

const bin = buildLoadgen();
const versions = { A: await serverVersion(kinds.A), B: await serverVersion(kinds.B) };
const started = new Date();
const records: RunRecord[] = [];
const cannotStart = new Map<string, string>(); // "<kind>[+ws]" → why; not retried for every round

function loadgenArgs(s: Scenario, kind: ServerKind, size: number, port: number, wsPort: number | null, pid: number, samples: string) {
  const args = ["--mode", s.kind, "--port", String(port), "--size", String(size), "--server-pid", String(pid),
    "--warmup-ms", String(opts.warmupMs), "--duration-ms", String(timedMs(s))];
  if (s.kind === "latency") return [...args, "--samples", samples];
  args.push("--subs", String(s.subs));
  if (s.kind === "oneway") args.push("--samples", samples, "--rate", String(s.rate ?? 20_000));
  if (s.pubs) args.push("--pubs", String(s.pubs));
  if (s.subSubjects) args.push("--sub-subject", s.subSubjects);
  if (s.noiseSubs) args.push("--noise-subs", String(s.noiseSubs));
  if (s.queue) args.push("--queue");
  if (s.ws) args.push("--sub-ws", "--ws-port", String(wsPort));
  if (kind === "relay") args.push("--relay");
  return args;
}

async function runOne(side: Side, s: Scenario, size: number, round: number): Promise<RunRecord> {
  const kind = kindFor(side, s);
  const rec: RunRecord = { scenario: s.name, size, side, server: kind, round, ok: false };
  const key = kind + (s.ws ? "+ws" : "") + (s.leaf ? "+leaf" : s.cluster ? "+cluster" : "");
  if (cannotStart.has(key)) return { ...rec, skipped: true, error: cannotStart.get(key) };
  let server;
  try {
    server = s.leaf ? await startLeafPair(kind) : s.cluster ? await startCluster(kind) : await startServer(kind, !!s.ws);
  } catch (e) {
    const msg = (e as Error).message;
    cannotStart.set(key, msg.split("\n")[0]);
    console.log(`  ${msg.replaceAll("\n", "\n    ")}`);
    return { ...rec, error: msg.split("\n")[0] };
  }
  const samples = join(tmpdir(), `natter-bench-${process.pid}-${server.port}.lat`);
  try {
    const timeout = opts.warmupMs + timedMs(s) + 60_000;
    const args = loadgenArgs(s, kind, size, server.port, server.wsPort, server.pid, samples);
    if (s.cluster) args.push(...clusterLoadgenArgs(server as RunningCluster, s, opts.warmupMs));
    const result = await runLoadgen(bin, args, timeout);
    rec.result = result;
    rec.ok = result.ok;
    if (!result.ok) {
      rec.error = `${result.error} (server log: ${server.logFile.slice(ROOT.length + 1)})`;
      rec.serverLogTail = logTail(server.logFile);
    } else if (s.kind !== "throughput") {
      rec.latency = latencyFromSamples(samples);
    }
  } finally {
    await server.stop(!rec.ok);
    rmSync(samples, { force: true });
  }
  return rec;
}

function progressLine(r: RunRecord): string {
  if (!r.ok) return `FAILURE: ${r.error}`;
  const c = r.result!.cpu!;
  const cpu = `gen pub ${c.pub.toFixed(0)}% total ${(c.user + c.sys).toFixed(0)}%, server ${c.server.toFixed(0)}%, other ${c.other.toFixed(0)}%`;
  if (r.latency) {
    const l = r.latency;
    const what = r.result!.mode === "oneway" ? `messages at ${((r.result!.achieved_rate as number) / 1000).toFixed(1)}k/s` : "requests";
    return `p50 ${l.p50_us.toFixed(1)} µs  p99 ${l.p99_us.toFixed(1)} µs  p99.9 ${l.p999_us.toFixed(1)} µs  (${l.count} ${what}; ${cpu})`;
  }
  const rate = r.result!.msgs_per_sec as number;
  return `${(rate / 1e6).toFixed(3)}M msgs/s  ${(r.result!.mb_per_sec as number).toFixed(0)} MB/s  (${cpu})`;
}

const total = plan.length * opts.rounds * 2;
let n = 0;
for (const { scenario, size } of plan) {
  for (let round = 0; round < opts.rounds; round++) {
    const order: Side[] = round % 2 === 0 ? ["A", "B"] : ["B", "A"];
    for (const side of order) {
      const rec = await runOne(side, scenario, size, round);
      records.push(rec);
      n++;
      if (!rec.skipped) {
        const label = scenario.baseline && side === "B" ? serverTitle(scenario.baseline) : labels[side];
        const tag = `[${String(n).padStart(String(total).length)}/${total}] ${scenario.name} ${size} B r${round + 1} ${label}`;
        console.log(`${tag.padEnd(48)} ${progressLine(rec)}`);
      }
    }
  }
}

const rows = summarize(records, plan);
printReport(rows, records, labels, { rounds: opts.rounds, versions });
const targetRows = kinds.A === "natter" && kinds.B === "nats" ? evaluateTargets(rows) : [];
if (targetRows.length) printTargets(targetRows, opts.rounds);
const clusterTargetRows = kinds.A === "natter" && kinds.B === "nats" ? evaluateTargets(rows, CLUSTER_TARGETS).filter((t) => t.status !== "not run") : [];
if (clusterTargetRows.length) printTargets(clusterTargetRows, opts.rounds, "issue 6");

const file = opts.out ?? join(ROOT, "bench", "results", `${started.toISOString().replace(/[:.]/g, "-")}.json`);
writeJson(file, {
  started: started.toISOString(),
  finished: new Date().toISOString(),
  host: { cpus: cpus().length, cpu: cpus()[0]?.model, kernel: release(), bun: Bun.version },
  servers: { A: { kind: kinds.A, label: labels.A, version: versions.A }, B: { kind: kinds.B, label: labels.B, version: versions.B } },
  targets: [...targetRows, ...clusterTargetRows],
  options: { ...opts, scenarios: opts.scenarios.map((s) => s.name) } satisfies Record<keyof BenchOptions, unknown>,
  summary: rows,
  runs: records,
});
console.log(`\nResults: ${file.startsWith(ROOT) ? file.slice(ROOT.length + 1) : file}`);
process.exit(records.some((r) => !r.ok) ? 1 : 0);
