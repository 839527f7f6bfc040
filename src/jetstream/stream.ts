// One stream: its configuration, its store, the subscriptions that capture its subjects, publish
// processing (dedupe, expected-* headers, rollups, limits) and its consumers.
//
// Ordering: messages are stored in the order the core delivers them to the stream's internal
// subscription, which is publish order per publisher. A PubAck is sent only after the store was
// flushed (see AccountJetStream.replyAfterFlush), so an acknowledged message has reached the OS.
import type { InternalMessage } from "../internal-client.ts";
import { disabledHeaders } from "../trace/headers.ts";
import { now } from "../trace/msg-trace.ts";
import type { Subscription } from "../subscription.ts";
import { isValidPublishSubject, subjectMatches } from "../subjects/subject.ts";
import { subjectsCollide, type StreamConfig } from "./config.ts";
import type { Consumer } from "./consumer.ts";
import { ApiError, apiError, type ApiErrorJson } from "./errors.ts";
import type { AccountJetStream } from "./account.ts";
import {
  fileMsgSize, memoryMsgSize, StoreLimitError, StoreWriteError,
  type MessageStore, type PurgeRequest, type StoreLimits, type StoredMessage,
} from "./store/store.ts";
import { matchesAny, nowMs } from "./store/indexed.ts";
import { parseHeaders, parseRfc3339, removeHeaders, rfc3339, ZERO_TIME, nsToMs, type ParsedHeaders } from "./wire.ts";
import { AtomicBatches, type AbandonReason, type StagedMessage } from "./batch.ts";
import { nuid } from "./nuid.ts";
import { directGet, directGetLast } from "./direct.ts";
import { isSubjectDeleteMarker, parseMessageTtl, subjectDeleteMarkerHeaders, TtlQueue } from "./ttl.ts";
import { republishHeaders, SubjectRewrite } from "./republish.ts";
import { sourcedSequence, StreamFeeds, STREAM_SOURCE_HEADER, type StreamSourceInfoJson } from "./source.ts";

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
  /** The server's JetStream domain, when it has one (./domain.ts). */
  domain?: string;
  mirror?: StreamSourceInfoJson;
  sources?: StreamSourceInfoJson[];
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

/** What a publish's checks decided: store it (with these headers), refuse it, answer a duplicate, or drop it. */
type PublishCheck = PublishOk | { kind: "error"; error: ApiErrorJson } | { kind: "duplicate"; seq: number } | { kind: "drop" };

interface PublishOk {
  kind: "ok";
  headers: Buffer | null;
  msgId: string;
  rollup: "sub" | "all" | null;
  scheduleAt: number;
  ttl: number;
}

/** At a batch's commit: what the batch's messages before the one being checked would have changed. */
interface BatchView {
  lastSeq: number;
  lastBySubject: Map<string, number>;
  msgIds: Set<string>;
  bytes: number;
}

/** A store's refusal as a PubAck error (null: not a refusal, a bug). */
function storeErrorJson(error: unknown): ApiErrorJson | null {
  if (error instanceof StoreLimitError) return apiError("StreamStoreFailed", { err: error.message }).json;
  if (error instanceof StoreWriteError) return apiError("InsufficientResources").json;
  return null;
}

function storedSize(kind: "memory" | "file", subject: string, headers: Buffer | null, data: Buffer): number {
  return kind === "file" ? fileMsgSize(subject, headers, data) : memoryMsgSize(subject, headers, data);
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
  /** This replica answers direct gets: the leader, or a follower that is current (heard the leader lately, applied what it said was committed, not copying messages). */
  readonly servesReads: boolean;
  /** A new leader not ready yet keeps a publish until it is (then it comes back through takePublish). */
  hold(m: InternalMessage): void;
  /** Publishes proposed by this leader and not yet applied. */
  readonly inflight: number;
  /** The sequence a proposed, not yet applied publish with this Nats-Msg-Id will get. */
  pendingMsgId(id: string): number | undefined;
  propose(m: InternalMessage, msgId: string, seq: number): void;
  /** An atomic batch's commit: the whole batch as one entry of the log (applied all at once: applyBatch). */
  proposeBatch(batch: ProposedBatch): void;
  /** A message the leader's source feed copied, checked (applySourced on every replica); `seq` as for propose. */
  proposeSourced(subject: string, headers: Buffer, payload: Buffer, msgId: string, seq: number): void;
  /** A message the leader's mirror feed copied, under the origin's sequence and with its time `ts` (applyMirrored on every replica). */
  proposeMirrored(seq: number, subject: string, headers: Buffer | null, payload: Buffer, ts: number): void;
  /** The origin's sequences up to `last` are gone: deleted sequences on every replica (applyMirrorSkip). */
  proposeMirrorSkip(last: number): void;
  /**
   * This node's consumers are done with `seq` (interest, work queue): the leader removes it through the
   * group, so every replica drops it when that commits (nats-server's consumer leader proposes the delete to
   * the stream's group); a follower (holding ephemerals) tells the leader.
   */
  proposeRemove(seq: number): void;
  /** A consumer was created, updated or deleted here: its state goes into the group's log at once. */
  consumersChanged(): void;
  /** A durable's state changed here (a delivery, an ack): it goes into the group's log at the end of this event-loop turn. */
  consumerStateChanged(consumer: Consumer): void;
  /** An ack the client asked to have confirmed: the reply goes once the durable's state with it is committed. */
  replyWhenAckReplicated(reply: string): void;
}

/** An atomic batch as a replicated stream's log carries it: applied on every replica in one run. */
export interface ProposedBatch {
  readonly id: string;
  /** The sequence its first message gets. */
  readonly firstSeq: number;
  /** Where the commit's PubAck goes (the commit message's reply). */
  readonly reply: string | null;
  readonly messages: StagedMessage[];
  /** The batch's Nats-Msg-Ids (pending until it is applied). */
  readonly msgIds: string[];
  /** The leader's timestamp of its messages (ms since the epoch), as its log entry carries it (absent in entries written before). */
  readonly ts?: number;
}

/** How a publish is handled: alone (R1), proposed by a replicated stream's leader, or applied once committed. */
type PublishMode = "local" | "propose" | "apply";

