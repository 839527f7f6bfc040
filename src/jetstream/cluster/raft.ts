// The Raft core: one node of a replicated log. It knows nothing of streams; it is given a transport, a
// clock, a source of randomness, durable storage and a state machine (raft-types.ts), and is driven
// only by their callbacks and by calls to its methods, so a test can run it deterministically.
//
// What it guarantees (the Raft paper's properties, checked by test/raft after every step of many seeded
// runs over a lossy, reordering, partitioned simulated network):
// - Election safety: at most one leader per term.
// - Log matching: two logs holding an entry of the same index and term are identical up to it.
// - Leader completeness: a committed entry is in the log of every leader of a later term.
// - State machine safety: every node applies the same command at a given index, each exactly once per
//   life of its state machine, in index order.
// - A leader commits only entries of its own term by counting replicas (earlier ones through them), so a
//   minority never commits, and what was committed survives any minority of crashes (storage is durable
//   before a node answers: votes before a vote reply, entries before an append reply).
//
// Timing (DEFAULT_TIMING) is the only thing liveness depends on; safety depends on none of it.
import { RaftLog } from "./raft-log.ts";
import {
  EntryType,
  type AppendRequest,
  type AppendResponse,
  type LogEntry,
  type NodeId,
  type ProposalOutcome,
  type RaftClock,
  type RaftMessage,
  type RaftRole,
  type RaftStorage,
  type RaftTransport,
  type Snapshot,
  type SnapshotRequest,
  type SnapshotResponse,
  type StateMachine,
  type TimerId,
  type VoteRequest,
  type VoteResponse,
} from "./raft-types.ts";

export interface RaftTiming {
  /** How often a leader sends appends when it has nothing new (heartbeats). */
  heartbeatMs: number;
  /** A follower that hears no leader for a random time in [min, max) starts a (pre-)election. */
  electionTimeoutMinMs: number;
  electionTimeoutMaxMs: number;
  /** A leader that hears from no majority for this long reports quorum lost and steps down. */
  quorumLostMs: number;
}

/**
 * Defaults for nodes on one machine or a LAN, chosen for a busy 2-core machine with a failover target
 * (leader killed → new leader) of a median ≤ 2 s:
 * - Loopback round trips are well under a millisecond, but on a loaded 2-core box the event loop stalls
 *   for 100–300 ms (GC, a burst of client traffic, fsync). A 250 ms heartbeat with an election timeout
 *   of at least 1 s means four heartbeats in a row must be missed before anyone campaigns: one stall
 *   does not cause a false election.
 * - Randomised over [1 s, 2 s): a 1 s spread against millisecond vote rounds makes split votes rare.
 * - After a leader dies, the first of its followers times out 1–2 s after the last heartbeat it got;
 *   with two followers the earlier of two uniform draws has a median of ≈ 1.3 s, less the time since
 *   that heartbeat (up to 250 ms), then a pre-vote and a vote round trip (milliseconds) and the new
 *   leader's first commit. test/raft/election.test.ts measures a median of 1.1 s, max 1.8 s, over 40
 *   seeded kills. (nats-server uses 4–9 s and 1 s heartbeats; its failover median here is 5.8 s.) A
 *   follower that sees its leader's connection close does not wait for this (peerUnreachable).
 * - The cost: a stall longer than 1 s (a swapping or badly overloaded machine) could start a needless
 *   election. Pre-vote and the vote lease keep it harmless while the leader is still heard by the others;
 *   a stall of every node at once is met by looking again when a timer fired late (armElectionTimer,
 *   tickLate). Measured under load (bench/false-elections.ts): none.
 * - Quorum lost after 2 s (the longest election timeout) without a majority: by then the others may
 *   have elected a new leader, so the old one must stop acting as leader.
 */
export const DEFAULT_TIMING: RaftTiming = {
  heartbeatMs: 250,
  electionTimeoutMinMs: 1000,
  electionTimeoutMaxMs: 2000,
  quorumLostMs: 2000,
};

/**
 * A follower that learns its leader's connection closed campaigns after a random delay in this range (ms):
 * see RaftNode.peerUnreachable. Wide against a vote's round trip (milliseconds) so that two followers rarely
 * campaign together, short against the election timeout.
 */
export const LEADER_LOST_DELAY_MS: readonly [number, number] = [50, 300];

/** Real time: a monotonic clock and the runtime's timers. */
export const systemClock: RaftClock = {
  now: () => performance.now(),
  setTimer: (delayMs, fire) => setTimeout(fire, delayMs),
  clearTimer: (id) => clearTimeout(id as ReturnType<typeof setTimeout>),
};

export interface RaftEvents {
  /** The known leader changed (undefined: none known). */
  leaderChanged?(leader: NodeId | undefined, term: number): void;
  /** This node was leader and heard from no majority for quorumLostMs; it steps down right after. */
  quorumLost?(term: number): void;
  /** The voter set changed (a Config entry appended or truncated, or a snapshot installed). */
  configChanged?(peers: NodeId[]): void;
}

export interface RaftOptions {
  id: NodeId;
  /**
   * The voters when the group is first created; every founding node must be given the same list. Once
   * the log or a snapshot holds a Config entry, that wins. A node being added starts with [] and learns
   * the voter set from the leader.
   */
  peers: NodeId[];
  storage: RaftStorage;
  transport: RaftTransport;
  clock: RaftClock;
  /** Uniform in [0, 1); seeded in tests. */
  random: () => number;
  stateMachine: StateMachine;
  timing?: Partial<RaftTiming>;
  events?: RaftEvents;
  /** At most this many entries in one append message. */
  maxEntriesPerAppend?: number;
  /** At most this many entries sent to a follower and not yet acknowledged. */
  maxInflightEntries?: number;
  /**
   * At most this many bytes of commands in one append message (an entry larger alone goes alone): a
   * transport has a largest frame (the routes: max_payload + 256 KB), and a follower catching up must not
   * be sent more than that in one message, whatever the size of each entry.
   */
  maxAppendBytes?: number;
  /**
   * How a follower runs the applies an append committed: at once (the default), or later through this (a
   * server passes queueMicrotask, so that its answer to the append is written before the state machine's
   * work, which then runs while the leader already commits: the answer is on the path of every commit).
   */
  applyLater?: (run: () => void) => void;
  log?: (line: string) => void;
}

