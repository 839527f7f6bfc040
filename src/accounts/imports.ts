// The runtime of stream and service imports between accounts (nats-server's accounts.go and
// client.go: addStreamImport, addServiceImport, processServiceImport, the `_R_` response imports).
//
// Each import is a bridge: a Subscriber with one subscription in the account messages come from.
// - Stream import (B imports `subject` from A): a bridge in A's Sublist on `subject`; what it gets is
//   published in B on the mapped subject (src/accounts/mapping.ts), reply subject unchanged.
// - Service import (B imports service `subject` from A, B's clients use `to`): a bridge in B's
//   Sublist on `to`; a request is published in A on `subject` with its reply rewritten to
//   `_R_.<account prefix>.<random>` (nats-server's newServiceReply). One response bridge per exporting
//   account, on `_R_.<prefix>.>`, takes the responses back to the requester's reply subject in B.
//
// Invariants (where they are kept):
// - Bridging happens after the publisher's delivery loop (a microtask, in publish order, like
//   InternalClient): delivery.seq and the routes' "same message" frames are never interleaved.
//   Messages of one publisher keep their order through an import.
// - One hop (nats-server's rule: stream imports shadow only real subscriptions, and a message that
//   came through a service import is never re-exported as a stream): a message that came through any
//   import does not go through a stream import again; a stream-imported message does not start a
//   service request; a service request does not go through the same service export twice (cycle).
//   So A->B->A never ping-pongs.
// - Cluster: stream and request bridges are local-only subscriptions and skip messages a route
//   brought: each message is bridged once, on the node it was published on, and the bridged copy goes
//   to routes like any publish (queue groups of the importing account get it exactly once).
//   Response bridges are announced to routes (a responder on another node must reach them); the
//   random account prefix makes the answer come back to this node.
// - Accounts without imports pay nothing: no bridge in their Sublists, no check on the publish path.
// - Stats: a bridged message is not counted again in the server's in_msgs (nats-server counts a
//   message in once, at its publisher); each delivery counts in out_msgs as usual.
// - Memory: response mappings expire after the export's response_threshold (default 2 min) and are
//   capped at MAX_PENDING_RESPONSES per exporting account (the oldest goes first).
import { randomBytes } from "../random.ts";
import { deliverToMatches } from "../router.ts";
import { tracing } from "../trace/current.ts";
import type { MsgTrace } from "../trace/msg-trace.ts";
import { disabledCopy, tracedResult } from "../trace/tracer.ts";
import { presentAll } from "../jetstream/deliver.ts";
import { isValidSubscribeSubject, subjectIsLiteral } from "../subjects/subject.ts";
import type { SublistResult } from "../subjects/sublist.ts";
import type { Subscriber } from "../subscriber.ts";
import { Subscription } from "../subscription.ts";
import type { Server } from "../server.ts";
import type { Account } from "./account.ts";
import { isSubsetSubject, streamImportSubject, SubjectMapping } from "./mapping.ts";
import type { AccountOptions, ExportOptions, ImportOptions } from "./options.ts";

/** Response mappings kept per exporting account at most; past it the oldest is dropped. */
export const MAX_PENDING_RESPONSES = 65_536;
/** nats-server's DEFAULT_SERVICE_EXPORT_RESPONSE_THRESHOLD. */
export const DEFAULT_RESPONSE_THRESHOLD_MS = 120_000;
/** Service imports of imports: at most this many exports in one chain (cycles stop sooner). */
const MAX_SERVICE_CHAIN = 8;
/** nats-server's `_R_` prefix of service reply subjects. */
export const SERVICE_REPLY_PREFIX = "_R_.";
const NO_RESPONDERS_HEADERS = "NATS/1.0 503\r\n\r\n";

type ResponseType = "singleton" | "stream" | "chunked";

/** A service export, shared by every import of it (the cycle rule compares these). */
interface ServiceExport {
  readonly account: Account;
  readonly subject: string;
  readonly responseType: ResponseType;
  readonly thresholdMs: number;
  /** `allow_trace` on the export: a traced request is traced on in the exporting account. */
  readonly allowTrace: boolean;
}

