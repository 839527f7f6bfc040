// The JetStream JSON API on $JS.API.> (nats-server's jetstream_api.go): one subscription, dispatch
// by subject, every answer `{"type":"io.nats.jetstream.api.v1.<x>_response", …}` and every failure
// `"error":{"code","err_code","description"}` as nats-server writes them. A subject nobody handles
// (an unknown request, a missing consumer's MSG.NEXT) gets no answer, as with nats-server.
//
// One per account: an account with JetStream answers from its own streams (AccountJetStream); an account
// without it (the server has JetStream, the account's config does not enable it) gets nats-server's
// `JetStream not enabled for account` (503, 10039) to every request nats-server's API would handle.
import type { InternalClient, InternalMessage } from "../internal-client.ts";
import { subjectIsLiteral, subjectMatches } from "../subjects/subject.ts";
import { Sublist, type SublistEntry } from "../subjects/sublist.ts";
import {
  checkStreamUpdate, DEFAULT_EPHEMERAL_INACTIVE_NS, isValidName, normalizeConsumerConfig, normalizeStreamConfig,
  orderConsumerConfig, subjectsCollide, timeText, VALID_GROUP_NAME, type ConsumerConfig, type StreamConfig,
} from "./config.ts";
import { Consumer } from "./consumer.ts";
import { advisoriesOf, consumerAction, streamAction, withAdvisories } from "./action-advisories.ts";
import { checkSourceCycle } from "./source-config.ts";
import { ApiError, apiError } from "./errors.ts";
import type { AccountJetStream } from "./account.ts";
import type { Stream, StreamInfoJson } from "./stream.ts";
import { hasInterest } from "./deliver.ts";
import { parseRfc3339, rfc3339, ZERO_TIME } from "./wire.ts";
import { nowMs } from "./store/indexed.ts";
import { API_AUDIT_SUBJECT, apiAudit, isAudited } from "./api-audit.ts";

const TYPE = "io.nats.jetstream.api.v1.";
const NAMES_LIMIT = 1024;
const LIST_LIMIT = 256;
/** Subjects in one stream info's subject details (nats-server's JSMaxSubjectDetails). */
const SUBJECT_DETAILS_LIMIT = 100_000;

type Body = Record<string, unknown>;

export class JetStreamApi {
  constructor(
    private readonly client: InternalClient,
    /** The account's JetStream; null when it has none (every request answered 10039). */
    private readonly ctx: AccountJetStream | null,
  ) {}

  /** The account's JetStream, for the handlers (dispatch has checked that there is one). */
  private get js(): AccountJetStream {
    if (this.ctx === null) throw apiError("NotEnabledForAccount");
    return this.ctx;
  }

  subscribe(): void {
    this.client.subscribe("$JS.API.>", (m) => this.dispatch(m));
  }

  private dispatch(m: InternalMessage): void {
    if (m.reply === null) return;
    const t = m.subject.split(".");
    // $JS.API.<area>.<op>…
    const area = t[2];
    const op = t[3];
    if (area === "DIRECT" || (area === "CONSUMER" && op === "MSG")) return; // per-stream / per-consumer subscriptions answer these
    const route = this.route(t);
    // In a cluster, the clustered layer decides which node answers (src/jetstream/cluster/clustered-api.ts),
    // and answers what only a cluster has (leader stepdowns).
    const clustered = this.ctx?.service.cluster;
    if (clustered != null && clustered.takeRequest(this, m, t, route === null ? null : route[0])) return;
    if (route === null) return;
    this.answer(m, route[0], this.execute(m, route));
  }

  /** Runs a request here, as a single server would; the answer's body (null: a subject nobody handles). */
  handleLocally(m: InternalMessage): Body | null {
    const route = this.route(m.subject.split("."));
    if (route === null) return null;
    const body = this.execute(m, route);
    if (m.reply !== null) this.answer(m, route[0], body);
    return body;
  }

  /** Runs a request here and returns its answer's body without sending it. */
  handleLocallyBody(m: InternalMessage): Body {
    const route = this.route(m.subject.split("."));
    if (route === null) throw apiError("BadRequest");
    return this.execute(m, route);
  }

  /** Part of a JetStream cluster (replicated streams allowed). */
  private get clustered(): boolean {
    return (this.ctx?.service.cluster ?? null) !== null;
  }

  /** The account this API answers in. */
  get accountName(): string {
    return this.client.account.name;
  }

  /** The account's JetStream (null: not enabled for the account). */
  get context(): AccountJetStream | null {
    return this.ctx;
  }

