// One account's JetStream (nats-server's jsAccount): an internal client of that account subscribed to
// the JetStream API in the account's subject space, its streams and consumers, their files, and the
// account's limits (max_memory / max_file / max_streams / max_consumers). Accounts never see each other's
// streams: capture subscriptions, deliveries, acks and advisories all live in the account's sublist.
//
// Layout on disk (as nats-server's):
//   <store_dir>/jetstream/<account>/streams/<stream>/meta.json          {config, created}
//   <store_dir>/jetstream/<account>/streams/<stream>/msgs/<n>.seg       the file store's segments
//   <store_dir>/jetstream/<account>/streams/<stream>/msgs/<n>.idx       their saved indexes, hwm
//   <store_dir>/jetstream/<account>/streams/<stream>/obs/<consumer>/meta.json, state.json
// Memory streams keep nothing on disk and do not survive a restart (as in nats-server).
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { Account } from "../accounts/account.ts";
import type { AccountJetStreamOptions } from "../accounts/options.ts";
import { InternalClient, type InternalMessage } from "../internal-client.ts";
import type { Server } from "../server.ts";
import type { Subscription } from "../subscription.ts";
import { JetStreamApi } from "./api.ts";
import { normalizeConsumerConfig, normalizeStreamConfig, type ConsumerConfig, type StreamConfig } from "./config.ts";
import { Consumer, type ConsumerState } from "./consumer.ts";
import { apiError, type ApiError } from "./errors.ts";
import type { JetStream, JetStreamOptions } from "./jetstream.ts";
import { nuid } from "./nuid.ts";
import { FileStore, type FileStoreOptions } from "./store/file.ts";
import { MemoryStore } from "./store/memory.ts";
import { nowMs } from "./store/indexed.ts";
import type { MessageStore, StoredMessage } from "./store/store.ts";
import { Stream, storeLimits } from "./stream.ts";
import { consumerAction } from "./action-advisories.ts";
import { parseRfc3339, rfc3339 } from "./wire.ts";

/** Durable consumer state is written at most this often while it changes. */
/** PubAcks and other answers to bytes (cheaper than a Buffer made from each string). */
const utf8 = new TextEncoder();
const STATE_WRITE_MS = 250;

export class AccountJetStream {
  readonly client: InternalClient;
  /** A second internal client for advisories and dead letters: its publishes reach the streams' subscriptions. */
  readonly events: InternalClient;
  readonly streams = new Map<string, Stream>();
  readonly api: JetStreamApi;
  /** `<store_dir>/jetstream/<account>/streams`. */
  readonly dir: string;
  /** The account's JetStream limits (-1 = unlimited; max_streams / max_consumers 0 = unlimited too, as nats-server). */
  readonly limits: AccountJetStreamOptions;
  private readonly pullSubs = new Map<Consumer, Subscription>();
  /**
   * Each consumer running here takes its own acks (`$JS.ACK.<stream>.<consumer>.>`, as nats-server's
   * consumer subscribes its ack subject): in a cluster an ack then crosses the routes to the node running
   * the consumer only, not to every JetStream node (an account-wide `$JS.ACK.>` made each node of a
   * 3-node cluster parse and drop two of every three acks it was sent).
   */
  private readonly ackSubs = new Map<Consumer, Subscription>();
  private dirtyStreams = new Set<Stream>();
  /** PubAcks waiting for the flush: reply subject, answer, and the stream whose write it acknowledges. */
  private replies: [string, string, Stream | null][] = [];
  /** Why durable consumer state could not be written (logged once), or null. */
  stateWriteFailure: string | null = null;
  private flushScheduled = false;
  private lastStateWrite = 0;
  apiTotal = 0;
  apiErrors = 0;
  /** Streams found on disk, not yet restored (start() → recover()). */
  private toRecover: { name: string; config: StreamConfig; created: number }[] = [];
  /** Direct gets, pull requests and acks, held until every stream is restored. */
  private apiPlaceholders: Subscription[] = [];
  /** Their subjects, taken until each is restored (stream name → subscriptions). */
  private readonly placeholders = new Map<string, Subscription[]>();
  /** Every stream on disk is restored (the API answers from now on). */
  recovered = false;

