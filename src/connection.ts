import { Parser, type ProtocolHandler, type ProtocolTracer } from "./protocol/parser.ts";
import { delSubTrace, inOpTrace, outFrameTraces, outOpTrace, payloadTrace } from "./protocol/trace.ts";
import { OK_FRAME, PING_FRAME, PONG_FRAME, errFrame, noRespondersFrame } from "./protocol/frames.ts";
import { CloseReason, ProtocolError, formatError, type ProtocolErrorKind } from "./protocol/errors.ts";
import { isValidPublishSubject, isValidQueueName, isValidSubscribeSubject, subjectIsLiteral } from "./subjects/subject.ts";
import { SidTable } from "./sid-table.ts";
import { Subscription } from "./subscription.ts";
import { numericKey } from "./subjects/numeric-key.ts";
import { TransportLink } from "./link.ts";
import { SubjectMemo } from "./subjects/subject-memo.ts";
import type { Subscriber } from "./subscriber.ts";
import { deliverToMatches } from "./router.ts";
import type { Transport } from "./transport/transport.ts";
import type { Server } from "./server.ts";
import type { AuthGate } from "./auth/gate.ts";
import { credentialsOf, type Credentials } from "./auth/authenticator.ts";
import { isReservedReply, type ClientPermissions } from "./auth/permissions.ts";
import { redactSecrets } from "./auth/redact.ts";
import type { PublishRateLimiter } from "./auth/ratelimit.ts";
import type { Account } from "./accounts/account.ts";
import { connectionLogPrefix } from "./log.ts";
import { hasTraceHeader } from "./trace/headers.ts";
import { disabledCopy, SAMPLED_OUT, SKIP, startTrace, tracedResult } from "./trace/tracer.ts";
import type { MsgTrace } from "./trace/msg-trace.ts";

/**
 * A publisher feeding a client whose socket is behind is paused once that client has this much queued
 * (unless max_pending / 2 is less): enough to keep its socket busy between two drains, little enough that
 * a fast publisher does not pile its stream up in the server's memory (src/connection.ts stallPoint).
 */
const STALL_BYTES = 1024 * 1024;
/**
 * A blocked client without a drain for this long is stuck, not slow: its publishers are no longer held to
 * STALL_BYTES (see stallPoint). A slow reader's socket becomes writable only once it has read a good part
 * of the kernel's send buffer (a third of it), which at a few MB/s takes a few hundred ms.
 */
const STUCK_AFTER_MS = 1000;
/**
 * A client with this much queued is written to at once, not at the end of the read that queued it: one
 * read of a fast publisher (up to 512 KiB) fanned out to many clients would otherwise sit in as many
 * buffers at once. Just under 256 KiB, the size an outbound buffer doubles to once it holds more than
 * 128 KiB: a fast subscriber's writes fill the buffer it has rather than grow it, in half the writes that
 * 128 KiB took. Each write costs the kernel a send and the reader a wake-up and a read (fan-out 1:10 1 KiB:
 * README, Benchmarks, "Fan-out 1:10 1 KiB against 2.12.0").
 */
const WRITE_EARLY_BYTES = 240 * 1024;
/**
 * With more connections than this waiting for this read's writes (a fan-out to many), each is written at
 * just under 64 KiB: its buffer then stays at 64 KiB (at 128 KiB it doubled to 256 KiB on the frame that
 * crossed 128 KiB), so what a fan-out holds at once is a quarter of it. A fan-out of 1 KiB to 100
 * subscribers held 25 MiB of outbound buffers at 128 KiB (12.5 MiB resident, and the 4–128 KiB buffers
 * each outgrew as garbage), 6.3 MiB at 60 KiB: the server's anonymous RSS under it 37–44 → 23 MiB
 * (README, Benchmarks, "What the RSS under load is made of").
 */
const WRITE_EARLY_FEW = 16;
const WRITE_EARLY_BYTES_MANY = 60 * 1024;

/** Options a client sends in CONNECT, in wire casing. Absent fields keep nats-server's defaults. */
interface ConnectOptions {
  verbose?: boolean;
  pedantic?: boolean;
  echo?: boolean;
  headers?: boolean;
  no_responders?: boolean;
  protocol?: number;
  name?: string;
  lang?: string;
  version?: string;
  // Credentials, read by src/auth (never logged).
  user?: string;
  pass?: string;
  auth_token?: string;
  nkey?: string;
  sig?: string;
  jwt?: string;
}


/**
 * One client connection: parses its input, keeps its subscriptions, and frames its messages as
 * MSG/HMSG into its outbound buffer, written once per tick (src/link.ts), never per message.
 *
 * Invariants:
 * - Bytes leave in the order they were queued (src/outbound.ts).
 * - Pending bytes never pass max_pending: the client is cut as a slow consumer first.
 * - After `closed` is set nothing is queued, parsed or delivered to this client.
 */