  /**
   * Publishes the answer of `type` (e.g. `stream_info_response`) to `request`, after the action advisories
   * it carries and before its audit advisory (nats-server's order).
   */
  answer(request: InternalMessage, type: string, body: Body): void {
    for (const [subject, advisory] of advisoriesOf(body)) this.ctx?.advisory(subject, advisory);
    const response = JSON.stringify({ type: TYPE + type, ...body });
    if (request.reply !== null) this.client.publish(request.reply, Buffer.from(response));
    if (isAudited(request, type, body.error !== undefined)) {
      const audit = apiAudit(this.client.server, request, response, this.ctx?.service.options.domain ?? "");
      this.client.publish(API_AUDIT_SUBJECT, Buffer.from(JSON.stringify(audit)));
    }
  }

  /** An error answer, with the fields nats-server adds to errors of that response type. */
  answerError(request: InternalMessage, type: string, error: ApiError): void {
    if (this.ctx !== null) this.ctx.apiErrors++;
    this.answer(request, type, { error: error.json, ...errorExtras(type) });
  }

  private execute(m: InternalMessage, [type, handler]: [string, (m: InternalMessage) => Body]): Body {
    const ctx = this.ctx;
    if (ctx !== null) ctx.apiTotal++;
    try {
      const body = handler(m);
      ctx?.service.cluster?.decorate(body, this.accountName);
      return body;
    } catch (error) {
      if (!(error instanceof ApiError)) {
        this.client.server.log.error(`JetStream API ${m.subject}: ${(error as Error).stack ?? error}`);
        error = apiError("StreamGeneral", { err: (error as Error).message });
      }
      if (ctx !== null) ctx.apiErrors++;
      return { error: (error as ApiError).json, ...errorExtras(type) };
    }
  }

  private route(t: string[]): [string, (m: InternalMessage) => Body] | null {
    const found = this.handlerFor(t);
    // No JetStream in this account: nats-server checks that before anything in the request.
    if (found !== null && this.ctx === null) return [found[0], () => { throw apiError("NotEnabledForAccount"); }];
    return found;
  }

  private handlerFor(t: string[]): [string, (m: InternalMessage) => Body] | null {
    const [, , area, op, a, b] = t;
    const n = t.length;
    if (area === "INFO" && n === 3) return ["account_info_response", () => this.accountInfo()];
    if (area === "STREAM") {
      switch (op) {
        case "CREATE": return n === 5 ? ["stream_create_response", (m) => this.streamCreate(a!, m)] : null;
        case "UPDATE": return n === 5 ? ["stream_update_response", (m) => this.streamUpdate(a!, m)] : null;
        case "INFO": return n === 5 ? ["stream_info_response", (m) => this.streamInfo(a!, m)] : null;
        case "DELETE": return n === 5 ? ["stream_delete_response", () => this.streamDelete(a!)] : null;
        case "PURGE": return n === 5 ? ["stream_purge_response", (m) => this.streamPurge(a!, m)] : null;
        case "NAMES": return n === 4 ? ["stream_names_response", (m) => this.streamNames(m)] : null;
        case "LIST": return n === 4 ? ["stream_list_response", (m) => this.streamList(m)] : null;
        // Only a cluster moves replicas (src/jetstream/cluster answers it there).
        case "PEER": return a === "REMOVE" && n === 6 ? ["stream_remove_peer_response", () => { throw apiError("ClusterRequired"); }] : null;
        case "MSG":
          if (n !== 6) return null;
          if (a === "GET") return ["stream_msg_get_response", (m) => this.msgGet(b!, m)];
          if (a === "DELETE") return ["stream_msg_delete_response", (m) => this.msgDelete(b!, m)];
          return null;
      }
      return null;
    }
    if (area === "CONSUMER") {
      switch (op) {
        case "CREATE": return n >= 5 ? ["consumer_create_response", (m) => this.consumerCreate(t, m, false)] : null;
        case "DURABLE": return a === "CREATE" && n === 7 ? ["consumer_create_response", (m) => this.consumerCreate(t, m, true)] : null;
        case "INFO": return n === 6 ? ["consumer_info_response", () => this.consumerInfo(a!, b!)] : null;
        case "DELETE": return n === 6 ? ["consumer_delete_response", () => this.consumerDelete(a!, b!)] : null;
        case "NAMES": return n === 5 ? ["consumer_names_response", (m) => this.consumerNames(a!, m)] : null;
        case "LIST": return n === 5 ? ["consumer_list_response", (m) => this.consumerList(a!, m)] : null;
        case "PAUSE": return n === 6 ? ["consumer_pause_response", (m) => this.consumerPause(a!, b!, m)] : null;
        case "UNPIN": return n === 6 ? ["consumer_unpin_response", (m) => this.consumerUnpin(a!, b!, m)] : null;
      }
    }
    return null;
  }

  // ---- helpers ----------------------------------------------------------------------------------

