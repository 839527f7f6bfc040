// The performance targets of the "Performance and scale" issue, checked against a bench run:
// each target, the measured ratio natter / nats-server (or natter / Bun relay), met or not.
import { NOISE_BAND, type SummaryRow, type TargetMetric } from "./report.ts";

export interface Target {
  what: string; // as the issue words it
  scenario: string; // "*": every scenario of the run on a single server (not the relay, cluster or leaf ones)
  sizes: number[] | null; // null: every size the run measured
  metric: TargetMetric;
  op: ">=" | "<=";
  value: number;
  /** The value is natter's own figure in MiB (not a ratio); one row, the median over the run's rows. */
  absoluteMiB?: boolean;
}

export const TARGETS: Target[] = [
  { what: "pub only, 16 B and 128 B", scenario: "pub-only", sizes: [16, 128], metric: "msgs/s", op: ">=", value: 1.8 },
  { what: "pub only, 1 KiB", scenario: "pub-only", sizes: [1024], metric: "msgs/s", op: ">=", value: 1.0 },
  { what: "pub only, 4 publishers, 128 B", scenario: "pub-only-4", sizes: [128], metric: "msgs/s", op: ">=", value: 1.0 },
  { what: "pub/sub 1:1", scenario: "pub-sub", sizes: null, metric: "msgs/s", op: ">=", value: 2.0 },
  { what: "fan-out 1:10", scenario: "fan-out-10", sizes: null, metric: "msgs/s", op: ">=", value: 2.0 },
  { what: "fan-out 1:100", scenario: "fan-out-100", sizes: null, metric: "msgs/s", op: ">=", value: 2.0 },
  { what: "queue group of 10", scenario: "queue-10", sizes: null, metric: "msgs/s", op: ">=", value: 2.5 },
  { what: "wildcard subscribers among 1000 unrelated", scenario: "wildcard-10", sizes: null, metric: "msgs/s", op: ">=", value: 2.0 },
  { what: "WebSocket fan-out to 50", scenario: "ws-fan-out-50", sizes: null, metric: "msgs/s", op: ">=", value: 2.0 },
  { what: "request-reply round trip p50", scenario: "req-reply", sizes: null, metric: "p50", op: "<=", value: 0.7 },
  { what: "request-reply round trip p99", scenario: "req-reply", sizes: null, metric: "p99", op: "<=", value: 0.9 },
  { what: "one-way latency p99 at 20k msgs/s", scenario: "latency-20k", sizes: null, metric: "p99", op: "<=", value: 1.0 },
  { what: "WebSocket one-way latency p99, 50 subs", scenario: "ws-latency-50", sizes: null, metric: "p99", op: "<=", value: 1.0 },
  { what: "1:1 16 B as a fraction of a Bun relay", scenario: "relay", sizes: [16], metric: "msgs/s", op: ">=", value: 0.25 },
];

/** Issue 20's memory and tail targets beside issue 3's (which already hold the one-way p99 ones at 1.0×). */
export const MEMORY_TAIL_TARGETS: Target[] = [
  { what: "idle RSS (right after start) <= 32 MiB", scenario: "*", sizes: null, metric: "start-rss", op: "<=", value: 32, absoluteMiB: true },
  { what: "RSS under the load <= 2x nats-server", scenario: "*", sizes: null, metric: "rss", op: "<=", value: 2.0 },
  { what: "request-reply round trip p99.9", scenario: "req-reply", sizes: null, metric: "p99.9", op: "<=", value: 1.0 },
];

/** A scenario on one plain server: what "every scenario" means for the memory targets. */
function singleServer(scenario: string): boolean {
  return !scenario.startsWith("cluster-") && !scenario.startsWith("leaf-") && scenario !== "relay";
}

export interface TargetRow {
  what: string;
  scenario: string;
  size: number | null;
  metric: TargetMetric;
  target: string; // e.g. "≥ 2.0×"
  ratio: number | null;
  natter: number | null; // medians
  other: number | null;
  status: "met" | "not met" | "FAILURE" | "not run";
  note: string;
}

function fmt(n: number | null, metric: TargetMetric): string {
  if (n === null) return "-";
  if (metric === "rss" || metric === "start-rss") return `${n.toFixed(n >= 100 ? 0 : 1)} MiB`;
  if (metric !== "msgs/s") return `${n.toFixed(0)} µs`;
  return n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : `${(n / 1e3).toFixed(0)}k`;
}