/** Which kind of import the message being bridged came through. */
interface Hop {
  readonly kind: "stream" | "service" | "response";
  /** The service exports the message went through. */
  readonly chain: readonly ServiceExport[];
}

const STREAM_HOP: Hop = { kind: "stream", chain: [] };

/** One pending response route: a reply subject in the exporting account → the requester's reply in the importing one. */
interface ResponseEntry {
  readonly into: Account;
  readonly reply: string;
  readonly export: ServiceExport;
  touched: number;
}

/** A message on its way into another account. */
interface Bridged {
  readonly into: Account;
  readonly subject: string;
  /** The composed PUB/HPUB frame; null when nobody listened when it was bridged (nothing to copy). */
  readonly frame: Buffer | null;
  readonly headerSize: number;
  readonly replyLength: number;
  readonly payloadLength: number;
  readonly publisher: Subscriber | null;
  readonly hop: Hop;
  /** A service request: for its mapping and the no-responders status. */
  readonly request: PendingRequest | null;
  /** A response: its mapping is dropped when it reached nobody. */
  readonly response: { responses: Responses; key: string } | null;
  /** A JetStream delivery: the deliver subject it is routed by (`subject` is the one shown). */
  readonly route: string | null;
  /** The message is traced (src/trace): its deliveries in the importing account are recorded too. */
  readonly trace: MsgTrace | null;
}

interface PendingRequest {
  readonly importer: Account;
  readonly subject: string;
  readonly reply: string;
  readonly mappedReply: string;
  readonly responses: Responses;
}

/** Subscribers the imports own (the no-responders check looks past them). */
abstract class Bridge implements Subscriber {
  closed = false;
  readonly headers = true;
  protected constructor(protected readonly imports: Imports) {}

  abstract deliver(
    sub: Subscription,
    buf: Buffer,
    subjectStart: number,
    subjectEnd: number,
    replyStart: number,
    replyEnd: number,
    headerSize: number,
    payloadStart: number,
    payloadEnd: number,
    tailStart: number,
    publisher: Subscriber | null,
  ): void;
}

/** A message another node already bridged (leaf connections are edges of this node: bridged here). */
function fromRoute(publisher: Subscriber | null): boolean {
  return publisher !== null && publisher.isRoute === true && publisher.isLeaf !== true;
}

class StreamBridge extends Bridge {
  constructor(
    imports: Imports,
    readonly from: Account,
    readonly into: Account,
    readonly mapping: SubjectMapping,
    /** `allow_trace` on the import: a traced message is traced on into the importing account. */
    readonly allowTrace: boolean,
  ) {
    super(imports);
  }

  deliver(sub: Subscription, buf: Buffer, subjectStart: number, subjectEnd: number, replyStart: number, replyEnd: number, headerSize: number, payloadStart: number, payloadEnd: number, _tailStart: number, publisher: Subscriber | null): void {
    if (this.closed || fromRoute(publisher) || this.imports.hop !== null) return;
    sub.delivered++;
    const subject = this.mapping.map(buf.latin1Slice(subjectStart, subjectEnd));
    const reply = replyStart >= 0 ? buf.latin1Slice(replyStart, replyEnd) : null;
    const trace = tracing.current;
    if (trace === null || this.allowTrace) {
      trace?.streamExport(this.into.name, subject);
      this.imports.bridge(this.into, subject, reply, buf, headerSize, payloadStart, payloadEnd, publisher, STREAM_HOP, null, null, false);
      return;
    }
    // Without allow_trace the trace stops at the account boundary (nats-server 2.11): the export is the
    // last event; a trace-only message goes no further, any other is delivered untraced.
    trace.streamExport(this.into.name, subject);
    if (trace.traceOnly) return;
    tracing.current = null;
    try {
      this.imports.bridge(this.into, subject, reply, buf, headerSize, payloadStart, payloadEnd, publisher, STREAM_HOP, null, null, false);
    } finally {
      tracing.current = trace;
    }
  }

