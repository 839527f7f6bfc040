// `npm run bench`: natter and nats-server side by side. For every scenario and size, each round
// starts each server fresh on free ports, drives it with the C load generator, and kills it; the
// order rotates (A B, B A; with two references A B1 B2, B1 B2 A, B2 A B1, ...) so drift on this noisy
// machine hits every server alike. With several nats-server references (--against; by default 2.9.10
// and 2.12 when built) natter's rounds are shared and each reference gets its own tables.
import { rmSync } from "node:fs";
import { cpus, loadavg, release, tmpdir } from "node:os";
import { join } from "node:path";
import { buildLoadgen, runLoadgen } from "./loadgen.ts";
import { parseOptions, sizesFor, type BenchOptions } from "./options.ts";
import { printReport, summarize, writeJson, type RunRecord, type Side, type SummaryRow } from "./report.ts";
import type { Scenario } from "./scenarios.ts";
import { killChildrenOnExit } from "./children.ts";
import { logTail, natterEntry, ROOT, rssKb, serverTitle, serverVersion, startServer, type ServerKind } from "./servers.ts";
import { latencyFromSamples } from "./stats.ts";
import { evaluateTargets, MEMORY_TAIL_TARGETS, printTargets, type TargetRow } from "./targets.ts";
import { CLUSTER_TARGETS, clusterLoadgenArgs, startCluster, type RunningCluster } from "./cluster.ts";
import { startLeafPair } from "./leaf.ts";
import { resolveReferences, type Reference } from "./references.ts";
import { childPids, waitForWorkers } from "./workers.ts";

const opts = parseOptions(process.argv.slice(2));
const plan = opts.scenarios.flatMap((scenario) => sizesFor(opts, scenario).map((size) => ({ scenario, size })));
const kinds: Record<Side, ServerKind> = { A: opts.servers[0], B: opts.servers[1] };
const same = kinds.A === kinds.B;

const resolved = resolveReferences(opts.against);
for (const note of resolved.notes) console.log(`note: ${note}`);
if (resolved.errors.length || resolved.refs.length === 0) {
  for (const e of resolved.errors) console.error(`bench: ${e}`);
  if (resolved.refs.length === 0) console.error("bench: no nats-server to compare with");
  process.exit(2);
}
// Side B runs once per reference when it is nats-server; A (natter, or nats-server in a harness check) once.
const references: (Reference | null)[] = kinds.B === "nats" ? resolved.refs : [null];
const refA: Reference | null = kinds.A === "nats" ? resolved.refs[0]! : null;

function title(kind: ServerKind, ref: Reference | null): string {
  return kind === "nats" && ref ? `nats-server ${ref.name}` : serverTitle(kind);
}
const natterProcs = (kind: ServerKind) => (kind === "natter" ? opts.natterProcs : 1);
const labelA = title(kinds.A, refA) + (natterProcs(kinds.A) > 1 ? ` --procs ${opts.natterProcs}` : "") + (same ? " A" : "");
const labelB = (ref: Reference | null) => title(kinds.B, ref) + (same ? " B" : "");

function timedMs(s: Scenario): number {
  return s.kind === "throughput" ? opts.durationMs : opts.latencyMs;
}

// One server run of a round: side A, or side B against one reference (null: the relay or a non-nats B).
interface Slot {
  side: Side;
  ref: Reference | null;
}

// The runs of a scenario's round: a baseline scenario puts the relay in B's place, once.
function slotsFor(s: Scenario): Slot[] {
  const bs: Slot[] = s.baseline ? [{ side: "B", ref: null }] : references.map((ref) => ({ side: "B" as Side, ref }));
  return [{ side: "A", ref: refA }, ...bs];
}

function kindFor(side: Side, s: Scenario): ServerKind {
  return side === "B" && s.baseline ? s.baseline : kinds[side];
}

