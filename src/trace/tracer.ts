// Message tracing on one server (nats-server 2.11's msgtrace.go): starting a trace for a message that
// asks for one, following its deliveries, and publishing the event.
//
// How it stays off the hot path: the publish paths (client, route, leaf) call startTrace only when a
// message has headers and hasTraceHeader found a trace header in them. A traced message is then
// delivered by the same router functions as any other, over a *traced copy* of its match result
// (tracedResult): each subscription is stood in for by one whose client is a TraceEgress, which
// records the egress event, skips a client's delivery for a trace-only message, and gives routes and
// leaf links a copy with the next Nats-Trace-Hop. Nothing in the router or the connections knows.
import type { Server } from "../server.ts";
import type { Account } from "../accounts/account.ts";
import type { Subscriber } from "../subscriber.ts";
import type { Subscription } from "../subscription.ts";
import type { SublistResult } from "../subjects/sublist.ts";
import { InternalClient } from "../internal-client.ts";
import { isValidPublishSubject } from "../subjects/subject.ts";
import { COMPATIBLE_NATS_VERSION } from "../server.ts";
import { ConnKind, EgressError, MsgTrace, type TraceConn, type TraceServerInfo } from "./msg-trace.ts";
import { disabledHeaders, readTraceHeaders, setHeader, TRACE_DEST, TRACE_HOP, TRACE_ONLY, TRACE_ORIGIN_ACCOUNT } from "./headers.ts";
import { now } from "./msg-trace.ts";
import { tracing } from "./current.ts";

/** A trace-only message whose trace could not start: it is neither traced nor delivered (nats-server's skip). */
export const SKIP = "skip";
/**
 * A sampled `traceparent` the account's sampling left out, at the server it was published to: it is
 * delivered untraced, with `Nats-Trace-Dest: trace disabled` so no later server traces it (disabledCopy).
 */
export const SAMPLED_OUT = "sampled-out";


interface PublishPermissions {
  publishAllowed(buf: Buffer, start: number, end: number): boolean;
}

/** Describes a connection the way the events name it. */
export function describe(conn: Subscriber): TraceConn | null {
  const c = conn as Subscriber & { cid?: number; rid?: number; lid?: number; name?: string; remoteServer?: string; remote?: { server_name?: string } | null; account?: Account };
  if (c.isLeaf === true) return { kind: ConnKind.LEAF, cid: c.lid ?? 0, name: c.remoteServer ?? "", account: c.account?.name ?? "" };
  if (c.isRoute === true) return { kind: ConnKind.ROUTER, cid: c.rid ?? 0, name: c.remote?.server_name ?? "", account: "" };
  if (typeof c.cid === "number") return { kind: ConnKind.CLIENT, cid: c.cid, name: c.name ?? "", account: c.account?.name ?? "" };
  // An MQTT session (src/mqtt/session.ts): a client, named by its client id, as nats-server names MQTT clients.
  const mqtt = conn as Subscriber & { clientId?: string; connection?: { cid: number } | null; account?: Account };
  if (typeof mqtt.clientId === "string" && mqtt.connection !== undefined) {
    return { kind: ConnKind.CLIENT, cid: mqtt.connection?.cid ?? 0, name: mqtt.clientId, account: mqtt.account?.name ?? "" };
  }
  return null; // an internal client: nats-server records no egress for those
}

/**
 * Starts the trace of a message whose header block buf[hdrStart, hdrStart + headerSize) has a trace
 * header (hasTraceHeader said so). Returns the trace, null (deliver as usual, untraced), or SKIP.
 * `disable` is called when the copies sent on must carry a disabled trace header (a sampled-out
 * traceparent, an old origin-account header): the caller then delivers `disabled` instead.
 */
