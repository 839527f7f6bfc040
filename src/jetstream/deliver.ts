// Delivery of a stored message to a consumer's subscriber: routed by the deliver subject (a push
// consumer's deliver_subject, a pull request's reply inbox) but presented with the message's own
// subject, as nats-server does (its `pa.deliver`): `MSG orders.1 <sid of the inbox> $JS.ACK.… 5`.
// Clients rely on it: KV watch/keys read the key from the subject.
//
// The core's router writes the subject it was given, and a literal subscription carries a precomputed
// `MSG <its subject> <sid> ` prefix. So this routes itself (sublist match, one member per queue group)
// and hands literal subscriptions a twin without that prefix; the twin's delivery count is carried back
// to the real subscription so `UNSUB <sid> <max>` still ends it.
//
// A stream of account A delivers to A's subscribers of the deliver subject, whatever other accounts
// subscribe to the same subject; a stream export of A that covers the deliver subject carries the delivery
// on into the importing account like any publish (src/accounts/imports.ts), routed there by the mapped
// deliver subject and still showing the message's subject.
import type { Account } from "../accounts/account.ts";
import { InternalClient } from "../internal-client.ts";
import { delivery } from "../router.ts";
import { Subscription } from "../subscription.ts";
import type { Server } from "../server.ts";
import type { Subscriber } from "../subscriber.ts";
import type { SublistResult } from "../subjects/sublist.ts";

const twins = new WeakMap<Subscription, Subscription>();

function twinOf(sub: Subscription): Subscription {
  let twin = twins.get(sub);
  if (twin === undefined) {
    twin = new Subscription(sub.client, sub.subject, sub.queue, sub.sid, false);
    twins.set(sub, twin);
  }
  return twin;
}

/** Composes a canonical HPUB/PUB frame; returns it with the offsets deliver() takes. */
export function frame(subject: string, reply: string | null, headers: Buffer | null, payload: Buffer) {
  const hs = headers === null ? -1 : headers.length;
  const total = payload.length + (headers === null ? 0 : headers.length);
  const line = `${headers === null ? "PUB" : "HPUB"} ${subject} ${reply === null ? "" : `${reply} `}${headers === null ? total : `${hs} ${total}`}\r\n`;
  const lineLength = Buffer.byteLength(line, "latin1");
  const buf = Buffer.allocUnsafe(lineLength + total + 2);
  buf.write(line, 0, "latin1");
  let at = lineLength;
  if (headers !== null) at += headers.copy(buf, at);
  at += payload.copy(buf, at);
  buf[at] = 13;
  buf[at + 1] = 10;
  const subjectStart = headers === null ? 4 : 5;
  const subjectEnd = subjectStart + subject.length;
  const replyStart = reply === null ? -1 : subjectEnd + 1;
  return {
    buf, subjectStart, subjectEnd, replyStart, replyEnd: reply === null ? -1 : replyStart + reply.length,
    headerSize: hs, payloadStart: lineLength, payloadEnd: lineLength + total, tailStart: subjectEnd + 1,
  };
}

/**
 * Hands one subscription a message framed for `subject` (the one shown), whatever subscription matched
 * it: literal ones get their twin. Used by deliverAs, and by a route for such a message another node
 * sent (src/cluster/route.ts).
 */
export function presentTo(
  sub: Subscription, buf: Buffer, subjectStart: number, subjectEnd: number, replyStart: number, replyEnd: number,
  headerSize: number, payloadStart: number, payloadEnd: number, tailStart: number, publisher: Subscriber | null,
): void {
  const direct = sub.msgPrefix === null || sub.client instanceof InternalClient;
  const target = direct ? sub : twinOf(sub);
  sub.client.deliver(target, buf, subjectStart, subjectEnd, replyStart, replyEnd, headerSize, payloadStart, payloadEnd, tailStart, publisher);
  if (!direct && sub.countDelivery()) {
    (sub.client as Subscriber & { removeSubscription?(s: Subscription): void }).removeSubscription?.(sub);
  }
}

/**
 * A subscriber that carries the deliver subject along instead of being handed the message: a route to
 * another cluster node (src/cluster/route.ts), which shows `subject` the same way there; a stream
 * import's bridge (src/accounts/imports.ts), which routes by the mapped deliver subject in the importing
 * account (as nats-server's shadow subscriptions: the header keeps the message's subject); and a service
 * import's response bridge, which routes a pull request's messages back to the requester's reply subject.
 */
export interface DeliverAsCarrier {
  deliverAs(
    sub: Subscription, deliverSubject: string, buf: Buffer, subjectStart: number, subjectEnd: number, replyStart: number, replyEnd: number,
    headerSize: number, payloadStart: number, payloadEnd: number, tailStart: number, publisher: Subscriber | null,
  ): void;
}

/**
 * A carrier that takes a delivery as its parts, with no frame composed first: a leaf link writes its
 * `LMSG <deliver subject> <reply>@<subject>` straight from them (a mirror's or source's feed, a push
 * consumer across the link). Called once for each of its subscriptions the deliver subject matched: the
 * carrier writes the message once (`delivery.seq` tells the calls for one message apart).
 */
