// A stream's mirror or one of its sources at run time, built as nats-server builds them (stream.go
// setupMirrorConsumer / setupSourceConsumer): through the origin's API (`$JS.API`, or the external prefix
// such as `$JS.edge.API` across a leaf link) this server creates an ephemeral push consumer on the origin
// stream, `{deliver_subject: $JS.S.<id>, ack_policy: none, max_deliver: 1, idle_heartbeat: 1s,
// flow_control: true, direct: true}`, starting after the last origin sequence it stored. Deliveries are
// checked in order (the consumer sequence in the ack reply must follow on); a gap, a heartbeat that says
// more was sent, or 3 s without a message or a heartbeat recreate the consumer from that sequence. A
// create request nobody received (the link is down) is sent again after RETRY_MS, so copying resumes
// within about a second of the link's return (nats-server waits ~5 s); one that was received gets
// ANSWER_WAIT_MS for its answer.
//
// Past the origin's retention: a consumer created after an outage starts at the origin's first sequence
// when the origin no longer holds the ones after ours (its answer's delivered.stream_seq is past what we
// asked to start after). nats-server copies on from there without a word (a mirror skips the lost
// sequences: stream.go's skipMsgs); natter does the same and also reports the gap: a warning in the log
// and natter's own advisory on `$JS.EVENT.ADVISORY.STREAM.SOURCE_GAP.<stream>` (io.natter.jetstream.
// advisory.v1.stream_source_gap, the lost origin sequences first_seq..last_seq). Stream info stays as
// nats-server's: its mirror/source `error` means the consumer could not be set up, which is not the case.
// A filtered feed counts the origin sequences its consumer's heartbeats said it had passed as seen, so
// non-matching messages that aged out are not reported (those after the last heartbeat may be).
//
// A mirror stores each message under the origin's sequence (a gap, an origin deletion, stays a deleted
// sequence) and with the origin's time (the ack reply's `<ts>`, as nats-server stores it), and adds
// nothing; a source stores it as a publish would, with `Nats-Stream-Source:
// <origin>[:<hash of the api>] <origin seq> <filter> <dest>` (nats-server 2.10's form), from which the
// position is found again after a restart, and with this server's time.
import { InternalClient, type InternalMessage } from "../internal-client.ts";
import type { Subscription } from "../subscription.ts";
import { SubjectTransform } from "../accounts/subject-transform.ts";
import { subjectIsLiteral, subjectMatches } from "../subjects/subject.ts";
import type { ApiErrorJson } from "./errors.ts";
import { nuid } from "./nuid.ts";
import { msFromNanosString, rfc3339 } from "./wire.ts";
import { indexName, type StreamSourceConfig } from "./source-config.ts";
import type { Stream } from "./stream.ts";
import { buildHeaders, parseHeaders, removeHeaders } from "./wire.ts";

/** Without a message or a heartbeat for this long, the origin consumer is taken for lost and recreated. */
const STALLED_MS = 3000;
/** A create request without an answer (the link is down, the origin is gone) is sent again after this. */
const RETRY_MS = 1000;
/** A create request that reached someone (locally or over a leaf link) gets this long to be answered. */
const ANSWER_WAIT_MS = 5000;
/** After an error answer (stream not found…), the next try. */
const ERROR_RETRY_MS = 2000;
const HEARTBEAT_NS = 1_000_000_000;
/** A mirror with mirror_direct answers its origin's direct gets once fewer than this many are pending (nats-server's dgetCaughtUpThresh). */
const MIRROR_DIRECT_CAUGHT_UP = 10;
const ACK_WAIT_NS = 22 * 3600 * 1_000_000_000;

export const STREAM_SOURCE_HEADER = "Nats-Stream-Source";

/** nats-server's StreamSourceInfo in stream info. */
export interface StreamSourceInfoJson {
  name: string;
  external?: { api: string; deliver: string };
  filter_subject?: string;
  lag: number;
  /** ns since the last message or heartbeat; -1: never. */
  active: number;
  error?: ApiErrorJson;
}

export class StreamFeed {
  /** `<name>[:<hash>] <filter> <dest>`: identifies the source in `Nats-Stream-Source`. */
  readonly iname: string;
  private readonly transforms: { filter: string; transform: SubjectTransform | null }[];
  /** The origin's last sequence stored here. */
  private sseq = 0;
  /** The last origin sequence the consumer has passed: stored here, or skipped by its filter (heartbeats). */
  private seen = 0;
  /** The origin sequence the consumer being created was asked to start after (0: from the configured start). */
  private resumeAfter = 0;
  /** The consumer sequence of the last delivery taken (order check). */
  private dseq = 0;
  private consumer = "";
  private deliverSub: Subscription | null = null;
  private replySub: Subscription | null = null;
  private requestedAt = 0;
  private retryAt = 0;
  private lastActivity = 0;
  private lag = 0;
  private error: ApiErrorJson | null = null;
  private stopped = false;

