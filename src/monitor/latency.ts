import type * as Hdr from "hdr-histogram-js";

/**
 * Latency the server sees, in HDR histograms (microseconds, 3 significant digits):
 *
 * - delivery: from the start of handling a read to the write of each subscriber's bytes in the
 *   same tick. Sampled: one read in DELIVERY_SAMPLE_EVERY is timed, so the publish path pays one
 *   counter increment per read otherwise. Bytes held back by a blocked socket are written later,
 *   on drain, and are not in this figure: slow consumers are visible as slow consumers.
 * - services: for requests (a message with a reply subject that reached someone), the time until
 *   the first message published to that reply subject, per request subject. One request in
 *   SERVICE_SAMPLE_EVERY is tracked; at most MAX_SERVICES subjects get their own histogram, the
 *   rest are folded into "_other"; at most MAX_PENDING requests wait for a reply at once, and a
 *   request unanswered after PENDING_TTL_MS is forgotten. Memory stays bounded whatever clients do.
 *
 * nats-server tracks service latency only for account imports, by sampling; this covers every subject.
 */
export const DELIVERY_SAMPLE_EVERY = 16;
export const SERVICE_SAMPLE_EVERY = 8;
export const MAX_SERVICES = 64;
export const MAX_PENDING = 10_000;
export const PENDING_TTL_MS = 60_000;
const OTHER = "_other";

type Histogram = ReturnType<typeof Hdr.build>;

/**
 * hdr-histogram-js takes about 20 ms to load (its WebAssembly; half of natter's start-up): it is loaded
 * at the first sample, once clients are connected, not before the server listens. Samples taken while
 * it loads are kept (at most EARLY_SAMPLES of them) and recorded once it is there, so counts stay exact.
 */
let hdr: typeof Hdr | null = null;
let hdrLoading: Promise<void> | null = null;
export function loadHistograms(): Promise<void> {
  hdrLoading ??= import("hdr-histogram-js").then((m) => {
    hdr = m;
  });
  return hdrLoading;
}

/** Samples kept while the histogram library loads (a few ms after the first one). */
const EARLY_SAMPLES = 4096;

function newHistogram(): Histogram | null {
  if (hdr === null) {
    void loadHistograms();
    return null;
  }
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3 });
}

const EMPTY_SUMMARY: LatencySummary = {
  count: 0, min_us: 0, mean_us: 0, p50_us: 0, p90_us: 0, p99_us: 0, p999_us: 0, max_us: 0,
  distribution: [],
};

/** A histogram summary as /latz returns it (microseconds). */
export interface LatencySummary {
  count: number;
  min_us: number;
  mean_us: number;
  p50_us: number;
  p90_us: number;
  p99_us: number;
  p999_us: number;
  max_us: number;
  /** Cumulative distribution: the value at each listed percentile. */
  distribution: { percentile: number; value_us: number }[];
}

const DISTRIBUTION_PERCENTILES = [0, 10, 25, 50, 75, 90, 95, 99, 99.9, 99.99, 100];

export function summarize(h: Histogram | null): LatencySummary {
  if (h === null) return { ...EMPTY_SUMMARY, distribution: DISTRIBUTION_PERCENTILES.map((percentile) => ({ percentile, value_us: 0 })) };
  const count = h.totalCount;
  const at = (p: number) => (count === 0 ? 0 : h.getValueAtPercentile(p));
  return {
    count,
    min_us: count === 0 ? 0 : h.minNonZeroValue,
    mean_us: count === 0 ? 0 : Math.round(h.mean * 10) / 10,
    p50_us: at(50),
    p90_us: at(90),
    p99_us: at(99),
    p999_us: at(99.9),
    max_us: count === 0 ? 0 : h.maxValue,
    distribution: DISTRIBUTION_PERCENTILES.map((percentile) => ({ percentile, value_us: at(percentile) })),
  };
}

interface PendingRequest {
  service: string;
  startedAt: number;
}

export class LatencyTracker {
  /**
   * `enabled`: whether anything can read the histograms (/latz, /metrics and the console are all served by
   * the monitoring port). Without one nothing is sampled, so hdr-histogram-js (5+ MiB of RSS once loaded,
   * with the code that records) is never loaded (issue 20).
   */
  constructor(readonly enabled = true) {}

  /** Null until hdr-histogram-js has loaded (see loadHistograms). */
  private deliveryHistogram: Histogram | null = null;
  readonly services = new Map<string, Histogram>();
  private readonly pending = new Map<string, PendingRequest>();
  private readCount = 0;
  private requestCount = 0;
  /** performance.now() at the start of the read being timed, or 0. */
  private readStartedAt = 0;
  resetAt = new Date();

