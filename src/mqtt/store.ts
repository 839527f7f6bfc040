// What MQTT keeps in the stream layer, per account, so it survives a restart and kill -9 as
// acknowledged stream messages do (nats-server keeps the same things in its $MQTT_* streams):
//   $MQTT_rmsgs  `$MQTT.rmsgs.<subject>`  the retained message of each topic (one per subject)
//   $MQTT_sess   `$MQTT.sess.<id hash>`   each kept session: client id, expiry, subscriptions
//   $MQTT_qos    `$MQTT.qos.<id hash>`    QoS 1/2 messages a kept session has not completed yet
// Everything goes through the account's JetStream API ($JS.API.>) from an internal client, as any
// client would use it: nothing here reaches into the stream layer's objects.
//
// In a cluster the streams are the cluster's (created once, with replicas), and the nodes tell each other
// what matters to their in-memory state the way nats-server's do: the write of a session record at
// CONNECT asks for its PubAck on `$MQTT.JSA.<node>.SP.<id hash>.<n>`, which every node listens to, so the
// node that held the session learns it was taken over; each record stored is told to every node on
// `$MQTT.JSA.<node>.SR.<id hash>` (for src/mqtt/remote-session.ts); a retained message is seen by every
// node as it is published to `$MQTT.rmsgs.<subject>`, and its removal is told on `$MQTT.JSA.<node>.RD`.
import { randomBytes } from "node:crypto";
import { InternalClient, type InternalMessage } from "../internal-client.ts";
import type { Account } from "../accounts/account.ts";
import type { Server } from "../server.ts";
import type { Properties } from "./properties.ts";

export const RETAINED_STREAM = "$MQTT_rmsgs";
export const SESSIONS_STREAM = "$MQTT_sess";
export const QOS_STREAM = "$MQTT_qos";
const RETAINED_PREFIX = "$MQTT.rmsgs.";
const SESSIONS_PREFIX = "$MQTT.sess.";
const QOS_PREFIX = "$MQTT.qos.";
const REQUEST_TIMEOUT_MS = 5000;
/** Replies to a session write at CONNECT: `$MQTT.JSA.<node>.SP.<id hash>.<n>` (nats-server's mqttJSASessPersist). */
const CLAIM_TOKEN = "SP";
/**
 * A session record stored, told to the other nodes: `$MQTT.JSA.<node>.SR.<id hash>`, `{ seq, record }` (natter's:
 * nats-server's nodes learn a session moved from the PubAck of its record alone; natter's also keep for the
 * kept sessions the others hold, src/mqtt/remote-session.ts).
 */
const RECORD_TOLD_TOKEN = "SR";
/** The answer to a write with `Nats-Expected-Last-Subject-Sequence` when the subject has moved on. */
const WRONG_LAST_SEQUENCE = 10071;
/** A retained message removed: `$MQTT.JSA.<node>.RD`, the subject as payload (nats-server's mqttJSARetainedMsgDel). */
const RETAINED_DELETED_TOKEN = "RD";
/** How long a node keeps trying to create the streams while the cluster's JetStream forms. */
const CREATE_RETRY_MS = 60_000;
/** Answers worth retrying while the cluster forms: no meta leader (10008), too few nodes yet for the replicas (10005). */
const RETRY_CODES: ReadonlySet<number> = new Set([10008, 10005]);

/** A message as kept: the topic, payload and the MQTT 5 properties that travel with it. */
export interface StoredMessage {
  topic: string;
  payload: Buffer;
  qos: 0 | 1 | 2;
  properties: Properties;
  /** MQTT 5 message expiry: when (ms since the epoch) it is no longer delivered; absent = never. */
  expiresAt?: number;
}

/** When a message with these properties expires, taken now (undefined: it does not). */
export function expiryOf(properties: Properties, now = Date.now()): number | undefined {
  const seconds = properties.messageExpiryInterval;
  return seconds === undefined ? undefined : now + seconds * 1000;
}

/** A kept session as stored. */
export interface StoredSession {
  clientId: string;
  /** Seconds; 0xffffffff = never (3.1.1 clean session = false). */
  expiry: number;
  subscriptions: StoredSubscription[];
  /** When its client went away (ms since the epoch): the expiry counts from then, also across restarts. Absent: connected. */
  disconnectedAt?: number;
  /** A will waiting for its will delay: published at `at` (ms since the epoch), or when the session ends first. */
  will?: StoredWill;
  /** In a cluster: the node (its cluster member id) whose memory holds the session; it restores it at start. */
  node?: string;
}