  /**
   * A JetStream delivery (src/jetstream/deliver.ts): routed by its deliver subject, shown with the stored
   * message's subject. The deliver subject is mapped into the importing account; the subject shown is not
   * (nats-server swaps the two for a deliver subject the same way).
   */
  deliverAs(sub: Subscription, deliverSubject: string, buf: Buffer, subjectStart: number, subjectEnd: number, replyStart: number, replyEnd: number, headerSize: number, payloadStart: number, payloadEnd: number, _tailStart: number, publisher: Subscriber | null): void {
    if (this.closed || fromRoute(publisher) || this.imports.hop !== null) return;
    sub.delivered++;
    const route = this.mapping.map(deliverSubject);
    const subject = buf.latin1Slice(subjectStart, subjectEnd);
    const reply = replyStart >= 0 ? buf.latin1Slice(replyStart, replyEnd) : null;
    this.imports.bridge(this.into, subject, reply, buf, headerSize, payloadStart, payloadEnd, publisher, STREAM_HOP, null, null, false, route);
  }

  /** Whether the importing account listens on what `subject` maps to (a push consumer delivers only then). */
  hasInterestIn(_sub: Subscription, subject: string): boolean {
    return !this.closed && !isEmpty(this.into.sublist.match(this.mapping.map(subject)));
  }
}

class ServiceBridge extends Bridge {
  constructor(
    imports: Imports,
    readonly importer: Account,
    readonly service: ServiceExport,
    /** From the subject the importer's clients use to the exporter's. */
    readonly mapping: SubjectMapping,
  ) {
    super(imports);
  }

  deliver(sub: Subscription, buf: Buffer, subjectStart: number, subjectEnd: number, replyStart: number, replyEnd: number, headerSize: number, payloadStart: number, payloadEnd: number, _tailStart: number, publisher: Subscriber | null): void {
    if (this.closed || fromRoute(publisher)) return;
    const hop = this.imports.hop;
    if (hop !== null && (hop.kind === "stream" || hop.chain.includes(this.service) || hop.chain.length >= MAX_SERVICE_CHAIN)) return;
    sub.delivered++;
    const requestSubject = buf.latin1Slice(subjectStart, subjectEnd);
    const subject = this.mapping.map(requestSubject);
    let request: PendingRequest | null = null;
    if (replyStart >= 0) {
      const reply = buf.latin1Slice(replyStart, replyEnd);
      const responses = this.imports.responsesFor(this.service.account);
      const mappedReply = responses.add(this.importer, reply, this.service);
      request = { importer: this.importer, subject: requestSubject, reply, mappedReply, responses };
    }
    const next: Hop = { kind: "service", chain: hop === null ? [this.service] : [...hop.chain, this.service] };
    const trace = tracing.current;
    if (trace === null || this.service.allowTrace) {
      trace?.serviceImport(this.service.account.name, requestSubject, subject);
      this.imports.bridge(this.service.account, subject, request?.mappedReply ?? null, buf, headerSize, payloadStart, payloadEnd, publisher, next, request, null, true);
      return;
    }
    // Without allow_trace on the export the trace stops at `si` (nats-server 2.11): a trace-only request
    // reaches no responder; any other goes on untraced, its copy marked `trace disabled` so that no
    // server it is routed to starts tracing it again.
    trace.serviceImport(this.service.account.name, requestSubject, subject);
    if (trace.traceOnly) {
      if (request !== null) request.responses.entries.delete(request.mappedReply);
      return;
    }
    const copy = disabledCopy(buf, subjectStart, subjectEnd, replyStart, replyEnd, headerSize, payloadStart, payloadEnd);
    const copyPayloadEnd = copy.frame.length - 2;
    const copyPayloadStart = copyPayloadEnd - (copy.headerSize + payloadEnd - payloadStart - headerSize);
    tracing.current = null;
    try {
      this.imports.bridge(this.service.account, subject, request?.mappedReply ?? null, copy.frame, copy.headerSize, copyPayloadStart, copyPayloadEnd, publisher, next, request, null, true);
    } finally {
      tracing.current = trace;
    }
  }
}