  private stream(name: string): Stream {
    const s = this.js.streams.get(name);
    if (s === undefined) throw apiError("StreamNotFound");
    return s;
  }

  /** The request body as JSON: `{}` when empty (if allowed), "invalid JSON" when it does not parse. */
  private json(m: InternalMessage, emptyOk = true): Body {
    const text = m.payload.toString();
    if (text.trim() === "") {
      if (emptyOk) return {};
      throw apiError("InvalidJSON");
    }
    return jsonObject(text);
  }

  /** A request that must say something (msg get / delete): empty or `{}` is 10003 bad request, as nats-server's isEmptyRequest. */
  private requestJson(m: InternalMessage): Body {
    if (m.payload.toString().trim() === "") throw apiError("BadRequest");
    const body = this.json(m, false);
    if (Object.keys(body).length === 0) throw apiError("BadRequest");
    return body;
  }

  private offset(body: Body): number {
    const o = body.offset;
    return typeof o === "number" && o > 0 ? Math.floor(o) : 0;
  }

  // ---- account ----------------------------------------------------------------------------------

  accountInfo(): Body {
    const js = this.js;
    const l = js.limits;
    return {
      memory: js.usage("memory"),
      storage: js.usage("file"),
      streams: js.streams.size,
      consumers: js.consumerCount,
      limits: {
        max_memory: l.maxMemory, max_storage: l.maxFile, max_streams: l.maxStreams, max_consumers: l.maxConsumers, max_ack_pending: l.maxAckPending,
        memory_max_stream_bytes: l.memoryMaxStreamBytes, storage_max_stream_bytes: l.storeMaxStreamBytes, max_bytes_required: l.maxBytesRequired,
      },
      ...(js.options.domain !== "" ? { domain: js.options.domain } : {}),
      api: { total: this.js.apiTotal, errors: this.js.apiErrors },
    };
  }

  // ---- streams ----------------------------------------------------------------------------------

  /** A create request's configuration, checked as nats-server checks it before looking at other streams. */
  checkStreamCreate(name: string, m: InternalMessage): StreamConfig {
    const body = this.json(m, false);
    if (body.name !== name) throw apiError("StreamMismatch");
    if (/[/\\]/.test(name)) throw apiError("StreamNameContainsPathSeparators");
    // nats-server checks these before the rest of the configuration, in this order.
    if (body.sealed === true) throw apiError("StreamInvalidConfig", { err: "stream configuration for create can not be sealed" });
    if (body.mirror_direct === true && (body.mirror === undefined || body.mirror === null)) {
      throw apiError("StreamInvalidConfig", { err: "stream has no mirror but does have mirror direct" });
    }
    const config = normalizeStreamConfig(body, this.clustered);
    checkSourceCycle(config, (n) => (n === name ? undefined : this.js.streams.get(n)?.config), subjectsCollide);
    return config;
  }

  private streamCreate(name: string, m: InternalMessage): Body {
    const config = this.checkStreamCreate(name, m);
    this.js.checkStreamLimits(config, true);
    const existing = this.js.streams.get(name);
    if (existing !== undefined) {
      if (JSON.stringify(existing.config) !== JSON.stringify(config)) throw apiError("StreamNameExist");
      return { ...withoutDomain(existing.info()), did_create: true };
    }
    this.checkOverlap(name, config.subjects);
    const stream = this.js.createStream(config);
    // first_seq: the first message gets this sequence (nats-server purges its new store up to it).
    if (config.first_seq !== undefined && config.first_seq > 1) {
      stream.store.purge({ seq: config.first_seq });
      this.js.markDirty(stream);
    }
    return withAdvisories({ ...withoutDomain(stream.info()), did_create: true }, [streamAction(name, "create", this.js.options.domain)]);
  }

  private checkOverlap(name: string, subjects: string[]): void {
    checkSubjectOverlap(subjects, [...this.js.streams.values()].filter((o) => o.name !== name).flatMap((o) => o.config.subjects));
  }

  private streamUpdate(name: string, m: InternalMessage): Body {
    const body = this.json(m, false);
    const stream = this.stream(name);
    if (body.name !== name) throw apiError("StreamMismatch");
    const config = checkStreamUpdate(stream.config, normalizeStreamConfig(body, this.clustered));
    checkSourceCycle(config, (n) => (n === name ? undefined : this.js.streams.get(n)?.config), subjectsCollide);
    this.js.checkStreamLimits(config, false);
    checkConsumerLimitsUpdate(stream, config);
    this.checkOverlap(name, config.subjects);
    if (this.deliveryLoop(name, (s) => (s.name === name ? config.subjects : s.config.subjects), null)) {
      throw apiError("StreamInvalidConfig", { err: "stream subjects would form a cycle with the deliver subject of a push consumer" });
    }
    this.js.updateStream(stream, config);
    return withAdvisories(stream.info() as unknown as Body, [streamAction(name, "modify", this.js.options.domain)]);
  }