/** A will as kept: the message (as encodeMessage writes it), its retain flag, and when it is due. */
export interface StoredWill {
  message: unknown;
  retain: boolean;
  at: number;
}

/** A will (topic, payload, QoS, retain, properties) → what a session record keeps of it. */
export function storedWill(will: { topic: string; payload: Buffer; qos: 0 | 1 | 2; retain: boolean; properties: Properties }, at: number): StoredWill {
  return { message: JSON.parse(encodeMessage({ topic: will.topic, payload: will.payload, qos: will.qos, properties: will.properties }).toString("utf8")), retain: will.retain, at };
}

/** A kept will back as a will; null when it cannot be read. */
export function willFromStored(stored: StoredWill): { topic: string; payload: Buffer; qos: 0 | 1 | 2; retain: boolean; properties: Properties } | null {
  const message = decodeMessage(Buffer.from(JSON.stringify(stored.message)));
  if (message === null || typeof stored.at !== "number") return null;
  return { topic: message.topic, payload: message.payload, qos: message.qos, retain: stored.retain === true, properties: message.properties };
}

export interface StoredSubscription {
  /** As the client gave it (`$share/g/f` included). */
  key: string;
  subject: string;
  parent: string | null;
  queue: string | null;
  filter: string;
  qos: 0 | 1 | 2;
  noLocal: boolean;
  retainAsPublished: boolean;
  subscriptionId: number | undefined;
}

export interface LoadedState {
  retained: Map<string, StoredMessage>;
  /** Each session record with its stream sequence. */
  sessions: { record: StoredSession; seq: number }[];
  /** Pending QoS 1/2 messages by client id, in stream order, with their stream sequence. */
  pending: Map<string, { seq: number; message: StoredMessage }[]>;
}

/** sha256 of the client id, base64url, 22 characters (Bun's hasher: a quarter of node:crypto's createHash cost). */
export function clientIdHash(clientId: string): string {
  return new Bun.CryptoHasher("sha256").update(clientId).digest("base64url").slice(0, 22);
}

/** A session record write refused: another node wrote the record since this one read or wrote it (it holds the session now). */
export class SessionRecordChanged extends Error {}

/** Thrown when the account has no JetStream (no one answers $JS.API). */
export class NoJetStream extends Error {}

/** What another node of the cluster tells: a client connected there with a session, a retained message changed. */
export interface ClusterListener {
  /** Another node stored the session of the client id with this hash at CONNECT; `seq` is its record's sequence. */
  sessionClaimed(idHash: string, seq: number): void;
  /** Another node stored the session record of the client id with this hash at stream sequence `seq` (any write: at CONNECT, a change, its client gone). */
  sessionRecorded(idHash: string, record: StoredSession, seq: number): void;
  retainedChanged(subject: string, message: StoredMessage | null): void;
}

interface ApiReply {
  error?: { code: number; err_code: number; description: string };
  [key: string]: unknown;
}

export class MqttStore {
  private readonly client: InternalClient;
  private readonly inbox: string;
  private nextRequest = 1;
  private readonly waiting = new Map<string, (reply: ApiReply) => void>();

  /** This store's token in `$MQTT.JSA.<token>.…` (nats-server's node id there): replies to it are its own. */
  private readonly token = randomBytes(6).toString("hex");

  constructor(
    readonly server: Server,
    readonly account: Account,
    /** Set in a cluster: what the other nodes tell is passed on to it. */
    private readonly cluster: ClusterListener | null = null,
  ) {
    this.client = new InternalClient(server, `mqtt ${account.name}`, account);
    this.inbox = `$MQTT.JSA.${this.token}.`;
    // Local alone; in a cluster the answer may come from the node holding the stream.
    this.client.subscribe(`${this.inbox}*`, (m) => this.onReply(m), null, { local: cluster === null });
    if (cluster !== null) {
      this.client.subscribe(`$MQTT.JSA.*.${CLAIM_TOKEN}.*.*`, (m) => this.onClaimReply(m));
      this.client.subscribe(`$MQTT.JSA.*.${RETAINED_DELETED_TOKEN}`, (m) => cluster.retainedChanged(m.payload.toString("utf8"), null));
      // A session record another node stored (told once stored: a write the stream refused is not told).
      this.client.subscribe(`$MQTT.JSA.*.${RECORD_TOLD_TOKEN}.*`, (m) => {
        try {
          const told = JSON.parse(m.payload.toString("utf8")) as { seq: number; record: StoredSession };
          const record = told.record;
          if (typeof told.seq === "number" && typeof record?.clientId === "string" && Array.isArray(record.subscriptions)) cluster.sessionRecorded(m.subject.split(".")[4]!, record, told.seq);
        } catch {
          // a record we cannot read is skipped
        }
      });
      // A retained message published on another node (this client's own publishes do not come back to it).
      this.client.subscribe(`${RETAINED_PREFIX}>`, (m) => {
        const message = decodeMessage(m.payload);
        if (message !== null) cluster.retainedChanged(m.subject.slice(RETAINED_PREFIX.length), message);
      });
    }
  }