  constructor(
    private readonly stream: Stream,
    private readonly client: InternalClient,
    readonly config: StreamSourceConfig,
    readonly isMirror: boolean,
  ) {
    this.iname = indexName(config);
    this.transforms = (config.subject_transforms ?? []).map((t) => ({
      filter: t.src || ">",
      transform: t.dest === "" || t.dest === (t.src || ">") ? null : SubjectTransform.compile(t.src || ">", t.dest),
    }));
  }

  private get api(): string {
    return this.config.external?.api || "$JS.API";
  }

  /** Starts from what the stream already holds of this origin. */
  start(): void {
    this.sseq = this.isMirror ? this.stream.store.state().lastSeq : this.stream.lastSourcedSequence(this.iname);
    this.create();
  }

  stop(): void {
    this.stopped = true;
    this.cancel();
    if (this.isMirror) this.stream.mirrorStopped();
  }

  private cancel(): void {
    if (this.deliverSub !== null) this.client.unsubscribe(this.deliverSub);
    if (this.replySub !== null) this.client.unsubscribe(this.replySub);
    this.deliverSub = null;
    this.replySub = null;
    this.consumer = "";
  }

  /** Asks the origin for a new consumer starting after the last stored origin sequence. */
  private create(): void {
    if (this.stopped) return;
    this.cancel();
    this.dseq = 0;
    this.resumeAfter = this.sseq;
    const ext = this.config.external;
    const deliver = ext !== undefined && ext.deliver !== "" ? `${ext.deliver}.S.${nuid(8)}`.replaceAll("..", ".") : `$JS.S.${nuid(8)}`;
    const config: Record<string, unknown> = {
      deliver_subject: deliver, ack_policy: "none", ack_wait: ACK_WAIT_NS, max_deliver: 1, idle_heartbeat: HEARTBEAT_NS,
      flow_control: true, direct: true,
    };
    if (this.sseq > 0) Object.assign(config, { deliver_policy: "by_start_sequence", opt_start_seq: this.sseq + 1 });
    else if (this.config.opt_start_seq) Object.assign(config, { deliver_policy: "by_start_sequence", opt_start_seq: this.config.opt_start_seq });
    else if (this.config.opt_start_time) Object.assign(config, { deliver_policy: "by_start_time", opt_start_time: this.config.opt_start_time });
    else config.deliver_policy = "all";
    const filters = this.config.filter_subject ? [this.config.filter_subject] : this.transforms.map((t) => t.filter).filter((f) => f !== ">");
    let subject = `${this.api}.CONSUMER.CREATE.${this.config.name}`;
    if (filters.length === 1) {
      config.name = `src-${nuid(8)}`;
      config.filter_subject = filters[0];
      // nats-server puts the filter in the subject even with wildcards; natter publishes no wildcard subject.
      if (subjectIsLiteral(filters[0]!)) subject += `.${config.name}.${filters[0]}`;
    } else if (filters.length > 1) config.filter_subjects = filters;
    this.deliverSub = this.client.subscribe(deliver, (m) => this.onMessage(m));
    const inbox = `$JSC.R.${nuid(8)}`;
    this.replySub = this.client.subscribe(inbox, (m) => this.onCreated(m));
    this.requestedAt = Date.now();
    const delivered = this.client.publish(subject, Buffer.from(JSON.stringify({ stream_name: this.config.name, config })), inbox);
    // Nobody took the request (the link is down): ask again soon. Someone did: its answer may take a while
    // under load, and asking again meanwhile would start a second consumer on the origin.
    this.retryAt = this.requestedAt + (delivered ? ANSWER_WAIT_MS : RETRY_MS);
    this.stream.js.server.log.debug(`JetStream: stream ${this.stream.name}: ${this.isMirror ? "mirror" : "source"} consumer requested from ${this.config.name} via ${this.api} after origin sequence ${this.sseq}${delivered ? "" : " (no responders)"}`);
  }

