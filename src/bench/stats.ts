// Per-client samples, their aggregates (nats bench's: rate over the group's span, min/avg/max/stddev of the
// clients' rates) and latency in HDR histograms (nanoseconds, 3 significant digits).

import * as hdr from "hdr-histogram-js";

export type Histogram = ReturnType<typeof hdr.build>;

/** 1 ns to 1 hour, 3 significant digits. */
export function newHistogram(): Histogram {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000_000, numberOfSignificantValueDigits: 3 });
}

export type Role = "pub" | "sub" | "req" | "rep";

export interface ClientSample {
  role: Role;
  /** 1-based within its role. */
  id: number;
  /** Messages published, received, or requests answered. */
  msgs: number;
  /** Payload bytes of those messages. */
  bytes: number;
  /** µs since the epoch: first message (or start), last message (or end). */
  startUs: number;
  endUs: number;
  /** What it was supposed to get (subscribers, requesters); undefined when open-ended. */
  expected?: number;
  /** Requests that got no reply in time. */
  timeouts?: number;
  /** Latency in ns (pub/sub: publish → delivery; request: round trip). */
  latency?: Histogram;
  /** The server URL this client used. */
  server: string;
}

export interface RateStats {
  min: number;
  avg: number;
  max: number;
  stddev: number;
}

export interface GroupStats {
  clients: ClientSample[];
  msgs: number;
  bytes: number;
  startUs: number;
  endUs: number;
  seconds: number;
  msgsPerSec: number;
  bytesPerSec: number;
  /** Over the clients' own rates (as nats bench's "message rates"). */
  rates: RateStats;
  latency: Histogram | null;
}

export function seconds(s: { startUs: number; endUs: number }): number {
  return Math.max(s.endUs - s.startUs, 1) / 1e6;
}

export function clientRate(s: ClientSample): number {
  return s.msgs === 0 ? 0 : s.msgs / seconds(s);
}

export function group(clients: ClientSample[]): GroupStats | null {
  if (clients.length === 0) return null;
  let msgs = 0;
  let bytes = 0;
  let startUs = Infinity;
  let endUs = -Infinity;
  let latency: Histogram | null = null;
  for (const c of clients) {
    msgs += c.msgs;
    bytes += c.bytes;
    if (c.msgs > 0 || c.role === "pub" || c.role === "req") {
      startUs = Math.min(startUs, c.startUs);
      endUs = Math.max(endUs, c.endUs);
    }
    if (c.latency && c.latency.totalCount > 0) {
      latency ??= newHistogram();
      latency.add(c.latency);
    }
  }
  if (!Number.isFinite(startUs)) startUs = endUs = 0;
  const span = { startUs, endUs };
  const secs = seconds(span);
  const rates = clients.map(clientRate);
  const avg = rates.reduce((a, b) => a + b, 0) / rates.length;
  const stddev = Math.sqrt(rates.reduce((a, r) => a + (r - avg) ** 2, 0) / rates.length);
  return {
    clients,
    msgs,
    bytes,
    startUs,
    endUs,
    seconds: secs,
    msgsPerSec: msgs === 0 ? 0 : msgs / secs,
    bytesPerSec: bytes === 0 ? 0 : bytes / secs,
    rates: { min: Math.min(...rates), avg, max: Math.max(...rates), stddev },
    latency,
  };
}

export interface LatencySummary {
  count: number;
  min: number;
  mean: number;
  stddev: number;
  p50: number;
  p75: number;
  p90: number;
  p99: number;
  p99_9: number;
  p99_99: number;
  max: number;
}

/** Summary in microseconds. */
export function summarize(h: Histogram): LatencySummary {
  const us = (ns: number) => Math.round(ns) / 1000;
  const min = h.minNonZeroValue === Number.MAX_SAFE_INTEGER ? 0 : h.minNonZeroValue;
  const max = h.maxValue;
  // Percentiles are bucket bounds: keep them within the recorded extremes.
  const at = (p: number) => us(Math.min(max, Math.max(min, h.getValueAtPercentile(p))));
  return {
    count: h.totalCount,
    min: us(min),
    mean: us(h.mean),
    stddev: us(h.stdDeviation),
    p50: at(50),
    p75: at(75),
    p90: at(90),
    p99: at(99),
    p99_9: at(99.9),
    p99_99: at(99.99),
    max: us(max),
  };
}

export interface Bin {
  /** Bounds in µs: [from, to). */
  from: number;
  to: number;
  count: number;
}

interface ValueIterator {
  reset(): void;
  hasNext(): boolean;
  next(): { valueIteratedTo: number; countAtValueIteratedTo: number };
}

/** The recorded (value, count) pairs, flat: how a histogram crosses a Worker boundary. */
export function histogramToPairs(h: Histogram): number[] {
  const out: number[] = [];
  const it = (h as unknown as { recordedValuesIterator: ValueIterator }).recordedValuesIterator;
  it.reset();
  while (it.hasNext()) {
    const v = it.next();
    out.push(v.valueIteratedTo, v.countAtValueIteratedTo);
  }
  return out;
}

export function histogramFromPairs(pairs: number[]): Histogram {
  const h = newHistogram();
  for (let i = 0; i + 1 < pairs.length; i += 2) h.recordValueWithCount(pairs[i]!, pairs[i + 1]!);
  return h;
}

/**
 * The distribution in log-spaced bins (10 per decade; 5, 2 or 1 when the range is wider), with round edges
 * (1, 1.3, 1.6, 2, 2.5, 3.2, 4, 5, 6.3, 7.9 × 10^k µs), from the lowest to the highest recorded value.
 */
export function bins(h: Histogram): Bin[] {
  if (h.totalCount === 0) return [];
  const lo = Math.max(h.minNonZeroValue / 1000, 0.001);
  const hi = Math.max(h.maxValue / 1000, lo);
  const decades = Math.log10(hi) - Math.log10(lo);
  // About 20 lines at most: finer bins for narrow distributions.
  const perDecade = decades <= 2 ? 10 : decades <= 4 ? 5 : decades <= 8 ? 2 : 1;
  const edge = (k: number) => Number((10 ** (k / perDecade)).toPrecision(2));
  let first = Math.floor(Math.log10(lo) * perDecade + 1e-9);
  let last = Math.floor(Math.log10(hi) * perDecade + 1e-9);
  // The edges are rounded: make sure the printed bounds hold the extremes.
  while (edge(first) > lo) first--;
  while (edge(last + 1) <= hi) last++;
  const out: Bin[] = [];
  for (let k = first; k <= last; k++) out.push({ from: edge(k), to: edge(k + 1), count: 0 });
  const pairs = histogramToPairs(h);
  for (let p = 0; p < pairs.length; p += 2) {
    const us = pairs[p]! / 1000;
    let i = Math.floor(Math.log10(Math.max(us, 0.001)) * perDecade + 1e-9) - first;
    if (i < 0) i = 0;
    if (i >= out.length) i = out.length - 1;
    // The rounded edges can put a value one bin off; settle it against the printed bounds.
    while (i > 0 && us < out[i]!.from) i--;
    while (i < out.length - 1 && us >= out[i]!.to) i++;
    out[i]!.count += pairs[p + 1]!;
  }
  return out;
}
