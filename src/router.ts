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
  const skip = skipPublisher ? publisher : null;
  for (let g = 0; g < queues.length; g++) {
    const sub = pickQueueMember(queues[g]!, skip, anyRemote, null);
    if (sub === null) continue;
    sub.client.deliver(sub, buf, subjectStart, subjectEnd, replyStart, replyEnd, headerSize, payloadStart, payloadEnd, tailStart, publisher);
    delivered = true;
  }
  return delivered;
}

/** Whether a queue group may fall back to `client`, a route or leaf connection, for a message from `source`. */
export type RemoteRule = (client: Subscriber, source: Subscriber | null) => boolean;

/** A message published here may go to any other node or leaf side that has members. */
function anyRemote(): boolean {
  return true;
}

/**
 * Who a message that came over a route may go to on this node: local subscribers and leaf nodes
 * attached here, never another route nor our own hub (a leaf link we dialed), except a --procs worker's
 * hub link, which is every worker's (Subscriber.sharedHubLink). See deliverRouted.
 */
export function reachedFromRoute(client: Subscriber): boolean {
  return client.isRoute !== true || (client.isLeaf === true && (client.isSpoke !== true || client.sharedHubLink === true));
}

/**
 * The member of a queue group that gets a message: a local one (the search starts at a random member,
 * so the load spreads), else, when there is none, one of the remote members (routes, leaf connections)
 * that `remoteTakes` allows, picked weighted by how many members each stands for (reservoir sampling).
 * `skip` (a publisher without echo, the side the message came from) is never picked. Null: no one.
 *
 * Hot path: no allocation; `remoteTakes` is asked about remote members only.
 */
export function pickQueueMember(members: readonly Subscription[], skip: Subscriber | null, remoteTakes: RemoteRule, source: Subscriber | null): Subscription | null {
  const count = members.length;
  const first = (Math.random() * count) | 0;
  let remote: Subscription | null = null;
  let remoteWeight = 0;
  for (let n = 0; n < count; n++) {
    const sub = members[(first + n) % count]!;
    const client = sub.client;
    if (client === skip) continue;
    if (client.isRoute === true) {
      if (!remoteTakes(client, source)) continue;
      const weight = (sub as Subscription & { weight?: number }).weight || 1;
      remoteWeight += weight;
      if (Math.random() * remoteWeight < weight) remote = sub;
      continue;
    }
    return sub;
  }
  return remote;
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
      if (!reachedFromRoute(client)) continue;
      client.deliver(sub, buf, subjectStart, subjectEnd, replyStart, replyEnd, headerSize, payloadStart, payloadEnd, tailStart, route);
      delivered = true;
    }
  }
  if (queuesStart >= queuesEnd) return delivered;
  const queues = result.queues;
  for (let g = 0; g < queues.length; g++) {
    const members = queues[g]!;
    if (!isNamed(buf, queuesStart, queuesEnd, members[0]!.queue!)) continue;
    const sub = pickQueueMember(members, null, reachedFromRoute, route);
    if (sub === null) continue;
    sub.client.deliver(sub, buf, subjectStart, subjectEnd, replyStart, replyEnd, headerSize, payloadStart, payloadEnd, tailStart, route);
    delivered = true;
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
