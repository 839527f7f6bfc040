// One route: a TCP connection to another natter node of the cluster (protocol: ./protocol.ts).
//
// A route is a Subscriber. The other node's interest lives in this node's Sublist as
// RouteSubscriptions whose client is the route, so a local PUB finds the routes that want it in the
// same match as its local subscribers, and deliverToMatches hands it to them like to a client.
// deliver() appends a MSG frame to the route's outbound buffer, written once per tick with the
// clients' buffers (src/link.ts).
//
// Invariants:
// - One frame per message per route: a message matched by several of the route's subscriptions
//   (foo.* and foo.> from the same node) is sent once; a queue group the origin picked this route
//   for is added to that same frame (delivery.seq identifies the message).
// - A message that came from a route is delivered to local subscribers only (deliverRouted).
// - Frames leave in the order they were queued: an interest change queued before a message reaches
//   the other node before it. So do messages of one publisher: per-publisher order holds.
// - A closed route's subscriptions are out of the Sublist before anything else happens.
// - Accounts never mix: the other node's interest goes into the Sublist of the account it names (by
//   name, agreed at HELLO), a message from it is matched in that account's Sublist only, and a
//   message to it names the account of the subscription it matched. An account this node does not
//   have gets neither interest nor messages.
import { Link } from "../link.ts";
import { SubjectMemo } from "../subjects/subject-memo.ts";
import type { Socket } from "bun";
import { Connection } from "../connection.ts";
import { deliverRouted, delivery, reachedFromRoute, routedRequest } from "../router.ts";
import { isAuditedApiSubject, requestClientInfoJson } from "../request-info.ts";
import { hasTraceHeader } from "../trace/headers.ts";
import { SKIP, startForwardedTrace, tracedResult } from "../trace/tracer.ts";
import { Subscription } from "../subscription.ts";
import type { Subscriber } from "../subscriber.ts";
import type { SublistResult } from "../subjects/sublist.ts";
import { isValidPublishSubject, isValidQueueName, isValidSubscribeSubject } from "../subjects/subject.ts";
import { presentTo, type DeliverAsCarrier } from "../jetstream/deliver.ts";
import type { Server } from "../server.ts";
import type { Account } from "../accounts/account.ts";
import { connectionLogPrefix } from "../log.ts";
import { routeFrameTraces } from "./trace.ts";
import {
  FrameKind, MAX_HELLO, MSG_HEADER, MsgAt, MsgFlag, PING_ECHO_LENGTH, PING_ECHO_REPLY, PING_ECHO_REQUEST, PING_FRAME,
  decodeBody, errorFrame, hasAccounts, interestFrameLength, isHello, pingEchoFrame, writeInterestFrame, type Hello,
} from "./protocol.ts";

/** The other node's interest in a subject (or a subject and queue group), as a subscription of the route. */
export class RouteSubscription extends Subscription {
  /** For a queue group: how many members it has on the other node. */
  weight = 1;

  constructor(
    route: Route,
    subject: string,
    queue: string | null,
    sid: string,
    /** The account (of this node) whose Sublist holds it. */
    readonly account: Account,
    /** That account's index in this node's HELLO: what a MSG frame for this subscription carries. */
    readonly accountIndex: number,
  ) {
    super(route, subject, queue, sid, false);
  }
}

/** This node's accounts in the order its HELLO lists them ($G first), fixed at start as the accounts are. */
export interface AccountTable {
  readonly list: readonly Account[];
  readonly names: readonly string[];
  readonly index: ReadonlyMap<Account, number>;
  /** Account names of other nodes this node does not have, logged once each. */
  readonly unknownLogged: Set<string>;
}

const accountTables = new WeakMap<Server, AccountTable>();

export function accountTable(server: Server): AccountTable {
  let table = accountTables.get(server);
  if (table === undefined) {
    const global = server.accounts.global;
    const list = [global, ...[...server.accounts.all()].filter((a) => a !== global)];
    table = { list, names: list.map((a) => a.name), index: new Map(list.map((a, i) => [a, i])), unknownLogged: new Set() };
    accountTables.set(server, table);
  }
  return table;
}

/** One of the other node's accounts, as this node has it. */
interface InboundAccount {
  readonly account: Account;
  /** Its index in this node's HELLO. */
  readonly index: number;
  /** One memo per account: two accounts' Sublists can share a generation number. */
  readonly memo: SubjectMemo<Subscription>;
}

export const RouteState = { HANDSHAKE: 0, OPEN: 1, CLOSED: 2 } as const;
export type RouteState = (typeof RouteState)[keyof typeof RouteState];

