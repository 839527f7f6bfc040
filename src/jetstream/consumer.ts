// A consumer: a cursor over a stream with acknowledgements, redelivery and two ways of delivering
// (push to a deliver subject, pull on MSG.NEXT requests), after nats-server's consumer.go.
//
// State, in nats-server's terms:
// - sseq: the next stream sequence to look at; dseq: the next consumer (delivery) sequence.
// - pending: delivered, not yet acknowledged (ack explicit/all), by stream sequence.
// - ack floor: everything at or below it is acknowledged.
// - numPending: messages at or above sseq that match the filters (the lag). Kept exact by counting:
//   +1 per matching message stored, -1 per first delivery, -1 per matching removal at or above sseq.
// Ack reply subjects are v1: $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<ts ns>.<pending>.
import { nuid } from "./nuid.ts";
import { consumerFilters, samplePercent, subjectIsSubsetOf, type ConsumerConfig } from "./config.ts";
import { deliverAs, hasDeliveryInterest, hasInterest } from "./deliver.ts";
import { Pacer } from "./pacer.ts";
import { matchesAny, nowMs } from "./store/indexed.ts";
import type { RemoveReason, StoredMessage } from "./store/store.ts";
import type { Stream } from "./stream.ts";
import { buildHeaders, nanosString, nsToMs, parseRfc3339, rfc3339, ZERO_TIME } from "./wire.ts";
import { overflowAllows, Pin, pullPriorityError, pullPriorityOf, type PullPriority } from "./priority.ts";

/** What a durable consumer keeps on disk besides its configuration. */
export interface ConsumerState {
  sseq: number;
  dseq: number;
  ack_floor: { stream_seq: number; consumer_seq: number };
  /** [stream seq, consumer seq, delivered at (ms)] */
  pending: [number, number, number][];
  /** [stream seq, deliveries] for messages delivered more than once */
  redelivered: [number, number][];
}

export interface ConsumerInfoJson {
  stream_name: string;
  name: string;
  created: string;
  config: ConsumerConfig;
  delivered: { consumer_seq: number; stream_seq: number; last_active?: string };
  ack_floor: { consumer_seq: number; stream_seq: number; last_active?: string };
  num_ack_pending: number;
  num_redelivered: number;
  num_waiting: number;
  num_pending: number;
  push_bound?: boolean;
  paused?: boolean;
  /** ns */
  pause_remaining?: number;
  ts?: string;
  priority_groups?: { group: string; pinned_client_id?: string; pinned_ts: string }[];
}

interface PendingAck {
  dseq: number;
  /** When it was (re)delivered, or when a -NAK with delay or +WPI moved its deadline. */
  ts: number;
  /** An explicit deadline (a NAK delay); 0 = ts + ack wait. */
  due: number;
}

interface WaitingRequest {
  reply: string;
  /** Messages still wanted, bytes still allowed (0 = no byte limit). */
  n: number;
  b: number;
  noWait: boolean;
  /** ms epoch, 0 = never. */
  expires: number;
  hbMs: number;
  hbNext: number;
  /** Messages delivered to it so far. */
  d: number;
  /** Priority group fields (JSON requests), or null. */
  pg: PullPriority | null;
}

/** Flow control: ask for an answer past this many unanswered bytes; stop past the limit (nats-server's values). */
/** Push deliveries per pass before the event loop's I/O gets a turn. */
const PUSH_BURST = 4096;
const FC_LIMIT = 32 * 1024 * 1024;
const FC_TRIGGER = FC_LIMIT / 16;

export class Consumer {
  filters: string[] | null;
  private sseq = 1;
  private dseq = 1;
  private ackFloor = { stream: 0, consumer: 0 };
  private readonly pending = new Map<number, PendingAck>();
  private readonly redelivered = new Map<number, number>();
  /** Stream sequences due for redelivery, ascending. */
  private rdq: number[] = [];
  /** deliver last_per_subject: the sequences still to deliver before sseq takes over. */
  private lps: number[] = [];
  /** While `lps` lasts, the cursor nats-server reports: the first of them, then just past the last delivered. */
  private lpsCursor = 0;
  private np = 0;
  private readonly waiting: WaitingRequest[] = [];
  private kicked = false;
  stopped = false;
  /** Push: someone listens on the deliver subject. */
  private interest = false;
  /** Last delivery, heartbeat or request (ms): idle heartbeats and inactivity count from it. */
  private lastActivity = nowMs();
  private lastDelivery = 0;
  private lastAckAt = 0;
  private lastHeartbeat = nowMs();
  // Flow control.
  private fcPendingBytes = 0;
  private fcId = "";
  private fcBytesAtRequest = 0;
  private fcCounter = 0;
  /** Needs its state written (durables). */
  dirty = false;
  /** rate_limit_bps and replay_policy original: when the next delivery may go. */
  private readonly pacer: Pacer;
  /** pause_until (ms), 0 when not set; the timer resumes deliveries then. */
  private pausedUntil = 0;
  private pauseTimer: ReturnType<typeof setTimeout> | null = null;
  /** priority_policy pinned_client: the client that gets the messages. */
  private readonly pin = new Pin();

  constructor(
    readonly stream: Stream,
    readonly name: string,
    public config: ConsumerConfig,
    readonly created: number,
    state: ConsumerState | null,
  ) {
    this.filters = consumerFilters(config);
    if (state !== null) this.restore(state);
    else this.start();
    this.interest = this.pushInterest();
    this.pacer = new Pacer(() => this.kick());
    this.pacer.configure(config, this.burstBytes(), stream.store.state().lastSeq);
    this.armPause();
  }

  /** Push: does anyone listen on the deliver subject (in the deliver group, when there is one)? */
  private pushInterest(): boolean {
    const c = this.config;
    return c.deliver_subject !== undefined && hasDeliveryInterest(this.stream.js.account, c.deliver_subject, c.deliver_group);
  }