/** The `_R_.<prefix>.>` subscription of one exporting account and its reply mappings. */
class Responses extends Bridge {
  /** `_R_.<random>.`: unique to this account on this server. */
  readonly prefix: string;
  /** Reply subject in the exporting account → where its responses go; in order of last use (oldest first). */
  readonly entries = new Map<string, ResponseEntry>();
  readonly subscription: Subscription;

  constructor(
    imports: Imports,
    readonly account: Account,
  ) {
    super(imports);
    this.prefix = `${SERVICE_REPLY_PREFIX}${imports.randomToken(8)}.`;
    this.subscription = new Subscription(this, `${this.prefix}>`, null, "1", false);
    account.sublist.insert(this.subscription); // announced to routes: responders elsewhere reach it
  }

  add(into: Account, reply: string, service: ServiceExport): string {
    const entries = this.entries;
    if (entries.size >= this.imports.maxPendingResponses) entries.delete(entries.keys().next().value!);
    const mapped = this.prefix + this.imports.randomToken(10);
    entries.set(mapped, { into, reply, export: service, touched: Date.now() });
    this.imports.responsesPending();
    return mapped;
  }

  deliver(_sub: Subscription, buf: Buffer, subjectStart: number, subjectEnd: number, _replyStart: number, _replyEnd: number, headerSize: number, payloadStart: number, payloadEnd: number, _tailStart: number, publisher: Subscriber | null): void {
    if (this.closed) return;
    const key = buf.latin1Slice(subjectStart, subjectEnd);
    const entry = this.take(key, payloadEnd === payloadStart);
    if (entry === undefined) return;
    // A response's own reply subject is of the exporting account: it does not cross (not mapped back).
    this.imports.bridge(entry.into, entry.reply, null, buf, headerSize, payloadStart, payloadEnd, publisher, this.nextHop(), null, { responses: this, key }, false);
  }

  /**
   * A JetStream delivery to a request's reply (a pull request that came through a service import): routed
   * back to the requester's reply subject, shown with the stored message's subject, its ack reply kept (the
   * importer acks through its own import of `$JS.ACK.>`, as with nats-server).
   */
  deliverAs(_sub: Subscription, deliverSubject: string, buf: Buffer, subjectStart: number, subjectEnd: number, replyStart: number, replyEnd: number, headerSize: number, payloadStart: number, payloadEnd: number, _tailStart: number, publisher: Subscriber | null): void {
    if (this.closed) return;
    const entry = this.take(deliverSubject, payloadEnd === payloadStart);
    if (entry === undefined) return;
    const subject = buf.latin1Slice(subjectStart, subjectEnd);
    const reply = replyStart >= 0 ? buf.latin1Slice(replyStart, replyEnd) : null;
    this.imports.bridge(entry.into, subject, reply, buf, headerSize, payloadStart, payloadEnd, publisher, this.nextHop(), null, { responses: this, key: deliverSubject }, false, entry.reply);
  }

  /**
   * The mapping of a response's subject, if any. Singleton: the first response ends it. Chunked: an empty
   * message is the end of the stream. Otherwise it stays, moved to the end (the most recently used), its
   * threshold restarted.
   */
  private take(key: string, empty: boolean): ResponseEntry | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    this.entries.delete(key);
    const type = entry.export.responseType;
    if (type !== "singleton" && !(type === "chunked" && empty)) {
      entry.touched = Date.now();
      this.entries.set(key, entry);
    }
    return entry;
  }

  private nextHop(): Hop {
    const hop = this.imports.hop;
    return { kind: "response", chain: hop === null ? [] : hop.chain };
  }

  close(): void {
    this.closed = true;
    this.account.sublist.remove(this.subscription);
    this.entries.clear();
  }
}

/** The imports of every account of a server, built from the options at start. */
export class Imports {
  /** The hop of the message being bridged now (null: a message straight from its publisher). */
  hop: Hop | null = null;
  maxPendingResponses = MAX_PENDING_RESPONSES;
  private readonly bridges: { bridge: Bridge; sub: Subscription; account: Account }[] = [];
  private readonly responses = new Map<Account, Responses>();
  private queue: Bridged[] = [];
  private drainScheduled = false;
  private sweepTimer: ReturnType<typeof setInterval> | null = null;
  private sweepEveryMs = 1000;
  private random = Buffer.alloc(0);
  private randomAt = 0;
  private closed = false;