/** What the cluster does for a route (cluster.ts implements it). */
export interface RouteOwner {
  readonly server: Server;
  /** Checks a HELLO; returns null to go on, or the reason to refuse the route. */
  onHello(route: Route, hello: Hello): string | null;
  onClosed(route: Route, reason: string): void;
  /** The route is being cut as too slow (counted for /varz). */
  onSlow?(route: Route): void;
  /** A RAFT frame (its bytes are only valid during the call). */
  onRaft?(route: Route, type: number, group: string, payload: Uint8Array): void;
}

export interface RouteSocketData {
  route: Route | null;
}

/** Room in a frame beyond its message's payload, for subject, reply and queue names. */
const FRAME_SLACK = 256 * 1024;
/**
 * Largest frame accepted, at least: a client's message is at most max_payload, but what the servers make
 * themselves is not (a STREAM.MSG.GET answer holds a max_payload message in base64, a stream info its
 * subjects), and nats-server's routes take any size. A frame over the limit closes the route (and it
 * would come again), so the limit is well above anything a server makes; members are trusted peers.
 */
const MIN_MAX_FRAME = 64 * 1024 * 1024;

let nextRid = 1;

export class Route extends Link implements Subscriber {
  readonly isRoute = true;
  readonly headers = true;
  readonly rid = nextRid++;
  readonly startedAt = Date.now();
  state: RouteState = RouteState.HANDSHAKE;
  /** The member id this node dialed (null for an accepted route). */
  dialedId: string | null = null;
  /** The other node's HELLO, once received. */
  remote: Hello | null = null;
  get memberId(): string | null {
    return this.remote?.id ?? null;
  }
  /** The other node's interest: key (subject, or subject + " " + queue) → its subscription here. */
  readonly subs = new Map<string, RouteSubscription>();

  protected blocked = false;
  // The MSG frame written last: the message it carries (delivery.seq), its length, and the pending
  // byte count just after it (it can still take queue names while nothing was queued after it).
  private lastSeq = -1;
  private lastAccount = -1;
  private lastFrameLength = 0;
  private lastFramePending = -1;

  // Inbound: a frame split across reads is carried over (only that frame's bytes).
  private carry: Buffer | null = null;
  private carryLength = 0;
  private readonly maxFrame: number;

  /** The other node's accounts by the index its frames use (from its HELLO); null = one this node does not have. */
  private inbound: (InboundAccount | null)[] = [];
  /** The other node's account names, by its index (what the trace shows). */
  private inboundNames: readonly string[] = [];
  /** Bytes at the start of the outbound buffer already traced (-V traces what each flush writes). */
  private tracedPending = 0;
  private nextSid = 1;

  lastReadAt = Date.now();
  lastWriteAt = Date.now();
  /** Round trip of the last answered RTT probe, in ms (-1 = none answered yet), and when it was sent. */
  rttMs = -1;
  rttProbeAt = 0;
  inMsgs = 0;
  inBytes = 0;

  constructor(
    private readonly owner: RouteOwner,
    private readonly socket: Socket<RouteSocketData>,
    /** True when this node dialed. */
    readonly solicited: boolean,
    readonly remoteAddress: string,
    readonly remotePort: number,
  ) {
    super();
    this.maxFrame = Math.max(owner.server.options.maxPayload + FRAME_SLACK, MIN_MAX_FRAME);
  }

  get server(): Server {
    return this.owner.server;
  }

  /** `ip:port - rid:N` as nats-server prefixes route log lines. */
  get logPrefix(): string {
    return connectionLogPrefix(this.remoteAddress, this.remotePort, "rid", this.rid);
  }

  // ---- input -------------------------------------------------------------------------------

  onRead(data: Buffer): void {
    if (this.closed) return;
    this.lastReadAt = Date.now();
    const server = this.server;
    server.inRead = true;
    try {
      let at = 0;
      if (this.carryLength > 0) at = this.completeCarried(data);
      if (at >= 0 && !this.closed) {
        at = this.parseFrames(data, at, data.length);
        if (!this.closed && at < data.length) this.keep(data, at, data.length);
      }
    } finally {
      server.inRead = false;
    }
    server.flushDirty();
  }

  /** Parses the complete frames in buf[from, to); returns where the first incomplete one starts. */
  private parseFrames(buf: Buffer, from: number, to: number): number {
    let i = from;
    while (i < to) {
      if (this.state === RouteState.HANDSHAKE && buf[i] !== 0) return this.notARoute(buf, i, to);
      if (to - i < 5) return i;
      const length = buf.readUInt32BE(i);
      if (!this.checkFrameStart(length, buf[i + 4]!)) return to;
      const end = i + 4 + length;
      if (end > to) return i;
      this.onFrame(buf, i, end);
      if (this.closed) return to;
      i = end;
    }
    return i;
  }

