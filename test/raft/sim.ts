// A deterministic world for Raft nodes: one seeded random source, a simulated clock with an event queue,
// and a simulated network that drops, delays (so reorders) and duplicates messages and can be cut into
// partitions. Nothing here touches real time or sockets: a run is a pure function of its seed, so a
// failing seed replays exactly (RAFT_SEED=<n>).
//
// SimCluster checks Raft's safety properties as it goes (see checkStep / checkLogs), and throws the
// moment one breaks.
import { expect } from "vitest";
import { RaftNode, type RaftTiming } from "../../src/jetstream/cluster/raft.ts";
import { decodeMessage, encodeMessage } from "../../src/jetstream/cluster/raft-codec.ts";
import { MemoryRaftStorage } from "../../src/jetstream/cluster/raft-memory-storage.ts";
import type {
  NodeId,
  ProposalOutcome,
  RaftClock,
  RaftMessage,
  RaftStorage,
  Snapshot,
  StateMachine,
} from "../../src/jetstream/cluster/raft-types.ts";

/** mulberry32: small, fast, good enough to drive a simulation. */
export class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
}

interface SimEvent {
  at: number;
  seq: number;
  fire: () => void;
  cancelled: boolean;
}

/** Simulated time: timers and message deliveries in one queue, ordered by (time, insertion). */
export class SimClock implements RaftClock {
  private time = 0;
  private seq = 0;
  private heap: SimEvent[] = [];

  now(): number {
    return this.time;
  }

  setTimer(delayMs: number, fire: () => void): SimEvent {
    const ev: SimEvent = { at: this.time + Math.max(0, delayMs), seq: this.seq++, fire, cancelled: false };
    this.push(ev);
    return ev;
  }

  clearTimer(id: unknown): void {
    (id as SimEvent).cancelled = true;
  }

  /** Runs the next event; false when there is none. */
  step(): boolean {
    for (;;) {
      const ev = this.pop();
      if (!ev) return false;
      if (ev.cancelled) continue;
      this.time = ev.at;
      ev.fire();
      return true;
    }
  }

  /** Moves time forward with nothing happening (no event is due before `time`). */
  advanceTo(time: number): void {
    if (time > this.time) this.time = time;
  }

  nextAt(): number | undefined {
    while (this.heap.length > 0 && this.heap[0]!.cancelled) this.pop();
    return this.heap[0]?.at;
  }

  private less(a: SimEvent, b: SimEvent): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  private push(ev: SimEvent): void {
    const h = this.heap;
    h.push(ev);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(h[i]!, h[parent]!)) break;
      [h[i], h[parent]] = [h[parent]!, h[i]!];
      i = parent;
    }
  }

  private pop(): SimEvent | undefined {
    const h = this.heap;
    if (h.length === 0) return undefined;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.less(h[l]!, h[m]!)) m = l;
        if (r < h.length && this.less(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}

export interface NetworkFaults {
  dropRate: number;
  duplicateRate: number;
  minDelayMs: number;
  maxDelayMs: number;
  /** This share of messages is held much longer (up to stragglerMaxMs): stale messages of old terms. */
  stragglerRate?: number;
  stragglerMaxMs?: number;
}

export const CALM: NetworkFaults = { dropRate: 0, duplicateRate: 0, minDelayMs: 1, maxDelayMs: 5 };
export const STORMY: NetworkFaults = {
  dropRate: 0.05,
  duplicateRate: 0.03,
  minDelayMs: 1,
  maxDelayMs: 40,
  stragglerRate: 0.01,
  stragglerMaxMs: 5_000,
};

/** Messages between nodes, through the codec (so every message also round-trips the wire format). */
export class SimNetwork {
  faults: NetworkFaults = CALM;
  /** A scenario's own rule: return false to drop this message. */
  filter: ((from: NodeId, to: NodeId, message: RaftMessage) => boolean) | undefined;
  /** Node → partition group; nodes in different groups cannot talk. */
  private group = new Map<NodeId, number>();
  delivered = 0;

  constructor(
    private readonly clock: SimClock,
    private readonly rng: Rng,
    private readonly deliver: (to: NodeId, message: RaftMessage) => void,
  ) {}

  /** Links cut in one direction only ("from>to"): a stuck socket buffer, a one-way firewall rule. */
  private oneWay = new Set<string>();

  canTalk(from: NodeId, to: NodeId): boolean {
    return (this.group.get(from) ?? 0) === (this.group.get(to) ?? 0) && !this.oneWay.has(`${from}>${to}`);
  }

  /** Messages from `from` to `to` are lost; the other way still works. */
  cutOneWay(from: NodeId, to: NodeId): void {
    this.oneWay.add(`${from}>${to}`);
  }

  /** Cuts the network into these groups (nodes not named stay in group 0 with the first group). */
  partition(...groups: NodeId[][]): void {
    this.group.clear();
    groups.forEach((g, i) => g.forEach((id) => this.group.set(id, i)));
  }

  heal(): void {
    this.group.clear();
    this.oneWay.clear();
  }

  send(from: NodeId, to: NodeId, message: RaftMessage): void {
    if (!this.canTalk(from, to) || this.rng.chance(this.faults.dropRate)) return;
    if (this.filter && !this.filter(from, to, message)) return;
    const bytes = encodeMessage(message);
    const copies = this.rng.chance(this.faults.duplicateRate) ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      const { minDelayMs: min, maxDelayMs: max, stragglerRate = 0, stragglerMaxMs = 0 } = this.faults;
      const straggler = stragglerRate > 0 && this.rng.chance(stragglerRate);
      const delay = straggler ? this.rng.next() * stragglerMaxMs : min + this.rng.next() * (max - min);
      this.clock.setTimer(delay, () => {
        // A partition made while the message was in flight also stops it.
        if (!this.canTalk(from, to)) return;
        this.delivered++;
        this.deliver(to, decodeMessage(bytes));
      });
    }
  }
}

