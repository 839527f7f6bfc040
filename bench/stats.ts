// Summaries: median with min–max over rounds, and latency percentiles from an HDR histogram.
import * as hdr from "hdr-histogram-js";
import { readFileSync } from "node:fs";

export interface Spread {
  median: number;
  min: number;
  max: number;
  n: number;
}

export function spread(values: number[]): Spread | null {
  if (values.length === 0) return null;
  const v = [...values].sort((a, b) => a - b);
  const mid = v.length >> 1;
  const median = v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
  return { median, min: v[0], max: v[v.length - 1], n: v.length };
}

/** The median of the finite values (the lower of the middle two), NaN when there is none: a figure per round, some rounds failed. */
export function finiteMedian(xs: number[]): number {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)]! : NaN;
}

export interface LatencyPercentiles {
  count: number;
  p50_us: number;
  p99_us: number;
  p999_us: number;
  max_us: number;
  mean_us: number;
}

// Reads the generator's raw round-trip samples (uint64 ns, little endian) into an HDR histogram
// (3 significant digits, the usual HdrHistogram setting).
export function latencyFromSamples(file: string): LatencyPercentiles {
  const bytes = readFileSync(file);
  // Copy out: a small Buffer may sit unaligned in Node's pool, and BigUint64Array needs 8-byte alignment.
  const aligned = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength - (bytes.byteLength % 8));
  const samples = new BigUint64Array(aligned);
  const h = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3.6e12, numberOfSignificantValueDigits: 3 });
  for (const s of samples) h.recordValue(Number(s));
  const us = (ns: number) => ns / 1000;
  return {
    count: samples.length,
    p50_us: us(h.getValueAtPercentile(50)),
    p99_us: us(h.getValueAtPercentile(99)),
    p999_us: us(h.getValueAtPercentile(99.9)),
    max_us: us(h.maxValue),
    mean_us: us(h.mean),
  };
}