  private checkFrameStart(length: number, kind: number): boolean {
    if (this.state === RouteState.HANDSHAKE && (kind !== FrameKind.HELLO || length > MAX_HELLO)) {
      this.refuse(`Refusing route: expected a natter route HELLO, got frame kind ${kind} of ${length} bytes`);
      return false;
    }
    if (length < 1 || length > this.maxFrame) {
      this.protocolError(`frame of ${length} bytes (at most ${this.maxFrame})`);
      return false;
    }
    return true;
  }

  /** Takes bytes of `data` into the carried frame; returns where parsing of `data` goes on, -1 when all was taken. */
  private completeCarried(data: Buffer): number {
    let at = 0;
    if (this.carryLength < 5) {
      const take = Math.min(5 - this.carryLength, data.length);
      this.appendCarry(data, 0, take, 0);
      at = take;
      if (this.carryLength < 5) return -1;
      const carry = this.carry!;
      if (this.state === RouteState.HANDSHAKE && carry[0] !== 0) {
        this.notARoute(carry, 0, this.carryLength);
        return -1;
      }
      if (!this.checkFrameStart(carry.readUInt32BE(0), carry[4]!)) return -1;
    }
    const frameLength = 4 + this.carry!.readUInt32BE(0);
    const take = Math.min(frameLength - this.carryLength, data.length - at);
    this.appendCarry(data, at, at + take, frameLength);
    at += take;
    if (this.carryLength < frameLength) return -1;
    this.carryLength = 0;
    this.onFrame(this.carry!, 0, frameLength);
    if (this.carry !== null && this.carry.length > 64 * 1024) this.carry = null;
    return at;
  }

  private keep(data: Buffer, from: number, to: number): void {
    this.carryLength = 0;
    const announced = to - from >= 4 ? 4 + data.readUInt32BE(from) : 0;
    const hint = announced <= this.maxFrame + 4 ? announced : 0; // a bad length is refused once its kind byte is in
    this.appendCarry(data, from, to, hint);
  }

  private appendCarry(src: Buffer, start: number, end: number, capacityHint: number): void {
    const needed = this.carryLength + (end - start);
    let carry = this.carry;
    if (carry === null || carry.length < needed || carry.length < capacityHint) {
      const grown = Buffer.allocUnsafe(Math.max(needed, capacityHint, 256));
      if (carry !== null && this.carryLength > 0) carry.copy(grown, 0, 0, this.carryLength);
      this.carry = carry = grown;
    }
    src.copy(carry, this.carryLength, start, end);
    this.carryLength = needed;
  }

  private onFrame(buf: Buffer, start: number, end: number): void {
    const kind = buf[start + 4];
    if (this.server.tracing && this.state === RouteState.OPEN) this.traceFrames("<<-", buf, start, end);
    switch (kind) {
      case FrameKind.MSG:
        if (this.state !== RouteState.OPEN) return this.protocolError("MSG before HELLO");
        return this.onMsg(buf, start, end);
      case FrameKind.SUB:
      case FrameKind.UNSUB:
        if (this.state !== RouteState.OPEN) return this.protocolError("interest before HELLO");
        return this.onInterest(buf, start, end, kind === FrameKind.SUB);
      case FrameKind.PING:
        return this.onPing(buf, start, end);
      case FrameKind.RAFT: {
        if (this.state !== RouteState.OPEN) return this.protocolError("RAFT before HELLO");
        const groupLength = end - start >= 7 ? buf[start + 6]! : -1;
        if (groupLength < 0 || start + 7 + groupLength > end) return this.protocolError("short RAFT frame");
        const group = buf.latin1Slice(start + 7, start + 7 + groupLength);
        return this.owner.onRaft?.(this, buf[start + 5]!, group, buf.subarray(start + 7 + groupLength, end));
      }
      case FrameKind.HELLO:
        return this.onHello(buf, start, end);
      case FrameKind.ERROR: {
        let text = "(unreadable)";
        try {
          const body = decodeBody(buf, start + 5, end);
          if (typeof body.error === "string") text = body.error;
        } catch {
          // keep "(unreadable)"
        }
        this.server.log.error(`${this.logPrefix} - Route refused by the other node: ${text}`);
        return this.close(`remote error: ${text}`, null);
      }
      default:
        return this.protocolError(`unknown frame kind ${kind}`);
    }
  }