/** The test state machine: the list of applied commands (as text), by index. */
export class ListMachine implements StateMachine {
  applied: [number, string][] = [];
  /** The last index this machine has seen (applied, or covered by a restored snapshot). */
  lastIndex = 0;
  constructor(
    private readonly onApply: (index: number, value: string) => void,
    private readonly onRestore: (applied: [number, string][]) => void = () => {},
  ) {}

  apply(index: number, data: Uint8Array): void {
    if (index <= this.lastIndex) throw new Error(`applied ${index} after ${this.lastIndex}: out of order or twice`);
    const value = new TextDecoder().decode(data);
    this.applied.push([index, value]);
    this.lastIndex = index;
    this.onApply(index, value);
  }

  restore(snapshot: Snapshot): void {
    this.applied = JSON.parse(new TextDecoder().decode(snapshot.data));
    this.lastIndex = snapshot.index;
    this.onRestore(this.applied);
  }

  snapshotData(): Uint8Array {
    return new TextEncoder().encode(JSON.stringify(this.applied));
  }

  values(): string[] {
    return this.applied.map(([, v]) => v);
  }
}

export interface SimMember {
  id: NodeId;
  node: RaftNode;
  storage: RaftStorage;
  /** The node is frozen (a GC pause, an overloaded event loop) until then: it runs nothing. */
  stalledUntil: number;
  machine: ListMachine;
  up: boolean;
}

export interface SimClusterOptions {
  seed: number;
  size?: number;
  /** The ids of the founding voters (default n1..n<size>). */
  ids?: NodeId[];
  timing?: Partial<RaftTiming>;
  faults?: NetworkFaults;
  maxEntriesPerAppend?: number;
  maxAppendBytes?: number;
  /**
   * Opens a node's storage at each boot (default: one MemoryRaftStorage per node, kept across crashes).
   * A crash closes it, as a killed process would leave it.
   */
  openStorage?: (id: NodeId) => RaftStorage;
  /** Check log matching every this many steps (it reads every log: costly with long ones). */
  checkLogsEvery?: number;
}

export const encodeText = (s: string) => new TextEncoder().encode(s);

/** The cluster of the scenario running now, for the failure report. */
let currentCluster: SimCluster | undefined;

export class SimCluster {
  readonly rng: Rng;
  readonly clock = new SimClock();
  readonly net: SimNetwork;
  readonly members = new Map<NodeId, SimMember>();
  readonly seed: number;
  private readonly timing?: Partial<RaftTiming>;
  private readonly maxEntriesPerAppend?: number;
  private readonly maxAppendBytes?: number;
  private readonly founders: NodeId[];
  private readonly openStorage?: (id: NodeId) => RaftStorage;
  private readonly checkLogsEvery: number;
  /** quorumLost events, by node. */
  readonly quorumLost = new Map<NodeId, number>();

