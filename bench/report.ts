// Turns the rounds into summary rows, prints the side-by-side tables and writes the JSON file.
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import type { LoadgenResult } from "./loadgen.ts";
import type { Scenario } from "./scenarios.ts";
import type { ServerKind } from "./servers.ts";
import { spread, type LatencyPercentiles, type Spread } from "./stats.ts";

export type Side = "A" | "B";

// On this 2-core, shared machine ±15% is noise: ratios inside the band read as "equal".
export const NOISE_BAND = 0.15;
// A round during which other processes used more than this (% of one core) is marked "busy".
export const BUSY_OTHER_LOAD = 30;
// A publisher thread above this (% of one core, median) may be what limits the figure.
export const GENERATOR_BOUND = 80;

export interface RunRecord {
  scenario: string;
  size: number;
  side: Side;
  server: ServerKind;
  round: number;
  ok: boolean;
  error?: string;
  skipped?: boolean; // not run: this server could not start earlier
  result?: LoadgenResult;
  latency?: LatencyPercentiles;
  serverLogTail?: string;
  /** B side: the reference (nats-server binary) this run measured, by name (bench/references.ts). */
  reference?: string;
  /** The server's RSS (KiB) right after it answered INFO, before any load. */
  startRssKb?: number | null;
  /** The server's RSS (KiB) at the end of the timed phase, with the load's connections still open. */
  rssKb?: number | null;
}

export type Metric = "msgs/s" | "p50" | "p99" | "p99.9";
/** What a target compares: a figure of the scenario, its server's RSS under the load, or RSS at start. */
export type TargetMetric = Metric | "rss" | "start-rss";

export interface SummaryRow {
  /** B is this baseline (the Bun relay), not the B server: reported apart. */
  baseline: string | null;
  scenario: string;
  size: number;
  metric: Metric;
  unit: string;
  higherIsBetter: boolean;
  A: Spread | null;
  B: Spread | null;
  mbA: Spread | null; // MB/s of payload, throughput rows
  mbB: Spread | null;
  /** Server RSS in MiB at the end of the timed phase (cluster and leaf runs: node A), per side. */
  rssA: Spread | null;
  rssB: Spread | null;
  /** Server RSS in MiB right after start, before the load. */
  startRssA: Spread | null;
  startRssB: Spread | null;
  failures: { A: number; B: number };
  rounds: { A: number; B: number };
  ratio: number | null; // median A / median B; null if either side failed
  cpu: { A: CpuSummary | null; B: CpuSummary | null };
  busyRounds: number; // rounds (either side) where other work used > BUSY_OTHER_LOAD
}

export interface CpuSummary {
  pub: number; // % of one core, median over rounds
  subs: number;
  total: number; // user + sys of the whole generator
  server: number;
  other: number; // the rest of the machine
}

function value(r: RunRecord, metric: Metric): number | undefined {
  if (!r.ok) return undefined;
  if (metric === "msgs/s") return r.result?.msgs_per_sec as number;
  if (!r.latency) return undefined;
  return metric === "p50" ? r.latency.p50_us : metric === "p99" ? r.latency.p99_us : r.latency.p999_us;
}

function cpuSummary(runs: RunRecord[]): CpuSummary | null {
  const cpus = runs.filter((r) => r.ok && r.result?.cpu).map((r) => r.result!.cpu!);
  if (cpus.length === 0) return null;
  const med = (xs: number[]) => spread(xs)!.median;
  return {
    pub: med(cpus.map((c) => c.pub)),
    subs: med(cpus.map((c) => c.subs)),
    total: med(cpus.map((c) => c.user + c.sys)),
    server: med(cpus.map((c) => c.server)),
    other: med(cpus.map((c) => c.other)),
  };
}