// Rough: warm-up + timed phase + server start/stop and connection setup.
const runsPerRound = (s: Scenario) => slotsFor(s).length;
const totalRuns = plan.reduce((t, p) => t + opts.rounds * runsPerRound(p.scenario), 0);
const estimateS = plan.reduce((t, p) => t + runsPerRound(p.scenario) * opts.rounds * ((opts.warmupMs + timedMs(p.scenario)) / 1000 + 1.0), 0);
console.log(
  `natter bench: ${labelA} (A) vs ${references.map(labelB).join(" and ")} (B), ${plan.length} scenario/size pairs x ${opts.rounds} round(s)` +
    ` = ${totalRuns} runs, about ${Math.ceil(estimateS / 60)} min`,
);
if (kinds.A === "natter" || kinds.B === "natter") console.log(`natter runs as ${natterEntry()} (NATTER_FROM_SOURCES=1: src/main.ts)`);
if (opts.dryRun) {
  for (const p of plan) console.log(`  ${p.scenario.name} ${p.size} B: ${p.scenario.description}`);
  process.exit(0);
}

killChildrenOnExit();

const bin = buildLoadgen();
const versionA = refA ? refA.version : await serverVersion(kinds.A);
const versionB = async (ref: Reference | null) => (ref ? ref.version : await serverVersion(kinds.B));
const started = new Date();
// How busy the machine was: tails above all depend on it (the load average is printed with the tables).
const loadAverage = () => loadavg().map((l) => Number(l.toFixed(2)));
const startLoad = loadAverage();
console.log(`load average at start: ${startLoad.join(", ")} (${cpus().length} cores)`);
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

