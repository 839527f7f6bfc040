// A requester: PUB <subject> <inbox>.<n> with one wildcard subscription on its inbox, up to --inflight
// requests outstanding (1: one at a time, as nats bench), round-trip time of each into an HDR histogram.
// Replies are matched by the number at the end of the reply subject; one arriving after its timeout is
// dropped. A 503 status (no responders) ends the run.

import { nowMicros, type NatsConn } from "./conn.ts";
import { Outbox } from "./outbox.ts";
import type { Parser } from "./parser.ts";
import { newHistogram, type Histogram } from "./stats.ts";

const encoder = new TextEncoder();
const NO_RESPONDERS = encoder.encode("NATS/1.0 503");

export interface RequestPlan {
  subject: string;
  size: number;
  payload: Uint8Array | null;
  headers: Array<[string, string]>;
  /** Requests to send; with a deadline, an upper bound. */
  count: number;
  /** Stop sending after this long (ms from the start); 0: no time limit. */
  durationMs: number;
  /** This requester's rate in requests/s; 0: each as soon as a slot frees. */
  rate: number;
  inflight: number;
  timeoutMs: number;
}

export interface RequestControl {
  stopped(): boolean;
  /** Requests finished (answered or timed out) so far. */
  progress(done: number): void;
  /** A reply said nobody listens on the subject. */
  noResponders(): void;
}

export interface RequestResult {
  msgs: number;
  bytes: number;
  timeouts: number;
  sent: number;
  startUs: number;
  endUs: number;
  latency: Histogram;
}

function randomToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  let s = "";
  for (const b of bytes) s += alphabet[b % alphabet.length];
  return s;
}

export class Requester {
  private readonly out: Outbox;
  private readonly inbox = `_INBOX.${randomToken()}`;
  private readonly head: Uint8Array;
  private readonly tail: Uint8Array;
  private readonly hdrBlock: Uint8Array;
  private readonly body: Uint8Array;
  /** Send time (µs) of each outstanding request, oldest first. */
  private readonly pending = new Map<number, number>();
  private readonly latency = newHistogram();
  private sent = 0;
  private replies = 0;
  private bytes = 0;
  private timeouts = 0;
  private startUs = 0;
  private deadlineUs = 0;
  private lastUs = 0;
  private paceTimer: ReturnType<typeof setTimeout> | null = null;
  private finish: (() => void) | null = null;
  private finished = false;

  constructor(
    private readonly conn: NatsConn,
    private readonly plan: RequestPlan,
    private readonly ctl: RequestControl,
  ) {
    this.out = new Outbox(conn);
    this.body = new Uint8Array(plan.size);
    if (plan.payload) this.body.set(plan.payload);
    this.hdrBlock = plan.headers.length > 0
      ? encoder.encode(`NATS/1.0\r\n${plan.headers.map(([k, v]) => `${k}: ${v}\r\n`).join("")}\r\n`)
      : new Uint8Array(0);
    const withHeaders = this.hdrBlock.length > 0;
    this.head = encoder.encode(`${withHeaders ? "HPUB" : "PUB"} ${plan.subject} ${this.inbox}.`);
    this.tail = encoder.encode(withHeaders ? ` ${this.hdrBlock.length} ${this.hdrBlock.length + plan.size}\r\n` : ` ${plan.size}\r\n`);
    conn.onMessage = (p, body, start) => this.reply(p, body, start);
    conn.afterRead = () => this.afterRead();
  }

