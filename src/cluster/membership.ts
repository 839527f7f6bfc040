// Membership: the gossip protocol (gossip.ts) with its UDP socket, as the cluster uses it, and where it
// runs. It runs on a thread of its own (a Worker, gossip-worker.ts) whenever one can be started, so the
// event loop that moves messages never spends time on it: a gossip datagram costs 0.1–1 ms of cold
// msgpack and bookkeeping code, several times a second, and a client's message that arrives meanwhile
// waits that long (it showed in request-reply p99 across routes). Where no Worker can be started (a
// binary built without the worker entry point), it runs on the event loop as before.
//
// The cluster sees the same interface either way. With the thread, `members`, `inc`, `clusterName` and
// `stats` are a mirror kept up to date by the worker's events (membership changes at once; inc, name and
// traffic counters within 250 ms), and the calls (heardFrom, probeSoon, setMeta, clusterName =, stop) are
// messages to it.
import type { udp } from "bun";
import { Gossip, MemberState, type GossipEvents, type GossipLog, type GossipStats, type Member, type MemberMeta } from "./gossip.ts";

export interface MembershipConfig {
  /** This member's id (its cluster address). */
  selfId: string;
  meta: MemberMeta;
  clusterName: string;
  seeds: string[];
  /** Where the gossip socket listens (UDP, the cluster port). */
  host: string;
  port: number;
  /** Debug logging on (the worker's log lines cross a thread only when they would be written). */
  debug: boolean;
}

/** What the cluster uses of the gossip protocol. */
export interface Membership {
  /** Every member known (dead ones included, until forgotten), this one excluded. */
  readonly members: ReadonlyMap<string, Member>;
  /** This member's incarnation. */
  readonly inc: number;
  /** Cluster name; setting it adopts a name (an unnamed member that met a named cluster). */
  clusterName: string;
  readonly stats: GossipStats;
  /** Whether the protocol runs on its own thread. */
  readonly threaded: boolean;
  upMembers(): Member[];
  heardFrom(id: string, inc: number): void;
  probeSoon(id: string): void;
  setMeta(meta: MemberMeta): void;
  stop(): void;
}

/** The gossip protocol and its socket, on whichever thread calls this. */
export async function openGossip(config: MembershipConfig, events: GossipEvents, log: GossipLog): Promise<{ gossip: Gossip; close(): void }> {
  let gossip: Gossip | null = null;
  const socket: udp.Socket<"buffer"> = await Bun.udpSocket({
    hostname: config.host,
    port: config.port,
    socket: {
      data: (_socket, data, port, address) => gossip?.receive(data, `${address}:${port}`),
      // ICMP "port unreachable" for a datagram to a member that is down: expected, the probes handle it.
      // (Bun 1.4 passes the error as the first argument, unlike its types say: take whichever is one.)
      error: (...args: unknown[]) => {
        const error = args.find((a) => a instanceof Error) as Error | undefined;
        log.debug(`Cluster: gossip socket: ${error?.message ?? "error"}`);
      },
    },
  });
  const send = (address: string, bytes: Uint8Array): void => {
    const colon = address.lastIndexOf(":");
    const host = address.slice(0, colon).replace(/^\[|\]$/g, "");
    const port = Number(address.slice(colon + 1));
    if (!(port > 0)) return;
    // A datagram to a member that just died comes back as ICMP "port unreachable", which Linux reports
    // on the socket's next call, possibly this send to someone else: that error is consumed by the
    // failed call, so one retry sends it.
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        if (socket.send(bytes, port, host)) return;
      } catch (error) {
        if (attempt === 1) log.debug(`Cluster: gossip to ${address} failed: ${(error as Error).message}`);
      }
    }
  };
  gossip = new Gossip(config.selfId, config.meta, config.clusterName, config.seeds, send, events, log);
  gossip.start();
  const g = gossip;
  return {
    gossip: g,
    close() {
      g.stop();
      // Let the leave datagrams go before the socket closes.
      setTimeout(() => socket.close(), 20);
    },
  };
}

/** The protocol on the event loop (the fallback). */
class LocalMembership implements Membership {
  readonly threaded = false;
  constructor(
    private readonly gossip: Gossip,
    private readonly closeGossip: () => void,
  ) {}
  get members(): ReadonlyMap<string, Member> {
    return this.gossip.members;
  }
  get inc(): number {
    return this.gossip.inc;
  }
  get clusterName(): string {
    return this.gossip.clusterName;
  }
  set clusterName(name: string) {
    this.gossip.clusterName = name;
  }
  get stats(): GossipStats {
    return this.gossip.stats;
  }
  upMembers(): Member[] {
    return this.gossip.upMembers();
  }
  heardFrom(id: string, inc: number): void {
    this.gossip.heardFrom(id, inc);
  }
  probeSoon(id: string): void {
    this.gossip.probeSoon(id);
  }
  setMeta(meta: MemberMeta): void {
    this.gossip.setMeta(meta);
  }
  stop(): void {
    this.closeGossip();
  }
}

// ---- the thread ---------------------------------------------------------------------------

/** Main thread → worker. */
export type ToWorker =
  | { op: "start"; config: MembershipConfig }
  | { op: "heardFrom"; id: string; inc: number }
  | { op: "probeSoon"; id: string }
  | { op: "setMeta"; meta: MemberMeta }
  | { op: "name"; name: string }
  | { op: "stop" };

/** Worker → main thread. */
export type FromWorker =
  | { ev: "started"; inc: number }
  | { ev: "failed"; error: string }
  | { ev: "up" | "down" | "changed"; member: Member }
  | { ev: "log"; level: "info" | "warn" | "debug"; text: string }
  | { ev: "state"; inc: number; name: string; stats: GossipStats };

