// When a consumer's next delivery may go (nats-server's loopAndGatherMsgs delays):
// - rate_limit_bps: a token bucket of bytes (rate = bps / 8 per second, burst = the largest message the
//   stream holds, full at the start), as nats-server's rate.Limiter; a delivery costs subject + ack reply +
//   headers + data. A message waits until the bucket holds its cost.
// - replay_policy original: until the consumer has caught up with what the stream held when it started, each
//   message waits as long after the previous delivery as it was stored after the previous message (gaps of
//   1 ms or less go at once). Newer messages then go as they come.
// Both only delay: the consumer asks `hold` before each delivery and is kicked when the wait is over.
import type { ConsumerConfig } from "./config.ts";
import { nowMs } from "./store/indexed.ts";
import type { StoredMessage } from "./store/store.ts";

export class Pacer {
  /** Bytes per millisecond; 0 = no rate limit. */
  private rate = 0;
  private burst = 0;
  private tokens = 0;
  private tokensAt = 0;
  /** Replay original: paced while the consumer's next sequence is at or below this (0 = not replaying). */
  private replayUntil = 0;
  /** Timestamp (ms) of the last message delivered. */
  private lastTs = 0;
  /** The message being held for replay and when it may go. */
  private replayHold: { seq: number; at: number } | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(private readonly wake: () => void) {}

  get active(): boolean {
    return this.rate > 0 || this.replayUntil > 0;
  }

  /**
   * (Re)reads the consumer's settings. `streamLastSeq`: the stream's last sequence when the consumer starts
   * (replay runs up to it), or -1 on an update (replay policy can not change).
   */
  configure(config: ConsumerConfig, burst: number, streamLastSeq: number): void {
    const bps = config.rate_limit_bps ?? 0;
    const rate = bps > 0 && config.deliver_subject !== undefined ? bps / 8 / 1000 : 0;
    if (rate !== this.rate || burst !== this.burst) {
      this.rate = rate;
      this.burst = burst;
      this.tokens = burst; // a new limiter starts full
      this.tokensAt = nowMs();
    }
    if (streamLastSeq >= 0) this.replayUntil = config.replay_policy === "original" ? streamLastSeq : 0;
  }

  /** Must `msg` (costing `size` bytes) wait? Then the consumer is woken when it may go. */
  hold(msg: StoredMessage, nextSeq: number, size: number): boolean {
    if (this.timer !== null) return true;
    const now = nowMs();
    let wait = 0;
    if (this.replayUntil > 0) {
      if (nextSeq > this.replayUntil) this.replayUntil = 0; // caught up
      else if (this.lastTs > 0 && msg.ts - this.lastTs > 1) {
        if (this.replayHold?.seq !== msg.seq) this.replayHold = { seq: msg.seq, at: now + (msg.ts - this.lastTs) };
        wait = Math.max(wait, this.replayHold.at - now);
      }
    }
    if (this.rate > 0) {
      this.refill(now);
      const cost = Math.min(size, this.burst); // nats-server's limiter would never let a larger one go
      if (this.tokens < cost) wait = Math.max(wait, (cost - this.tokens) / this.rate);
    }
    if (wait <= 0) return false;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.wake();
    }, Math.min(Math.ceil(wait), 2 ** 31 - 1)); // past that a timer fires at once: a very low rate would spin
    return true;
  }

  /** A message went out: it is charged to the bucket and is the replay's previous message. */
  delivered(msg: StoredMessage, size = 0): void {
    this.lastTs = msg.ts;
    this.replayHold = null;
    if (this.rate > 0) {
      this.refill(nowMs());
      this.tokens -= size;
    }
  }

  private refill(now: number): void {
    this.tokens = Math.min(this.burst, this.tokens + (now - this.tokensAt) * this.rate);
    this.tokensAt = now;
  }

  stop(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }
}