  /** The rate limiter's burst: the largest message the stream can hold (nats-server's choice). */
  private burstBytes(): number {
    const max = this.stream.config.max_msg_size;
    return max > 0 ? max : this.stream.js.server.options.maxPayload;
  }

  /** The next stream sequence to look at, as reported (delivered.stream_seq is one below). */
  private get cursor(): number {
    return this.lps.length > 0 ? this.lpsCursor : this.sseq;
  }

  get isPush(): boolean {
    return this.config.deliver_subject !== undefined;
  }

  get isDurable(): boolean {
    return this.config.durable_name !== undefined;
  }

  private get ackNone(): boolean {
    return this.config.ack_policy === "none";
  }

  // ---- start position ---------------------------------------------------------------------------

  private start(): void {
    const store = this.stream.store;
    const st = store.state();
    const c = this.config;
    switch (c.deliver_policy) {
      case "all":
        this.sseq = st.firstSeq || 1;
        break;
      case "new":
        this.sseq = st.lastSeq + 1;
        break;
      case "last": {
        let last = 0;
        if (this.filters === null) last = st.lastSeq;
        else for (const f of this.filters) last = Math.max(last, store.last(f)?.seq ?? 0);
        this.sseq = last; // none matching: the clamp below starts at the first message
        break;
      }
      case "by_start_sequence":
        this.sseq = Math.max(c.opt_start_seq ?? 1, 1);
        break;
      case "by_start_time":
        this.sseq = this.firstAtOrAfter(parseRfc3339(c.opt_start_time ?? ""));
        break;
      case "last_per_subject":
        this.lps = store.lastPerSubject(this.filters);
        this.lpsCursor = this.lps[0] ?? 0;
        this.sseq = st.lastSeq + 1;
        break;
    }
    // A start outside the stream is clamped to it, as nats-server does (a start sequence past the end
    // waits for the next message rather than for that sequence).
    if (this.lps.length === 0) this.sseq = Math.min(Math.max(this.sseq, st.firstSeq, 1), st.lastSeq + 1);
    // Nothing acknowledged yet: the floor is 0 whatever the start (nats-server's reads back its store's
    // empty state); the first ack that empties pending brings it up to the cursor.
    this.ackFloor = { stream: 0, consumer: 0 };
    this.np = this.lps.length + store.count(this.sseq, this.filters);
  }

