import type { SublistResult } from "./subjects/sublist.ts";
import type { Subscriber } from "./subscriber.ts";
import type { Subscription } from "./subscription.ts";

/**
 * Numbers each message deliverToMatches handles. A route (src/cluster/route.ts) reached through
 * several matching subscriptions sends the message once, and adds the queue groups it was picked
 * for to that one frame: it recognises the message by this number.
 */
export const delivery = { seq: 0 };

/**
 * While a route delivers a JetStream API request that another node's client sent: that client's
 * ClientInfo JSON, from the route frame (src/request-info.ts); null otherwise. Internal clients keep it
 * with the message (InternalMessage.requestInfo), for the API's audit advisory.
 */
export const routedRequest: { info: string | null } = { info: null };

/**
 * Delivers one message to the subscriptions it matched: every plain subscription, and one member
 * of each queue group, chosen at random among the local members, or among the routes to other
 * nodes that have members when there is no local one (as nats-server: local members first).
 * The publisher's own subscriptions are skipped when it asked for echo=false. Returns whether
 * anyone got it (for no-responders).
 *
 * Hot path: no allocation, no await; each delivery is a copy into the subscriber's buffer.
 * Messages from one publisher reach each subscriber in publish order: delivery is synchronous.
 * Messages that came from a route go through deliverRouted instead.
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
  delivery.seq++;
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
    let remote: Subscription | null = null;
    let remoteWeight = 0;
    let n = 0;
    for (; n < count; n++) {
      const sub = members[(first + n) % count]!;
      const client = sub.client;
      if (skipPublisher && client === publisher) continue;
      if (client.isRoute === true) {
        // Another node's members of the group: one pick among the nodes, weighted by their member
        // counts (reservoir sampling), used only if no local member turns up.
        const weight = (sub as Subscription & { weight?: number }).weight || 1;
        remoteWeight += weight;
        if (Math.random() * remoteWeight < weight) remote = sub;
        continue;
      }
      client.deliver(sub, buf, subjectStart, subjectEnd, replyStart, replyEnd, headerSize, payloadStart, payloadEnd, tailStart, publisher);
      delivered = true;
      break;
    }
    if (n === count && remote !== null) {
      remote.client.deliver(remote, buf, subjectStart, subjectEnd, replyStart, replyEnd, headerSize, payloadStart, payloadEnd, tailStart, publisher);
      delivered = true;
    }
  }
  return delivered;
}

/**
 * Delivers a message that came from another node over `route`, to this node's own subscribers
 * only: a routed message never goes to another route (the origin sent it to every node that
 * wanted it), so nothing loops and nothing arrives twice. "Own" includes leaf nodes attached to
 * this node (their interest is this node's for the cluster, src/cluster/interest.ts), but not a hub
 * this node is a leaf of (the origin node has its own connection to it), unless that link is every
 * --procs worker's (sharedHubLink: the others have none). Plain subscriptions get it
 * unless `queuesOnly`; of the queue groups, only those the origin picked this node for (named in
 * buf[queuesStart, queuesEnd) as u16 length + name, see src/cluster/protocol.ts) get it, one
 * member each: a client when there is one, else an attached leaf node (weighted by its members).
 * Returns whether anyone got it.
 *
 * Hot path, as deliverToMatches: no allocation.
 */
export function deliverRouted(
  result: SublistResult<Subscription>,
  route: Subscriber,
  queuesOnly: boolean,
  queuesStart: number,
  queuesEnd: number,
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
  // A leaf connection recognises the several matches of one message by this number (one frame).
  delivery.seq++;
  if (!queuesOnly) {
    const plain = result.plain;
    for (let k = 0; k < plain.length; k++) {
      const sub = plain[k]!;
      const client = sub.client;
      if (client.isRoute === true && (client.isLeaf !== true || (client.isSpoke === true && client.sharedHubLink !== true))) continue;
      client.deliver(sub, buf, subjectStart, subjectEnd, replyStart, replyEnd, headerSize, payloadStart, payloadEnd, tailStart, route);
      delivered = true;
    }
  }
  if (queuesStart >= queuesEnd) return delivered;
  const queues = result.queues;
  for (let g = 0; g < queues.length; g++) {
    const members = queues[g]!;
    if (!isNamed(buf, queuesStart, queuesEnd, members[0]!.queue!)) continue;
    const count = members.length;
    const first = (Math.random() * count) | 0;
    let leaf: Subscription | null = null;
    let leafWeight = 0;
    let n = 0;
    for (; n < count; n++) {
      const sub = members[(first + n) % count]!;
      const client = sub.client;
      if (client.isRoute === true) {
        if (client.isLeaf !== true || (client.isSpoke === true && client.sharedHubLink !== true)) continue;
        const weight = (sub as Subscription & { weight?: number }).weight || 1;
        leafWeight += weight;
        if (Math.random() * leafWeight < weight) leaf = sub;
        continue;
      }
      client.deliver(sub, buf, subjectStart, subjectEnd, replyStart, replyEnd, headerSize, payloadStart, payloadEnd, tailStart, route);
      delivered = true;
      break;
    }
    if (n === count && leaf !== null) {
      leaf.client.deliver(leaf, buf, subjectStart, subjectEnd, replyStart, replyEnd, headerSize, payloadStart, payloadEnd, tailStart, route);
      delivered = true;
    }
  }
  return delivered;
}

/** Whether `name` is one of the (u16 length, latin1 bytes) entries in buf[start, end). */
function isNamed(buf: Buffer, start: number, end: number, name: string): boolean {
  const length = name.length;
  let at = start;
  while (at + 2 <= end) {
    const entryLength = (buf[at]! << 8) | buf[at + 1]!;
    at += 2;
    if (entryLength === length) {
      let k = 0;
      while (k < length && buf[at + k] === name.charCodeAt(k)) k++;
      if (k === length) return true;
    }
    at += entryLength;
  }
  return false;
}