  private traceFrames(direction: "<<-" | "->>", buf: Buffer, start: number, end: number): void {
    const names = this.inboundNames;
    for (const trace of routeFrameTraces(direction, buf, start, end, (i) => names[i] ?? String(i))) this.server.log.trace(`${this.logPrefix} - ${trace}`);
  }

  private onHello(buf: Buffer, start: number, end: number): void {
    if (this.state !== RouteState.HANDSHAKE) return this.protocolError("second HELLO");
    let body: Record<string, unknown>;
    try {
      body = decodeBody(buf, start + 5, end);
    } catch (error) {
      return this.refuse(`Refusing route: HELLO is not msgpack (${(error as Error).message})`);
    }
    if (!isHello(body)) return this.refuse("Refusing route: HELLO lacks fields");
    this.remote = body;
    const refusal = this.owner.onHello(this, body);
    if (refusal !== null) {
      if (refusal !== "") this.refuse(refusal);
      else this.close("route to self", null);
      return;
    }
    this.bindAccounts(hasAccounts(body) ? body.accounts : []);
  }

  /** Maps the other node's account indexes to this node's accounts, by name; logs names it lacks (once each). */
  private bindAccounts(names: readonly string[]): void {
    const server = this.server;
    const table = accountTable(server);
    const unknown: string[] = [];
    this.inboundNames = names;
    this.inbound = names.map((name) => {
      const account = server.accounts.get(name);
      if (account === undefined) {
        if (!table.unknownLogged.has(name)) {
          table.unknownLogged.add(name);
          unknown.push(name);
        }
        return null;
      }
      return { account, index: table.index.get(account)!, memo: new SubjectMemo<Subscription>() };
    });
    if (unknown.length > 0) {
      server.log.warn(
        `${this.logPrefix} - The other node (${this.remote?.server_name}) has accounts this node does not: ${unknown.join(", ")}; ` +
          "their interest and messages are ignored (every node of a cluster must have the same accounts)",
      );
    }
  }

  /** A PING: empty (liveness only), or an RTT probe to answer, or the answer to ours. */
  private onPing(buf: Buffer, start: number, end: number): void {
    if (end - start !== PING_ECHO_LENGTH) return; // empty, or a body this version does not know
    const type = buf[start + 5];
    const stamp = buf.readDoubleBE(start + 6);
    if (type === PING_ECHO_REQUEST) this.queueBytes(pingEchoFrame(PING_ECHO_REPLY, stamp));
    else if (type === PING_ECHO_REPLY && stamp === this.rttProbeAt) this.rttMs = performance.now() - stamp;
  }

  /** Bytes that cannot start a route frame: a client, an HTTP probe, garbage. One clear error, then close. */
  private notARoute(buf: Buffer, start: number, end: number): number {
    const sample = buf.latin1Slice(start, Math.min(end, start + 24)).replace(/[^\x20-\x7e]/g, ".");
    const text = /^[A-Za-z]/.test(sample)
      ? "natter cluster port: expected a route handshake, this is not a client port"
      : "natter cluster port: expected a route handshake";
    this.server.log.error(`${this.logPrefix} - Refusing connection on the cluster port: not a natter route (received "${sample}")`);
    // A text client reads an -ERR; a route reads the ERROR frame.
    this.writeNow(Buffer.from(`-ERR '${text}'\r\n`));
    this.close("not a route", null);
    return end;
  }

  /** Refuses during the handshake: logged here, and told to the other node in an ERROR frame. */
  refuse(text: string): void {
    this.server.log.error(`${this.logPrefix} - ${text}`);
    this.close(text, text);
  }

  private protocolError(detail: string): void {
    this.server.log.error(`${this.logPrefix} - Route protocol error: ${detail}`);
    this.close(`protocol error: ${detail}`, `protocol error: ${detail}`);
  }