export class Stream {
  readonly consumers = new Map<string, Consumer>();
  /** Set while the stream is replicated (num_replicas > 1 in a cluster); null for an R1 stream. */
  replication: StreamReplication | null = null;
  private subs: Subscription[] = [];
  private directSubs: Subscription[] = [];
  /** The origin's direct gets this mirror answers (mirror_direct: mirrorCaughtUp). */
  private mirrorDirectSubs: Subscription[] = [];
  /** Nats-Msg-Id → sequence and time, oldest first (Map keeps insertion order). */
  private readonly dedupe = new Map<string, { seq: number; ts: number }>();
  /** Has the map been rebuilt from the store since the start? (At the first publish with a Msg-Id.) */
  private dedupeLoaded = false;
  private lastMsgId = "";
  private expireTimer: ReturnType<typeof setTimeout> | null = null;
  private expireAt = 0;
  /** Schedule messages (stream sequence → when, ms) waiting to be published to their target. */
  private readonly schedules = new Map<number, number>();
  /** Atomic batches being published, until their commit. */
  private readonly batches: AtomicBatches;
  /** Messages with a positive `Nats-TTL`, by when they expire (entries of removed messages are skipped). */
  private readonly ttls = new TtlQueue();
  private scheduleTimer: ReturnType<typeof setTimeout> | null = null;
  deleted = false;

  constructor(
    /** The account's JetStream: the stream lives in that account's subject space. */
    readonly js: AccountJetStream,
    public config: StreamConfig,
    readonly created: number,
    readonly store: MessageStore,
  ) {
    this.batches = new AtomicBatches((id, reason) => this.batchAbandoned(id, reason), js.options.batchLimits);
    store.onRemove = (seq, subject, reason) => {
      for (const c of this.consumers.values()) c.onRemoved(seq, subject, reason);
    };
    // A replicated stream keeps a batch cut by a crash: its log applies the batch again (applyBatch completes it).
    if (config.allow_atomic && config.num_replicas <= 1) this.dropUncommittedBatch();
    this.lastMsgId = this.lastStoredMsgId();
    this.rebuildSchedules();
    this.rebuildTtls();
    this.subscribe();
    this.scheduleExpiry();
    this.startFeeds();
  }

  get name(): string {
    return this.config.name;
  }

  // ---- subscriptions --------------------------------------------------------------------------

  private subscribe(): void {
    this.subscribeForRole();
  }

  /**
   * The capture subscriptions (the stream's subjects): a replicated stream has them on its leader only
   * (called again when the leadership moves): only the leader takes publishes (followers get them through
   * the log, and the route traffic stays 1×). Then the direct get subscriptions (updateDirectGets).
   */
  subscribeForRole(): void {
    const client = this.js.client;
    for (const s of this.subs) client.unsubscribe(s);
    this.subs = [];
    if (!this.deleted && (this.replication === null ? this.config.num_replicas <= 1 : this.replication.isLeader)) {
      this.subs = this.config.subjects.map((subject) => client.subscribe(subject, (m) => this.onPublish(m)));
    }
    this.updateDirectGets();
  }

  /**
   * Direct gets (allow_direct): every replica answers while it is current (StreamReplication.servesReads),
   * in one queue group as nats-server's, so reads scale with the replicas and a client's own node answers
   * when it holds a replica (local members first). Called again when that may have changed.
   */
  updateDirectGets(): void {
    const client = this.js.client;
    const serve = !this.deleted && this.config.allow_direct && (this.replication === null ? this.config.num_replicas <= 1 : this.replication.servesReads);
    if (serve === this.directSubs.length > 0) return;
    for (const s of this.directSubs) client.unsubscribe(s);
    this.directSubs = [];
    if (!serve) return;
    const base = `$JS.API.DIRECT.GET.${this.name}`;
    // A queue group, as nats-server's (one answer however many subscribe).
    this.directSubs.push(client.subscribe(base, (m) => this.onDirectGet(m, null), DIRECT_GET_QUEUE));
    this.directSubs.push(client.subscribe(`${base}.>`, (m) => this.onDirectGet(m, m.subject.slice(base.length + 1)), DIRECT_GET_QUEUE));
  }

  /**
   * mirror_direct (as the request sets it; nats-server sets it from the origin's allow_direct when the origin
   * is in this account): once its feed has caught up to within a few messages (source.ts), the mirror answers
   * the origin's direct gets too, in the same queue group, from its own store, until its feed stops (a
   * replicated mirror's when its leader stops leading: as in nats-server 2.9, only the leader answers them).
   */
  mirrorCaughtUp(): void {
    const origin = this.config.mirror?.name;
    if (origin === undefined || !this.config.mirror_direct || this.deleted || this.mirrorDirectSubs.length > 0) return;
    const client = this.js.client;
    const base = `$JS.API.DIRECT.GET.${origin}`;
    this.mirrorDirectSubs.push(client.subscribe(base, (m) => this.onDirectGet(m, null), DIRECT_GET_QUEUE));
    this.mirrorDirectSubs.push(client.subscribe(`${base}.>`, (m) => this.onDirectGet(m, m.subject.slice(base.length + 1)), DIRECT_GET_QUEUE));
  }

  /** The mirror's feed stopped: it no longer answers the origin's direct gets. */
  mirrorStopped(): void {
    for (const s of this.mirrorDirectSubs) this.js.client.unsubscribe(s);
    this.mirrorDirectSubs = [];
  }

  // ---- mirror and sources (./source.ts) ---------------------------------------------------------

  /** The mirror or sources feeding this stream; null when it has none. */
  feeds: StreamFeeds | null = null;

  /**
   * Starts the feeds once the stream is in place (the origin may answer at once, also from this stream's
   * account). A replicated stream's run on its leader only, once it applied its whole log (feedsForRole):
   * they start from the stream's own state, so a new leader goes on where the committed copy ends.
   */
  private startFeeds(): void {
    if (this.config.mirror === undefined && (this.config.sources ?? []).length === 0) return;
    if (this.config.num_replicas > 1 && this.replication?.acceptsPublishes !== true) return;
    const feeds = new StreamFeeds(this);
    this.feeds = feeds;
    setTimeout(() => {
      if (!this.deleted && this.feeds === feeds) feeds.start();
    }, 0);
  }