/** How often the worker reports inc, name and traffic counters when they changed. */
export const STATE_REPORT_MS = 250;
const WORKER_START_TIMEOUT_MS = 5000;

class ThreadMembership implements Membership {
  readonly threaded = true;
  readonly members = new Map<string, Member>();
  inc: number;
  stats: GossipStats = { sentMessages: 0, sentBytes: 0, receivedMessages: 0, receivedBytes: 0 };
  private name: string;
  private stopped = false;

  constructor(
    private readonly worker: Worker,
    inc: number,
    name: string,
  ) {
    this.inc = inc;
    this.name = name;
  }

  get clusterName(): string {
    return this.name;
  }
  set clusterName(name: string) {
    this.name = name;
    this.post({ op: "name", name });
  }

  upMembers(): Member[] {
    const up: Member[] = [];
    for (const m of this.members.values()) if (m.state !== MemberState.DEAD) up.push(m);
    return up;
  }
  heardFrom(id: string, inc: number): void {
    this.post({ op: "heardFrom", id, inc });
  }
  probeSoon(id: string): void {
    this.post({ op: "probeSoon", id });
  }
  setMeta(meta: MemberMeta): void {
    this.post({ op: "setMeta", meta });
  }
  stop(): void {
    if (this.stopped) return;
    this.post({ op: "stop" });
    this.stopped = true;
    // The worker sends the leave datagrams and closes its socket; then it is ended.
    setTimeout(() => this.worker.terminate(), 100);
  }

  /** A worker event: the mirror first, then the cluster's handler (as the in-thread protocol calls it). */
  onEvent(e: FromWorker, events: GossipEvents, log: GossipLog): void {
    switch (e.ev) {
      case "up":
      case "changed":
        this.members.set(e.member.id, e.member);
        return e.ev === "up" ? events.up(e.member) : events.changed(e.member);
      case "down":
        this.members.set(e.member.id, e.member);
        return events.down(e.member);
      case "log":
        return log[e.level](e.text);
      case "state":
        this.inc = e.inc;
        this.name = e.name;
        this.stats = e.stats;
        return;
    }
  }

  private post(message: ToWorker): void {
    if (!this.stopped) this.worker.postMessage(message);
  }
}

/** Set by scripts/run-bundle.ts (a define) in bin/natter's bundle: the checkout's src/ directory. */
declare const NATTER_SOURCE_ROOT: string | undefined;

/**
 * The worker's module. In a binary (`bun build --compile src/main.ts src/cluster/gossip-worker.ts`)
 * every module's import.meta.url is the binary's (/$bunfs/root/<name>) and the worker entry point sits
 * at cluster/gossip-worker.ts under the entry points' common directory (src/).
 */
function workerUrl(): string {
  // bin/natter's bundle of the sources (scripts/run-bundle.ts) names where the sources are: the worker runs from there.
  if (typeof NATTER_SOURCE_ROOT === "string") return Bun.pathToFileURL(`${NATTER_SOURCE_ROOT}/cluster/gossip-worker.ts`).href;
  const compiled = import.meta.url.includes("/$bunfs/");
  return new URL(compiled ? "./cluster/gossip-worker.ts" : "./gossip-worker.ts", import.meta.url).href;
}

/** Starts the protocol on a Worker; rejects if the worker cannot start (or its socket cannot open). */
function startThread(config: MembershipConfig, events: GossipEvents, log: GossipLog): Promise<ThreadMembership> {
  return new Promise((resolve, reject) => {
    let worker: Worker;
    try {
      worker = new Worker(workerUrl());
    } catch (error) {
      reject(error as Error);
      return;
    }
    (worker as Worker & { unref(): void }).unref(); // never what keeps the process alive (Bun has it; the DOM types do not)
    let membership: ThreadMembership | null = null;
    const timer = setTimeout(() => fail(new Error(`no answer within ${WORKER_START_TIMEOUT_MS} ms`)), WORKER_START_TIMEOUT_MS);
    const fail = (error: Error) => {
      clearTimeout(timer);
      worker.terminate();
      if (membership === null) reject(error);
      else log.warn(`Cluster: the gossip thread failed: ${error.message}`);
    };
    worker.addEventListener("error", (e) => fail(new Error((e as ErrorEvent).message || "worker error")));
    worker.addEventListener("message", (m: MessageEvent<FromWorker>) => {
      const e = m.data;
      if (membership !== null) return membership.onEvent(e, events, log);
      if (e.ev === "failed") return fail(new Error(e.error));
      if (e.ev === "started") {
        clearTimeout(timer);
        membership = new ThreadMembership(worker, e.inc, config.clusterName);
        resolve(membership);
      } else if (e.ev === "log") {
        log[e.level](e.text);
      }
    });
    worker.postMessage({ op: "start", config } satisfies ToWorker);
  });
}

/**
 * Starts the membership protocol: on its own thread, or on the event loop when no Worker can be
 * started. Throws when the gossip socket cannot be opened.
 */
export async function startMembership(config: MembershipConfig, events: GossipEvents, log: GossipLog): Promise<Membership> {
  if (process.env.NATTER_GOSSIP_THREAD !== "0") {
    try {
      return await startThread(config, events, log);
    } catch (error) {
      log.debug(`Cluster: gossip runs on the event loop (no gossip thread: ${(error as Error).message})`);
    }
  }
  const { gossip, close } = await openGossip(config, events, log);
  return new LocalMembership(gossip, close);
}
