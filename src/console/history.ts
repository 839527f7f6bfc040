// The console's time series: one sample a second of the server's counters, kept for the last 15 minutes
// in a ring buffer, so a console opened now draws the last minutes instead of an empty chart.
//
// Sampled by a 1 s timer (unref'd: it never keeps the process alive), off the publish hot path: it reads
// the counters the core already keeps (server.stats) and turns them into per-second rates. Memory is
// fixed: SERIES × CAPACITY float64s (~100 KiB), allocated once.
import type { Server } from "../server.ts";

/** 15 minutes at one sample a second. */
export const CAPACITY = 900;
export const SAMPLE_INTERVAL_MS = 1000;

/** The series, in the order the UI gets them (`t` is the sample's time, unix seconds). */
export const SERIES = [
  "t", "in_msgs", "out_msgs", "in_bytes", "out_bytes", "connections", "subscriptions", "slow_consumers", "cpu", "mem",
  // /latz's delivery histogram (µs): its percentiles since its last reset, as they stood at each sample.
  "lat_p50", "lat_p90", "lat_p99", "lat_p999",
] as const;
export type SeriesName = (typeof SERIES)[number];

interface Counters {
  atMs: number;
  inMsgs: number;
  outMsgs: number;
  inBytes: number;
  outBytes: number;
  cpuMicros: number;
}

export class History {
  private readonly columns = SERIES.map(() => new Float64Array(CAPACITY));
  /** Where the next sample goes. */
  private next = 0;
  private count = 0;
  private last: Counters;
  private timer: ReturnType<typeof setInterval> | null = null;

  constructor(private readonly server: Server) {
    this.last = this.read();
  }

  start(): void {
    if (this.timer !== null) return;
    this.sample(); // a page opened in the first second has a point to draw
    this.timer = setInterval(() => this.sample(), SAMPLE_INTERVAL_MS);
    this.timer.unref?.();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  private read(): Counters {
    const s = this.server.stats;
    const cpu = process.cpuUsage();
    return { atMs: Date.now(), inMsgs: s.inMsgs, outMsgs: s.outMsgs, inBytes: s.inBytes, outBytes: s.outBytes, cpuMicros: cpu.user + cpu.system };
  }

  /** Takes one sample now (the timer calls this; tests may too). */
  sample(): void {
    const now = this.read();
    const prev = this.last;
    this.last = now;
    const seconds = Math.max(now.atMs - prev.atMs, 1) / 1000;
    const rate = (a: number, b: number) => Math.max(0, (a - b) / seconds);
    const delivery = this.server.latency.deliveryPercentiles();
    const values: Record<SeriesName, number> = {
      t: Math.round(now.atMs / 1000),
      in_msgs: rate(now.inMsgs, prev.inMsgs),
      out_msgs: rate(now.outMsgs, prev.outMsgs),
      in_bytes: rate(now.inBytes, prev.inBytes),
      out_bytes: rate(now.outBytes, prev.outBytes),
      connections: this.server.connections.size,
      subscriptions: this.server.sublist.count,
      slow_consumers: this.server.stats.slowConsumers,
      // Percent of one core over the last interval, as /varz's cpu.
      cpu: Math.round(((now.cpuMicros - prev.cpuMicros) / 1000 / (seconds * 1000)) * 1000) / 10,
      mem: process.memoryUsage.rss(),
      lat_p50: delivery.p50,
      lat_p90: delivery.p90,
      lat_p99: delivery.p99,
      lat_p999: delivery.p999,
    };
    for (let i = 0; i < SERIES.length; i++) this.columns[i]![this.next] = values[SERIES[i]!];
    this.next = (this.next + 1) % CAPACITY;
    if (this.count < CAPACITY) this.count++;
  }

  /** The samples after unix second `since` (all of them for 0), oldest first, one array per series. */
  since(since = 0): Record<SeriesName, number[]> {
    const out = Object.fromEntries(SERIES.map((n) => [n, [] as number[]])) as Record<SeriesName, number[]>;
    const t = this.columns[0]!;
    for (let k = 0; k < this.count; k++) {
      const i = (this.next - this.count + k + CAPACITY) % CAPACITY;
      if (t[i]! <= since) continue;
      for (let s = 0; s < SERIES.length; s++) out[SERIES[s]!].push(this.columns[s]![i]!);
    }
    return out;
  }
}
