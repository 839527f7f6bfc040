// The meta group (nats-server's meta Raft group): every JetStream node of the cluster is a voter; its log
// holds the commands of meta.ts (streams created, updated, deleted, where they live), so every node knows
// the same streams. This file is the group's life: forming it, growing it, forwarding commands to the leader.
//
// Forming it without a fixed list of founders (nodes start in any order, seeds form a chain):
// - A node with a meta log on disk restarts into it (the voters are in its log).
// - A fresh node waits until it knows the cluster: its configured seeds and every member gossip tells of
//   have an open route (so their HELLO said whether they run JetStream), and every JetStream peer told its
//   STATUS (in a group or not); at most SETTLE_MAX_MS for members that do not answer. That must hold for
//   SETTLE_MS in a row. Then, if no peer is in a group yet and this node has the lowest id of the
//   JetStream nodes, it founds the group alone; otherwise it waits to be added.
// - The founder's first command names the group: its identity is the founder's id and the founding time
//   (meta.ts `group.found`, so every member has it from the log or a snapshot; a log from before
//   identities is named by its next leader). Every STATUS frame carries the sender's group identity, its
//   voter count and how many streams its meta state holds (a 1-byte body from an older node: only the state).
// - The leader adds the reachable JetStream nodes that are in no group (fresh ones; or in this group but not
//   a voter, an addition that was lost), one at a time, through the log; never a node of another group, and
//   nobody while a node of another group is reachable. A node being added starts with no voters, joins
//   only a leader whose STATUS it has (in a group), learns the voters from its first append, and from then
//   drops Raft messages from nodes of any other group: two Raft groups are never mixed.
// - Two fresh nodes that cannot see each other at their very first start (a partition, or a node that
//   founds in the instant before another's STATUS arrives) found two groups. When they meet (STATUS), the
//   one that holds no streams dissolves (both empty: the one with fewer voters; tie: the higher founder id):
//   each of its members, once the other group has a leader, drops its meta log and is a fresh node again,
//   which the other group's leader adds. If both hold streams nothing merges: each node logs the conflict
//   (an error, every 30 s) and reports it in /healthz (503) and /jsz meta_cluster.conflict; an operator
//   decides (e.g. removes one side's streams or meta log). Neither group adds nodes meanwhile.
//
// Snapshots: the state is small and changes rarely, so a snapshot follows every applied command (on the
// leader once every reachable follower has it: a command learnt through a snapshot is not acted on); a
// restart then replays almost nothing (a node acting on a replayed command acts idempotently anyway).
import path from "node:path";
import { existsSync, rmSync } from "node:fs";
import { RaftNode, systemClock } from "./raft.ts";
import { FileRaftStorage } from "./raft-file-storage.ts";
import type { NodeId, RaftMessage } from "./raft-types.ts";
import { MetaState, decodeCommand, encodeCommand, groupName, sameGroup, type GroupIdentity, type MetaCommand, type StreamAssignment } from "./meta.ts";
import { RaftFrameType, type GroupHandler, type RouteTransport } from "./route-transport.ts";
import { MemberState } from "../../cluster/gossip.ts";

export const META_GROUP = "_meta_";
/** After the seeds are met, how long a fresh node listens for peers already in a group before founding one. */
const SETTLE_MS = 750;
/** A fresh node stops waiting for seeds it cannot reach after this. */
const SETTLE_MAX_MS = 5000;
const TICK_MS = 250;
const STATUS_EVERY_MS = 1000;
/** A STATUS body's first byte: not in a group; in one without a known leader; in one with a leader. */
const STATUS_ALONE = 0;
const STATUS_NO_LEADER = 1;
const STATUS_LEADER = 2;
/** A leader proposes its group's identity again after this if it is still not applied (a lost proposal). */
const NAME_RETRY_MS = 2000;
/** Two groups that both hold streams: each node logs it at most this often. */
const CONFLICT_LOG_EVERY_MS = 30_000;

/**
 * What a peer's STATUS said. The body is the state byte, then (from a node in a group that knows its
 * identity) JSON `{group, voters, streams}`; a 1-byte body (older natter, or identity not known yet) has
 * only the state.
 */
