import type { SublistEntry } from "./subjects/sublist.ts";
import type { Subscriber } from "./subscriber.ts";

/**
 * One SUB of one client. Frame prefixes are kept here so that delivery writes them with a single
 * copy instead of formatting `MSG <subject> <sid> ` for every message. They are built at the first
 * delivery that needs them, not at SUB: most subscriptions of a large server (inboxes, per-device
 * subjects) are idle, and three small Buffers (~80 B each) were half of a subscription's memory.
 */
export class Subscription implements SublistEntry {
  /** Deliveries after which the subscription ends (UNSUB <sid> <max>); 0 = no limit. */
  max = 0;
  delivered = 0;
  // Built on first use: `MSG <subject> <sid> ` for a literal subject, ` <sid> ` (sidInfix) for any other.
  private head: Buffer | null = null;
  // `HMSG <subject> <sid> ` once built for a literal subject; undefined (never built) for any other.
  private hhead: Buffer | null | undefined;

  constructor(
    readonly client: Subscriber,
    readonly subject: string,
    readonly queue: string | null,
    readonly sid: string,
    literal: boolean,
  ) {
    this.hhead = literal ? null : undefined;
  }

  /** `MSG <subject> <sid> ` for a literal subject (the delivered subject is then always the same); null for wildcards. */
  get msgPrefix(): Buffer | null {
    if (this.hhead === undefined) return null;
    return (this.head ??= Buffer.from(`MSG ${this.subject} ${this.sid} `, "latin1"));
  }

  /** `HMSG <subject> <sid> `, likewise. */
  get hmsgPrefix(): Buffer | null {
    const hhead = this.hhead;
    if (hhead !== null) return hhead ?? null;
    return (this.hhead = Buffer.from(`HMSG ${this.subject} ${this.sid} `, "latin1"));
  }

  /** ` <sid> `: what follows the subject when the subject must be copied from the message. */
  get sidInfix(): Buffer {
    if (this.hhead === undefined) return (this.head ??= Buffer.from(` ${this.sid} `, "latin1"));
    return Buffer.from(` ${this.sid} `, "latin1"); // a literal subscription only needs it off the hot path
  }
}