export function startTrace(
  server: Server,
  from: Subscriber,
  account: Account,
  buf: Buffer,
  subjectStart: number,
  subjectEnd: number,
  hdrStart: number,
  headerSize: number,
  msgSize: number,
): MsgTrace | null | typeof SKIP | typeof SAMPLED_OUT {
  const headers = readTraceHeaders(buf.latin1Slice(hdrStart, hdrStart + headerSize));
  if (headers === null) return null;
  const first = (name: string) => headers.map[name]?.[0] ?? "";
  const ingress = describe(from);
  if (ingress === null) return null;
  let dest = "";
  let traceOnly = false;
  if (!headers.external) {
    traceOnly = ["1", "true", "on"].includes(first(TRACE_ONLY).toLowerCase());
    dest = first(TRACE_DEST);
    if (first(TRACE_ORIGIN_ACCOUNT) !== "") return traceOnly ? SKIP : null; // nats-server: an old server's trace, not traced again
  } else {
    const options = account.trace;
    if (options === null) return null;
    // Sampling is decided once, where the message was published (nats-server's sample(): a draw of 0..99
    // at most the percentage); what came over a route or leaf link was not disabled there, so it is traced.
    if (ingress.kind === ConnKind.CLIENT && options.sampling < 100 && Math.floor(Math.random() * 100) > options.sampling) return SAMPLED_OUT;
    dest = options.dest;
  }
  if (!isValidPublishSubject(dest)) {
    server.log.error(`Destination ${JSON.stringify(dest)} is not valid, won't be able to trace events`);
    return traceOnly ? SKIP : null;
  }
  if (server.accounts.system === null) return traceOnly ? SKIP : null; // events are sent by the system account's client
  // A client must be allowed to publish to the destination (nats-server's allowedToPublishOnMsgTraceDest):
  // if not, it gets the permission violation and the message goes nowhere.
  const client = from as Subscriber & { perms?: PublishPermissions | null; connection?: { perms?: PublishPermissions | null } | null; traceDestRefused?(dest: string): void };
  const perms = client.perms ?? client.connection?.perms ?? null; // an MQTT session's are its connection's
  if (ingress.kind === ConnKind.CLIENT && perms !== null && !perms.publishAllowed(Buffer.from(dest, "latin1"), 0, dest.length)) {
    client.traceDestRefused?.(dest);
    return SKIP;
  }
  const hop = ingress.kind === ConnKind.CLIENT ? "" : first(TRACE_HOP);
  return new MsgTrace(dest, account.name, traceOnly, hop, headers.map, msgSize, { ...ingress, account: account.name }, buf.latin1Slice(subjectStart, subjectEnd), (trace, json) =>
    publishEvent(server, account, trace.dest, json),
  );
}

/** startTrace for a message that came over a route or leaf link (sampling was decided where it was published). */
export function startForwardedTrace(
  server: Server,
  from: Subscriber,
  account: Account,
  buf: Buffer,
  subjectStart: number,
  subjectEnd: number,
  hdrStart: number,
  headerSize: number,
  msgSize: number,
): MsgTrace | null | typeof SKIP {
  const started = startTrace(server, from, account, buf, subjectStart, subjectEnd, hdrStart, headerSize, msgSize);
  return started === SAMPLED_OUT ? null : started;
}

// ---- egress ---------------------------------------------------------------------------------

/**
 * Stands in for a subscriber while a traced message is delivered: records what happens, then passes
 * the delivery on (or not). Routes and leaf links are given one copy each, with the hop header.
 */
class TraceEgress implements Subscriber {
  readonly isRoute?: boolean;
  readonly isLeaf?: boolean;
  readonly isSpoke?: boolean;
  readonly sharedHubLink?: boolean;

  constructor(
    readonly target: Subscriber,
    private readonly trace: MsgTrace,
    private readonly copies: Map<Subscriber, Buffer>,
  ) {
    this.isRoute = target.isRoute;
    this.isLeaf = target.isLeaf;
    this.isSpoke = target.isSpoke;
    this.sharedHubLink = target.sharedHubLink;
  }

  get closed(): boolean {
    return this.target.closed;
  }

  get headers(): boolean {
    return this.target.headers;
  }

  /** A leaf link's cluster (src/leaf/deliver.ts compares it). */
  get remoteCluster(): string | undefined {
    return (this.target as Subscriber & { remoteCluster?: string }).remoteCluster;
  }