  /** A replicated stream: the feeds run while this replica leads and is ready (`lead`), and stop otherwise. */
  feedsForRole(lead: boolean): void {
    if (this.deleted) return;
    if (lead && this.feeds === null) this.startFeeds();
    if (!lead && this.feeds !== null) {
      this.feeds.close();
      this.feeds = null;
    }
  }

  /** The origin sequence of the last message stored from a source (`Nats-Stream-Source`), 0 for none. */
  lastSourcedSequence(iname: string): number {
    const st = this.store.state();
    for (let seq = st.lastSeq; seq >= st.firstSeq && seq > 0; seq--) {
      const m = this.store.get(seq);
      const value = m === null ? undefined : parseHeaders(m.headers)?.values.get(STREAM_SOURCE_HEADER);
      if (value === undefined) continue;
      const found = sourcedSequence(value, iname);
      if (found > 0) return found;
    }
    return 0;
  }

  /**
   * A sourced message, stored as a publish would be (dedupe, limits); an error when it could not be. A
   * replicated stream's leader proposes it after the same checks (in-flight ones counted), and every replica
   * stores it when it commits (applySourced).
   */
  storeSourced(subject: string, headers: Buffer, payload: Buffer): ApiErrorJson | null {
    const replication = this.replication;
    const mode: PublishMode = replication === null ? "local" : "propose";
    if (replication !== null && !replication.acceptsPublishes) return apiError("ClusterNotAvailable").json; // no longer leading: its feeds stop
    const checked = this.checkPublish(subject, headers, parseHeaders(headers), payload, null, mode);
    if (checked.kind === "error") return checked.error;
    if (checked.kind !== "ok") return null;
    if (replication !== null) {
      replication.proposeSourced(subject, headers, payload, checked.msgId, this.store.state().lastSeq + replication.inflight + 1);
      return null;
    }
    return this.appendSourced(subject, headers, payload, checked);
  }

  /** A committed sourced message of a replicated stream, on every replica; `seq` is what the leader expected it to get, `ts` the leader's timestamp. */
  applySourced(seq: number, subject: string, headers: Buffer, payload: Buffer, ts?: number): void {
    if (this.deleted || seq <= this.store.state().lastSeq) return; // stored before (the log replayed after a restart)
    const checked = this.checkPublish(subject, headers, parseHeaders(headers), payload, null, "apply");
    if (checked.kind !== "ok") return;
    const error = this.appendSourced(subject, headers, payload, checked, ts);
    if (error !== null) this.js.server.log.warn(`JetStream: stream ${this.name}: could not store a sourced message: ${error.description}`);
  }

  private appendSourced(subject: string, headers: Buffer, payload: Buffer, checked: PublishOk, ts?: number): ApiErrorJson | null {
    try {
      const previous = this.previousForRepublish(subject);
      const stored = this.append(subject, checked, payload, ts);
      this.republish(stored, previous);
      this.afterAppend(stored, checked);
    } catch (error) {
      const refused = storeErrorJson(error);
      if (refused === null) throw error;
      return refused;
    }
    return null;
  }

  /**
   * A mirrored message under the origin's sequence and with the origin's time `ts` (now when the origin did
   * not say): what the origin no longer has stays a deleted sequence here. A replicated stream's leader
   * proposes it; every replica stores it when it commits (applyMirrored).
   */
  storeMirrored(seq: number, subject: string, headers: Buffer | null, payload: Buffer, ts: number | undefined): ApiErrorJson | null {
    const replication = this.replication;
    if (replication === null) return this.applyMirrored(seq, subject, headers, payload, ts);
    if (!replication.acceptsPublishes) return apiError("ClusterNotAvailable").json; // no longer leading: its feeds stop
    replication.proposeMirrored(seq, subject, headers, payload, ts ?? nowMs());
    return null;
  }

  /** Stores a mirrored message (a replica applying it, or an R1 mirror) with time `ts`; a sequence it has is skipped (the log replayed). */
  applyMirrored(seq: number, subject: string, headers: Buffer | null, payload: Buffer, ts?: number): ApiErrorJson | null {
    try {
      if (seq <= this.store.state().lastSeq) return null;
      this.skipTo(seq - 1, subject);
      const previous = this.previousForRepublish(subject);
      const stored = this.store.append(subject, headers, payload, ts);
      this.republish(stored, previous);
      this.stored(stored);
    } catch (error) {
      const refused = storeErrorJson(error);
      if (refused === null) throw error;
      return refused;
    }
    return null;
  }

  /**
   * A mirror's sequences up to `last` that the origin no longer has (its consumer starts past them): deleted
   * sequences here, as nats-server's skipMsgs leaves them, so the mirror's last sequence is the origin's.
   */
  skipMirrored(last: number): void {
    if (this.replication !== null) {
      if (this.replication.acceptsPublishes) this.replication.proposeMirrorSkip(last);
      return;
    }
    this.applyMirrorSkip(last);
  }

  /** The skip itself (a replica applying it, or an R1 mirror). */
  applyMirrorSkip(last: number): void {
    try {
      this.skipTo(last, "$NATTER.SKIPPED"); // a subject no message has: no per-subject limit touches a real one
    } catch (error) {
      if (storeErrorJson(error) === null) throw error;
      // Not written (the disk is full): the next mirrored message skips them again.
    }
  }

  /**
   * Deleted sequences up to `last` (an empty store starts after it); `subject` for the placeholders. They are
   * stamped just after the last message (time 0: the store's ascending rule), not now: a mirrored message
   * after them keeps its origin time.
   */
  private skipTo(last: number, subject: string): void {
    const st = this.store.state();
    if (last <= st.lastSeq) return;
    if (st.messages === 0) this.store.purge({ seq: last + 1 });
    else for (let gap = st.lastSeq + 1; gap <= last; gap++) this.store.remove(this.store.append(subject, null, Buffer.alloc(0), 0).seq);
  }

  // ---- republish and subject transform (./republish.ts) ------------------------------------------

  private rewriteCache: { config: StreamConfig; input: SubjectRewrite | null; republish: SubjectRewrite | null } | null = null;

  /** The compiled subject_transform and republish of the current configuration. */
  private rewrites(): { input: SubjectRewrite | null; republish: SubjectRewrite | null } {
    const c = this.config;
    if (this.rewriteCache === null || this.rewriteCache.config !== c) {
      this.rewriteCache = {
        config: c,
        input: c.subject_transform ? new SubjectRewrite(c.subject_transform.src, c.subject_transform.dest) : null,
        republish: c.republish ? new SubjectRewrite(c.republish.src, c.republish.dest) : null,
      };
    }
    return this.rewriteCache;
  }

