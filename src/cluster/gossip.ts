// Cluster membership by gossip: SWIM (Das, Gupta, Motivala 2002) with the refinements memberlist made
// common, over datagrams (UDP on the cluster port), encoded with msgpack.
//
// - Failure detection: every probe interval a member pings the next member of a shuffled round-robin
//   list. No ack within the probe timeout: it asks `indirectChecks` other members to ping the target
//   for it (ping-req). No ack, direct or indirect, by the end of the interval: the target becomes
//   *suspect*; a suspect not cleared within the suspicion timeout is *dead* and removed.
// - Incarnations: only a member raises its own incarnation. Hearing itself suspected or declared dead
//   at incarnation i, it answers alive at i + 1, which overrides the rumour everywhere. A member starts
//   at its boot time in milliseconds, so a restarted member outranks every rumour about its previous
//   life without having to hear them first, and simply rejoins.
// - Dissemination: every change (alive, suspect, dead) is piggybacked on the pings and acks that flow
//   anyway, and while changes are pending they also go to a few random members every gossip interval
//   (memberlist's gossip); each is sent retransmitMult × ⌈log10(n + 1)⌉ times: O(log n) rounds to reach
//   all. A quiet cluster sends only its probes.
// - Joining, healing, anti-entropy: push-pull sync of the whole table (join = sync with a seed). While
//   a seed is not a live member, or dead members are remembered (tombstones, kept for an hour), a sync
//   goes to one of them every sync interval: a restarted seed, and the other side of a healed partition,
//   are found again and the views merge (a member that was declared dead refutes it on hearing it).
// - Precedence of records about member m (standard SWIM): alive(i) beats any record with a lower
//   incarnation; suspect(i) beats alive(j <= i) and suspect(j < i); dead(i) beats alive/suspect(j <= i).
// - Every message carries the protocol version and the cluster name; a message of another version or
//   cluster is dropped, with one log line per sender address.
import { decode, encode } from "@msgpack/msgpack";
import { PROTOCOL_VERSION } from "./protocol.ts";

export const MemberState = { ALIVE: 0, SUSPECT: 1, DEAD: 2 } as const;
export type MemberState = (typeof MemberState)[keyof typeof MemberState];

/** What a member tells about itself besides its state, in wire casing (short keys: datagrams stay small). */
export interface MemberMeta {
  /** server_id of the process: a restart changes it. */
  sid: string;
  /** server_name. */
  name: string;
  /** Client URLs (host:port) clients may fail over to; [] with --no_advertise. */
  urls: string[];
  /** WebSocket URLs, likewise. */
  ws: string[];
}

export interface Member {
  /** The member's cluster address, host:port (routes and gossip both use it). */
  readonly id: string;
  inc: number;
  state: MemberState;
  meta: MemberMeta | null;
  /** When the state or incarnation last changed (ms). */
  changedAt: number;
}

/** One member record on the wire. */
interface MemberRecord {
  i: string;
  n: number;
  s: MemberState;
  m?: MemberMeta;
}

const MsgType = { PING: 1, ACK: 2, PING_REQ: 3, SYNC: 4, REJECT: 5, GOSSIP: 6 } as const;
type MsgType = (typeof MsgType)[keyof typeof MsgType];

/** One gossip datagram. */
interface GossipMessage {
  /** PROTOCOL_VERSION. */
  v: number;
  /** Cluster name. */
  c: string;
  t: MsgType;
  /** Sender's member id and incarnation. */
  f: string;
  fi: number;
  /** Probe sequence number (PING, ACK, PING_REQ). */
  s?: number;
  /** PING: the member meant (a ping that reaches someone else at that address is ignored); PING_REQ: whom to ping. */
  to?: string;
  /** Piggybacked updates. */
  u?: MemberRecord[];
  /** SYNC: the sender's whole table, and whether it wants the receiver's back. */
  m?: MemberRecord[];
  r?: boolean;
  /** REJECT: why the sender dropped a SYNC of ours (another cluster); never answered. */
  why?: string;
}

