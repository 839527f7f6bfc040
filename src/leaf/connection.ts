// One leafnode connection: to a hub this server dialed (solicited), or from a leaf node that dialed
// this server's leafnode port (accepted). Both speak the same protocol (./protocol.ts) once open.
//
// A LeafConnection is a Subscriber, as a cluster route is: the other side's interest (LS+) lives in the
// Sublist as LeafSubscriptions whose client is the connection, so a local PUB finds the leaf connections
// that want it in the same match as its local subscribers, and deliverToMatches hands it over like to a
// client. `isRoute` is true: a queue group prefers local members and falls back to the other side
// (weighted by member counts, one pick among all remote sides). In a cluster, a leaf node attached to
// this server (we are its hub) counts as local: its interest crosses the routes and messages from a
// route are passed on to it; a hub we are a leaf of does neither (every node has its own link to it).
//
// Roles, as nats-server's: the side that dialed is the spoke unless its remote says `hub: true` (or an
// accepted leaf says is_hub). A spoke tells its hub only about local interest (clients, internal
// clients, and leaf nodes attached to this server); a hub tells a leaf about everything it has
// (local, routes, other leaf nodes) except the leaf's own and what came from the leaf's own cluster.
// JetStream API, KV and object store subjects cross in neither direction (nats-server's denyAllClientJs).
//
// Accounts: a connection carries one account of this server (`account`): a solicited one its remote's
// (`account`, default $G), an accepted one its user's, bound when the CONNECT is accepted (bindAccount,
// which enforces the account's max_leafnodes). The other side's interest lives in that account's
// Sublist, its messages are matched there, and only that account's interest is told to it.
//
// Invariants:
// - One frame per message per connection: several matches of one message (foo.* and foo.>, or a plain
//   and a queue subscription) give one LMSG, naming every queue group picked (delivery.seq tells).
// - Frames leave in the order queued: an LS+ queued before a message reaches the other side before it.
// - `smap` holds exactly what the other side was told (key → count); LS+/LS- go out on 0↔1 changes
//   (every change for a queue group: its weight).
// - A closed connection's LeafSubscriptions are out of the Sublist before anything else happens.
import { Link } from "../link.ts";
import { SubjectMemo } from "../subjects/subject-memo.ts";
import { delivery } from "../router.ts";
import { Subscription } from "../subscription.ts";
import type { Subscriber } from "../subscriber.ts";
import { isValidQueueName, isValidSubscribeSubject, subjectIsLiteral } from "../subjects/subject.ts";
import type { Server } from "../server.ts";
import type { Account } from "../accounts/account.ts";
import type { AccountMappings } from "../accounts/mappings.ts";
import { connectionLogPrefix } from "../log.ts";
import type { ProtocolTracer } from "../protocol/parser.ts";
import { delSubTrace, inOpTrace, outFrameTraces, outOpTrace, payloadTrace } from "../protocol/trace.ts";
import { redactSecrets } from "../auth/redact.ts";
import { LeafParser, type LeafProtocolHandler } from "./parser.ts";
import { deliverFromLeaf } from "./deliver.ts";
import { hasTraceHeader } from "../trace/headers.ts";
import { SKIP, startForwardedTrace, tracedResult } from "../trace/tracer.ts";
import { frame, presentAll } from "../jetstream/deliver.ts";
import {
  LeafError, connectLine, errLine, infoLine, interestLine, isLeafDenied, isLeafDeniedBytes,
  type LeafConnect, type LeafInfo,
} from "./protocol.ts";
import { parseVersion, versionAtLeast } from "./options.ts";

/** The other side's interest in a subject (or subject and queue group), as a subscription of the connection. */
export class LeafSubscription extends Subscription {
  /** For a queue group: how many members the other side has (what deliverToMatches weighs). */
  weight = 1;
  constructor(
    client: LeafConnection,
    subject: string,
    queue: string | null,
    key: string,
    /** The cluster the interest came from (the other side's cluster name, "" if none). */
    readonly origin: string,
  ) {
    super(client, subject, queue, key, subjectIsLiteral(subject));
  }
}

/** How bytes leave and the socket closes (TCP or WebSocket); reads arrive through LeafConnection.onRead. */
export interface LeafSocket {
  readonly kind: "tcp" | "websocket";
  readonly remoteAddress: string;
  readonly remotePort: number;
  /** Writes buf[start, end); returns the bytes taken (fewer: blocked until onDrain). */
  write(buf: Buffer, start: number, end: number): number;
  end(): void;
  /** TCP only: the connection runs over TLS (./tls.ts). */
  readonly tls?: boolean;
}

/** What the leafnodes manager (./leafnodes.ts) does for a connection. */
export interface LeafOwner {
  readonly server: Server;
  /** This server's loop detection subject ($LDS.<random>). */
  readonly lds: string;
  /** The cluster name this server gives leaf nodes and hubs ("" when not clustered). */
  clusterName(): string;
  /** leafnodes { min_version }: the oldest version an accepted leaf node may be ("" = any). */
  minVersion(): string;
  /** INFO for an accepted connection. */
  infoFor(conn: LeafConnection, connectInfo: boolean): LeafInfo;
  /** CONNECT for a solicited one (after the hub's INFO, and TLS if any). */
  connectFor(conn: LeafConnection, info: LeafInfo): LeafConnect;
  /**
   * A solicited connection got the hub's first INFO: starts TLS when the remote or the hub wants it
   * (./tls.ts) and returns true, then calls conn.tlsEstablished (or closes the connection) when done.
   */
  solicitTls(conn: LeafConnection, info: LeafInfo): boolean;
  /** Checks an accepted leaf's credentials: the account it is granted, else the failure log line. */
  authorize(conn: LeafConnection, connect: LeafConnect): LeafVerdict | Promise<LeafVerdict>;
  /** The connection is open: interest flows, messages flow. */
  opened(conn: LeafConnection): void;
  closed(conn: LeafConnection, reason: string): void;
  /** A hub told us its other URLs (leafnode_urls / ws_connect_urls). */
  hubUrls(conn: LeafConnection, info: LeafInfo): void;
  /** An LS+ for a queue group we have changes its weight (member count). */
  weightChanged(sub: LeafSubscription, weight: number): void;
  /** The other side reported a loop, or a cluster name clash: the remote waits before redialing. */
  delayReconnect(conn: LeafConnection, ms: number): void;
}