  private onInterest(buf: Buffer, start: number, end: number, isSub: boolean): void {
    let at = start + 5;
    if (at + 4 > end) return this.protocolError("short interest frame");
    const accountIndex = buf.readUInt16BE(at);
    at += 2;
    const subjectLength = buf.readUInt16BE(at);
    at += 2;
    if (at + subjectLength + 2 > end) return this.protocolError("short interest frame");
    const subject = buf.latin1Slice(at, at + subjectLength);
    at += subjectLength;
    const queueLength = buf.readUInt16BE(at);
    at += 2;
    if (at + queueLength + (isSub ? 4 : 0) !== end) return this.protocolError("bad interest frame length");
    const queue = queueLength > 0 ? buf.latin1Slice(at, at + queueLength) : null;
    at += queueLength;
    if (!isValidSubscribeSubject(subject) || (queue !== null && !isValidQueueName(queue))) {
      return this.protocolError(`invalid interest subject ${JSON.stringify(subject.slice(0, 64))}`);
    }
    const into = this.inbound[accountIndex];
    if (into === undefined) return this.protocolError(`interest for account ${accountIndex}, the HELLO listed ${this.inbound.length}`);
    if (into === null) return; // an account this node does not have (logged at HELLO)
    const key = queue === null ? `${accountIndex} ${subject}` : `${accountIndex} ${subject} ${queue}`;
    const existing = this.subs.get(key);
    if (isSub) {
      const weight = buf.readUInt32BE(at);
      if (existing !== undefined) {
        existing.weight = weight;
        return;
      }
      const sub = new RouteSubscription(this, subject, queue, String(this.nextSid++), into.account, into.index);
      sub.weight = weight;
      this.subs.set(key, sub);
      into.account.sublist.insert(sub);
    } else if (existing !== undefined) {
      this.subs.delete(key);
      existing.account.sublist.remove(existing);
    }
  }

  // Hot path: no allocation beyond the subject string on a memo miss.
  private onMsg(buf: Buffer, start: number, end: number): void {
    const flags = buf[start + MsgAt.FLAGS]!;
    const subjectLength = buf.readUInt16BE(start + MsgAt.SUBJECT_LENGTH);
    const replyLength = buf.readUInt16BE(start + MsgAt.REPLY_LENGTH);
    const headLength = buf.readUInt16BE(start + MsgAt.HEAD_LENGTH);
    const headerSize = (flags & MsgFlag.HEADERS) !== 0 ? buf.readInt32BE(start + MsgAt.HEADER_SIZE) : -1;
    const payloadLength = buf.readUInt32BE(start + MsgAt.PAYLOAD_LENGTH);
    const subjectStart = start + MSG_HEADER;
    const subjectEnd = subjectStart + subjectLength;
    const tailStart = subjectEnd;
    const payloadStart = tailStart + headLength;
    const payloadEnd = payloadStart + payloadLength;
    let queuesStart = payloadEnd + 2;
    if (subjectLength === 0 || replyLength > headLength || queuesStart > end || buf[payloadEnd] !== 13 || buf[payloadEnd + 1] !== 10 || headerSize > payloadLength) {
      return this.protocolError("malformed MSG frame");
    }
    let deliverStart = -1;
    if ((flags & MsgFlag.DELIVER_AS) !== 0) {
      deliverStart = queuesStart + 2;
      queuesStart = queuesStart + 2 + (queuesStart + 2 <= end ? buf.readUInt16BE(queuesStart) : 0);
      if (deliverStart > end || queuesStart > end || queuesStart === deliverStart) return this.protocolError("malformed MSG frame (deliver subject)");
    }
    let requestInfo: string | null = null;
    if ((flags & MsgFlag.REQUEST_INFO) !== 0) {
      const infoStart = queuesStart + 2;
      const infoEnd = infoStart + (infoStart <= end ? buf.readUInt16BE(queuesStart) : 0);
      if (infoStart > end || infoEnd > end) return this.protocolError("malformed MSG frame (request info)");
      requestInfo = buf.toString("utf8", infoStart, infoEnd);
      queuesStart = infoEnd;
    }
    const into = this.inbound[buf.readUInt16BE(start + MsgAt.ACCOUNT)];
    if (into === undefined || into === null) {
      if (into === undefined) return this.protocolError("MSG for an account the HELLO did not list");
      return; // an account this node does not have (logged at HELLO)
    }
    const replyStart = (flags & MsgFlag.REPLY) !== 0 ? tailStart : -1;
    const replyEnd = replyStart >= 0 ? tailStart + replyLength : -1;
    this.inMsgs++;
    this.inBytes += payloadLength;
    const stats = this.server.stats;
    stats.inMsgs++;
    stats.inBytes += payloadLength;
    if (deliverStart >= 0) {
      const deliverSubject = buf.latin1Slice(deliverStart, queuesStart);
      return this.deliverPresented(into.account, deliverSubject, (flags & MsgFlag.QUEUES_ONLY) !== 0, queuesStart, end, buf, subjectStart, subjectEnd, replyStart, replyEnd, headerSize, payloadStart, payloadEnd, tailStart);
    }
    // Message tracing (src/trace): this node's events for a traced message, with the hop the sender gave it.
    const trace = headerSize > 0 && hasTraceHeader(buf, payloadStart, payloadStart + headerSize)
      ? startForwardedTrace(this.server, this, into.account, buf, subjectStart, subjectEnd, payloadStart, headerSize, payloadLength)
      : null;
    if (trace === SKIP) return;
    let result = into.memo.match(into.account.sublist, buf, subjectStart, subjectEnd);
    if (trace !== null) result = tracedResult(result, trace, this, false);
    if (requestInfo !== null) routedRequest.info = requestInfo; // the JetStream API's internal client keeps it with the request
    deliverRouted(result, this, (flags & MsgFlag.QUEUES_ONLY) !== 0, queuesStart, end, buf, subjectStart, subjectEnd, replyStart, replyEnd, headerSize, payloadStart, payloadEnd, tailStart);
    if (requestInfo !== null) routedRequest.info = null;
    if (trace !== null) trace.release();
  }