  /** The PubAck of a session write at CONNECT, this node's (a request waits for it) or another's (a takeover). */
  private onClaimReply(m: InternalMessage): void {
    if (m.subject.startsWith(this.inbox)) return this.onReply(m);
    let ack: ApiReply;
    try {
      ack = JSON.parse(m.payload.toString("utf8")) as ApiReply;
    } catch {
      return;
    }
    if (ack.error !== undefined || typeof ack.seq !== "number") return;
    const tokens = m.subject.split(".");
    this.cluster?.sessionClaimed(tokens[4]!, ack.seq);
  }

  private onReply(m: InternalMessage): void {
    const resolve = this.waiting.get(m.subject);
    if (resolve === undefined) return;
    this.waiting.delete(m.subject);
    let reply: ApiReply;
    try {
      reply = JSON.parse(m.payload.toString("utf8")) as ApiReply;
    } catch {
      reply = { error: { code: 500, err_code: 0, description: "invalid JSON reply" } };
    }
    resolve(reply);
  }

  /** One request to the stream layer (or a publish into a stream, whose reply is the PubAck). */
  private request(subject: string, body: unknown, headers: Buffer | null = null, reply = `${this.inbox}${this.nextRequest++}`): Promise<ApiReply> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(reply);
        reject(new Error(`no answer to ${subject} within ${REQUEST_TIMEOUT_MS} ms`));
      }, REQUEST_TIMEOUT_MS);
      this.waiting.set(reply, (r) => {
        clearTimeout(timer);
        resolve(r);
      });
      const payload = Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body));
      if (!this.client.publish(subject, payload, reply, headers)) {
        clearTimeout(timer);
        this.waiting.delete(reply);
        reject(new NoJetStream(`no JetStream in account ${this.account.name}`));
      }
    });
  }

  /**
   * Creates the three streams with `replicas` (an existing one is kept as it is) and loads what they hold.
   * In a cluster, creating waits for the cluster's JetStream to form (a meta leader, enough nodes).
   */
  async open(replicas: number): Promise<LoadedState> {
    for (const [name, prefix] of [[RETAINED_STREAM, RETAINED_PREFIX], [SESSIONS_STREAM, SESSIONS_PREFIX], [QOS_STREAM, QOS_PREFIX]] as const) {
      const config = { name, subjects: [`${prefix}>`], storage: "file", retention: "limits", max_msgs_per_subject: name === QOS_STREAM ? -1 : 1, num_replicas: replicas };
      const giveUpAt = Date.now() + CREATE_RETRY_MS;
      for (let wait = 100; ; wait = Math.min(wait * 2, 2000)) {
        let reply: ApiReply | null = null;
        try {
          reply = await this.request(`$JS.API.STREAM.CREATE.${name}`, config);
        } catch (error) {
          if (error instanceof NoJetStream || this.cluster === null || Date.now() > giveUpAt) throw error;
        }
        // 10058: the stream exists (with this or an earlier configuration): what it holds is what we load.
        if (reply !== null && (reply.error === undefined || reply.error.err_code === 10058)) break;
        if (reply !== null && (this.cluster === null || !RETRY_CODES.has(reply.error!.err_code) || Date.now() > giveUpAt)) throw new Error(`${name}: ${reply.error!.description}`);
        this.server.log.debug(`MQTT: account ${this.account.name}: creating ${name}: ${reply === null ? "no answer" : reply.error!.description}; trying again`);
        await new Promise((resolve) => setTimeout(resolve, wait));
      }
    }
    const retained = new Map<string, StoredMessage>();
    for (const { subject, data } of await this.readAll(RETAINED_STREAM, `${RETAINED_PREFIX}>`)) {
      const message = decodeMessage(data);
      if (message !== null) retained.set(subject.slice(RETAINED_PREFIX.length), message);
    }
    const sessions: { record: StoredSession; seq: number }[] = [];
    for (const { seq, data } of await this.readAll(SESSIONS_STREAM, `${SESSIONS_PREFIX}>`)) {
      try {
        sessions.push({ record: JSON.parse(data.toString("utf8")) as StoredSession, seq });
      } catch {
        // a record we cannot read is skipped
      }
    }
    const pending = new Map<string, { seq: number; message: StoredMessage }[]>();
    for (const { seq, data } of await this.readAll(QOS_STREAM, `${QOS_PREFIX}>`)) {
      const clientId = pendingClientId(data);
      const message = pendingMessage(data);
      if (clientId === null || message === null) continue;
      const list = pending.get(clientId) ?? [];
      list.push({ seq, message });
      pending.set(clientId, list);
    }
    return { retained, sessions, pending };
  }

  /** Every message of a stream, oldest first (MSG.GET next_by_subj from sequence 1 on). */
  private async readAll(stream: string, filter: string): Promise<{ subject: string; seq: number; data: Buffer }[]> {
    const out: { subject: string; seq: number; data: Buffer }[] = [];
    let seq = 1;
    for (;;) {
      const reply = await this.request(`$JS.API.STREAM.MSG.GET.${stream}`, { seq, next_by_subj: filter });
      const message = reply.message as { subject: string; seq: number; data?: string } | undefined;
      if (reply.error !== undefined || message === undefined) return out;
      out.push({ subject: message.subject, seq: message.seq, data: Buffer.from(message.data ?? "", "base64") });
      seq = message.seq + 1;
    }
  }

  // ---- writes: each waits for the stream layer's answer (the PubAck: on disk by its sync policy) ----

  async retain(subject: string, message: StoredMessage): Promise<void> {
    await this.expectOk(this.request(`${RETAINED_PREFIX}${subject}`, encodeMessage(message)));
  }

  async clearRetained(subject: string): Promise<void> {
    await this.expectOk(this.request(`$JS.API.STREAM.PURGE.${RETAINED_STREAM}`, { filter: `${RETAINED_PREFIX}${subject}` }));
    if (this.cluster !== null) this.client.publish(`${this.inbox}${RETAINED_DELETED_TOKEN}`, Buffer.from(subject, "utf8"));
  }

  /**
   * Writes a session record; resolves to its stream sequence. `claim` (a client connecting, in a cluster):
   * its PubAck goes to a subject every node listens to, so a node holding the session lets it go.
   * `expectedSeq` (in a cluster): the sequence of the record this node read or wrote last (0: none), as
   * nats-server's session save sends it in `Nats-Expected-Last-Subject-Sequence`; when another node has
   * written the record since, the stream refuses the write and this rejects with SessionRecordChanged.
   * Once stored, the record is told to the other nodes.
   */
  async saveSession(session: StoredSession, claim = false, expectedSeq: number | null = null): Promise<number> {
    const hash = clientIdHash(session.clientId);
    const reply = claim && this.cluster !== null ? `${this.inbox}${CLAIM_TOKEN}.${hash}.${this.nextRequest++}` : undefined;
    const headers = expectedSeq === null ? null : Buffer.from(`NATS/1.0\r\nNats-Expected-Last-Subject-Sequence: ${expectedSeq}\r\n\r\n`, "latin1");
    const answer = await this.request(`${SESSIONS_PREFIX}${hash}`, session, headers, reply);
    if (answer.error?.err_code === WRONG_LAST_SEQUENCE) throw new SessionRecordChanged(answer.error.description);
    const ack = await this.expectOk(Promise.resolve(answer));
    const seq = typeof ack.seq === "number" ? ack.seq : 0;
    if (this.cluster !== null && seq > 0) this.client.publish(`${this.inbox}${RECORD_TOLD_TOKEN}.${hash}`, Buffer.from(JSON.stringify({ seq, record: session })));
    return seq;
  }

  /** The stored record of a client id's session (undefined: not readable as one) and its sequence, or null when there is none. */
  async loadSession(clientId: string): Promise<{ record: StoredSession | undefined; seq: number } | null> {
    const reply = await this.request(`$JS.API.STREAM.MSG.GET.${SESSIONS_STREAM}`, { last_by_subj: `${SESSIONS_PREFIX}${clientIdHash(clientId)}` });
    const message = reply.message as { seq: number; data?: string } | undefined;
    if (reply.error !== undefined || message === undefined) {
      if (reply.error !== undefined && reply.error.err_code !== 10037) throw new Error(reply.error.description); // 10037: no message found
      return null;
    }
    // A record that cannot be read (or another client id's with the same hash) is no session, but its sequence
    // is still the one the next write follows.
    try {
      const record = JSON.parse(Buffer.from(message.data ?? "", "base64").toString("utf8")) as StoredSession;
      return { record: record.clientId === clientId ? record : undefined, seq: message.seq };
    } catch {
      return { record: undefined, seq: message.seq };
    }
  }

  /** A client id's QoS 1/2 messages not completed yet, oldest first, with their stream sequences. */
  async loadPending(clientId: string): Promise<{ seq: number; message: StoredMessage }[]> {
    const out: { seq: number; message: StoredMessage }[] = [];
    for (const { seq, data } of await this.readAll(QOS_STREAM, `${QOS_PREFIX}${clientIdHash(clientId)}`)) {
      const message = pendingMessage(data);
      if (message !== null) out.push({ seq, message });
    }
    return out;
  }

  /** Removes a client id's QoS 1/2 messages (a clean start in a cluster: the session record is replaced). */
  async forgetPending(clientId: string): Promise<void> {
    await this.expectOk(this.request(`$JS.API.STREAM.PURGE.${QOS_STREAM}`, { filter: `${QOS_PREFIX}${clientIdHash(clientId)}` }));
  }

  async forgetSession(clientId: string): Promise<void> {
    const hash = clientIdHash(clientId);
    await this.expectOk(this.request(`$JS.API.STREAM.PURGE.${SESSIONS_STREAM}`, { filter: `${SESSIONS_PREFIX}${hash}` }));
    await this.expectOk(this.request(`$JS.API.STREAM.PURGE.${QOS_STREAM}`, { filter: `${QOS_PREFIX}${hash}` }));
  }

  /** Stores a QoS 1/2 message for a kept session; resolves to its stream sequence. */
  async keepPending(clientId: string, message: StoredMessage): Promise<number> {
    const reply = await this.expectOk(this.request(`${QOS_PREFIX}${clientIdHash(clientId)}`, { clientId, message: JSON.parse(encodeMessage(message).toString("utf8")) }));
    return typeof reply.seq === "number" ? reply.seq : 0;
  }

  async completePending(seq: number): Promise<void> {
    await this.expectOk(this.request(`$JS.API.STREAM.MSG.DELETE.${QOS_STREAM}`, { seq }));
  }

  private async expectOk(reply: Promise<ApiReply>): Promise<ApiReply> {
    const r = await reply;
    if (r.error !== undefined) throw new Error(r.error.description);
    return r;
  }

  close(): void {
    this.client.close();
    this.waiting.clear();
  }
}

