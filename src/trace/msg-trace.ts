// One traced message on this server: nats-server's msgTrace and the MsgTraceEvent it publishes
// (server/msgtrace.go). Field names, order and omitempty rules are nats-server's, so its tooling
// (the `nats trace` command, MsgTraceEvent's UnmarshalJSON) reads natter's events.
import { goJson, nowNs, rfc3339Ns } from "../monitor/format.ts";

/** nats-server's connection kinds, as the events' `kind` numbers. */
export const ConnKind = { CLIENT: 0, ROUTER: 1, GATEWAY: 2, SYSTEM: 3, LEAF: 4, JETSTREAM: 5, ACCOUNT: 6 } as const;

/** nats-server's egress error texts. */
export const EgressError = {
  NoEcho: "Not delivered because of no echo",
  PubViolation: "Not delivered because publish denied for this subject",
  SubDeny: "Not delivered because subscription denies this subject",
  SubClosed: "Not delivered because subscription is closed",
  ClientClosed: "Not delivered because client is closed",
  AutoSubExceeded: "Not delivered because auto-unsubscribe exceeded",
  FastProducerNoStall: "Not delivered because fast producer not stalled and consumer is slow",
} as const;

/** Who a message came from or goes to, as the events name it. */
export interface TraceConn {
  readonly kind: number;
  readonly cid: number;
  /** The client's name, or the server name at the other end of a route or leaf link. */
  readonly name: string;
  /** The account the connection is in (egress names it when it differs from the ingress one). */
  readonly account: string;
}

type Event = Record<string, unknown>;

/** The parts of the event's `server` block that do not change (seq and time are stamped when it is sent). */
export interface TraceServerInfo {
  name: string;
  host: string;
  id: string;
  cluster?: string;
  ver: string;
  jetstream: boolean;
  flags: number;
}

export class MsgTrace {
  readonly events: Event[] = [];
  /** Hops to routes and leaf links counted so far (the event's `hops`). */
  private hops = 0;
  /** Holds of work still under way (a stream storing it, an import bridging it): the event waits for them. */
  private pending = 1;
  private sent = false;

  constructor(
    /** The subject the event is published to. */
    readonly dest: string,
    /** The account the message is in here: the event is published in it. */
    readonly account: string,
    /** Record everything, deliver nothing (Nats-Trace-Only). */
    readonly traceOnly: boolean,
    /** The Nats-Trace-Hop this server got ("" at the origin). */
    readonly hop: string,
    readonly headers: Record<string, string[]>,
    readonly msgSize: number,
    ingress: TraceConn,
    subject: string,
    private readonly publish: (trace: MsgTrace, json: (info: TraceServerInfo & { seq: number; time: string }) => string) => void,
  ) {
    this.events.push({ type: "in", ts: now(), kind: ingress.kind, cid: ingress.cid, name: ingress.name || undefined, acc: ingress.account, subj: subject });
  }

  /** nats-server's setIngressError (a publish permission violation). */
  ingressError(text: string): void {
    this.events[0]!.error = text;
  }

  /** The publish was refused (permissions): the event says why, and goes now. */
  refused(text: string): void {
    this.ingressError(text);
    this.release();
  }

  subjectMapping(to: string): void {
    this.events.push({ type: "sm", ts: now(), to });
  }

  streamExport(account: string, to: string): void {
    this.events.push({ type: "se", ts: now(), acc: account, to });
  }

  serviceImport(account: string, from: string, to: string): void {
    this.events.push({ type: "si", ts: now(), acc: account, from, to });
  }

  /**
   * The next hop's id for a copy sent over a route or leaf link: `<hop>.<n>` (`<n>` at the origin), as
   * nats-server's setHopHeader. The egress event of that copy names it.
   */
  nextHop(): string {
    this.hops++;
    return this.hop === "" ? String(this.hops) : `${this.hop}.${this.hops}`;
  }

  /** Records a delivery (or a refusal, with its error); returns the event, to add an error found after. */
  egress(to: TraceConn, sub: string | null, queue: string | null, hop: string | null, error: string | null): Event {
    const ingressAccount = this.events[0]!.acc;
    const client = to.kind === ConnKind.CLIENT;
    const event: Event = {
      type: "eg",
      ts: now(),
      kind: to.kind,
      cid: to.cid,
      name: to.name || undefined,
      hop: hop ?? undefined,
      acc: (client || to.kind === ConnKind.LEAF) && to.account !== ingressAccount ? to.account : undefined,
      sub: client && sub !== null ? sub : undefined,
      queue: client && queue !== null ? queue : undefined,
      error: error ?? undefined,
    };
    this.events.push(event);
    return event;
  }

  /** A stream took the message: its `js` event, completed by the stream once it has stored it (or not). */
  jetstream(stream: string): Event {
    const event: Event = { type: "js", ts: now(), stream };
    this.events.push(event);
    this.hold();
    return event;
  }

  hold(): void {
    this.pending++;
  }

  /** Ends one hold (the first is the ingress's own processing); the event goes when none is left. */
  release(): void {
    if (--this.pending > 0 || this.sent) return;
    this.sent = true;
    this.publish(this, (server) =>
      goJson({ server, request: { header: this.headers, msgsize: this.msgSize || undefined }, hops: this.hops || undefined, events: this.events }, false),
    );
  }
}

/** Go's time.Time as JSON: RFC 3339 with nanoseconds. */
export function now(): string {
  return rfc3339Ns(nowNs());
}