  /** Nats-Last-Sequence of a republish: the subject's sequence before this message (only looked up when republishing). */
  private previousForRepublish(subject: string): number {
    if (this.config.republish === undefined) return 0;
    return this.store.last(subject)?.seq ?? 0;
  }

  /** Publishes a stored message again on the republish destination, when it matches. */
  private republish(stored: StoredMessage, previous: number): void {
    const rp = this.config.republish;
    if (rp === undefined) return;
    const dest = this.rewrites().republish?.apply(stored.subject);
    if (dest === null || dest === undefined) return;
    const headersOnly = rp.headers_only === true;
    const headers = republishHeaders(this.name, stored.subject, stored.seq, stored.ts, previous, stored.headers, headersOnly, stored.data.length);
    this.js.client.publish(dest, headersOnly ? Buffer.alloc(0) : stored.data, null, headers);
  }

  /** Applies a new configuration (already checked by the API). */
  update(config: StreamConfig): void {
    const feedsChanged = JSON.stringify([this.config.mirror, this.config.sources]) !== JSON.stringify([config.mirror, config.sources]);
    this.config = config;
    if (feedsChanged) {
      this.feeds?.close();
      this.feeds = null;
      this.startFeeds();
    }
    this.store.setLimits(storeLimits(config));
    this.store.setCompression(config.compression === "s2");
    if (!config.allow_atomic) this.batches.clear();
    this.subscribe();
    this.scheduleExpiry();
  }

  // ---- publish --------------------------------------------------------------------------------

  private onPublish(m: InternalMessage): void {
    const trace = m.trace;
    if (trace === undefined || this.deleted) return this.takePublish(m);
    // A traced message (src/trace): the `js` event, sent once the store has it (or refused it).
    const event = trace.jetstream(this.name);
    try {
      if (trace.traceOnly) {
        const checked = this.checkPublish(m.subject, m.headers, parseHeaders(m.headers), m.payload, null);
        if (checked.kind === "error") event.error = checked.error.description;
      } else {
        this.takePublish({ ...m, headers: m.headers === null ? null : disabledHeaders(m.headers) }, event);
      }
    } finally {
      event.subject = m.subject;
      event.ts = now();
      trace.release();
    }
  }

  /** A publish to the stream's subjects (also one a new leader held until it was ready); `event`: its trace's `js` event. */
  takePublish(m: InternalMessage, event: Record<string, unknown> | null = null): void {
    if (this.deleted) return;
    const replication = this.replication;
    if (replication === null) {
      // A replicated stream before its group is attached takes nothing (the publisher retries).
      if (this.config.num_replicas <= 1) this.handlePublish(m, "local", event);
    } else if (replication.acceptsPublishes) {
      this.handlePublish(m, "propose", event);
    } else if (replication.isLeader) {
      replication.hold(m);
    } // a follower: the leader, which got the same message, proposes it
  }

  /**
   * A committed publish of a replicated stream, on every replica; `seq` is what the leader expected it to
   * get, `ts` the leader's timestamp (the message's time on every replica; undefined: this replica's clock).
   */
  applyPublish(m: InternalMessage, seq: number, ts: number | undefined): void {
    if (this.deleted || seq <= this.store.state().lastSeq) return; // stored before (the log replayed after a restart)
    this.handlePublish(m, "apply", null, ts);
  }

  /** `ts`: the message's time when not now (a replicated publish: its leader's). */
  private handlePublish(m: InternalMessage, mode: PublishMode, event: Record<string, unknown> | null = null, ts?: number): void {
    const reply = m.reply;
    // Only the leader answers a replicated publish (a follower applies silently).
    const answers = reply !== null && !this.config.no_ack && (mode !== "apply" || this.replication?.isLeader === true);
    // A PubAck for a stored message waits for the store's write (and becomes 10023 if that fails).
    const ack = (json: string, stored = true) => {
      if (answers) this.js.replyAfterFlush(reply!, json, stored ? this : null);
    };
    const fail = (e: ApiErrorJson) => {
      if (event !== null) event.error = e.description;
      ack(JSON.stringify({ error: e, stream: this.name, seq: 0 }), false);
    };
    if (this.config.sealed) return fail(apiError("StreamSealed").json);
    const h = parseHeaders(m.headers);
    const batchId = h?.values.get("Nats-Batch-Id");
    if (batchId !== undefined && batchId !== "") {
      // A replicated stream's leader stages batches and proposes each whole at its commit: the log never
      // holds a batch message alone.
      if (mode === "apply") return fail(apiError("AtomicPublishDisabled").json);
      return this.onBatchMessage(batchId, h!, m, ack, fail, mode);
    }
    const subject = this.rewrites().input?.apply(m.subject) ?? m.subject; // subject_transform (./republish.ts)
    const checked = this.checkPublish(subject, m.headers, h, m.payload, null, mode);
    if (checked.kind === "drop") return;
    if (checked.kind === "error") return fail(checked.error);
    if (checked.kind === "duplicate") return ack(`${this.pubAckHead()}${checked.seq},"duplicate": true}`);
    // The leader of a replicated stream proposes what passed the checks; every replica (this one too) stores it
    // when it is committed, running the same checks on the same replicated state (applyPublish).
    if (mode === "propose") return this.replication!.propose(m, checked.msgId, this.store.state().lastSeq + this.replication!.inflight + 1);
    let stored: StoredMessage;
    const previous = this.previousForRepublish(subject);
    try {
      stored = this.append(subject, checked, m.payload, ts);
    } catch (error) {
      const refused = storeErrorJson(error);
      if (refused === null) throw error;
      return fail(refused);
    }
    this.republish(stored, previous);
    if (answers) ack(`${this.pubAckHead()}${stored.seq}}`); // (a follower applying builds no answer)
    this.afterAppend(stored, checked);
  }

