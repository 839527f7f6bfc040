// An MQTT session (spec 4.1): the client id's subscriptions and its QoS 1/2 state. The session, not
// the network connection, is the Subscriber in the account's Sublist, so a session kept after its
// client left (3.1.1 clean session = false, 5.0 session expiry > 0) keeps collecting QoS 1/2 messages
// for the client's return. A kept session is also written to the stream layer (src/mqtt/store.ts):
// its subscriptions, and each QoS 1/2 message until the client completes it, so it survives a restart.
import { Subscription } from "../subscription.ts";
import type { Subscriber } from "../subscriber.ts";
import type { Account } from "../accounts/account.ts";
import { PacketType, MQTT_5, type PublishPacket, type Will } from "./packets.ts";
import type { Properties } from "./properties.ts";
import { headersToProperties, publishedQos, publishedRetain } from "./headers.ts";
import { subjectToTopic } from "./topics.ts";
import type { MqttConnection } from "./connection.ts";
import type { Qos0Run } from "./qos0-run.ts";
import { clientIdHash, expiryOf, type StoredMessage, type StoredSubscription } from "./store.ts";

/** One NATS subscription of an MQTT subscription (a filter ending in `/#` has two: `a.>` and `a`). */
export class MqttSubscription extends Subscription {
  constructor(
    client: Subscriber,
    subject: string,
    queue: string | null,
    sid: string,
    literal: boolean,
    /** The topic filter as the client gave it (without `$share/<group>/`). */
    readonly filter: string,
    /** The key of the session's subscription map (the filter as given, `$share/g/` included). */
    readonly key: string,
    readonly qos: 0 | 1 | 2,
    readonly noLocal: boolean,
    readonly retainAsPublished: boolean,
    readonly subscriptionId: number | undefined,
  ) {
    super(client, subject, queue, sid, literal);
    this.literal = literal;
    this.firstLevelWildcard = subject === ">" || subject === "*" || subject.startsWith("*.");
  }

  /** `#`, `+` or `+/…`: such a filter does not match topics that start with `$`. */
  readonly firstLevelWildcard: boolean;
  private readonly literal: boolean;
  /** A literal subscription's topic, as bytes (the delivered subject is always its own). */
  private literalTopic: Buffer | null = null;

  /** The MQTT topic (UTF-8 bytes) of the subject buf[start, end) a message was delivered on. */
  topicFor(buf: Buffer, start: number, end: number): Buffer {
    if (this.literal) return (this.literalTopic ??= Buffer.from(subjectToTopic(this.subject), "utf8"));
    return topicBytes(buf, start, end);
  }

  /**
   * [MQTT-4.7.2-1]: a filter starting with a wildcard does not match topics starting with `$` (nats-server's
   * isMQTTReservedSubscription): `#` sees no $SYS, $JS or $MQTT traffic.
   */
  hides(buf: Buffer, subjectStart: number): boolean {
    return buf[subjectStart] === 0x24 /* $ */ && this.firstLevelWildcard;
  }

  /**
   * The QoS a message goes out at here: the lower of the publisher's and the subscription's. An MQTT
   * publisher on this node says its QoS; one on another node (over a route) in its Nmqtt-Pub header;
   * NATS publishers: 0 (as nats-server).
   */
  qosFor(buf: Buffer, headerSize: number, payloadStart: number, publisher: Subscriber | null): 0 | 1 | 2 {
    const publisherQos = publisher instanceof MqttSession ? publisher.publishingQos : headerSize > 0 ? publishedQos(buf, payloadStart, headerSize) : 0;
    return Math.min(publisherQos, this.qos) as 0 | 1 | 2;
  }

  /** MQTT 5 properties of a NATS message delivered here: its headers, its reply as the response topic, the subscription identifier. */
  propertiesFor(buf: Buffer, replyStart: number, replyEnd: number, headerSize: number, payloadStart: number): Properties {
    const properties: Properties = {};
    if (headerSize > 0) headersToProperties(buf.subarray(payloadStart, payloadStart + headerSize), properties);
    if (replyStart >= 0) properties.responseTopic = subjectToTopic(buf.toString("utf8", replyStart, replyEnd));
    if (this.subscriptionId !== undefined) properties.subscriptionIdentifiers = [this.subscriptionId];
    return properties;
  }
}