export class Connection extends TransportLink implements ProtocolHandler, ProtocolTracer, Subscriber {
  readonly isRoute = false;
  readonly parser: Parser;
  /** By sid key (Subscription.sidKey: a number for a sid in plain digits). */
  readonly subscriptions = new SidTable();
  readonly startedAt = Date.now();
  /** performance.now() at accept: RTTs are measured in fractions of a millisecond. */
  private readonly startedAtPrecise = performance.now();

  // CONNECT options, with nats-server's server-side defaults before CONNECT arrives.
  verbose = true;
  pedantic = true;
  echo = true;
  headers = false;
  noResponders = false;
  protocol = 0;
  name = "";
  lang = "";
  version = "";
  connectReceived = false;
  /** Any valid op arrived (a client without auth may talk before CONNECT, as with nats-server). */
  spoken = false;
  /** The PONG to the first PING after CONNECT went out: from then on the client gets async INFOs. */
  firstPongSent = false;

  // Security (src/auth). All null without authentication/permissions: the hot paths then pay one null check.
  /** Authentication is required: input passes the gate until CONNECT is accepted; every CONNECT is checked there. */
  authGate: AuthGate | null = null;
  /** The user's publish/subscribe permissions, with this connection's caches; null = everything allowed. */
  perms: ClientPermissions | null = null;
  /** The authenticated user name or nkey ("" without, or for a token). */
  authUser = "";
  /**
   * The last CONNECT's credential fields (null: it had none), kept in memory only (never logged or shown)
   * so that a config reload can check the client again (src/auth/reload.ts).
   */
  credentials: Credentials | null = null;
  /** The configured password or token those credentials were last found to match (null: none was compared). */
  verifiedSecret: string | null = null;
  /** Bumped by every CONNECT and config reload: an asynchronous re-check answers only if it is still current. */
  authEpoch = 0;
  /** The user's publish rate limit; null = none. Checked once per read, not per message. */
  rateLimiter: PublishRateLimiter | null = null;
  /** The account whose subject space this client lives in: `$G` until authentication binds another (bindAccount). */
  account: Account;

  /** No drain for STUCK_AFTER_MS while blocked: this client is stuck, not just behind (see stallPoint). */
  private stuckWriter = false;
  /** When the transport last drained (ms). */
  private lastDrainAt = 0;
  /** How many slow subscribers currently hold this client's reads paused. */
  private stalls = 0;

  // Liveness.
  lastActivity = Date.now();
  pingsOut = 0;
  pingsSent = 0;
  nextPingAt: number;
  rttMs = 0;
  private pingSentAt = 0;

  // Statistics (as /connz reports them; the out side is Link's).
  inMsgs = 0;
  inBytes = 0;

  closeReason = "";

  /** The text of the last permission violation sent (a traced message's ingress error). */
  private lastViolation = "";
  // One-entry memo of the last subject published on this connection and its match result.
  private readonly memo = new SubjectMemo<Subscription>();

  constructor(
    readonly server: Server,
    readonly transport: Transport,
    readonly cid: number,
  ) {
    super();
    const options = server.options;
    this.account = server.accounts.global;
    this.account.connections++;
    this.parser = new Parser(this, options.maxPayload, options.maxControlLine);
    this.outbound.limit = options.maxPending; // kept current by afterQueue (max_pending is reloadable)
    this.nextPingAt = this.startedAt + Math.min(2000, options.pingIntervalMs);
  }

  /** `ip:port - cid:N` (`wid:` over WebSocket) as nats-server prefixes its client log lines. */
  get logPrefix(): string {
    const transport = this.transport;
    return connectionLogPrefix(transport.remoteAddress, transport.remotePort, transport.kind === "websocket" ? "wid" : "cid", this.cid);
  }

  // ---- input -------------------------------------------------------------------------------

  /**
   * One read from the transport. Returns true when nothing of `data` was kept (the parser copies a split
   * op, deliveries copy what they queue), so the transport may free it at once (src/transport/read-memory.ts);
   * false when the auth gate or the rate limiter holds it for later.
   */
  onRead(data: Buffer): boolean {
    if (this.closed) return true;
    this.lastActivity = Date.now();
    if (this.authGate !== null && this.authGate.holding) {
      this.authGate.read(data); // not authenticated yet: src/auth/gate.ts feeds parse() line by line
      return false;
    }
    if (this.rateLimiter !== null) {
      this.rateLimiter.read(data); // parse(), then charge the user's publish budget; may hold reads
      return false;
    }
    this.parse(data);
    return true;
  }

  /** Input from an authenticated client (also what the auth gate lets through after CONNECT). */
  readAuthenticated(data: Buffer): void {
    if (this.rateLimiter !== null) this.rateLimiter.read(data); // parse(), then charge the user's publish budget
    else this.parse(data);
  }