  constructor(
    /** The server-wide JetStream: options and the server's own storage limits. */
    readonly service: JetStream,
    readonly account: Account,
  ) {
    this.limits = account.jetstream!;
    this.client = new InternalClient(service.server, `jetstream ${account.name}`, account);
    this.events = new InternalClient(service.server, `jetstream-events ${account.name}`, account);
    this.dir = path.join(service.dir, account.name, "streams");
    this.api = new JetStreamApi(this.client, this);
  }

  get server(): Server {
    return this.service.server;
  }

  get options(): JetStreamOptions {
    return this.service.options;
  }

  /**
   * Takes the API's subjects and every stored stream's subjects at once, then restores the streams
   * (recover()). Until that is done, what arrives for them (API requests, messages to capture, acks)
   * waits in arrival order and is handled once every stream is back: a client that connects during a
   * long recovery is served for core pub/sub, and its JetStream requests are answered as if it had come
   * later.
   */
  start(): void {
    mkdirSync(this.dir, { recursive: true });
    this.client.hold();
    this.api.subscribe();
    this.client.subscribe("$JS.FC.>", (m) => this.onFlowControl(m));
    // Direct gets and pull requests are answered by per-stream and per-consumer subscriptions, made as
    // the streams are restored: held here meanwhile (the API's own handler leaves them alone).
    this.apiPlaceholders = ["$JS.API.DIRECT.GET.>", "$JS.API.CONSUMER.MSG.NEXT.>", "$JS.ACK.>"].map((subject) => this.client.subscribe(subject, (m) => this.client.dispatch(m)));
    for (const name of readdirSync(this.dir).sort()) {
      try {
        const meta = this.readStreamMeta(name);
        if (meta === null) continue;
        this.toRecover.push({ name, config: meta.config, created: meta.created });
        // Messages published to it meanwhile: held, then handed to the stream's own subscriptions.
        this.placeholders.set(name, meta.config.subjects.map((subject) => this.client.subscribe(subject, (m) => this.client.dispatch(m))));
      } catch (error) {
        this.server.log.error(`JetStream: account ${this.account.name}: could not restore stream ${name}: ${(error as Error).message}`);
      }
    }
  }

  /** Restores the streams taken by start() (their stores read in slices); returns how many. */
  async recover(): Promise<number> {
    for (const { name, config, created } of this.toRecover) {
      if (this.service.stopped) return this.streams.size;
      try {
        await this.loadStream(name, config, created);
      } catch (error) {
        this.server.log.error(`JetStream: account ${this.account.name}: could not restore stream ${name}: ${(error as Error).message}`);
      }
      // The stream has its own subscriptions now: what its placeholders hold goes to them (dispatch).
      for (const sub of this.placeholders.get(name) ?? []) this.client.retire(sub);
      this.placeholders.delete(name);
    }
    this.toRecover = [];
    // The ack subscriptions only now (the placeholder held the acks so far: it hands each over once). Each
    // consumer takes its own v1 acks (the form this server hands out; attachConsumer from now on); acks of
    // the v2 form (11 or 12 tokens, with domain and account hash: nats-server's) are taken here for all.
    for (const stream of this.streams.values()) for (const consumer of stream.consumers.values()) this.subscribeAcks(consumer);
    for (const v2 of ["$JS.ACK.*.*.*.*.*.*.*.*.*", "$JS.ACK.*.*.*.*.*.*.*.*.*.>"]) this.client.subscribe(v2, (m) => this.onAck(m));
    for (const sub of this.apiPlaceholders) this.client.retire(sub);
    this.apiPlaceholders = [];
    this.recovered = true;
    this.client.release();
    return this.streams.size;
  }

  // ---- streams ----------------------------------------------------------------------------------

  private streamDir(name: string): string {
    return path.join(this.dir, name);
  }

  private openStore(config: StreamConfig): MessageStore {
    const limits = storeLimits(config);
    if (config.storage === "memory") return new MemoryStore(limits);
    return new FileStore(this.fileStoreOptions(config), limits);
  }