/** A copy of a NATS message's payload without its headers (an MQTT message has none). */
export function payloadCopy(buf: Buffer, headerSize: number, payloadStart: number, payloadEnd: number): Buffer {
  return Buffer.from(buf.subarray(headerSize > 0 ? payloadStart + headerSize : payloadStart, payloadEnd));
}

/** Subject → topic bytes for wildcard deliveries, kept for the most recent subjects (most traffic repeats a few). */
const TOPIC_CACHE_SIZE = 4096;
let topicCache = new Map<string, Buffer>();

function topicBytes(buf: Buffer, start: number, end: number): Buffer {
  const subject = buf.toString("utf8", start, end);
  let topic = topicCache.get(subject);
  if (topic === undefined) {
    if (topicCache.size >= TOPIC_CACHE_SIZE) topicCache = new Map();
    topic = Buffer.from(subjectToTopic(subject), "utf8");
    topicCache.set(subject, topic);
  }
  return topic;
}

/** What the session asks of the server's MQTT layer: keeping QoS 1/2 messages in the stream layer. */
export interface SessionKeeper {
  /** Stores a QoS 1/2 message for a kept session; resolves to its stream sequence (0: not stored). */
  keepPending(session: MqttSession, packet: PublishPacket, expiresAt: number | undefined): Promise<number>;
  completePending(session: MqttSession, stored: Promise<number>): void;
}

/** A QoS 1/2 message sent to the client and not yet completed. */
interface Inflight {
  packet: PublishPacket;
  /** "publish": waiting for PUBACK (QoS 1) or PUBREC (QoS 2); "release": PUBREL sent, waiting for PUBCOMP. */
  state: "publish" | "release";
  sentAt: number;
  /** Its stream sequence in $MQTT_qos (kept sessions), or null. */
  stored: Promise<number> | null;
}

interface Queued {
  packet: PublishPacket;
  stored: Promise<number> | null;
  /** MQTT 5 message expiry (ms since the epoch): dropped if still queued then; undefined = never. */
  expiresAt: number | undefined;
}

/** Messages waiting for an in-flight slot are kept up to this many, then dropped (oldest first). */
const MAX_QUEUED = 65_536;

export class MqttSession implements Subscriber {
  readonly headers = true;
  closed = false;
  /** The connected client, or null while a kept session waits for it. */
  connection: MqttConnection | null = null;
  /** Subscriptions by the filter as given (`$share/g/f` included), each one or two NATS subscriptions. */
  readonly subscriptions = new Map<string, MqttSubscription[]>();
  /** QoS 1/2 messages sent and not completed, by packet identifier. */
  readonly inflight = new Map<number, Inflight>();
  /** QoS 1/2 messages waiting for a free in-flight slot (max_ack_pending, the client's receive maximum). */
  private queued: Queued[] = [];
  /** QoS 2 packet identifiers received (PUBREC sent) and not yet released by PUBREL. */
  readonly receivedQos2 = new Set<number>();
  private nextPacketId = 1;
  private nextSid = 1;
  /** The QoS and retain flag of the message this session is publishing right now (read by deliver, as the publisher's). */
  publishingQos: 0 | 1 | 2 = 0;
  publishingRetain = false;
  /** Written to the stream layer (a kept session with a store): its end must be written too. */
  persisted = false;
  /** MQTT 5 session expiry (seconds); 0 = ends with the connection; 3.1.1 clean session = false is "never". */
  expirySeconds = 0;
  expiryTimer: ReturnType<typeof setTimeout> | null = null;
  /** When the session's connection was closed without DISCONNECT and the will waits for the will delay. */
  willTimer: ReturnType<typeof setTimeout> | null = null;
  /** That will and when it is due (kept with the session in the stream layer, so it survives a restart). */
  pendingWill: { will: Will; at: number } | null = null;
  /** When the client went away (ms since the epoch); null while connected. The session expiry counts from it. */
  disconnectedAt: number | null = null;
  /** Cluster: the stream sequence of this node's latest write of the session record (older claims are stale). */
  storedSeq = 0;
  /** Cluster: being read from the stream layer and claimed at CONNECT (its connection's end leaves no will and no record). */
  resuming = false;
  /** Cluster: a client with this client id connected to another node, which holds the session now. */
  movedAway = false;
  /** Cluster: its CONNECT lost the race for the record to another node's (claimRecord): this node never held it. */
  claimLost = false;
  /** Cluster: this session's record writes, one after the other (each follows the sequence of the one before). */
  recordWrites: Promise<void> = Promise.resolve();
  private hash: string | null = null;