  constructor(readonly server: Server) {
    const accounts = server.options.accounts;
    const services = new Map<ExportOptions, ServiceExport>();
    for (const importer of accounts) {
      for (const imp of importer.imports) this.addImport(importer, imp, accounts, services);
    }
    let minThreshold = Infinity;
    for (const s of services.values()) minThreshold = Math.min(minThreshold, s.thresholdMs);
    if (minThreshold !== Infinity) this.sweepEveryMs = Math.max(10, Math.min(1000, Math.floor(minThreshold / 2)));
  }

  /** How many bridges were set up (imports that the exports allow and whose subjects map). */
  get size(): number {
    return this.bridges.length;
  }

  /** Response mappings pending in an exporting account (for tests and monitoring). */
  pendingResponses(account: Account): number {
    return this.responses.get(account)?.entries.size ?? 0;
  }

  private addImport(importerOptions: AccountOptions, imp: ImportOptions, accounts: readonly AccountOptions[], services: Map<ExportOptions, ServiceExport>): void {
    const log = this.server.log;
    const what = `${imp.kind} import of "${imp.subject}" from account "${imp.account}" into "${importerOptions.name}"`;
    const importer = this.server.accounts.get(importerOptions.name);
    const exporter = this.server.accounts.get(imp.account);
    if (importer === undefined || exporter === undefined) return log.warn(`Ignoring ${what}: no such account`);
    if (importer === exporter) return log.warn(`Ignoring ${what}: an account cannot import from itself`);
    if (!isValidSubscribeSubject(imp.subject)) return log.warn(`Ignoring ${what}: invalid subject`);
    // The export must exist and allow the importer: the config check does this at load; the runtime
    // never bridges what the options do not allow, whoever built them.
    const exportsOf = accounts.find((a) => a.name === imp.account)?.exports ?? [];
    const allowed = exportsOf.find(
      (e) => e.kind === imp.kind && isSubsetSubject(imp.subject, e.subject) && (e.accounts == null || e.accounts.includes(importerOptions.name)),
    );
    if (allowed === undefined) return log.warn(`Ignoring ${what}: not exported to it`);
    try {
      if (imp.kind === "stream") {
        if (imp.prefix !== undefined && imp.prefix !== "" && !subjectIsLiteral(imp.prefix)) throw new Error(`prefix "${imp.prefix}" must be literal`);
        const to = streamImportSubject(imp);
        if (!isValidSubscribeSubject(to)) throw new Error(`invalid subject "${to}"`);
        const bridge = new StreamBridge(this, exporter, importer, SubjectMapping.compile(imp.subject, to), imp.allowTrace === true);
        this.subscribe(bridge, exporter, imp.subject);
      } else {
        const local = imp.to !== undefined && imp.to !== "" ? imp.to : imp.subject;
        if (!isValidSubscribeSubject(local)) throw new Error(`invalid subject "${local}"`);
        let service = services.get(allowed);
        if (service === undefined) {
          service = {
            account: exporter,
            subject: allowed.subject,
            responseType: allowed.responseType ?? "singleton",
            thresholdMs: allowed.responseThresholdMs !== undefined && allowed.responseThresholdMs > 0 ? allowed.responseThresholdMs : DEFAULT_RESPONSE_THRESHOLD_MS,
            allowTrace: allowed.allowTrace === true,
          };
          services.set(allowed, service);
        }
        const bridge = new ServiceBridge(this, importer, service, SubjectMapping.compile(local, imp.subject));
        this.subscribe(bridge, importer, local);
        this.responsesFor(exporter);
      }
    } catch (error) {
      log.warn(`Ignoring ${what}: ${(error as Error).message}`);
    }
  }