  private fileStoreOptions(config: StreamConfig): FileStoreOptions {
    return {
      dir: path.join(this.streamDir(config.name), "msgs"),
      sync: this.options.sync,
      syncIntervalMs: this.options.syncIntervalMs,
      warn: (line) => this.server.log.warn(`JetStream: ${line}`),
      error: (line) => this.server.log.error(`JetStream: ${line}`),
      info: (line) => this.server.log.info(`JetStream: ${line}`),
      compress: config.compression === "s2",
    };
  }

  createStream(config: StreamConfig): Stream {
    const created = nowMs();
    if (config.storage === "file") {
      mkdirSync(this.streamDir(config.name), { recursive: true });
      this.writeJson(path.join(this.streamDir(config.name), "meta.json"), { config, created: rfc3339(created) });
    }
    const stream = new Stream(this, config, created, this.openStore(config));
    this.streams.set(config.name, stream);
    return stream;
  }

  updateStream(stream: Stream, config: StreamConfig): void {
    stream.update(config);
    if (config.storage === "file") this.writeJson(path.join(this.streamDir(config.name), "meta.json"), { config, created: rfc3339(stream.created) });
  }

  /** Stops serving a stream and keeps its files (this server was removed from its JetStream cluster, as nats-server disables it). */
  closeStream(stream: Stream): void {
    for (const c of [...stream.consumers.values()]) this.detachConsumer(c);
    stream.close();
    this.streams.delete(stream.name);
    this.dirtyStreams.delete(stream);
  }

  deleteStream(stream: Stream): void {
    stream.deleted = true;
    for (const c of [...stream.consumers.values()]) this.deleteConsumer(c);
    stream.close();
    stream.store.destroy();
    this.streams.delete(stream.name);
    this.dirtyStreams.delete(stream);
    rmSync(this.streamDir(stream.name), { recursive: true, force: true });
  }

  private readStreamMeta(name: string): { config: StreamConfig; created: number } | null {
    const metaFile = path.join(this.streamDir(name), "meta.json");
    if (!existsSync(metaFile)) return null;
    const meta = JSON.parse(readFileSync(metaFile, "utf8"));
    // replicas were checked when it was created
    return { config: normalizeStreamConfig(meta.config, true), created: parseRfc3339(meta.created) };
  }

  private async loadStream(name: string, config: StreamConfig, created: number): Promise<void> {
    const began = performance.now();
    const store = config.storage === "memory" ? this.openStore(config) : await FileStore.open(this.fileStoreOptions(config), storeLimits(config));
    if (store instanceof FileStore) {
      // As nats-server's line, with how the segments were read (from their saved index, or record by record).
      const { savedIndex, tails, records } = store.loadedFrom;
      const ms = Math.round(performance.now() - began);
      const read = `${savedIndex - tails} from their saved index, ${tails} from it and the records after it, ${records} read record by record`;
      this.server.log.info(`  Restored ${store.state().messages.toLocaleString("en-US")} messages for stream '${this.account.name} > ${name}' in ${ms} ms (segments: ${read})`);
    }
    const stream = new Stream(this, config, created, store);
    this.streams.set(name, stream);
    const obs = path.join(this.streamDir(name), "obs");
    if (!existsSync(obs)) return;
    for (const cname of readdirSync(obs)) {
      try {
        const cmeta = JSON.parse(readFileSync(path.join(obs, cname, "meta.json"), "utf8"));
        const stateFile = path.join(obs, cname, "state.json");
        const state = existsSync(stateFile) ? (JSON.parse(readFileSync(stateFile, "utf8")) as ConsumerState) : null;
        const cc = normalizeConsumerConfig(cmeta.config, config);
        this.attachConsumer(new Consumer(stream, cname, cc, parseRfc3339(cmeta.created), state));
      } catch (error) {
        this.server.log.error(`JetStream: could not restore consumer ${name} > ${cname}: ${(error as Error).message}`);
      }
    }
  }

  // ---- consumers --------------------------------------------------------------------------------

  createConsumer(stream: Stream, name: string, config: ConsumerConfig): Consumer {
    const consumer = new Consumer(stream, name, config, nowMs(), null);
    this.attachConsumer(consumer);
    this.persistConsumer(consumer, true);
    stream.replication?.consumersChanged(); // into the group's log now, not at its next tick
    consumer.kick();
    return consumer;
  }