  /**
   * The checks of a publish, in nats-server's order, with their answers. `batch` is the view of an atomic
   * batch's commit: what the batch's earlier messages would have changed (last sequences, Msg-Ids).
   */
  private checkPublish(subject: string, headers: Buffer | null, h: ParsedHeaders | null, payload: Buffer, batch: BatchView | null, mode: PublishMode = "local"): PublishCheck {
    const c = this.config;
    const error = (e: ApiError): PublishCheck => ({ kind: "error", error: e.json });
    let rollup: "sub" | "all" | null = null;
    let msgId = "";
    let scheduleAt = 0;
    let ttl: number | null = 0;
    if (h !== null) {
      const v = h.values;
      const expectedStream = v.get("Nats-Expected-Stream");
      if (expectedStream !== undefined && expectedStream !== "" && expectedStream !== this.name) return error(apiError("StreamNotMatch"));
      // A valid TTL on a stream without allow_msg_ttl is refused here; an invalid one later (nats-server's order).
      ttl = parseMessageTtl(v.get("Nats-TTL"));
      if (ttl !== null && ttl !== 0 && !c.allow_msg_ttl) return error(apiError("MessageTTLDisabled"));
      msgId = v.get("Nats-Msg-Id") ?? "";
      if (msgId !== "") {
        this.loadDedupe();
        this.trimDedupe();
        const seen = this.dedupe.get(msgId)?.seq;
        // Proposed by this leader and not committed yet: its outcome is unknown, so no answer now. The client's
        // retry finds it stored (a duplicate) or lost (proposed again); a "duplicate" answer here could
        // acknowledge a message that never commits (found by the Jepsen test: seed 4, leader partitioned).
        if (seen === undefined && mode === "propose" && this.replication!.pendingMsgId(msgId) !== undefined) return { kind: "drop" };
        // In a batch a duplicate (of the window or of the batch) refuses the whole batch.
        if (batch !== null && (seen !== undefined || batch.msgIds.has(msgId))) return error(apiError("AtomicPublishContainsDuplicateMessage"));
        if (seen !== undefined) return { kind: "duplicate", seq: seen };
      }
      const lastSubjSeq = v.get("Nats-Expected-Last-Subject-Sequence");
      if (lastSubjSeq !== undefined && lastSubjSeq !== "") {
        const want = Number(lastSubjSeq);
        const have = batch?.lastBySubject.get(subject) ?? this.store.last(subject)?.seq ?? 0;
        if (want !== have) return error(apiError("StreamWrongLastSequence", { seq: have }));
      }
      const lastSeq = v.get("Nats-Expected-Last-Sequence");
      if (lastSeq !== undefined && lastSeq !== "") {
        // A replicated stream's leader counts what it proposed and is not committed yet.
        const have = batch?.lastSeq ?? this.store.state().lastSeq + (mode === "propose" ? this.replication!.inflight : 0);
        if (Number(lastSeq) !== have) return error(apiError("StreamWrongLastSequence", { seq: have }));
      }
      const lastMsgId = v.get("Nats-Expected-Last-Msg-Id");
      if (lastMsgId !== undefined && lastMsgId !== "") {
        if (batch !== null) return error(apiError("AtomicPublishUnsupportedHeaderBatch", { header: "Nats-Expected-Last-Msg-Id" }));
        if (lastMsgId !== this.lastMsgId) return error(apiError("StreamWrongLastMsgID", { id: this.lastMsgId }));
      }
      const r = v.get("Nats-Rollup");
      if (r !== undefined && r !== "") {
        if (!c.allow_rollup_hdrs) return error(apiError("StreamRollupFailed", { err: "rollup not permitted" }));
        if (r === "sub" || r === "all") rollup = r;
        else if (batch === null) return { kind: "drop" }; // nats-server drops it without a reply
      }
      // Delayed delivery, nats-server 2.12's message schedules: `Nats-Schedule: @at <RFC 3339 time>` with
      // `Nats-Schedule-Target: <subject in this stream>`; at that time the message is published to the target.
      const schedule = v.get("Nats-Schedule");
      if (schedule !== undefined && schedule !== "") {
        const at = schedule.startsWith("@at ") ? parseRfc3339(schedule.slice(4)) : NaN;
        if (!c.allow_msg_schedules) return error(apiError("MessageSchedulesDisabled"));
        if (Number.isNaN(at)) return error(apiError("MessageSchedulesPatternInvalid"));
        const target = v.get("Nats-Schedule-Target") ?? "";
        if (target === "" || !isValidPublishSubject(target) || subjectsCollide(target, subject) || !c.subjects.some((x) => subjectsCollide(x, target))) {
          return error(apiError("MessageSchedulesTargetInvalid"));
        }
        scheduleAt = at;
      }
    }
    const size = payload.length + (headers?.length ?? 0);
    const maxSize = c.max_msg_size > 0 ? c.max_msg_size : this.js.server.options.maxPayload;
    if (size > maxSize) return error(apiError("StreamMessageExceedsMaximum"));
    if ((headers?.length ?? 0) > 65535) return error(apiError("StreamHeaderExceedsMaximum"));
    const resources = this.js.checkResources(this.config.storage, size + (batch?.bytes ?? 0));
    if (resources !== null) return error(resources);
    if (ttl === null) return error(apiError("MessageTTLInvalid"));
    // With markers, a TTL is at least the marker's (else a marker could go missing), unless a subject holds one message.
    const markerTtl = Math.floor(nsToMs(c.subject_delete_marker_ttl ?? 0) / 1000);
    if (ttl > 0 && ttl < markerTtl && c.max_msgs_per_subject !== 1) {
      ttl = markerTtl;
      headers = Buffer.concat([(removeHeaders(headers!, ["Nats-TTL"]) ?? Buffer.from("NATS/1.0\r\n\r\n")).subarray(0, -2), Buffer.from(`Nats-TTL: ${ttl}\r\n\r\n`)]);
    }
    return { kind: "ok", headers, msgId, rollup, scheduleAt, ttl };
  }

  /** Appends a checked message (throws StoreLimitError / StoreWriteError) and applies its Msg-Id and rollup; `ts` when not now. */
  private append(subject: string, checked: PublishOk, payload: Buffer, ts?: number): StoredMessage {
    const stored = this.store.append(subject, checked.headers, payload, ts);
    this.lastMsgId = checked.msgId;
    if (checked.msgId !== "") this.dedupe.set(checked.msgId, { seq: stored.seq, ts: stored.ts });
    if (checked.rollup === "sub") this.purge({ filter: subject, seq: stored.seq });
    else if (checked.rollup === "all") this.purge({ seq: stored.seq });
    return stored;
  }