/** An accepted leaf's credentials are good: the account it binds to, and the -ERR if that account has no room for it. */
export interface LeafGrant {
  readonly account: Account;
  /**
   * As nats-server: a user of the clients' authentication (the accounts block) over max_leafnodes gets
   * 'maximum account active connections exceeded'; one of leafnodes.authorization (or an anonymous
   * leaf) an 'Authorization Violation'.
   */
  readonly fullError: string;
}

/** The outcome of authorize: a grant, or the failure log line. */
export type LeafVerdict = LeafGrant | string;

export const LeafState = {
  /** Solicited: waiting for the hub's INFO. Accepted: INFO sent, waiting for CONNECT. */
  HANDSHAKE: 0,
  /** Solicited: CONNECT sent, waiting for the hub's INFO with connect_info. Accepted: checking credentials. */
  CONNECTING: 1,
  OPEN: 2,
  CLOSED: 3,
} as const;
export type LeafState = (typeof LeafState)[keyof typeof LeafState];

/** When a loop is detected, the dialing side waits this long before dialing again (nats-server's). */
export const LOOP_RECONNECT_DELAY_MS = 30_000;

/** Reads held while an accepted leaf's credentials are checked (bcrypt is asynchronous): bounded. */
const MAX_HELD_BYTES = 4 * 1024 * 1024;
/** nats-server's leafNodeWaitBeforeClose: how long a leaf below min_version is held before it is closed. */
const LEAF_WAIT_BEFORE_CLOSE_MS = 5_000;

let nextLid = 1;

/** JetStream ack replies: a delivery carried as `<reply>@<subject>` starts so (deliverJetStream). */
const JS_ACK_PREFIX = Buffer.from("$JS.ACK.", "latin1");

export class LeafConnection extends Link implements Subscriber, LeafProtocolHandler, ProtocolTracer {
  readonly isRoute = true;
  readonly isLeaf = true;
  readonly lid = nextLid++;
  readonly startedAt = Date.now();
  state: LeafState = LeafState.HANDSHAKE;
  closeReason = "";
  /** The other side supports headers (its INFO or CONNECT said so); otherwise headers are stripped. */
  headers = false;
  /** This side plays the spoke (sends only local interest; messages from the hub do not go to routes). */
  isSpoke: boolean;
  /** A spoke of a --procs worker: the link of every worker (src/subscriber.ts). */
  sharedHubLink = false;
  /** The other server's name and cluster ("" when it has none). */
  remoteServer = "";
  remoteCluster = "";
  remoteId = "";
  /** The other side's JetStream domain (its INFO or CONNECT; "" when none). */
  remoteDomain = "";
  /**
   * `$JS.<our domain>.API.` as bytes when the other side is another JetStream domain: our domain's API
   * requests do not leave through this link (nats-server's deny of outgoing `$JS.<domain>.API.>`); else null.
   */
  denyOutgoingApi: Buffer | null = null;
  /** The nonce of the INFO (sent when accepted, received when solicited). */
  nonce = "";
  /** A TLS handshake is under way (its own deadline; the handshake timers wait for it). */
  tlsPending = false;
  /** Solicited: when CONNECT went out (the hub's INFO with connect_info is due within a deadline). */
  connectSentAt = 0;
  /** The account this link carries (see the header); $G until an accepted leaf's CONNECT binds another. */
  account: Account;
  /** Counted in account.leafnodes (undone at close). */
  private counted = false;
  /** The other side's interest: key (subject, or `subject queue`) → its subscription here. */
  readonly subs = new Map<string, LeafSubscription>();
  /** What the other side was told of our interest: key → count (queue groups: total weight). */
  readonly smap = new Map<string, number>();
  readonly parser: LeafParser;

  protected blocked = false;
  // The LMSG written last: its message (delivery.seq), where it starts (pending bytes before it), its
  // length, and the queue groups it names (another group of the same message rewrites it).
  private lastSeq = -1;
  private lastFramePendingStart = 0;
  private lastFrameLength = 0;
  private readonly lastQueues: string[] = [];

  private readonly memo = new SubjectMemo<Subscription>();

  lastReadAt = Date.now();
  lastWriteAt = Date.now();
  pingsOut = 0;
  nextPingAt = 0;
  /** The last PING's round trip (ms; -1 before the first PONG), for /leafz; when the PING now out left. */
  rttMs = -1;
  private pingSentAt = 0;
  inMsgs = 0;
  inBytes = 0;