  /** Every leader seen, by term (election safety). */
  readonly leadersByTerm = new Map<number, NodeId>();
  /**
   * What was applied at each index by anyone, with its term (state machine safety), and an upper bound
   * of the term in which it was committed: the lowest term a node was in when it applied it (a node
   * learns of a commit from a leader of its own term, which decided it then or earlier).
   */
  readonly committed = new Map<number, { term: number; value: string; committedBy: number }>();
  steps = 0;
  readonly trace: string[] = [];

  constructor(options: SimClusterOptions) {
    currentCluster = this;
    this.seed = options.seed;
    this.rng = new Rng(options.seed);
    this.timing = options.timing;
    this.maxEntriesPerAppend = options.maxEntriesPerAppend;
    this.maxAppendBytes = options.maxAppendBytes;
    this.openStorage = options.openStorage;
    this.checkLogsEvery = options.checkLogsEvery ?? 200;
    this.net = new SimNetwork(this.clock, this.rng, (to, m) => {
      const member = this.members.get(to);
      if (member?.up) this.whenAwake(member, () => member.node.receive(m));
    });
    if (options.faults) this.net.faults = options.faults;
    this.founders = options.ids ?? Array.from({ length: options.size ?? 3 }, (_, i) => `n${i + 1}`);
    for (const id of this.founders) this.add(id, this.founders);
  }

  /** Creates a node (a founder, or with peers [] one waiting to be added) and starts it. */
  add(id: NodeId, peers: NodeId[] = []): SimMember {
    const member = {
      id,
      storage: this.openStorage ? undefined : new MemoryRaftStorage(),
      up: false,
      stalledUntil: 0,
    } as unknown as SimMember;
    this.members.set(id, member);
    this.boot(member, peers);
    return member;
  }

  private boot(member: SimMember, peers: NodeId[]): void {
    const id = member.id;
    if (this.openStorage) member.storage = this.openStorage(id);
    member.machine = new ListMachine(
      (index, value) => this.onApply(member, index, value),
      (applied) => this.onRestore(member, applied),
    );
    member.node = new RaftNode({
      id,
      peers,
      storage: member.storage,
      transport: { send: (to, m) => this.net.send(id, to, m) },
      clock: this.nodeClock(member),
      random: () => this.rng.next(),
      stateMachine: member.machine,
      timing: this.timing,
      maxEntriesPerAppend: this.maxEntriesPerAppend,
      maxAppendBytes: this.maxAppendBytes,
      events: {
        leaderChanged: (leader, term) => this.note(`${id} t${term} leader=${leader ?? "-"}`),
        quorumLost: () => this.quorumLost.set(id, (this.quorumLost.get(id) ?? 0) + 1),
      },
      log: (line) => this.note(line),
    });
    member.up = true;
    member.node.start();
  }

  /** Runs `work` now, or when the member wakes from a stall (in arrival order). */
  private whenAwake(member: SimMember, work: () => void): void {
    const wait = member.stalledUntil - this.clock.now();
    if (wait > 0) this.clock.setTimer(wait, () => this.whenAwake(member, work));
    else work();
  }

  /** The shared clock, but a timer due while the node is stalled fires when it wakes. */
  private nodeClock(member: SimMember): RaftClock {
    return {
      now: () => this.clock.now(),
      setTimer: (delayMs, fire) => {
        const handle: { current?: unknown } = {};
        handle.current = this.clock.setTimer(delayMs, () => {
          const wait = member.stalledUntil - this.clock.now();
          if (wait > 0) handle.current = this.clock.setTimer(wait, fire);
          else fire();
        });
        return handle;
      },
      clearTimer: (id) => this.clock.clearTimer((id as { current: unknown }).current),
    };
  }

  /** Freezes a node for `ms` (it keeps its memory; messages and timers wait). */
  stall(id: NodeId, ms: number): void {
    const m = this.member(id);
    m.stalledUntil = Math.max(m.stalledUntil, this.clock.now() + ms);
    this.note(`${id} stalls for ${ms.toFixed(0)} ms`);
  }

  /** kill -9: the node's memory is gone, its storage stays. */
  crash(id: NodeId): void {
    const m = this.member(id);
    m.node.stop();
    if (this.openStorage) m.storage.close();
    m.up = false;
    this.note(`${id} crashed`);
  }

  restart(id: NodeId): void {
    const m = this.member(id);
    if (m.up) return;
    this.boot(m, this.founders.includes(id) ? this.founders : []);
    this.note(`${id} restarted (term ${m.node.term}, last ${m.node.lastIndex})`);
  }

