// Per-message TTL (nats-server 2.11): the `Nats-TTL` header, and the queue of messages waiting to expire.
//
// `Nats-TTL` is a Go duration of at least 1s ("30s", "1h"), plain seconds ("30") or `never` (the message
// also outlives the stream's max_age). Its precision is whole seconds, as nats-server keeps it.
import { goDurationString } from "./wire.ts";

/** Seconds of a `Nats-TTL` value: > 0 expires after that, -1 never, 0 none (an absent header); null: invalid. */
export function parseMessageTtl(value: string | undefined): number | null {
  if (value === undefined || value === "") return 0;
  if (value.toLowerCase() === "never") return -1;
  const ns = parseGoDuration(value);
  if (ns !== null) return ns < 1e9 ? null : Math.floor(ns / 1e9);
  // Plain seconds: digits only (a sign or anything else is invalid, as nats-server's parseInt64).
  return /^\d+$/.test(value) ? Number(value) : null;
}

const UNIT_NS: Record<string, number> = { ns: 1, us: 1e3, "µs": 1e3, "μs": 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

/** Go's time.ParseDuration ("1h30m", "1.5s", "-2m", "0"): nanoseconds, or null when it does not parse. */
export function parseGoDuration(text: string): number | null {
  let s = text;
  let sign = 1;
  if (s.startsWith("-") || s.startsWith("+")) {
    sign = s[0] === "-" ? -1 : 1;
    s = s.slice(1);
  }
  if (s === "0") return 0;
  if (s === "") return null;
  let total = 0;
  const part = /^(\d*)(?:\.(\d*))?([a-zµμ]+)/;
  while (s !== "") {
    const m = part.exec(s);
    if (m === null || (m[1] === "" && (m[2] === undefined || m[2] === ""))) return null;
    const unit = UNIT_NS[m[3]!];
    if (unit === undefined) return null;
    total += Number(`${m[1] || "0"}.${m[2] || "0"}`) * unit;
    s = s.slice(m[0].length);
  }
  return sign * total;
}

/** The subject delete marker nats-server stores when the last message of a subject ages out. */
export function subjectDeleteMarkerHeaders(markerTtlSeconds: number): Buffer {
  return Buffer.from(
    `NATS/1.0\r\nNats-Marker-Reason: MaxAge\r\nNats-TTL: ${goDurationString(markerTtlSeconds * 1e9)}\r\nNats-Rollup: sub\r\n\r\n`,
    "latin1",
  );
}

/** A marker (ours, or a KV purge) leaves no marker when it goes itself (nats-server's isSubjectDeleteMarker). */
export function isSubjectDeleteMarker(values: ReadonlyMap<string, string> | undefined): boolean {
  if (values === undefined) return false;
  return (values.get("Nats-Marker-Reason") ?? "") !== "" || values.get("KV-Operation") === "PURGE";
}

/** Messages with a TTL, earliest expiry first (a binary min-heap of [expires at (ms), sequence]). */
export class TtlQueue {
  private readonly at: number[] = [];
  private readonly seqs: number[] = [];

  get size(): number {
    return this.at.length;
  }

  add(seq: number, expiresAt: number): void {
    this.at.push(expiresAt);
    this.seqs.push(seq);
    let i = this.at.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.at[parent]! <= this.at[i]!) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  /** When the earliest entry expires (ms), or 0 when empty. */
  peekAt(): number {
    return this.at.length === 0 ? 0 : this.at[0]!;
  }

  /** Removes and returns the earliest entry's sequence. */
  pop(): number {
    const seq = this.seqs[0]!;
    const lastAt = this.at.pop()!;
    const lastSeq = this.seqs.pop()!;
    if (this.at.length > 0) {
      this.at[0] = lastAt;
      this.seqs[0] = lastSeq;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let smallest = i;
        if (l < this.at.length && this.at[l]! < this.at[smallest]!) smallest = l;
        if (r < this.at.length && this.at[r]! < this.at[smallest]!) smallest = r;
        if (smallest === i) break;
        this.swap(i, smallest);
        i = smallest;
      }
    }
    return seq;
  }

  clear(): void {
    this.at.length = 0;
    this.seqs.length = 0;
  }

  private swap(i: number, j: number): void {
    [this.at[i], this.at[j]] = [this.at[j]!, this.at[i]!];
    [this.seqs[i], this.seqs[j]] = [this.seqs[j]!, this.seqs[i]!];
  }
}
