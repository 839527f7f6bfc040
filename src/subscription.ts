import type { SublistEntry } from "./subjects/sublist.ts";
import { numericKey } from "./subjects/numeric-key.ts";
import { subjectIsLiteral } from "./subjects/subject.ts";
import type { Subscriber } from "./subscriber.ts";

/**
 * One SUB of one client. Frame prefixes are kept here so that delivery writes them with a single
 * copy instead of formatting `MSG <subject> <sid> ` for every message. They are built at the first
 * delivery that needs them, not at SUB: most subscriptions of a large server (inboxes, per-device
 * subjects) are idle. What only a delivering or limited subscription needs (the prefixes, `max`)
 * lives in a side object made on first use, so an idle subscription is six fields (64 B), and a
 * sid the client sent as plain digits (as every client library does) is kept as a number, not a string
 * (numericKey: the connection's sid Map is keyed by it too).
 */
export class Subscription implements SublistEntry {
  delivered = 0;
  /** The sid: a number when the client's text is its canonical decimal form, else that text. */
  readonly sidKey: number | string;
  private extra: SubscriptionExtra | null = null;

  /**
   * `literal` false frames every message with the subject it carries (msgPrefix is null) even when
   * the subject is literal (a twin presenting another subject, src/jetstream/deliver.ts).
   */
  constructor(
    readonly client: Subscriber,
    readonly subject: string,
    readonly queue: string | null,
    sid: string,
    literal: boolean,
  ) {
    this.sidKey = numericKey(sid);
    if (!literal && subjectIsLiteral(subject)) this.extra = new SubscriptionExtra(false);
  }

  /** The sid as the client sent it. */
  get sid(): string {
    const key = this.sidKey;
    return typeof key === "number" ? String(key) : key;
  }

  /** Deliveries after which the subscription ends (UNSUB <sid> <max>); 0 = no limit. */
  get max(): number {
    const extra = this.extra;
    return extra === null ? 0 : extra.max;
  }

  set max(n: number) {
    this.extras().max = n;
  }

  /**
   * Counts one delivery; true when it was the last that UNSUB <sid> <max> allows (the subscriber then
   * removes the subscription, as nats-server does at its max).
   */
  countDelivery(): boolean {
    const delivered = ++this.delivered;
    const extra = this.extra;
    return extra !== null && extra.max > 0 && delivered >= extra.max;
  }

  /** `MSG <subject> <sid> ` for a literal subject (the delivered subject is then always the same); null for wildcards. */
  get msgPrefix(): Buffer | null {
    const extra = this.extra ?? this.extras();
    if (!extra.literal) return null;
    return (extra.head ??= Buffer.from(`MSG ${this.subject} ${this.sid} `, "latin1"));
  }

  /** `HMSG <subject> <sid> `, likewise. */
  get hmsgPrefix(): Buffer | null {
    const extra = this.extra ?? this.extras();
    if (!extra.literal) return null;
    return (extra.hhead ??= Buffer.from(`HMSG ${this.subject} ${this.sid} `, "latin1"));
  }

  /** ` <sid> `: what follows the subject when the subject must be copied from the message. */
  get sidInfix(): Buffer {
    const extra = this.extra ?? this.extras();
    if (!extra.literal) return (extra.head ??= Buffer.from(` ${this.sid} `, "latin1"));
    return Buffer.from(` ${this.sid} `, "latin1"); // a literal subscription only needs it off the hot path
  }

  private extras(): SubscriptionExtra {
    return (this.extra ??= new SubscriptionExtra(subjectIsLiteral(this.subject)));
  }
}

/** What a subscription needs once it delivers or has a limit. */
class SubscriptionExtra {
  max = 0;
  // `MSG <subject> <sid> ` for a literal subscription, ` <sid> ` (sidInfix) for any other.
  head: Buffer | null = null;
  // `HMSG <subject> <sid> ` (literal only).
  hhead: Buffer | null = null;

  constructor(readonly literal: boolean) {}
}