  private streamInfo(name: string, m: InternalMessage): Body {
    const body = this.json(m);
    const stream = this.stream(name);
    const filter = typeof body.subjects_filter === "string" ? body.subjects_filter : undefined;
    const info = stream.info(filter, body.deleted_details === true);
    const subjects = info.state.subjects;
    if (subjects === undefined) return { total: 0, offset: 0, limit: 0, ...info };
    // Subject details are paged as nats-server pages them: sorted, SUBJECT_DETAILS_LIMIT from `offset` (clients ask for the next page).
    const names = Object.keys(subjects).sort();
    const offset = Math.min(this.offset(body), names.length);
    const page = names.slice(offset, offset + SUBJECT_DETAILS_LIMIT);
    const paged = page.length === 0 ? undefined : Object.fromEntries(page.map((name) => [name, subjects[name]!]));
    return { total: names.length, offset, limit: SUBJECT_DETAILS_LIMIT, ...info, state: { ...info.state, subjects: paged } };
  }

  private streamDelete(name: string): Body {
    const stream = this.stream(name);
    const domain = this.js.options.domain;
    // Its consumers go first (nats-server stops them before the stream), each with its advisory.
    const advisories = [...stream.consumers.keys()].map((c) => consumerAction(name, c, "delete", domain));
    this.js.deleteStream(stream);
    return withAdvisories({ success: true }, [...advisories, streamAction(name, "delete", domain)]);
  }

  private streamPurge(name: string, m: InternalMessage): Body {
    const body = this.json(m);
    const stream = this.stream(name);
    if (stream.config.sealed) throw apiError("StreamSealed");
    if (stream.config.deny_purge) throw apiError("StreamPurgeFailed", { err: "stream purge not permitted" });
    const filter = typeof body.filter === "string" ? body.filter : undefined;
    const seq = sequenceArgument(body.seq);
    const keep = sequenceArgument(body.keep);
    if (seq !== undefined && keep !== undefined) throw apiError("BadRequest");
    const purged = stream.purge({ filter, seq, keep });
    this.js.markDirty(stream);
    return { success: true, purged };
  }

  private matchingStreams(body: Body): Stream[] {
    const subject = typeof body.subject === "string" && body.subject !== "" ? body.subject : null;
    const all = [...this.js.streams.values()].sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
    if (subject === null) return all;
    return all.filter((s) => s.config.subjects.some((x) => subjectsCollide(x, subject) || subjectMatches(subject, x)));
  }

  private streamNames(m: InternalMessage): Body {
    const body = this.json(m);
    const streams = this.matchingStreams(body);
    const offset = this.offset(body);
    const page = streams.slice(offset, offset + NAMES_LIMIT).map((s) => s.name);
    return { total: streams.length, offset, limit: NAMES_LIMIT, streams: page.length === 0 ? null : page };
  }

  private streamList(m: InternalMessage): Body {
    const body = this.json(m);
    const streams = this.matchingStreams(body);
    const offset = this.offset(body);
    const page = streams.slice(offset, offset + LIST_LIMIT).map((s) => s.info());
    return { total: streams.length, offset, limit: LIST_LIMIT, streams: page };
  }

  private msgGet(name: string, m: InternalMessage): Body {
    const body = this.requestJson(m);
    const stream = this.stream(name);
    const seq = typeof body.seq === "number" ? body.seq : undefined;
    const last = typeof body.last_by_subj === "string" ? body.last_by_subj : undefined;
    const next = typeof body.next_by_subj === "string" ? body.next_by_subj : undefined;
    if ((seq !== undefined && last !== undefined) || (last !== undefined && next !== undefined)) throw apiError("BadRequest");
    const msg = stream.lookup({ seq, last_by_subj: last, next_by_subj: next });
    const message: Body = { subject: msg.subject, seq: msg.seq };
    if (msg.headers !== null && msg.headers.length > 0) message.hdrs = msg.headers.toString("base64");
    if (msg.data.length > 0) message.data = msg.data.toString("base64");
    message.time = rfc3339(msg.ts);
    return { message };
  }