  private onCreated(m: InternalMessage): void {
    if (this.replySub !== null) this.client.unsubscribe(this.replySub);
    this.replySub = null;
    let answer: { error?: ApiErrorJson; name?: string; delivered?: { stream_seq?: number } };
    try {
      answer = JSON.parse(m.payload.toString()) as typeof answer;
    } catch {
      return;
    }
    if (answer.error !== undefined) {
      this.error = answer.error;
      this.retryAt = Date.now() + ERROR_RETRY_MS;
      if (this.deliverSub !== null) this.client.unsubscribe(this.deliverSub);
      this.deliverSub = null;
      return;
    }
    this.error = null;
    this.consumer = answer.name ?? "";
    this.lastActivity = Date.now();
    this.retryAt = 0;
    const startsAfter = answer.delivered?.stream_seq ?? 0;
    const had = Math.max(this.resumeAfter, this.seen);
    if (this.resumeAfter > 0 && startsAfter > had) this.originGap(had + 1, startsAfter);
  }

  /** The origin no longer holds sequences first..last, which this copy never got: reported, then passed. */
  private originGap(first: number, last: number): void {
    const stream = this.stream;
    const what = this.isMirror ? "mirror" : "source";
    stream.js.server.log.warn(`JetStream: stream ${stream.name}: ${what} ${this.config.name} resumes past the origin's retention: origin sequences ${first}..${last} are no longer there and were not copied`);
    stream.js.advisory(`$JS.EVENT.ADVISORY.STREAM.SOURCE_GAP.${stream.name}`, {
      type: "io.natter.jetstream.advisory.v1.stream_source_gap", id: nuid(), timestamp: rfc3339(Date.now()),
      stream: stream.name, mirror: this.isMirror, source: this.config.name,
      ...(this.config.external !== undefined ? { external: this.config.external } : {}),
      first_seq: first, last_seq: last,
    });
    // A mirror skips them at once (nats-server's skipMsgs): its last sequence is the origin's again.
    if (this.isMirror) stream.skipMirrored(last);
    this.seen = last;
  }

  /** The sweep (every 50 ms): retries and stall detection. */
  tick(now: number): void {
    if (this.stopped) return;
    if (this.consumer === "") {
      if (this.retryAt > 0 && now >= this.retryAt) this.create();
      return;
    }
    if (now - this.lastActivity > STALLED_MS) this.create();
  }

  private onMessage(m: InternalMessage): void {
    if (this.stopped) return;
    const h = parseHeaders(m.headers);
    if (h !== null && h.code === 100) {
      if (this.consumer === "") return;
      this.lastActivity = Date.now();
      if (m.reply !== null) {
        this.client.publish(m.reply, Buffer.alloc(0)); // flow control: we keep up
        return;
      }
      const last = Number(h.values.get("Nats-Last-Consumer") ?? "0");
      if (last > 0 && last !== this.dseq) return this.create(); // something was sent that we did not get
      const passed = Number(h.values.get("Nats-Last-Stream") ?? "0");
      if (passed > this.seen) this.seen = passed;
      const stalled = h.values.get("Nats-Consumer-Stalled");
      if (stalled) this.client.publish(stalled, Buffer.alloc(0));
      return;
    }
    const ack = parseAckReply(m.reply);
    if (ack === null || (this.consumer !== "" && ack.consumer !== this.consumer)) return;
    if (ack.delivered > 1) return;
    if (ack.dseq !== this.dseq + 1) {
      if (ack.dseq > this.dseq + 1) this.create(); // a gap: start again after what we have
      return;
    }
    if (ack.sseq <= this.sseq && this.sseq > 0) {
      this.dseq = ack.dseq; // already stored (a recreated consumer overlapping): skip it
      return;
    }
    this.lastActivity = Date.now();
    const subject = this.transformed(m.subject);
    const error = this.isMirror
      ? this.stream.storeMirrored(ack.sseq, subject, m.headers, m.payload, ack.ts)
      : this.stream.storeSourced(subject, this.sourcedHeaders(m.headers, ack.sseq), m.payload);
    if (error !== null) {
      this.stream.js.server.log.warn(`JetStream: stream ${this.stream.name}: could not store message ${ack.sseq} of ${this.isMirror ? "mirror" : "source"} ${this.config.name}: ${error.description}`);
      this.retryAt = Date.now() + ERROR_RETRY_MS;
      this.cancel();
      return;
    }
    this.dseq = ack.dseq;
    this.sseq = ack.sseq;
    if (ack.sseq > this.seen) this.seen = ack.sseq;
    this.lag = ack.pending;
    if (this.isMirror && ack.pending < MIRROR_DIRECT_CAUGHT_UP) this.stream.mirrorCaughtUp();
  }