  private subscribe(bridge: Bridge, account: Account, subject: string): void {
    const sub = new Subscription(bridge, subject, null, String(this.bridges.length + 1), subjectIsLiteral(subject));
    (sub as Subscription & { local?: boolean }).local = true; // src/cluster/interest.ts: not announced to routes
    account.sublist.insert(sub);
    this.bridges.push({ bridge, sub, account });
  }

  responsesFor(account: Account): Responses {
    let responses = this.responses.get(account);
    if (responses === undefined) {
      responses = new Responses(this, account);
      this.responses.set(account, responses);
    }
    return responses;
  }

  /**
   * Queues a message for another account, copying it out of the publisher's buffer. When nobody
   * there listens now, nothing is copied (a request still goes through the queue, for no-responders).
   */
  bridge(
    into: Account,
    subject: string,
    reply: string | null,
    buf: Buffer,
    headerSize: number,
    payloadStart: number,
    payloadEnd: number,
    publisher: Subscriber | null,
    hop: Hop,
    request: PendingRequest | null,
    response: { responses: Responses; key: string } | null,
    alwaysQueue: boolean,
    route: string | null = null,
  ): void {
    // Wildcard tokens pass, as in a client's PUB outside pedantic mode: the JetStream API puts the filter in
    // the subject (`$JS.API.CONSUMER.CREATE.S.C.$KV.b.>`), and nats-server carries such requests over imports.
    if (this.closed || !isValidSubscribeSubject(subject) || (route !== null && !isValidSubscribeSubject(route))) return;
    const listening = !isEmpty(into.sublist.match(route ?? subject));
    if (!listening && !alwaysQueue && response === null) return;
    const total = payloadEnd - payloadStart;
    let frame: Buffer | null = null;
    if (listening) {
      const sizes = headerSize >= 0 ? `${headerSize} ${total}` : `${total}`;
      const line = `${headerSize >= 0 ? "HPUB" : "PUB"} ${subject} ${reply === null ? "" : `${reply} `}${sizes}\r\n`;
      const lineLength = Buffer.byteLength(line, "latin1");
      frame = Buffer.allocUnsafe(lineLength + total + 2);
      frame.write(line, 0, "latin1");
      buf.copy(frame, lineLength, payloadStart, payloadEnd);
      frame[lineLength + total] = 13;
      frame[lineLength + total + 1] = 10;
    }
    const trace = tracing.current;
    trace?.hold(); // the trace's event waits for this delivery (released in deliver)
    const bridged: Bridged = {
      into, subject, frame, headerSize, replyLength: reply === null ? -1 : reply.length, payloadLength: total,
      publisher: publisher !== null && publisher.isRoute === true ? null : publisher, hop, request, response, route, trace,
    };
    this.queue.push(bridged);
    if (!this.drainScheduled) {
      this.drainScheduled = true;
      queueMicrotask(() => this.drain());
    }
  }

  private drain(): void {
    this.drainScheduled = false;
    const queue = this.queue;
    // Bridges reached while draining queue behind, into the same array: one pass, in order.
    for (let k = 0; k < queue.length; k++) {
      const item = queue[k]!;
      queue[k] = undefined as unknown as Bridged;
      try {
        this.deliver(item);
      } catch (error) {
        this.server.log.error(`imports: bridging ${item.subject} into ${item.into.name} failed: ${(error as Error).stack ?? error}`);
      }
    }
    queue.length = 0;
  }

  private deliver(item: Bridged): void {
    if (item.trace === null) return this.deliverBridged(item);
    try {
      this.deliverBridged(item);
    } finally {
      item.trace.release();
    }
  }