  private msgDelete(name: string, m: InternalMessage): Body {
    const body = this.requestJson(m);
    // A uint64 in nats-server: anything else does not decode. 0 (or none) is asked of the store like any other.
    const seq = body.seq === undefined || body.seq === null ? 0 : body.seq;
    if (typeof seq !== "number" || !Number.isInteger(seq) || seq < 0) throw apiError("InvalidJSON");
    const stream = this.stream(name);
    if (stream.config.sealed) throw apiError("StreamSealed");
    if (stream.config.deny_delete) throw apiError("StreamMsgDeleteFailed", { err: "message delete not permitted" });
    if (seq === 0 && stream.store.kind === "file") throw apiError("StreamMsgDeleteFailed", { err: "no message found" });
    if (seq === 0 || !stream.store.remove(seq)) {
      // nats-server's memory store reports any miss as "not removed": 10043 for every sequence.
      if (stream.store.kind === "memory") throw apiError("SequenceNotFound", { seq });
      // Its file store: outside the stored range it is a store error, inside a plain miss.
      const st = stream.store.state();
      if (seq > st.lastSeq) throw apiError("StreamMsgDeleteFailed", { err: "stream store EOF" });
      if (seq < st.firstSeq || st.messages === 0) throw apiError("StreamMsgDeleteFailed", { err: "no message found" });
      throw apiError("SequenceNotFound", { seq });
    }
    this.js.markDirty(stream);
    return { success: true };
  }

  // ---- consumers --------------------------------------------------------------------------------

  /**
   * CONSUMER.CREATE.<stream>[.<name>[.<filter>]] (action create/update/either) and the legacy
   * CONSUMER.DURABLE.CREATE.<stream>.<durable>, with nats-server's checks in its order.
   */
  private consumerCreate(t: string[], m: InternalMessage, legacyDurable: boolean): Body {
    const body = this.json(m, false);
    const streamName = legacyDurable ? t[5]! : t[4]!;
    let consumerName = legacyDurable ? t[6]! : (t[5] ?? "");
    const filterFromSubject = !legacyDurable && t.length > 6 ? t.slice(6).join(".") : "";
    if (body.stream_name !== streamName) throw apiError("StreamMismatch");
    if (/[/\\]/.test(consumerName)) throw apiError("ConsumerNameContainsPathSeparators");
    const raw = body.config as Record<string, unknown> | undefined;
    if (raw === undefined || raw === null || typeof raw !== "object") throw apiError("ConsumerConfigRequired");
    const durable = typeof raw.durable_name === "string" ? raw.durable_name : "";
    if (legacyDurable) {
      if (durable === "") throw apiError("ConsumerDurableNameNotSet");
      if (durable !== consumerName) throw apiError("ConsumerDurableNameNotMatchSubject");
    } else if (consumerName !== "") {
      if (durable !== "" && durable !== consumerName) throw apiError("ConsumerDurableNameNotMatchSubject");
      raw.name = consumerName;
    } else if (durable !== "") {
      throw apiError("ConsumerEphemeralWithDurableName");
    }
    if (filterFromSubject !== "") {
      if (Array.isArray(raw.filter_subjects) && raw.filter_subjects.length > 0) throw apiError("ConsumerMultipleFiltersNotAllowed");
      if (raw.filter_subject !== filterFromSubject) throw apiError("ConsumerCreateFilterSubjectMismatch");
    }
    // Alone, replicas are refused outright; in a cluster, past the stream's (normalizeConsumerConfig: 10126).
    if (!this.clustered && typeof raw.num_replicas === "number" && raw.num_replicas > 1) throw apiError("StreamReplicasNotSupported");
    const stream = this.stream(streamName);
    const action = typeof body.action === "string" ? body.action : "";
    const config = normalizeConsumerConfig(raw, stream.config, this.js.limits.maxAckPending);
    const isDurable = config.durable_name !== undefined;
    if (!isDurable && config.inactive_threshold === undefined) config.inactive_threshold = DEFAULT_EPHEMERAL_INACTIVE_NS;
    if (consumerName === "") consumerName = config.durable_name ?? config.name ?? Consumer.ephemeralName().slice(0, 8);
    if (!isValidName(consumerName)) throw apiError("ConsumerBadDurableName");
    if (config.name === undefined && isDurable) config.name = consumerName;
    const ordered = orderConsumerConfig(config);
    const existing = stream.consumers.get(consumerName);
    if (existing !== undefined) {
      if (sameConfig(existing.config, ordered)) {
        if (action === "update" || action === "create" || action === "") return existing.info() as unknown as Body;
      }
      if (action === "create") throw apiError("ConsumerAlreadyExists");
      if (stream.config.retention === "workqueue") checkWorkQueueUpdate(stream, consumerName, ordered);
      const oldDeliver = existing.config.deliver_subject;
      checkConsumerUpdate(existing.config, ordered, () => oldDeliver !== undefined && hasInterest(this.js.account, oldDeliver));
      this.checkDeliveryLoop(stream, consumerName, ordered);
      this.js.updateConsumer(existing, ordered);
      return existing.info() as unknown as Body;
    }
    if (action === "update") throw apiError("ConsumerDoesNotExist");
    const maxConsumers = this.js.maxConsumers(stream);
    if (maxConsumers > 0 && stream.consumers.size >= maxConsumers) throw apiError("MaximumConsumersLimit");
    if (stream.config.retention === "workqueue") checkWorkQueue(stream, ordered);
    this.checkDeliveryLoop(stream, consumerName, ordered);
    const consumer = this.js.createConsumer(stream, consumerName, ordered);
    return withAdvisories(consumer.info() as unknown as Body, [consumerAction(streamName, consumerName, "create", this.js.options.domain)]);
  }

