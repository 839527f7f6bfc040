import type { SublistResult } from "./subjects/sublist.ts";
import type { Subscriber } from "./subscriber.ts";
import type { Subscription } from "./subscription.ts";

/**
 * Delivers one message to the subscriptions it matched: every plain subscription, and one member
 * of each queue group, chosen at random. The publisher's own subscriptions are skipped when it
 * asked for echo=false. Returns whether anyone got it (for no-responders).
 *
 * Hot path: no allocation, no await; each delivery is a copy into the subscriber's buffer.
 * Messages from one publisher reach each subscriber in publish order: delivery is synchronous.
 */
export function deliverToMatches(
  result: SublistResult<Subscription>,
  publisher: Subscriber | null,
  skipPublisher: boolean,
  buf: Buffer,
  subjectStart: number,
  subjectEnd: number,
  replyStart: number,
  replyEnd: number,
  headerSize: number,
  payloadStart: number,
  payloadEnd: number,
  tailStart: number,
): boolean {
  let delivered = false;
  const plain = result.plain;
  for (let k = 0; k < plain.length; k++) {
    const sub = plain[k]!;
    const client = sub.client;
    if (skipPublisher && client === publisher) continue;
    client.deliver(sub, buf, subjectStart, subjectEnd, replyStart, replyEnd, headerSize, payloadStart, payloadEnd, tailStart, publisher);
    delivered = true;
  }
  const queues = result.queues;
  for (let g = 0; g < queues.length; g++) {
    const members = queues[g]!;
    const count = members.length;
    const first = (Math.random() * count) | 0;
    for (let n = 0; n < count; n++) {
      const sub = members[(first + n) % count]!;
      if (skipPublisher && sub.client === publisher) continue;
      sub.client.deliver(sub, buf, subjectStart, subjectEnd, replyStart, replyEnd, headerSize, payloadStart, payloadEnd, tailStart, publisher);
      delivered = true;
      break;
    }
  }
  return delivered;
}
