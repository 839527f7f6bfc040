// A publisher: PUB (or HPUB) frames laid out once in a large buffer and written in batches of about
// BATCH_BYTES, one write per batch. Every message of a batch carries the batch's send time in its first 8
// payload bytes (a float64 of µs since the epoch) when latency is measured. Pacing (--rate, --sleep) sends
// what is due in ticks of at least a millisecond. The same code runs in the main thread and in Workers.

import { nowMicros, type NatsConn } from "./conn.ts";

export const BATCH_BYTES = 64 * 1024;
const encoder = new TextEncoder();

export interface PublishPlan {
  subject: string;
  size: number;
  /** The payload to send (from --payload); null: zeros (with the timestamp when `stamp`). */
  payload: Uint8Array | null;
  headers: Array<[string, string]>;
  /** Write the send time into the first 8 payload bytes (needs size >= 8). */
  stamp: boolean;
  /** Messages to send; with a deadline, an upper bound. */
  count: number;
  /** Stop after this long (ms from the start); 0: no time limit. */
  durationMs: number;
  /** This publisher's rate in msgs/s; 0: as fast as the socket takes them. */
  rate: number;
  multiSubject: boolean;
  multiSubjectMax: number;
  multiSubjectRandom: boolean;
  /** First sequence number (multi-subject numbering continues across publishers, as nats bench). */
  seqOffset: number;
}

export interface PublishControl {
  /** True once the run must end (Ctrl-C, failure elsewhere). */
  stopped(): boolean;
  /** Messages sent so far by this publisher (progress bar, flow control). */
  progress(sent: number): void;
  /** Resolves when the subscribers of this process are close enough behind; null when they are. */
  holdBack(): Promise<void> | null;
  /** Whether to yield to the event loop after each batch (subscribers in the same thread need it). */
  yieldEachBatch: boolean;
}

export interface PublishResult {
  msgs: number;
  startUs: number;
  endUs: number;
}

/** Frame layout for one plan. */
export class PubFrames {
  /** One frame, for a fixed subject: control line, headers, payload, CRLF. */
  private readonly template: Uint8Array | null;
  readonly frameLen: number;
  /** Offset of the payload within a frame (fixed subject). */
  private readonly payloadOffset: number;
  private readonly head: Uint8Array;
  private readonly tail: Uint8Array;
  private readonly hdrBlock: Uint8Array;
  private readonly body: Uint8Array;
  readonly buffer: Uint8Array;
  private readonly view: DataView;
  /** Messages that fit in `buffer` (fixed subject). */
  readonly perBatch: number;

  constructor(private readonly plan: PublishPlan) {
    const body = new Uint8Array(plan.size);
    if (plan.payload) body.set(plan.payload);
    this.body = body;
    let hdrBlock = new Uint8Array(0);
    if (plan.headers.length > 0) {
      hdrBlock = encoder.encode(`NATS/1.0\r\n${plan.headers.map(([k, v]) => `${k}: ${v}\r\n`).join("")}\r\n`);
    }
    this.hdrBlock = hdrBlock;
    const withHeaders = hdrBlock.length > 0;
    this.head = encoder.encode(`${withHeaders ? "HPUB" : "PUB"} ${plan.subject}${plan.multiSubject ? "." : " "}`);
    const sizes = withHeaders ? `${hdrBlock.length} ${hdrBlock.length + plan.size}` : `${plan.size}`;
    this.tail = encoder.encode(`${plan.multiSubject ? " " : ""}${sizes}\r\n`);
    if (!plan.multiSubject) {
      const control = this.head.length + this.tail.length;
      this.payloadOffset = control + hdrBlock.length;
      this.frameLen = this.payloadOffset + plan.size + 2;
      const t = new Uint8Array(this.frameLen);
      t.set(this.head, 0);
      t.set(this.tail, this.head.length);
      t.set(hdrBlock, control);
      t.set(body, this.payloadOffset);
      t[this.frameLen - 2] = 13;
      t[this.frameLen - 1] = 10;
      this.template = t;
      this.perBatch = Math.max(1, Math.floor(BATCH_BYTES / this.frameLen));
      this.buffer = new Uint8Array(this.perBatch * this.frameLen);
      for (let i = 0; i < this.perBatch; i++) this.buffer.set(t, i * this.frameLen);
    } else {
      this.template = null;
      this.payloadOffset = 0;
      this.frameLen = this.head.length + 16 + this.tail.length + hdrBlock.length + plan.size + 2;
      this.perBatch = Math.max(1, Math.floor(BATCH_BYTES / this.frameLen));
      this.buffer = new Uint8Array(this.perBatch * this.frameLen);
    }
    this.view = new DataView(this.buffer.buffer, this.buffer.byteOffset, this.buffer.byteLength);
  }