  constructor(
    private readonly owner: LeafOwner,
    readonly socket: LeafSocket,
    /** True when this server dialed (the connection belongs to a configured remote). */
    readonly solicited: boolean,
    /** For a solicited connection: the remote's `hub: true` (this side is then not the spoke). */
    remoteIsHubSide = false,
    /** For a solicited connection: the remote's account. */
    account: Account | null = null,
  ) {
    super();
    this.isSpoke = solicited && !remoteIsHubSide;
    this.sharedHubLink = this.isSpoke && owner.server.options.procs > 1;
    this.account = account ?? owner.server.accounts.global;
    if (solicited) {
      this.account.leafnodes++;
      this.counted = true;
    }
    const o = owner.server.options;
    this.parser = new LeafParser(this, Math.max(o.maxPending, o.maxPayload), Math.max(o.maxControlLine, 64 * 1024));
  }

  get server(): Server {
    return this.owner.server;
  }

  /** `ip:port - lid:N` as nats-server prefixes leafnode log lines. */
  get logPrefix(): string {
    return connectionLogPrefix(this.socket.remoteAddress, this.socket.remotePort, "lid", this.lid);
  }

  // ---- input -------------------------------------------------------------------------------

  onRead(data: Buffer): void {
    if (this.closed) return;
    this.lastReadAt = Date.now();
    const server = this.server;
    this.parser.tracer = server.tracing ? this : null; // -V: each op traced as the parser reads it
    server.inRead = true;
    try {
      this.parser.feed(data);
    } finally {
      server.inRead = false;
    }
    if (this.parser.heldBytes > MAX_HELD_BYTES) this.close("too much input while authorizing", null);
    server.flushDirty();
  }

  onInfo(json: string): void {
    let info: LeafInfo;
    try {
      info = JSON.parse(json) as LeafInfo;
      if (info === null || typeof info !== "object" || Array.isArray(info)) throw new Error("not an object");
    } catch {
      return this.protocolError(`malformed INFO: ${json.slice(0, 64)}`);
    }
    if (!this.solicited) return; // nats-server ignores INFO from a leaf (but compression negotiation, which natter has not)
    if (this.state === LeafState.HANDSHAKE) {
      // A hub's first INFO has a client id and leafnode_urls: anything else is another kind of port.
      if (!(typeof info.client_id === "number" && info.client_id > 0) || !Array.isArray(info.leafnode_urls)) {
        this.server.log.error(`${this.logPrefix} - ${LeafError.ConnectedToWrongPort}`);
        return this.close("wrong port", null);
      }
      this.nonce = typeof info.nonce === "string" ? info.nonce : "";
      this.headers = info.headers === true && !this.server.options.noHeaderSupport;
      this.remoteId = String(info.server_id ?? "");
      this.remoteServer = String(info.server_name || info.server_id || "");
      this.remoteCluster = typeof info.cluster === "string" ? info.cluster : "";
      this.remoteDomain = typeof info.domain === "string" ? info.domain : "";
      this.owner.hubUrls(this, info);
      this.state = LeafState.CONNECTING;
      if (this.owner.solicitTls(this, info)) {
        this.tlsPending = true;
        this.pendingInfo = info;
        return;
      }
      this.sendConnect(info);
      return;
    }
    this.owner.hubUrls(this, info);
    if (this.state === LeafState.CONNECTING && info.connect_info === true) this.open();
  }

  private pendingInfo: LeafInfo | null = null;

  /** Solicited, after TLS: the handshake with the hub succeeded, CONNECT goes out now. */
  tlsEstablished(): void {
    const info = this.pendingInfo;
    this.tlsPending = false;
    this.pendingInfo = null;
    if (this.closed || info === null) return;
    this.sendConnect(info);
    this.flush();
  }

  private sendConnect(info: LeafInfo): void {
    this.queueBytes(connectLine(this.owner.connectFor(this, info)));
    this.connectSentAt = Date.now();
    // Old servers (before info_on_connect) send no INFO back: the connection is open once CONNECT is out.
    if (info.info_on_connect !== true) this.open();
  }

  onConnect(json: string): void {
    if (this.solicited || this.state !== LeafState.HANDSHAKE) return; // a CONNECT from a hub, or a second one: ignored
    let connect: LeafConnect;
    try {
      connect = JSON.parse(json) as LeafConnect;
      if (connect === null || typeof connect !== "object" || Array.isArray(connect)) throw new Error("not an object");
    } catch {
      return this.close(`malformed CONNECT: ${json.slice(0, 64)}`, null);
    }
    // A client sends `lang`; a leaf node never does.
    if (typeof connect.lang === "string" && connect.lang !== "") {
      this.server.log.error(`${this.logPrefix} - ${LeafError.WrongPort}`);
      return this.close("wrong port", LeafError.WrongPort);
    }
    if (typeof connect.gateway === "string" && connect.gateway !== "") {
      const text = `Rejecting connection from gateway ${JSON.stringify(connect.gateway)} on the leafnode port`;
      this.server.log.error(`${this.logPrefix} - ${text}`);
      return this.close("wrong gateway", text);
    }
    const ours = this.owner.clusterName();
    if (ours !== "" && connect.cluster === ours) {
      this.server.log.error(`${this.logPrefix} - ${LeafError.SameClusterName}`);
      return this.close("cluster names identical", LeafError.SameClusterName);
    }
    const min = this.owner.minVersion();
    if (min !== "") {
      const theirs = parseVersion(typeof connect.version === "string" ? connect.version : "");
      if (theirs === null || !versionAtLeast(theirs, parseVersion(min)!)) {
        // As nats-server: the error, then the connection is held a while before it is closed, so that the
        // leaf does not redial at once.
        const text = `connection rejected since minimum version required is ${JSON.stringify(min)}`;
        this.server.log.error(`${this.logPrefix} - ${text}`);
        this.queueBytes(errLine(text));
        this.state = LeafState.CONNECTING;
        this.parser.pause();
        const timer = setTimeout(() => this.close("Minimum Version Required", null), LEAF_WAIT_BEFORE_CLOSE_MS);
        timer.unref?.();
        return;
      }
    }
    this.state = LeafState.CONNECTING;
    const verdict = this.owner.authorize(this, connect);
    if (verdict instanceof Promise) {
      // bcrypt: nothing after the CONNECT is parsed before it is decided (held by the parser, then replayed).
      this.parser.pause();
      verdict.then(
        (v) => this.authorized(connect, v, true),
        (error: Error) => this.authorized(connect, `authentication error: ${error.message}`, true),
      );
      return;
    }
    this.authorized(connect, verdict, false);
  }