export type ProposeError =
  | "not leader"
  | "leadership transfer in progress"
  | "membership change in progress"
  | "no commit in this term yet"
  | "already a peer"
  | "not a peer"
  | "last peer";

export type ProposeResult = { ok: true; index: number; term: number } | { ok: false; error: ProposeError };

/** What the leader knows of one follower. */
interface Progress {
  /** The follower's log matches ours up to here. */
  matchIndex: number;
  /** The next entry to send it. */
  nextIndex: number;
  /** When it last answered anything in this term (quorum and lease). */
  lastAckAt: number;
  /** The newest heartbeat round it answered (read index). */
  ackedRound: number;
  /** matchIndex at the previous heartbeat tick: no progress over a tick means resend from matchIndex. */
  matchAtLastTick: number;
  /** When a snapshot was last sent to it and not yet answered. */
  snapshotSentAt: number | undefined;
  /** The commit index the latest append sent to it carried (see sendCommitIndex). */
  commitSent: number;
}

interface PendingProposal {
  term: number;
  done: (outcome: ProposalOutcome) => void;
}

interface PendingRead {
  /** The read may be served once the state machine has applied this index. */
  index: number;
  /** A majority must answer a heartbeat round at least this new. */
  round: number;
  confirmed: boolean;
  done: (index: number | undefined) => void;
}

export class RaftNode {
  readonly id: NodeId;
  private readonly storage: RaftStorage;
  private readonly transport: RaftTransport;
  private readonly clock: RaftClock;
  private readonly random: () => number;
  private readonly machine: StateMachine;
  private readonly timing: RaftTiming;
  private readonly events: RaftEvents;
  private readonly maxEntriesPerAppend: number;
  private readonly maxInflightEntries: number;
  private readonly maxAppendBytes: number;
  private readonly applyLater: ((run: () => void) => void) | undefined;
  /** A follower's apply is queued through applyLater. */
  private applyQueued = false;
  private readonly logLine: (line: string) => void;

  private _role: RaftRole = "follower";
  private _term = 0;
  private votedFor: NodeId = "";
  private _leader: NodeId | undefined;
  private readonly log = new RaftLog();
  private _commitIndex = 0;
  private _lastApplied = 0;
  private readonly bootstrapPeers: NodeId[];
  private snapshotPeers: NodeId[] | undefined;
  private _peers: NodeId[] = [];

  /** The one timer: the election timer (not leader) or the heartbeat tick (leader). */
  private timer: TimerId | undefined;
  /** When the armed election timer fires (undefined: none armed). */
  private electionTimerAt: number | undefined;
  private electionDeadline = 0;
  /** Drawn at random from the election timeout range when the timer is reset (not when extended). */
  private electionTimeoutMs = 0;
  /** The election timer fired late once and was given a heartbeat's time more (see armElectionTimer). */
  private graced = false;
  /** When the leader's heartbeat tick is due, and whether the last one came late (see tickLate). */
  private heartbeatDueAt = 0;
  private lastTickLate = false;
  private stopped = false;
  /** When this node last heard from the leader of its term (the lease that refuses votes). */
  private lastLeaderContact = -Infinity;
  /** The highest commit index the leader of this term told in an append this node accepted (0: none yet). */
  private leaderCommit = 0;
  /** Granted (pre-)votes of the election in progress. */
  private votes = new Set<NodeId>();

  // Leader only.
  private progress = new Map<NodeId, Progress>();
  private round = 0;
  /** The index of this leader's first entry: reads wait for it (it commits everything before it). */
  private termStartIndex = 0;
  private transferTarget: NodeId | undefined;
  private transferDeadline = 0;
  private transferSent = false;
  private pendingReads: PendingRead[] = [];

  /**
   * Proposals waiting for their outcome, by index. Several can wait at one index: this node may have
   * proposed there as leader of an earlier term, lost that entry from its log, and led again; the old
   * one could still be committed (through a node that kept it), so it waits for the commit too.
   */
  private readonly pendingProposals = new Map<number, PendingProposal[]>();

  constructor(options: RaftOptions) {
    this.id = options.id;
    this.storage = options.storage;
    this.transport = options.transport;
    this.clock = options.clock;
    this.random = options.random;
    this.machine = options.stateMachine;
    this.timing = { ...DEFAULT_TIMING, ...options.timing };
    this.events = options.events ?? {};
    this.maxEntriesPerAppend = options.maxEntriesPerAppend ?? 256;
    this.maxInflightEntries = options.maxInflightEntries ?? 4096;
    this.maxAppendBytes = options.maxAppendBytes ?? 192 * 1024;
    this.applyLater = options.applyLater;
    this.logLine = options.log ?? (() => {});
    this.bootstrapPeers = [...options.peers];

    const stored = this.storage.load();
    this._term = stored.hard.term;
    this.votedFor = stored.hard.votedFor;
    if (stored.snapshot) {
      this.log.compactTo(stored.snapshot.index, stored.snapshot.term);
      this.snapshotPeers = [...stored.snapshot.peers];
      this.machine.restore(stored.snapshot);
      this._commitIndex = this._lastApplied = stored.snapshot.index;
    }
    this.log.append(stored.entries);
    this._peers = this.configAt(this.log.lastIndex());
  }

  // ---- state, for callers and tests -----------------------------------------------------------------

  get role(): RaftRole {
    return this._role;
  }
  get term(): number {
    return this._term;
  }
  /** The leader this node follows (itself when leader), undefined when it knows none. */
  get leader(): NodeId | undefined {
    return this._leader;
  }
  get isLeader(): boolean {
    return this._role === "leader";
  }
  get commitIndex(): number {
    return this._commitIndex;
  }
  get lastApplied(): number {
    return this._lastApplied;
  }
  get lastIndex(): number {
    return this.log.lastIndex();
  }
  get lastTerm(): number {
    return this.log.lastTerm();
  }
  get snapshotIndex(): number {
    return this.log.snapshotIndex;
  }
  /** The current voter set (this node may not be in it). */
  get peers(): readonly NodeId[] {
    return this._peers;
  }
  /** The term of the entry at `index` (undefined when compacted or beyond the end). */
  termAt(index: number): number | undefined {
    return this.log.term(index);
  }
  entryAt(index: number): LogEntry | undefined {
    return this.log.entry(index);
  }

