// Delivery of a message that came in over a leafnode connection (LMSG/HMSG), as nats-server's
// processInboundLeafMsg/processMsgResults do it:
//
// - Plain subscriptions: every local subscriber gets it; so does every other leaf connection with
//   interest, but not one to the cluster the message came from (cluster-wide no echo: that cluster
//   has it already). Routes get it only when the source is a leaf node attached to this server: a
//   message from our hub (we are its spoke) is not passed to the other nodes of our cluster, which
//   have connections of their own to the hub (and the hub sent it to each that wanted it). Except the
//   link of --procs (worker 0's, sharedHubLink): the other workers have none, so it goes to the routes.
// - Queue groups: only the groups the sender named (it picked this side for them), one member each,
//   a local member when there is one, else one member on another route or leaf connection (weighted
//   by member counts). A message naming no group reaches no queue subscriber.
// - Never back to the source.
//
// Hot path, as deliverToMatches: no allocation.
import { delivery, pickQueueMember } from "../router.ts";
import type { Subscriber } from "../subscriber.ts";
import type { SublistResult } from "../subjects/sublist.ts";
import type { Subscription } from "../subscription.ts";
import type { LeafConnection } from "./connection.ts";

/** Whether a route or leaf connection may get a message from `source` (see the header). */
function forwardable(client: { isLeaf?: boolean }, source: LeafConnection, toRoutes: boolean): boolean {
  if (client.isLeaf === true) {
    const cluster = source.remoteCluster;
    return cluster === "" || (client as LeafConnection).remoteCluster !== cluster;
  }
  return toRoutes;
}

/** A queue group's remote members a message from a leaf connection may go to (pickQueueMember). */
function takesFromLeaf(client: Subscriber, source: Subscriber | null): boolean {
  return forwardable(client, source as LeafConnection, true);
}

export function deliverFromLeaf(
  result: SublistResult<Subscription>,
  source: LeafConnection,
  tokenStart: Int32Array,
  tokenEnd: Int32Array,
  queuesFrom: number,
  queuesTo: number,
  buf: Buffer,
  subjectStart: number,
  subjectEnd: number,
  replyStart: number,
  replyEnd: number,
  headerSize: number,
  payloadStart: number,
  payloadEnd: number,
  tailStart: number,
  everyQueue = false,
): boolean {
  let delivered = false;
  delivery.seq++;
  const toRoutes = !source.isSpoke || source.sharedHubLink;
  const plain = result.plain;
  for (let k = 0; k < plain.length; k++) {
    const sub = plain[k]!;
    const client = sub.client;
    if (client === source) continue;
    if (client.isRoute === true && !forwardable(client as { isLeaf?: boolean }, source, toRoutes)) continue;
    client.deliver(sub, buf, subjectStart, subjectEnd, replyStart, replyEnd, headerSize, payloadStart, payloadEnd, tailStart, source);
    delivered = true;
  }
  if (!everyQueue && queuesTo <= queuesFrom) return delivered;
  const queues = result.queues;
  for (let g = 0; g < queues.length; g++) {
    const members = queues[g]!;
    if (!everyQueue && !isNamed(buf, tokenStart, tokenEnd, queuesFrom, queuesTo, members[0]!.queue!)) continue;
    const sub = pickQueueMember(members, source, takesFromLeaf, source);
    if (sub === null) continue;
    sub.client.deliver(sub, buf, subjectStart, subjectEnd, replyStart, replyEnd, headerSize, payloadStart, payloadEnd, tailStart, source);
    delivered = true;
  }
  return delivered;
}

/** Whether `name` is one of the tokens [from, to) of the control line. */
function isNamed(buf: Buffer, tokenStart: Int32Array, tokenEnd: Int32Array, from: number, to: number, name: string): boolean {
  const length = name.length;
  for (let t = from; t < to; t++) {
    const start = tokenStart[t]!;
    if (tokenEnd[t]! - start !== length) continue;
    let k = 0;
    while (k < length && buf[start + k] === name.charCodeAt(k)) k++;
    if (k === length) return true;
  }
  return false;
}