export function summarize(records: RunRecord[], plan: { scenario: Scenario; size: number }[]): SummaryRow[] {
  const rows: SummaryRow[] = [];
  for (const { scenario, size } of plan) {
    const runs = records.filter((r) => r.scenario === scenario.name && r.size === size);
    const side = (s: Side) => runs.filter((r) => r.side === s);
    const metrics: Metric[] = scenario.kind === "throughput" ? ["msgs/s"] : ["p50", "p99", "p99.9"];
    for (const metric of metrics) {
      // Any failed round voids that side's figure: a run that lost messages has no rate.
      const stat = (s: Side) => {
        const rs = side(s);
        if (rs.length === 0 || rs.some((r) => !r.ok)) return null;
        return spread(rs.map((r) => value(r, metric)!));
      };
      const mb = (s: Side) => {
        const rs = side(s);
        if (metric !== "msgs/s" || rs.length === 0 || rs.some((r) => !r.ok)) return null;
        return spread(rs.map((r) => r.result!.mb_per_sec as number));
      };
      const mib = (s: Side, pick: (r: RunRecord) => number | null | undefined) => {
        const kb = side(s).filter((r) => r.ok).map(pick).filter((v): v is number => typeof v === "number" && v > 0);
        return spread(kb.map((v) => v / 1024));
      };
      const A = stat("A"), B = stat("B");
      rows.push({
        baseline: scenario.baseline ?? null,
        scenario: scenario.name,
        size,
        metric,
        unit: metric === "msgs/s" ? "msgs/s" : "µs",
        higherIsBetter: metric === "msgs/s",
        A,
        B,
        mbA: mb("A"),
        mbB: mb("B"),
        rssA: mib("A", (r) => r.rssKb),
        rssB: mib("B", (r) => r.rssKb),
        startRssA: mib("A", (r) => r.startRssKb),
        startRssB: mib("B", (r) => r.startRssKb),
        failures: { A: side("A").filter((r) => !r.ok).length, B: side("B").filter((r) => !r.ok).length },
        rounds: { A: side("A").length, B: side("B").length },
        ratio: A && B && B.median > 0 ? A.median / B.median : null,
        cpu: { A: cpuSummary(side("A")), B: cpuSummary(side("B")) },
        busyRounds: runs.filter((r) => (r.result?.cpu?.other ?? 0) > BUSY_OTHER_LOAD).length,
      });
    }
  }
  return rows;
}

function num(n: number): string {
  const abs = Math.abs(n);
  if (abs >= 1e6) return (n / 1e6).toPrecision(3) + "M";
  if (abs >= 1e4) return (n / 1e3).toPrecision(3) + "k";
  if (abs >= 100) return n.toFixed(0);
  if (abs >= 10) return n.toFixed(1);
  return n.toFixed(2);
}

function cell(s: Spread | null, failures: number, rounds: number): string {
  if (rounds === 0) return "-";
  if (!s) return `FAILURE (${failures}/${rounds})`;
  return s.n > 1 ? `${num(s.median)} [${num(s.min)}–${num(s.max)}]` : num(s.median);
}

function verdict(row: SummaryRow): string {
  if (row.ratio === null) return "";
  const r = row.ratio;
  if (Math.abs(r - 1) <= NOISE_BAND) return "≈";
  const aBetter = row.higherIsBetter ? r > 1 : r < 1;
  return aBetter ? "A better" : "A worse";
}

function note(r: SummaryRow): string {
  const notes: string[] = [];
  const pub = Math.max(r.cpu.A?.pub ?? 0, r.cpu.B?.pub ?? 0);
  if (pub > GENERATOR_BOUND) notes.push(`generator-bound? (publisher thread ${pub.toFixed(0)}%)`);
  if (r.busyRounds) notes.push(`busy machine in ${r.busyRounds}/${r.rounds.A + r.rounds.B} runs`);
  return notes.join("; ");
}

/** RSS under the load, medians: "167 / 30.2 (5.5×)". */
function rssPair(r: SummaryRow): string {
  if (!r.rssA && !r.rssB) return "";
  const m = (s: Spread | null) => (s ? num(s.median) : "-");
  const ratio = r.rssA && r.rssB && r.rssB.median > 0 ? ` (${(r.rssA.median / r.rssB.median).toFixed(1)}×)` : "";
  return `${m(r.rssA)} / ${m(r.rssB)}${ratio}`;
}

function table(header: string[], rows: string[][], rightAlign: Set<number>): string {
  const width = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const fmt = (r: string[]) =>
    r.map((c, i) => (rightAlign.has(i) ? c.padStart(width[i]) : c.padEnd(width[i]))).join("  ").trimEnd();
  return [fmt(header), width.map((w) => "-".repeat(w)).join("  "), ...rows.map(fmt)].join("\n");
}