export interface GossipTiming {
  probeIntervalMs: number;
  probeTimeoutMs: number;
  indirectChecks: number;
  /** Suspicion timeout = suspicionMult × max(1, log10(n)) × probe interval. */
  suspicionMult: number;
  syncIntervalMs: number;
  deadRetentionMs: number;
  retransmitMult: number;
  /** Most updates piggybacked on one message. */
  maxPiggyback: number;
  /** While updates are pending, every gossip interval they also go to `gossipFanout` random members (not only on probes). */
  gossipIntervalMs: number;
  gossipFanout: number;
}

/** Dead members are gone in about probe interval + suspicion timeout: 2.5–3 s in clusters up to 10. */
export const DEFAULT_TIMING: GossipTiming = {
  probeIntervalMs: 500,
  probeTimeoutMs: 200,
  indirectChecks: 3,
  suspicionMult: 4,
  syncIntervalMs: 2000,
  deadRetentionMs: 60 * 60 * 1000,
  retransmitMult: 4,
  maxPiggyback: 8,
  gossipIntervalMs: 200,
  gossipFanout: 3,
};

export interface GossipEvents {
  /** A member is alive or suspect (new, or back from dead). */
  up(member: Member): void;
  /** A member was declared dead (or left). */
  down(member: Member): void;
  /** An up member's incarnation or meta changed (e.g. it restarted: new sid). */
  changed(member: Member): void;
}

export interface GossipLog {
  info(text: string): void;
  warn(text: string): void;
  debug(text: string): void;
}

export interface GossipStats {
  sentMessages: number;
  sentBytes: number;
  receivedMessages: number;
  receivedBytes: number;
}

interface Probe {
  target: string;
  seq: number;
  acked: boolean;
}

interface Relay {
  replyTo: string;
  seq: number;
  expires: number;
}

export class Gossip {
  readonly members = new Map<string, Member>();
  readonly stats: GossipStats = { sentMessages: 0, sentBytes: 0, receivedMessages: 0, receivedBytes: 0 };
  /** This member's incarnation. */
  inc: number;
  /** Cluster name; an unnamed member ("") adopts the name of the first named cluster it hears from. */
  clusterName: string;

  private seq = 0;
  private probeOrder: string[] = [];
  private probeIndex = 0;
  private probe: Probe | null = null;
  private readonly relays = new Map<number, Relay>();
  /** Pending updates to piggyback: member id → record and transmissions left. */
  private readonly broadcasts = new Map<string, { record: MemberRecord; left: number }>();
  private readonly warned = new Set<string>();
  private readonly lastSyncRequest = new Map<string, number>();
  private probeTimer: ReturnType<typeof setInterval> | null = null;
  private syncTimer: ReturnType<typeof setInterval> | null = null;
  private gossipTimer: ReturnType<typeof setInterval> | null = null;
  private indirectTimer: ReturnType<typeof setTimeout> | null = null;
  private syncRound = 0;
  private stopped = false;

  constructor(
    readonly selfId: string,
    private selfMeta: MemberMeta,
    clusterName: string,
    private readonly seeds: readonly string[],
    private readonly send: (address: string, bytes: Uint8Array) => void,
    private readonly events: GossipEvents,
    private readonly log: GossipLog,
    readonly timing: GossipTiming = DEFAULT_TIMING,
  ) {
    this.clusterName = clusterName;
    this.inc = Date.now();
  }

  start(): void {
    this.queueBroadcast(this.selfRecord());
    this.probeTimer = setInterval(() => this.probeRound(), this.timing.probeIntervalMs);
    this.syncTimer = setInterval(() => this.syncRoundTick(), this.timing.syncIntervalMs);
    this.gossipTimer = setInterval(() => this.gossipRound(), this.timing.gossipIntervalMs);
    for (const seed of this.seeds) if (seed !== this.selfId) this.sendSync(seed, true);
  }