  /**
   * A DELIVER_AS message: to this node's subscribers of `deliverSubject` in `account` (plain ones unless
   * `queuesOnly`, one member of each queue group the origin named), showing the message's subject.
   */
  private deliverPresented(
    account: Account, deliverSubject: string, queuesOnly: boolean, queuesStart: number, queuesEnd: number, buf: Buffer, subjectStart: number, subjectEnd: number,
    replyStart: number, replyEnd: number, headerSize: number, payloadStart: number, payloadEnd: number, tailStart: number,
  ): void {
    if (!isValidPublishSubject(deliverSubject)) return this.protocolError("invalid deliver subject");
    const result = account.sublist.match(deliverSubject);
    // A new message for the carriers it reaches (a leaf link writes one frame per delivery.seq: without
    // this every delivery after the first from this route was taken for the same message, and dropped).
    delivery.seq++;
    // An import's bridge (a response on its way back to a requester of another account) routes by the
    // deliver subject itself; a leaf node attached here carries it on (`LMSG <deliver> <reply>@<subject>`).
    const present = (sub: Subscription) => {
      const carrier = sub.client as Subscriber & Partial<DeliverAsCarrier>;
      if (carrier.deliverAs !== undefined) carrier.deliverAs(sub, deliverSubject, buf, subjectStart, subjectEnd, replyStart, replyEnd, headerSize, payloadStart, payloadEnd, tailStart, this);
      else presentTo(sub, buf, subjectStart, subjectEnd, replyStart, replyEnd, headerSize, payloadStart, payloadEnd, tailStart, this);
    };
    if (!queuesOnly) {
      for (const sub of result.plain) if (reachedFromRoute(sub.client)) present(sub);
    }
    for (const members of result.queues) {
      if (!namesQueue(buf, queuesStart, queuesEnd, members[0]!.queue!)) continue;
      // Local members first, else a leaf node attached here that has members (as deliverRouted).
      let candidates = members.filter((m) => m.client.isRoute !== true);
      if (candidates.length === 0) candidates = members.filter((m) => reachedFromRoute(m.client));
      if (candidates.length === 0) continue;
      present(candidates[(Math.random() * candidates.length) | 0]!);
    }
  }

  // ---- output ------------------------------------------------------------------------------

  /**
   * Queues one message for the other node. Called by deliverToMatches for each of this route's
   * subscriptions the message matched: the first call writes the frame, later ones for the same
   * message only add the queue group they stand for. Hot path: no allocation (but for a PUB line
   * that was not in canonical form).
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
    this.frame(sub, buf, subjectStart, subjectEnd, replyStart, replyEnd, headerSize, payloadStart, payloadEnd, tailStart, publisher, null);
  }

  /**
   * Queues a message the other node is to deliver to its subscribers of `deliverSubject` while showing
   * the message's own subject: a JetStream delivery to a pull request's inbox or a push consumer's
   * deliver subject (src/jetstream/deliver.ts; nats-server's `pa.deliver`). Otherwise as deliver().
   */
  deliverAs(
    sub: Subscription,
    deliverSubject: string,
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
    this.frame(sub, buf, subjectStart, subjectEnd, replyStart, replyEnd, headerSize, payloadStart, payloadEnd, tailStart, publisher, deliverSubject);
  }

