// One stream: its configuration, its store, the subscriptions that capture its subjects, publish
// processing (dedupe, expected-* headers, rollups, limits) and its consumers.
//
// Ordering: messages are stored in the order the core delivers them to the stream's internal
// subscription, which is publish order per publisher. A PubAck is sent only after the store was
// flushed (see AccountJetStream.replyAfterFlush), so an acknowledged message has reached the OS.
import type { InternalMessage } from "../internal-client.ts";
import type { Subscription } from "../subscription.ts";
import { isValidPublishSubject, subjectMatches } from "../subjects/subject.ts";
import { subjectsCollide, type StreamConfig } from "./config.ts";
import type { Consumer } from "./consumer.ts";
import { ApiError, apiError, type ApiErrorJson } from "./errors.ts";
import type { AccountJetStream } from "./account.ts";
import { StoreLimitError, StoreWriteError, type MessageStore, type PurgeRequest, type StoreLimits, type StoredMessage } from "./store/store.ts";
import { nowMs } from "./store/indexed.ts";
import { buildHeaders, parseHeaders, parseRfc3339, rfc3339, ZERO_TIME, nsToMs } from "./wire.ts";

/** STREAM.INFO's `state`, in wire casing. */
export interface StreamStateJson {
  messages: number;
  bytes: number;
  first_seq: number;
  first_ts: string;
  last_seq: number;
  last_ts: string;
  num_subjects?: number;
  subjects?: Record<string, number>;
  num_deleted?: number;
  deleted?: number[];
  lost?: { msgs: number[]; bytes: number };
  consumer_count: number;
}

export interface StreamInfoJson {
  config: StreamConfig;
  created: string;
  state: StreamStateJson;
  ts?: string;
}

/** The queue group of direct get subscriptions (nats-server's is `_sys_`). */
const DIRECT_GET_QUEUE = "_sys_";

const MSG_ID_LINE = Buffer.from("\r\nNats-Msg-Id:", "latin1");

/** The Nats-Msg-Id of a header block (its first), as parseHeaders would read it, without parsing the rest. */
function msgIdOf(headers: Buffer): string {
  const at = headers.indexOf(MSG_ID_LINE);
  if (at < 0) return "";
  const from = at + MSG_ID_LINE.length;
  const end = headers.indexOf("\r\n", from, "latin1");
  return headers.latin1Slice(from, end < 0 ? headers.length : end).trim();
}

export function storeLimits(c: StreamConfig): StoreLimits {
  return {
    maxMsgs: c.max_msgs,
    maxBytes: c.max_bytes,
    maxAgeMs: nsToMs(c.max_age),
    maxMsgsPerSubject: c.max_msgs_per_subject,
    discard: c.discard,
    discardNewPerSubject: c.discard_new_per_subject ?? false,
  };
}

/**
 * A replicated stream's Raft group (src/jetstream/cluster/stream-replica.ts). Its leader proposes each
 * checked publish with the sequence it will get; every replica stores it when it commits (applyPublish).
 */
export interface StreamReplication {
  /** This node leads the group and has applied everything before its term: it may propose. */
  readonly acceptsPublishes: boolean;
  readonly isLeader: boolean;
  /** A new leader not ready yet keeps a publish until it is (then it comes back through takePublish). */
  hold(m: InternalMessage): void;
  /** Publishes proposed by this leader and not yet applied. */
  readonly inflight: number;
  /** The sequence a proposed, not yet applied publish with this Nats-Msg-Id will get. */
  pendingMsgId(id: string): number | undefined;
  propose(m: InternalMessage, msgId: string, seq: number): void;
}

/** How a publish is handled: alone (R1), proposed by a replicated stream's leader, or applied once committed. */
type PublishMode = "local" | "propose" | "apply";

export class Stream {
  readonly consumers = new Map<string, Consumer>();
  /** Set while the stream is replicated (num_replicas > 1 in a cluster); null for an R1 stream. */
  replication: StreamReplication | null = null;
  private subs: Subscription[] = [];
  private directSubs: Subscription[] = [];
  /** Nats-Msg-Id → sequence and time, oldest first (Map keeps insertion order). */
  private readonly dedupe = new Map<string, { seq: number; ts: number }>();
  /** Has the map been rebuilt from the store since the start? (At the first publish with a Msg-Id.) */
  private dedupeLoaded = false;
  private lastMsgId = "";
  private expireTimer: ReturnType<typeof setTimeout> | null = null;
  private expireAt = 0;
  /** Schedule messages (stream sequence → when, ms) waiting to be published to their target. */
  private readonly schedules = new Map<number, number>();
  private scheduleTimer: ReturnType<typeof setTimeout> | null = null;
  deleted = false;