  /** The first sequence whose message is at or after `ms` (binary search over time-ordered sequences). */
  private firstAtOrAfter(ms: number): number {
    const store = this.stream.store;
    const st = store.state();
    if (Number.isNaN(ms) || st.messages === 0) return st.lastSeq + 1;
    let lo = st.firstSeq;
    let hi = st.lastSeq + 1;
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      const m = store.next(mid, null);
      if (m === null || m.ts >= ms) hi = mid;
      else lo = m.seq + 1;
    }
    return lo;
  }

  private restore(s: ConsumerState): void {
    this.sseq = s.sseq;
    this.dseq = s.dseq;
    this.ackFloor = { stream: s.ack_floor.stream_seq, consumer: s.ack_floor.consumer_seq };
    for (const [sseq, dseq, ts] of s.pending) this.pending.set(sseq, { dseq, ts, due: 0 });
    for (const [sseq, n] of s.redelivered) this.redelivered.set(sseq, n);
    this.np = this.stream.store.count(this.sseq, this.filters);
    // What was pending when we stopped is redelivered once its ack wait (counted from its delivery) is over.
  }

  state(): ConsumerState {
    return {
      sseq: this.sseq,
      dseq: this.dseq,
      ack_floor: { stream_seq: this.ackFloor.stream, consumer_seq: this.ackFloor.consumer },
      pending: [...this.pending].map(([s, p]) => [s, p.dseq, p.ts]),
      redelivered: [...this.redelivered],
    };
  }

  // ---- events from the stream -------------------------------------------------------------------

  /** A message was stored; returns whether this consumer wants it (interest retention). */
  onStored(m: StoredMessage): boolean {
    if (this.filters !== null && !matchesAny(this.filters, m.subject)) return false;
    if (m.seq >= this.sseq) this.np++;
    this.kick();
    return true;
  }

  onRemoved(seq: number, subject: string, reason: RemoveReason): void {
    if (seq >= this.sseq) {
      if (this.filters === null || matchesAny(this.filters, subject)) this.np--;
    } else if (this.lps.length > 0) {
      const i = this.lps.indexOf(seq);
      if (i >= 0) {
        this.lps.splice(i, 1);
        this.np--;
      }
    }
    // A pending message deleted or aged out counts as acknowledged (nats-server terminates it); a purge
    // settles pending messages in onPurged.
    const p = this.pending.get(seq);
    if (p !== undefined && reason !== "purge") this.ack(seq, p.dseq, true);
  }

  /**
   * After a purge (nats-server 2.10's consumer purge): `start` is where the purged subject (or the stream)
   * now starts, 0 when none of it is left. A consumer within the purged subject moves its cursor there; one
   * wider than it keeps its cursor but drops pending messages that are gone. The ack floor rises to below
   * the cursor, settling the pending messages under it.
   */
  onPurged(start: number, firstSeq: number, lastSeq: number, filter: string | undefined): void {
    let wider = false;
    if (filter !== undefined && !(this.filters !== null && this.filters.some((f) => subjectIsSubsetOf(f, filter)))) {
      if (this.filters !== null && !this.filters.some((f) => subjectIsSubsetOf(filter, f))) return; // untouched
      wider = true;
      start = firstSeq;
    }
    if (start === 0 && !wider) start = lastSeq + 1;
    // Everything the filter matches below `start` is gone, so num_pending holds.
    if (this.sseq < start) this.sseq = start;
    if (this.ackFloor.stream < start) {
      this.ackFloor.stream = start - 1;
      for (const [seq, p] of [...this.pending]) {
        if (seq <= this.ackFloor.stream || (wider && this.stream.store.get(seq) === null)) {
          if (p.dseq > this.ackFloor.consumer) this.ackFloor.consumer = p.dseq;
          this.pending.delete(seq);
          this.redelivered.delete(seq);
        }
      }
    }
    if (this.pending.size === 0) {
      this.redelivered.clear();
      this.ackFloor = { stream: this.cursor - 1, consumer: this.dseq - 1 };
    }
    // Queued redeliveries are dropped (all are below the cursor); one still pending waits out its ack wait again.
    const now = nowMs();
    for (const seq of this.rdq) {
      const p = this.pending.get(seq);
      if (p !== undefined) {
        p.ts = now;
        p.due = 0;
      }
    }
    this.rdq = [];
    this.stateChanged();
  }

  // ---- delivery ---------------------------------------------------------------------------------

  /** Schedules a delivery pass (once per tick, however many events ask). */
  kick(): void {
    if (this.kicked || this.stopped) return;
    this.kicked = true;
    queueMicrotask(() => {
      this.kicked = false;
      this.deliverSome();
    });
  }

  private deliverSome(): void {
    // The clock is read once per pass and every 256 deliveries in it (a pass takes a few ms at most).
    let now = nowMs();
    if (this.isPaused(now)) return; // requests wait; the pause timer kicks when it ends
    const js = this.stream.js;
    const maxAckPending = this.config.max_ack_pending ?? 0;
    // A push consumer with a long backlog (a mirror or source catching up) goes on after the sockets had
    // their turn: delivering it all in one pass kept every frame in memory and the first from the wire.
    const burst = this.isPush ? PUSH_BURST : 100_000;
    for (let guard = 0; guard < burst && !this.stopped; guard++) {
      if ((guard & 255) === 255) now = nowMs();
      let wr: WaitingRequest | null = null;
      if (this.isPush) {
        if (!this.interest) return;
        if (this.config.flow_control && this.fcPendingBytes > FC_LIMIT) return;
      } else {
        wr = this.nextWaiting();
        if (wr === null) return;
      }
      const atMaxAckPending = !this.ackNone && maxAckPending > 0 && this.pending.size >= maxAckPending;
      const next = this.nextMessage(atMaxAckPending);
      if (next === null) {
        // Stalled on max_ack_pending: requests wait (no_wait ones too) until acks make room.
        if (!atMaxAckPending) this.endOfStream();
        return;
      }
      const { msg, redelivery } = next;
      // pinned_client: the first request served when nobody holds the pin gets it (nats-server assigns it
      // once there is a message for it).
      if (wr !== null && this.config.priority_policy === "pinned_client" && this.pin.id === "" && wr.pg !== null && wr.pg.group !== "") {
        this.assignPin(wr.pg);
      }
      // Paced after the request's checks and before the delivery, in nats-server's order.
      const paceSize = this.pacer.active ? this.paceSize(msg, redelivery) : 0;
      if (paceSize > 0 && this.pacer.hold(msg, this.sseq, paceSize)) {
        if (redelivery) this.rdq.unshift(msg.seq);
        return; // the pacer kicks again when the message may go
      }
      const dc = redelivery ? (this.redelivered.get(msg.seq) ?? 1) + 1 : 1;
      const maxDeliver = this.config.max_deliver ?? -1;
      if (redelivery && maxDeliver > 0 && dc > maxDeliver) {
        this.exhausted(msg, dc - 1);
        continue;
      }
      // The ack reply carries the lag after this delivery.
      const pendingAfter = redelivery ? this.np : this.np - 1;
      const ackReply = `$JS.ACK.${this.stream.name}.${this.name}.${dc}.${msg.seq}.${this.dseq}.${nanosString(msg.ts)}.${Math.max(0, pendingAfter)}`;
      let headers = msg.headers;
      let data = msg.data;
      if (this.config.headers_only) {
        const base = headers === null ? "NATS/1.0\r\n" : headers.toString("latin1").replace(/\r\n\r\n$/, "\r\n");
        headers = Buffer.from(`${base}Nats-Msg-Size: ${data.length}\r\n\r\n`, "latin1");
        data = Buffer.alloc(0);
      }
      if (wr !== null && this.pin.id !== "") {
        const base = headers === null ? "NATS/1.0\r\n" : headers.toString("latin1").replace(/\r\n\r\n$/, "\r\n");
        headers = Buffer.from(`${base}Nats-Pin-Id: ${this.pin.id}\r\n\r\n`, "latin1");
      }
      // What nats-server charges against a request's max_bytes (and flow control counts): everything the
      // client can see of the message but the inbox it arrives on. Counted only where one of them uses it
      // (measuring the subject's UTF-8 was a few per cent of a pull consumer's deliveries).
      const counted = wr !== null ? wr.b > 0 : this.config.flow_control === true;
      const size = counted ? Buffer.byteLength(msg.subject) + ackReply.length + (headers?.length ?? 0) + data.length : 0;
      if (wr !== null && !this.chargeBytes(wr, size)) {
        // Too big for this request: it ends with 409, the message stays for the next request.
        this.removeWaiting(wr);
        this.status(wr.reply, "409 Message Size Exceeds MaxBytes", [["Nats-Pending-Messages", String(wr.n)], ["Nats-Pending-Bytes", String(wr.b)]]);
        if (redelivery) this.rdq.unshift(msg.seq);
        continue;
      }
      if (redelivery) this.redelivered.set(msg.seq, dc);
      else {
        if (this.lps.length > 0 && this.lps[0] === msg.seq) {
          this.lps.shift();
          this.lpsCursor = msg.seq + 1;
          // The last of them: nats-server resumes at the stream's last sequence when the consumer was made
          // (sseq - 1 here), which its next look passes over unless it was this very message.
          if (this.lps.length === 0 && msg.seq < this.sseq - 1) this.sseq--;
        } else this.sseq = msg.seq + 1;
        this.np--;
      }
      const dseq = this.dseq++;
      if (this.ackNone) {
        this.ackFloor = { stream: msg.seq, consumer: dseq };
      } else {
        // A redelivery keeps the delivery sequence of its first delivery: the ack floor counts from it.
        const was = this.pending.get(msg.seq);
        this.pending.set(msg.seq, { dseq: was?.dseq ?? dseq, ts: now, due: 0 });
      }
      const route = wr !== null ? wr.reply : this.config.deliver_subject!;
      const got = deliverAs(js.server, js.client, route, msg.subject, ackReply, headers, data);
      this.pacer.delivered(msg, paceSize);
      this.lastDelivery = now;
      this.lastActivity = now;
      this.lastHeartbeat = now;
      this.stateChanged();
      if (wr !== null) {
        wr.n--;
        wr.d++;
        if (wr.hbMs > 0) wr.hbNext = now + wr.hbMs;
        if (wr.n <= 0) {
          this.removeWaiting(wr);
          // A batch done with byte allowance left: say so, as nats-server 2.10 does.
          if (wr.b > 0) this.status(wr.reply, "409 Batch Completed", [["Nats-Pending-Messages", "0"], ["Nats-Pending-Bytes", String(wr.b)]]);
        }
      } else {
        if (!got) this.interest = false;
        if (this.config.flow_control) {
          this.fcPendingBytes += size;
          if (this.fcId === "" && this.fcPendingBytes > FC_TRIGGER) this.sendFlowControl();
        }
      }
    }
    // A long backlog: go on in the next turn of the event loop, after I/O.
    if (this.kicked || this.stopped) return;
    this.kicked = true;
    setImmediate(() => {
      this.kicked = false;
      this.deliverSome();
    });
  }

  /**
   * What a delivery costs the rate limiter: subject, ack reply, headers and data (nats-server's count).
   * The ack reply is spelled as deliverSome will spell it.
   */
  private paceSize(msg: StoredMessage, redelivery: boolean): number {
    const dc = redelivery ? (this.redelivered.get(msg.seq) ?? 1) + 1 : 1;
    const np = redelivery ? this.np : this.np - 1;
    const ackReply = `$JS.ACK.${this.stream.name}.${this.name}.${dc}.${msg.seq}.${this.dseq}.${nanosString(msg.ts)}.${np}`;
    return msg.subject.length + ackReply.length + (msg.headers?.length ?? 0) + msg.data.length;
  }

  /**
   * Charges a message of `size` bytes to a request's max_bytes (0 = no limit); false when it does not fit.
   * A budget used up exactly makes this message the request's last (nats-server sets its batch to 1).
   */
  private chargeBytes(wr: WaitingRequest, size: number): boolean {
    if (wr.b <= 0) return true;
    if (size > wr.b) return false;
    wr.b -= size;
    if (wr.b === 0) wr.n = 1;
    return true;
  }

  /**
   * Nothing left to deliver. The cursor moves past the stream's last message: a filtered consumer has looked
   * at (and skipped) everything up to it, so delivered.stream_seq says so, as nats-server's does. no_wait
   * requests that got messages end with 408; one that got none ends with 404 unless it has an expiry to wait
   * for (nats-server 2.9/2.10 leave it waiting forever; later versions answer 404).
   */
  private endOfStream(): void {
    if (this.lps.length === 0) this.sseq = Math.max(this.sseq, this.stream.store.state().lastSeq + 1);
    for (const w of this.waiting.filter((x) => x.noWait)) {
      if (w.d > 0) {
        this.removeWaiting(w);
        this.status(w.reply, "408 Request Timeout", [["Nats-Pending-Messages", String(w.n)], ["Nats-Pending-Bytes", String(w.b)]]);
      } else if (w.expires === 0) {
        this.removeWaiting(w);
        this.status(w.reply, "404 No Messages", []);
      }
    }
  }

  /** The next message to deliver: a redelivery first, then the next new one (unless blocked by max_ack_pending). */
  private nextMessage(onlyRedeliveries: boolean): { msg: StoredMessage; redelivery: boolean } | null {
    const store = this.stream.store;
    while (this.rdq.length > 0) {
      const seq = this.rdq.shift()!;
      if (!this.pending.has(seq)) continue;
      const msg = store.get(seq);
      if (msg === null) {
        this.pending.delete(seq);
        continue;
      }
      return { msg, redelivery: true };
    }
    if (onlyRedeliveries) return null;
    while (this.lps.length > 0) {
      const msg = store.get(this.lps[0]!);
      if (msg !== null) return { msg, redelivery: false };
      this.lps.shift();
    }
    const msg = store.next(this.sseq, this.filters);
    if (msg === null) return null;
    // The cursor skips what the filter passed over (num_pending is unchanged: those never matched).
    this.sseq = msg.seq;
    return { msg, redelivery: false };
  }

  private status(reply: string, status: string, entries: [string, string][]): void {
    this.stream.js.client.publish(reply, Buffer.alloc(0), null, buildHeaders(status, entries));
  }

  private sendFlowControl(): void {
    this.fcId = `$JS.FC.${this.stream.name}.${this.name}.${++this.fcCounter}`;
    this.fcBytesAtRequest = this.fcPendingBytes;
    this.stream.js.client.publish(this.config.deliver_subject!, Buffer.alloc(0), this.fcId, buildHeaders("100 FlowControl Request", []));
  }

  /** The client answered a flow control request. */
  onFlowControlReply(subject: string): void {
    if (subject !== this.fcId) return;
    this.fcPendingBytes = Math.max(0, this.fcPendingBytes - this.fcBytesAtRequest);
    this.fcId = "";
    this.kick();
  }

  private heartbeat(to: string): void {
    const entries: [string, string][] = [
      ["Nats-Last-Consumer", String(this.dseq - 1)],
      ["Nats-Last-Stream", String(this.cursor - 1)],
    ];
    if (this.fcId !== "") entries.push(["Nats-Consumer-Stalled", this.fcId]);
    this.stream.js.client.publish(to, Buffer.alloc(0), null, buildHeaders("100 Idle Heartbeat", entries));
  }

  // ---- pull requests ----------------------------------------------------------------------------

  /** A CONSUMER.MSG.NEXT request (or +NXT): `reply` is where messages go. */
  onNextRequest(reply: string, body: Buffer): void {
    const send = (status: string, entries: [string, string][] = []) => this.status(reply, status, entries);
    this.lastActivity = nowMs();
    if (this.isPush) return send("409 Consumer is push based");
    let batch = 1;
    let expires = 0;
    let noWait = false;
    let maxBytes = 0;
    let hbNs = 0;
    let pg: PullPriority | null = null;
    const text = body.toString().trim();
    if (text.startsWith("{")) {
      let req: Record<string, unknown>;
      try {
        req = JSON.parse(text);
      } catch (error) {
        // The parser's message quotes the offending character raw: escape control characters (a header line).
        return send(`400 Bad Request - ${(error as Error).message.replace(/[\x00-\x1f\x7f]/g, (ch) => JSON.stringify(ch).slice(1, -1))}`);
      }
      batch = typeof req.batch === "number" ? req.batch : 1;
      expires = typeof req.expires === "number" ? req.expires : 0;
      noWait = req.no_wait === true;
      maxBytes = typeof req.max_bytes === "number" ? req.max_bytes : 0;
      hbNs = typeof req.idle_heartbeat === "number" ? req.idle_heartbeat : 0;
      pg = pullPriorityOf(req);
      if (hbNs > 0 && expires === 0) return send("400 Bad Request - heartbeat value too large");
      if (hbNs > 0 && hbNs * 2 > expires) return send("400 Bad Request - heartbeat value too large");
    } else if (/^[+-]?\d+$/.test(text)) {
      batch = Number(text); // anything else is a batch of 1, as nats-server reads it
    }
    if (batch < 1) batch = 1;
    const c = this.config;
    if (c.max_batch && batch > c.max_batch) return send(`409 Exceeded MaxRequestBatch of ${c.max_batch}`);
    if (expires > 0 && c.max_expires && expires > c.max_expires) return send(`409 Exceeded MaxRequestExpires of ${goDuration(c.max_expires)}`);
    if (maxBytes > 0 && c.max_bytes && maxBytes > c.max_bytes) return send(`409 Exceeded MaxRequestMaxBytes of ${c.max_bytes}`);
    const now = nowMs();
    if (pg !== null) {
      const refused = pullPriorityError(pg, c, this.pin.id);
      if (refused !== null) return send(refused);
      if (this.pin.id !== "" && pg.id === this.pin.id) this.pin.touch(now, nsToMs(c.priority_timeout ?? 0));
    }
    if (this.waiting.length >= (c.max_waiting ?? 512)) this.expireWaiting(now);
    if (noWait) {
      // One shot: answered now when nothing is there, or when the requests already waiting will take all
      // there is; otherwise it waits like any request (through max_ack_pending stalls too) and ends at the
      // end of the stream.
      const available = this.np + this.rdq.length;
      if (available === 0 && expires === 0) return send("404 No Messages");
      if (available > 0) {
        this.expireWaiting(now);
        let wanted = 0;
        for (const w of this.waiting) wanted += w.n;
        if (available < wanted) return send("408 Requests Pending");
      }
    }
    if (this.waiting.length >= (c.max_waiting ?? 512)) return send("409 Exceeded MaxWaiting");
    const hbMs = nsToMs(hbNs);
    this.waiting.push({
      reply, n: batch, b: maxBytes, noWait, expires: expires !== 0 ? Math.max(1, now + nsToMs(expires)) : 0, hbMs, hbNext: hbMs > 0 ? now + hbMs : 0, d: 0, pg,
    });
    this.kick();
  }

  /** The first waiting request that can still take messages (expired ones answered 408, abandoned ones dropped). */
  private nextWaiting(): WaitingRequest | null {
    const now = nowMs();
    while (this.waiting.length > 0) {
      const wr = this.waiting[0]!;
      if (wr.expires > 0 && now >= wr.expires) {
        this.waiting.shift();
        this.status(wr.reply, "408 Request Timeout", [["Nats-Pending-Messages", String(wr.n)], ["Nats-Pending-Bytes", String(wr.b)]]);
        continue;
      }
      if (!hasInterest(this.stream.js.account, wr.reply)) {
        this.waiting.shift();
        continue;
      }
      return this.config.priority_policy === undefined ? wr : this.nextByPriority();
    }
    return null;
  }

  /**
   * With a priority policy the request served is not simply the oldest (nats-server's nextWaiting): pinned,
   * the pin holder's (the oldest without an id while nobody holds it; a request with a stale id gets 423
   * Nats-Wrong-Pin-Id); overflow, the oldest whose min_pending / min_ack_pending is reached.
   */
  private nextByPriority(): WaitingRequest | null {
    const pinned = this.config.priority_policy === "pinned_client";
    const now = nowMs();
    for (const wr of [...this.waiting]) {
      if (wr.expires > 0 && now >= wr.expires) continue; // answered 408 by the sweep
      const id = wr.pg?.id ?? "";
      if (pinned) {
        if (this.pin.id === "" ? id === "" : id === this.pin.id) return wr;
        if (id === "") continue; // waits for the pin to go
        this.removeWaiting(wr);
        this.status(wr.reply, "423 Nats-Wrong-Pin-Id", [["Nats-Pending-Messages", String(wr.n)], ["Nats-Pending-Bytes", String(wr.b)]]);
        continue;
      }
      if (overflowAllows(wr.pg, this.np, this.pending.size)) return wr;
    }
    return null;
  }

  // ---- priority groups: the pin -------------------------------------------------------------------

  /** The request being served gets the pin: its further messages go to it too. */
  private assignPin(pg: PullPriority): void {
    this.pin.assign(nuid(), nowMs(), nsToMs(this.config.priority_timeout ?? 0));
    pg.id = this.pin.id;
    const group = pg.group;
    this.stream.js.advisory(`$JS.EVENT.ADVISORY.CONSUMER.PINNED.${this.stream.name}.${this.name}`, {
      type: "io.nats.jetstream.advisory.v1.consumer_group_pinned", id: nuid(), timestamp: rfc3339(nowMs()),
      account: this.stream.js.account.name, stream: this.stream.name, consumer: this.name, group, pinned_id: this.pin.id,
    });
  }

  /** `$JS.API.CONSUMER.UNPIN` ("admin") or no request with the pin for priority_timeout ("timeout"). */
  unpin(group: string, reason: "admin" | "timeout"): void {
    this.pin.clear();
    this.stream.js.advisory(`$JS.EVENT.ADVISORY.CONSUMER.UNPINNED.${this.stream.name}.${this.name}`, {
      type: "io.nats.jetstream.advisory.v1.consumer_group_unpinned", id: nuid(), timestamp: rfc3339(nowMs()),
      account: this.stream.js.account.name, stream: this.stream.name, consumer: this.name, group, reason,
    });
    this.kick();
  }

  // ---- pause --------------------------------------------------------------------------------------

  isPaused(now: number): boolean {
    return this.pausedUntil > now;
  }

  /** Sets the pause from the config; when it ends, an advisory goes out and deliveries resume. */
  private armPause(): void {
    if (this.pauseTimer !== null) clearTimeout(this.pauseTimer);
    this.pauseTimer = null;
    this.pausedUntil = this.config.pause_until === undefined ? 0 : parseRfc3339(this.config.pause_until);
    const wait = this.pausedUntil - nowMs();
    if (wait <= 0 || this.stopped) return;
    this.pauseTimer = setTimeout(() => {
      this.pauseTimer = null;
      if (this.pausedUntil - nowMs() > 0) return this.armPause(); // a timer capped below the pause's length
      this.pauseAdvisory();
      this.kick();
    }, Math.min(wait + 1, 2 ** 31 - 1));
    this.pauseTimer.unref?.();
  }

  private pauseAdvisory(): void {
    const until = this.config.pause_until;
    this.stream.js.advisory(`$JS.EVENT.ADVISORY.CONSUMER.PAUSE.${this.stream.name}.${this.name}`, {
      type: "io.nats.jetstream.advisory.v1.consumer_pause", id: nuid(), timestamp: rfc3339(nowMs()),
      stream: this.stream.name, consumer: this.name, paused: this.isPaused(nowMs()), pause_until: until ?? ZERO_TIME,
    });
  }

  private removeWaiting(wr: WaitingRequest): void {
    const i = this.waiting.indexOf(wr);
    if (i >= 0) this.waiting.splice(i, 1);
  }

  private expireWaiting(now: number): void {
    for (const wr of [...this.waiting]) {
      if (wr.expires > 0 && now >= wr.expires) {
        this.removeWaiting(wr);
        this.status(wr.reply, "408 Request Timeout", [["Nats-Pending-Messages", String(wr.n)], ["Nats-Pending-Bytes", String(wr.b)]]);
      } else if (!hasInterest(this.stream.js.account, wr.reply)) {
        this.removeWaiting(wr);
      }
    }
  }

  // ---- acks -------------------------------------------------------------------------------------

  /** An ack on `$JS.ACK.…`: tokens after the consumer name are delivered count, stream seq, consumer seq. */
  onAck(sseq: number, dseq: number, body: Buffer, reply: string | null): void {
    const text = body.toString("latin1");
    const kind = text === "" ? "+ACK" : text.slice(0, 4);
    const now = nowMs(); // the clock once per ack: reading it was a few per cent of an R3 pull consumer's leader
    this.lastActivity = now;
    switch (kind) {
      case "+ACK":
        this.ack(sseq, dseq, false, true, now);
        break;
      case "-NAK": {
        const p = this.pending.get(sseq);
        if (p !== undefined) {
          const delay = parseNakDelay(text.slice(4).trim());
          if (delay > 0) p.due = nowMs() + delay;
          else this.queueRedelivery(sseq);
        }
        break;
      }
      case "+WPI": {
        const p = this.pending.get(sseq);
        if (p !== undefined) {
          p.ts = nowMs();
          p.due = 0;
        }
        break;
      }
      case "+TER": {
        const p = this.pending.get(sseq);
        if (p !== undefined) {
          const msg = this.stream.store.get(sseq);
          const dc = this.redelivered.get(sseq) ?? 1;
          this.ack(sseq, dseq);
          if (msg !== null) this.stream.js.deadLetter(this, msg, dc, "terminated", text.slice(5).trim(), p.dseq);
        }
        break;
      }
      case "+NXT": {
        this.ack(sseq, dseq, false, true, now);
        if (reply !== null) {
          this.onNextRequest(reply, Buffer.from(text.slice(4).trim()));
          return;
        }
        break;
      }
    }
    if (reply === null) return;
    // A replicated durable confirms the ack once a majority has it (nats-server's addAckReply): an ack
    // confirmed is not delivered again after a failover.
    const replication = this.stream.replication;
    if (replication !== null && this.isDurable) replication.replyWhenAckReplicated(reply);
    else this.stream.js.client.publish(reply, Buffer.alloc(0));
  }

  /** Its state changed: written to disk later (`dirty`); a replicated stream's durable sends it through the group now. */
  private stateChanged(): void {
    this.dirty = true;
    if (this.isDurable) this.stream.replication?.consumerStateChanged(this);
  }

  /**
   * An ack of stream sequence `sseq` (also a +TERM, or a pending message's removal from the stream);
   * `ackDseq` is the delivery sequence its ack subject carries (ack all counts from it). The ack floor moves
   * as nats-server's does: ack all puts it at the acked message; an explicit ack moves it only when it acks
   * the delivery just above the floor (to just below the next pending one), or when nothing is left pending.
   * `sample`: an +ACK or +NXT, which sample_freq samples (nats-server's doSample). `now`: the ack's time.
   */
  private ack(sseq: number, ackDseq: number, removed = false, sample = false, now = nowMs()): void {
    if (this.ackNone) return;
    const maxAckPending = this.config.max_ack_pending ?? 0;
    const wasStalled = maxAckPending > 0 && this.pending.size >= maxAckPending;
    const settled: number[] = [];
    if (this.config.ack_policy === "all") {
      if (ackDseq <= this.ackFloor.consumer || sseq <= this.ackFloor.stream) return;
      this.ackFloor = { stream: sseq, consumer: ackDseq };
      for (const s of [...this.pending.keys()]) {
        if (s <= sseq) {
          this.pending.delete(s);
          this.redelivered.delete(s);
          settled.push(s);
        }
      }
    } else {
      const p = this.pending.get(sseq);
      if (p === undefined) {
        this.redelivered.delete(sseq); // one dropped at max_deliver
        return;
      }
      if (sample) this.sampleAck(sseq, p, now);
      this.pending.delete(sseq);
      this.redelivered.delete(sseq);
      this.moveAckFloor(sseq, p.dseq);
      settled.push(sseq);
    }
    if (!removed) for (const s of settled) this.stream.acked(this, s);
    else if (settled.length > 1) {
      // Ack all settled messages below the removed one: retention may remove them, but not from inside the
      // store's removal callback.
      queueMicrotask(() => {
        for (const s of settled) if (s !== sseq) this.stream.acked(this, s);
      });
    }
    if (!removed) this.lastAckAt = now;
    this.stateChanged();
    // Only a consumer stalled on max_ack_pending has anything new to deliver after an ack.
    if (wasStalled) this.kick();
  }

  /**
   * sample_freq: an ack-latency sample on $JS.EVENT.METRIC.CONSUMER.ACK.<stream>.<consumer> for that share
   * of explicit acks (nats-server's JSConsumerAckMetric; ack_time in nanoseconds since the delivery).
   */
  private sampleAck(sseq: number, p: PendingAck, now: number): void {
    const percent = samplePercent(this.config);
    if (percent <= 0) return;
    if (percent < 100 && Math.floor(Math.random() * 100) > percent) return; // nats-server: rand.Int31n(100) <= freq
    const js = this.stream.js;
    js.advisory(`$JS.EVENT.METRIC.CONSUMER.ACK.${this.stream.name}.${this.name}`, {
      type: "io.nats.jetstream.metric.v1.consumer_ack",
      id: nuid(),
      timestamp: rfc3339(now),
      stream: this.stream.name,
      consumer: this.name,
      consumer_seq: p.dseq,
      stream_seq: sseq,
      ack_time: Math.max(0, Math.round((now - p.ts) * 1e6)),
      deliveries: this.redelivered.get(sseq) ?? 1,
    });
  }

  /** After an explicit ack of (sseq, its first delivery's dseq). */
  private moveAckFloor(sseq: number, dseq: number): void {
    if (this.pending.size === 0) {
      this.ackFloor = { stream: this.cursor - 1, consumer: this.dseq - 1 };
      return;
    }
    if (dseq !== this.ackFloor.consumer + 1) return;
    this.ackFloor = { stream: sseq, consumer: dseq };
    const next = this.nextPendingAbove(sseq);
    if (next < this.sseq) this.ackFloor = { stream: next - 1, consumer: this.pending.get(next)!.dseq - 1 };
  }

  /**
   * The lowest pending stream sequence above `sseq` (Infinity: none). Acks in delivery order find it right
   * above (nats-server's look goes up sequence by sequence too); a walk of the sequences stops after as many
   * steps as there are pending messages, and the pending list is looked through instead (a filter skipping
   * most of the stream): a pull consumer with a thousand in flight paid a walk of them all per ack.
   */
  private nextPendingAbove(sseq: number): number {
    const end = Math.min(this.sseq, sseq + 1 + this.pending.size);
    for (let s = sseq + 1; s < end; s++) if (this.pending.has(s)) return s;
    if (end === this.sseq) return Infinity; // nothing delivered above that is not looked at
    let next = Infinity;
    for (const s of this.pending.keys()) if (s > sseq && s < next) next = s;
    return next;
  }

  /** Has this consumer acknowledged (or been delivered, for ack none) this sequence? */
  /** The stream sequence up to which everything is acknowledged. */
  get ackFloorSeq(): number {
    return this.ackFloor.stream;
  }

  hasAcked(seq: number): boolean {
    if (this.filters !== null) {
      const subject = this.stream.store.subjectOf(seq);
      if (subject !== null && !matchesAny(this.filters, subject)) return true;
    }
    return seq <= this.ackFloor.stream || (seq < this.sseq && !this.pending.has(seq));
  }

  private queueRedelivery(sseq: number): void {
    if (this.rdq.includes(sseq)) return;
    let i = this.rdq.length;
    while (i > 0 && this.rdq[i - 1]! > sseq) i--;
    this.rdq.splice(i, 0, sseq);
    this.kick();
  }

  private ackWaitMs(deliveries: number): number {
    const c = this.config;
    if (c.backoff && c.backoff.length > 0) return nsToMs(c.backoff[Math.min(deliveries - 1, c.backoff.length - 1)]!);
    return nsToMs(c.ack_wait ?? 30_000_000_000);
  }

  /** A message that reached max_deliver: it leaves pending, an advisory goes out, and the dead-letter subject gets it. */
  private exhausted(msg: StoredMessage, deliveries: number): void {
    const p = this.pending.get(msg.seq);
    this.pending.delete(msg.seq);
    // The ack floor stays, and it counts as redelivered until acked (num_redelivered), as in nats-server.
    this.redelivered.set(msg.seq, deliveries);
    this.stateChanged();
    this.stream.js.deadLetter(this, msg, deliveries, "max_deliveries", "", p?.dseq ?? 0);
  }

  // ---- timers (the JetStream sweep calls this every tick) ----------------------------------------

  /** Redeliveries past their ack wait, request expiry and heartbeats, push interest. Returns false when an ephemeral should go. */
  tick(now: number): boolean {
    if (this.stopped) return true;
    if (this.pin.id !== "" && now >= this.pin.deadline) this.unpin(this.config.priority_groups?.[0] ?? "", "timeout");
    if (!this.ackNone) {
      const maxDeliver = this.config.max_deliver ?? -1;
      for (const [seq, p] of this.pending) {
        const deliveries = this.redelivered.get(seq) ?? 1;
        const due = p.due > 0 ? p.due : p.ts + this.ackWaitMs(deliveries);
        if (now < due) continue;
        if (maxDeliver > 0 && deliveries >= maxDeliver) {
          // No more deliveries: it leaves at once, whether or not anyone is pulling.
          const msg = this.stream.store.get(seq);
          if (msg !== null) this.exhausted(msg, deliveries);
          else this.pending.delete(seq);
          continue;
        }
        p.ts = now;
        p.due = Number.MAX_SAFE_INTEGER; // until it is actually redelivered
        this.queueRedelivery(seq);
      }
    }
    if (this.isPush) {
      const deliverSubject = this.config.deliver_subject!;
      const had = this.interest;
      this.interest = this.pushInterest();
      if (this.interest) {
        this.lastActivity = now;
        const hb = nsToMs(this.config.idle_heartbeat ?? 0);
        if (!had) {
          // Interest just appeared: what is waiting goes out first, so no heartbeat may overtake it.
          this.lastHeartbeat = now;
          this.kick();
        } else if (hb > 0 && now - this.lastHeartbeat >= hb) {
          this.lastHeartbeat = now;
          this.heartbeat(deliverSubject);
        }
      }
    } else if (this.waiting.length > 0) {
      this.lastActivity = now;
      let expired = false;
      for (const wr of [...this.waiting]) {
        if (wr.expires > 0 && now >= wr.expires) expired = true;
        else if (wr.hbMs > 0 && now >= wr.hbNext) {
          wr.hbNext = now + wr.hbMs;
          this.heartbeat(wr.reply);
        }
      }
      if (expired) this.expireWaiting(now);
    }
    const threshold = this.config.inactive_threshold ?? 0;
    if (threshold > 0 && now - this.lastActivity > nsToMs(threshold)) return false;
    return true;
  }

  /** Redelivery timestamps restart from now (after a restart). */
  stop(): void {
    this.stopped = true;
    this.pacer.stop();
    if (this.pauseTimer !== null) clearTimeout(this.pauseTimer);
    this.pauseTimer = null;
    for (const wr of this.waiting.splice(0)) this.status(wr.reply, "409 Consumer Deleted", []);
  }

  // ---- info -------------------------------------------------------------------------------------

  info(): ConsumerInfoJson {
    const info: ConsumerInfoJson = {
      stream_name: this.stream.name,
      name: this.name,
      created: rfc3339(this.created),
      config: this.config,
      delivered: { consumer_seq: this.dseq - 1, stream_seq: this.cursor - 1 },
      ack_floor: { consumer_seq: this.ackFloor.consumer, stream_seq: this.ackFloor.stream },
      num_ack_pending: this.pending.size,
      num_redelivered: this.redelivered.size,
      num_waiting: this.waiting.length,
      num_pending: Math.max(0, this.np),
    };
    if (this.lastDelivery > 0) info.delivered.last_active = rfc3339(this.lastDelivery);
    if (this.lastAckAt > 0) info.ack_floor.last_active = rfc3339(this.lastAckAt);
    if (this.isPush && this.interest) info.push_bound = true;
    const now = nowMs();
    if (this.isPaused(now)) {
      info.paused = true;
      info.pause_remaining = Math.round((this.pausedUntil - now) * 1e6);
    }
    info.ts = rfc3339(now);
    if (this.config.priority_groups) {
      // One group: the pin is the consumer's (nats-server keeps one, too).
      info.priority_groups = this.config.priority_groups.map((group) => ({
        group, ...(this.pin.id !== "" ? { pinned_client_id: this.pin.id } : {}), pinned_ts: this.pin.at > 0 ? rfc3339(this.pin.at) : ZERO_TIME,
      }));
    }
    return info;
  }

  /** A new configuration for an existing consumer (what may change was checked by the API). */
  update(config: ConsumerConfig): void {
    const old = this.config;
    this.config = config;
    if (config.deliver_subject !== old.deliver_subject) {
      // Re-pointed (nobody listened on the old subject): what was pending goes again to the new one, as nats-server does.
      for (const seq of this.pending.keys()) this.queueRedelivery(seq);
    }
    this.interest = this.pushInterest();
    const filters = consumerFilters(config);
    if (JSON.stringify(filters) !== JSON.stringify(this.filters)) {
      this.filters = filters;
      this.np = this.lps.length + this.stream.store.count(this.sseq, filters); // nats-server recounts on update
    }
    this.pacer.configure(config, this.burstBytes(), -1);
    if (config.pause_until !== old.pause_until) {
      this.armPause();
      this.pauseAdvisory();
    }
    if (config.priority_policy !== "pinned_client") this.pin.clear();
    this.stateChanged();
    this.kick();
  }

  /** For /jsz and tests: a fresh id, unique per process. */
  static ephemeralName(): string {
    return nuid();
  }
}

/** `-NAK {"delay": ns}` or `-NAK 5s` style; 0 = at once. */
function parseNakDelay(arg: string): number {
  if (arg === "") return 0;
  if (arg.startsWith("{")) {
    try {
      const j = JSON.parse(arg);
      return typeof j.delay === "number" && j.delay > 0 ? nsToMs(j.delay) : 0;
    } catch {
      return 0;
    }
  }
  const m = /^(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)$/.exec(arg);
  if (!m) return 0;
  const unit = { ns: 1e-6, us: 1e-3, "µs": 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2]!]!;
  return Number(m[1]) * unit;
}

/** A Go duration string for nanoseconds (as nats-server prints MaxRequestExpires). */
function goDuration(ns: number): string {
  const ms = ns / 1e6;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
