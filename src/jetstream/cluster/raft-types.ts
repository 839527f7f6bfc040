// The shapes of the Raft core: log entries, the messages nodes exchange, and the interfaces a node is
// given (transport, clock, storage, state machine). Plain objects only, so the codec (raft-codec.ts)
// can put any of them on the wire and a test can clone them through it.

/** A node's name, unique in its group (nats-server uses a short hash of the server name). */
export type NodeId = string;

export const EntryType = {
  /** A command for the state machine (the only kind it is given). */
  Command: 0,
  /** Appended by every new leader so it can commit entries of earlier terms through one of its own. */
  Noop: 1,
  /** A new voter set (`peers`); takes effect on every node as soon as it is in its log. */
  Config: 2,
} as const;
export type EntryType = (typeof EntryType)[keyof typeof EntryType];

export interface LogEntry {
  index: number;
  term: number;
  type: EntryType;
  /** The command (type Command). */
  data?: Uint8Array;
  /** The whole voter set after this entry (type Config). */
  peers?: NodeId[];
}

/** What the state machine gave at `index`, and what the log was at that point. */
export interface Snapshot {
  /** The last index the snapshot covers (everything up to it is in `data`). */
  index: number;
  /** The term of the entry at `index`. */
  term: number;
  /** The voter set as of `index`. */
  peers: NodeId[];
  data: Uint8Array;
}

// ---- messages ----------------------------------------------------------------------------------------

/**
 * A vote request. With `preVote` it asks "would you vote for me at `term`?" and changes nobody's term:
 * a node cut off from the leader keeps failing pre-votes, so it never inflates its term and never
 * disrupts the leader when it comes back (Raft thesis §9.6; etcd's PreVote; nats-server achieves the
 * same by refusing votes while it hears from a leader). `transfer` marks an election started on the
 * leader's own request (stepdown), which voters honour even though they heard from that leader recently.
 */
export interface VoteRequest {
  type: "vote";
  from: NodeId;
  term: number;
  lastLogIndex: number;
  lastLogTerm: number;
  preVote: boolean;
  transfer: boolean;
}

export interface VoteResponse {
  type: "voteResp";
  from: NodeId;
  /** The voter's term; for a granted pre-vote, the term asked about. */
  term: number;
  preVote: boolean;
  granted: boolean;
}

/** Log replication and heartbeat in one message (a heartbeat is one with no entries). */
export interface AppendRequest {
  type: "append";
  from: NodeId;
  term: number;
  prevLogIndex: number;
  prevLogTerm: number;
  entries: LogEntry[];
  /** The leader's commit index. */
  commit: number;
  /** The leader's heartbeat round, echoed back: proves the follower heard the leader at that round. */
  round: number;
}

export interface AppendResponse {
  type: "appendResp";
  from: NodeId;
  term: number;
  success: boolean;
  /** On success: the follower's log matches the leader's up to here. */
  matchIndex: number;
  /** On failure: the prevLogIndex that did not match (the leader ignores answers to stale requests). */
  rejectedIndex: number;
  /**
   * On failure, hints for fast backtracking (Raft paper §5.3, the optimisation it sketches): the term
   * the follower has at rejectedIndex and the first index it holds of that term, or, when its log is
   * too short, conflictTerm 0 and conflictIndex = its last index + 1.
   */
  conflictTerm: number;
  conflictIndex: number;
  round: number;
}

/** The leader's snapshot, for a follower that needs entries the leader no longer has. One message. */
export interface SnapshotRequest {
  type: "snapshot";
  from: NodeId;
  term: number;
  snapshot: Snapshot;
  round: number;
}

export interface SnapshotResponse {
  type: "snapshotResp";
  from: NodeId;
  term: number;
  /** The follower's log now matches up to here (the snapshot's index). */
  matchIndex: number;
  round: number;
}

/** Leadership transfer: the leader tells a caught-up follower to start an election right now. */
export interface TimeoutNow {
  type: "timeoutNow";
  from: NodeId;
  term: number;
}

export type RaftMessage =
  | VoteRequest
  | VoteResponse
  | AppendRequest
  | AppendResponse
  | SnapshotRequest
  | SnapshotResponse
  | TimeoutNow;

// ---- what a node is given ------------------------------------------------------------------------------

/**
 * Delivers a message to another node, best effort: it may be lost, late, duplicated or reordered. It
 * must not deliver synchronously (inside send): the sender is in the middle of a state change.
 */
export interface RaftTransport {
  send(to: NodeId, message: RaftMessage): void;
}

export type TimerId = unknown;

/** Time and timers, injected so a test drives them. Times are milliseconds. */
export interface RaftClock {
  now(): number;
  setTimer(delayMs: number, fire: () => void): TimerId;
  clearTimer(id: TimerId): void;
}

/** The persistent state that must survive a restart before a node answers anyone. */
export interface HardState {
  term: number;
  /** Whom this node voted for in `term` ("" for nobody). */
  votedFor: NodeId;
}

export interface StoredRaftState {
  hard: HardState;
  snapshot?: Snapshot;
  /** The entries after the snapshot, contiguous. */
  entries: LogEntry[];
}

/**
 * Durable storage of one node. Every call returns only once its effect would survive a crash
 * (kill -9): a vote is never forgotten, and an entry a follower acknowledged is never lost.
 */
export interface RaftStorage {
  load(): StoredRaftState;
  saveHardState(state: HardState): void;
  /** Appends entries that directly follow the stored ones. */
  append(entries: LogEntry[]): void;
  /** Removes every entry at or after `index`. */
  truncateFrom(index: number): void;
  /** Stores the snapshot and drops the entries it covers (entries after it are kept). */
  saveSnapshot(snapshot: Snapshot): void;
  loadSnapshot(): Snapshot | undefined;
  close(): void;
}

/** The replicated state machine. It never sees a Noop or Config entry, only commands, in log order. */
export interface StateMachine {
  /** Called once per committed command, in index order. */
  apply(index: number, data: Uint8Array): void;
  /** Replace the whole state with a snapshot (at start, and when the leader sends one). */
  restore(snapshot: Snapshot): void;
}

export type RaftRole = "follower" | "precandidate" | "candidate" | "leader";

/**
 * How a proposal ended. "committed": it is in the log for good. "lost": another entry was committed
 * at its index (the leader changed before it reached a majority). "unknown": this node learnt the
 * outcome only through a snapshot that cannot tell (the caller must check its state, e.g. a Msg-Id).
 */
export type ProposalOutcome = "committed" | "lost" | "unknown";