  private authorized(connect: LeafConnect, verdict: LeafVerdict, resume: boolean): void {
    if (this.closed) return;
    if (typeof verdict === "string") {
      this.server.log.error(`${this.logPrefix} - ${verdict}`);
      this.server.stats.authFailures++;
      return this.close("Authentication Failure", LeafError.AuthorizationViolation);
    }
    if (!this.bindAccount(verdict)) return;
    this.headers = connect.headers === true && !this.server.options.noHeaderSupport;
    this.remoteId = typeof connect.server_id === "string" ? connect.server_id : "";
    this.remoteServer = typeof connect.name === "string" ? connect.name : this.remoteId;
    this.remoteCluster = typeof connect.cluster === "string" ? connect.cluster : "";
    this.remoteDomain = typeof connect.domain === "string" ? connect.domain : "";
    if (connect.is_hub === true) {
      this.isSpoke = true; // the other side declared itself the hub
      this.sharedHubLink = this.server.options.procs > 1;
    }
    this.queueBytes(infoLine(this.owner.infoFor(this, true)));
    this.open();
    if (resume) {
      const server = this.server;
      server.inRead = true;
      try {
        this.parser.resume();
      } finally {
        server.inRead = false;
      }
      server.flushDirty();
    }
  }

  /** Binds an accepted leaf to its account, unless the account is at max_leafnodes (then closes with the grant's -ERR). */
  private bindAccount(grant: LeafGrant): boolean {
    const account = grant.account;
    if (account.leafnodesFull) {
      this.server.log.error(`${this.logPrefix} - ${grant.fullError} (account ${JSON.stringify(account.name)}: max_leafnodes ${account.limits.maxLeafnodes})`);
      this.close("Maximum Account Connections Exceeded", grant.fullError);
      return false;
    }
    this.account = account;
    account.leafnodes++;
    this.counted = true;
    return true;
  }

  onPing(): void {
    if (!this.solicited && this.state === LeafState.HANDSHAKE && this.notOpen("PING")) return; // CONNECT comes first
    this.queueBytes(PONG);
  }

  onPong(): void {
    this.pingsOut = 0;
    if (this.pingSentAt > 0) {
      this.rttMs = performance.now() - this.pingSentAt;
      this.pingSentAt = 0;
    }
  }

  /**
   * As nats-server: an -ERR from the other side is logged and the connection stays (the side that
   * refuses something closes it itself), but a loop report closes it here too; after a loop or a
   * cluster name clash the dialing side waits 30 s before dialing again.
   */
  onErr(text: string): void {
    this.server.log.error(`${this.logPrefix} - Leafnode Error '${text}'`);
    if (text.includes("Loop detected")) {
      this.owner.delayReconnect(this, LOOP_RECONNECT_DELAY_MS);
      this.close(`remote error: ${text}`, null);
    } else if (text.includes(LeafError.SameClusterName)) {
      this.owner.delayReconnect(this, LOOP_RECONNECT_DELAY_MS);
    }
  }

  onParseError(errText: string | null, detail: string): void {
    if (!this.solicited && this.state === LeafState.HANDSHAKE) {
      // Before CONNECT, as nats-server: anything else is an authorization violation.
      this.server.log.error(`${this.logPrefix} - authentication error (${detail})`);
      return this.close("Authentication Failure", LeafError.AuthorizationViolation);
    }
    this.server.log.error(`${this.logPrefix} - Leafnode protocol error: ${detail}`);
    this.close(`protocol error: ${detail}`, errText);
  }

  /** An op other than INFO/CONNECT/PING/PONG before the connection is open. */
  private notOpen(op: string): boolean {
    if (this.state === LeafState.OPEN) return false;
    if (!this.solicited && this.state === LeafState.HANDSHAKE) {
      this.server.log.error(`${this.logPrefix} - authentication error (${op} before CONNECT)`);
      this.close("Authentication Failure", LeafError.AuthorizationViolation);
      return true;
    }
    if (this.solicited && this.state === LeafState.CONNECTING) return false; // interest may follow the hub's INFO at once
    this.protocolError(`${op} before the connection is open`);
    return true;
  }

  onLeafSub(subject: string, queue: string | null, weight: number): void {
    if (this.notOpen("LS+")) return;
    if (subject === this.owner.lds) return this.loopDetected();
    if (!isValidSubscribeSubject(subject) || (queue !== null && !isValidQueueName(queue))) {
      this.server.log.error(`${this.logPrefix} - Invalid leafnode subscription ${JSON.stringify(subject.slice(0, 64))}`);
      this.queueBytes(errLine("Invalid Subscription"));
      return;
    }
    if (isLeafDenied(subject)) {
      this.server.log.debug(`${this.logPrefix} - Not importing leafnode interest in ${JSON.stringify(subject)}: JetStream subjects stay on each side`);
      return;
    }
    const key = queue === null ? subject : `${subject} ${queue}`;
    const existing = this.subs.get(key);
    if (existing !== undefined) {
      if (queue !== null && existing.weight !== weight) this.owner.weightChanged(existing, weight);
      return;
    }
    const sub = new LeafSubscription(this, subject, queue, key, this.remoteCluster);
    sub.weight = queue === null ? 1 : Math.max(1, weight);
    this.subs.set(key, sub);
    this.account.sublist.insert(sub); // the leafnodes manager passes it on to the other leaf connections
  }