  constructor(
    readonly clientId: string,
    readonly account: Account,
    private readonly maxAckPending: number,
    private readonly keeper: SessionKeeper,
  ) {}

  /** `PUB <subject> [reply] ` (or HPUB) of the last message published, and its subject's length in bytes. */
  private lastHead: { subject: string; reply: string | null; hpub: boolean; bytes: Buffer; subjectLength: number } | null = null;

  /** The start of a PUB/HPUB frame for this subject and reply, kept while the publisher repeats them. */
  frameHead(subject: string, reply: string | null, hpub: boolean): { bytes: Buffer; subjectLength: number } {
    const last = this.lastHead;
    if (last !== null && last.subject === subject && last.reply === reply && last.hpub === hpub) return last;
    const bytes = Buffer.from(`${hpub ? "HPUB" : "PUB"} ${subject} ${reply === null ? "" : `${reply} `}`, "utf8");
    const head = { subject, reply, hpub, bytes, subjectLength: Buffer.byteLength(subject, "utf8") };
    this.lastHead = head;
    return head;
  }

  /** The client id's hash, as the stream layer's subjects name the session. */
  get idHash(): string {
    return (this.hash ??= clientIdHash(this.clientId));
  }

  /** Whether its QoS 1/2 messages are kept in the stream layer. */
  get kept(): boolean {
    return this.persisted && this.expirySeconds > 0;
  }

  /** Adds one NATS subscription of an MQTT subscription to the account's Sublist. */
  subscribe(subject: string, queue: string | null, filter: string, key: string, qos: 0 | 1 | 2, noLocal: boolean, retainAsPublished: boolean, subscriptionId: number | undefined): MqttSubscription {
    const literal = !subject.includes("*") && !subject.includes(">");
    const sub = new MqttSubscription(this, subject, queue, String(this.nextSid++), literal, filter, key, qos, noLocal, retainAsPublished, subscriptionId);
    this.account.sublist.insert(sub);
    return sub;
  }

  /** Removes an MQTT subscription (both NATS subscriptions); false when there was none. */
  unsubscribe(filter: string): boolean {
    const subs = this.subscriptions.get(filter);
    if (subs === undefined) return false;
    for (const sub of subs) this.account.sublist.remove(sub);
    this.subscriptions.delete(filter);
    return true;
  }