  /** Parses a read (or what the auth gate or the rate limiter lets through), then flushes this tick's output. */
  parse(data: Buffer): void {
    const server = this.server;
    server.inRead = true;
    server.latency.startRead();
    this.parser.tracer = server.tracing ? this : null; // -V: each op traced as the parser reads it
    this.parser.feed(data);
    server.inRead = false;
    server.flushDirty();
    server.latency.endRead();
  }

  // ---- protocol trace (-V): nats-server's lines (src/protocol/trace.ts) -----------------------------

  traceInOp(op: string, buf: Buffer, argStart: number, argEnd: number): void {
    let args = argStart < 0 ? null : buf.toString("utf8", argStart, argEnd);
    if (args !== null && op === "CONNECT") args = redactSecrets(args); // as nats-server hides the password
    this.server.log.trace(`${this.logPrefix} - ${inOpTrace(op, args)}`);
  }

  traceInPayload(buf: Buffer, start: number, end: number): void {
    this.server.log.trace(`${this.logPrefix} - ${payloadTrace(buf, start, end)}`);
  }

  /** `->> [MSG subject sid [reply] size]` (HMSG with the header size), as this client receives it. */
  private traceDelivery(sub: Subscription, buf: Buffer, subjectStart: number, subjectEnd: number, replyStart: number, replyEnd: number, headerSize: number, payloadStart: number, payloadEnd: number): void {
    const reply = replyStart >= 0 ? ` ${buf.latin1Slice(replyStart, replyEnd)}` : "";
    const total = payloadEnd - payloadStart;
    const head = `${buf.latin1Slice(subjectStart, subjectEnd)} ${sub.sid}${reply}`;
    const line = headerSize >= 0 && this.headers ? `HMSG ${head} ${headerSize} ${total}` : `MSG ${head} ${headerSize >= 0 ? total - headerSize : total}`;
    this.server.log.trace(`${this.logPrefix} - ${outOpTrace(line, null)}`);
  }

  // Hot path: no await, no closure, no string but the subject (and only on a memo miss).
  onPub(
    buf: Buffer,
    subjectStart: number,
    subjectEnd: number,
    replyStart: number,
    replyEnd: number,
    headerSize: number,
    payloadStart: number,
    payloadEnd: number,
    tailStart: number,
  ): boolean {
    this.spoken = true;
    const size = payloadEnd - payloadStart;
    this.inMsgs++;
    this.inBytes += size;
    const server = this.server;
    server.stats.inMsgs++;
    server.stats.inBytes += size;
    if (this.pedantic && !isValidPublishSubject(buf.latin1Slice(subjectStart, subjectEnd))) {
      this.sendError("InvalidPublishSubject"); // nats-server still delivers the message
    }
    // Message tracing (src/trace): one look at the headers of a message that has some, nothing for one without.
    let trace: MsgTrace | null = null;
    if (headerSize > 0 && hasTraceHeader(buf, payloadStart, payloadStart + headerSize)) {
      const started = startTrace(server, this, this.account, buf, subjectStart, subjectEnd, payloadStart, headerSize, size);
      if (started === SKIP) return false;
      if (started === SAMPLED_OUT) {
        // Delivered untraced, marked so that no other server traces it: a frame of its own, in canonical form.
        const copy = disabledCopy(buf, subjectStart, subjectEnd, replyStart, replyEnd, headerSize, payloadStart, payloadEnd);
        const bodyLength = payloadEnd - payloadStart - headerSize;
        buf = copy.frame;
        headerSize = copy.headerSize;
        subjectEnd = 5 + subjectEnd - subjectStart;
        subjectStart = 5;
        if (replyStart >= 0) {
          const replyLength = replyEnd - replyStart;
          replyStart = subjectEnd + 1;
          replyEnd = replyStart + replyLength;
        }
        tailStart = subjectEnd + 1;
        payloadEnd = buf.length - 2;
        payloadStart = payloadEnd - headerSize - bodyLength;
      } else trace = started;
    }
    // Account mappings (src/accounts/mappings.ts): only accounts that have them pay more than this check.
    const mappings = this.account.mappings;
    const mayMap = mappings !== null && mappings.mayMatch(buf[subjectStart]!);
    if (mayMap) {
      const mapped = mappings!.select(buf.latin1Slice(subjectStart, subjectEnd));
      if (mapped !== null) {
        // The message goes on as if published on the mapped subject: a frame of its own, in canonical form.
        if (trace !== null) trace.subjectMapping(mapped);
        const f = remapFrame(mapped, buf, replyStart, replyEnd, headerSize, payloadStart, payloadEnd);
        buf = f;
        subjectStart = headerSize >= 0 ? 5 : 4;
        subjectEnd = subjectStart + mapped.length;
        if (replyStart >= 0) {
          const replyLength = replyEnd - replyStart;
          replyStart = subjectEnd + 1;
          replyEnd = replyStart + replyLength;
        }
        tailStart = subjectEnd + 1;
        payloadEnd = f.length - 2;
        payloadStart = payloadEnd - size;
      }
    }
    // Without permissions and without a reply subject this is the whole cost of src/auth here.
    if ((this.perms !== null || replyStart >= 0) && this.publishRefused(buf, subjectStart, subjectEnd, replyStart, replyEnd)) {
      if (trace !== null) trace.refused(this.lastViolation);
      return false;
    }
    if (this.verbose) this.queueBytes(OK_FRAME);

    let result = this.memo.match(this.account.sublist, buf, subjectStart, subjectEnd);
    // The console's busiest-subjects sample (src/console/top-subjects.ts): one countdown per message.
    const top = server.topSubjects;
    if (top !== null && --top.countdown === 0) top.sample(this.memo.text, size);
    if (trace !== null) result = tracedResult(result, trace, this, !this.echo);
    // A subject no one wants (a pub-only load's every message) does not go through the router at all.
    const delivered =
      (result.plain.length !== 0 || result.queues.length !== 0) &&
      deliverToMatches(result, this, !this.echo, buf, subjectStart, subjectEnd, replyStart, replyEnd, headerSize, payloadStart, payloadEnd, tailStart);
    if (trace !== null) trace.release();
    const latency = server.latency;
    if (latency.awaitingReplies) latency.published(this.memo.text);
    if (delivered && replyStart >= 0 && latency.sampleRequest()) {
      latency.requestDelivered(this.memo.text, buf.latin1Slice(replyStart, replyEnd));
    }
    if (delivered) return false;
    server.stats.noInterestMsgs++;
    if (replyStart >= 0 && this.noResponders) this.sendNoResponders(buf, replyStart, replyEnd);
    // Reached no one: the parser counts the same control line right after it with onRepeatedPubs (not
    // after a mapping, which may pick another subject for the next one, nor while tracing).
    return trace === null && !mayMap && this.mayTakeUnread(buf, subjectStart, replyStart, headerSize);
  }

