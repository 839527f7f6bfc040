// A kept session held by another node of a cluster, as this node holds it, so that what is published here
// is kept for it also when that node cannot take it (nats-server: each QoS 1/2 subscription of a session is a
// durable consumer on `$MQTT_msgs`, which lives in the cluster, not on one node). Every node watches the
// session records in `$MQTT_sess`; for each kept session another node holds, it subscribes to the
// session's QoS 1/2 filters local-only (the other nodes are not told of this interest). A QoS 1/2 message
// published on this node goes to the holding node as before when its route is up and it has the interest
// (it delivers or keeps the message); otherwise (that node is down, or restarting and not yet subscribed)
// this node writes it to `$MQTT_qos` for the session itself, where the client gets it back on whichever
// node it returns to. A message that came over a route is left to the node it was published on.
import type { Subscriber } from "../subscriber.ts";
import type { Subscription } from "../subscription.ts";
import type { Account } from "../accounts/account.ts";
import { subjectToTopic } from "./topics.ts";
import { MqttSubscription, payloadCopy } from "./session.ts";
import { expiryOf, type StoredMessage, type StoredSession } from "./store.ts";

/** A message whose publisher is on another node (leaf links are not routes here: what comes in over one is kept where it comes in). */
function fromAnotherNode(publisher: Subscriber | null): boolean {
  return publisher !== null && publisher.isRoute === true && publisher.isLeaf !== true;
}

export class RemoteSessionKeeper implements Subscriber {
  readonly headers = true;
  closed = false;
  private readonly subs: MqttSubscription[] = [];

  constructor(
    readonly clientId: string,
    readonly account: Account,
    /** When the session expires (ms since the epoch), null if never (or while its client is connected). */
    private readonly expiresAt: number | null,
    /** Whether the node holding the session takes this message itself (its route is up and it has the interest). */
    private readonly holderTakes: (subject: string) => boolean,
    /** Writes a message for the session to `$MQTT_qos` (the publisher's acknowledgement waits for it). */
    private readonly keep: (clientId: string, message: StoredMessage) => void,
  ) {}

  /** Subscribes local-only to the record's QoS 1/2 subscriptions (shared ones stay with the node that held the session). */
  subscribeAll(record: StoredSession): void {
    let sid = 1;
    for (const s of record.subscriptions) {
      if (s.qos === 0 || s.queue !== null) continue;
      for (const subject of s.parent === null ? [s.subject] : [s.subject, s.parent]) {
        const literal = !subject.includes("*") && !subject.includes(">");
        const sub = new MqttSubscription(this, subject, null, String(sid++), literal, s.filter, s.key, s.qos, s.noLocal, s.retainAsPublished, s.subscriptionId);
        (sub as Subscription & { local?: boolean }).local = true; // read by src/cluster/interest.ts: not told to the other nodes
        this.account.sublist.insert(sub);
        this.subs.push(sub);
      }
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const sub of this.subs) this.account.sublist.remove(sub);
    this.subs.length = 0;
  }

  deliver(
    sub: Subscription,
    buf: Buffer,
    subjectStart: number,
    subjectEnd: number,
    replyStart: number,
    replyEnd: number,
    headerSize: number,
    payloadStart: number,
    payloadEnd: number,
    _tailStart: number,
    publisher: Subscriber | null,
  ): void {
    if (this.closed || fromAnotherNode(publisher)) return;
    const msub = sub as MqttSubscription;
    const qos = msub.qosFor(buf, headerSize, payloadStart, publisher);
    if (qos === 0) return; // QoS 0 is for a connected client only
    if (msub.hides(buf, subjectStart)) return;
    if (this.expiresAt !== null && Date.now() >= this.expiresAt) return this.close();
    const subject = buf.toString("utf8", subjectStart, subjectEnd);
    if (this.holderTakes(subject)) return;
    const properties = msub.propertiesFor(buf, replyStart, replyEnd, headerSize, payloadStart);
    const topic = subjectToTopic(subject);
    const payload = payloadCopy(buf, headerSize, payloadStart, payloadEnd);
    this.keep(this.clientId, { topic, payload, qos, properties, expiresAt: expiryOf(properties) });
  }

  /** QoS 0 runs (Mqtt.publishQos0): nothing to keep. */
  deliverQos0(): void {}
}