export interface PeerStatus {
  state: number;
  group?: GroupIdentity;
  /** Voters of its group, as it knows them. */
  voters?: number;
  /** Streams in its group's meta state. */
  streams?: number;
  /** Servers its group removed (SERVER.REMOVE): one of them that restarts with an old log learns it here. */
  removed?: string[];
}

export function encodeStatus(status: PeerStatus): Uint8Array {
  if (status.group === undefined) return Uint8Array.of(status.state);
  const removed = status.removed !== undefined && status.removed.length > 0 ? { removed: status.removed } : {};
  const json = Buffer.from(JSON.stringify({ group: status.group, voters: status.voters ?? 0, streams: status.streams ?? 0, ...removed }));
  return Buffer.concat([Uint8Array.of(status.state), json]);
}

export function decodeStatus(body: Uint8Array): PeerStatus {
  const state = body[0] ?? STATUS_ALONE;
  if (body.length <= 1) return { state };
  try {
    const j = JSON.parse(Buffer.from(body.subarray(1)).toString()) as { group?: GroupIdentity; voters?: number; streams?: number; removed?: unknown };
    const g = j.group;
    if (g === undefined || typeof g.founder !== "string" || typeof g.founded !== "number") return { state };
    const removed = Array.isArray(j.removed) ? j.removed.filter((id): id is string => typeof id === "string") : [];
    return { state, group: { founder: g.founder, founded: g.founded }, voters: Number(j.voters) || 0, streams: Number(j.streams) || 0, ...(removed.length > 0 ? { removed } : {}) };
  } catch {
    return { state };
  }
}

/** A group as two groups compare each other: its identity, voters, streams. */
interface GroupView {
  group: GroupIdentity;
  voters: number;
  streams: number;
}

/**
 * Two groups met: which one dissolves. One that holds no streams loses nothing by dissolving, so when only
 * one of them is empty, that one does; both empty: the lower precedence (fewer voters; tie: the higher
 * founder id, then the later founding). Both hold streams: neither (a conflict an operator resolves).
 */
export function mergeLoser(ours: GroupView, theirs: GroupView): "ours" | "theirs" | "conflict" {
  if (ours.streams > 0 && theirs.streams > 0) return "conflict";
  if (ours.streams > 0) return "theirs";
  if (theirs.streams > 0) return "ours";
  if (ours.voters !== theirs.voters) return ours.voters < theirs.voters ? "ours" : "theirs";
  if (ours.group.founder !== theirs.group.founder) return ours.group.founder > theirs.group.founder ? "ours" : "theirs";
  return ours.group.founded > theirs.group.founded ? "ours" : "theirs";
}

export interface MetaGroupOptions {
  transport: RouteTransport;
  /** `<store_dir>/jetstream/$SYS/_js_/_meta_` (nats-server's place). */
  dir: string;
  /** Member ids of the configured seeds (routes). */
  seeds: string[];
  log: { info(line: string): void; warn(line: string): void; error(line: string): void; debug(line: string): void };
  /**
   * Each committed command, in order, after the state has applied it (`changed`: MetaState.apply's answer;
   * `prior`: the stream's assignment before it).
   */
  applied(command: MetaCommand, changed: boolean, prior: StreamAssignment | undefined): void;
  leaderChanged?(leader: NodeId | undefined): void;
  /** The leader sent a snapshot: the state jumped (creates and deletes it holds were not applied one by one). */
  restored?(): void;
  /** A member of this node's group says SERVER.REMOVE took this node out (while it was down). */
  removedHere?(): void;
}