  /**
   * PUBs with the control line of the one before them, which reached no one (src/protocol/parser.ts): they
   * would again, so they are only counted, as onPub would count them.
   */
  onRepeatedPubs(count: number, size: number): void {
    this.inMsgs += count;
    this.inBytes += count * size;
    const stats = this.server.stats;
    stats.inMsgs += count;
    stats.inBytes += count * size;
    stats.noInterestMsgs += count;
  }

  /**
   * Whether a PUB no one is interested in may be handled by counting it alone (takePubUnread, onRepeatedPubs):
   * nothing here reads its payload or does anything per message (no headers to look into, no reply to
   * answer, no mapping, permission, verbose, pedantic or console sampling at work).
   */
  private mayTakeUnread(buf: Buffer, subjectStart: number, replyStart: number, headerSize: number): boolean {
    if (headerSize >= 0 || replyStart >= 0 || this.perms !== null || this.verbose || this.pedantic) return false;
    const server = this.server;
    if (server.topSubjects !== null || server.latency.awaitingReplies) return false;
    const mappings = this.account.mappings;
    return mappings === null || !mappings.mayMatch(buf[subjectStart]!);
  }

  /**
   * A PUB whose payload is still arriving (src/protocol/parser.ts): taken now when it is a plain message
   * to a subject no one is interested in and nothing here reads its payload (no headers to look into,
   * no reply to answer, no mapping, permission, verbose, pedantic, tracing or console sampling at
   * work). It is counted as onPub would count it; the parser skips its payload instead of carrying it.
   */
  takePubUnread(buf: Buffer, subjectStart: number, subjectEnd: number, replyStart: number, _replyEnd: number, headerSize: number, size: number): boolean {
    if (!this.mayTakeUnread(buf, subjectStart, replyStart, headerSize)) return false;
    const result = this.memo.match(this.account.sublist, buf, subjectStart, subjectEnd);
    if (result.plain.length > 0 || result.queues.length > 0) return false;
    this.spoken = true;
    this.onRepeatedPubs(1, size);
    return true;
  }

