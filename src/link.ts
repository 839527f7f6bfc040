// The way out that every link kind with a socket shares: a client connection (src/connection.ts), an
// MQTT connection (src/mqtt/connection.ts), a route (src/cluster/route.ts) and a leafnode connection
// (src/leaf/connection.ts). Each kind frames a message its own way (MSG/HMSG, an MQTT PUBLISH, a binary
// route frame, LMSG) into the one outbound buffer kept here; this class owns what happens to the bytes
// from there:
//
// - One write per tick: the first frame of a tick puts the link on the server's dirty list, and the
//   server calls flush() once at the end of the read (src/server.ts flushDirty).
// - A short write keeps the rest queued until the socket drains (onDrain) and dates the block
//   (blockedSince: the sweeps cut a link blocked past write_deadline).
// - Publisher stalls: a fast local publisher feeding a link whose socket is full has its reads paused
//   until the link drains to its stall point, or for STALL_MS (so that a stuck link still reaches
//   max_pending or the write deadline and is cut).
// - Past max_pending a link is a slow consumer: counted, logged as nats-server logs it, closed.
// - The sweep's size check (trimOutbound), the last best-effort write at close, the out statistics.
//
// What differs stays in each kind: the framing, which publishers it may pause and where its stall point
// is, what a slow route does, and its own steps around a write (traces, frames still being rewritten).
//
// TransportLink is a Link over a Transport (TCP or WebSocket: clients and MQTT clients), whose
// transport keeps the blocked flag; routes and leafnode connections keep it themselves.
//
// Invariants:
// - Bytes leave in the order they were queued (src/outbound.ts).
// - A link is on the dirty list at most once per tick (`dirty`).
// - Every pause a link puts on a publisher is resumed once: on drain, when its stall times out, or at close.
import { OutboundBuffer } from "./outbound.ts";
import { CloseReason } from "./protocol/errors.ts";
import type { Flushable, Server } from "./server.ts";
import type { Transport } from "./transport/transport.ts";

/** How long a publisher stays paused for a link that does not drain. */
const STALL_MS = 50;

/** A publisher whose reads a full receiver may pause: one resume for each pause. */
export interface ReadPausable {
  pauseForSlowReceiver(): void;
  resumeAfterSlowReceiver(): void;
}

export abstract class Link implements Flushable {
  closed = false;
  /** On the server's dirty list for this tick. */
  dirty = false;
  /** When a write last blocked (0 = not blocked): the sweeps count write_deadline from here. */
  blockedSince = 0;
  // What went out (as /connz, /routez and /leafz report it).
  outMsgs = 0;
  outBytes = 0;

  /** Frames queued for the peer, written once per tick. */
  protected readonly outbound = new OutboundBuffer();
  /** Publishers paused because this link's socket was full (null: none). */
  private stalledPublishers: ReadPausable[] | null = null;
  /** Counts stalls, so that a stall's timer knows whether its stall is still the current one. */
  private stallCount = 0;

  abstract readonly server: Server;
  abstract readonly logPrefix: string;
  /** True from a short write until the socket drains (a client's transport keeps the flag itself). */
  protected abstract blocked: boolean;
  /** Hands buf[start, end) to the socket; returns how many bytes it took. */
  protected abstract writeToPeer(buf: Buffer, start: number, end: number): number;
  abstract close(reason: string, errText: string | null): void;

  get pendingBytes(): number {
    return this.outbound.pending;
  }

  /** Puts the link on this tick's flush: once, however many frames the tick queues. */
  protected flushThisTick(): void {
    if (!this.dirty) {
      this.dirty = true;
      this.server.markDirty(this);
    }
  }

  /** Counts one message of `bytes` payload bytes out, on the link and the server. */
  protected countOut(bytes: number): void {
    this.outMsgs++;
    this.outBytes += bytes;
    const stats = this.server.stats;
    stats.outMsgs++;
    stats.outBytes += bytes;
  }