  constructor(
    /** The account's JetStream: the stream lives in that account's subject space. */
    readonly js: AccountJetStream,
    public config: StreamConfig,
    readonly created: number,
    readonly store: MessageStore,
  ) {
    store.onRemove = (seq, subject, reason) => {
      for (const c of this.consumers.values()) c.onRemoved(seq, subject, reason);
    };
    this.lastMsgId = this.lastStoredMsgId();
    this.rebuildSchedules();
    this.subscribe();
    this.scheduleExpiry();
  }

  get name(): string {
    return this.config.name;
  }

  // ---- subscriptions --------------------------------------------------------------------------

  private subscribe(): void {
    this.subscribeForRole();
  }

  /**
   * The capture subscriptions (the stream's subjects) and direct get subscriptions (allow_direct). A
   * replicated stream has them on its leader only (called again when the leadership moves): only the
   * leader takes publishes (followers get them through the log, and the route traffic stays 1×), and a
   * follower learns of commits a heartbeat later (a KV client reads its own write right after the put).
   */
  subscribeForRole(): void {
    const client = this.js.client;
    for (const s of this.subs) client.unsubscribe(s);
    for (const s of this.directSubs) client.unsubscribe(s);
    this.subs = [];
    this.directSubs = [];
    if (this.deleted) return;
    if (this.replication !== null && !this.replication.isLeader) return;
    if (this.config.num_replicas > 1 && this.replication === null) return;
    this.subs = this.config.subjects.map((subject) => client.subscribe(subject, (m) => this.onPublish(m)));
    if (this.config.allow_direct) {
      const base = `$JS.API.DIRECT.GET.${this.name}`;
      // A queue group, as nats-server's (one answer however many subscribe).
      this.directSubs.push(client.subscribe(base, (m) => this.onDirectGet(m, null), DIRECT_GET_QUEUE));
      this.directSubs.push(client.subscribe(`${base}.>`, (m) => this.onDirectGet(m, m.subject.slice(base.length + 1)), DIRECT_GET_QUEUE));
    }
  }

  /** Applies a new configuration (already checked by the API). */
  update(config: StreamConfig): void {
    this.config = config;
    this.store.setLimits(storeLimits(config));
    this.store.setCompression(config.compression === "s2");
    this.subscribe();
    this.scheduleExpiry();
  }

  // ---- publish --------------------------------------------------------------------------------

  private onPublish(m: InternalMessage): void {
    this.takePublish(m);
  }

  /** A publish to the stream's subjects (also one a new leader held until it was ready). */
  takePublish(m: InternalMessage): void {
    if (this.deleted) return;
    const replication = this.replication;
    if (replication === null) {
      // A replicated stream before its group is attached takes nothing (the publisher retries).
      if (this.config.num_replicas <= 1) this.handlePublish(m, "local");
    } else if (replication.acceptsPublishes) {
      this.handlePublish(m, "propose");
    } else if (replication.isLeader) {
      replication.hold(m);
    } // a follower: the leader, which got the same message, proposes it
  }

  /** A committed publish of a replicated stream, on every replica; `seq` is what the leader expected it to get. */
  applyPublish(m: InternalMessage, seq: number): void {
    if (this.deleted || seq <= this.store.state().lastSeq) return; // stored before (the log replayed after a restart)
    this.handlePublish(m, "apply");
  }