  /**
   * Leader only: true while a majority (this node included) answered within quorumLostMs. A false here
   * is what the stream layer reports as quorum lost (JetStream error 10074 style).
   */
  hasQuorum(): boolean {
    return this._role === "leader" && this.recentQuorum(this.timing.quorumLostMs);
  }

  /**
   * A follower that may serve reads of what is committed (nats-server's Current): it heard from the leader
   * of its term within the shortest election timeout, accepted an append from it, and applied everything
   * that leader said was committed (a replica whose log is behind cannot commit that far: it checks only
   * what it verified). The leader itself: true.
   */
  isCurrent(): boolean {
    if (this.stopped) return false;
    if (this._role === "leader") return true;
    return this.inLease() && this.leaderCommit > 0 && this._lastApplied >= this.leaderCommit;
  }

  /**
   * Leader only: tells each follower the commit index now, an empty append to those whose latest append
   * carried an older one, instead of at the next append or heartbeat (nats-server's leader sends a heartbeat
   * when a commit leaves nothing queued). Followers then apply within one hop: a caller that answers a client
   * after this (a PubAck) has the followers' copies applied first on the same route. Given `to`, only that
   * follower (nothing if it is none).
   */
  sendCommitIndex(to?: NodeId): void {
    if (this.stopped || this._role !== "leader") return;
    if (to !== undefined) {
      const p = this.progress.get(to);
      if (p !== undefined && p.commitSent < this._commitIndex) this.sendAppend(to, true);
      return;
    }
    for (const [peer, p] of this.progress) if (p.commitSent < this._commitIndex) this.sendAppend(peer, true);
  }

  /** Leader only: how far each follower is (for a stream info `cluster.replicas` block). */
  followers(): { id: NodeId; matchIndex: number; lastAckAgoMs: number }[] {
    const now = this.clock.now();
    return [...this.progress].map(([id, p]) => ({ id, matchIndex: p.matchIndex, lastAckAgoMs: now - p.lastAckAt }));
  }

  // ---- life ------------------------------------------------------------------------------------------

  start(): void {
    this.resetElectionTimer();
  }

  /** Campaigns now rather than after an election timeout (a node that founds a group alone). */
  campaign(): void {
    if (!this.stopped && this._role !== "leader" && this.isVoter()) this.startPreVote();
  }

  /**
   * The transport lost its connection to `peer` (a route closed: a kill -9 closes its sockets at once).
   * A follower whose leader that was gives up the leader's lease now, so that it grants the other
   * followers' pre-votes, and campaigns after LEADER_LOST_DELAY_MS instead of its election timeout (1–2 s
   * after the last heartbeat): random, so that the followers, which all see the leader's routes close at
   * about the same time, do not split the vote, and not at once, so that the others have let go of the
   * lease when the first asks. Harmless when only this node lost the leader (a link, not the node): the
   * others still hear it and refuse the pre-vote, and no term changes.
   */
  peerUnreachable(peer: NodeId): void {
    if (this.stopped || this._role !== "follower" || this._leader !== peer || !this.isVoter()) return;
    this.lastLeaderContact = -Infinity;
    const [min, max] = LEADER_LOST_DELAY_MS;
    const deadline = this.clock.now() + min + this.random() * (max - min);
    if (deadline >= this.electionDeadline) return;
    this.electionDeadline = deadline;
    this.graced = true; // not a stall of ours: no second look when the timer fires late
    this.clearTimer();
    this.armElectionTimer();
  }

    /** Stops timers and ignores all further input. Storage stays open (the caller owns it). */
  stop(): void {
    this.stopped = true;
    this.clearTimer();
    this.failPendingReads();
  }

  // ---- client API ------------------------------------------------------------------------------------

  /**
   * Appends a command to the log (leader only). `done` learns its outcome once this node knows it:
   * when its index commits (committed, or lost if another entry took the index after a leader change).
   * A caller that must answer in bounded time adds its own timeout.
   */
  propose(data: Uint8Array, done?: (outcome: ProposalOutcome) => void): ProposeResult {
    const refused = this.refuseProposal();
    if (refused) return { ok: false, error: refused };
    return this.appendAsLeader({ index: 0, term: 0, type: EntryType.Command, data }, done);
  }

  /**
   * Appends several commands at once (leader only): one storage write (one fsync) and one message per
   * follower for all of them, which is how a caller that gathers publishes gets throughput. They take
   * consecutive indexes from the returned `index`; `done(outcome, index)` is called for each.
   */
  proposeBatch(commands: Uint8Array[], done?: (outcome: ProposalOutcome, index: number) => void): ProposeResult {
    const refused = this.refuseProposal();
    if (refused) return { ok: false, error: refused };
    if (commands.length === 0) return { ok: true, index: this.log.lastIndex() + 1, term: this._term };
    const entries = commands.map((data): LogEntry => ({ index: 0, term: 0, type: EntryType.Command, data }));
    this.appendLocal(entries);
    if (done) for (const e of entries) this.awaitOutcome(e, (outcome) => done(outcome, e.index));
    return this.replicate(entries[0]!);
  }

  /** Adds a voter, through the log (one change at a time; the new node starts with peers []). */
  addPeer(peer: NodeId, done?: (outcome: ProposalOutcome) => void): ProposeResult {
    const refused = this.refuseProposal();
    if (refused) return { ok: false, error: refused };
    if (this._peers.includes(peer)) return { ok: false, error: "already a peer" };
    return this.changePeers([...this._peers, peer], done);
  }

  /** Removes a voter, through the log. A leader that removes itself steps down once it commits. */
  removePeer(peer: NodeId, done?: (outcome: ProposalOutcome) => void): ProposeResult {
    const refused = this.refuseProposal();
    if (refused) return { ok: false, error: refused };
    if (!this._peers.includes(peer)) return { ok: false, error: "not a peer" };
    if (this._peers.length === 1) return { ok: false, error: "last peer" };
    return this.changePeers(
      this._peers.filter((p) => p !== peer),
      done,
    );
  }