  deliver(sub: Subscription, buf: Buffer, subjectStart: number, subjectEnd: number, replyStart: number, replyEnd: number, headerSize: number, payloadStart: number, payloadEnd: number, tailStart: number, publisher: Subscriber | null): void {
    const real = Object.getPrototypeOf(sub) as Subscription;
    const target = this.target;
    const conn = describe(target);
    const trace = this.trace;
    if (conn === null) {
      // An internal client (a stream, an import, a service): it adds its own events (it sees tracing.current).
      tracing.current = trace;
      try {
        target.deliver(real, buf, subjectStart, subjectEnd, replyStart, replyEnd, headerSize, payloadStart, payloadEnd, tailStart, publisher);
      } finally {
        tracing.current = null;
      }
      return;
    }
    if (target.closed) {
      trace.egress(conn, real.subject, real.queue, null, EgressError.ClientClosed);
      return;
    }
    if (conn.kind === ConnKind.CLIENT) {
      // A subject the subscriber's permissions deny, reached through a wider wildcard (checked without a reply: no side effect).
      const perms = (target as Subscriber & { perms?: { admitDelivery(buf: Buffer, s: number, e: number, rs: number, re: number): boolean } | null }).perms;
      if (perms && !perms.admitDelivery(buf, subjectStart, subjectEnd, -1, -1)) {
        trace.egress(conn, real.subject, real.queue, null, EgressError.SubDeny);
        return;
      }
      const event = trace.egress(conn, real.subject, real.queue, null, null);
      if (trace.traceOnly) return;
      target.deliver(real, buf, subjectStart, subjectEnd, replyStart, replyEnd, headerSize, payloadStart, payloadEnd, tailStart, publisher);
      // Closed by this very delivery: a slow consumer (past max_pending), nats-server's text for it.
      if (target.closed) event.error = EgressError.FastProducerNoStall;
      return;
    }
    // A route or leaf link: even a trace-only message goes on, so the next server sends its event.
    let copy = this.copies.get(target);
    if (copy === undefined) {
      const hop = trace.nextHop();
      trace.egress(conn, null, null, hop, null);
      copy = withHeader(buf, subjectStart, subjectEnd, replyStart, replyEnd, headerSize, payloadStart, payloadEnd, TRACE_HOP, hop);
      this.copies.set(target, copy);
    }
    deliverFrame(target, real, copy, publisher);
  }
}

/**
 * The match result a traced message is delivered over: the same subscriptions, in the same order, each
 * stood in for by one whose client records the delivery. Subscriptions of the publisher itself are
 * left out when it asked for no echo (with an egress event saying so), as nats-server's deliverMsg.
 */
export function tracedResult(
  result: SublistResult<Subscription>,
  trace: MsgTrace,
  publisher: Subscriber | null,
  noEcho: boolean,
  /** A subscriber never to deliver to (the leaf link a message came over). */
  source: Subscriber | null = null,
): SublistResult<Subscription> {
  const egresses = new Map<Subscriber, TraceEgress>();
  const copies = new Map<Subscriber, Buffer>();
  const standIn = (sub: Subscription): Subscription | null => {
    if (sub.client === source) return null;
    if (noEcho && sub.client === publisher) {
      const conn = describe(sub.client);
      if (conn !== null) trace.egress(conn, sub.subject, sub.queue, null, EgressError.NoEcho);
      return null;
    }
    let egress = egresses.get(sub.client);
    if (egress === undefined) egresses.set(sub.client, (egress = new TraceEgress(sub.client, trace, copies)));
    const proxy = Object.create(sub) as Subscription & { client: Subscriber };
    Object.defineProperty(proxy, "client", { value: egress });
    return proxy;
  };
  const plain: Subscription[] = [];
  for (const sub of result.plain) {
    const s = standIn(sub);
    if (s !== null) plain.push(s);
  }
  const queues: Subscription[][] = [];
  for (const members of result.queues) {
    const group: Subscription[] = [];
    for (const sub of members) {
      const s = standIn(sub);
      if (s !== null) group.push(s);
    }
    if (group.length > 0) queues.push(group);
  }
  return { plain, queues };
}