  /** Called at the start of every read; returns quickly unless this read is sampled. */
  startRead(): void {
    if (this.enabled && ++this.readCount % DELIVERY_SAMPLE_EVERY === 0) this.readStartedAt = performance.now();
  }

  /** Called after a flush of one connection in the tick of a read. */
  recordFlush(): void {
    if (this.readStartedAt === 0) return;
    const us = Math.max(1, Math.round((performance.now() - this.readStartedAt) * 1000));
    const h = this.deliveryHistogram ?? (this.deliveryHistogram = newHistogram());
    if (h !== null) h.recordValue(us);
    else this.keepEarly(null, us);
  }

  /** Samples taken while the histogram library loads: recorded when it is there. */
  private early: { service: string | null; us: number }[] = [];

  private keepEarly(service: string | null, us: number): void {
    if (this.early.length >= EARLY_SAMPLES) return;
    if (this.early.length === 0) {
      void loadHistograms().then(() => {
        const early = this.early;
        this.early = [];
        for (const { service, us } of early) {
          if (service === null) (this.deliveryHistogram ??= newHistogram())?.recordValue(us);
          else this.serviceHistogram(service)?.recordValue(us);
        }
      });
    }
    this.early.push({ service, us });
  }

  /** The histogram of a service subject (past MAX_SERVICES, the shared `_other`); null while the library loads. */
  private serviceHistogram(service: string): Histogram | null {
    let histogram = this.services.get(service);
    if (histogram !== undefined) return histogram;
    const key = this.services.size < MAX_SERVICES ? service : OTHER;
    histogram = this.services.get(key);
    if (histogram !== undefined) return histogram;
    const created = newHistogram();
    if (created !== null) this.services.set(key, created);
    return created;
  }

  /** Called when the tick's flushes are done. */
  endRead(): void {
    this.readStartedAt = 0;
  }

  /**
   * Whether some request waits for its reply (only then must published subjects be checked).
   * A plain field, kept in step with `pending`: read on every publish, where a Map's size getter costs.
   */
  awaitingReplies = false;

  /** Called for each request that reached someone: is this one timed? (Cheap; no strings needed to ask.) */
  sampleRequest(): boolean {
    return this.enabled && ++this.requestCount % SERVICE_SAMPLE_EVERY === 0 && this.pending.size < MAX_PENDING;
  }

  /** A sampled request on `subject` reached someone; time it until a message arrives on `reply`. */
  requestDelivered(subject: string, reply: string): void {
    this.pending.set(reply, { service: subject, startedAt: performance.now() });
    this.awaitingReplies = true;
  }

  /** A message was published to `subject`: if it answers a timed request, record the service latency. */
  published(subject: string): void {
    const request = this.pending.get(subject);
    if (request === undefined) return;
    this.pending.delete(subject);
    this.awaitingReplies = this.pending.size > 0;
    const us = Math.max(1, Math.round((performance.now() - request.startedAt) * 1000));
    const histogram = this.serviceHistogram(request.service);
    if (histogram !== null) histogram.recordValue(us);
    else this.keepEarly(request.service, us);
  }

  /** Forgets requests that never got a reply. */
  expire(now = performance.now()): void {
    for (const [reply, request] of this.pending) {
      if (now - request.startedAt > PENDING_TTL_MS) this.pending.delete(reply);
    }
    this.awaitingReplies = this.pending.size > 0;
  }

  reset(): void {
    this.deliveryHistogram?.reset();
    this.services.clear();
    this.pending.clear();
    this.awaitingReplies = false;
    this.resetAt = new Date();
  }

  /** The delivery histogram's p50/p90/p99/p99.9 (µs) alone: what the console samples each second. */
  deliveryPercentiles(): { p50: number; p90: number; p99: number; p999: number } {
    const h = this.deliveryHistogram;
    if (h === null || h.totalCount === 0) return { p50: 0, p90: 0, p99: 0, p999: 0 };
    return { p50: h.getValueAtPercentile(50), p90: h.getValueAtPercentile(90), p99: h.getValueAtPercentile(99), p999: h.getValueAtPercentile(99.9) };
  }

  /** The /latz document. */
  report(): { reset_at: string; delivery: LatencySummary; services: Record<string, LatencySummary>; pending_requests: number; sampling: Record<string, number> } {
    const services: Record<string, LatencySummary> = {};
    for (const [name, h] of this.services) services[name] = summarize(h);
    return {
      reset_at: this.resetAt.toISOString(),
      delivery: summarize(this.deliveryHistogram),
      services,
      pending_requests: this.pending.size,
      sampling: { delivery_every_nth_read: DELIVERY_SAMPLE_EVERY, service_every_nth_request: SERVICE_SAMPLE_EVERY, max_services: MAX_SERVICES },
    };
  }
}