  private frame(
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
    deliverSubject: string | null,
  ): void {
    if (this.state !== RouteState.OPEN) return;
    sub.delivered++;
    const queue = sub.queue;
    const accountIndex = (sub as RouteSubscription).accountIndex;
    if (delivery.seq === this.lastSeq && accountIndex === this.lastAccount) {
      if (queue === null) return; // already on its way for another subscription of this route
      if (this.outbound.pending === this.lastFramePending) {
        this.addQueueToLastFrame(queue);
        return;
      }
      // Something was queued after the frame (an interest change): a second frame, for this group only.
    }
    const subjectLength = subjectEnd - subjectStart;
    const payloadLength = payloadEnd - payloadStart;
    const replyLength = replyStart >= 0 ? replyEnd - replyStart : 0;
    let head: string | null = null;
    let headLength: number;
    if (tailStart >= 0) headLength = payloadStart - tailStart;
    else {
      // Slow path: the PUB line was not canonical; compose `[reply ][hdr ]size\r\n`.
      head = `${replyStart >= 0 ? `${buf.latin1Slice(replyStart, replyEnd)} ` : ""}${headerSize >= 0 ? `${headerSize} ` : ""}${payloadLength}\r\n`;
      headLength = head.length;
    }
    if (subjectLength > 0xffff || headLength > 0xffff) return; // cannot happen within max_control_line
    if (payloadLength > this.maxFrame - FRAME_SLACK) return; // a server's own message the other node would refuse, closing the route
    this.lastSeq = delivery.seq;
    this.lastAccount = accountIndex;
    // A JetStream API request from a client here: who sent it goes along (src/request-info.ts). One byte
    // compare for any other message.
    const requestInfo = buf[subjectStart] === 36 /* $ */ && publisher !== null && publisher.isRoute !== true && isAuditedApiSubject(buf, subjectStart, subjectEnd)
      ? requestClientInfoJson(publisher, this.server)
      : null;
    const info = requestInfo === null ? null : Buffer.from(requestInfo, "utf8");
    const infoBytes = info === null || info.length > 0xffff ? 0 : 2 + info.length;
    const queueBytes = queue === null ? 0 : 2 + queue.length;
    const deliverBytes = deliverSubject === null ? 0 : 2 + deliverSubject.length;
    const frameLength = MSG_HEADER + subjectLength + headLength + payloadLength + 2 + deliverBytes + infoBytes + queueBytes;
    const start = this.outbound.reserve(frameLength);
    const out = this.outbound.buf;
    out.writeUInt32BE(frameLength - 4, start);
    out[start + 4] = FrameKind.MSG;
    out[start + MsgAt.FLAGS] =
      (replyStart >= 0 ? MsgFlag.REPLY : 0) | (headerSize >= 0 ? MsgFlag.HEADERS : 0) | (queue !== null ? MsgFlag.QUEUES_ONLY : 0) |
      (deliverSubject !== null ? MsgFlag.DELIVER_AS : 0) | (infoBytes > 0 ? MsgFlag.REQUEST_INFO : 0);
    out.writeUInt16BE(subjectLength, start + MsgAt.SUBJECT_LENGTH);
    out.writeUInt16BE(replyLength, start + MsgAt.REPLY_LENGTH);
    out.writeUInt16BE(headLength, start + MsgAt.HEAD_LENGTH);
    out.writeInt32BE(headerSize, start + MsgAt.HEADER_SIZE);
    out.writeUInt32BE(payloadLength, start + MsgAt.PAYLOAD_LENGTH);
    out.writeUInt16BE(queue === null ? 0 : 1, start + MsgAt.QUEUE_COUNT);
    out.writeUInt16BE(accountIndex, start + MsgAt.ACCOUNT);
    let at = start + MSG_HEADER;
    at += buf.copy(out, at, subjectStart, subjectEnd);
    if (head === null) at += buf.copy(out, at, tailStart, payloadEnd + 2);
    else {
      at += out.write(head, at, "latin1");
      at += buf.copy(out, at, payloadStart, payloadEnd);
      out[at++] = 13;
      out[at++] = 10;
    }
    if (deliverSubject !== null) {
      out.writeUInt16BE(deliverSubject.length, at);
      at += 2 + out.write(deliverSubject, at + 2, "latin1");
    }
    if (infoBytes > 0) {
      out.writeUInt16BE(info!.length, at);
      at += 2 + info!.copy(out, at + 2);
    }
    if (queue !== null) {
      out.writeUInt16BE(queue.length, at);
      out.write(queue, at + 2, "latin1");
    }
    this.lastFrameLength = frameLength;
    this.lastFramePending = this.outbound.pending;
    this.outMsgs++; // the server counts deliveries to clients only
    this.outBytes += payloadLength;
    this.afterQueue();
    // A fast local publisher waits while this route is behind (briefly: a stuck route is still cut at max_pending).
    if (this.blocked && publisher instanceof Connection && this.outbound.pending > this.stallPoint(this.server.options.maxPending)) {
      this.stallPublisher(publisher);
    }
  }