  /** Lays out `n` messages (numbers seq, seq+1, …) stamped `stampUs`; returns the bytes to write. */
  fill(n: number, seq: number, stampUs: number): number {
    const stamp = this.plan.stamp;
    if (this.template !== null) {
      if (stamp) {
        const view = this.view;
        const len = this.frameLen;
        for (let i = 0, at = this.payloadOffset; i < n; i++, at += len) view.setFloat64(at, stampUs, true);
      }
      return n * this.frameLen;
    }
    const buf = this.buffer;
    const max = this.plan.multiSubjectMax;
    let at = 0;
    for (let i = 0; i < n; i++) {
      let number = seq + i;
      if (max > 0) number = this.plan.multiSubjectRandom ? Math.floor(Math.random() * max) : number % max;
      buf.set(this.head, at);
      at += this.head.length;
      at = writeDecimal(buf, at, number);
      buf.set(this.tail, at);
      at += this.tail.length;
      if (this.hdrBlock.length > 0) {
        buf.set(this.hdrBlock, at);
        at += this.hdrBlock.length;
      }
      buf.set(this.body, at);
      if (stamp) this.view.setFloat64(at, stampUs, true);
      at += this.body.length;
      buf[at++] = 13;
      buf[at++] = 10;
    }
    return at;
  }
}

export function writeDecimal(buf: Uint8Array, at: number, value: number): number {
  if (value === 0) {
    buf[at] = 48;
    return at + 1;
  }
  let digits = 0;
  for (let v = value; v > 0; v = Math.floor(v / 10)) digits++;
  for (let i = at + digits - 1, v = value; i >= at; i--, v = Math.floor(v / 10)) buf[i] = 48 + (v % 10);
  return at + digits;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Publishes the plan on `conn`, then PINGs: the result's end is the PONG, when the server has handled
 * every message (as nats bench's flush).
 */
export async function publish(conn: NatsConn, plan: PublishPlan, ctl: PublishControl): Promise<PublishResult> {
  const frames = new PubFrames(plan);
  const startUs = nowMicros();
  const deadlineUs = plan.durationMs > 0 ? startUs + plan.durationMs * 1000 : 0;
  const perBatch = frames.perBatch;
  let sent = 0;
  let batches = 0;
  while (sent < plan.count && !ctl.stopped() && conn.isOpen) {
    const now = nowMicros();
    if (deadlineUs > 0 && now >= deadlineUs) break;
    let n = Math.min(perBatch, plan.count - sent);
    if (plan.rate > 0) {
      const due = Math.floor(((now - startUs) / 1e6) * plan.rate) + 1 - sent;
      if (due <= 0) {
        // The next message is due at startUs + sent / rate.
        const waitMs = (startUs + (sent / plan.rate) * 1e6 - now) / 1000;
        const until = deadlineUs > 0 ? Math.min(waitMs, (deadlineUs - now) / 1000) : waitMs;
        await sleep(Math.max(1, Math.ceil(until)));
        continue;
      }
      n = Math.min(n, due);
    }
    const len = frames.fill(n, plan.seqOffset + sent, now);
    conn.write(frames.buffer, 0, len);
    sent += n;
    ctl.progress(sent);
    if (conn.blocked) await conn.drained();
    else if (ctl.yieldEachBatch || (++batches & 63) === 0) await yieldToLoop();
    const hold = ctl.holdBack();
    if (hold) await hold;
  }
  await conn.drained();
  if (conn.isOpen) await conn.ping();
  return { msgs: sent, startUs, endUs: nowMicros() };
}