  /**
   * Hands leadership to a caught-up voter (nats-server's stepdown): `preferred` if given and a voter,
   * else the most up-to-date one. Proposals are refused meanwhile; if no election follows within the
   * longest election timeout, this node carries on as leader. False when there is nobody to hand to.
   */
  stepDown(preferred?: NodeId): boolean {
    if (this._role !== "leader") return false;
    const others = this._peers.filter((p) => p !== this.id && this.progress.has(p));
    if (others.length === 0) return false;
    const target = preferred !== undefined && others.includes(preferred) ? preferred : this.mostCaughtUp(others);
    this.transferTarget = target;
    this.transferDeadline = this.clock.now() + this.timing.electionTimeoutMaxMs;
    this.transferSent = false;
    this.maybeSendTimeoutNow();
    if (!this.transferSent) this.sendAppend(target, true);
    return true;
  }

  /**
   * Linearizable read (the Raft thesis §6.4 read index): calls `done(index)` once this node has
   * confirmed with a majority that it is still leader and has applied everything committed when the
   * read was asked, so reading the state machine then sees every write acknowledged before. `done
   * (undefined)` when it is not leader or stops being leader first.
   */
  readIndex(done: (index: number | undefined) => void): void {
    if (this._role !== "leader") return done(undefined);
    this.round++;
    this.pendingReads.push({
      index: Math.max(this._commitIndex, this.termStartIndex),
      round: this.round,
      confirmed: false,
      done,
    });
    for (const peer of this.progress.keys()) this.sendAppend(peer, true);
    this.checkReads();
  }

  /**
   * The state machine's snapshot as of `index` (≤ lastApplied): stored, and the log before it dropped.
   * Followers that need dropped entries are sent this snapshot.
   */
  snapshot(index: number, data: Uint8Array): void {
    if (index > this._lastApplied) throw new Error(`raft: snapshot at ${index} beyond applied ${this._lastApplied}`);
    if (index <= this.log.snapshotIndex) return;
    const snap: Snapshot = { index, term: this.log.term(index)!, peers: this.configAt(index), data };
    this.storage.saveSnapshot(snap);
    this.log.compactTo(snap.index, snap.term);
    this.snapshotPeers = snap.peers;
  }

  // ---- input -----------------------------------------------------------------------------------------

  receive(message: RaftMessage): void {
    if (this.stopped) return;
    switch (message.type) {
      case "vote":
        return this.onVoteRequest(message);
      case "voteResp":
        return this.onVoteResponse(message);
      case "append":
        return this.onAppendRequest(message);
      case "appendResp":
        return this.onAppendResponse(message);
      case "snapshot":
        return this.onSnapshotRequest(message);
      case "snapshotResp":
        return this.onSnapshotResponse(message);
      case "timeoutNow":
        // Only from the leader of our term, to a voter: start the election now, no pre-vote.
        if (message.term === this._term && this._role === "follower" && this._leader === message.from && this.isVoter()) {
          this.startElection(true);
        }
        return;
    }
  }

  // ---- elections -------------------------------------------------------------------------------------

  private onElectionTimeout(): void {
    if (!this.isVoter()) {
      // Not (or no longer, or not yet) a voter: never campaign, wait to hear from a leader.
      this.resetElectionTimer();
      return;
    }
    this.startPreVote();
  }

  /** Asks whether the others would vote for us at term+1, without changing anybody's term. */
  private startPreVote(): void {
    this._role = "precandidate";
    this.setLeader(undefined);
    this.votes = new Set([this.id]);
    this.resetElectionTimer();
    if (this.hasVoteMajority()) return this.startElection(false);
    this.broadcastVote(this._term + 1, true, false);
  }

  private startElection(transfer: boolean): void {
    this._term++;
    this.votedFor = this.id;
    this.storage.saveHardState({ term: this._term, votedFor: this.id });
    this._role = "candidate";
    this.setLeader(undefined);
    this.votes = new Set([this.id]);
    this.resetElectionTimer();
    if (this.hasVoteMajority()) return this.becomeLeader();
    this.broadcastVote(this._term, false, transfer);
  }

  private broadcastVote(term: number, preVote: boolean, transfer: boolean): void {
    for (const peer of this._peers) {
      if (peer === this.id) continue;
      this.transport.send(peer, {
        type: "vote",
        from: this.id,
        term,
        lastLogIndex: this.log.lastIndex(),
        lastLogTerm: this.log.lastTerm(),
        preVote,
        transfer,
      });
    }
  }

  /** True while this node leads, or follows a leader it heard from within the shortest election timeout. */
  private inLease(): boolean {
    if (this._role === "leader") return true;
    return this._leader !== undefined && this.clock.now() - this.lastLeaderContact < this.timing.electionTimeoutMinMs;
  }

  private logIsUpToDate(lastLogIndex: number, lastLogTerm: number): boolean {
    const myTerm = this.log.lastTerm();
    return lastLogTerm > myTerm || (lastLogTerm === myTerm && lastLogIndex >= this.log.lastIndex());
  }

  private onVoteRequest(m: VoteRequest): void {
    if (m.preVote) {
      // Changes nothing here; grant when a real election at m.term could elect the asker.
      const granted = m.term > this._term && !this.inLease() && this.logIsUpToDate(m.lastLogIndex, m.lastLogTerm);
      this.reply(m.from, { type: "voteResp", from: this.id, term: granted ? m.term : this._term, preVote: true, granted });
      return;
    }
    if (m.term > this._term) {
      // A node that still hears a leader ignores an election (unless the leader asked for it): this is
      // what keeps a rejoining node, or a removed one, from deposing a healthy leader.
      if (this.inLease() && !m.transfer) return;
      this.becomeFollower(m.term, undefined);
    }
    let granted = false;
    if (m.term === this._term && (this.votedFor === "" || this.votedFor === m.from)) {
      granted = this.logIsUpToDate(m.lastLogIndex, m.lastLogTerm);
      if (granted && this.votedFor === "") {
        this.votedFor = m.from;
        this.storage.saveHardState({ term: this._term, votedFor: m.from });
      }
      if (granted) this.extendElectionTimer();
    }
    this.reply(m.from, { type: "voteResp", from: this.id, term: this._term, preVote: false, granted });
  }