  member(id: NodeId): SimMember {
    const m = this.members.get(id);
    if (!m) throw new Error(`no member ${id}`);
    return m;
  }

  node(id: NodeId): RaftNode {
    return this.member(id).node;
  }

  up(): SimMember[] {
    return [...this.members.values()].filter((m) => m.up);
  }

  /** The leader of the highest term among running nodes, if any. */
  leader(): RaftNode | undefined {
    let best: RaftNode | undefined;
    for (const m of this.up()) if (m.node.isLeader && (!best || m.node.term > best.term)) best = m.node;
    return best;
  }

  note(line: string): void {
    this.trace.push(`${this.clock.now().toFixed(1)} ${line}`);
    if (this.trace.length > 400) this.trace.splice(0, 200);
  }

  private onApply(member: SimMember, index: number, value: string): void {
    const term = member.node.termAt(index);
    if (term === undefined) throw new Error(`${member.id} applied ${index} without its entry`);
    const seen = this.committed.get(index);
    if (!seen) this.committed.set(index, { term, value, committedBy: member.node.term });
    else if (seen.term === term && seen.value === value) seen.committedBy = Math.min(seen.committedBy, member.node.term);
    else {
      throw new Error(
        `state machine safety: ${member.id} applied ${value}@t${term} at ${index}, another applied ${seen.value}@t${seen.term}`,
      );
    }
  }

  /** A snapshot holds exactly what was applied at its indexes (whoever took it applied them). */
  private onRestore(member: SimMember, applied: [number, string][]): void {
    for (const [index, value] of applied) {
      const seen = this.committed.get(index);
      if (!seen || seen.value !== value) {
        throw new Error(`snapshot safety: ${member.id} restored ${value} at ${index}, applied there: ${seen?.value}`);
      }
    }
  }

  /** Runs one event and checks the invariants that are cheap enough to check after every step. */
  step(): boolean {
    if (!this.clock.step()) return false;
    this.steps++;
    this.checkStep();
    if (this.steps % this.checkLogsEvery === 0) this.checkLogs();
    return true;
  }

  /** Advances simulated time by `ms`. */
  run(ms: number): void {
    const until = this.clock.now() + ms;
    while ((this.clock.nextAt() ?? Infinity) <= until) this.step();
    this.clock.advanceTo(until);
  }

  /** Runs until `cond` holds (true) or `maxMs` of simulated time pass (false). */
  runUntil(cond: () => boolean, maxMs = 30_000): boolean {
    const until = this.clock.now() + maxMs;
    while (!cond()) {
      const next = this.clock.nextAt();
      if (next === undefined || next > until) {
        this.clock.advanceTo(until);
        return false;
      }
      this.step();
    }
    return true;
  }

  /** Runs until there is a leader that a majority follows in its term, and returns it. */
  waitForLeader(maxMs = 30_000): RaftNode {
    let found: RaftNode | undefined;
    const ok = this.runUntil(() => {
      const l = this.leader();
      if (!l || !l.hasQuorum()) return false;
      const followers = this.up().filter((m) => m.node.term === l.term && m.node.leader === l.id).length;
      if (followers >= Math.floor(l.peers.length / 2) + 1 && l.commitIndex >= 1 && l.termAt(l.commitIndex) === l.term) {
        found = l;
        return true;
      }
      return false;
    }, maxMs);
    if (!ok || !found) throw new Error(`no stable leader within ${maxMs} ms`);
    return found;
  }

  /** Proposes `value` on the current leader; the outcome lands in `outcomes`. */
  propose(value: string, outcomes?: Map<string, ProposalOutcome>): boolean {
    const l = this.leader();
    if (!l) return false;
    const r = l.propose(encodeText(value), (o) => outcomes?.set(value, o));
    return r.ok;
  }

  /** Proposes and runs until committed (throws if not within maxMs). */
  commit(value: string, maxMs = 30_000): void {
    const outcomes = new Map<string, ProposalOutcome>();
    const until = this.clock.now() + maxMs;
    while (this.clock.now() < until) {
      if (!outcomes.has(value) && this.propose(value, outcomes)) {
        this.runUntil(() => outcomes.has(value), 10_000);
        const outcome = outcomes.get(value);
        this.note(`commit ${value}: ${outcome ?? "undecided"}`);
        if (outcome === "committed") return;
        // Undecided (its leader was removed, or crashed) or "unknown" (learnt through a snapshot): if it
        // was committed, someone applied it (10 s of simulated time is plenty for that).
        if (outcome !== "lost" && this.wasApplied(value)) return;
        outcomes.delete(value);
      } else {
        this.run(50);
      }
    }
    throw new Error(`${value} not committed within ${maxMs} ms`);
  }