  private checkDeliveryLoop(stream: Stream, name: string, config: ConsumerConfig): void {
    const deliver = config.deliver_subject;
    if (deliver !== undefined && this.deliveryLoop(stream.name, (s) => s.config.subjects, { name, deliver })) throw apiError("ConsumerDeliverCycle");
  }

  /**
   * Would a message loop forever through `start`? A push consumer of stream X whose deliver subject stream Y
   * captures makes Y store and deliver again what X delivers (X → Y). A cycle stores and delivers one message
   * forever, in microtasks, and the server stops answering anyone. A change to `start` (its subjects, as
   * `subjectsOf` gives them, or its consumer `consumer`, added or replaced) can only close a cycle through it.
   */
  private deliveryLoop(start: string, subjectsOf: (s: Stream) => readonly string[], consumer: { name: string; deliver: string } | null): boolean {
    const captures = new Sublist<SublistEntry & { stream: string }>({ cacheMax: 0 });
    for (const s of this.js.streams.values()) for (const subject of subjectsOf(s)) captures.insert({ subject, queue: null, stream: s.name });
    const seen = new Set<string>();
    const pending = [start];
    while (pending.length > 0) {
      const x = this.js.streams.get(pending.pop()!);
      if (x === undefined) continue;
      const delivers = [...x.consumers.values()].filter((c) => !(x.name === start && c.name === consumer?.name)).map((c) => c.config.deliver_subject);
      if (x.name === start && consumer !== null) delivers.push(consumer.deliver);
      for (const deliver of delivers) {
        if (deliver === undefined) continue;
        for (const y of captures.match(deliver).plain) {
          if (y.stream === start) return true;
          if (!seen.has(y.stream)) {
            seen.add(y.stream);
            pending.push(y.stream);
          }
        }
      }
    }
    return false;
  }

  private consumerInfo(streamName: string, name: string): Body {
    const c = this.stream(streamName).consumers.get(name);
    if (c === undefined) throw apiError("ConsumerNotFound");
    return c.info() as unknown as Body;
  }

  /**
   * CONSUMER.PAUSE.<stream>.<consumer> `{"pause_until": <RFC 3339>}` (nats-server 2.11): the consumer's
   * pause_until changes (an empty body or Go's zero time clears it; a past time resumes, the clients' resume
   * sends 1970-01-01), as a config update would, with the pause advisory.
   */
  private consumerPause(streamName: string, name: string, m: InternalMessage): Body {
    const body = this.json(m);
    let until = ZERO_TIME;
    if (body.pause_until !== undefined && body.pause_until !== null) {
      if (typeof body.pause_until !== "string" || Number.isNaN(parseRfc3339(body.pause_until))) throw apiError("InvalidJSON");
      until = body.pause_until === ZERO_TIME ? ZERO_TIME : timeText(parseRfc3339(body.pause_until));
    }
    const c = this.stream(streamName).consumers.get(name);
    if (c === undefined) throw apiError("ConsumerNotFound");
    const { pause_until: _, ...rest } = c.config;
    const config = orderConsumerConfig(until === ZERO_TIME ? rest : { ...rest, pause_until: until });
    if (config.pause_until !== c.config.pause_until) this.js.updateConsumer(c, config);
    const now = nowMs();
    const at = until === ZERO_TIME ? 0 : parseRfc3339(until);
    return at > now ? { paused: true, pause_until: until, pause_remaining: Math.round((at - now) * 1e6) } : { paused: false, pause_until: until };
  }

  /** CONSUMER.UNPIN.<stream>.<consumer> `{"group": G}` (nats-server 2.11): the pinned client loses its pin. */
  private consumerUnpin(streamName: string, name: string, m: InternalMessage): Body {
    const body = this.json(m, false);
    const group = typeof body.group === "string" ? body.group : "";
    if (group === "") throw apiError("InvalidJSONWithReason", { err: "consumer group not specified" });
    if (!VALID_GROUP_NAME.test(group)) throw apiError("ConsumerInvalidGroupName");
    const c = this.stream(streamName).consumers.get(name);
    if (c === undefined) throw apiError("ConsumerNotFound");
    if (!(c.config.priority_groups ?? []).includes(group)) throw apiError("ConsumerInvalidPriorityGroup");
    c.unpin(group, "admin");
    return {};
  }