  private onVoteResponse(m: VoteResponse): void {
    if (m.preVote) {
      if (this._role !== "precandidate") return;
      if (m.granted && m.term === this._term + 1) {
        this.votes.add(m.from);
        if (this.hasVoteMajority()) this.startElection(false);
      } else if (!m.granted && m.term > this._term) {
        this.becomeFollower(m.term, undefined);
      }
      return;
    }
    if (m.term > this._term) return this.becomeFollower(m.term, undefined);
    if (this._role !== "candidate" || m.term !== this._term || !m.granted) return;
    this.votes.add(m.from);
    if (this.hasVoteMajority()) this.becomeLeader();
  }

  private hasVoteMajority(): boolean {
    let n = 0;
    for (const v of this.votes) if (this._peers.includes(v)) n++;
    return n >= this.quorumSize();
  }

  private becomeFollower(term: number, leader: NodeId | undefined): void {
    if (term !== this._term || leader !== this._leader) this.leaderCommit = 0;
    if (term > this._term) {
      this._term = term;
      this.votedFor = "";
      this.storage.saveHardState({ term, votedFor: "" });
    }
    const wasLeader = this._role === "leader";
    this._role = "follower";
    this.setLeader(leader);
    if (wasLeader) {
      this.progress.clear();
      this.transferTarget = undefined;
      this.failPendingReads();
    }
    this.resetElectionTimer();
  }

  private becomeLeader(): void {
    this._role = "leader";
    this.transferTarget = undefined;
    this.progress.clear();
    const now = this.clock.now();
    for (const peer of this._peers) if (peer !== this.id) this.progress.set(peer, this.newProgress(now));
    this.setLeader(this.id);
    // An entry of our own term: once it commits, so has everything before it (§5.4.2), and reads can go.
    // The first leader of a new group writes the founding voters into the log instead of a Noop, so
    // every node, a later-added one too, learns the voter set from the log itself.
    const founding = this.snapshotPeers === undefined && !this.log.lastConfigAtOrBefore(this.log.lastIndex());
    const first: LogEntry = founding
      ? { index: 0, term: 0, type: EntryType.Config, peers: [...this._peers] }
      : { index: 0, term: 0, type: EntryType.Noop };
    this.appendLocal([first]);
    this.termStartIndex = first.index;
    this.round++;
    for (const peer of this.progress.keys()) this.sendAppend(peer, true);
    this.maybeCommit();
    this.startHeartbeatTimer();
  }

  private newProgress(now: number): Progress {
    // A new follower counts as fresh: the quorum check gives it one quorumLostMs to answer.
    return {
      matchIndex: 0,
      nextIndex: this.log.lastIndex() + 1,
      lastAckAt: now,
      ackedRound: 0,
      matchAtLastTick: 0,
      commitSent: 0,
      snapshotSentAt: undefined,
    };
  }

  private setLeader(leader: NodeId | undefined): void {
    if (leader === this._leader) return;
    this._leader = leader;
    this.events.leaderChanged?.(leader, this._term);
  }

  // ---- replication: leader side ----------------------------------------------------------------------

  private refuseProposal(): ProposeError | undefined {
    if (this._role !== "leader") return "not leader";
    if (this.transferTarget !== undefined) return "leadership transfer in progress";
    return undefined;
  }

  private changePeers(peers: NodeId[], done?: (outcome: ProposalOutcome) => void): ProposeResult {
    const refused = this.refuseProposal();
    if (refused) return { ok: false, error: refused };
    // One change at a time, and only once this term committed something: a leader could otherwise
    // build on a change of a deposed leader that a new majority never saw (Ongaro, raft-dev 2015).
    if (this.log.term(this._commitIndex) !== this._term) return { ok: false, error: "no commit in this term yet" };
    const pending = this.log.lastConfigAtOrBefore(this.log.lastIndex());
    if (pending && pending.index > this._commitIndex) return { ok: false, error: "membership change in progress" };
    return this.appendAsLeader({ index: 0, term: 0, type: EntryType.Config, peers }, done);
  }

  private appendAsLeader(entry: LogEntry, done?: (outcome: ProposalOutcome) => void): ProposeResult {
    this.appendLocal([entry]);
    if (done) this.awaitOutcome(entry, done);
    return this.replicate(entry);
  }

  private awaitOutcome(e: LogEntry, done: (outcome: ProposalOutcome) => void): void {
    const waiting = this.pendingProposals.get(e.index);
    if (waiting) waiting.push({ term: e.term, done });
    else this.pendingProposals.set(e.index, [{ term: e.term, done }]);
  }

  /** Sends new entries to the followers (and commits at once when this node alone is a majority). */
  private replicate(first: LogEntry): ProposeResult {
    for (const peer of this.progress.keys()) this.sendAppend(peer, false);
    this.maybeCommit();
    return { ok: true, index: first.index, term: first.term };
  }

  /** Gives the entries their index and term, stores them and adds them to the log. */
  private appendLocal(entries: LogEntry[]): void {
    let index = this.log.lastIndex();
    for (const e of entries) {
      e.index = ++index;
      e.term = this._term;
    }
    this.storage.append(entries);
    this.log.append(entries);
    if (entries.some((e) => e.type === EntryType.Config)) this.updateConfig();
  }

  /** Sends the follower what it lacks; with `heartbeat`, sends even when that is nothing. */
  private sendAppend(peer: NodeId, heartbeat: boolean): void {
    const p = this.progress.get(peer);
    if (!p) return;
    if (p.nextIndex <= this.log.snapshotIndex) return this.sendSnapshot(peer, p);
    const inflight = p.nextIndex - 1 - p.matchIndex;
    const room = Math.min(this.maxEntriesPerAppend, this.maxInflightEntries - inflight);
    const entries = room > 0 ? this.withinAppendBytes(this.log.slice(p.nextIndex, room)) : [];
    if (entries.length === 0 && !heartbeat) return;
    const prevLogIndex = p.nextIndex - 1;
    this.transport.send(peer, {
      type: "append",
      from: this.id,
      term: this._term,
      prevLogIndex,
      prevLogTerm: this.log.term(prevLogIndex)!,
      entries,
      commit: this._commitIndex,
      round: this.round,
    });
    p.commitSent = this._commitIndex;
    // Optimistic: the next send continues after these; a loss shows as no progress or a rejection.
    p.nextIndex += entries.length;
  }