export interface PartsCarrier {
  deliverParts(sub: Subscription, deliverSubject: string, subject: string, reply: string | null, headers: Buffer | null, payload: Buffer): void;
}

function carriesParts(subs: readonly Subscription[]): boolean {
  for (const sub of subs) if (typeof (sub.client as Partial<PartsCarrier>).deliverParts !== "function") return false;
  return true;
}

/** A subscriber that can say whether anyone behind it listens on a subject (an import bridge does). */
export interface InterestCarrier {
  hasInterestIn(sub: Subscription, subject: string): boolean;
}

function carries(client: Subscriber): boolean {
  return typeof (client as Partial<DeliverAsCarrier>).deliverAs === "function";
}

/**
 * Delivers to the subscribers of `route` in the publisher's account, showing `subject`. Returns whether
 * anyone received it. Counts as one inbound message of the server, like an internal publish.
 */
export function deliverAs(
  server: Server, publisher: InternalClient, route: string, subject: string, reply: string | null, headers: Buffer | null, payload: Buffer,
): boolean {
  const result = publisher.account.sublist.match(route);
  if (result.plain.length === 0 && result.queues.length === 0) return false;
  server.stats.inMsgs++;
  if (result.queues.length === 0 && carriesParts(result.plain)) {
    // Only carriers that take the parts (a leaf link): no frame to compose, they write their own.
    server.stats.inBytes += (headers?.length ?? 0) + payload.length;
    delivery.seq++;
    for (const sub of result.plain) {
      if (!sub.client.closed) (sub.client as unknown as PartsCarrier).deliverParts(sub, route, subject, reply, headers, payload);
    }
    return true;
  }
  const f = frame(subject, reply, headers, payload);
  server.stats.inBytes += f.payloadEnd - f.payloadStart;
  presentAll(result, route, f.buf, f.subjectStart, f.subjectEnd, f.replyStart, f.replyEnd, f.headerSize, f.payloadStart, f.payloadEnd, f.tailStart, publisher);
  return true;
}

/**
 * Hands a framed message to the subscriptions `result` matched for `route`: local ones see the frame's
 * subject (presentTo), carriers (routes, import bridges, leaf links: src/leaf/connection.ts) get the deliver
 * subject along. One member per queue group, local members first, as for any message.
 */
export function presentAll(
  result: SublistResult<Subscription>, route: string, buf: Buffer, subjectStart: number, subjectEnd: number, replyStart: number, replyEnd: number,
  headerSize: number, payloadStart: number, payloadEnd: number, tailStart: number, publisher: Subscriber | null,
  /** A leaf link the message came over: never sent back to it. */
  except: Subscriber | null = null,
): void {
  const one = (sub: Subscription) =>
    presentTo(sub, buf, subjectStart, subjectEnd, replyStart, replyEnd, headerSize, payloadStart, payloadEnd, tailStart, publisher);
  delivery.seq++;
  const carry = (sub: Subscription) =>
    (sub.client as unknown as DeliverAsCarrier).deliverAs(sub, route, buf, subjectStart, subjectEnd, replyStart, replyEnd, headerSize, payloadStart, payloadEnd, tailStart, publisher);
  const local = (s: Subscription) => !s.client.closed && s.client.isRoute !== true;
  const carrier = (s: Subscription) => !s.client.closed && s.client !== except && carries(s.client);
  for (const sub of result.plain) {
    if (carrier(sub)) carry(sub);
    else if (local(sub)) one(sub);
  }
  for (const members of result.queues) {
    const live = members.filter((s) => local(s) && !carries(s.client));
    if (live.length > 0) one(live[(Math.random() * live.length) | 0]!);
    else {
      const remote = members.filter(carrier);
      if (remote.length > 0) carry(remote[(Math.random() * remote.length) | 0]!);
    }
  }
}

/** Is anyone in `account` subscribed to `subject`? (push consumers deliver only while someone listens) */
export function hasInterest(account: Account, subject: string): boolean {
  const r = account.sublist.match(subject);
  if (r.queues.length > 0) return true;
  // An import bridge listens for its importers: only as much as they do (nats-server's shadow subscriptions
  // exist only while the importing account has a subscriber).
  for (const sub of r.plain) {
    const client = sub.client as Subscriber & Partial<InterestCarrier>;
    if (client.hasInterestIn === undefined || client.hasInterestIn(sub, subject)) return true;
  }
  return false;
}

/**
 * A push consumer's interest: with a deliver group only members of that queue group count (nats-server
 * registers its interest for the subject and group), otherwise anyone subscribed to the deliver subject.
 */
export function hasDeliveryInterest(account: Account, subject: string, group: string | undefined): boolean {
  if (group === undefined || group === "") return hasInterest(account, subject);
  return account.sublist.match(subject).queues.some((members) => members.some((s) => s.queue === group));
}