  /**
   * Queues one message for this client on `sub`: `MSG <subject> <sid> ` then the tail copied
   * straight from the publisher's input. One copy of the payload, no number formatting.
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
    tailStart: number,
    publisher: Subscriber | null,
  ): void {
    if (this.closed) return;
    if (this.perms !== null && !this.perms.admitDelivery(buf, subjectStart, subjectEnd, replyStart, replyEnd)) return;
    if (this.server.tracing) this.traceDelivery(sub, buf, subjectStart, subjectEnd, replyStart, replyEnd, headerSize, payloadStart, payloadEnd);
    if (headerSize >= 0 && !this.headers) {
      // A subscriber that did not ask for headers gets the message as MSG without them.
      this.deliverWithoutHeaders(sub, buf, subjectStart, subjectEnd, replyStart, replyEnd, payloadStart + headerSize, payloadEnd);
    } else {
      const prefix = headerSize >= 0 ? sub.hmsgPrefix : sub.msgPrefix;
      const subjectLength = subjectEnd - subjectStart;
      const headLength = prefix !== null ? prefix.length : (headerSize >= 0 ? 5 : 4) + subjectLength + sub.sidInfix.length;
      if (tailStart >= 0) {
        const tailEnd = payloadEnd + 2;
        const outbound = this.outbound;
        let at = outbound.reserve(headLength + tailEnd - tailStart);
        const out = outbound.buf;
        at = prefix !== null ? copyBytes(prefix, 0, prefix.length, out, at) : this.writeSubjectHead(out, at, headerSize >= 0, buf, subjectStart, subjectEnd, sub);
        copyBytes(buf, tailStart, tailEnd, out, at);
      } else {
        this.deliverComposed(sub, prefix, headLength, buf, subjectStart, subjectEnd, replyStart, replyEnd, headerSize, payloadStart, payloadEnd);
      }
    }
    this.countOut(payloadEnd - payloadStart);
    if (sub.countDelivery()) this.removeSubscription(sub);
    this.afterQueue(publisher);
  }

  private writeSubjectHead(out: Buffer, at: number, withHeaders: boolean, buf: Buffer, subjectStart: number, subjectEnd: number, sub: Subscription): number {
    out[at++] = withHeaders ? 72 /* H */ : 77 /* M */;
    if (withHeaders) out[at++] = 77; /* M */
    out[at++] = 83; /* S */
    out[at++] = 71; /* G */
    out[at++] = 32;
    at += buf.copy(out, at, subjectStart, subjectEnd);
    return at + sub.sidInfix.copy(out, at);
  }

  /** The slow path for a PUB line that was not in canonical form (tabs, several spaces, bare LF). */
  private deliverComposed(
    sub: Subscription,
    prefix: Buffer | null,
    headLength: number,
    buf: Buffer,
    subjectStart: number,
    subjectEnd: number,
    replyStart: number,
    replyEnd: number,
    headerSize: number,
    payloadStart: number,
    payloadEnd: number,
  ): void {
    const sizes = headerSize >= 0 ? `${headerSize} ${payloadEnd - payloadStart}\r\n` : `${payloadEnd - payloadStart}\r\n`;
    const replyLength = replyStart >= 0 ? replyEnd - replyStart + 1 : 0;
    let at = this.outbound.reserve(headLength + replyLength + sizes.length + payloadEnd - payloadStart + 2);
    const out = this.outbound.buf;
    at = prefix !== null ? at + prefix.copy(out, at) : this.writeSubjectHead(out, at, headerSize >= 0, buf, subjectStart, subjectEnd, sub);
    if (replyStart >= 0) {
      at += buf.copy(out, at, replyStart, replyEnd);
      out[at++] = 32;
    }
    at += out.write(sizes, at, "latin1");
    at += buf.copy(out, at, payloadStart, payloadEnd);
    out[at++] = 13;
    out[at] = 10;
  }

  private deliverWithoutHeaders(sub: Subscription, buf: Buffer, subjectStart: number, subjectEnd: number, replyStart: number, replyEnd: number, bodyStart: number, payloadEnd: number): void {
    const prefix = sub.msgPrefix;
    const headLength = prefix !== null ? prefix.length : 4 + subjectEnd - subjectStart + sub.sidInfix.length;
    this.deliverComposed(sub, prefix, headLength, buf, subjectStart, subjectEnd, replyStart, replyEnd, -1, bodyStart, payloadEnd);
  }

  /** `HMSG <reply> <sid> 16 16 NATS/1.0 503` to the requester, on its own subscription matching the reply subject. */
  private sendNoResponders(buf: Buffer, replyStart: number, replyEnd: number): void {
    const replies = this.account.sublist.match(buf.latin1Slice(replyStart, replyEnd));
    for (const sub of replies.plain) {
      if (sub.client === this) {
        this.queueBytes(noRespondersFrame(buf.subarray(replyStart, replyEnd), sub.sid));
        return;
      }
    }
  }

  onSub(subject: string, queue: string | null, sid: string): void {
    this.spoken = true;
    if (this.closed) return;
    const options = this.server.options;
    if (!isValidSubscribeSubject(subject) || (queue !== null && !isValidQueueName(queue))) {
      this.sendError("InvalidSubject");
      return;
    }
    if (this.perms !== null && !this.perms.canSubscribe(subject, queue)) {
      if (queue === null) this.permissionViolation("SubscribeViolation", "Subject", subject, `, SID ${sid}`);
      else this.permissionViolation("SubscribeQueueViolation", "Subject", subject, `, Queue: ${JSON.stringify(queue)}, SID ${sid}`, queue);
      return;
    }
    if (options.maxSubTokens > 0 && tokenCount(subject) > options.maxSubTokens) {
      // nats-server's maxTokensViolation: -ERR, an error line, the connection stays.
      this.server.log.error(`${this.logPrefix} - Subscription Violation Too Many Tokens - User ${JSON.stringify(this.authUser || "N/A")}, Subject ${JSON.stringify(subject)}, SID ${sid}`);
      this.queueBytes(errFrame(formatError("MaxSubTokensViolation", subject)));
      return;
    }
    if (this.account.subscriptionsFull(this.subscriptions.size, options.maxSubscriptions)) {
      this.server.log.error(`${this.logPrefix} - Maximum Subscriptions Exceeded (max=${this.account.maxSubscriptions(options.maxSubscriptions)})`);
      this.sendError("MaxSubscriptions");
      return;
    }
    if (!this.subscriptions.has(numericKey(sid))) {
      // A second SUB with a sid in use is ignored, as nats-server does.
      const sub = new Subscription(this, subject, queue, sid, subjectIsLiteral(subject));
      this.subscriptions.set(sub.sidKey, sub);
      this.account.sublist.insert(sub);
      const first = this.server.onFirstSubscription;
      if (first !== null) {
        this.server.onFirstSubscription = null;
        first();
      }
    }
    if (this.verbose) this.queueBytes(OK_FRAME);
  }

  /**
   * Moves the client into `account` (authentication chose it). False when the account is full
   * (max_connections): the client is then closed with nats-server's -ERR. Subscriptions made before
   * (a re-authenticating CONNECT) move along; the account's max_payload applies from here on.
   */
  bindAccount(account: Account): boolean {
    const previous = this.account;
    if (account === previous) return true;
    if (account.connectionsFull) {
      this.server.log.error(`${this.logPrefix} - ${ProtocolError.MaxAccountConnections.text}`);
      this.closeWithError("MaxAccountConnections", CloseReason.MaxAccountConnectionsExceeded);
      return false;
    }
    previous.connections--;
    account.connections++;
    this.account = account;
    for (const sub of this.subscriptions.values()) {
      previous.sublist.remove(sub);
      account.sublist.insert(sub);
    }
    this.memo.clear();
    this.parser.maxPayload = account.maxPayload(this.server.options.maxPayload);
    return true;
  }

  onUnsub(sid: string, max: number): void {
    this.spoken = true;
    if (this.verbose) this.queueBytes(OK_FRAME); // before the removal: a trace shows +OK, then DELSUB, as nats-server's
    const sub = this.subscriptions.get(numericKey(sid));
    if (sub !== undefined) {
      if (max > 0 && max > sub.delivered) sub.max = max;
      else this.removeSubscription(sub);
    }
  }

  removeSubscription(sub: Subscription): void {
    if (this.subscriptions.get(sub.sidKey) !== sub) return;
    this.subscriptions.delete(sub.sidKey);
    this.account.sublist.remove(sub);
    if (this.server.tracing) this.server.log.trace(`${this.logPrefix} - ${delSubTrace(sub.sid)}`);
  }

  onConnect(json: string): void {
    let connect: ConnectOptions;
    try {
      connect = JSON.parse(json) as ConnectOptions;
      if (connect === null || typeof connect !== "object" || Array.isArray(connect)) throw new Error("not an object");
    } catch {
      // nats-server closes on malformed CONNECT JSON without an -ERR.
      this.close(CloseReason.ProtocolViolation, null, `malformed CONNECT: ${redactSecrets(json.slice(0, 64))}`);
      return;
    }
    this.spoken = true;
    this.connectReceived = true;
    this.rttMs = performance.now() - this.startedAtPrecise;
    if (typeof connect.verbose === "boolean") this.verbose = connect.verbose;
    if (typeof connect.pedantic === "boolean") this.pedantic = connect.pedantic;
    if (typeof connect.echo === "boolean") this.echo = connect.echo;
    this.headers = connect.headers === true && !this.server.options.noHeaderSupport; // nats-server: supportsHeaders && opts.Headers
    this.noResponders = connect.no_responders === true;
    this.parser.headersAllowed = this.headers;
    this.protocol = typeof connect.protocol === "number" ? connect.protocol : 0;
    if (typeof connect.name === "string") this.name = connect.name;
    if (typeof connect.lang === "string") this.lang = connect.lang;
    if (typeof connect.version === "string") this.version = connect.version;
    if (this.protocol < 0 || this.protocol > 1) {
      this.closeWithError("BadClientProtocol", CloseReason.BadClientProtocolVersion);
      return;
    }
    if (this.noResponders && !this.headers) {
      this.closeWithError("NoRespondersRequiresHeaders", CloseReason.NoRespondersRequiresHeaders);
      return;
    }
    // Credentials last: a bcrypt check answers later, and the gate then sends the +OK (src/auth/gate.ts).
    this.credentials = credentialsOf(connect);
    this.verifiedSecret = null;
    if (this.authGate !== null && !this.authGate.authorize(connect)) return;
    if (this.authGate === null) this.server.events?.clientConnected(this); // with auth: AuthGate.admit
    if (this.verbose) this.queueBytes(OK_FRAME);
  }

  onPing(): void {
    if (this.connectReceived && !this.firstPongSent) this.server.firstPing(this);
    this.queueBytes(PONG_FRAME);
  }

  onPong(): void {
    this.pingsOut = 0;
    if (this.pingSentAt > 0) {
      this.rttMs = performance.now() - this.pingSentAt;
      this.pingSentAt = 0;
    }
  }

  onInfo(_json: string): void {
    // nats-server accepts and ignores INFO from clients.
  }

  onClientError(text: string): void {
    this.server.log.error(`${this.logPrefix} - Client Error ${text}`);
    this.close(CloseReason.ParseError, null);
  }

  onParseError(errText: string | null, closeReason: string, detail: string): void {
    if (errText === null) this.close(closeReason, null, detail);
    else {
      this.server.log.error(`${this.logPrefix} - ${errText}: ${detail}`);
      this.close(closeReason, errText, detail);
    }
  }

  // ---- output ------------------------------------------------------------------------------

  queueBytes(bytes: Buffer): void {
    if (this.closed) return;
    if (this.server.tracing) for (const trace of outFrameTraces(bytes)) this.server.log.trace(`${this.logPrefix} - ${trace}`);
    this.outbound.append(bytes);
    this.afterQueue(null);
  }

  /** Puts the connection on this tick's flush and enforces max_pending. */
  private afterQueue(publisher: Subscriber | null): void {
    this.flushThisTick();
    const pending = this.outbound.pending;
    const maxPending = this.server.options.maxPending;
    this.outbound.limit = maxPending;
    if (pending > maxPending || this.outbound.overLimit) {
      this.closeAsSlowConsumer(maxPending, "info");
    } else if (this.transport.blocked) {
      if (publisher instanceof Connection && publisher !== this && pending > this.stallPoint(maxPending)) this.stallPublisher(publisher);
    } else if (pending >= WRITE_EARLY_BYTES || (pending >= WRITE_EARLY_BYTES_MANY && this.server.dirtyCount > WRITE_EARLY_FEW)) {
      this.writeQueued();
    }
  }

  /**
   * Pending bytes past which a publisher feeding this blocked client is paused. A client that keeps
   * draining is held to STALL_BYTES: the publisher's bytes then wait in the kernel instead of in this
   * buffer (what the socket takes sizes it). A stuck one (no drain for STUCK_AFTER_MS) is allowed half
   * of max_pending, as nats-server, so that max_pending or the write deadline still cuts it.
   */
  protected override stallPoint(maxPending: number): number {
    return this.stuckWriter ? maxPending / 2 : Math.min(STALL_BYTES, maxPending / 2);
  }

  /** A stall ran out without a drain: a client blocked that long without a drain is stuck (see stallPoint). */
  protected override stallTimedOut(): void {
    if (Date.now() - Math.max(this.lastDrainAt, this.blockedSince) >= STUCK_AFTER_MS) this.stuckWriter = true;
  }

  /** Pauses this client's reads for a full receiver (Link.stallPublisher); each call needs one resume. */
  pauseForSlowReceiver(): void {
    if (this.stalls++ === 0) this.transport.pauseReading();
  }

  resumeAfterSlowReceiver(): void {
    if (--this.stalls === 0 && !this.closed) this.transport.resumeReading();
  }

  /** The transport can take more. */
  override onDrain(): void {
    this.stuckWriter = false;
    this.lastDrainAt = Date.now();
    super.onDrain();
  }

  sendPing(): void {
    this.pingsOut++;
    this.pingsSent++;
    this.pingSentAt = performance.now();
    this.queueBytes(PING_FRAME);
  }

  sendError(kind: ProtocolErrorKind): void {
    this.queueBytes(errFrame(ProtocolError[kind].text));
  }

  /** A traced message's Nats-Trace-Dest the user may not publish to (src/trace): nats-server's violation for it. */
  traceDestRefused(dest: string): void {
    this.permissionViolation("PublishViolation", "Subject", dest);
  }

  /** Publish permissions (with their per-connection cache) and reserved reply subjects; sends the -ERR. */
  private publishRefused(buf: Buffer, subjectStart: number, subjectEnd: number, replyStart: number, replyEnd: number): boolean {
    if (this.perms !== null && !this.perms.publishAllowed(buf, subjectStart, subjectEnd)) {
      this.permissionViolation("PublishViolation", "Subject", buf.toString("utf8", subjectStart, subjectEnd));
      return true;
    }
    if (replyStart >= 0 && isReservedReply(buf, replyStart, replyEnd)) {
      this.permissionViolation("ReplyViolation", "Reply", buf.toString("utf8", replyStart, replyEnd));
      return true;
    }
    return false;
  }

  /** `-ERR 'Permissions Violation for …'`, logged as nats-server does; the connection stays. */
  private permissionViolation(kind: ProtocolErrorKind, what: string, subject: string, logTail = "", queue?: string): void {
    this.server.stats.permissionViolations++;
    const text = queue === undefined ? formatError(kind, subject) : formatError(kind, subject, queue);
    const op = kind === "PublishViolation" || kind === "ReplyViolation" ? "Publish" : "Subscription";
    this.server.log.error(`${this.logPrefix} - ${op} Violation - User ${JSON.stringify(this.authUser)}, ${what} ${JSON.stringify(subject)}${logTail}`);
    this.server.events?.permissionViolation(this, kind, subject, queue);
    this.lastViolation = text;
    this.queueBytes(errFrame(text));
  }

  closeWithError(kind: ProtocolErrorKind, reason: string): void {
    this.close(reason, ProtocolError[kind].text);
  }

  /**
   * Closes the connection: an optional -ERR goes out first, then whatever is queued is
   * written (best effort), subscriptions are removed and the transport is closed.
   */
  close(reason: string, errText: string | null, detail?: string): void {
    if (this.closed) return;
    if (errText !== null) {
      this.queueBytes(errFrame(errText));
    }
    this.closed = true;
    this.closeReason = reason;
    this.credentials = null;
    this.verifiedSecret = null;
    this.parser.stop();
    this.releaseOutput();
    this.server.removeConnection(this); // first: the closed-connection snapshot keeps the subscription list
    for (const sub of this.subscriptions.values()) this.account.sublist.remove(sub);
    const removedSids = this.server.tracing ? [...this.subscriptions.values()].map((s) => s.sid) : null; // traced after the close line, as nats-server
    this.subscriptions.clear();
    this.account.connections--;
    this.server.events?.clientDisconnected(this);
    this.memo.clear();
    this.transport.close();
    // Quoted as Go's %q would (nats-server's form): a name with a line break must not forge log lines.
    const who = this.name || this.lang ? ` - ${JSON.stringify([this.version && `v${this.version}`, this.lang, this.name].filter(Boolean).join(":"))}` : "";
    this.server.log.debug(`${this.logPrefix}${who} - Client connection closed: ${reason}${detail ? ` (${detail})` : ""}`);
    if (removedSids !== null) for (const sid of removedSids) this.server.log.trace(`${this.logPrefix} - ${delSubTrace(sid)}`);
  }

  /** The peer went away (or the transport failed). */
  onTransportClosed(): void {
    this.transport.blocked = true; // nothing more can be written
    this.close(CloseReason.ClientClosed, null);
  }
}