  /** The first entries whose commands fit in maxAppendBytes (at least one). */
  private withinAppendBytes(entries: LogEntry[]): LogEntry[] {
    let bytes = 0;
    for (let k = 0; k < entries.length; k++) {
      bytes += entries[k]!.data?.length ?? 0;
      if (bytes > this.maxAppendBytes && k > 0) return entries.slice(0, k);
    }
    return entries;
  }

  private sendSnapshot(peer: NodeId, p: Progress): void {
    const now = this.clock.now();
    // One snapshot in flight; resent if unanswered for half the shortest election timeout.
    if (p.snapshotSentAt !== undefined && now - p.snapshotSentAt < this.timing.electionTimeoutMinMs / 2) return;
    const snapshot = this.storage.loadSnapshot();
    if (!snapshot) throw new Error("raft: log compacted without a stored snapshot");
    p.snapshotSentAt = now;
    this.transport.send(peer, { type: "snapshot", from: this.id, term: this._term, snapshot, round: this.round });
  }

  private onAppendResponse(m: AppendResponse): void {
    if (m.term > this._term) return this.becomeFollower(m.term, undefined);
    if (m.term < this._term || this._role !== "leader") return;
    const p = this.progress.get(m.from);
    if (!p) return;
    this.noteAck(p, m.round);
    if (m.success) {
      if (m.matchIndex > p.matchIndex) p.matchIndex = m.matchIndex;
      if (p.nextIndex < p.matchIndex + 1) p.nextIndex = p.matchIndex + 1;
      this.maybeCommit();
      this.maybeSendTimeoutNow();
      this.sendAppend(m.from, false);
    } else if (m.rejectedIndex > p.matchIndex && m.rejectedIndex < p.nextIndex) {
      // (A rejection at or below matchIndex, or of something not sent since, is a stale answer.)
      // Fast backtracking: skip the follower's whole conflicting term, or to the end of its log.
      let next = m.conflictIndex;
      if (m.conflictTerm > 0) {
        const ours = this.log.lastIndexOfTerm(m.conflictTerm);
        if (ours > 0) next = ours + 1;
      }
      next = Math.min(next, m.rejectedIndex);
      p.nextIndex = Math.max(p.matchIndex + 1, next);
      this.sendAppend(m.from, true);
    } else if (m.conflictTerm === 0 && m.conflictIndex > 0 && m.conflictIndex - 1 < p.matchIndex && m.round >= p.ackedRound) {
      // The newest answer says its log ends before what it had acknowledged: it lost its storage (a wiped
      // disk: outside Raft's model, but an operator's fact). It starts over from where its log ends now,
      // with a snapshot if we no longer have those entries.
      p.matchIndex = m.conflictIndex - 1;
      p.matchAtLastTick = p.matchIndex;
      p.nextIndex = m.conflictIndex;
      p.snapshotSentAt = undefined;
      this.sendAppend(m.from, true);
    }
    this.checkReads();
  }

  private onSnapshotResponse(m: SnapshotResponse): void {
    if (m.term > this._term) return this.becomeFollower(m.term, undefined);
    if (m.term < this._term || this._role !== "leader") return;
    const p = this.progress.get(m.from);
    if (!p) return;
    this.noteAck(p, m.round);
    p.snapshotSentAt = undefined;
    if (m.matchIndex > p.matchIndex) p.matchIndex = m.matchIndex;
    p.nextIndex = Math.max(p.nextIndex, p.matchIndex + 1);
    this.maybeCommit();
    this.maybeSendTimeoutNow();
    this.sendAppend(m.from, false);
    this.checkReads();
  }

  private noteAck(p: Progress, round: number): void {
    p.lastAckAt = this.clock.now();
    if (round > p.ackedRound) p.ackedRound = round;
  }

  /** Commits the highest index a majority holds, if its entry is of this term (§5.4.2). */
  private maybeCommit(): void {
    if (this._role !== "leader") return;
    const matches = this._peers.map((peer) =>
      peer === this.id ? this.log.lastIndex() : (this.progress.get(peer)?.matchIndex ?? 0),
    );
    matches.sort((a, b) => b - a);
    const n = matches[this.quorumSize() - 1] ?? 0;
    if (n > this._commitIndex && this.log.term(n) === this._term) {
      this._commitIndex = n;
      this.applyCommitted();
    }
  }

  private onHeartbeatTick(): void {
    this.timer = undefined;
    if (this.stopped || this._role !== "leader") return;
    // After a stall the answers to the last heartbeats may be unread: the quorum is judged at the next tick
    // (one tick only: a leader stalled again and again still finds out).
    const late = this.tickLate() && !this.lastTickLate;
    this.lastTickLate = late;
    if (!late && !this.recentQuorum(this.timing.quorumLostMs)) {
      this.logLine(`raft ${this.id}: quorum lost in term ${this._term}, stepping down`);
      this.events.quorumLost?.(this._term);
      return this.becomeFollower(this._term, undefined);
    }
    if (this.transferTarget !== undefined && this.clock.now() >= this.transferDeadline) {
      this.logLine(`raft ${this.id}: leadership transfer to ${this.transferTarget} timed out`);
      this.transferTarget = undefined;
    } else if (this.transferTarget !== undefined) {
      // Still leader: the TimeoutNow (or the target's votes) may have been lost; ask again.
      this.transferSent = false;
      this.maybeSendTimeoutNow();
    }
    this.round++;
    for (const [peer, p] of this.progress) {
      // No progress over a whole tick with entries in flight: they (or the answers) were lost.
      if (p.matchIndex === p.matchAtLastTick && p.nextIndex > p.matchIndex + 1) p.nextIndex = p.matchIndex + 1;
      p.matchAtLastTick = p.matchIndex;
      this.sendAppend(peer, true);
    }
    this.startHeartbeatTimer();
  }

