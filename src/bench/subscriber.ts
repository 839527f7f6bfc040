// A subscriber: counts every message, and when payloads carry a send time (see publisher.ts) records
// publish → delivery latency. All messages of one socket read share its receive time, and consecutive
// messages of one publisher batch share their send time, so a run of equal latencies is one histogram call.

import { nowMicros, type NatsConn } from "./conn.ts";
import type { Parser } from "./parser.ts";
import { newHistogram, type ClientSample, type Histogram } from "./stats.ts";

/** A send time further than this from the receive time is not one of ours (foreign publisher, bytes that happen to be a float). */
const PLAUSIBLE_US = 3_600e6;

export class Subscriber {
  received = 0;
  bytes = 0;
  firstUs = 0;
  lastUs = 0;
  readonly latency: Histogram | null;
  /** What this subscriber must get (0: not known yet). */
  expected = 0;

  private view: DataView | null = null;
  private viewOf: Uint8Array | null = null;
  /** Send time of the current run of equal stamps (NaN: none; NaN never equals a stamp). */
  private runStamp = NaN;
  private runCount = 0;
  private countAtLastRead = 0;

  constructor(
    readonly conn: NatsConn,
    readonly id: number,
    measureLatency: boolean,
    /** Called after each socket read that brought messages. */
    private readonly onProgress: (s: Subscriber) => void,
  ) {
    this.latency = measureLatency ? newHistogram() : null;
    conn.onMessage = (p, body, start) => this.message(p, body, start);
    conn.afterRead = () => this.afterRead();
  }

  /** SUB (with a queue group when given) and a PING: when it returns, the server has the interest. */
  async subscribe(subject: string, queue: string, sid: number): Promise<void> {
    this.conn.writeText(`SUB ${subject}${queue ? ` ${queue}` : ""} ${sid}\r\n`);
    await this.conn.ping();
  }

  private message(p: Parser, body: Uint8Array, start: number): void {
    const size = p.size - p.headerSize;
    if (this.received === 0) this.firstUs = this.conn.readAt;
    this.received++;
    this.bytes += size;
    if (this.latency === null || size < 8) return;
    if (body !== this.viewOf) {
      this.viewOf = body;
      this.view = new DataView(body.buffer, body.byteOffset, body.byteLength);
    }
    const stamp = this.view!.getFloat64(start + p.headerSize, true);
    if (stamp === this.runStamp) {
      this.runCount++;
      return;
    }
    this.flushRun();
    const age = this.conn.readAt - stamp;
    if (!(age > -1000 && age < PLAUSIBLE_US)) return; // NaN too
    this.runStamp = stamp;
    this.runCount = 1;
  }

  private flushRun(): void {
    if (this.runCount === 0) return;
    const ns = Math.max(1, Math.round((this.conn.readAt - this.runStamp) * 1000));
    this.latency!.recordValueWithCount(ns, this.runCount);
    this.runCount = 0;
    this.runStamp = NaN;
  }

  private afterRead(): void {
    if (this.latency !== null) this.flushRun();
    this.viewOf = null;
    this.view = null;
    if (this.received === this.countAtLastRead) return;
    this.countAtLastRead = this.received;
    this.lastUs = this.conn.readAt;
    this.onProgress(this);
  }

  sample(server: string): ClientSample {
    return {
      role: "sub",
      id: this.id,
      msgs: this.received,
      bytes: this.bytes,
      startUs: this.firstUs || nowMicros(),
      endUs: this.lastUs || this.firstUs || nowMicros(),
      expected: this.expected || undefined,
      latency: this.latency ?? undefined,
      server,
    };
  }
}