async function runOne({ side, ref }: Slot, s: Scenario, size: number, round: number): Promise<RunRecord> {
  const kind = kindFor(side, s);
  const natsBin = kind === "nats" ? ref?.bin : undefined;
  const rec: RunRecord = { scenario: s.name, size, side, server: kind, round, ok: false };
  if (side === "B" && kind === "nats" && ref) rec.reference = ref.name;
  const key = kind + (natsBin ?? "") + (s.ws ? "+ws" : "") + (s.leaf ? "+leaf" : s.cluster ? "+cluster" : "");
  if (cannotStart.has(key)) return { ...rec, skipped: true, error: cannotStart.get(key) };
  let server;
  // natter --procs N (--natter-procs): the supervisor's workers, counted with it (CPU, RSS).
  let workers: number[] = [];
  try {
    const procs = s.leaf || s.cluster ? 1 : natterProcs(kind);
    if (s.leaf) server = await startLeafPair(kind, natsBin);
    else if (s.cluster) server = await startCluster(kind, natsBin);
    else server = await startServer(kind, !!s.ws, { natsBin, args: procs > 1 ? ["--procs", String(procs)] : [] });
    if (procs > 1) {
      await waitForWorkers(server.port, procs).catch(async (e) => {
        await server!.stop(true);
        throw e;
      });
      workers = childPids(server.pid);
    }
    rec.startRssKb = rssWithWorkers(server.pid, workers);
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
    if (workers.length > 0) {
      args.push("--server-pids", workers.join(","));
      if ((s.pubs ?? 1) > 1) args.push("--placement", "spread"); // the kernel's choice may put every publisher on one worker
    }
    if (s.cluster) args.push(...clusterLoadgenArgs(server as RunningCluster, s, opts.warmupMs));
    const result = await runLoadgen(bin, args, timeout);
    rec.result = result;
    // The generator samples RSS at the end of its timed phase (throughput, one-way); else right after it.
    rec.rssKb = workers.length === 0 && typeof result.server_rss_kb === "number" ? result.server_rss_kb : rssWithWorkers(server.pid, workers);
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

/** A server's RSS, with its workers' when it is a `natter --procs` supervisor. */
function rssWithWorkers(pid: number, workers: number[]): number | null {
  let total = 0;
  for (const p of [pid, ...workers]) {
    const kb = rssKb(p);
    if (kb === null) return null;
    total += kb;
  }
  return total;
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

let n = 0;
for (const { scenario, size } of plan) {
  const slots = slotsFor(scenario);
  for (let round = 0; round < opts.rounds; round++) {
    // Rotate: each server takes each place in the order equally often.
    const order = slots.map((_, k) => slots[(k + round) % slots.length]!);
    for (const slot of order) {
      const rec = await runOne(slot, scenario, size, round);
      records.push(rec);
      n++;
      if (!rec.skipped) {
        const label = scenario.baseline && slot.side === "B" ? serverTitle(scenario.baseline) : slot.side === "A" ? labelA : labelB(slot.ref);
        const tag = `[${String(n).padStart(String(totalRuns).length)}/${totalRuns}] ${scenario.name} ${size} B r${round + 1} ${label}`;
        console.log(`${tag.padEnd(56)} ${progressLine(rec)}`);
      }
    }
  }
}

// One comparison per reference: natter's runs with that reference's (the relay's go with the first).
interface Comparison {
  reference: string | null;
  labels: { A: string; B: string };
  versions: { A: string; B: string };
  summary: SummaryRow[];
  targets: TargetRow[];
}
const comparisons: Comparison[] = [];
for (const [k, ref] of references.entries()) {
  const baselines = new Set(plan.filter((p) => p.scenario.baseline).map((p) => p.scenario.name));
  const mine = records.filter((r) => (baselines.has(r.scenario) ? k === 0 : r.side === "A" || r.reference === (ref?.name ?? undefined)));
  const rows = summarize(mine, k === 0 ? plan : plan.filter((p) => !p.scenario.baseline));
  const labels = { A: labelA, B: labelB(ref) };
  const versions = { A: versionA, B: await versionB(ref) };
  if (references.length > 1) console.log(`\n==== ${labelA} against ${labels.B} ====`);
  printReport(rows, mine, labels, { rounds: opts.rounds, versions });
  const targets: TargetRow[] = [];
  if (kinds.A === "natter" && kinds.B === "nats") {
    const against = labels.B;
    const issue3 = evaluateTargets(rows);
    if (issue3.length) printTargets(issue3, opts.rounds, "issue 3", against);
    const issue20 = evaluateTargets(rows, MEMORY_TAIL_TARGETS).filter((t) => t.status !== "not run");
    if (issue20.length) printTargets(issue20, opts.rounds, "issue 20", against);
    const issue6 = evaluateTargets(rows, CLUSTER_TARGETS).filter((t) => t.status !== "not run");
    if (issue6.length) printTargets(issue6, opts.rounds, "issue 6", against);
    targets.push(...issue3, ...issue20, ...issue6);
  }
  comparisons.push({ reference: ref?.name ?? null, labels, versions, summary: rows, targets });
}

const file = opts.out ?? join(ROOT, "bench", "results", `${started.toISOString().replace(/[:.]/g, "-")}.json`);
writeJson(file, {
  started: started.toISOString(),
  finished: new Date().toISOString(),
  host: { cpus: cpus().length, cpu: cpus()[0]?.model, kernel: release(), bun: Bun.version },
  load: { start: startLoad, end: loadAverage() },
  servers: {
    A: { kind: kinds.A, label: labelA, version: versionA },
    B: { kind: kinds.B, label: comparisons[0]!.labels.B, version: comparisons[0]!.versions.B },
  },
  references: resolved.refs,
  // The first reference's tables, as before; every reference's in `comparisons`.
  targets: comparisons[0]!.targets,
  options: { ...opts, scenarios: opts.scenarios.map((s) => s.name) } satisfies Record<keyof BenchOptions, unknown>,
  summary: comparisons[0]!.summary,
  comparisons,
  runs: records,
});
console.log(`\nload average at start ${startLoad.join(", ")}, at the end ${loadAverage().join(", ")} (${cpus().length} cores)`);
console.log(`Results: ${file.startsWith(ROOT) ? file.slice(ROOT.length + 1) : file}`);
process.exit(records.some((r) => !r.ok) ? 1 : 0);
