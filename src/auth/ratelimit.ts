// Rate limits (natter's own; nats-server has none of these). Both are off by default.
//
// Publish limits per user (`users [ { user, password, rate_limit { msgs_per_sec, bytes_per_sec } } ]`):
// all connections of the user draw from one token bucket (a second's worth of burst). The check runs
// once per read, not per message: after a read is parsed, the messages and payload bytes it carried are
// charged, and when the bucket is in debt the connection stops being read until the debt is paid back.
// Nothing is dropped or refused: the publisher is slowed by TCP backpressure (its socket buffers fill).
// A WebSocket cannot stop being read in Bun, so its reads are held in order instead (bounded) and parsed
// when the pause ends. One read may overshoot the budget; the pause that follows pays it back, so the
// rate over any second or more stays at the limit.
//
// New connections per IP address (`connection_rate_per_ip: N`, or --connection_rate_per_ip): more than N
// accepted within one second from one address get INFO, then
// `-ERR 'Connection throttling is active. Please try again later.'` (nats-server's text for its TLS
// connection rate limit) and are closed.
import type { Connection } from "../connection.ts";
import { CloseReason } from "../protocol/errors.ts";
import type { RateLimitOptions } from "./options.ts";

/** A WebSocket's held reads beyond this close it (it keeps sending while told to wait). */
const MAX_HELD_BYTES = 8 * 1024 * 1024;

/** One user's budget, shared by its connections. */
export class PublishBucket {
  private msgTokens: number;
  private byteTokens: number;
  private refilledAt = performance.now();

  constructor(readonly limit: RateLimitOptions) {
    this.msgTokens = limit.msgsPerSec;
    this.byteTokens = limit.bytesPerSec;
  }

  /** Takes what a read used; returns how long (ms) to wait before reading again (0 = go on). */
  take(msgs: number, bytes: number): number {
    const now = performance.now();
    const elapsed = (now - this.refilledAt) / 1000;
    this.refilledAt = now;
    const { msgsPerSec, bytesPerSec } = this.limit;
    let waitMs = 0;
    if (msgsPerSec > 0) {
      this.msgTokens = Math.min(msgsPerSec, this.msgTokens + elapsed * msgsPerSec) - msgs;
      if (this.msgTokens < 0) waitMs = Math.max(waitMs, (-this.msgTokens / msgsPerSec) * 1000);
    }
    if (bytesPerSec > 0) {
      this.byteTokens = Math.min(bytesPerSec, this.byteTokens + elapsed * bytesPerSec) - bytes;
      if (this.byteTokens < 0) waitMs = Math.max(waitMs, (-this.byteTokens / bytesPerSec) * 1000);
    }
    return waitMs;
  }
}

/** A connection's side of its user's bucket: what it has been charged for, and its pause. */
export class PublishRateLimiter {
  private chargedMsgs: number;
  private chargedBytes: number;
  /** Reads wait until the bucket is out of debt. */
  paused = false;
  private held: Buffer[] = [];
  private heldBytes = 0;

  constructor(
    private readonly conn: Connection,
    /** null: no limit any more (a config reload lifted it while this limiter was paused). */
    private bucket: PublishBucket | null,
  ) {
    this.chargedMsgs = conn.inMsgs;
    this.chargedBytes = conn.inBytes;
  }

  /** A config reload gave the user another limit (or none): charged to it from the next read on. */
  retarget(bucket: PublishBucket | null): void {
    this.bucket = bucket;
  }

  /** A read: parsed and charged, or held while paused (a WebSocket cannot stop being read). */
  read(data: Buffer): void {
    if (this.paused) {
      this.hold(data);
      return;
    }
    this.conn.parse(data);
    this.charge();
  }

  /** After a read was parsed: charge its messages and bytes; pause reading while in debt. */
  private charge(): void {
    const conn = this.conn;
    const msgs = conn.inMsgs - this.chargedMsgs;
    const bytes = conn.inBytes - this.chargedBytes;
    if (msgs === 0 && bytes === 0) return;
    this.chargedMsgs = conn.inMsgs;
    this.chargedBytes = conn.inBytes;
    if (this.bucket === null) return;
    const waitMs = this.bucket.take(msgs, bytes);
    if (waitMs <= 0 || this.paused || conn.closed) return;
    this.paused = true;
    conn.server.stats.rateLimitPauses++;
    conn.transport.pauseReading();
    setTimeout(() => this.resume(), Math.max(1, Math.ceil(waitMs)));
  }

  private hold(data: Buffer): void {
    this.heldBytes += data.length;
    if (this.heldBytes > MAX_HELD_BYTES) {
      this.conn.close(CloseReason.SlowConsumerPendingBytes, null, "kept publishing past its rate limit");
      return;
    }
    this.held.push(Buffer.from(data));
  }

  private resume(): void {
    const conn = this.conn;
    this.paused = false;
    if (conn.closed) return;
    conn.transport.resumeReading();
    const held = this.held;
    this.held = [];
    this.heldBytes = 0;
    for (let i = 0; i < held.length && !conn.closed; i++) this.read(held[i]!);
  }
}

/** New connections per second per remote address. */
export class ConnectionRateLimiter {
  private readonly windows = new Map<string, { start: number; count: number }>();
  private sweptAt = Date.now();

  constructor(private readonly perSecond: number) {}

  /** Counts a new connection from `address`; false when it is over the limit. */
  allow(address: string): boolean {
    const now = Date.now();
    if (now - this.sweptAt > 10_000) this.sweep(now);
    const w = this.windows.get(address);
    if (w === undefined || now - w.start >= 1000) {
      this.windows.set(address, { start: now, count: 1 });
      return true;
    }
    return ++w.count <= this.perSecond;
  }

  /** Forgets addresses not seen for a while: the map stays as small as the recent set of clients. */
  private sweep(now: number): void {
    this.sweptAt = now;
    for (const [address, w] of this.windows) if (now - w.start >= 1000) this.windows.delete(address);
  }
}
