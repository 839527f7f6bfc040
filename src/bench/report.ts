// The results as a text report (nats bench's layout: aggregate, per-client lines, min/avg/max/stddev of the
// clients' rates; then latency percentiles and a histogram), as JSON, and as CSV (nats bench's columns).

import { MODE_LABELS } from "./flags.ts";
import type { BenchResult } from "./run.ts";
import { bins, clientRate, group, seconds, summarize, type ClientSample, type GroupStats, type Histogram, type LatencySummary } from "./stats.ts";

const MB = 1e6;

function n0(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

function mb(bytesPerSec: number): string {
  return (bytesPerSec / MB).toFixed(2);
}

/** Microseconds, at a precision that suits their size. */
export function us(v: number): string {
  if (v < 10) return v.toFixed(2);
  if (v < 1000) return v.toFixed(1);
  return n0(v);
}

function durationText(ms: number): string {
  if (ms % 60_000 === 0 && ms >= 60_000) return `${ms / 60_000}m`;
  if (ms >= 1000) return `${+(ms / 1000).toFixed(3)}s`;
  return `${+ms.toFixed(3)}ms`;
}

function plural(n: number, word: string): string {
  return `${n0(n)} ${word}${n === 1 ? "" : "s"}`;
}

/** All clients that moved messages, for the aggregate line. */
function everyone(r: BenchResult): ClientSample[] {
  return [...r.pubs, ...r.subs, ...r.reqs, ...r.reps];
}

function latencyOf(r: BenchResult): Histogram | null {
  const g = group(r.latencyKind === "round-trip" ? r.reqs : r.subs);
  return g?.latency ?? null;
}

function banner(r: BenchResult): string[] {
  const o = r.options;
  const parts: string[] = [`subject "${o.multiSubject ? `${o.subject}.*` : o.subject}"`];
  if (o.durationMs > 0) parts.push(`for ${durationText(o.durationMs)}`);
  else if (o.mode === "sub") parts.push(`${n0(o.msgs)} msgs per subscriber`);
  else if (o.mode === "reply") parts.push(o.msgs > 0 ? `${n0(o.msgs)} requests` : "until stopped");
  else parts.push(`${n0(o.msgs)} ${o.mode === "request" ? "requests" : "msgs"}`);
  if (o.mode !== "sub" && o.mode !== "reply") parts.push(`${o.size.toLocaleString("en-US")} B payload${o.headers.length ? ` + ${o.headers.length} header${o.headers.length === 1 ? "" : "s"}` : ""}`);
  if (o.mode === "pub" || o.mode === "pubsub") parts.push(plural(o.pubs, "publisher"));
  if (o.mode === "sub" || o.mode === "pubsub") parts.push(plural(o.subs, "subscriber") + (o.queue ? ` in queue ${o.queue}` : ""));
  if (o.mode === "request") {
    parts.push(plural(o.pubs, "requester") + (o.inflight > 1 ? ` × ${o.inflight} in flight` : ""));
    parts.push(o.responders > 0 ? plural(o.responders, "responder") : "existing service");
  }
  if (o.mode === "reply") parts.push(plural(o.responders, "responder"));
  if (o.mode !== "sub" && o.mode !== "reply") {
    const paced = o.rate > 0 ? `paced at ${n0(o.rate)} msgs/s` : o.sleepMs > 0 ? `--sleep ${durationText(o.sleepMs)} per client` : "flat out";
    parts.push(paced);
  }
  if (o.workers > 0) parts.push(`${plural(o.workers, "worker")}`);
  const lines = [`natter bench ${MODE_LABELS[o.mode]}: ${parts.join(", ")}`];
  for (const s of r.servers) {
    const i = s.info;
    const what = i.go?.startsWith("bun") ? `natter (nats-server ${i.version} compatible, ${i.go})` : `${i.version ? `nats-server ${i.version}` : "server"}${i.go ? ` (${i.go})` : ""}`;
    lines.push(`server ${s.url}: ${what}${i.server_name && i.server_name !== i.server_id ? `, name ${i.server_name}` : ""}`);
  }
  return lines;
}

function groupLines(title: string, g: GroupStats | null, unit: string, indent: string): string[] {
  if (!g) return [];
  const lines = [`${indent}${title}: ${n0(g.msgsPerSec)} ${unit}/s ~ ${mb(g.bytesPerSec)} MB/s`];
  if (g.clients.length > 1) {
    for (const c of g.clients) {
      const extra = c.timeouts ? `, ${n0(c.timeouts)} timed out` : "";
      const lost = c.expected !== undefined && c.role === "sub" && c.msgs < c.expected ? ` of ${n0(c.expected)}` : "";
      lines.push(`${indent} [${c.id}] ${n0(clientRate(c))} ${unit}/s ~ ${mb(c.msgs ? c.bytes / seconds(c) : 0)} MB/s (${n0(c.msgs)}${lost} ${unit}${extra})`);
    }
    lines.push(`${indent} min ${n0(g.rates.min)} | avg ${n0(g.rates.avg)} | max ${n0(g.rates.max)} | stddev ${n0(g.rates.stddev)} ${unit}/s`);
  }
  return lines;
}

export function latencyLine(s: LatencySummary): string {
  return `min ${us(s.min)} | avg ${us(s.mean)} | stddev ${us(s.stddev)} | p50 ${us(s.p50)} | p90 ${us(s.p90)} | p99 ${us(s.p99)} | p99.9 ${us(s.p99_9)} | p99.99 ${us(s.p99_99)} | max ${us(s.max)}`;
}

function edge(v: number): string {
  if (v >= 1000) return `${+(v / 1000).toPrecision(3)} ms`;
  return `${+v.toPrecision(3)} µs`;
}

/** The latency distribution as bars, one log-spaced bin per line. */
export function histogramLines(h: Histogram, width = 40): string[] {
  const list = bins(h);
  if (list.length === 0) return [];
  const total = h.totalCount;
  const top = Math.max(...list.map((b) => b.count));
  const eighths = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"];
  const labels = list.map((b) => `${edge(b.from)} – ${edge(b.to)}`);
  const labelWidth = Math.max(...labels.map((l) => l.length));
  const countWidth = Math.max(...list.map((b) => n0(b.count).length));
  let cumulative = 0;
  return list.map((b, i) => {
    cumulative += b.count;
    const cells = (b.count / top) * width;
    let bar = "█".repeat(Math.floor(cells)) + eighths[Math.floor((cells % 1) * 8)];
    if (b.count > 0 && bar === "") bar = "▏";
    const pct = ((b.count / total) * 100).toFixed(2).padStart(6);
    const cum = ((cumulative / total) * 100).toFixed(2).padStart(6);
    return `  ${labels[i]!.padStart(labelWidth)} │${bar.padEnd(width)}│ ${n0(b.count).padStart(countWidth)} ${pct}%  ≤ ${cum}%`;
  });
}

export function textReport(r: BenchResult): string {
  const o = r.options;
  const lines = [...banner(r), ""];
  const pubs = group(r.pubs);
  const subs = group(r.subs);
  const reqs = group(r.reqs);
  const reps = group(r.reps);
  switch (o.mode) {
    case "pub":
      lines.push(...groupLines("Pub stats", pubs, "msgs", ""));
      break;
    case "sub":
      lines.push(...groupLines("Sub stats", subs, "msgs", ""));
      break;
    case "pubsub": {
      lines.push(...groupLines("Pub/Sub stats", group(everyone(r)), "msgs", "").slice(0, 1));
      lines.push(...groupLines("Pub stats", pubs, "msgs", " "));
      lines.push(...groupLines("Sub stats", subs, "msgs", " "));
      break;
    }
    case "request":
      lines.push(...groupLines("Request-reply stats", reqs, "requests", ""));
      if (reps && o.responders > 0) lines.push(` responders: ${r.reps.map((c) => `[${c.id}] ${n0(c.msgs)}`).join(" ")} requests served`);
      break;
    case "reply":
      lines.push(...groupLines("Reply stats", reps, "requests", ""));
      break;
  }
  const h = latencyOf(r);
  if (h && h.totalCount > 0) {
    const what = r.latencyKind === "round-trip" ? "round trip" : "publish → delivery";
    lines.push("", `Latency, ${what} (${plural(h.totalCount, "sample")}, µs):`, `  ${latencyLine(summarize(h))}`);
    if (o.histogram) lines.push("", ...histogramLines(h));
  }
  lines.push("", `${durationText(Math.round(r.elapsedSec * 1000))} in all; while the clients ran, this process used ${Math.round(r.cpuPercent)}% of a core`);
  return lines.join("\n") + "\n";
}

// ---- JSON ------------------------------------------------------------------------------------------------

function round(v: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

function clientJson(c: ClientSample): Record<string, unknown> {
  const secs = seconds(c);
  const out: Record<string, unknown> = {
    id: c.id,
    server: c.server,
    msgs: c.msgs,
    bytes: c.bytes,
    seconds: round(secs, 6),
    msgs_per_sec: round(clientRate(c), 1),
    bytes_per_sec: round(c.msgs ? c.bytes / secs : 0, 1),
    mb_per_sec: round(c.msgs ? c.bytes / secs / MB : 0, 3),
  };
  if (c.expected !== undefined) out.expected = c.expected;
  if (c.timeouts !== undefined) out.timeouts = c.timeouts;
  if (c.latency && c.latency.totalCount > 0) out.latency_us = summarize(c.latency);
  return out;
}

function groupJson(g: GroupStats | null): Record<string, unknown> | null {
  if (!g) return null;
  return {
    clients: g.clients.length,
    msgs: g.msgs,
    bytes: g.bytes,
    seconds: round(g.seconds, 6),
    msgs_per_sec: round(g.msgsPerSec, 1),
    bytes_per_sec: round(g.bytesPerSec, 1),
    mb_per_sec: round(g.bytesPerSec / MB, 3),
    rate_min: round(g.rates.min, 1),
    rate_avg: round(g.rates.avg, 1),
    rate_max: round(g.rates.max, 1),
    rate_stddev: round(g.rates.stddev, 1),
    per_client: g.clients.map(clientJson),
  };
}

export function jsonReport(r: BenchResult): string {
  const o = r.options;
  const h = latencyOf(r);
  const all = group(everyone(r));
  const doc = {
    run_id: r.runId,
    started: r.startedAt,
    mode: o.mode,
    subject: o.subject,
    servers: r.servers.map((s) => ({
      url: s.url,
      server_id: s.info.server_id ?? null,
      server_name: s.info.server_name ?? null,
      version: s.info.version ?? null,
      go: s.info.go ?? null,
      max_payload: s.info.max_payload ?? null,
    })),
    config: {
      msgs: o.durationMs > 0 ? null : o.msgs,
      duration_sec: o.durationMs > 0 ? o.durationMs / 1000 : null,
      size: o.size,
      publishers: o.mode === "pub" || o.mode === "pubsub" ? o.pubs : 0,
      subscribers: o.mode === "sub" || o.mode === "pubsub" ? o.subs : 0,
      requesters: o.mode === "request" ? o.pubs : 0,
      responders: o.mode === "request" || o.mode === "reply" ? o.responders : 0,
      rate: o.rate || null,
      sleep_ms: o.sleepMs || null,
      queue: o.queue || null,
      inflight: o.mode === "request" ? o.inflight : null,
      timeout_sec: o.timeoutMs / 1000,
      multisubject: o.multiSubject,
      headers: o.headers.length,
      workers: o.workers,
    },
    complete: r.lost === 0 && r.timeouts === 0 && !r.interrupted,
    interrupted: r.interrupted,
    sent: r.sent,
    lost: r.lost,
    timeouts: r.timeouts,
    warnings: r.warnings,
    elapsed_sec: round(r.elapsedSec, 6),
    bench_cpu_percent: round(r.cpuPercent, 1),
    aggregate: all
      ? { msgs: all.msgs, bytes: all.bytes, seconds: round(all.seconds, 6), msgs_per_sec: round(all.msgsPerSec, 1), bytes_per_sec: round(all.bytesPerSec, 1), mb_per_sec: round(all.bytesPerSec / MB, 3) }
      : null,
    publishers: groupJson(group(r.pubs)),
    subscribers: groupJson(group(r.subs)),
    requesters: groupJson(group(r.reqs)),
    responders: groupJson(group(r.reps)),
    latency:
      h && h.totalCount > 0
        ? { kind: r.latencyKind, unit: "us", ...summarize(h), histogram: bins(h).map((b) => ({ from_us: b.from, to_us: b.to, count: b.count })) }
        : null,
  };
  return JSON.stringify(doc, null, 2) + "\n";
}

// ---- CSV -------------------------------------------------------------------------------------------------

const CSV_HEADER = ["#RunID", "ClientID", "MsgCount", "MsgBytes", "MsgsPerSec", "BytesPerSec", "DurationSecs"];
const CSV_LATENCY = ["MinLatencyMicroSecs", "AvgLatencyMicroSecs", "MaxLatencyMicroSecs", "P50LatencyMicroSecs", "P90LatencyMicroSecs", "P99LatencyMicroSecs", "P99.9LatencyMicroSecs", "StdDevLatencyMicroSecs"];

/** nats bench's CSV: one row per client (P = publisher or requester, S = subscriber, R = responder, numbered from 0). */
export function csvReport(r: BenchResult): string {
  const withLatency = r.latencyKind !== null;
  const rows = [[...CSV_HEADER, ...(withLatency ? CSV_LATENCY : [])].join(",")];
  const add = (prefix: string, list: ClientSample[]) => {
    for (const c of list) {
      const secs = seconds(c);
      const row = [r.runId, `${prefix}${c.id - 1}`, String(c.msgs), String(c.bytes), String(Math.floor(clientRate(c))), (c.msgs ? c.bytes / secs : 0).toFixed(6), secs.toFixed(6)];
      if (withLatency) {
        if (c.latency && c.latency.totalCount > 0) {
          const s = summarize(c.latency);
          row.push(...[s.min, s.mean, s.max, s.p50, s.p90, s.p99, s.p99_9, s.stddev].map((v) => v.toFixed(6)));
        } else row.push(...CSV_LATENCY.map(() => ""));
      }
      rows.push(row.join(","));
    }
  };
  add("P", r.pubs);
  add("P", r.reqs);
  add("S", r.subs);
  add("R", r.reps);
  return rows.join("\n") + "\n";
}