/** The number of tokens of a subject (`a.b.c` has 3). */
function tokenCount(subject: string): number {
  let n = 1;
  for (let i = 0; i < subject.length; i++) if (subject.charCodeAt(i) === 46 /* . */) n++;
  return n;
}

/** `PUB|HPUB <subject> [reply] <sizes>\r\n<payload>\r\n` for a mapped subject, the rest from the original PUB. */
function remapFrame(subject: string, buf: Buffer, replyStart: number, replyEnd: number, headerSize: number, payloadStart: number, payloadEnd: number): Buffer {
  const total = payloadEnd - payloadStart;
  const reply = replyStart >= 0 ? ` ${buf.latin1Slice(replyStart, replyEnd)}` : "";
  const line = `${headerSize >= 0 ? "HPUB" : "PUB"} ${subject}${reply} ${headerSize >= 0 ? `${headerSize} ${total}` : total}\r\n`;
  const lineLength = Buffer.byteLength(line, "latin1");
  const frame = Buffer.allocUnsafe(lineLength + total + 2);
  frame.write(line, 0, "latin1");
  buf.copy(frame, lineLength, payloadStart, payloadEnd);
  frame[lineLength + total] = 13;
  frame[lineLength + total + 1] = 10;
  return frame;
}

/** Runs this short are copied by a loop: for a delivery's head and a small message's tail, cheaper than a native call. */
const SHORT_COPY_BYTES = 32;

/** Copies src[start, end) to dst at `at`; returns where the copy ends. */
function copyBytes(src: Buffer, start: number, end: number, dst: Buffer, at: number): number {
  const length = end - start;
  if (length > SHORT_COPY_BYTES) return at + src.copy(dst, at, start, end);
  for (let k = 0; k < length; k++) dst[at + k] = src[start + k]!;
  return at + length;
}