  async run(): Promise<RequestResult> {
    this.conn.writeText(`SUB ${this.inbox}.* 1\r\n`);
    await this.conn.ping();
    const done = new Promise<void>((resolve) => (this.finish = resolve));
    this.startUs = nowMicros();
    if (this.plan.durationMs > 0) this.deadlineUs = this.startUs + this.plan.durationMs * 1000;
    const tickMs = Math.max(5, Math.min(250, this.plan.timeoutMs / 4));
    const ticker = setInterval(() => this.tick(), tickMs);
    this.pump();
    this.out.flush();
    this.checkDone();
    try {
      await done;
    } finally {
      clearInterval(ticker);
      if (this.paceTimer) clearTimeout(this.paceTimer);
    }
    return {
      msgs: this.replies,
      bytes: this.bytes,
      timeouts: this.timeouts,
      sent: this.sent,
      startUs: this.startUs,
      endUs: this.lastUs || nowMicros(),
      latency: this.latency,
    };
  }

  /** Sends what the in-flight window and the pace allow. */
  private pump(): void {
    const plan = this.plan;
    while (this.pending.size < plan.inflight && this.sent < plan.count && !this.ctl.stopped()) {
      const now = nowMicros();
      if (this.deadlineUs > 0 && now >= this.deadlineUs) return;
      if (plan.rate > 0) {
        const due = Math.floor(((now - this.startUs) / 1e6) * plan.rate) + 1 - this.sent;
        if (due <= 0) {
          if (this.paceTimer === null) {
            const waitMs = (this.startUs + (this.sent / plan.rate) * 1e6 - now) / 1000;
            this.paceTimer = setTimeout(() => {
              this.paceTimer = null;
              this.pump();
              this.out.flush();
            }, Math.max(1, Math.ceil(waitMs)));
          }
          return;
        }
      }
      this.send(this.sent++, now);
    }
  }

  private send(seq: number, now: number): void {
    const out = this.out;
    out.bytes(this.head);
    out.decimal(seq);
    out.bytes(this.tail);
    if (this.hdrBlock.length > 0) out.bytes(this.hdrBlock);
    out.bytes(this.body);
    out.crlf();
    this.pending.set(seq, now);
  }

  private reply(p: Parser, body: Uint8Array, start: number): void {
    if (p.headerSize > 0 && startsWith(body, start, NO_RESPONDERS)) {
      this.ctl.noResponders();
      return;
    }
    // The request number: the digits after the last dot of the subject.
    const ctl = p.ctl;
    let seq = 0;
    let scale = 1;
    for (let i = p.subjectEnd - 1; i >= p.subjectStart; i--) {
      const d = ctl[i]! - 48;
      if (d < 0 || d > 9) break;
      seq += d * scale;
      scale *= 10;
    }
    const sentAt = this.pending.get(seq);
    if (sentAt === undefined) return; // timed out already, or not ours
    this.pending.delete(seq);
    const now = this.conn.readAt;
    this.latency.recordValue(Math.max(1, Math.round((now - sentAt) * 1000)));
    this.replies++;
    this.bytes += p.size - p.headerSize;
    this.lastUs = now;
  }

  private afterRead(): void {
    if (this.finished) return;
    this.pump();
    this.out.flush();
    this.ctl.progress(this.replies + this.timeouts);
    this.checkDone();
  }

  private tick(): void {
    if (this.finished) return;
    const limit = nowMicros() - this.plan.timeoutMs * 1000;
    for (const [seq, sentAt] of this.pending) {
      if (sentAt > limit) break;
      this.pending.delete(seq);
      this.timeouts++;
    }
    this.pump();
    this.out.flush();
    this.ctl.progress(this.replies + this.timeouts);
    this.checkDone();
  }

  private checkDone(): void {
    if (this.finished) return;
    const plan = this.plan;
    const stopped = this.ctl.stopped();
    const noMore = stopped || this.sent >= plan.count || (this.deadlineUs > 0 && nowMicros() >= this.deadlineUs);
    if (noMore && (this.pending.size === 0 || stopped)) {
      this.finished = true;
      this.finish?.();
    }
  }
}

function startsWith(buf: Uint8Array, at: number, prefix: Uint8Array): boolean {
  if (buf.length - at < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (buf[at + i] !== prefix[i]) return false;
  return true;
}