  private handlePublish(m: InternalMessage, mode: PublishMode): void {
    const reply = m.reply;
    // Only the leader answers a replicated publish (a follower applies silently).
    const answers = mode !== "apply" || this.replication?.isLeader === true;
    // A PubAck for a stored message waits for the store's write (and becomes 10023 if that fails).
    const ack = (json: string, stored = true) => {
      if (reply !== null && !this.config.no_ack && answers) this.js.replyAfterFlush(reply, json, stored ? this : null);
    };
    const fail = (e: ApiErrorJson) => ack(JSON.stringify({ error: e, stream: this.name, seq: 0 }), false);
    const c = this.config;
    if (c.sealed) return fail(apiError("StreamSealed").json);
    const h = parseHeaders(m.headers);
    let rollup: "sub" | "all" | null = null;
    let msgId = "";
    let scheduleAt = 0;
    if (h !== null) {
      const v = h.values;
      const expectedStream = v.get("Nats-Expected-Stream");
      if (expectedStream !== undefined && expectedStream !== "" && expectedStream !== this.name) return fail(apiError("StreamNotMatch").json);
      msgId = v.get("Nats-Msg-Id") ?? "";
      if (msgId !== "") {
        this.loadDedupe();
        this.trimDedupe();
        const seen = this.dedupe.get(msgId)?.seq ?? (mode === "propose" ? this.replication!.pendingMsgId(msgId) : undefined);
        if (seen !== undefined) return ack(`{"stream":${JSON.stringify(this.name)}, "seq":${seen},"duplicate": true}`);
      }
      const lastSubjSeq = v.get("Nats-Expected-Last-Subject-Sequence");
      if (lastSubjSeq !== undefined && lastSubjSeq !== "") {
        const want = Number(lastSubjSeq);
        const last = this.store.last(m.subject);
        const have = last === null ? 0 : last.seq;
        if (want !== have) return fail(apiError("StreamWrongLastSequence", { seq: have }).json);
      }
      const lastSeq = v.get("Nats-Expected-Last-Sequence");
      if (lastSeq !== undefined && lastSeq !== "") {
        const have = this.store.state().lastSeq + (mode === "propose" ? this.replication!.inflight : 0);
        if (Number(lastSeq) !== have) return fail(apiError("StreamWrongLastSequence", { seq: have }).json);
      }
      const lastMsgId = v.get("Nats-Expected-Last-Msg-Id");
      if (lastMsgId !== undefined && lastMsgId !== "" && lastMsgId !== this.lastMsgId) {
        return fail(apiError("StreamWrongLastMsgID", { id: this.lastMsgId }).json);
      }
      const r = v.get("Nats-Rollup");
      if (r !== undefined && r !== "") {
        if (!c.allow_rollup_hdrs) return fail(apiError("StreamRollupFailed", { err: "rollup not permitted" }).json);
        if (r !== "sub" && r !== "all") return; // nats-server drops it without a reply
        rollup = r;
      }
      // Delayed delivery, nats-server 2.12's message schedules: `Nats-Schedule: @at <RFC 3339 time>` with
      // `Nats-Schedule-Target: <subject in this stream>`; at that time the message is published to the target.
      const schedule = v.get("Nats-Schedule");
      if (schedule !== undefined && schedule !== "") {
        const at = schedule.startsWith("@at ") ? parseRfc3339(schedule.slice(4)) : NaN;
        if (!c.allow_msg_schedules) return fail(apiError("MessageSchedulesDisabled").json);
        if (Number.isNaN(at)) return fail(apiError("MessageSchedulesPatternInvalid").json);
        const target = v.get("Nats-Schedule-Target") ?? "";
        if (target === "" || !isValidPublishSubject(target) || subjectsCollide(target, m.subject) || !c.subjects.some((x) => subjectsCollide(x, target))) {
          return fail(apiError("MessageSchedulesTargetInvalid").json);
        }
        scheduleAt = at;
      }
    }
    const size = m.payload.length + (m.headers?.length ?? 0);
    const maxSize = c.max_msg_size > 0 ? c.max_msg_size : this.js.server.options.maxPayload;
    if (size > maxSize) return fail(apiError("StreamMessageExceedsMaximum").json);
    if ((m.headers?.length ?? 0) > 65535) return fail(apiError("StreamHeaderExceedsMaximum").json);
    const resources = this.js.checkResources(this.config.storage, size);
    if (resources !== null) return fail(resources.json);
    if (mode === "propose") return this.replication!.propose(m, msgId, this.store.state().lastSeq + this.replication!.inflight + 1);
    let stored: StoredMessage;
    try {
      stored = this.store.append(m.subject, m.headers, m.payload);
    } catch (error) {
      if (error instanceof StoreLimitError) return fail(apiError("StreamStoreFailed", { err: error.message }).json);
      if (error instanceof StoreWriteError) return fail(apiError("InsufficientResources").json);
      throw error;
    }
    this.lastMsgId = msgId;
    if (msgId !== "") this.dedupe.set(msgId, { seq: stored.seq, ts: stored.ts });
    if (rollup === "sub") this.purge({ filter: m.subject, seq: stored.seq });
    else if (rollup === "all") this.purge({ seq: stored.seq });
    ack(`{"stream":${JSON.stringify(this.name)}, "seq":${stored.seq}}`);
    this.stored(stored);
    if (scheduleAt > 0) this.addSchedule(stored.seq, scheduleAt);
  }