  /** After the PubAck was queued: TTL, consumers, schedule. */
  private afterAppend(stored: StoredMessage, checked: PublishOk): void {
    if (checked.ttl > 0) this.addTtl(stored.seq, stored.ts + checked.ttl * 1000);
    this.stored(stored);
    if (checked.scheduleAt > 0) this.addSchedule(stored.seq, checked.scheduleAt);
  }

  // ---- atomic batch publish (batch.ts) ----------------------------------------------------------

  private onBatchMessage(id: string, h: ParsedHeaders, m: InternalMessage, ack: (json: string, stored?: boolean) => void, fail: (e: ApiErrorJson) => void, mode: PublishMode): void {
    const c = this.config;
    // nats-server's order: resources, message size, then the batch's own checks.
    const size = m.payload.length + (m.headers?.length ?? 0);
    const resources = this.js.checkResources(c.storage, size);
    if (resources !== null) return fail(resources.json);
    const maxSize = c.max_msg_size > 0 ? c.max_msg_size : this.js.server.options.maxPayload;
    if (size > maxSize) return fail(apiError("StreamMessageExceedsMaximum").json);
    if (!c.allow_atomic) return fail(apiError("AtomicPublishDisabled").json);
    const step = this.batches.add(id, h.values.get("Nats-Batch-Sequence"), h.values.get("Nats-Batch-Commit"), {
      subject: m.subject, headers: m.headers, data: m.payload,
    });
    if (step.kind === "error") return fail(step.error);
    if (step.kind === "staged") return ack("", false); // an empty reply: taken into the batch
    const messages = step.messages;
    // An `eob` commit is not stored: the batch's last message becomes the commit.
    const last = messages[messages.length - 1]!;
    if (last.headers === null || parseHeaders(last.headers)?.values.get("Nats-Batch-Commit") === undefined) {
      const base = (last.headers ?? Buffer.from("NATS/1.0\r\n\r\n")).toString("latin1").replace(/\r\n\r\n$/, "\r\n");
      messages[messages.length - 1] = { ...last, headers: Buffer.from(`${base}Nats-Batch-Commit: 1\r\n\r\n`, "latin1") };
    }
    if (mode === "propose") {
      // The leader checks the batch against what is stored and in flight, then proposes it as one entry;
      // every replica checks and stores it when it commits, and this leader answers then (applyBatch).
      const replication = this.replication!;
      const firstSeq = this.store.state().lastSeq + replication.inflight + 1;
      const checked = this.checkBatch(messages, firstSeq - 1, mode);
      if ("error" in checked) return fail(checked.error);
      const msgIds = checked.checked.map((c) => c.msgId).filter((x) => x !== "");
      return replication.proposeBatch({ id, firstSeq, reply: m.reply, messages, msgIds });
    }
    const result = this.commitBatch(messages);
    if ("error" in result) return fail(result.error);
    ack(`${this.pubAckHead()}${result.lastSeq},"batch":${JSON.stringify(id)},"count":${messages.length}}`);
    for (const [stored, checked] of result.stored) this.afterAppend(stored, checked);
  }

  /**
   * A replicated stream's batch, committed in its log: every replica checks and stores it in one run, as
   * an R1 stream does at the commit; the leader answers. A batch this replica stored only in part (a crash
   * during its flush) is completed; one stored whole before (the log applied again at start) is skipped.
   */
  applyBatch(batch: ProposedBatch): void {
    if (this.deleted) return;
    const answers = this.replication?.isLeader === true && batch.reply !== null && !this.config.no_ack;
    const lastSeq = this.store.state().lastSeq;
    if (batch.firstSeq + batch.messages.length - 1 <= lastSeq) return;
    const messages = lastSeq >= batch.firstSeq ? batch.messages.slice(lastSeq - batch.firstSeq + 1) : batch.messages;
    const result = this.commitBatch(messages, batch.ts);
    if ("error" in result) {
      if (answers) this.js.replyAfterFlush(batch.reply!, JSON.stringify({ error: result.error, stream: this.name, seq: 0 }), null);
      return;
    }
    if (answers) this.js.replyAfterFlush(batch.reply!, `${this.pubAckHead()}${result.lastSeq},"batch":${JSON.stringify(batch.id)},"count":${batch.messages.length}}`, this);
    for (const [stored, checked] of result.stored) this.afterAppend(stored, checked);
  }

  /**
   * Checks every message of a batch as if the ones before it were stored, then appends them all in one
   * synchronous run (consumers hear of them after it, and the flush that precedes deliveries writes them
   * together). A store refusal part way (a write failure) removes what was appended: all or nothing.
   */
  private commitBatch(messages: StagedMessage[], ts?: number): { error: ApiErrorJson } | { lastSeq: number; stored: [StoredMessage, PublishOk][] } {
    const result = this.checkBatch(messages, this.store.state().lastSeq, "local");
    if ("error" in result) return result;
    const checked = result.checked;
    const stored: [StoredMessage, PublishOk][] = [];
    try {
      for (let i = 0; i < messages.length; i++) stored.push([this.append(messages[i]!.subject, checked[i]!, messages[i]!.data, ts), checked[i]!]);
    } catch (error) {
      const refused = storeErrorJson(error);
      if (refused === null) throw error;
      for (const [m] of stored) this.store.remove(m.seq);
      return { error: refused };
    }
    return { lastSeq: stored[stored.length - 1]![0].seq, stored };
  }