  private recentQuorum(windowMs: number): boolean {
    const since = this.clock.now() - windowMs;
    let n = this._peers.includes(this.id) ? 1 : 0;
    for (const [peer, p] of this.progress) if (p.lastAckAt > since && this._peers.includes(peer)) n++;
    return n >= this.quorumSize();
  }

  /** The follower with the most of the log; among equals one at random (as nats-server picks), so repeated stepdowns visit every voter. */
  private mostCaughtUp(peers: NodeId[]): NodeId {
    let most = -1;
    for (const p of peers) most = Math.max(most, this.progress.get(p)!.matchIndex);
    const best = peers.filter((p) => this.progress.get(p)!.matchIndex === most);
    return best[Math.floor(this.random() * best.length)]!;
  }

  private maybeSendTimeoutNow(): void {
    const target = this.transferTarget;
    if (target === undefined || this.transferSent) return;
    const p = this.progress.get(target);
    if (!p || p.matchIndex !== this.log.lastIndex()) return;
    this.transferSent = true;
    this.transport.send(target, { type: "timeoutNow", from: this.id, term: this._term });
  }

  private checkReads(): void {
    if (this.pendingReads.length === 0) return;
    const need = this.quorumSize() - (this._peers.includes(this.id) ? 1 : 0);
    const ready: PendingRead[] = [];
    this.pendingReads = this.pendingReads.filter((r) => {
      if (!r.confirmed) {
        let acks = 0;
        for (const [peer, p] of this.progress) if (p.ackedRound >= r.round && this._peers.includes(peer)) acks++;
        r.confirmed = acks >= need;
      }
      if (r.confirmed && this._lastApplied >= r.index) {
        ready.push(r);
        return false;
      }
      return true;
    });
    for (const r of ready) r.done(r.index);
  }

  private failPendingReads(): void {
    const reads = this.pendingReads;
    this.pendingReads = [];
    for (const r of reads) r.done(undefined);
  }

  // ---- replication: follower side --------------------------------------------------------------------

  /** A valid message from the leader of `term`: follow it and restart the election timer. */
  private followLeader(term: number, leader: NodeId): void {
    if (term > this._term || this._role !== "follower" || this._leader !== leader) {
      this.becomeFollower(term, leader);
    } else {
      this.extendElectionTimer();
    }
    this.lastLeaderContact = this.clock.now();
  }

  private onAppendRequest(m: AppendRequest): void {
    if (m.term < this._term || (m.term === this._term && this._role === "leader")) {
      if (m.term === this._term) this.logLine(`raft ${this.id}: two leaders in term ${m.term}? (${m.from})`);
      return this.reply(m.from, this.appendReply(m, false, 0, 0, 0));
    }
    this.followLeader(m.term, m.from);

    let prevIndex = m.prevLogIndex;
    let entries = m.entries;
    if (prevIndex < this.log.snapshotIndex) {
      // What we compacted was committed, so it matches the leader: skip to after our snapshot.
      entries = entries.filter((e) => e.index > this.log.snapshotIndex);
      if (entries.length === 0) {
        this.leaderCommit = Math.max(this.leaderCommit, m.commit);
        return this.reply(m.from, this.appendReply(m, true, this.log.snapshotIndex, 0, 0));
      }
      prevIndex = entries[0]!.index - 1;
    } else {
      const have = this.log.term(prevIndex);
      if (have === undefined) {
        // Our log is too short: the leader should continue from our end.
        return this.reply(m.from, this.appendReply(m, false, 0, 0, this.log.lastIndex() + 1));
      }
      if (have !== m.prevLogTerm) {
        return this.reply(m.from, this.appendReply(m, false, 0, have, this.log.firstIndexOfTermAt(prevIndex)));
      }
    }

    // Append what is new; cut our log at the first entry that disagrees (never a committed one).
    let fresh = 0;
    while (fresh < entries.length && this.log.term(entries[fresh]!.index) === entries[fresh]!.term) fresh++;
    if (fresh < entries.length) {
      const first = entries[fresh]!.index;
      if (first <= this.log.lastIndex()) {
        if (first <= this._commitIndex) throw new Error(`raft ${this.id}: leader ${m.from} overwrites committed ${first}`);
        this.storage.truncateFrom(first);
        this.log.truncateFrom(first);
        this.updateConfig();
      }
      const rest = entries.slice(fresh);
      this.storage.append(rest);
      this.log.append(rest);
      if (rest.some((e) => e.type === EntryType.Config)) this.updateConfig();
    }

    // Commit no further than what this message proved matches the leader's log.
    const lastVerified = prevIndex + entries.length;
    const commit = Math.min(m.commit, lastVerified);
    this.leaderCommit = Math.max(this.leaderCommit, m.commit);
    this.reply(m.from, this.appendReply(m, true, lastVerified, 0, 0));
    if (commit > this._commitIndex) {
      this._commitIndex = commit;
      this.followerApply();
    }
  }

  /** A follower applies what the leader committed: at once, or through applyLater (see RaftOptions). */
  private followerApply(): void {
    if (this.applyLater === undefined) return this.applyCommitted();
    if (this.applyQueued) return;
    this.applyQueued = true;
    this.applyLater(() => {
      this.applyQueued = false;
      if (!this.stopped) this.applyCommitted();
    });
  }

  private appendReply(
    m: AppendRequest,
    success: boolean,
    matchIndex: number,
    conflictTerm: number,
    conflictIndex: number,
  ): AppendResponse {
    return {
      type: "appendResp",
      from: this.id,
      term: this._term,
      success,
      matchIndex,
      rejectedIndex: success ? 0 : m.prevLogIndex,
      conflictTerm,
      conflictIndex,
      round: m.round,
    };
  }