  /**
   * A consumer whose configuration and state come from elsewhere: a replicated stream's new leader takes
   * over the consumers its group replicated (src/jetstream/cluster/stream-replica.ts).
   */
  restoreConsumer(stream: Stream, name: string, config: ConsumerConfig, created: number, state: ConsumerState): Consumer {
    const consumer = new Consumer(stream, name, config, created, state);
    this.attachConsumer(consumer);
    this.persistConsumer(consumer, true);
    consumer.kick();
    return consumer;
  }

  /** Stops a consumer here but keeps its files (a replicated stream's leadership moved to another node). */
  detachConsumer(consumer: Consumer): void {
    consumer.stop();
    consumer.stream.consumers.delete(consumer.name);
    this.unsubscribeConsumer(consumer);
  }

  /** Writes a durable's config and state files as persistConsumer does, for a replica that does not run it. */
  writeConsumerFiles(stream: Stream, name: string, config: ConsumerConfig, created: number, state: ConsumerState): void {
    if (config.durable_name === undefined || stream.config.storage !== "file" || config.mem_storage) return;
    const dir = path.join(this.streamDir(stream.name), "obs", name);
    mkdirSync(dir, { recursive: true });
    this.writeJson(path.join(dir, "meta.json"), { config, created: rfc3339(created) });
    this.writeJson(path.join(dir, "state.json"), state);
  }

  /** Removes a durable's files (a replica that does not run it, after its delete). */
  removeConsumerFiles(stream: Stream, name: string): void {
    rmSync(path.join(this.streamDir(stream.name), "obs", name), { recursive: true, force: true });
  }

  private attachConsumer(consumer: Consumer): void {
    consumer.stream.consumers.set(consumer.name, consumer);
    if (this.recovered) this.subscribeAcks(consumer);
    if (!consumer.isPush) {
      const subject = `$JS.API.CONSUMER.MSG.NEXT.${consumer.stream.name}.${consumer.name}`;
      this.pullSubs.set(consumer, this.client.subscribe(subject, (m) => {
        this.apiTotal++;
        if (m.reply !== null) consumer.onNextRequest(m.reply, m.payload);
      }));
    }
  }

  private subscribeAcks(consumer: Consumer): void {
    if (!this.ackSubs.has(consumer)) this.ackSubs.set(consumer, this.client.subscribe(`$JS.ACK.${consumer.stream.name}.${consumer.name}.>`, (m) => this.onAck(m)));
  }

  /** The consumer's pull request and ack subscriptions go (it stopped here). */
  private unsubscribeConsumer(consumer: Consumer): void {
    for (const subs of [this.pullSubs, this.ackSubs]) {
      const sub = subs.get(consumer);
      if (sub) this.client.unsubscribe(sub);
      subs.delete(consumer);
    }
  }

  updateConsumer(consumer: Consumer, config: ConsumerConfig): void {
    const wasOnDisk = !consumer.config.mem_storage;
    consumer.update(config);
    consumer.stream.replication?.consumersChanged();
    // Now kept in memory: its files go, so it does not come back after a restart (a memory consumer does not).
    if (wasOnDisk && config.mem_storage) rmSync(path.join(this.streamDir(consumer.stream.name), "obs", consumer.name), { recursive: true, force: true });
    this.persistConsumer(consumer, true);
  }

  deleteConsumer(consumer: Consumer): void {
    consumer.stop();
    consumer.stream.consumers.delete(consumer.name);
    this.unsubscribeConsumer(consumer);
    rmSync(path.join(this.streamDir(consumer.stream.name), "obs", consumer.name), { recursive: true, force: true });
    consumer.stream.replication?.consumersChanged();
    consumer.stream.consumerDeleted(consumer);
  }

  /** Durable consumers of file streams keep their config and state on disk. */
  private persistConsumer(consumer: Consumer, withMeta: boolean): void {
    if (!consumer.isDurable || consumer.stream.config.storage !== "file" || consumer.config.mem_storage) return;
    const dir = path.join(this.streamDir(consumer.stream.name), "obs", consumer.name);
    if (withMeta) {
      mkdirSync(dir, { recursive: true });
      this.writeJson(path.join(dir, "meta.json"), { config: consumer.config, created: rfc3339(consumer.created) });
    }
    if (existsSync(dir)) this.writeJson(path.join(dir, "state.json"), consumer.state());
    consumer.dirty = false;
  }