  wasApplied(value: string): boolean {
    for (const e of this.committed.values()) if (e.value === value) return true;
    return false;
  }

  /** Election safety: at most one leader per term, ever. */
  checkStep(): void {
    for (const m of this.members.values()) {
      if (!m.up || !m.node.isLeader) continue;
      const t = m.node.term;
      const known = this.leadersByTerm.get(t);
      if (known === undefined) {
        this.leadersByTerm.set(t, m.id);
        this.checkLeaderCompleteness(m.node);
      } else if (known !== m.id) {
        throw new Error(`election safety: ${known} and ${m.id} both leaders of term ${t}`);
      }
    }
  }

  /**
   * Leader completeness: a new leader of term T holds every entry committed in a term before T. (A
   * leader of an old term can appear late: a node frozen while its votes were in flight wins when it
   * wakes. It need not hold what later terms committed, and steps down at the next message.)
   */
  private checkLeaderCompleteness(leader: RaftNode): void {
    for (const [index, { term, value, committedBy }] of this.committed) {
      if (committedBy >= leader.term || index <= leader.snapshotIndex) continue;
      const e = leader.entryAt(index);
      if (!e || e.term !== term || new TextDecoder().decode(e.data) !== value) {
        throw new Error(`leader completeness: leader ${leader.id} of term ${leader.term} lacks committed ${value}@${index}`);
      }
    }
  }

  /**
   * Log matching: when two logs hold an entry with the same index and term, they hold the same entries
   * up to it. And no node's commit index covers an entry that differs from what was applied there.
   */
  checkLogs(): void {
    const nodes = [...this.members.values()].map((m) => m.node);
    for (let a = 0; a < nodes.length; a++) {
      for (let b = a + 1; b < nodes.length; b++) {
        const x = nodes[a]!;
        const y = nodes[b]!;
        const lo = Math.max(x.snapshotIndex, y.snapshotIndex) + 1;
        let i = Math.min(x.lastIndex, y.lastIndex);
        while (i >= lo && x.termAt(i) !== y.termAt(i)) i--;
        for (; i >= lo; i--) {
          const ex = x.entryAt(i)!;
          const ey = y.entryAt(i)!;
          if (ex.term !== ey.term || ex.type !== ey.type || !sameBytes(ex.data, ey.data)) {
            throw new Error(`log matching: ${x.id} and ${y.id} differ at ${i} below a common entry`);
          }
        }
      }
    }
  }

  /** Every running node has applied the same commands, up to the same index. */
  expectConverged(): void {
    this.checkLogs();
    const ups = this.up();
    const first = ups[0]!;
    for (const m of ups) {
      expect(m.node.lastApplied, `${m.id} lastApplied`).toBe(first.node.lastApplied);
      expect(m.machine.values(), `${m.id} state`).toEqual(first.machine.values());
    }
  }

  /** Runs until every running voter applied the leader's commit index. */
  waitConverged(maxMs = 60_000): void {
    const ok = this.runUntil(() => {
      const l = this.leader();
      if (!l) return false;
      return this.up().every((m) => m.node.lastApplied === l.lastIndex && m.node.commitIndex === l.lastIndex);
    }, maxMs);
    if (!ok) throw new Error(`not converged within ${maxMs} ms`);
    this.expectConverged();
  }
}

function sameBytes(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  if (!a || !b) return a === b;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Seeds to run: RAFT_SEED=<n> replays one; otherwise `count` seeds from `base`. */
export function seeds(base: number, count: number): number[] {
  const one = process.env.RAFT_SEED;
  if (one) return [Number(one)];
  return Array.from({ length: count }, (_, i) => base + i);
}

/** Runs a seeded scenario; a failure names its seed and shows the end of the trace. */
export function withSeed(seed: number, scenario: (seed: number) => void): void {
  currentCluster = undefined;
  try {
    scenario(seed);
  } catch (error) {
    const e = error as Error;
    const cluster = currentCluster as SimCluster | undefined;
    const trace = cluster?.trace.slice(-60).join("\n") ?? "";
    e.message = `seed ${seed} (replay: RAFT_SEED=${seed}): ${e.message}${trace ? `\n--- trace ---\n${trace}` : ""}`;
    throw e;
  }
}