/** A `$MQTT_qos` record: `{ clientId, message }`. */
function pendingRecord(data: Buffer): { clientId: string; message: unknown } | null {
  try {
    const record = JSON.parse(data.toString("utf8")) as { clientId: string; message: unknown };
    return typeof record.clientId === "string" ? record : null;
  } catch {
    return null;
  }
}

function pendingClientId(data: Buffer): string | null {
  return pendingRecord(data)?.clientId ?? null;
}

function pendingMessage(data: Buffer): StoredMessage | null {
  const record = pendingRecord(data);
  return record === null ? null : decodeMessage(Buffer.from(JSON.stringify(record.message)));
}

function encodeMessage(m: StoredMessage): Buffer {
  const properties: Record<string, unknown> = { ...m.properties };
  if (m.properties.correlationData !== undefined) properties.correlationData = m.properties.correlationData.toString("base64");
  return Buffer.from(JSON.stringify({ topic: m.topic, payload: m.payload.toString("base64"), qos: m.qos, properties, expiresAt: m.expiresAt }));
}

function decodeMessage(data: Buffer): StoredMessage | null {
  try {
    const raw = JSON.parse(data.toString("utf8")) as { topic: string; payload: string; qos: 0 | 1 | 2; properties?: Record<string, unknown>; expiresAt?: number };
    const properties = (raw.properties ?? {}) as Properties & { correlationData?: unknown };
    if (typeof properties.correlationData === "string") properties.correlationData = Buffer.from(properties.correlationData, "base64");
    return { topic: raw.topic, payload: Buffer.from(raw.payload, "base64"), qos: raw.qos, properties: properties as Properties, expiresAt: typeof raw.expiresAt === "number" ? raw.expiresAt : undefined };
  } catch {
    return null;
  }
}