export class MetaGroup implements GroupHandler {
  readonly state = new MetaState();
  raft: RaftNode | null = null;
  private storage: FileRaftStorage | null = null;
  /** Whether this node had no meta log at start (it may found the group, and adopts its old streams). */
  readonly fresh: boolean;
  private readonly startedAt = Date.now();
  /** Since when this node has known the cluster (see the top of the file); 0 = not now. */
  private knownSince = 0;
  /** What each JetStream peer last said. */
  private readonly statuses = new Map<NodeId, PeerStatus>();
  /**
   * This node's group identity before its `group.found` is applied: the founder's own, or, for a node being
   * added, the group of the leader that first reached it.
   */
  private pendingGroup: GroupIdentity | undefined;
  /** When this node (as leader) last proposed its group's identity. */
  private namedAt = 0;
  /** Groups this node left (dissolved): their members' messages are ignored from then on. */
  private readonly dissolved: GroupIdentity[] = [];
  /** A reachable node is in another group and both hold streams: the error text (/healthz, /jsz). */
  private conflictText: string | null = null;
  private conflictLoggedAt = 0;
  /** The other groups of the conflict last logged (a new one is logged at once). */
  private conflictWith = "";
  /** A reachable node is in another group (merging or in conflict): the leader adds nobody meanwhile. */
  private otherGroupSeen = false;
  private timer: ReturnType<typeof setInterval> | null = null;
  private lastStatusAt = 0;
  private snapshotQueued = false;
  private stopped = false;

  constructor(private readonly o: MetaGroupOptions) {
    this.fresh = !existsSync(path.join(o.dir, "state"));
    o.transport.register(META_GROUP, this);
  }

  get selfId(): NodeId {
    return this.o.transport.selfId;
  }

  get isLeader(): boolean {
    return this.raft?.role === "leader";
  }

  get leader(): NodeId | undefined {
    return this.raft?.leader;
  }

  /** Current with the meta leader (nats-server's meta.Current()): the leader, or a follower that hears it and applied what it knows committed. */
  get current(): boolean {
    const raft = this.raft;
    if (raft === null) return false;
    if (raft.role === "leader") return true;
    const leader = raft.leader;
    return leader !== undefined && this.o.transport.isAlive(leader) && raft.lastApplied >= raft.commitIndex;
  }

  /** This group's identity (founder, founding time), once known. */
  get identity(): GroupIdentity | undefined {
    return this.state.group ?? this.pendingGroup;
  }

  /** Two groups that both hold streams can reach each other: the error, else null. */
  get conflict(): string | null {
    return this.conflictText;
  }

  /** The voters (empty before this node is in a group). */
  get peers(): readonly NodeId[] {
    return this.raft?.peers ?? [];
  }

  start(): void {
    if (!this.fresh) this.open([]);
    this.timer = setInterval(() => this.tick(), TICK_MS);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.raft?.stop();
    this.storage?.close();
  }

  /**
   * Proposes a command: at the leader through its log, elsewhere forwarded to the leader (no outcome).
   * Returns false when there is no leader to take it.
   */
  propose(command: MetaCommand): boolean {
    const raft = this.raft;
    if (raft === null) return false;
    const data = encodeCommand(command);
    if (raft.role === "leader") return raft.propose(data).ok;
    const leader = raft.leader;
    if (leader === undefined) return false;
    return this.o.transport.send(leader, RaftFrameType.FORWARD, META_GROUP, data);
  }

  // ---- GroupHandler ------------------------------------------------------------------------------

  receive(message: RaftMessage): void {
    if (this.stopped) return;
    // Two Raft groups are never mixed: a message from a node of another group (or of one this node left) is dropped.
    const status = this.statuses.get(message.from);
    const senderGroup = status?.group;
    if (senderGroup !== undefined && this.dissolved.some((g) => sameGroup(g, senderGroup))) return;
    const mine = this.identity;
    if (mine !== undefined && senderGroup !== undefined && !sameGroup(mine, senderGroup)) return;
    // A fresh node hears from a leader that added it: it joins with no voters of its own, in that leader's
    // group (whose STATUS it has: one whose STATUS has not arrived yet is heard at its next append).
    if (this.raft === null) {
      if (message.type !== "append" && message.type !== "snapshot") return;
      if (status === undefined || status.state === STATUS_ALONE) return;
      this.pendingGroup = senderGroup;
      this.open([]);
    }
    this.raft!.receive(message);
  }

  onForward(from: NodeId, payload: Uint8Array): void {
    const raft = this.raft;
    if (raft === null || raft.role !== "leader") return; // lost: the sender retries where it matters
    try {
      decodeCommand(payload);
    } catch {
      this.o.log.warn(`JetStream cluster: unreadable meta command forwarded by ${from}`);
      return;
    }
    raft.propose(payload);
  }

