import { isValidPublishSubject, isValidSubscribeSubject, subjectIsLiteral } from "./subjects/subject.ts";
import { deliverToMatches, routedRequest } from "./router.ts";
import { Subscription } from "./subscription.ts";
import type { Subscriber } from "./subscriber.ts";
import type { Server } from "./server.ts";
import type { Account } from "./accounts/account.ts";
import { tracing } from "./trace/current.ts";
import type { MsgTrace } from "./trace/msg-trace.ts";

/** A message as an internal client sees it: copies, safe to keep. */
export interface InternalMessage {
  readonly subject: string;
  readonly reply: string | null;
  /** The raw header block (`NATS/1.0…\r\n\r\n`), or null. */
  readonly headers: Buffer | null;
  readonly payload: Buffer;
  /** The message is traced (src/trace): a stream adds its `js` event to it. */
  trace?: MsgTrace;
  /** Who published it here: a client, an internal client, a route (null: not known, a message made up). */
  from?: Subscriber | null;
  /** A request another node's client sent: its ClientInfo JSON, as the route frame carried it (src/request-info.ts). */
  requestInfo?: string | null;
}

export type InternalHandler = (message: InternalMessage, sub: Subscription) => void;

export interface InternalSubscribeOptions {
  /**
   * Local-only: the other nodes of a cluster are not told of this interest (src/cluster/interest.ts),
   * so only this node's publishers reach it. Default false: interest is propagated like a client's.
   */
  local?: boolean;
}

/**
 * An in-process client of the core, the way nats-server's internal clients work: the stream
 * layer, system events and the like subscribe and publish through it instead of reaching into
 * the core. Deliveries to it are copied and handed to the handler after the current read is
 * done (a microtask), so handlers never run inside the publisher's delivery loop.
 */
export class InternalClient implements Subscriber {
  readonly headers = true;
  closed = false;
  private nextSid = 1;
  private readonly handlers = new Map<Subscription, InternalHandler>();
  private pending: { handler: InternalHandler; message: InternalMessage; sub: Subscription }[] = [];
  private drainScheduled = false;
  /** While held, deliveries queue up and no handler runs (the stream layer recovering its stores). */
  private held = false;
  /** Subscriptions out of the Sublist whose queued deliveries still reach their handler (retire()). */
  private retired: Subscription[] = [];

  /** The account whose subject space it subscribes and publishes in. */
  readonly account: Account;

  constructor(
    readonly server: Server,
    readonly name: string,
    account?: Account,
  ) {
    this.account = account ?? server.accounts.global;
  }

  subscribe(subject: string, handler: InternalHandler, queue: string | null = null, options: InternalSubscribeOptions = {}): Subscription {
    if (!isValidSubscribeSubject(subject)) throw new Error(`invalid subject ${JSON.stringify(subject)}`);
    const sub = new Subscription(this, subject, queue, String(this.nextSid++), subjectIsLiteral(subject));
    if (options.local === true) (sub as Subscription & { local?: boolean }).local = true; // read by src/cluster/interest.ts
    this.handlers.set(sub, handler);
    this.account.sublist.insert(sub);
    return sub;
  }

  unsubscribe(sub: Subscription): void {
    if (this.handlers.delete(sub)) this.account.sublist.remove(sub);
  }