  /** Leaves the cluster: tells every up member this one is dead (at its own incarnation), then stops. */
  stop(): void {
    if (this.stopped) return;
    const leave: MemberRecord = { i: this.selfId, n: this.inc, s: MemberState.DEAD };
    for (const m of this.upMembers()) this.sendMessage(m.id, { t: MsgType.ACK, s: 0, u: [leave] }, false);
    this.stopped = true;
    if (this.probeTimer) clearInterval(this.probeTimer);
    if (this.syncTimer) clearInterval(this.syncTimer);
    if (this.gossipTimer) clearInterval(this.gossipTimer);
    if (this.indirectTimer) clearTimeout(this.indirectTimer);
  }

  /** Members alive or suspect, this one excluded. */
  upMembers(): Member[] {
    const up: Member[] = [];
    for (const m of this.members.values()) if (m.state !== MemberState.DEAD) up.push(m);
    return up;
  }

  /** Changes what this member advertises (client URLs); spreads it with a new incarnation. */
  setMeta(meta: MemberMeta): void {
    this.selfMeta = meta;
    this.inc++;
    this.queueBroadcast(this.selfRecord());
  }

  /**
   * Another member spoke to us directly (a route HELLO): if we do not know it alive at that
   * incarnation, exchange tables with it now rather than wait for the rumour.
   */
  heardFrom(id: string, inc: number): void {
    const m = this.members.get(id);
    if (m === undefined || m.inc < inc || m.state !== MemberState.ALIVE) this.requestSync(id);
  }

  /** Suspicion starts sooner: a route to the member just broke. */
  probeSoon(id: string): void {
    if (!this.members.has(id)) return;
    const at = this.probeOrder.indexOf(id);
    if (at >= this.probeIndex) {
      this.probeOrder.splice(at, 1);
      this.probeOrder.splice(this.probeIndex, 0, id);
    }
  }

  // ---- receiving ---------------------------------------------------------------------------

  /** One datagram from `from` (host:port). */
  receive(bytes: Uint8Array, from: string): void {
    if (this.stopped) return;
    this.stats.receivedMessages++;
    this.stats.receivedBytes += bytes.length;
    let msg: GossipMessage;
    try {
      msg = decode(bytes) as GossipMessage;
      if (msg === null || typeof msg !== "object" || typeof msg.v !== "number") throw new Error("not a gossip message");
    } catch (error) {
      this.warnOnce(from, `Dropping gossip from ${from}: not a natter gossip message (${(error as Error).message})`);
      return;
    }
    if (msg.v !== PROTOCOL_VERSION) {
      this.warnOnce(from, `Dropping gossip from ${from}: protocol version ${msg.v}, this node speaks ${PROTOCOL_VERSION}`);
      return;
    }
    if (typeof msg.c !== "string" || typeof msg.f !== "string" || typeof msg.fi !== "number") {
      this.warnOnce(from, `Dropping gossip from ${from}: malformed message`);
      return;
    }
    if (msg.c !== this.clusterName) {
      if (this.clusterName === "") {
        this.log.info(`Adopting cluster name "${msg.c}" from ${msg.f}`);
        this.clusterName = msg.c;
      } else if (msg.c !== "") {
        const why = `cluster name "${msg.c}" does not match "${this.clusterName}"`;
        if (msg.t === MsgType.REJECT) {
          this.warnOnce(from, `Refused by ${from}: ${typeof msg.why === "string" ? msg.why : "(no reason)"}`);
          return;
        }
        this.warnOnce(from, `Rejecting gossip from ${from}: ${why}`);
        // Tell a joiner why it gets no answer (a REJECT is never answered: no ping-pong between clusters).
        if (msg.t === MsgType.SYNC && msg.r === true) this.sendMessage(from, { t: MsgType.REJECT, why }, false);
        return;
      }
    }
    if (msg.f === this.selfId) return;
    if (Array.isArray(msg.u)) for (const r of msg.u) this.applyRecord(r);
    this.checkSender(msg.f, msg.fi);
    switch (msg.t) {
      case MsgType.PING:
        if (msg.to !== this.selfId) return; // meant for a member that was at this address before
        this.sendMessage(from, { t: MsgType.ACK, s: msg.s });
        return;
      case MsgType.ACK:
        this.onAck(msg.s ?? -1);
        return;
      case MsgType.PING_REQ: {
        if (typeof msg.to !== "string" || msg.to === this.selfId) return;
        const seq = ++this.seq;
        this.relays.set(seq, { replyTo: from, seq: msg.s ?? -1, expires: Date.now() + this.timing.probeIntervalMs });
        this.sendMessage(msg.to, { t: MsgType.PING, s: seq, to: msg.to });
        return;
      }
      case MsgType.SYNC:
        if (Array.isArray(msg.m)) for (const r of msg.m) this.applyRecord(r);
        if (msg.r === true) this.sendSync(from, false);
        return;
    }
  }