  onLeafUnsub(subject: string, queue: string | null): void {
    if (this.notOpen("LS-")) return;
    const key = queue === null ? subject : `${subject} ${queue}`;
    const existing = this.subs.get(key);
    if (existing === undefined) return;
    this.subs.delete(key);
    this.account.sublist.remove(existing);
    if (this.server.tracing) this.server.log.trace(`${this.logPrefix} - ${delSubTrace(key)}`);
  }

  // Hot path: no allocation beyond the subject string on a memo miss.
  onLeafMsg(
    buf: Buffer,
    subjectStart: number,
    subjectEnd: number,
    replyStart: number,
    replyEnd: number,
    queuesFrom: number,
    queuesTo: number,
    headerSize: number,
    payloadStart: number,
    payloadEnd: number,
    tailStart: number,
  ): void {
    if (this.state !== LeafState.OPEN && this.notOpen("LMSG")) return;
    if (isLeafDeniedBytes(buf, subjectStart, subjectEnd)) return; // JetStream subjects stay on each side
    const size = payloadEnd - payloadStart;
    this.inMsgs++;
    this.inBytes += size;
    const stats = this.server.stats;
    stats.inMsgs++;
    stats.inBytes += size;
    // Account mappings apply to what leaf links bring as to what clients publish (nats-server's parser maps
    // both): a JetStream domain's `$JS.<domain>.API.…` from the other side reaches our API this way.
    // A JetStream delivery (`<reply>@<deliver subject>`, see deliverAs): routed by its deliver subject.
    // (Neither path is traced: a traced message takes the plain path below.)
    if (replyStart >= 0 && buf[replyStart] === 36 /* $ */ && this.deliverJetStream(buf, subjectStart, subjectEnd, replyStart, replyEnd, headerSize, payloadStart, payloadEnd)) return;
    const mappings = this.account.mappings;
    if (mappings !== null && mappings.mayMatch(buf[subjectStart]!) && this.deliverMapped(mappings, buf, subjectStart, subjectEnd, replyStart, replyEnd, headerSize, payloadStart, payloadEnd)) return;
    // Message tracing (src/trace): this server's events for a traced message, with the hop the sender gave it.
    const trace = headerSize > 0 && hasTraceHeader(buf, payloadStart, payloadStart + headerSize)
      ? startForwardedTrace(this.server, this, this.account, buf, subjectStart, subjectEnd, payloadStart, headerSize, size)
      : null;
    if (trace === SKIP) return;
    let result = this.memo.match(this.account.sublist, buf, subjectStart, subjectEnd);
    if (trace !== null) result = tracedResult(result, trace, this, false, this);
    const delivered = deliverFromLeaf(
      result, this, this.parser.tokenStart, this.parser.tokenEnd, queuesFrom, queuesTo,
      buf, subjectStart, subjectEnd, replyStart, replyEnd, headerSize, payloadStart, payloadEnd, tailStart,
    );
    if (trace !== null) trace.release();
    if (!delivered) stats.noInterestMsgs++;
  }

  /**
   * Delivers a message whose subject an account mapping changes, on the mapped subject; false when none
   * applies. The queue names of the LMSG were for the original subject: the mapped one goes to plain
   * subscriptions (the domain mappings' destinations are the JetStream API's own, plain, subscriptions).
   */
  private deliverMapped(
    mappings: AccountMappings, buf: Buffer, subjectStart: number, subjectEnd: number, replyStart: number, replyEnd: number,
    headerSize: number, payloadStart: number, payloadEnd: number,
  ): boolean {
    const mapped = mappings.select(buf.latin1Slice(subjectStart, subjectEnd));
    if (mapped === null) return false;
    const replyLength = replyStart >= 0 ? replyEnd - replyStart : 0;
    // subject, a space, the reply, a space, the message: laid out for delivery without a frame tail (-1).
    const out = Buffer.allocUnsafe(mapped.length + 1 + replyLength + 1 + payloadEnd - payloadStart);
    let at = out.write(mapped, 0, "latin1");
    out[at++] = 32;
    const newReplyStart = replyStart >= 0 ? at : -1;
    if (replyStart >= 0) at += buf.copy(out, at, replyStart, replyEnd);
    const newReplyEnd = replyStart >= 0 ? at : -1;
    out[at++] = 32;
    const newPayloadStart = at;
    buf.copy(out, at, payloadStart, payloadEnd);
    const result = this.memo.match(this.account.sublist, out, 0, mapped.length);
    const delivered = deliverFromLeaf(
      result, this, this.parser.tokenStart, this.parser.tokenEnd, 0, 0,
      out, 0, mapped.length, newReplyStart, newReplyEnd, headerSize, newPayloadStart, out.length, -1,
      // The mapped subject's queue groups (e.g. the direct-get group `_sys_` behind `$JS.<domain>.API`) were
      // never named by the other side: as nats-server does for a message without a queue list, each gets it.
      true,
    );
    if (!delivered) this.server.stats.noInterestMsgs++;
    return true;
  }