export function printReport(
  rows: SummaryRow[],
  records: RunRecord[],
  labels: { A: string; B: string },
  info: { rounds: number; versions: { A: string; B: string } },
): void {
  const out: string[] = [];
  out.push("");
  out.push(`A = ${labels.A} (${info.versions.A})    B = ${labels.B} (${info.versions.B})`);
  out.push(
    `${info.rounds} round(s) per server, alternating A B B A ...; figures are median [min–max]; ratio = median A / median B.`,
  );
  out.push(
    `msgs/s = messages delivered to subscribers per second (all subscribers together; pub-only: accepted by the server).`,
  );
  out.push(`MB/s = payload bytes. Latency rows in µs (lower is better). "≈": within ±${NOISE_BAND * 100}% noise.`);
  out.push(`RSS = the server's resident memory at the end of the timed phase (MiB, medians; cluster and leaf: node A).`);
  out.push("");
  const body = rows.filter((r) => r.baseline === null).map((r) => {
    const name = r.metric === "msgs/s" ? r.scenario : `${r.scenario} ${r.metric} (µs)`;
    return [
      name,
      `${r.size} B`,
      cell(r.A, r.failures.A, r.rounds.A),
      cell(r.B, r.failures.B, r.rounds.B),
      r.ratio === null ? "-" : r.ratio.toFixed(2),
      verdict(r),
      r.mbA ? num(r.mbA.median) : "",
      r.mbB ? num(r.mbB.median) : "",
      r.metric === "msgs/s" || r.metric === "p50" ? rssPair(r) : "",
      note(r),
    ];
  });
  out.push(
    table(
      ["scenario", "size", `${labels.A} msgs/s`, `${labels.B} msgs/s`, "ratio", "", `${labels.A} MB/s`, `${labels.B} MB/s`, "RSS MiB A / B", "note"],
      body,
      new Set([1, 4, 6, 7, 8]),
    ),
  );

  const baselines = rows.filter((r) => r.baseline !== null);
  if (baselines.length) {
    out.push("");
    out.push("Against the runtime itself: B = a minimal Bun TCP relay (bench/relay.ts) forwarding the same MSG bytes unparsed.");
    out.push(
      table(
        ["scenario", "size", `${labels.A} msgs/s`, "bun relay msgs/s", `${labels.A} / relay`, "note"],
        baselines.map((r) => [
          r.scenario,
          `${r.size} B`,
          cell(r.A, r.failures.A, r.rounds.A),
          cell(r.B, r.failures.B, r.rounds.B),
          r.ratio === null ? "-" : r.ratio.toFixed(2),
          note(r),
        ]),
        new Set([1, 4]),
      ),
    );
  }

  // Is the generator the bottleneck? Its publisher thread must stay well below one core.
  out.push("");
  out.push("Load generator check: CPU % of one core during the timed phase, median over rounds (2 cores = 200%).");
  out.push("pub = publisher (or requester) thread alone; subs = subscriber (or responder) threads; gen = whole generator;");
  out.push(`other = the rest of the machine (other work; "busy machine" above when > ${BUSY_OTHER_LOAD}% in a run).`);
  const pct = (n: number | undefined) => (n === undefined || n < 0 ? "-" : `${n.toFixed(0)}%`);
  const pair = (a: number | undefined, b: number | undefined) => `${pct(a)} / ${pct(b)}`;
  const cpuRows = rows
    .filter((r) => r.metric === "msgs/s" || r.metric === "p50")
    .map((r) => [
      r.scenario,
      `${r.size} B`,
      pair(r.cpu.A?.pub, r.cpu.B?.pub),
      pair(r.cpu.A?.subs, r.cpu.B?.subs),
      pair(r.cpu.A?.total, r.cpu.B?.total),
      pair(r.cpu.A?.server, r.cpu.B?.server),
      pair(r.cpu.A?.other, r.cpu.B?.other),
    ]);
  out.push(
    table(
      ["scenario", "size", "gen pub (A / B)", "gen subs (A / B)", "gen total (A / B)", "server (A / B)", "other (A / B)"],
      cpuRows,
      new Set([1, 2, 3, 4, 5, 6]),
    ),
  );
  // The relay's figure is the whole machine's (its publisher thread may well be the limit): not counted here.
  const pubs = records.filter((r) => r.ok && r.result?.cpu && r.server !== "relay").map((r) => ({ r, pub: r.result!.cpu!.pub }));
  if (pubs.length) {
    const top = pubs.reduce((a, b) => (b.pub > a.pub ? b : a));
    out.push(
      `Busiest publisher thread: ${top.pub.toFixed(0)}% of a core (${top.r.scenario} ${top.r.size} B, ${labels[top.r.side]}).` +
        (top.pub < 80 ? " The generator had headroom in every run." : " Near a full core: that run may be generator-bound."),
    );
  }

  const failures = records.filter((r) => !r.ok);
  if (failures.length) {
    out.push("");
    out.push("FAILURES (no figure is reported for a side with a failed round):");
    const seen = new Set<string>();
    for (const f of failures) {
      const line = `  ${f.scenario} ${f.size} B, ${f.server === "relay" ? "bun relay" : labels[f.side]}, round ${f.round + 1}: ${f.error}`;
      if (f.skipped) {
        const key = `${f.side} ${f.error}`;
        if (seen.has(key)) continue;
        seen.add(key);
      }
      out.push(line);
    }
  }
  console.log(out.join("\n"));
}

export function writeJson(file: string, data: unknown): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify(data, null, 2) + "\n");
}
