// The busiest subjects, sampled: which subjects carry the most messages right now, at a bounded cost.
//
// On the publish hot path the console adds one countdown per PUB (Connection.onPub: a decrement and a
// compare, and one null check when the console is off). Every SAMPLE_EVERY-th message server-wide, its
// subject (the string the publish path already has) is counted here: a Map lookup and an increment, or
// an insert while the table has room. Once a second (the console's timer, off the hot path) each
// subject's samples become a rate, and the table is cut back to its busiest half, so new subjects
// always find room and memory stays at MAX_SUBJECTS entries.
//
// Accuracy: a rate is samples × SAMPLE_EVERY per second, so a subject with r msgs/s is seen about
// r/SAMPLE_EVERY times a second: rates are within ±SAMPLE_EVERY msgs/s plus sampling noise (a relative
// error of about 1/√(r/SAMPLE_EVERY) per one-second window; averaged over RATE_WINDOW_S windows).
// Subjects slower than about SAMPLE_EVERY msgs/s may be missing when the table is full of busier ones.

export const SAMPLE_EVERY = 16;
export const MAX_SUBJECTS = 512;
/** Rates are smoothed over about this many seconds (an exponentially weighted moving average). */
const RATE_WINDOW_S = 5;

interface Entry {
  /** Samples since the last tick. */
  samples: number;
  sampledBytes: number;
  /** Smoothed estimates, per second. */
  msgsRate: number;
  bytesRate: number;
  /** Estimated messages since it was first seen (samples × SAMPLE_EVERY). */
  total: number;
  /** false until its first tick, which sets the rates outright (no ramp up from zero). */
  rated: boolean;
}

export interface TopSubject {
  subject: string;
  msgs_per_sec: number;
  bytes_per_sec: number;
  total_estimate: number;
}

export class TopSubjects {
  /** Messages left until the next sample (the hot path decrements it). */
  countdown = SAMPLE_EVERY;
  private readonly entries = new Map<string, Entry>();
  private lastTickMs = Date.now();

  /** Called from the publish path once every SAMPLE_EVERY messages. */
  sample(subject: string, bytes: number): void {
    this.countdown = SAMPLE_EVERY;
    const e = this.entries.get(subject);
    if (e !== undefined) {
      e.samples++;
      e.sampledBytes += bytes;
    } else if (this.entries.size < MAX_SUBJECTS) {
      this.entries.set(subject, { samples: 1, sampledBytes: bytes, msgsRate: 0, bytesRate: 0, total: 0, rated: false });
    } // else: the table is full until the next tick frees half of it

  }

  /** Once a second: samples to rates, then the table cut back to its busiest half. */
  tick(nowMs = Date.now()): void {
    const seconds = Math.max(nowMs - this.lastTickMs, 1) / 1000;
    this.lastTickMs = nowMs;
    const alpha = Math.min(1, seconds / RATE_WINDOW_S);
    for (const e of this.entries.values()) {
      const a = e.rated ? alpha : 1;
      e.rated = true;
      e.msgsRate += a * ((e.samples * SAMPLE_EVERY) / seconds - e.msgsRate);
      e.bytesRate += a * ((e.sampledBytes * SAMPLE_EVERY) / seconds - e.bytesRate);
      e.total += e.samples * SAMPLE_EVERY;
      e.samples = 0;
      e.sampledBytes = 0;
    }
    for (const [subject, e] of this.entries) if (e.msgsRate < 0.01) this.entries.delete(subject); // gone quiet
    if (this.entries.size > MAX_SUBJECTS / 2) {
      const slowest = [...this.entries].sort((a, b) => a[1].msgsRate - b[1].msgsRate);
      for (const [subject] of slowest.slice(0, this.entries.size - MAX_SUBJECTS / 2)) this.entries.delete(subject);
    }
  }

  /** The busiest `limit` subjects, busiest first. */
  top(limit = 50): TopSubject[] {
    return [...this.entries]
      .filter(([, e]) => e.msgsRate >= 0.05)
      .sort((a, b) => b[1].msgsRate - a[1].msgsRate)
      .slice(0, limit)
      .map(([subject, e]) => ({
        subject,
        msgs_per_sec: Math.round(e.msgsRate * 10) / 10,
        bytes_per_sec: Math.round(e.bytesRate),
        total_estimate: e.total,
      }));
  }
}