  onStatus(from: NodeId, payload: Uint8Array): void {
    const status = decodeStatus(payload);
    this.statuses.set(from, status);
    // Removed while it was down (it never got the command): a member of its own group tells it.
    const mine = this.identity;
    if (status.removed?.includes(this.selfId) && mine !== undefined && status.group !== undefined && sameGroup(status.group, mine)) this.o.removedHere?.();
  }

  /** A JetStream peer's route opened: it learns at once whether this node is in a group. */
  peerReachable(id: NodeId): void {
    this.o.transport.send(id, RaftFrameType.STATUS, META_GROUP, this.statusBody());
  }

  /** Whether a reachable peer said it knows a meta leader (then it, not this node, answers 10008 questions). */
  peerKnowsLeader(): boolean {
    for (const peer of this.o.transport.peers.values()) if (peer.alive && this.statuses.get(peer.id)?.state === STATUS_LEADER) return true;
    return false;
  }

  private statusBody(): Uint8Array {
    const raft = this.raft;
    if (raft === null) return encodeStatus({ state: STATUS_ALONE });
    const state = raft.leader === undefined ? STATUS_NO_LEADER : STATUS_LEADER;
    return encodeStatus({ state, group: this.identity, voters: raft.peers.length, streams: this.state.streamCount, removed: [...this.state.removed] });
  }

  // ---- life --------------------------------------------------------------------------------------

  private open(founders: NodeId[]): void {
    this.storage = new FileRaftStorage(this.o.dir, { warn: (line) => this.o.log.warn(`JetStream meta log: ${line}`) });
    this.raft = new RaftNode({
      id: this.selfId,
      peers: founders,
      storage: this.storage,
      transport: this.o.transport.transportFor(META_GROUP),
      clock: systemClock,
      random: Math.random,
      stateMachine: {
        apply: (_index, data) => this.apply(data),
        restore: (snapshot) => {
          this.state.restore(snapshot.data);
          // A snapshot from the leader (not this node's own, read at start): what this node missed meanwhile.
          if (this.raft !== null) this.o.restored?.();
        },
      },
      events: {
        leaderChanged: (leader, term) => {
          this.o.log.info(`JetStream cluster: meta leader is ${leader === undefined ? "unknown" : leader === this.selfId ? "this node" : leader} (term ${term})`);
          this.o.leaderChanged?.(leader);
          if (leader === this.selfId) this.nameGroup(Date.now());
          this.sendStatus();
        },
        configChanged: (peers) => this.o.log.debug(`JetStream cluster: meta voters ${peers.join(", ")}`),
      },
      log: (line) => this.o.log.debug(`meta raft: ${line}`),
    });
    this.raft.start();
    this.sendStatus();
  }

  private apply(data: Uint8Array): void {
    let command: MetaCommand;
    try {
      command = decodeCommand(data);
    } catch {
      this.o.log.warn("JetStream cluster: unreadable meta command in the log (skipped)");
      return;
    }
    const named = "assignment" in command ? command.assignment : command;
    const current = "name" in named ? this.state.stream(named.account, named.name) : undefined;
    const prior = current === undefined ? undefined : { ...current, peers: [...current.peers] }; // apply changes it in place
    const changed = this.state.apply(command);
    try {
      this.o.applied(command, changed, prior);
    } catch (error) {
      this.o.log.warn(`JetStream cluster: acting on ${command.op}: ${(error as Error).stack ?? error}`);
    }
    this.queueSnapshot();
  }

  private queueSnapshot(): void {
    if (this.snapshotQueued) return;
    this.snapshotQueued = true;
    queueMicrotask(() => {
      this.snapshotQueued = false;
      const raft = this.raft;
      if (raft === null || this.stopped || raft.lastApplied <= raft.snapshotIndex) return;
      // A leader keeps the commands until every reachable follower has them: a follower that got a command
      // through a snapshot would not act on it (answer the client, leave a stream's group…). (Retried every tick.)
      if (raft.role === "leader" && raft.followers().some((f) => f.matchIndex < raft.lastApplied && this.o.transport.isAlive(f.id))) return;
      raft.snapshot(raft.lastApplied, this.state.snapshot());
    });
  }

