import type { SublistEntry } from "./subjects/sublist.ts";
import type { Subscriber } from "./subscriber.ts";

/**
 * One SUB of one client. Frame prefixes are computed once here so that delivery writes them
 * with a single copy instead of formatting `MSG <subject> <sid> ` for every message.
 */
export class Subscription implements SublistEntry {
  /** `MSG <subject> <sid> ` for a literal subject (the delivered subject is then always the same); null for wildcards. */
  readonly msgPrefix: Buffer | null;
  /** `HMSG <subject> <sid> `, likewise. */
  readonly hmsgPrefix: Buffer | null;
  /** ` <sid> `: what follows the subject when the subject must be copied from the message. */
  readonly sidInfix: Buffer;
  /** Deliveries after which the subscription ends (UNSUB <sid> <max>); 0 = no limit. */
  max = 0;
  delivered = 0;

  constructor(
    readonly client: Subscriber,
    readonly subject: string,
    readonly queue: string | null,
    readonly sid: string,
    literal: boolean,
  ) {
    this.sidInfix = Buffer.from(` ${sid} `, "latin1");
    this.msgPrefix = literal ? Buffer.from(`MSG ${subject} ${sid} `, "latin1") : null;
    this.hmsgPrefix = literal ? Buffer.from(`HMSG ${subject} ${sid} `, "latin1") : null;
  }
}