  private writeJson(file: string, value: unknown): void {
    const tmp = `${file}.tmp`;
    writeFileSync(tmp, JSON.stringify(value));
    renameSync(tmp, file);
  }

  // ---- publish path: acks after the flush --------------------------------------------------------

  markDirty(stream: Stream): void {
    this.dirtyStreams.add(stream);
    this.scheduleFlush();
  }

  /**
   * Sends a reply once the stores have been flushed (PubAcks: acknowledged means written). `stored` is the
   * stream whose write the reply acknowledges: if that store could not write, the answer is 10023 instead.
   */
  replyAfterFlush(reply: string, json: string, stored: Stream | null = null): void {
    this.replies.push([reply, json, stored]);
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    queueMicrotask(() => this.flush());
  }

  private flush(): void {
    this.flushScheduled = false;
    for (const s of this.dirtyStreams) if (!s.deleted) s.store.flush();
    this.dirtyStreams.clear();
    const replies = this.replies;
    this.replies = [];
    for (const [reply, json, stored] of replies) {
      // What is not on disk is not acknowledged: nats-server's answer when it has no room.
      const answer = stored !== null && stored.store.writeFailure !== null
        ? JSON.stringify({ error: apiError("InsufficientResources").json, stream: stored.name, seq: 0 })
        : json;
      this.client.publish(reply, utf8.encode(answer));
    }
  }

  /**
   * May a message of `size` bytes be stored? The server's limits first (max_memory_store / max_file_store:
   * 10023 insufficient resources), then the account's (max_mem / max_file: 10002 resource limits exceeded for
   * account), as nats-server's processJetStreamMsg checks them.
   */
  checkResources(storage: "file" | "memory", size: number): ApiError | null {
    const server = this.service.checkResources(storage, size);
    if (server !== null) return server;
    const limit = storage === "memory" ? this.limits.maxMemory : this.limits.maxFile;
    if (limit >= 0 && this.usage(storage) + size > limit) return apiError("AccountResourcesExceeded");
    return null;
  }

  /**
   * A stream create or update against the account's limits (nats-server's jsNonClusteredStreamLimitsCheck):
   * max_streams on create (10027), a stream max_consumers above the account's (10026), and the bytes the
   * stream reserves (its max_bytes, at least 1) with those the other streams of its storage reserve against
   * the account's max_mem / max_file (10028 / 10047).
   */
  checkStreamLimits(config: StreamConfig, creating: boolean): void {
    checkAccountStreamLimits(this.limits, config, creating, [...this.streams.values()].map((s) => s.config), 1);
  }

  /**
   * The same against the account's streams in the whole cluster (nats-server's jsClusteredStreamLimitsCheck,
   * at the meta leader): the new stream's reservation counts once per replica, and so do the others'.
   */
  checkClusterStreamLimits(config: StreamConfig, creating: boolean, accountStreams: StreamConfig[]): void {
    checkAccountStreamLimits(this.limits, config, creating, accountStreams, Math.max(1, config.num_replicas));
  }

  /** How many consumers a stream may have: its own max_consumers, or the account's when that is smaller or the stream has none. */
  maxConsumers(stream: Stream): number {
    let max = stream.config.max_consumers;
    const own = this.limits.maxConsumers;
    if (max <= 0 || (own > 0 && own < max)) max = own;
    return max;
  }

  usage(storage: "file" | "memory"): number {
    let n = 0;
    for (const s of this.streams.values()) if (s.config.storage === storage) n += s.store.state().bytes;
    return n;
  }

  get consumerCount(): number {
    let n = 0;
    for (const s of this.streams.values()) n += s.consumers.size;
    return n;
  }

  // ---- acks and flow control ----------------------------------------------------------------------

  private consumerFor(tokens: string[], at: number): Consumer | undefined {
    return this.streams.get(tokens[at]!)?.consumers.get(tokens[at + 1]!);
  }