  private consumerDelete(streamName: string, name: string): Body {
    const c = this.stream(streamName).consumers.get(name);
    if (c === undefined) throw apiError("ConsumerNotFound");
    this.js.deleteConsumer(c);
    return withAdvisories({ success: true }, [consumerAction(streamName, name, "delete", this.js.options.domain)]);
  }

  private consumerNames(streamName: string, m: InternalMessage): Body {
    const body = this.json(m);
    const names = [...this.stream(streamName).consumers.keys()].sort();
    const offset = this.offset(body);
    return { total: names.length, offset, limit: NAMES_LIMIT, consumers: names.slice(offset, offset + NAMES_LIMIT) };
  }

  private consumerList(streamName: string, m: InternalMessage): Body {
    const body = this.json(m);
    const stream = this.stream(streamName);
    const all = [...stream.consumers.values()].sort((x, y) => (x.name < y.name ? -1 : 1));
    const offset = this.offset(body);
    return { total: all.length, offset, limit: LIST_LIMIT, consumers: all.slice(offset, offset + LIST_LIMIT).map((c) => c.info()) };
  }
}

/**
 * New consumer_limits must hold for the consumers the stream has (nats-server's check, as it writes it: when
 * either limit changes, a consumer above either new value, an unset one counting as 0, is in the way).
 */
function checkConsumerLimitsUpdate(stream: Stream, next: StreamConfig): void {
  const old = stream.config.consumer_limits;
  const lim = next.consumer_limits;
  if ((old.inactive_threshold ?? 0) === (lim.inactive_threshold ?? 0) && (old.max_ack_pending ?? 0) === (lim.max_ack_pending ?? 0)) return;
  const violating = [...stream.consumers.values()]
    .filter((c) => (c.config.inactive_threshold ?? 0) > (lim.inactive_threshold ?? 0) || (c.config.max_ack_pending ?? 0) > (lim.max_ack_pending ?? 0))
    .map((c) => c.name)
    .sort();
  if (violating.length > 0) throw apiError("StreamUpdate", { err: `change to limits violates consumers: ${violating.join(", ")}` });
}

/** Paged responses carry total/offset/limit even when they fail (as nats-server's do). */
/**
 * 10065 when any of `subjects` overlaps any of `others` (the other streams' subjects). Comparing every pair
 * stalled the server (see MAX_OVERLAP_PAIRS): a literal subject overlaps another literal only when equal (a
 * set lookup) and a wildcard subject when that matches it (a trie walk); only wildcard pairs are compared one
 * by one.
 */
export function checkSubjectOverlap(subjects: string[], others: string[]): void {
  if (others.length === 0) return;
  const isLiteral = (x: string) => subjectIsLiteral(x);
  const mineWild = subjects.filter((x) => !isLiteral(x));
  const theirWild = others.filter((x) => !isLiteral(x));
  const theirLiterals = new Set(others.filter(isLiteral));
  const trie = (list: string[]) => {
    const t = new Sublist<SublistEntry>({ cacheMax: 0 });
    for (const subject of list) t.insert({ subject, queue: null });
    return t;
  };
  const overlap = () => {
    throw apiError("StreamSubjectOverlap");
  };
  const theirTrie = trie(theirWild);
  for (const a of subjects) if (isLiteral(a) && (theirLiterals.has(a) || theirTrie.match(a).plain.length > 0)) overlap();
  if (mineWild.length === 0) return;
  const myTrie = trie(mineWild);
  for (const b of theirLiterals) if (myTrie.match(b).plain.length > 0) overlap();
  for (const a of mineWild) for (const b of theirWild) if (subjectsCollide(a, b)) overlap();
}

function errorExtras(type: string): Body {
  switch (type) {
    case "stream_info_response": return { total: 0, offset: 0, limit: 0 };
    case "stream_names_response": return { total: 0, offset: 0, limit: 0, streams: null };
    case "consumer_names_response": return { total: 0, offset: 0, limit: 0, consumers: [] };
    case "stream_list_response": return { total: 0, offset: 0, limit: 0, streams: [] };
    case "consumer_list_response": return { total: 0, offset: 0, limit: 0, consumers: [] };
    case "consumer_pause_response": return { paused: false, pause_until: ZERO_TIME };
  }
  return {};
}

function sameConfig(a: ConsumerConfig, b: ConsumerConfig): boolean {
  const norm = (c: ConsumerConfig) => JSON.stringify(Object.entries(c).filter(([, v]) => v !== undefined).sort(([x], [y]) => (x < y ? -1 : 1)));
  return norm(a) === norm(b);
}