  /**
   * DeliverAsCarrier: a JetStream delivery (routed by a deliver subject, showing the message's own subject)
   * crosses the link as nats-server sends it to routes and leaf nodes: `LMSG <deliver subject>
   * <reply>@<subject>`; the other side routes it by the deliver subject and shows the subject after the `@`
   * (deliverJetStream). Without a reply there is nowhere to carry the subject: it shows the deliver subject.
   */
  deliverAs(
    sub: Subscription, deliverSubject: string, buf: Buffer, subjectStart: number, subjectEnd: number, replyStart: number, replyEnd: number,
    headerSize: number, payloadStart: number, payloadEnd: number, _tailStart: number, _publisher: Subscriber | null,
  ): void {
    if (this.state !== LeafState.OPEN) return;
    if (sub.queue !== null) {
      // A queue group (rare for a deliver subject): the general path, which names the groups.
      const reply = replyStart >= 0 ? `${buf.latin1Slice(replyStart, replyEnd)}@${buf.latin1Slice(subjectStart, subjectEnd)}` : null;
      const headers = headerSize >= 0 ? buf.subarray(payloadStart, payloadStart + headerSize) : null;
      const f = frame(deliverSubject, reply, headers, buf.subarray(payloadStart + Math.max(headerSize, 0), payloadEnd));
      this.deliver(sub, f.buf, f.subjectStart, f.subjectEnd, f.replyStart, f.replyEnd, f.headerSize, f.payloadStart, f.payloadEnd, -1);
      return;
    }
    // The common case (a mirror's or source's feed, a push consumer across the link): one frame written
    // straight into the outbound buffer.
    this.deliverParts(
      sub, deliverSubject, buf.latin1Slice(subjectStart, subjectEnd), replyStart >= 0 ? buf.latin1Slice(replyStart, replyEnd) : null,
      headerSize >= 0 ? buf.subarray(payloadStart, payloadStart + headerSize) : null, buf.subarray(payloadStart + Math.max(headerSize, 0), payloadEnd),
    );
  }

  /**
   * PartsCarrier: the frame deliverAs writes, composed from a delivery's parts (src/jetstream/deliver.ts
   * calls this when only leaf links listen on the deliver subject: no frame is built just to be copied).
   * One frame per message, however many of this link's subscriptions matched.
   */
  deliverParts(_sub: Subscription, deliverSubject: string, subject: string, reply: string | null, headers: Buffer | null, payload: Buffer): void {
    if (this.state !== LeafState.OPEN || delivery.seq === this.lastSeq) return;
    if (this.frameTracePending) this.traceLastFrame();
    this.lastSeq = delivery.seq;
    this.lastQueues.length = 0;
    const sent = this.headers ? headers : null; // a link without headers gets the message without them
    let line = sent !== null ? "HMSG " : "LMSG ";
    line += deliverSubject;
    if (reply !== null) line += ` ${reply}@${subject}`;
    line += sent !== null ? ` ${sent.length} ${sent.length + payload.length}\r\n` : ` ${payload.length}\r\n`;
    const lineLength = line.length; // latin1: one byte a char
    const length = lineLength + (sent?.length ?? 0) + payload.length + 2;
    const outbound = this.outbound;
    let at = outbound.reserve(length);
    const out = outbound.buf;
    this.lastFramePendingStart = at - outbound.head;
    this.lastFrameLength = length;
    at += out.latin1Write(line, at, lineLength);
    if (sent !== null) at += sent.copy(out, at);
    at += payload.copy(out, at);
    out[at++] = 13;
    out[at] = 10;
    this.frameTracePending = this.server.tracing;
    this.countOut((headers?.length ?? 0) + payload.length);
    this.afterQueue();
  }

  /** An LMSG whose reply is `$JS.ACK.…@<subject>`: routed by its subject (the deliver subject), showing the one after `@`. */
  private deliverJetStream(
    buf: Buffer, subjectStart: number, subjectEnd: number, replyStart: number, replyEnd: number,
    headerSize: number, payloadStart: number, payloadEnd: number,
  ): boolean {
    if (replyEnd - replyStart < 10 || buf.compare(JS_ACK_PREFIX, 0, 8, replyStart, replyStart + 8) !== 0) return false;
    const at = buf.lastIndexOf(64 /* @ */, replyEnd - 1);
    if (at < replyStart || at === replyEnd - 1) return false;
    const route = buf.latin1Slice(subjectStart, subjectEnd);
    const result = this.account.sublist.match(route);
    if (result.plain.length === 0 && result.queues.length === 0) {
      this.server.stats.noInterestMsgs++;
      return true;
    }
    const headers = headerSize >= 0 ? buf.subarray(payloadStart, payloadStart + headerSize) : null;
    const f = frame(buf.latin1Slice(at + 1, replyEnd), buf.latin1Slice(replyStart, at), headers, buf.subarray(payloadStart + Math.max(headerSize, 0), payloadEnd));
    presentAll(result, route, f.buf, f.subjectStart, f.subjectEnd, f.replyStart, f.replyEnd, f.headerSize, f.payloadStart, f.payloadEnd, f.tailStart, this, this);
    return true;
  }

  private loopDetected(): void {
    const delay = LOOP_RECONNECT_DELAY_MS;
    const text = LeafError.LoopDetected(this.account.name, delay / 1000);
    this.server.log.error(`${this.logPrefix} - ${text}`);
    this.owner.delayReconnect(this, delay);
    this.close("loop detected", text);
  }

  // ---- open --------------------------------------------------------------------------------