  /**
   * Every message of a batch checked as if the ones before it were stored after `lastSeq` (a replicated
   * stream's leader counts what it has in flight), and the limits of a discard-new stream for the whole.
   */
  private checkBatch(messages: StagedMessage[], lastSeq: number, mode: PublishMode): { error: ApiErrorJson } | { checked: PublishOk[] } {
    const st = this.store.state();
    const view: BatchView = { lastSeq, lastBySubject: new Map(), msgIds: new Set(), bytes: 0 };
    const checked: PublishOk[] = [];
    const perSubject = new Map<string, number>();
    for (const msg of messages) {
      const r = this.checkPublish(msg.subject, msg.headers, parseHeaders(msg.headers), msg.data, view, mode);
      if (r.kind === "error") return { error: r.error };
      if (r.kind !== "ok") return { error: apiError("AtomicPublishIncompleteBatch").json }; // not reached: batches answer errors
      checked.push(r);
      view.lastSeq++;
      view.lastBySubject.set(msg.subject, view.lastSeq);
      if (r.msgId !== "") view.msgIds.add(r.msgId);
      view.bytes += msg.data.length + (r.headers?.length ?? 0);
      perSubject.set(msg.subject, (perSubject.get(msg.subject) ?? 0) + 1);
    }
    // Discard new: the whole batch must fit, or none of it goes in.
    const c = this.config;
    if (c.discard === "new") {
      const bytes = messages.reduce((n, msg, i) => n + storedSize(this.store.kind, msg.subject, checked[i]!.headers, msg.data), 0);
      let limit: string | null = null;
      if (c.max_msgs > 0 && st.messages + messages.length > c.max_msgs) limit = "maximum messages exceeded";
      else if (c.max_bytes > 0 && st.bytes + bytes > c.max_bytes) limit = "maximum bytes exceeded";
      else if (c.discard_new_per_subject && c.max_msgs_per_subject > 0) {
        for (const [subject, n] of perSubject) {
          if (this.store.count(0, [subject]) + n > c.max_msgs_per_subject) limit = "maximum messages per subject exceeded";
        }
      }
      if (limit !== null) return { error: apiError("StreamStoreFailed", { err: limit }).json };
    }
    return { checked };
  }

  private batchAbandoned(id: string, reason: AbandonReason): void {
    this.js.advisory(`$JS.EVENT.ADVISORY.STREAM.BATCH_ABANDONED.${this.name}`, {
      type: "io.nats.jetstream.advisory.v1.stream_batch_abandoned", id: nuid(), timestamp: rfc3339(nowMs()),
      stream: this.name, batch: id, reason,
    });
  }