  private tick(): void {
    if (this.stopped) return;
    const now = Date.now();
    if (now - this.lastStatusAt >= STATUS_EVERY_MS) this.sendStatus();
    if (this.raft === null) return this.maybeFound(now);
    if (this.meetOtherGroups(now)) return; // dissolved: fresh again
    if (this.raft.role === "leader") {
      this.nameGroup(now);
      if (!this.otherGroupSeen) this.addReachablePeers();
    }
    if (this.raft.lastApplied > this.raft.snapshotIndex) this.queueSnapshot(); // one a leader held back
  }

  private sendStatus(): void {
    this.lastStatusAt = Date.now();
    const body = this.statusBody();
    for (const peer of this.o.transport.peers.values()) if (peer.alive) this.o.transport.send(peer.id, RaftFrameType.STATUS, META_GROUP, body);
  }

  /** A fresh node founds the group once it knows the cluster, nobody is in a group, and it has the lowest id. */
  private maybeFound(now: number): void {
    const transport = this.o.transport;
    const cluster = transport.cluster;
    const alive = [...transport.peers.values()].filter((p) => p.alive);
    const members = [...(cluster.gossip?.members.values() ?? [])].filter((m) => m.state !== MemberState.DEAD).map((m) => m.id);
    const known =
      [...this.o.seeds, ...members].every((id) => id === this.selfId || cluster.routes.has(id)) && alive.every((p) => this.statuses.has(p.id));
    if (!known && now - this.startedAt < SETTLE_MAX_MS) {
      this.knownSince = 0;
      return;
    }
    if (this.knownSince === 0) this.knownSince = now;
    if (now - this.knownSince < SETTLE_MS) return;
    if (alive.some((p) => (this.statuses.get(p.id)?.state ?? STATUS_ALONE) !== STATUS_ALONE)) return; // a group exists: its leader will add this node
    if (alive.some((p) => p.id < this.selfId)) return; // the lowest id founds it
    this.pendingGroup = { founder: this.selfId, founded: now };
    this.o.log.info(`JetStream cluster: founding the meta group ${groupName(this.pendingGroup)}`);
    this.open([this.selfId]);
    this.raft!.campaign();
  }

  /**
   * The leader writes the group's identity into the log, once: the founder's (its first command), or, for a
   * log from before identities, one it makes up (this node, now). Retried until applied.
   */
  private nameGroup(now: number): void {
    const raft = this.raft;
    if (raft === null || raft.role !== "leader" || this.state.group !== undefined || now - this.namedAt < NAME_RETRY_MS) return;
    const group = this.pendingGroup ?? { founder: this.selfId, founded: now };
    if (!raft.propose(encodeCommand({ op: "group.found", group })).ok) return;
    this.namedAt = now;
    this.pendingGroup = group;
  }