  private onSnapshotRequest(m: SnapshotRequest): void {
    if (m.term < this._term || (m.term === this._term && this._role === "leader")) {
      return this.reply(m.from, { type: "snapshotResp", from: this.id, term: this._term, matchIndex: 0, round: m.round });
    }
    this.followLeader(m.term, m.from);
    const snap = m.snapshot;
    if (snap.index > this._commitIndex) {
      // Storage first: it keeps the entries after the snapshot only if it holds the snapshot's own entry.
      this.storage.saveSnapshot(snap);
      this.log.compactTo(snap.index, snap.term);
      this.snapshotPeers = [...snap.peers];
      this.updateConfig();
      this.machine.restore(snap);
      this._commitIndex = this._lastApplied = snap.index;
      this.resolveProposalsThroughSnapshot(snap);
    }
    // Either way our log now matches the leader's up to the snapshot (committed entries match).
    this.reply(m.from, { type: "snapshotResp", from: this.id, term: this._term, matchIndex: snap.index, round: m.round });
  }

  // ---- applying --------------------------------------------------------------------------------------

  private applyCommitted(): void {
    let removedSelf = false;
    while (this._lastApplied < this._commitIndex) {
      const index = this._lastApplied + 1;
      const e = this.log.entry(index);
      if (!e) throw new Error(`raft ${this.id}: committed entry ${index} missing`);
      this._lastApplied = index;
      if (e.type === EntryType.Command) this.machine.apply(index, e.data ?? new Uint8Array(0));
      if (e.type === EntryType.Config && !e.peers!.includes(this.id)) removedSelf = true;
      const waiting = this.pendingProposals.get(index);
      if (waiting) {
        this.pendingProposals.delete(index);
        for (const p of waiting) p.done(p.term === e.term ? "committed" : "lost");
      }
    }
    this.checkReads();
    if (removedSelf && this._role === "leader" && !this._peers.includes(this.id)) {
      // Removed ourselves (now committed): ask the most caught-up voter to campaign at once, then follow.
      const others = [...this.progress.keys()];
      if (others.length > 0) {
        this.transport.send(this.mostCaughtUp(others), { type: "timeoutNow", from: this.id, term: this._term });
      }
      this.becomeFollower(this._term, undefined);
    }
  }

  private resolveProposalsThroughSnapshot(snap: Snapshot): void {
    for (const [index, waiting] of this.pendingProposals) {
      if (index > snap.index) continue;
      this.pendingProposals.delete(index);
      // The entry at snap.index is of snap.term, written by that term's leader, whose log then held
      // its own earlier entries: ours (same term) is in. A later term at our index means ours is lost.
      for (const p of waiting) p.done(p.term === snap.term ? "committed" : p.term > snap.term ? "lost" : "unknown");
    }
  }

  // ---- membership ------------------------------------------------------------------------------------

  private configAt(index: number): NodeId[] {
    const e = this.log.lastConfigAtOrBefore(index);
    return [...(e ? e.peers! : (this.snapshotPeers ?? this.bootstrapPeers))];
  }

  /** The voter set is the newest Config in the log, committed or not (Raft thesis §4.1). */
  private updateConfig(): void {
    const peers = this.configAt(this.log.lastIndex());
    if (peers.length === this._peers.length && peers.every((p, i) => p === this._peers[i])) return;
    this._peers = peers;
    if (this._role === "leader") {
      const now = this.clock.now();
      for (const peer of peers) if (peer !== this.id && !this.progress.has(peer)) this.progress.set(peer, this.newProgress(now));
      for (const peer of [...this.progress.keys()]) if (!peers.includes(peer)) this.progress.delete(peer);
    }
    this.events.configChanged?.([...peers]);
  }

  private isVoter(): boolean {
    return this._peers.includes(this.id);
  }

  private quorumSize(): number {
    return Math.floor(this._peers.length / 2) + 1;
  }

  // ---- plumbing --------------------------------------------------------------------------------------

  private reply(to: NodeId, message: RaftMessage): void {
    this.transport.send(to, message);
  }

  private clearTimer(): void {
    if (this.timer !== undefined) this.clock.clearTimer(this.timer);
    this.timer = this.electionTimerAt = undefined;
  }

  /** Starts the election timer with a newly drawn timeout. */
  private resetElectionTimer(): void {
    const { electionTimeoutMinMs: min, electionTimeoutMaxMs: max } = this.timing;
    this.electionTimeoutMs = min + this.random() * (max - min);
    this.extendElectionTimer();
  }

  /**
   * Moves the election deadline a whole timeout from now. This runs on every append from the leader,
   * so it does not touch the timer: a timer that fires before the deadline re-arms for the rest.
   */
  private extendElectionTimer(): void {
    if (this.stopped) return;
    this.graced = false;
    this.electionDeadline = this.clock.now() + this.electionTimeoutMs;
    if (this.electionTimerAt !== undefined && this.electionTimerAt <= this.electionDeadline) return;
    this.clearTimer();
    this.armElectionTimer();
  }

  private armElectionTimer(): void {
    const firesAt = (this.electionTimerAt = this.electionDeadline);
    this.timer = this.clock.setTimer(firesAt - this.clock.now(), () => {
      this.timer = this.electionTimerAt = undefined;
      if (this.stopped || this._role === "leader") return;
      const now = this.clock.now();
      if (now < this.electionDeadline) return this.armElectionTimer();
      if (now - firesAt > this.timing.heartbeatMs && !this.graced) {
        // Fired late: this node's own loop stalled (a loaded machine stalls all its processes at once), and
        // what the leader sent meanwhile may still be unread (a runtime runs due timers before it reads its
        // sockets). Look again once it was read: a heartbeat's time later, once per timeout.
        this.graced = true;
        this.electionDeadline = now + this.timing.heartbeatMs;
        return this.armElectionTimer();
      }
      this.onElectionTimeout();
    });
  }

  private startHeartbeatTimer(): void {
    this.clearTimer();
    if (this.stopped) return;
    this.heartbeatDueAt = this.clock.now() + this.timing.heartbeatMs;
    this.timer = this.clock.setTimer(this.timing.heartbeatMs, () => this.onHeartbeatTick());
  }

  /** The heartbeat tick fired late: this node's loop stalled, so the followers' answers may still be unread. */
  private tickLate(): boolean {
    return this.clock.now() - this.heartbeatDueAt > this.timing.heartbeatMs;
  }
}