  /**
   * A message copied from the stream's leader into a replica that was behind (src/jetstream/cluster/
   * stream-replica.ts): it keeps its sequence and time; sequences the leader no longer has stay gaps here.
   */
  appendSynced(m: StoredMessage): void {
    const st = this.store.state();
    if (m.seq <= st.lastSeq) return;
    if (st.messages === 0 && m.seq > st.lastSeq + 1) this.store.purge({ seq: m.seq });
    // A gap inside: a placeholder takes each missing sequence and goes at once (a deleted sequence, as on the leader).
    for (let seq = this.store.state().lastSeq + 1; seq < m.seq; seq++) this.store.remove(this.store.append(m.subject, null, Buffer.alloc(0), m.ts).seq);
    this.stored(this.store.append(m.subject, m.headers, m.data, m.ts));
    this.dedupeLoaded = false; // rebuilt from the store (with the copied Msg-Ids) at the next publish that has one
  }

  /**
   * Purges, then tells the consumers where the stream (or the purged subject) now starts, as nats-server
   * does: their cursors and ack floors move up to it (not message by message, as deletions do).
   */
  purge(request: PurgeRequest): number {
    const purged = this.store.purge(request);
    const st = this.store.state();
    // Where the purged subject starts now (0: none of it left); the whole stream: its first sequence.
    const start = request.filter === undefined ? st.firstSeq : (this.store.next(st.firstSeq, [request.filter])?.seq ?? 0);
    for (const c of this.consumers.values()) c.onPurged(start, st.firstSeq, st.lastSeq, request.filter);
    return purged;
  }

  /** After a message is in the store: consumers hear of it, retention and age apply. */
  private stored(stored: StoredMessage): void {
    this.js.markDirty(this);
    let interested = false;
    for (const consumer of this.consumers.values()) if (consumer.onStored(stored)) interested = true;
    // Interest retention keeps a message only while some consumer wants it (a work queue keeps it for the next one).
    // (A replicated stream's follower runs no durable consumers: the leader decides, see stream-replica.ts.)
    const follower = this.replication !== null && !this.replication.isLeader;
    if (this.config.retention === "interest" && !interested && !follower) this.store.remove(stored.seq);
    if (this.config.max_age > 0 && this.expireTimer === null) this.scheduleExpiry();
  }

  // ---- schedules (delayed delivery) -----------------------------------------------------------

  private addSchedule(seq: number, at: number): void {
    this.schedules.set(seq, at);
    this.armSchedules();
  }

  private armSchedules(): void {
    if (this.scheduleTimer !== null) clearTimeout(this.scheduleTimer);
    this.scheduleTimer = null;
    if (this.schedules.size === 0 || this.deleted) return;
    let next = Infinity;
    for (const at of this.schedules.values()) if (at < next) next = at;
    this.scheduleTimer = setTimeout(() => {
      this.scheduleTimer = null;
      this.fireSchedules();
    }, Math.max(1, Math.min(next - nowMs(), 2 ** 31 - 1)));
    this.scheduleTimer.unref?.();
  }

  /** Publishes every due schedule to its target (in time order), then purges the schedule's subject. */
  private fireSchedules(): void {
    const now = nowMs();
    const due = [...this.schedules].filter(([, at]) => at <= now).sort((a, b) => a[1] - b[1] || a[0] - b[0]);
    for (const [seq] of due) {
      this.schedules.delete(seq);
      const m = this.store.get(seq);
      if (m === null || this.deleted) continue;
      const h = parseHeaders(m.headers);
      const target = h?.values.get("Nats-Schedule-Target");
      if (!target) continue;
      let block = m.headers!.toString("latin1").replace(/\r\n\r\n$/, "\r\n");
      block = block.split("\r\n").filter((line, i) => i === 0 || !/^(Nats-Schedule|Nats-Expected-|Nats-Msg-Id:|Nats-TTL:|Nats-Rollup:)/.test(line)).join("\r\n");
      block += `Nats-Scheduler: ${m.subject}\r\nNats-Schedule-Next: purge\r\n\r\n`;
      try {
        this.stored(this.store.append(target, Buffer.from(block, "latin1"), m.data));
      } catch (error) {
        this.js.server.log.error(`JetStream: stream ${this.name}: scheduled message ${seq} not delivered: ${(error as Error).message}`);
        continue;
      }
      this.purge({ filter: m.subject });
    }
    this.armSchedules();
  }