  /**
   * Reachable nodes in another group (two groups formed apart): the other group's view is the largest any
   * of its reachable members reports. This group dissolves if mergeLoser says so (its members drop the meta
   * log and are added by the other group's leader as fresh nodes); if both hold streams, the conflict is
   * reported and nothing is merged. Returns true when this node dissolved its group.
   */
  private meetOtherGroups(now: number): boolean {
    const raft = this.raft!;
    const mine = this.identity;
    const others = new Map<string, GroupView & { via: NodeId; led: boolean }>();
    if (mine !== undefined) {
      for (const peer of this.o.transport.peers.values()) {
        const s = this.statuses.get(peer.id);
        if (!peer.alive || s?.group === undefined || s.state === STATUS_ALONE || sameGroup(s.group, mine)) continue;
        if (this.dissolved.some((g) => sameGroup(g, s.group))) continue; // its members leave it too
        const name = groupName(s.group);
        const seen = others.get(name);
        others.set(name, {
          group: s.group, via: seen?.via ?? peer.id, led: seen?.led === true || s.state === STATUS_LEADER,
          voters: Math.max(seen?.voters ?? 0, s.voters ?? 0), streams: Math.max(seen?.streams ?? 0, s.streams ?? 0),
        });
      }
    }
    this.otherGroupSeen = others.size > 0;
    const ours: GroupView | undefined = mine === undefined ? undefined : { group: mine, voters: raft.peers.length, streams: this.state.streamCount };
    const conflicts: string[] = [];
    const conflictWith: string[] = [];
    for (const theirs of others.values()) {
      const loser = mergeLoser(ours!, theirs);
      const describe = (v: GroupView) => `${groupName(v.group)} (${v.voters} voter${v.voters === 1 ? "" : "s"}, ${v.streams} stream${v.streams === 1 ? "" : "s"})`;
      const via = this.o.transport.peers.get(theirs.via)?.serverName ?? theirs.via;
      if (loser === "conflict") {
        conflictWith.push(groupName(theirs.group));
        conflicts.push(`JetStream meta group conflict: this server's meta group ${describe(ours!)} and ${via}'s meta group ${describe(theirs)} both hold streams; they are not merged`);
      } else if (loser === "ours" && theirs.led && raft.lastApplied >= raft.commitIndex) {
        // Not while the other group has no leader (it could not add this node), nor while this node is still
        // applying what it knows committed (it may yet learn of a stream): it decides again next tick.
        this.o.log.warn(`JetStream cluster: this server's meta group ${describe(ours!)} meets ${via}'s meta group ${describe(theirs)}: leaving it (meta log dropped) to be added to the other as a fresh node`);
        this.dissolve();
        return true;
      }
    }
    const text = conflicts.length === 0 ? null : conflicts.join("; ");
    const conflictingGroups = conflictWith.sort().join(" ");
    if (text !== null && (conflictingGroups !== this.conflictWith || now - this.conflictLoggedAt >= CONFLICT_LOG_EVERY_MS)) {
      this.o.log.error(text);
      this.conflictLoggedAt = now;
    }
    this.conflictWith = conflictingGroups;
    if (text === null && this.conflictText !== null) this.o.log.info("JetStream cluster: no other meta group holding streams is reachable any more");
    this.conflictText = text;
    return false;
  }

  /** This node leaves its (empty) group for good: its meta log goes, and it is a fresh node again. */
  private dissolve(): void {
    const left = this.identity!;
    this.dissolved.push(left);
    this.raft?.stop();
    this.storage?.close();
    this.raft = null;
    this.storage = null;
    rmSync(this.o.dir, { recursive: true, force: true });
    this.state.restore(new Uint8Array());
    this.pendingGroup = undefined;
    this.namedAt = 0;
    this.knownSince = 0;
    this.conflictText = null;
    this.otherGroupSeen = false;
    this.o.leaderChanged?.(undefined);
    this.sendStatus();
  }

  /** The leader: servers removed (SERVER.REMOVE) leave the voters; reachable JetStream nodes not yet voters join. One change at a time. */
  private addReachablePeers(): void {
    const raft = this.raft!;
    for (const id of this.state.removed) {
      // A running one once no stream names it any more (its reassignments reach it while it is still a voter).
      if (!raft.peers.includes(id) || (this.o.transport.isAlive(id) && [...this.state.all()].some((a) => a.peers.includes(id)))) continue;
      if (raft.removePeer(id).ok) this.o.log.info(`JetStream cluster: removing ${this.o.transport.peers.get(id)?.serverName ?? id} (${id}) from the meta group`);
      return;
    }
    const mine = this.identity;
    for (const peer of this.o.transport.peers.values()) {
      if (!peer.alive || raft.peers.includes(peer.id) || this.state.removed.has(peer.id)) continue;
      // Only a fresh node (or one that joined this group but is not a voter: an addition that was lost); a
      // node of another group is never added (meetOtherGroups merges groups), nor one not heard from yet.
      const status = this.statuses.get(peer.id);
      if (status === undefined || (status.state !== STATUS_ALONE && !sameGroup(status.group, mine))) continue;
      const result = raft.addPeer(peer.id);
      if (result.ok) this.o.log.info(`JetStream cluster: adding ${peer.serverName} (${peer.id}) to the meta group`);
      return; // one at a time (refused while another change is uncommitted: retried next tick)
    }
  }
}