  /** The origin picked this node for one more queue group of the message just framed: name it in that frame. */
  private addQueueToLastFrame(queue: string): void {
    const extra = 2 + queue.length;
    const at = this.outbound.reserve(extra); // may compact: the frame is still the last thing queued
    const out = this.outbound.buf;
    const start = at - this.lastFrameLength;
    out.writeUInt16BE(queue.length, at);
    out.write(queue, at + 2, "latin1");
    this.lastFrameLength += extra;
    this.lastFramePending += extra;
    out.writeUInt32BE(this.lastFrameLength - 4, start);
    out.writeUInt16BE(out.readUInt16BE(start + MsgAt.QUEUE_COUNT) + 1, start + MsgAt.QUEUE_COUNT);
  }

  /** Queues a SUB (weight >= 0) or UNSUB (weight < 0) in the account of index `account` (this node's) for the other node. */
  queueInterest(account: number, subject: string, queue: string | null, weight: number): void {
    if (this.closed) return;
    const at = this.outbound.reserve(interestFrameLength(subject, queue, weight));
    writeInterestFrame(this.outbound.buf, at, account, subject, queue, weight);
    this.afterQueue();
  }

  queueBytes(bytes: Buffer): void {
    if (this.closed) return;
    const at = this.outbound.reserve(bytes.length);
    bytes.copy(this.outbound.buf, at);
    this.afterQueue();
  }

  sendPing(): void {
    this.queueBytes(PING_FRAME);
  }

  /** A PING the other node answers with the same stamp: measures the round trip (rttMs) for /routez. */
  sendRttProbe(): void {
    this.rttProbeAt = performance.now();
    this.queueBytes(pingEchoFrame(PING_ECHO_REQUEST, this.rttProbeAt));
  }

  private afterQueue(): void {
    this.flushThisTick();
    // A route that cannot keep up is cut (and dialed again), as nats-server cuts a slow route.
    const pending = this.outbound.pending;
    if (pending > this.server.options.maxPending) {
      this.server.log.error(`${this.logPrefix} - Slow route: ${pending} bytes pending, closing`);
      this.owner.onSlow?.(this);
      this.close("slow route", null);
    }
  }

  /** -V: the frames queued since the last flush, from where the traced ones end (whole frames). */
  protected override beforeWrite(): void {
    if (!this.server.tracing || this.state !== RouteState.OPEN) return;
    const outbound = this.outbound;
    const names = accountTable(this.server).names;
    for (let at = outbound.head + this.tracedPending; at + 5 <= outbound.end; ) {
      const end = at + 4 + outbound.buf.readUInt32BE(at);
      for (const trace of routeFrameTraces("->>", outbound.buf, at, end, (i) => names[i] ?? String(i))) this.server.log.trace(`${this.logPrefix} - ${trace}`);
      at = end;
    }
  }

  protected override afterWrite(drained: boolean): void {
    this.lastWriteAt = Date.now();
    if (drained) this.lastFramePending = -1;
    this.tracedPending = this.outbound.pending;
  }

  protected writeToPeer(buf: Buffer, start: number, end: number): number {
    const length = end - start;
    const written = this.socket.write(buf, start, length);
    if (written < length) this.blocked = true;
    return written < 0 ? 0 : written;
  }

  /** Writes bytes ahead of the queue, at once (only before the route is open: nothing else is queued). */
  private writeNow(bytes: Buffer): void {
    if (!this.closed) this.writeToPeer(bytes, 0, bytes.length);
  }

  /**
   * Closes the route: an ERROR frame first if `errorText`, what is queued is written (best
   * effort), the other node's interest leaves the Sublist, the socket is closed.
   */
  close(reason: string, errorText: string | null): void {
    if (this.closed) return;
    if (errorText !== null) this.queueBytes(errorFrame(errorText));
    this.releaseOutput();
    this.closed = true;
    this.state = RouteState.CLOSED;
    for (const sub of this.subs.values()) sub.account.sublist.remove(sub);
    this.subs.clear();
    this.inbound = [];
    this.socket.end();
    this.owner.onClosed(this, reason);
  }

  onSocketClosed(): void {
    this.blocked = true;
    this.close("connection closed", null);
  }
}

/** Whether `name` is one of the (u16 length, latin1 bytes) queue entries in buf[start, end). */
function namesQueue(buf: Buffer, start: number, end: number, name: string): boolean {
  let at = start;
  while (at + 2 <= end) {
    const length = buf.readUInt16BE(at);
    at += 2;
    if (length === name.length && buf.latin1Slice(at, at + length) === name) return true;
    at += length;
  }
  return false;
}