// ---- frames ---------------------------------------------------------------------------------

/** A canonical `HPUB <subject> [reply] <hdr> <total>\r\n<headers><payload>\r\n` of the message with one header set. */
function withHeader(buf: Buffer, subjectStart: number, subjectEnd: number, replyStart: number, replyEnd: number, headerSize: number, payloadStart: number, payloadEnd: number, name: string, value: string): Buffer {
  const headers = setHeader(buf.subarray(payloadStart, payloadStart + headerSize), name, value);
  return composeFrame(buf.latin1Slice(subjectStart, subjectEnd), replyStart >= 0 ? buf.latin1Slice(replyStart, replyEnd) : null, headers, buf.subarray(payloadStart + headerSize, payloadEnd));
}

export function composeFrame(subject: string, reply: string | null, headers: Buffer, payload: Buffer): Buffer {
  const total = headers.length + payload.length;
  const line = `HPUB ${subject} ${reply === null ? "" : `${reply} `}${headers.length} ${total}\r\n`;
  const frame = Buffer.allocUnsafe(line.length + total + 2);
  let at = frame.write(line, 0, "latin1");
  at += headers.copy(frame, at);
  at += payload.copy(frame, at);
  frame[at] = 13;
  frame[at + 1] = 10;
  return frame;
}

/** Delivers a composeFrame frame to one subscriber. */
function deliverFrame(target: Subscriber, sub: Subscription, frame: Buffer, publisher: Subscriber | null): void {
  const line = frame.indexOf(10) + 1;
  const parts = frame.latin1Slice(0, line - 2).split(" ");
  const subjectStart = 5;
  const subjectEnd = subjectStart + parts[1]!.length;
  const hasReply = parts.length === 5;
  const replyStart = hasReply ? subjectEnd + 1 : -1;
  const replyEnd = hasReply ? replyStart + parts[2]!.length : -1;
  const headerSize = Number(parts[parts.length - 2]);
  target.deliver(sub, frame, subjectStart, subjectEnd, replyStart, replyEnd, headerSize, line, frame.length - 2, subjectEnd + 1, publisher);
}

/** A sampled-out message's copy with `Nats-Trace-Dest: trace disabled`, as a canonical HPUB frame, and its new header size. */
export function disabledCopy(buf: Buffer, subjectStart: number, subjectEnd: number, replyStart: number, replyEnd: number, headerSize: number, payloadStart: number, payloadEnd: number): { frame: Buffer; headerSize: number } {
  const headers = disabledHeaders(buf.subarray(payloadStart, payloadStart + headerSize));
  const frame = composeFrame(buf.latin1Slice(subjectStart, subjectEnd), replyStart >= 0 ? buf.latin1Slice(replyStart, replyEnd) : null, headers, buf.subarray(payloadStart + headerSize, payloadEnd));
  return { frame, headerSize: headers.length };
}


// ---- publishing -----------------------------------------------------------------------------

const publishers = new WeakMap<Account, InternalClient>();
const sequences = new WeakMap<Server, { seq: number }>();

/** Publishes the event in the traced message's account, as nats-server's sendInternalAccountSysMsg (a microtask later). */
function publishEvent(server: Server, account: Account, dest: string, json: (info: TraceServerInfo & { seq: number; time: string }) => string): void {
  queueMicrotask(() => {
    let client = publishers.get(account);
    if (client === undefined) publishers.set(account, (client = new InternalClient(server, "message trace", account)));
    let counter = sequences.get(server);
    if (counter === undefined) sequences.set(server, (counter = { seq: 0 }));
    const jetstream = server.options.jetstream;
    const info = {
      name: server.serverName,
      host: server.options.host,
      id: server.serverId,
      cluster: server.cluster?.name || undefined,
      ver: COMPATIBLE_NATS_VERSION,
      jetstream,
      // nats-server's ServerCapability: JetStreamEnabled (1) when on, BinaryStreamSnapshot (2) always.
      flags: (jetstream ? 1 : 0) | 2,
      seq: ++counter.seq,
      time: now(),
    };
    client.publish(dest, Buffer.from(json(info)));
  });
}