  /** After a restart: the schedules still waiting in the store. */
  private rebuildSchedules(): void {
    if (!this.config.allow_msg_schedules) return;
    const st = this.store.state();
    for (let m = this.store.next(st.firstSeq, null); m !== null; m = this.store.next(m.seq + 1, null)) {
      const schedule = m.headers === null ? undefined : parseHeaders(m.headers)?.values.get("Nats-Schedule");
      if (schedule?.startsWith("@at ")) {
        const at = parseRfc3339(schedule.slice(4));
        if (!Number.isNaN(at)) this.schedules.set(m.seq, at);
      }
    }
    this.armSchedules();
  }

  private trimDedupe(): void {
    const cutoff = nowMs() - nsToMs(this.config.duplicate_window);
    for (const [id, e] of this.dedupe) {
      if (e.ts >= cutoff) break;
      this.dedupe.delete(id);
    }
  }

  /** After a restart: the Msg-Id of the last message (for Nats-Expected-Last-Msg-Id). */
  private lastStoredMsgId(): string {
    const last = this.store.state().lastSeq;
    const m = last > 0 ? this.store.get(last) : null;
    return m === null || m.headers === null ? "" : msgIdOf(m.headers);
  }

  /**
   * The message ids of everything still inside the duplicate window, however many messages that is: read
   * from the store at the first publish with a Msg-Id after a start (a start does not wait for it). A
   * binary search by timestamp (timestamps ascend with sequences) finds the first message inside the
   * window; from there the scan reads forward (the file store reads ahead) and picks the Msg-Id line out
   * of each header block. The work is bounded by the window, not by the stream.
   */
  private loadDedupe(): void {
    if (this.dedupeLoaded) return;
    this.dedupeLoaded = true;
    const st = this.store.state();
    if (st.messages === 0) return;
    const cutoff = nowMs() - nsToMs(this.config.duplicate_window);
    let lo = st.firstSeq;
    let hi = st.lastSeq + 1;
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      const m = this.store.next(mid, null);
      if (m === null || m.ts >= cutoff) hi = mid;
      else lo = m.seq + 1;
    }
    for (let m = this.store.next(lo, null); m !== null; m = this.store.next(m.seq + 1, null)) {
      const id = m.headers === null ? "" : msgIdOf(m.headers);
      if (id !== "") this.dedupe.set(id, { seq: m.seq, ts: m.ts });
    }
  }

  // ---- age ------------------------------------------------------------------------------------

  private scheduleExpiry(): void {
    if (this.expireTimer !== null) clearTimeout(this.expireTimer);
    this.expireTimer = null;
    if (this.config.max_age <= 0 || this.deleted) return;
    const next = this.store.expire(nowMs());
    this.js.markDirty(this);
    const at = next === 0 ? nowMs() + nsToMs(this.config.max_age) : next;
    this.expireAt = at;
    // Capped: past 2^31-1 ms a timer fires after 1 ms, and this one re-armed itself every millisecond.
    this.expireTimer = setTimeout(() => {
      this.expireTimer = null;
      this.scheduleExpiry();
    }, Math.min(Math.max(1, at - nowMs()), 2 ** 31 - 1));
    this.expireTimer.unref?.();
  }

  // ---- reads ----------------------------------------------------------------------------------

  /** STREAM.MSG.GET's lookups: by sequence, last by subject, next by subject from a sequence. */
  lookup(req: { seq?: number; last_by_subj?: string; next_by_subj?: string }): StoredMessage {
    let m: StoredMessage | null = null;
    if (req.next_by_subj) m = this.store.next(req.seq ?? 0, [req.next_by_subj]);
    else if (req.last_by_subj) m = this.store.last(req.last_by_subj);
    else if (req.seq !== undefined && req.seq > 0) m = this.store.get(req.seq);
    else throw apiError("BadRequest");
    if (m === null) throw apiError("NoMessageFound");
    return m;
  }

  private onDirectGet(m: InternalMessage, lastBySubject: string | null): void {
    if (m.reply === null || this.deleted) return;
    const reply = m.reply;
    const send = (headers: Buffer, payload: Buffer) => this.js.client.publish(reply, payload, null, headers);
    let found: StoredMessage | null;
    try {
      if (lastBySubject !== null) {
        if (m.payload.length > 0) throw apiError("BadRequest");
        found = this.store.last(lastBySubject);
      } else {
        const req = JSON.parse(m.payload.toString() || "{}");
        if ((req.seq ?? 0) === 0 && !req.last_by_subj && !req.next_by_subj) {
          send(buildHeaders("408 Empty Request", []), Buffer.alloc(0));
          return;
        }
        found = this.lookup(req);
      }
    } catch (error) {
      if (error instanceof ApiError && error.json.err_code !== 10037) {
        send(buildHeaders(`408 ${error.json.description}`, []), Buffer.alloc(0));
        return;
      }
      if (!(error instanceof ApiError)) {
        send(buildHeaders("408 Bad Request", []), Buffer.alloc(0));
        return;
      }
      found = null;
    }
    if (found === null) {
      send(buildHeaders("404 Message Not Found", []), Buffer.alloc(0));
      return;
    }
    send(directHeaders(this.name, found), found.data);
  }

  // ---- info -----------------------------------------------------------------------------------

  info(subjectsFilter?: string, deletedDetails = false): StreamInfoJson {
    return { config: this.config, created: rfc3339(this.created), state: this.stateJson(subjectsFilter, deletedDetails) };
  }

  stateJson(subjectsFilter?: string, deletedDetails = false): StreamStateJson {
    const st = this.store.state();
    const state: StreamStateJson = {
      messages: st.messages,
      bytes: st.bytes,
      first_seq: st.lastSeq === 0 ? 0 : st.firstSeq,
      first_ts: st.messages === 0 ? ZERO_TIME : rfc3339(st.firstTs),
      last_seq: st.lastSeq,
      last_ts: st.lastSeq === 0 ? ZERO_TIME : rfc3339(st.lastTs),
      consumer_count: this.consumers.size,
    };
    if (st.numSubjects > 0) state.num_subjects = st.numSubjects;
    if (subjectsFilter && st.messages > 0) {
      const subjects = this.store.subjects(subjectsFilter === ">" ? null : subjectsFilter);
      if (subjects.size > 0) state.subjects = Object.fromEntries(subjects);
    }
    if (st.numDeleted > 0) state.num_deleted = st.numDeleted;
    if (deletedDetails && st.numDeleted > 0) state.deleted = this.store.deletedSeqs();
    if (st.lost) state.lost = st.lost;
    // Keep consumer_count last, as nats-server orders the fields.
    const { consumer_count, ...rest } = state;
    return { ...rest, consumer_count };
  }

  /** A consumer acknowledged a message: workqueue streams drop it, interest streams once every consumer has. */
  acked(_by: Consumer, seq: number): void {
    const r = this.config.retention;
    if (r === "workqueue") this.store.remove(seq);
    else if (r === "interest") {
      for (const c of this.consumers.values()) if (!c.hasAcked(seq)) return;
      this.store.remove(seq);
    }
    this.js.markDirty(this);
  }

  /** Does a subject fall into this stream? */
  captures(subject: string): boolean {
    return this.config.subjects.some((s) => s === subject || subjectMatches(s, subject));
  }

  close(): void {
    if (this.expireTimer !== null) clearTimeout(this.expireTimer);
    this.expireTimer = null;
    if (this.scheduleTimer !== null) clearTimeout(this.scheduleTimer);
    this.scheduleTimer = null;
    for (const s of this.subs) this.js.client.unsubscribe(s);
    for (const s of this.directSubs) this.js.client.unsubscribe(s);
    this.subs = [];
    this.directSubs = [];
    for (const c of this.consumers.values()) c.stop();
    this.store.close();
  }

  get nextExpiry(): number {
    return this.expireAt;
  }
}

/** The headers of a direct get answer: the message's own headers, then Nats-Stream/-Subject/-Sequence/-Time-Stamp. */
export function directHeaders(stream: string, m: StoredMessage): Buffer {
  let block = m.headers === null ? "NATS/1.0\r\n" : m.headers.toString("latin1").replace(/\r\n\r\n$/, "\r\n");
  block += `Nats-Stream: ${stream}\r\nNats-Subject: ${m.subject}\r\nNats-Sequence: ${m.seq}\r\nNats-Time-Stamp: ${rfc3339(m.ts)}\r\n\r\n`;
  return Buffer.from(block, "latin1");
}