  private transformed(subject: string): string {
    for (const t of this.transforms) {
      if (subjectMatches(t.filter, subject)) return t.transform === null ? subject : t.transform.transform(subject);
    }
    return subject;
  }

  /** The origin's headers without its own source header and expectations, plus ours (nats-server's order). */
  private sourcedHeaders(headers: Buffer | null, sseq: number): Buffer {
    const [name, filter, dest] = this.iname.split(" ");
    const value = `${name} ${sseq} ${filter} ${dest}`;
    let kept = headers === null ? null : removeHeaders(headers, [STREAM_SOURCE_HEADER]);
    if (kept !== null) {
      const lines = kept.toString("latin1").split("\r\n").filter((l, i) => i === 0 || !l.startsWith("Nats-Expected-"));
      kept = Buffer.from(lines.join("\r\n"), "latin1");
    }
    if (kept === null || parseHeaders(kept)!.values.size === 0) return buildHeaders("", [[STREAM_SOURCE_HEADER, value]]);
    return Buffer.concat([kept.subarray(0, kept.length - 2), Buffer.from(`${STREAM_SOURCE_HEADER}: ${value}\r\n\r\n`, "latin1")]);
  }

  info(now: number): StreamSourceInfoJson {
    return {
      name: this.config.name,
      ...(this.config.external !== undefined ? { external: this.config.external } : {}),
      ...(this.config.filter_subject ? { filter_subject: this.config.filter_subject } : {}),
      lag: this.lag,
      active: this.lastActivity === 0 ? -1 : Math.max(0, Math.round((now - this.lastActivity) * 1e6)),
      ...(this.error !== null ? { error: this.error } : {}),
    };
  }
}

/**
 * `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<ts>.<pending>` (or the 2.10 form with domain and
 * account hash); `ts` is the origin's time of the message in ms, undefined when the token is not a time.
 */
function parseAckReply(reply: string | null): { consumer: string; delivered: number; sseq: number; dseq: number; ts: number | undefined; pending: number } | null {
  if (reply === null || !reply.startsWith("$JS.ACK.")) return null;
  const t = reply.split(".");
  const at = t.length === 9 ? 2 : t.length >= 11 ? 4 : -1;
  if (at < 0) return null;
  const ts = msFromNanosString(t[at + 5]!);
  return {
    consumer: t[at + 1]!, delivered: Number(t[at + 2]), sseq: Number(t[at + 3]), dseq: Number(t[at + 4]),
    ts: ts > 0 ? ts : undefined, pending: Number(t[at + 6]),
  };
}

/** The feeds of one stream: its mirror, or its sources; one internal client for all of them. */
export class StreamFeeds {
  private readonly feeds: StreamFeed[] = [];
  private readonly client: InternalClient;

  constructor(private readonly stream: Stream) {
    this.client = new InternalClient(stream.js.server, `jetstream-sources ${stream.js.account.name} ${stream.name}`, stream.js.account);
  }

  /** Starts a feed for the configuration's mirror or each of its sources (none: nothing to do). */
  start(): void {
    const c = this.stream.config;
    if (c.mirror !== undefined) this.feeds.push(new StreamFeed(this.stream, this.client, c.mirror, true));
    for (const s of c.sources ?? []) this.feeds.push(new StreamFeed(this.stream, this.client, s, false));
    for (const f of this.feeds) f.start();
  }

  get empty(): boolean {
    return this.feeds.length === 0;
  }

  tick(now: number): void {
    for (const f of this.feeds) f.tick(now);
  }

  stop(): void {
    for (const f of this.feeds) f.stop();
    this.feeds.length = 0;
  }

  close(): void {
    this.stop();
    this.client.close();
  }

  mirrorInfo(now: number): StreamSourceInfoJson | undefined {
    return this.feeds.find((f) => f.isMirror)?.info(now);
  }

  sourcesInfo(now: number): StreamSourceInfoJson[] | undefined {
    const list = this.feeds.filter((f) => !f.isMirror).map((f) => f.info(now));
    return list.length > 0 ? list : undefined;
  }
}

/** `Nats-Stream-Source` values: `<name…> <seq>[ <filter> <dest>]`; the origin sequence when it is `iname`'s. */
export function sourcedSequence(value: string, iname: string): number {
  const parts = value.split(" ");
  const [name, filter, dest] = iname.split(" ");
  if (parts[0] !== name) return 0;
  if (parts.length >= 4 && (parts[2] !== filter || parts[3] !== dest)) return 0;
  const seq = Number(parts[1]);
  return Number.isFinite(seq) ? seq : 0;
}