  private onAck(seq: number): void {
    const probe = this.probe;
    if (probe !== null && probe.seq === seq) {
      probe.acked = true;
      return;
    }
    const relay = this.relays.get(seq);
    if (relay !== undefined) {
      this.relays.delete(seq);
      this.sendMessage(relay.replyTo, { t: MsgType.ACK, s: relay.seq });
    }
  }

  /** A sender we do not know alive at its incarnation: exchange tables (it may also learn it was declared dead, and refute). */
  private checkSender(id: string, inc: number): void {
    const m = this.members.get(id);
    if (m === undefined || m.inc < inc || m.state === MemberState.DEAD) this.requestSync(id);
  }

  private requestSync(id: string): void {
    const now = Date.now();
    const last = this.lastSyncRequest.get(id) ?? 0;
    if (now - last < 1000) return;
    this.lastSyncRequest.set(id, now);
    this.sendSync(id, true);
  }

  private applyRecord(r: MemberRecord): void {
    if (r === null || typeof r !== "object" || typeof r.i !== "string" || typeof r.n !== "number") return;
    if (r.s !== MemberState.ALIVE && r.s !== MemberState.SUSPECT && r.s !== MemberState.DEAD) return;
    const now = Date.now();
    if (r.i === this.selfId) {
      // Rumours about this member: only it raises its incarnation, to outrank them.
      if ((r.s !== MemberState.ALIVE && r.n >= this.inc) || r.n > this.inc) {
        this.inc = r.n + 1;
        this.log.debug(`Refuting ${r.s === MemberState.DEAD ? "death" : r.s === MemberState.SUSPECT ? "suspicion" : "old record"}: incarnation now ${this.inc}`);
        this.queueBroadcast(this.selfRecord());
      }
      return;
    }
    const meta = r.s === MemberState.ALIVE && isMeta(r.m) ? r.m : null;
    const cur = this.members.get(r.i);
    if (cur === undefined) {
      const m: Member = { id: r.i, inc: r.n, state: r.s, meta, changedAt: now };
      this.members.set(r.i, m);
      this.queueBroadcast(r);
      if (r.s !== MemberState.DEAD) {
        this.probeOrder.splice(this.probeIndex + Math.floor(Math.random() * (this.probeOrder.length - this.probeIndex + 1)), 0, r.i);
        this.events.up(m);
      }
      return;
    }
    const wasUp = cur.state !== MemberState.DEAD;
    switch (r.s) {
      case MemberState.ALIVE: {
        if (r.n <= cur.inc) return;
        const restarted = meta !== null && cur.meta !== null && (meta.sid !== cur.meta.sid || !sameMeta(meta, cur.meta));
        cur.inc = r.n;
        cur.state = MemberState.ALIVE;
        if (meta !== null) cur.meta = meta;
        cur.changedAt = now;
        this.queueBroadcast(r);
        if (!wasUp) {
          if (!this.probeOrder.includes(cur.id)) this.probeOrder.push(cur.id);
          this.events.up(cur);
        } else if (restarted) this.events.changed(cur);
        return;
      }
      case MemberState.SUSPECT:
        if (r.n < cur.inc || (r.n === cur.inc && cur.state !== MemberState.ALIVE)) return;
        cur.inc = r.n;
        cur.state = MemberState.SUSPECT;
        cur.changedAt = now;
        this.queueBroadcast(r);
        if (!wasUp) {
          if (!this.probeOrder.includes(cur.id)) this.probeOrder.push(cur.id);
          this.events.up(cur);
        }
        return;
      case MemberState.DEAD:
        if (r.n < cur.inc || (r.n === cur.inc && cur.state === MemberState.DEAD)) return;
        cur.inc = r.n;
        cur.state = MemberState.DEAD;
        cur.changedAt = now;
        this.queueBroadcast(r);
        if (wasUp) this.events.down(cur);
        return;
    }
  }