  private deliverBridged(item: Bridged): void {
    if (this.closed) return;
    let delivered = false;
    const frame = item.frame;
    if (frame !== null) {
      let result = item.into.sublist.match(item.route ?? item.subject);
      if (item.trace !== null && item.route === null) result = tracedResult(result, item.trace, item.publisher, false);
      if (!isEmpty(result)) {
        const subjectStart = item.headerSize >= 0 ? 5 : 4;
        const subjectEnd = subjectStart + item.subject.length;
        const replyStart = item.replyLength >= 0 ? subjectEnd + 1 : -1;
        const replyEnd = item.replyLength >= 0 ? replyStart + item.replyLength : -1;
        const payloadStart = frame.length - 2 - item.payloadLength;
        this.hop = item.hop;
        try {
          if (item.route !== null) {
            presentAll(result, item.route, frame, subjectStart, subjectEnd, replyStart, replyEnd, item.headerSize, payloadStart, payloadStart + item.payloadLength, subjectEnd + 1, item.publisher);
            delivered = true;
          } else delivered = deliverToMatches(result, item.publisher, false, frame, subjectStart, subjectEnd, replyStart, replyEnd, item.headerSize, payloadStart, payloadStart + item.payloadLength, subjectEnd + 1);
        } finally {
          this.hop = null;
        }
      }
    }
    if (delivered) return;
    this.server.stats.noInterestMsgs++;
    // Nobody got it: a request's mapping goes (and its requester may learn there is no responder);
    // a response that reached nobody ends its mapping (nats-server removes it likewise).
    const request = item.request;
    if (request !== null) {
      request.responses.entries.delete(request.mappedReply);
      this.noResponders(request, item.publisher);
    }
    if (item.response !== null) item.response.responses.entries.delete(item.response.key);
  }

  /**
   * The importing client asked for no-responders statuses and the service has no responder: it gets
   * the 503, unless a subscriber of its own account (not an import) took the request too.
   */
  private noResponders(request: PendingRequest, requester: Subscriber | null): void {
    if (requester === null || requester.closed || (requester as Subscriber & { noResponders?: boolean }).noResponders !== true) return;
    const sameAccount = request.importer.sublist.match(request.subject);
    for (const sub of sameAccount.plain) if (!(sub.client instanceof Bridge)) return;
    if (sameAccount.queues.length > 0) return;
    const replies = request.importer.sublist.match(request.reply);
    for (const sub of replies.plain) {
      if (sub.client !== requester) continue;
      const line = `HPUB ${request.reply} ${NO_RESPONDERS_HEADERS.length} ${NO_RESPONDERS_HEADERS.length}\r\n`;
      const frame = Buffer.from(`${line}${NO_RESPONDERS_HEADERS}\r\n`, "latin1");
      const subjectEnd = 5 + request.reply.length;
      requester.deliver(sub, frame, 5, subjectEnd, -1, -1, NO_RESPONDERS_HEADERS.length, line.length, line.length + NO_RESPONDERS_HEADERS.length, subjectEnd + 1, null);
      return;
    }
  }

  /** A response mapping was added: make sure they expire. */
  responsesPending(): void {
    if (this.sweepTimer !== null || this.closed) return;
    this.sweepTimer = setInterval(() => this.sweep(), this.sweepEveryMs);
    this.sweepTimer.unref?.();
  }

  /** Drops response mappings older than their export's response_threshold. */
  sweep(now = Date.now()): void {
    let left = 0;
    for (const responses of this.responses.values()) {
      for (const [key, entry] of responses.entries) {
        if (now - entry.touched >= entry.export.thresholdMs) responses.entries.delete(key);
      }
      left += responses.entries.size;
    }
    if (left === 0 && this.sweepTimer !== null) {
      clearInterval(this.sweepTimer);
      this.sweepTimer = null;
    }
  }

  /** Random base-62 characters for reply subjects (unguessable: another client must not answer in a requester's place). */
  randomToken(length: number): string {
    if (this.randomAt + length > this.random.length) {
      this.random = randomBytes(4096);
      this.randomAt = 0;
    }
    let token = "";
    for (let k = 0; k < length; k++) token += BASE62[this.random[this.randomAt++]! % 62];
    return token;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.sweepTimer !== null) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
    for (const { bridge, sub, account } of this.bridges) {
      bridge.closed = true;
      account.sublist.remove(sub);
    }
    for (const responses of this.responses.values()) responses.close();
    this.queue.length = 0;
  }
}

const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

function isEmpty(result: SublistResult<Subscription>): boolean {
  return result.plain.length === 0 && result.queues.length === 0;
}