  /**
   * Publishes like a client PUB/HPUB. Returns whether anyone received it. The message is not
   * delivered back to this client's own subscriptions.
   *
   * An invalid subject is dropped (false), never thrown: answers go to reply subjects that clients
   * choose, and the core does not validate those (a throw from a PubAck flush was uncaught and ended
   * the process).
   */
  publish(subject: string, payload: Uint8Array, reply: string | null = null, headers: Uint8Array | null = null): boolean {
    if (this.closed) return false;
    if (!isValidPublishSubject(subject)) return false;
    const headerSize = headers === null ? -1 : headers.length;
    const total = payload.length + (headers === null ? 0 : headers.length);
    const sizes = headers === null ? `${total}` : `${headerSize} ${total}`;
    // Compose the PUB frame in canonical form, so deliveries copy its tail like a client's PUB.
    const line = `${headers === null ? "PUB" : "HPUB"} ${subject} ${reply === null ? "" : `${reply} `}${sizes}\r\n`;
    const lineLength = Buffer.byteLength(line, "latin1");
    const frame = Buffer.allocUnsafe(lineLength + total + 2);
    frame.write(line, 0, "latin1");
    let at = lineLength;
    // (set, not a Buffer view's copy: a new Buffer over the same memory costs more than copying a PubAck)
    if (headers !== null) {
      frame.set(headers, at);
      at += headers.length;
    }
    frame.set(payload, at);
    at += payload.length;
    frame[at] = 13;
    frame[at + 1] = 10;
    const subjectStart = headers === null ? 4 : 5;
    const subjectEnd = subjectStart + subject.length;
    const replyStart = reply === null ? -1 : subjectEnd + 1;
    const replyEnd = reply === null ? -1 : replyStart + reply.length;
    const tailStart = subjectEnd + 1;
    const stats = this.server.stats;
    stats.inMsgs++;
    stats.inBytes += total;
    const result = this.account.sublist.match(subject);
    return deliverToMatches(result, this, true, frame, subjectStart, subjectEnd, replyStart, replyEnd, headerSize, lineLength, lineLength + total, tailStart);
  }

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
    _tailStart?: number,
    publisher?: Subscriber | null,
  ): void {
    const handler = this.handlers.get(sub);
    if (handler === undefined || this.closed) return;
    // Local-only: a message another node forwarded (for some other subscription here) is not for it.
    if (publisher?.isRoute === true && (sub as Subscription & { local?: boolean }).local === true) return;
    const message: InternalMessage = {
      subject: buf.latin1Slice(subjectStart, subjectEnd),
      reply: replyStart >= 0 ? buf.latin1Slice(replyStart, replyEnd) : null,
      headers: headerSize >= 0 ? Buffer.from(buf.subarray(payloadStart, payloadStart + headerSize)) : null,
      payload: Buffer.from(buf.subarray(headerSize >= 0 ? payloadStart + headerSize : payloadStart, payloadEnd)),
      from: publisher ?? null,
      requestInfo: routedRequest.info,
    };
    if (tracing.current !== null) message.trace = tracing.current;
    sub.delivered++;
    this.pending.push({ handler, message, sub });
    if (!this.drainScheduled && !this.held) {
      this.drainScheduled = true;
      queueMicrotask(() => this.drain());
    }
  }

  private drain(): void {
    this.drainScheduled = false;
    const pending = this.pending;
    this.pending = [];
    for (const { handler, message, sub } of pending) {
      if (this.closed || !this.handlers.has(sub)) continue;
      this.run(handler, message, sub);
    }
    for (const sub of this.retired) this.handlers.delete(sub);
    this.retired = [];
  }

  private run(handler: InternalHandler, message: InternalMessage, sub: Subscription): void {
    try {
      handler(message, sub);
    } catch (error) {
      this.server.log.error(`internal client ${this.name}: handler for ${sub.subject} failed: ${(error as Error).stack ?? error}`);
    }
  }

  /** Deliveries wait (in arrival order) until release(): subscriptions are taken, nothing is handled yet. */
  hold(): void {
    this.held = true;
  }

  /** Handles what was held, in the order it arrived, then every delivery as usual. */
  release(): void {
    this.held = false;
    if (this.pending.length > 0 && !this.drainScheduled) {
      this.drainScheduled = true;
      queueMicrotask(() => this.drain());
    }
  }

  /** Out of the Sublist now; what was delivered to it before still reaches its handler (then it is gone). */
  retire(sub: Subscription): void {
    if (!this.handlers.has(sub)) return;
    this.account.sublist.remove(sub);
    this.retired.push(sub);
    if (this.pending.length === 0) this.handlers.delete(sub);
  }

  /**
   * Hands `message` to this client's own subscriptions that match its subject now, at once (one per
   * queue group), as if it had been delivered to them: for deliveries held on a retired placeholder.
   */
  dispatch(message: InternalMessage): void {
    const result = this.account.sublist.match(message.subject);
    for (const sub of result.plain) {
      const handler = sub.client === this ? this.handlers.get(sub) : undefined;
      if (handler !== undefined) {
        sub.delivered++;
        this.run(handler, message, sub);
      }
    }
    for (const members of result.queues) {
      for (const sub of members) {
        const handler = sub.client === this ? this.handlers.get(sub) : undefined;
        if (handler === undefined) continue;
        sub.delivered++;
        this.run(handler, message, sub);
        break;
      }
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const sub of this.handlers.keys()) this.account.sublist.remove(sub);
    this.handlers.clear();
    this.pending = [];
  }
}