  private onAck(m: InternalMessage): void {
    // v1: $JS.ACK.<stream>.<consumer>.<dc>.<sseq>.<dseq>.<ts>.<pending> (9 tokens)
    // v2: $JS.ACK.<domain>.<account hash>.<stream>.<consumer>.<dc>.<sseq>.<dseq>.<ts>.<pending>.<random> (12)
    // The four tokens used are cut out where the dots are (a split made a dozen strings per ack).
    const subject = m.subject;
    const dots = ackDots(subject);
    const at = dots + 1 >= 11 ? 4 : 2;
    if (dots < at + 4) return; // no delivery sequence token: not an ack
    const consumer = this.streams.get(ackToken(subject, dots, at))?.consumers.get(ackToken(subject, dots, at + 1));
    if (consumer === undefined) return;
    const sseq = Number(ackToken(subject, dots, at + 3));
    const dseq = Number(ackToken(subject, dots, at + 4));
    if (!Number.isFinite(sseq) || !Number.isFinite(dseq)) return;
    consumer.onAck(sseq, dseq, m.payload, m.reply);
  }

  private onFlowControl(m: InternalMessage): void {
    const t = m.subject.split(".");
    this.consumerFor(t, 2)?.onFlowControlReply(m.subject);
  }

  // ---- dead letters and advisories -----------------------------------------------------------------

  /**
   * A message that exhausted max_deliver or was terminated: the advisory nats-server sends, and (natter)
   * a copy to the consumer's dead_letter_subject with headers naming where it came from.
   */
  deadLetter(consumer: Consumer, msg: StoredMessage, deliveries: number, reason: "max_deliveries" | "terminated", termReason: string, dseq: number): void {
    const stream = consumer.stream.name;
    const now = rfc3339(nowMs());
    if (reason === "max_deliveries") {
      this.advisory(`$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${stream}.${consumer.name}`, {
        type: "io.nats.jetstream.advisory.v1.max_deliver", id: nuid(), timestamp: now, stream, consumer: consumer.name,
        stream_seq: msg.seq, deliveries,
      });
    } else {
      this.advisory(`$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.${stream}.${consumer.name}`, {
        type: "io.nats.jetstream.advisory.v1.terminated", id: nuid(), timestamp: now, stream, consumer: consumer.name,
        consumer_seq: dseq, stream_seq: msg.seq, deliveries, ...(termReason ? { reason: termReason } : {}),
      });
    }
    const dl = consumer.config.dead_letter_subject;
    if (!dl) return;
    let block = msg.headers === null ? "NATS/1.0\r\n" : msg.headers.toString("latin1").replace(/\r\n\r\n$/, "\r\n");
    block += `Nats-Dead-Letter-Stream: ${stream}\r\nNats-Dead-Letter-Consumer: ${consumer.name}\r\n`;
    block += `Nats-Dead-Letter-Subject: ${msg.subject}\r\nNats-Dead-Letter-Sequence: ${msg.seq}\r\n`;
    block += `Nats-Dead-Letter-Deliveries: ${deliveries}\r\nNats-Dead-Letter-Reason: ${reason}\r\n`;
    if (termReason) block += `Nats-Dead-Letter-Term-Reason: ${termReason.replace(/[\r\n]/g, " ")}\r\n`;
    this.events.publish(dl, msg.data, null, Buffer.from(`${block}\r\n`, "latin1"));
  }

  advisory(subject: string, body: object): void {
    this.events.publish(subject, Buffer.from(JSON.stringify(body)));
  }

  // ---- timers --------------------------------------------------------------------------------------

  /** Timers (ack wait, heartbeats, request expiry, push interest, inactivity): called by the server-wide JetStream. */
  sweep(now: number): void {
    for (const stream of this.streams.values()) {
      stream.feeds?.tick(Date.now()); // mirror and sources: retries, stalls (./source.ts)
      for (const consumer of [...stream.consumers.values()]) {
        if (!consumer.tick(now)) {
          this.server.log.debug(`JetStream: account ${this.account.name}: consumer ${stream.name} > ${consumer.name} inactive, deleted`);
          this.deleteConsumer(consumer);
          const [subject, advisory] = consumerAction(stream.name, consumer.name, "delete", this.options.domain);
          this.advisory(subject, advisory);
        }
      }
    }
    if (now - this.lastStateWrite >= STATE_WRITE_MS) {
      this.lastStateWrite = now;
      this.writeStates();
    }
  }