  /** Writes what is queued; once per tick (the server's dirty list), and on drain. */
  flush(): void {
    this.dirty = false;
    this.writeQueued();
  }

  /** Hands what is queued to the socket; what it does not take stays queued until it drains. */
  protected writeQueued(): void {
    const outbound = this.outbound;
    if (outbound.pending === 0 || this.closed || this.blocked) return;
    this.beforeWrite();
    const drained = outbound.consumed(this.writeToPeer(outbound.buf, outbound.head, outbound.end));
    if (drained) this.blockedSince = 0;
    else if (this.blockedSince === 0) this.blockedSince = Date.now();
    this.afterWrite(drained);
  }

  /** A kind's step before its queued bytes are written (the trace of what goes out). */
  protected beforeWrite(): void {}

  /** A kind's step after a write (`drained`: nothing is left queued). */
  protected afterWrite(_drained: boolean): void {}

  /** The socket can take more: what is queued goes, and stalled publishers go on once it is below the stall point. */
  onDrain(): void {
    this.blocked = false;
    this.flush();
    if (this.stalledPublishers !== null && this.outbound.pending <= this.stallPoint(this.server.options.maxPending)) {
      this.releaseStalledPublishers();
    }
  }

  /** The sweep's check of the outbound buffer's size (src/outbound.ts trim). */
  trimOutbound(): void {
    this.outbound.trim();
  }

  /** Pending bytes past which a publisher feeding this blocked link is paused (and at or below which a drain lets it go). */
  protected stallPoint(maxPending: number): number {
    return maxPending * 0.75;
  }

  /** Pauses a fast publisher's reads until this link drains, or for STALL_MS (a stuck link is still cut). */
  protected stallPublisher(publisher: ReadPausable): void {
    if (this.stalledPublishers === null) this.stalledPublishers = [];
    else if (this.stalledPublishers.includes(publisher)) return;
    this.stalledPublishers.push(publisher);
    publisher.pauseForSlowReceiver();
    this.server.stats.stalls++;
    const stall = ++this.stallCount;
    setTimeout(() => {
      if (this.stalledPublishers === null || stall !== this.stallCount) return; // drained meanwhile, or a later stall's timer
      this.stallTimedOut();
      this.releaseStalledPublishers();
    }, STALL_MS);
  }

  /** A kind's step when a stall ends without a drain (a client notes that its reader is stuck). */
  protected stallTimedOut(): void {}

  private releaseStalledPublishers(): void {
    const stalled = this.stalledPublishers;
    if (stalled === null) return;
    this.stalledPublishers = null;
    for (const publisher of stalled) publisher.resumeAfterSlowReceiver();
  }

  /**
   * Past max_pending: nats-server's slow consumer (counted, `Slow Consumer Detected: MaxPending of N
   * Exceeded` logged at `level`), closed.
   */
  protected closeAsSlowConsumer(maxPending: number, level: "info" | "error"): void {
    this.server.stats.slowConsumers++;
    this.server.log[level](`${this.logPrefix} - Slow Consumer Detected: MaxPending of ${maxPending} Exceeded`);
    this.close(CloseReason.SlowConsumerPendingBytes, null);
  }

  /**
   * At close: what is queued is written if the socket takes it (best effort), the buffer's memory goes,
   * and the publishers this link paused read again.
   */
  protected releaseOutput(): void {
    const outbound = this.outbound;
    if (!this.blocked && outbound.pending > 0) this.writeToPeer(outbound.buf, outbound.head, outbound.end);
    outbound.release();
    this.releaseStalledPublishers();
  }
}

/** A link over a Transport (a NATS or MQTT client over TCP or WebSocket): the transport keeps the blocked flag. */
export abstract class TransportLink extends Link {
  abstract readonly transport: Transport;

  protected get blocked(): boolean {
    return this.transport.blocked;
  }

  protected set blocked(blocked: boolean) {
    this.transport.blocked = blocked;
  }

  protected writeToPeer(buf: Buffer, start: number, end: number): number {
    return this.transport.write(buf, start, end);
  }
}
