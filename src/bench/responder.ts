// A responder (service): subscribes to the subject in a queue group and answers every request with its own
// payload (an echo), so the reply is as large as the request. Replies of one socket read go out in one write.

import { nowMicros, type NatsConn } from "./conn.ts";
import { Outbox } from "./outbox.ts";
import type { Parser } from "./parser.ts";
import type { ClientSample } from "./stats.ts";

const PUB = new TextEncoder().encode("PUB ");

export class Responder {
  served = 0;
  bytes = 0;
  firstUs = 0;
  lastUs = 0;
  /** Requests without a reply subject (published, not requested). */
  ignored = 0;
  private readonly out: Outbox;
  /** Replies waiting for their --sleep delay. */
  private delayed = 0;
  private idleWaiters: Array<() => void> = [];

  constructor(
    readonly conn: NatsConn,
    readonly id: number,
    /** Delay before each reply (nats bench's `service serve --sleep`), ms; 0: reply at once. */
    private readonly delayMs: number,
    private readonly onProgress: (r: Responder) => void,
  ) {
    this.out = new Outbox(conn);
    conn.onMessage = (p, body, start) => this.request(p, body, start);
    conn.afterRead = () => {
      this.out.flush();
      this.onProgress(this);
    };
  }

  async subscribe(subject: string, queue: string, sid: number): Promise<void> {
    this.conn.writeText(`SUB ${subject} ${queue} ${sid}\r\n`);
    await this.conn.ping();
  }

  private request(p: Parser, body: Uint8Array, start: number): void {
    if (p.replyEnd === p.replyStart) {
      this.ignored++;
      return;
    }
    const now = this.conn.readAt;
    if (this.served === 0) this.firstUs = now;
    this.lastUs = now;
    this.served++;
    const payloadStart = start + p.headerSize;
    const payloadEnd = start + p.size;
    this.bytes += payloadEnd - payloadStart;
    if (this.delayMs > 0) {
      const reply = p.ctl.slice(p.replyStart, p.replyEnd);
      const payload = body.slice(payloadStart, payloadEnd);
      this.delayed++;
      setTimeout(() => {
        this.frame(reply, 0, reply.length, payload, 0, payload.length);
        this.out.flush();
        if (--this.delayed === 0) for (const w of this.idleWaiters.splice(0)) w();
      }, this.delayMs);
      return;
    }
    this.frame(p.ctl, p.replyStart, p.replyEnd, body, payloadStart, payloadEnd);
  }

  /** Resolves once every delayed reply has been written. */
  allReplied(): Promise<void> {
    if (this.delayed === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private frame(ctl: Uint8Array, rs: number, re: number, body: Uint8Array, ps: number, pe: number): void {
    const out = this.out;
    out.bytes(PUB);
    out.bytes(ctl, rs, re);
    out.space();
    out.decimal(pe - ps);
    out.crlf();
    out.bytes(body, ps, pe);
    out.crlf();
  }

  sample(server: string): ClientSample {
    return {
      role: "rep",
      id: this.id,
      msgs: this.served,
      bytes: this.bytes,
      startUs: this.firstUs || nowMicros(),
      endUs: this.lastUs || this.firstUs || nowMicros(),
      server,
    };
  }
}