/**
 * What an existing consumer may not change (nats-server 2.10's checkNewConsumerConfig), in its order and
 * words. Everything else may change: description, ack_wait, max_deliver, backoff, filter subjects,
 * rate_limit_bps, sample_freq, max_ack_pending, headers_only, max_batch, max_expires, max_bytes,
 * deliver_subject (while nobody listens on the old one), deliver_group, inactive_threshold, mem_storage
 * and metadata.
 */
function checkConsumerUpdate(old: ConsumerConfig, next: ConsumerConfig, oldDeliverInUse: () => boolean): void {
  const fail = (err: string) => {
    throw apiError("ConsumerCreate", { err });
  };
  if (old.deliver_policy !== next.deliver_policy) fail("deliver policy can not be updated");
  if ((old.opt_start_seq ?? 0) !== (next.opt_start_seq ?? 0)) fail("start sequence can not be updated");
  if (!sameStartTime(old.opt_start_time, next.opt_start_time)) fail("start time can not be updated");
  if (old.ack_policy !== next.ack_policy) fail("ack policy can not be updated");
  if (old.replay_policy !== next.replay_policy) fail("replay policy can not be updated");
  if ((old.idle_heartbeat ?? 0) !== (next.idle_heartbeat ?? 0)) fail("heart beats can not be updated");
  if ((old.flow_control ?? false) !== (next.flow_control ?? false)) fail("flow control can not be updated");
  if ((old.max_waiting ?? 0) !== (next.max_waiting ?? 0)) fail("max waiting can not be updated");
  if (old.deliver_subject !== next.deliver_subject) {
    if (old.deliver_subject === undefined) fail("can not update pull consumer to push based");
    if (next.deliver_subject === undefined) fail("can not update push consumer to pull based");
    // A push consumer someone listens to is in use: another create with its name is a second user.
    if (oldDeliverInUse()) throw apiError("ConsumerNameExist");
  }
}

/** Start times compare as instants (nats-server compares time.Time values), not as strings. */
function sameStartTime(a: string | undefined, b: string | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a === b || parseRfc3339(a) === parseRfc3339(b);
}

/** An update of a workqueue stream's consumer: its filters must still be its own (nats-server's partitionUnique). */
function checkWorkQueueUpdate(stream: Stream, name: string, config: ConsumerConfig): void {
  const mine = config.filter_subjects ?? (config.filter_subject ? [config.filter_subject] : []);
  if (mine.length === 0) return; // nats-server checks the filters it is given; none, nothing to check
  for (const other of stream.consumers.values()) {
    if (other.name === name) continue;
    const theirs = other.filters;
    if (theirs === null) throw apiError("ConsumerWQConsumerNotUnique");
    for (const a of mine) for (const b of theirs) if (subjectsCollide(a, b)) throw apiError("ConsumerWQConsumerNotUnique");
  }
}

/** Workqueue streams: one consumer per subject (nats-server's checks). */
function checkWorkQueue(stream: Stream, config: ConsumerConfig): void {
  if (config.deliver_policy !== "all") throw apiError("ConsumerWQConsumerNotDeliverAll");
  const mine = config.filter_subjects ?? (config.filter_subject ? [config.filter_subject] : []);
  for (const other of stream.consumers.values()) {
    const theirs = other.filters;
    if (mine.length === 0 || theirs === null) {
      throw apiError(mine.length === 0 && theirs === null ? "ConsumerWQMultipleUnfiltered" : "ConsumerWQConsumerNotUnique");
    }
    for (const a of mine) for (const b of theirs) if (subjectsCollide(a, b)) throw apiError("ConsumerWQConsumerNotUnique");
  }
}

/** nats-server's create answer is the one stream info without the domain (update, info and list have it). */
function withoutDomain(info: StreamInfoJson): Omit<StreamInfoJson, "domain"> {
  const { domain: _domain, ...rest } = info;
  return rest;
}

/** A request body that must be a JSON object: anything else (bad JSON, an array, null) is 10025 invalid JSON. */
export function jsonObject(text: string): Body {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw apiError("InvalidJSON");
  }
  if (v === null || typeof v !== "object" || Array.isArray(v)) throw apiError("InvalidJSON");
  return v as Body;
}

/**
 * A purge's `seq` or `keep` (a uint64 in nats-server; not a number: as if not given). natter's sequences are
 * JavaScript numbers, exact up to 2^53 − 1: past that, seq + 1 is seq again. A purge up to 2^63 once set the
 * stream's last sequence there: every later message then got the same sequence, and the next purge of all
 * counted up to it forever, holding the event loop while its memory grew (the fuzzer, seed d9defa3526b1bf75).
 * So negative, fractional and larger numbers are refused, as nats-server refuses JSON it cannot decode.
 */
function sequenceArgument(value: unknown): number | undefined {
  if (typeof value !== "number") return undefined;
  if (!Number.isSafeInteger(value) || value < 0) throw apiError("InvalidJSON");
  return value;
}