  /**
   * A message matched one of this session's subscriptions. The subject becomes the topic, the
   * QoS is the lower of the publisher's (0 for NATS publishers, as nats-server) and the subscription's.
   */
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
    if (this.closed) return;
    const msub = sub as MqttSubscription;
    if (msub.noLocal && publisher === this) return;
    if (msub.hides(buf, subjectStart)) return;
    // A filter ending in `/#` is two NATS subscriptions: a message matches one of them only, never both.
    const connection = this.connection;
    const level = connection?.level ?? MQTT_5;
    const qos = msub.qosFor(buf, headerSize, payloadStart, publisher);
    // Nothing goes to a client before its CONNACK (its session may still be being stored or read); a kept
    // session stores QoS 1/2 messages only, sent once the client is there.
    if (qos === 0 && (connection === null || !connection.connacked)) return;
    // MQTT 5 retain as published: the publisher's flag, from its header when it published on another node.
    const retain = msub.retainAsPublished && (publisher instanceof MqttSession ? publisher.publishingRetain : headerSize > 0 && publishedRetain(buf, payloadStart, headerSize));
    // QoS 0 with nothing for MQTT 5 properties: the PUBLISH is written straight from the publisher's bytes.
    if (qos === 0 && (level !== MQTT_5 || (headerSize < 0 && replyStart < 0 && msub.subscriptionId === undefined))) {
      sub.delivered++;
      connection!.sendPublishFrom(msub.topicFor(buf, subjectStart, subjectEnd), buf, headerSize > 0 ? payloadStart + headerSize : payloadStart, payloadEnd, retain, publisher instanceof MqttSession ? publisher.connection : null);
      return;
    }
    const topic = msub.topicFor(buf, subjectStart, subjectEnd).toString("utf8");
    const properties: Properties = level === MQTT_5 ? msub.propertiesFor(buf, replyStart, replyEnd, headerSize, payloadStart) : {};
    const payload = payloadCopy(buf, headerSize, payloadStart, payloadEnd);
    const packet: PublishPacket = { type: PacketType.PUBLISH, dup: false, qos, retain, topic, packetId: 0, properties, payload };
    sub.delivered++;
    this.enqueue(packet);
  }

  /**
   * QoS 0 messages from an MQTT publisher without properties, one or more to one topic (a Qos0Run of
   * Mqtt.publishQos0): the topic as the publisher gave it; no NATS frame was built for them.
   */
  deliverQos0(msub: MqttSubscription, run: Qos0Run, publisher: MqttSession): void {
    if (this.closed) return;
    if (msub.noLocal && publisher === this) return;
    const topic = run.topic;
    if (msub.hides(topic, 0)) return; // [MQTT-4.7.2-1]
    const connection = this.connection;
    if (connection === null || !connection.connacked) return; // QoS 0: only to a connected client, after its CONNACK
    msub.delivered += run.count;
    const level = connection.level;
    const withId = level === MQTT_5 && msub.subscriptionId !== undefined;
    if (!withId && !connection.sendsTopicAliases && run.largestFor(level) <= connection.maximumPacketSize) {
      connection.sendPackets(run.packets(level), run.count, run.payloadBytes, publisher.connection);
      return;
    }
    // Packets of its own (a subscription identifier, topic aliases, a smaller maximum packet size): one by one.
    const payloads = run.payloads;
    for (let i = 0; i < run.count && !connection.closed; i++) {
      const start = run.payloadStart(i);
      const end = run.payloadEnd(i);
      if (withId) {
        const properties: Properties = { subscriptionIdentifiers: [msub.subscriptionId!] };
        this.enqueue({ type: PacketType.PUBLISH, dup: false, qos: 0, retain: false, topic: topic.toString("utf8"), packetId: 0, properties, payload: Buffer.from(payloads.subarray(start, end)) });
      } else {
        connection.sendPublishFrom(topic, payloads, start, end, false, publisher.connection);
      }
    }
  }

  /** Sends a message (QoS 0), or queues it for an in-flight slot (QoS 1/2; a kept session stores it first). */
  enqueue(packet: PublishPacket): void {
    if (packet.qos === 0) {
      const connection = this.connection;
      if (connection !== null && connection.connacked) connection.sendPublish(packet);
      return;
    }
    const expiresAt = expiryOf(packet.properties);
    this.queued.push({ packet, stored: this.kept ? this.keeper.keepPending(this, packet, expiresAt) : null, expiresAt });
    if (this.queued.length > MAX_QUEUED) {
      const dropped = this.queued.shift()!;
      if (dropped.stored !== null) this.keeper.completePending(this, dropped.stored);
    }
    this.sendQueued();
  }

  /** A QoS 1/2 message restored from the stream layer (a kept session after a restart). */
  restorePending(packet: PublishPacket, seq: number, expiresAt: number | undefined): void {
    this.queued.push({ packet, stored: Promise.resolve(seq), expiresAt });
  }

  /**
   * Cluster: the QoS 1/2 messages another node kept for this session, read at CONNECT, go before what
   * arrived here since (those this node stored itself are skipped: they are queued already).
   */
  async restorePendingBefore(pending: { seq: number; message: StoredMessage }[]): Promise<void> {
    const own = new Set<number>();
    for (const entry of [...this.queued, ...this.inflight.values()]) if (entry.stored !== null) own.add(await entry.stored);
    if (this.closed) return;
    const restored: Queued[] = [];
    for (const { seq, message } of pending) {
      if (own.has(seq)) continue;
      const packet: PublishPacket = { type: PacketType.PUBLISH, dup: false, qos: message.qos, retain: false, topic: message.topic, packetId: 0, properties: message.properties, payload: message.payload };
      restored.push({ packet, stored: Promise.resolve(seq), expiresAt: message.expiresAt });
    }
    this.queued = [...restored, ...this.queued];
  }

  /** Sends queued QoS 1/2 messages while in-flight slots are free. */
  sendQueued(): void {
    const connection = this.connection;
    if (connection === null || !connection.connacked) return;
    const limit = Math.min(this.maxAckPending, connection.clientReceiveMaximum);
    const now = Date.now();
    while (this.queued.length > 0 && this.inflight.size < limit) {
      const { packet, stored, expiresAt } = this.queued.shift()!;
      if (expiresAt !== undefined) {
        // [MQTT-3.3.2-5]: an expired message is not delivered; otherwise it carries the time it has left.
        if (expiresAt <= now) {
          if (stored !== null) this.keeper.completePending(this, stored);
          continue;
        }
        packet.properties = { ...packet.properties, messageExpiryInterval: Math.ceil((expiresAt - now) / 1000) };
      }
      packet.packetId = this.freePacketId();
      this.inflight.set(packet.packetId, { packet, state: "publish", sentAt: Date.now(), stored });
      connection.sendPublish(packet);
    }
  }

  /** A packet identifier not in use by an unacknowledged message ([MQTT-2.2.1-3]). */
  private freePacketId(): number {
    for (;;) {
      const id = this.nextPacketId;
      this.nextPacketId = id === 0xffff ? 1 : id + 1;
      if (!this.inflight.has(id)) return id;
    }
  }

  /** PUBACK (QoS 1) or PUBCOMP (QoS 2): the message is done. False when the id was not in flight. */
  complete(packetId: number, expected: "publish" | "release", qos: 1 | 2): boolean {
    const entry = this.inflight.get(packetId);
    if (entry === undefined || entry.state !== expected || entry.packet.qos !== qos) return false;
    this.inflight.delete(packetId);
    if (entry.stored !== null) this.keeper.completePending(this, entry.stored);
    this.sendQueued();
    return true;
  }

  /** PUBREC: the client has the QoS 2 message; from now on PUBREL is what we resend. */
  received(packetId: number): boolean {
    const entry = this.inflight.get(packetId);
    if (entry === undefined || entry.packet.qos !== 2) return false;
    entry.state = "release";
    entry.sentAt = Date.now();
    return true;
  }

  /** Resends what waited longer than ack_wait (all of it on reconnect, `ackWaitMs` 0): PUBLISH with DUP, or PUBREL. */
  redeliver(now: number, ackWaitMs: number): void {
    const connection = this.connection;
    if (connection === null || !connection.connacked) return;
    for (const [packetId, entry] of this.inflight) {
      if (now - entry.sentAt < ackWaitMs) continue;
      entry.sentAt = now;
      if (entry.state === "publish") {
        entry.packet.dup = true; // [MQTT-3.3.1-1]
        connection.sendPublish(entry.packet);
      } else {
        connection.sendPubrel(packetId);
      }
    }
  }

  /** Ends the session: its subscriptions leave the Sublist and its messages are dropped. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const filter of [...this.subscriptions.keys()]) this.unsubscribe(filter);
    this.inflight.clear();
    this.queued = [];
    if (this.expiryTimer !== null) clearTimeout(this.expiryTimer);
    if (this.willTimer !== null) clearTimeout(this.willTimer);
  }

  get queuedCount(): number {
    return this.queued.length;
  }

  /** The subscriptions as the stream layer keeps them. */
  storedSubscriptions(): StoredSubscription[] {
    const out: StoredSubscription[] = [];
    for (const [key, subs] of this.subscriptions) {
      const main = subs[0]!;
      out.push({
        key, subject: main.subject, parent: subs[1]?.subject ?? null, queue: main.queue, filter: main.filter, qos: main.qos,
        noLocal: main.noLocal, retainAsPublished: main.retainAsPublished, subscriptionId: main.subscriptionId,
      });
    }
    return out;
  }

  /** Re-creates a stored subscription (a kept session after a restart). */
  restoreSubscription(s: StoredSubscription): void {
    const subs = [this.subscribe(s.subject, s.queue, s.filter, s.key, s.qos, s.noLocal, s.retainAsPublished, s.subscriptionId)];
    if (s.parent !== null) subs.push(this.subscribe(s.parent, s.queue, s.filter, s.key, s.qos, s.noLocal, s.retainAsPublished, s.subscriptionId));
    this.subscriptions.set(s.key, subs);
  }
}