  // ---- probing -----------------------------------------------------------------------------

  private probeRound(): void {
    if (this.stopped) return;
    const now = Date.now();
    // The last probe: no ack, direct or indirect, within the interval → suspect.
    const last = this.probe;
    if (last !== null && !last.acked) {
      const m = this.members.get(last.target);
      if (m !== undefined && m.state === MemberState.ALIVE) {
        m.state = MemberState.SUSPECT;
        m.changedAt = now;
        this.log.debug(`Member ${m.id} is suspect (no ack)`);
        this.queueBroadcast({ i: m.id, n: m.inc, s: MemberState.SUSPECT });
      }
    }
    this.probe = null;
    // Suspects past the timeout are dead.
    const up = this.upMembers();
    const suspicionMs = this.timing.suspicionMult * Math.max(1, Math.log10(up.length + 1)) * this.timing.probeIntervalMs;
    for (const m of up) {
      if (m.state === MemberState.SUSPECT && now - m.changedAt >= suspicionMs) {
        this.log.debug(`Member ${m.id} is dead (suspect for ${now - m.changedAt} ms)`);
        m.state = MemberState.DEAD;
        m.changedAt = now;
        this.queueBroadcast({ i: m.id, n: m.inc, s: MemberState.DEAD });
        this.events.down(m);
      }
    }
    for (const [seq, relay] of this.relays) if (relay.expires < now) this.relays.delete(seq);
    for (const m of [...this.members.values()]) {
      if (m.state === MemberState.DEAD && now - m.changedAt > this.timing.deadRetentionMs) this.members.delete(m.id);
    }

    const target = this.nextProbeTarget();
    if (target === null) return;
    const seq = ++this.seq;
    this.probe = { target, seq, acked: false };
    this.sendMessage(target, { t: MsgType.PING, s: seq, to: target });
    if (this.indirectTimer) clearTimeout(this.indirectTimer);
    this.indirectTimer = setTimeout(() => {
      this.indirectTimer = null;
      const probe = this.probe;
      if (probe === null || probe.acked || probe.seq !== seq || this.stopped) return;
      const helpers = shuffled(this.upMembers().filter((m) => m.id !== target && m.state === MemberState.ALIVE)).slice(0, this.timing.indirectChecks);
      for (const h of helpers) this.sendMessage(h.id, { t: MsgType.PING_REQ, s: seq, to: target });
    }, this.timing.probeTimeoutMs);
  }

  /** Round-robin over a shuffled list of up members, reshuffled after each pass (SWIM §4.3). */
  private nextProbeTarget(): string | null {
    for (let tries = 0; tries < 2; tries++) {
      while (this.probeIndex < this.probeOrder.length) {
        const id = this.probeOrder[this.probeIndex++]!;
        const m = this.members.get(id);
        if (m !== undefined && m.state !== MemberState.DEAD) return id;
      }
      this.probeOrder = shuffled(this.upMembers().map((m) => m.id));
      this.probeIndex = 0;
    }
    return null;
  }

  /** Pending updates to a few random members (the piggyback on probes alone is one message per interval). */
  private gossipRound(): void {
    if (this.stopped || this.broadcasts.size === 0) return;
    const targets = shuffled(this.upMembers()).slice(0, this.timing.gossipFanout);
    for (const m of targets) {
      if (this.broadcasts.size === 0) break;
      this.sendMessage(m.id, { t: MsgType.GOSSIP });
    }
  }