  private open(): void {
    if (this.closed || this.state === LeafState.OPEN) return;
    this.state = LeafState.OPEN;
    this.nextPingAt = Date.now() + 1000; // as nats-server: a first PING soon after the connection is up
    this.owner.opened(this);
  }

  /** Sends our whole interest (the smap, computed by the manager) and the loop detection subject. */
  sendInitialInterest(entries: Iterable<[string, number]>): void {
    let text = "";
    for (const [key, n] of entries) {
      this.smap.set(key, n);
      text += interestLine(key, key.includes(" "), n);
      if (text.length > 32 * 1024) {
        this.queueBytes(Buffer.from(text, "latin1"));
        text = "";
      }
    }
    const lds = this.owner.lds;
    this.smap.set(lds, 1);
    text += interestLine(lds, false, 1);
    this.queueBytes(Buffer.from(text, "latin1"));
  }

  /**
   * One of our subscriptions came or went (delta ±count, or a weight change of a queue group):
   * updates smap and tells the other side when it changes what it knows.
   */
  updateInterest(key: string, isQueue: boolean, delta: number): void {
    if (this.state !== LeafState.OPEN || delta === 0) return;
    const before = this.smap.get(key) ?? 0;
    if (delta < 0 && before === 0) return;
    const after = before + delta;
    if (after > 0) this.smap.set(key, after);
    else this.smap.delete(key);
    if (isQueue || (before <= 0) !== (after <= 0)) this.queueBytes(Buffer.from(interestLine(key, isQueue, after), "latin1"));
  }

  // ---- output ------------------------------------------------------------------------------

  /** Our own domain's API subjects, when the other side is another domain (denyOutgoingApi). */
  private deniedOutgoing(buf: Buffer, subjectStart: number, subjectEnd: number): boolean {
    const prefix = this.denyOutgoingApi;
    if (prefix === null || subjectEnd - subjectStart <= prefix.length) return false;
    return buf.compare(prefix, 0, prefix.length, subjectStart, subjectStart + prefix.length) === 0;
  }