  /** Writes the state of each changed durable; a write that fails (a full disk) is logged once and retried next time. */
  private writeStates(): void {
    let failure: string | null = null;
    let written = 0;
    for (const stream of this.streams.values()) {
      for (const consumer of stream.consumers.values()) {
        if (!consumer.dirty) continue;
        try {
          this.persistConsumer(consumer, false);
          written++;
        } catch (error) {
          failure ??= `${stream.name} > ${consumer.name}: ${(error as Error).message}`;
        }
      }
    }
    if (failure !== null) {
      if (this.stateWriteFailure === null) {
        this.server.log.error(`JetStream: account ${this.account.name}: cannot write consumer state (${failure}); retried every ${STATE_WRITE_MS} ms`);
      }
      this.stateWriteFailure = failure;
    } else if (written > 0 && this.stateWriteFailure !== null) {
      this.server.log.info(`JetStream: account ${this.account.name}: consumer state writes resumed`);
      this.stateWriteFailure = null;
    }
  }

  /** Flushes stores and consumer states and stops answering (graceful shutdown). */
  shutdown(): void {
    this.flush();
    this.writeStates();
    for (const stream of this.streams.values()) stream.close();
    this.client.close();
    this.events.close();
  }
}

/**
 * The account's rules for max_bytes (max_bytes_required: 10113; *_max_stream_bytes: 10122, as nats-server's
 * checkStreamCfg), max_streams on create (10027), a stream max_consumers above the account's (10026), and the bytes the stream
 * reserves (its max_bytes, at least 1; times `replicas`) with those the other streams of its storage reserve
 * (times `replicas` too, as nats-server counts them) against the account's max_mem / max_file (10028 / 10047).
 */
function checkAccountStreamLimits(l: AccountJetStreamOptions, config: StreamConfig, creating: boolean, streams: StreamConfig[], replicas: number): void {
  if (l.maxBytesRequired && config.max_bytes <= 0) throw apiError("StreamMaxBytesRequired");
  const maxStreamBytes = config.storage === "memory" ? l.memoryMaxStreamBytes : l.storeMaxStreamBytes;
  if (maxStreamBytes > 0 && config.max_bytes > maxStreamBytes) throw apiError("StreamMaxStreamBytesExceeded");
  const others = streams.filter((s) => s.name !== config.name);
  if (creating && l.maxStreams > 0 && others.length >= l.maxStreams) throw apiError("MaximumStreamsLimit");
  if (config.max_consumers > 0 && l.maxConsumers > 0 && config.max_consumers > l.maxConsumers) throw apiError("MaximumConsumersLimit");
  const limit = config.storage === "memory" ? l.maxMemory : l.maxFile;
  if (limit < 0) return;
  let reserved = 0;
  for (const s of others) if (s.storage === config.storage && s.max_bytes > 0) reserved += s.max_bytes * replicas;
  const add = (config.max_bytes > 0 ? config.max_bytes : 1) * replicas;
  if (reserved > limit || add > limit - reserved) throw apiError(config.storage === "memory" ? "MemoryResourcesExceeded" : "StorageResourcesExceeded");
}

/** Where the dots of the ack subject ackDots last looked at are (one array for every ack: no allocation per ack). */
const ACK_DOTS = new Int32Array(16);

/** Finds an ack subject's dots (up to 16, more than either layout has) into ACK_DOTS; returns how many. */
function ackDots(subject: string): number {
  let n = 0;
  for (let i = subject.indexOf("."); i >= 0 && n < ACK_DOTS.length; i = subject.indexOf(".", i + 1)) ACK_DOTS[n++] = i;
  return n;
}

/** Token `k` (at most `dots`) of the subject ackDots found `dots` dots in. */
function ackToken(subject: string, dots: number, k: number): string {
  const from = k === 0 ? 0 : ACK_DOTS[k - 1]! + 1;
  const to = k < dots ? ACK_DOTS[k]! : subject.length;
  return subject.slice(from, to);
}