  // ---- sync (join, healing, anti-entropy) -------------------------------------------------

  private syncRoundTick(): void {
    if (this.stopped) return;
    this.syncRound++;
    const up = this.upMembers();
    const upIds = new Set(up.map((m) => m.id));
    const lost: string[] = this.seeds.filter((s) => s !== this.selfId && !upIds.has(s));
    for (const m of this.members.values()) if (m.state === MemberState.DEAD) lost.push(m.id);
    if (up.length === 0) {
      for (const s of new Set(lost)) this.sendSync(s, true); // alone: knock on every door
      return;
    }
    if (lost.length > 0) this.sendSync(lost[Math.floor(Math.random() * lost.length)]!, true);
    if (this.syncRound % 5 === 0) this.sendSync(up[Math.floor(Math.random() * up.length)]!.id, true);
  }

  private sendSync(address: string, wantReply: boolean): void {
    const table: MemberRecord[] = [this.selfRecord()];
    for (const m of this.members.values()) table.push(recordOf(m));
    this.sendMessage(address, { t: MsgType.SYNC, m: table, r: wantReply }, false);
  }

  // ---- sending -----------------------------------------------------------------------------

  private selfRecord(): MemberRecord {
    return { i: this.selfId, n: this.inc, s: MemberState.ALIVE, m: this.selfMeta };
  }

  private queueBroadcast(record: MemberRecord): void {
    const n = this.upMembers().length + 1;
    const left = this.timing.retransmitMult * Math.max(1, Math.ceil(Math.log10(n + 1)));
    this.broadcasts.delete(record.i); // a newer record about a member replaces the older one
    this.broadcasts.set(record.i, { record, left });
  }

  private piggyback(): MemberRecord[] | undefined {
    if (this.broadcasts.size === 0) return undefined;
    const out: MemberRecord[] = [];
    const again: [string, { record: MemberRecord; left: number }][] = [];
    for (const [id, b] of this.broadcasts) {
      if (out.length >= this.timing.maxPiggyback) break;
      out.push(b.record);
      if (--b.left > 0) again.push([id, b]);
    }
    // To the back, after the loop (a Map iterator would visit them again): the others get their turn.
    for (const r of out) this.broadcasts.delete(r.i);
    for (const [id, b] of again) this.broadcasts.set(id, b);
    return out;
  }

  private sendMessage(address: string, body: Omit<GossipMessage, "v" | "c" | "f" | "fi">, withUpdates = true): void {
    if (this.stopped) return;
    const msg: GossipMessage = { v: PROTOCOL_VERSION, c: this.clusterName, f: this.selfId, fi: this.inc, ...body };
    if (withUpdates && msg.u === undefined) {
      const u = this.piggyback();
      if (u !== undefined) msg.u = u;
    }
    const bytes = encode(msg);
    this.stats.sentMessages++;
    this.stats.sentBytes += bytes.length;
    this.send(address, bytes);
  }

  private warnOnce(address: string, text: string): void {
    if (this.warned.has(address)) return;
    if (this.warned.size > 1000) this.warned.clear();
    this.warned.add(address);
    this.log.warn(text);
  }
}

function recordOf(m: Member): MemberRecord {
  const r: MemberRecord = { i: m.id, n: m.inc, s: m.state };
  if (m.state === MemberState.ALIVE && m.meta !== null) r.m = m.meta;
  return r;
}

function isMeta(m: unknown): m is MemberMeta {
  if (m === null || typeof m !== "object") return false;
  const meta = m as MemberMeta;
  return typeof meta.sid === "string" && typeof meta.name === "string" && Array.isArray(meta.urls) && Array.isArray(meta.ws);
}

function sameMeta(a: MemberMeta, b: MemberMeta): boolean {
  return a.sid === b.sid && a.name === b.name && a.urls.join(",") === b.urls.join(",") && a.ws.join(",") === b.ws.join(",");
}

function shuffled<T>(list: T[]): T[] {
  for (let i = list.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [list[i], list[j]] = [list[j]!, list[i]!];
  }
  return list;
}