  /**
   * After a restart: a batch whose last stored message ends the store but is not its commit was cut by a
   * crash while it was being written (kill -9 between the writes of one flush). Nothing of it was
   * acknowledged or delivered (deliveries follow the flush), so it goes, as nats-server drops an uncommitted batch.
   */
  private dropUncommittedBatch(): void {
    const st = this.store.state();
    // A cut write ends the store: its last record is the batch's. A last sequence that is gone was removed
    // after it was written (a commit acked on a work queue, deleted, aged out), so no batch was cut there.
    if (st.messages === 0 || this.store.subjectOf(st.lastSeq) === null) return;
    let id: string | undefined;
    const victims: number[] = [];
    for (let seq = st.lastSeq; seq >= st.firstSeq && victims.length <= this.js.options.batchLimits.maxMsgs; seq--) {
      const m = this.store.get(seq);
      if (m === null) continue;
      const v = parseHeaders(m.headers)?.values;
      const mine = v?.get("Nats-Batch-Id");
      if (mine === undefined || mine === "" || v!.get("Nats-Batch-Commit") !== undefined || (id !== undefined && mine !== id)) break;
      id = mine;
      victims.push(seq);
    }
    if (victims.length === 0) return;
    for (const seq of victims) this.store.remove(seq);
    this.store.flush();
    this.js.server.log.warn(`JetStream: stream ${this.name}: batch ${id} was not committed before the server stopped: its ${victims.length} message(s) removed`);
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
    // (A replicated stream's follower runs no durable consumers: the leader decides, through the group.)
    const follower = this.replication !== null && !this.replication.isLeader;
    if (this.config.retention === "interest" && !interested && !follower) this.removeForRetention(stored.seq);
    if (this.config.max_age > 0 && this.expireTimer === null) this.scheduleExpiry();
    else if (this.ttls.size > 0 && (this.expireTimer === null || this.ttls.peekAt() < this.expireAt)) this.armExpiry(this.ttls.peekAt());
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

  /** Runs what is due (max_age, TTLs) and sets the timer for what is due next. */
  private scheduleExpiry(): void {
    if (this.expireTimer !== null) clearTimeout(this.expireTimer);
    this.expireTimer = null;
    if (this.deleted) return;
    const c = this.config;
    if (c.max_age <= 0 && !c.allow_msg_ttl) return;
    // Without TTLs the store ages messages out by itself; with them, the stream does (markers, `never`).
    const next = c.allow_msg_ttl ? this.expireWithTtls(nowMs()) : this.store.expire(nowMs());
    this.js.markDirty(this);
    if (next > 0) this.armExpiry(next);
    else if (c.max_age > 0) this.armExpiry(nowMs() + nsToMs(c.max_age));
  }

  private armExpiry(at: number): void {
    if (this.expireTimer !== null) clearTimeout(this.expireTimer);
    this.expireAt = at;
    // Capped: past 2^31-1 ms a timer fires after 1 ms, and this one re-armed itself every millisecond.
    this.expireTimer = setTimeout(() => {
      this.expireTimer = null;
      this.scheduleExpiry();
    }, Math.min(Math.max(1, at - nowMs()), 2 ** 31 - 1));
    this.expireTimer.unref?.();
  }

  // ---- per-message TTL and subject delete markers ---------------------------------------------

  private addTtl(seq: number, expiresAt: number): void {
    this.ttls.add(seq, expiresAt);
  }

  /**
   * max_age and per-message TTLs on a stream with allow_msg_ttl (nats-server's expireMsgs): a message with
   * `Nats-TTL: never` outlives max_age; the last message of a subject that goes leaves a subject delete
   * marker when the stream has subject_delete_marker_ttl. Returns when the next one is due (ms), or 0.
   */
  private expireWithTtls(now: number): number {
    const maxAgeMs = nsToMs(this.config.max_age);
    let nextAge = 0;
    if (maxAgeMs > 0) {
      const cutoff = now - maxAgeMs;
      for (let m = this.store.next(0, null); m !== null; m = this.store.next(m.seq + 1, null)) {
        if (m.ts > cutoff) {
          nextAge = m.ts + maxAgeMs;
          break;
        }
        if (parseMessageTtl(parseHeaders(m.headers)?.values.get("Nats-TTL")) === -1) continue;
        this.expireMessage(m);
      }
    }
    while (this.ttls.size > 0 && this.ttls.peekAt() <= now && !this.deleted) {
      const seq = this.ttls.pop();
      if (this.store.subjectOf(seq) === null) continue; // already gone
      const m = this.store.get(seq);
      if (m !== null) this.expireMessage(m);
    }
    const nextTtl = this.ttls.peekAt();
    if (nextAge === 0) return nextTtl;
    return nextTtl === 0 ? nextAge : Math.min(nextAge, nextTtl);
  }

  /** One message's time is up: it goes, or, as the last of its subject, a marker rolls it up. */
  private expireMessage(m: StoredMessage): void {
    const markerTtl = Math.floor(nsToMs(this.config.subject_delete_marker_ttl ?? 0) / 1000);
    const isLast = markerTtl > 0 && this.store.last(m.subject)?.seq === m.seq;
    if (!isLast || isSubjectDeleteMarker(parseHeaders(m.headers)?.values)) {
      this.store.remove(m.seq, "age");
      return;
    }
    let marker: StoredMessage;
    try {
      marker = this.store.append(m.subject, subjectDeleteMarkerHeaders(markerTtl), Buffer.alloc(0));
    } catch {
      this.store.remove(m.seq, "age"); // no room for a marker (discard new): the message goes all the same
      return;
    }
    this.lastMsgId = "";
    this.purge({ filter: m.subject, seq: marker.seq });
    this.addTtl(marker.seq, marker.ts + markerTtl * 1000);
    this.stored(marker);
  }

  /** After a restart: the messages whose TTL still runs (those already due go at the first expiry pass). */
  private rebuildTtls(): void {
    if (!this.config.allow_msg_ttl) return;
    const st = this.store.state();
    for (let m = this.store.next(st.firstSeq, null); m !== null; m = this.store.next(m.seq + 1, null)) {
      if (m.headers === null) continue;
      const ttl = parseMessageTtl(parseHeaders(m.headers)?.values.get("Nats-TTL"));
      if (ttl !== null && ttl > 0) this.ttls.add(m.seq, m.ts + ttl * 1000);
    }
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

  /** Direct get (direct.ts): `lastBySubject` for `$JS.API.DIRECT.GET.<stream>.<subject>`, else null. */
  private onDirectGet(m: InternalMessage, lastBySubject: string | null): void {
    if (m.reply === null || this.deleted) return;
    const reply = m.reply;
    const send = (headers: Buffer | null, payload: Buffer) => this.js.client.publish(reply, payload, null, headers);
    if (lastBySubject !== null) directGetLast(this.name, this.store, lastBySubject, m.payload, send);
    else directGet(this.name, this.store, this.js.server.options.maxPending, m.payload, send);
  }

  // ---- info -----------------------------------------------------------------------------------

  info(subjectsFilter?: string, deletedDetails = false): StreamInfoJson {
    const info: StreamInfoJson = { config: this.config, created: rfc3339(this.created), state: this.stateJson(subjectsFilter, deletedDetails) };
    const domain = this.js.options.domain;
    if (domain !== "") info.domain = domain;
    if (this.feeds !== null) {
      const now = Date.now();
      const mirror = this.feeds.mirrorInfo(now);
      const sources = this.feeds.sourcesInfo(now);
      if (mirror !== undefined) info.mirror = mirror;
      if (sources !== undefined) info.sources = sources;
    }
    return info;
  }

  /** A PubAck up to its sequence, as nats-server's template: `{"stream":S, "domain":D, "seq":`. */
  private pubAckHead(): string {
    const domain = this.js.options.domain;
    return `{"stream":${JSON.stringify(this.name)}, ${domain !== "" ? `"domain":${JSON.stringify(domain)}, ` : ""}"seq":`;
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
    if (r === "workqueue") this.removeForRetention(seq);
    else if (r === "interest" && this.consumersDone(seq)) this.removeForRetention(seq);
    this.js.markDirty(this);
  }

  /**
   * A consumer was deleted: on an interest stream, what no consumer left still wants goes now, from the deleted
   * one's ack floor on (as nats-server's consumer delete does), rather than staying until the stream's limits.
   */
  consumerDeleted(deleted: Consumer): void {
    if (this.config.retention !== "interest" || this.deleted) return;
    const { firstSeq, lastSeq, messages } = this.store.state();
    if (messages === 0) return;
    for (let seq = Math.max(deleted.ackFloorSeq + 1, firstSeq); seq <= lastSeq; seq++) {
      if (this.store.subjectOf(seq) !== null && this.consumersDone(seq)) this.removeForRetention(seq);
    }
    this.js.markDirty(this);
  }

  /**
   * Would this node's consumers let retention remove `seq` now? Interest: every consumer is done with it.
   * Work queue: the consumer that takes its subject acknowledged it (with none, it waits for one).
   */
  retentionDone(seq: number): boolean {
    const r = this.config.retention;
    if (r === "interest") return this.consumersDone(seq);
    if (r !== "workqueue") return false;
    const subject = this.store.subjectOf(seq);
    if (subject === null) return false;
    for (const c of this.consumers.values()) {
      if ((c.filters === null || matchesAny(c.filters, subject)) && c.hasAcked(seq)) return true;
    }
    return false;
  }

  /** Has every consumer here acknowledged `seq` (or does not want it)? */
  consumersDone(seq: number): boolean {
    for (const c of this.consumers.values()) if (!c.hasAcked(seq)) return false;
    return true;
  }

  /** A message retention no longer keeps: removed here, or on every replica through a replicated stream's group. */
  private removeForRetention(seq: number): void {
    if (this.replication === null) this.store.remove(seq);
    else this.replication.proposeRemove(seq);
  }

  /** Does a subject fall into this stream? */
  captures(subject: string): boolean {
    return this.config.subjects.some((s) => s === subject || subjectMatches(s, subject));
  }

  close(): void {
    this.batches.clear();
    if (this.expireTimer !== null) clearTimeout(this.expireTimer);
    this.expireTimer = null;
    if (this.scheduleTimer !== null) clearTimeout(this.scheduleTimer);
    this.scheduleTimer = null;
    for (const s of this.subs) this.js.client.unsubscribe(s);
    for (const s of this.directSubs) this.js.client.unsubscribe(s);
    this.subs = [];
    this.directSubs = [];
    this.mirrorStopped();
    for (const c of this.consumers.values()) c.stop();
    this.feeds?.close();
    this.feeds = null;
    this.store.close();
  }

  get nextExpiry(): number {
    return this.expireAt;
  }
}