  /**
   * Queues one message for the other side (called by deliverToMatches and deliverFromLeaf for each of
   * this connection's subscriptions the message matched). The first call writes the LMSG; a later call
   * for the same message only matters for a queue group, which the frame then names too.
   * Hot path for a plain subscription: `LMSG `, the subject, then the tail of the publisher's PUB copied
   * as it is; no allocation.
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
  ): void {
    if (this.state !== LeafState.OPEN) return;
    // A wildcard interest (`>`) matches JetStream subjects too: they stay on this side.
    if (buf[subjectStart] === 36 /* $ */ && (isLeafDeniedBytes(buf, subjectStart, subjectEnd) || this.deniedOutgoing(buf, subjectStart, subjectEnd))) return;
    const queue = sub.queue;
    if (delivery.seq === this.lastSeq) {
      if (queue === null || this.lastQueues.includes(queue)) return; // already on its way
      this.lastQueues.push(queue);
      this.rewriteLastFrame(buf, subjectStart, subjectEnd, replyStart, replyEnd, headerSize, payloadStart, payloadEnd);
      return;
    }
    if (this.frameTracePending) this.traceLastFrame(); // the previous message's frame is final now
    this.lastSeq = delivery.seq;
    this.lastQueues.length = 0;
    const payloadLength = payloadEnd - payloadStart;
    const sendHeaders = headerSize >= 0 && this.headers;
    if (queue === null && tailStart >= 0 && (headerSize < 0 || sendHeaders)) {
      const subjectLength = subjectEnd - subjectStart;
      const tailEnd = payloadEnd + 2;
      const length = 5 + subjectLength + 1 + tailEnd - tailStart;
      const outbound = this.outbound;
      let at = outbound.reserve(length);
      const out = outbound.buf;
      this.lastFramePendingStart = at - outbound.head;
      this.lastFrameLength = length;
      out[at++] = headerSize >= 0 ? 72 /* H */ : 76; /* L */
      out[at++] = 77; /* M */
      out[at++] = 83; /* S */
      out[at++] = 71; /* G */
      out[at++] = 32;
      at += buf.copy(out, at, subjectStart, subjectEnd);
      out[at++] = 32;
      buf.copy(out, at, tailStart, tailEnd);
    } else {
      if (queue !== null) this.lastQueues.push(queue);
      this.writeComposed(buf, subjectStart, subjectEnd, replyStart, replyEnd, headerSize, payloadStart, payloadEnd);
    }
    this.frameTracePending = this.server.tracing; // traced once final: a queue group may still be added to it
    this.countOut(payloadLength);
    this.afterQueue();
  }

  /** `LMSG|HMSG subject [+ reply | |] [queues…] [hdr] size\r\n payload \r\n`, composed (queue groups, a stripped header, a non-canonical PUB). */
  private writeComposed(buf: Buffer, subjectStart: number, subjectEnd: number, replyStart: number, replyEnd: number, headerSize: number, payloadStart: number, payloadEnd: number): void {
    const sendHeaders = headerSize >= 0 && this.headers;
    const bodyStart = headerSize >= 0 && !sendHeaders ? payloadStart + headerSize : payloadStart;
    const queues = this.lastQueues;
    let line = sendHeaders ? "HMSG " : "LMSG ";
    line += buf.latin1Slice(subjectStart, subjectEnd);
    const reply = replyStart >= 0 ? buf.latin1Slice(replyStart, replyEnd) : null;
    if (queues.length > 0) line += reply !== null ? ` + ${reply} ${queues.join(" ")}` : ` | ${queues.join(" ")}`;
    else if (reply !== null) line += ` ${reply}`;
    line += sendHeaders ? ` ${headerSize} ${payloadEnd - payloadStart}\r\n` : ` ${payloadEnd - bodyStart}\r\n`;
    const lineLength = Buffer.byteLength(line, "latin1");
    const length = lineLength + payloadEnd - bodyStart + 2;
    const outbound = this.outbound;
    let at = outbound.reserve(length);
    const out = outbound.buf;
    this.lastFramePendingStart = at - outbound.head;
    this.lastFrameLength = length;
    at += out.write(line, at, "latin1");
    at += buf.copy(out, at, bodyStart, payloadEnd);
    out[at++] = 13;
    out[at] = 10;
  }

  /**
   * The same message picked this connection for one more queue group: take its frame out of the
   * buffer and write it again, naming every group (rare: one message, several matches here).
   */
  private rewriteLastFrame(buf: Buffer, subjectStart: number, subjectEnd: number, replyStart: number, replyEnd: number, headerSize: number, payloadStart: number, payloadEnd: number): void {
    const outbound = this.outbound;
    const start = outbound.head + this.lastFramePendingStart;
    const end = start + this.lastFrameLength;
    if (end > outbound.end) return; // flushed meanwhile (cannot happen within one delivery): keep what went out
    outbound.buf.copy(outbound.buf, start, end, outbound.end); // whatever was queued after it moves up
    outbound.end -= this.lastFrameLength;
    this.writeComposed(buf, subjectStart, subjectEnd, replyStart, replyEnd, headerSize, payloadStart, payloadEnd);
  }

  // ---- protocol trace (-V): nats-server's lines (src/protocol/trace.ts) -----------------------------

  traceInOp(op: string, buf: Buffer, argStart: number, argEnd: number): void {
    let args = argStart < 0 ? null : buf.toString("utf8", argStart, argEnd);
    if (args !== null && op === "CONNECT") args = redactSecrets(args);
    this.server.log.trace(`${this.logPrefix} - ${inOpTrace(op, args)}`);
  }

  traceInPayload(buf: Buffer, start: number, end: number): void {
    this.server.log.trace(`${this.logPrefix} - ${payloadTrace(buf, start, end)}`);
  }

  /** The message frame written last is still to be traced (once no queue group can be added to it). */
  private frameTracePending = false;

  /** `->> [LMSG subject … size]`: the control line of the message frame written last. */
  private traceLastFrame(): void {
    this.frameTracePending = false;
    const outbound = this.outbound;
    const start = outbound.head + this.lastFramePendingStart;
    const lineEnd = outbound.buf.indexOf(13, start);
    this.server.log.trace(`${this.logPrefix} - ${outOpTrace(outbound.buf.latin1Slice(start, lineEnd), null)}`);
  }

  queueBytes(bytes: Buffer): void {
    if (this.closed) return;
    if (this.frameTracePending) this.traceLastFrame();
    if (this.server.tracing) for (const trace of outFrameTraces(bytes)) this.server.log.trace(`${this.logPrefix} - ${trace}`);
    this.outbound.append(bytes);
    this.afterQueue();
  }

  sendPing(): void {
    if (this.pingsOut === 0) this.pingSentAt = performance.now();
    this.pingsOut++;
    this.queueBytes(PING);
  }

  private afterQueue(): void {
    this.flushThisTick();
    // A leaf connection that cannot keep up is cut (and a solicited one dialed again).
    const maxPending = this.server.options.maxPending;
    if (this.outbound.pending > maxPending) this.closeAsSlowConsumer(maxPending, "error");
  }

  /** The last message frame is final once it is written: traced now. */
  protected override beforeWrite(): void {
    if (this.frameTracePending) this.traceLastFrame();
  }

  protected override afterWrite(): void {
    this.lastWriteAt = Date.now();
    this.lastSeq = -1; // the next delivery writes a frame of its own: this one may be on its way
  }

  protected writeToPeer(buf: Buffer, start: number, end: number): number {
    const written = this.socket.write(buf, start, end);
    if (written < end - start) this.blocked = true;
    return written;
  }

  private protocolError(detail: string): void {
    this.server.log.error(`${this.logPrefix} - Leafnode protocol error: ${detail}`);
    this.close(`protocol error: ${detail}`, null);
  }

  /**
   * Closes: an -ERR first if `errText`, what is queued is written (best effort), the other side's
   * interest leaves the Sublist, the socket is closed, the owner is told (a remote then redials).
   */
  close(reason: string, errText: string | null): void {
    if (this.closed) return;
    if (errText !== null) this.queueBytes(errLine(errText));
    this.releaseOutput();
    const wasOpen = this.state === LeafState.OPEN;
    this.closed = true;
    this.closeReason = reason;
    this.state = LeafState.CLOSED;
    this.parser.stop();
    const sublist = this.account.sublist;
    for (const sub of this.subs.values()) sublist.remove(sub);
    if (this.counted) {
      this.counted = false;
      this.account.leafnodes--;
    }
    this.subs.clear();
    this.smap.clear();
    this.memo.clear();
    this.socket.end();
    this.owner.closed(this, reason);
    if (wasOpen) this.server.log.info(`${this.logPrefix} - Leafnode connection closed: ${reason}`);
    else this.server.log.debug(`${this.logPrefix} - Leafnode connection closed before it opened: ${reason}`);
  }

  onSocketClosed(): void {
    this.blocked = true;
    this.close("Client Closed", null);
  }
}

const PING = Buffer.from("PING\r\n");
const PONG = Buffer.from("PONG\r\n");