export function evaluateTargets(rows: SummaryRow[], targets: Target[] = TARGETS): TargetRow[] {
  const out: TargetRow[] = [];
  for (const t of targets) {
    const target = `${t.op === ">=" ? "≥" : "≤"} ${t.value.toFixed(2)}×`;
    const memory = t.metric === "rss" || t.metric === "start-rss";
    // Memory is one figure per scenario and size: read it from the row of the scenario's first metric.
    const matching = rows.filter((r) =>
      (t.scenario === "*" ? r.baseline === null && singleServer(r.scenario) : r.scenario === t.scenario) &&
      (memory ? r.metric === "msgs/s" || r.metric === "p50" : r.metric === t.metric) &&
      (t.sizes === null || t.sizes.includes(r.size)));
    if (matching.length === 0) {
      out.push({ what: t.what, scenario: t.scenario, size: null, metric: t.metric, target, ratio: null, natter: null, other: null, status: "not run", note: "" });
      continue;
    }
    if (memory) {
      out.push(...memoryRows(t, target, matching));
      continue;
    }
    for (const r of matching) {
      const failed = r.failures.A + r.failures.B > 0 || r.ratio === null;
      const met = r.ratio !== null && (t.op === ">=" ? r.ratio >= t.value : r.ratio <= t.value);
      const notes: string[] = [];
      if (!failed && !met && Math.abs((r.ratio! - t.value) / t.value) <= NOISE_BAND) notes.push(`within ±${NOISE_BAND * 100}% of the target`);
      if (r.busyRounds) notes.push(`busy machine in ${r.busyRounds}/${r.rounds.A + r.rounds.B} runs`);
      out.push({
        what: t.what,
        scenario: t.scenario,
        size: r.size,
        metric: t.metric,
        target,
        ratio: r.ratio,
        natter: r.A?.median ?? null,
        other: r.B?.median ?? null,
        status: failed ? "FAILURE" : met ? "met" : "not met",
        note: notes.join("; "),
      });
    }
  }
  return out;
}

function memoryRows(t: Target, target: string, rows: SummaryRow[]): TargetRow[] {
  const pick = (r: SummaryRow) => (t.metric === "rss" ? { a: r.rssA, b: r.rssB } : { a: r.startRssA, b: r.startRssB });
  const base = { what: t.what, scenario: t.scenario, metric: t.metric, target };
  if (t.absoluteMiB) {
    // One row: the median over the scenarios of natter's (and the reference's) median.
    const med = (xs: number[]) => (xs.length ? [...xs].sort((x, y) => x - y)[xs.length >> 1]! : null);
    const a = med(rows.map((r) => pick(r).a?.median).filter((v): v is number => v !== undefined));
    const b = med(rows.map((r) => pick(r).b?.median).filter((v): v is number => v !== undefined));
    const target = `≤ ${t.value} MiB`;
    if (a === null) return [{ ...base, target, size: null, ratio: null, natter: null, other: b, status: "not run", note: "" }];
    const met = t.op === "<=" ? a <= t.value : a >= t.value;
    return [{ ...base, target, size: null, ratio: b ? a / b : null, natter: a, other: b, status: met ? "met" : "not met", note: `median over ${rows.length} scenario/size rows` }];
  }
  return rows.map((r) => {
    const { a, b } = pick(r);
    const ratio = a && b && b.median > 0 ? a.median / b.median : null;
    const met = ratio !== null && (t.op === ">=" ? ratio >= t.value : ratio <= t.value);
    return { ...base, scenario: r.scenario, what: `${t.what}: ${r.scenario}`, size: r.size, ratio, natter: a?.median ?? null, other: b?.median ?? null,
      status: ratio === null ? "FAILURE" : met ? "met" : "not met", note: "" };
  });
}

export function printTargets(rows: TargetRow[], rounds: number, issue = "issue 3", reference = "nats-server"): void {
  const header = [`target (${issue})`, "size", "metric", "natter", "other", "ratio", "target", "status", "note"];
  const body = rows.map((r) => [
    r.what,
    r.size === null ? "" : `${r.size} B`,
    r.metric,
    fmt(r.natter, r.metric),
    fmt(r.other, r.metric),
    r.ratio === null ? "-" : `${r.ratio.toFixed(2)}×`,
    r.target,
    r.status,
    r.note,
  ]);
  const width = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const right = new Set([1, 3, 4, 5]);
  const line = (cells: string[]) => cells.map((c, i) => (right.has(i) ? c.padStart(width[i]!) : c.padEnd(width[i]!))).join("  ").trimEnd();
  const met = rows.filter((r) => r.status === "met").length;
  console.log("");
  const relay = rows.some((r) => r.scenario === "relay") ? " (last row: natter / Bun relay)" : "";
  console.log(`Targets (${issue}): natter / ${reference}${relay}, medians of ${rounds} round(s) each; the issue asks for >= 8 (--full).`);
  console.log([line(header), width.map((w) => "-".repeat(w)).join("  "), ...body.map(line)].join("\n"));
  console.log(`${met} of ${rows.length} met.`);
}
