// A replicated stream (num_replicas > 1): a Raft group over the nodes holding it (nats-server's stream
// raft group). Every replica has the stream's ordinary local copy (stream.ts, its store); the group orders
// what changes it:
//
// - Publishes: only the leader subscribes to the stream's subjects (stream.ts subscribeForRole). It checks a
//   publish as a single server would (dedupe also against publishes still in flight, expected-last-sequence
//   against the sequence in-flight ones will take) and proposes it with the sequence it will get. When the
//   entry commits (a majority has it in its Raft log) every replica stores it through the same publish
//   code, in log order; the leader sends the PubAck after its store flush, as an R1 stream does. The
//   Nats-Msg-Id dedupe window is rebuilt from stored headers, so it is on every replica: a publish retried
//   after a failover gets `duplicate: true`.
// - Purge and message delete: the request itself goes through the log; every replica runs it, the leader
//   answers.
// - Durable consumers (stage C) live on the leader only and replicate their state in this same group (not a
//   group each, as nats-server: one group per stream is one election and one log to keep, and a consumer
//   cannot outlive or lead apart from its stream here). A durable whose state changed (a delivery, an ack)
//   has its config and state (delivered, ack floor, pending, redeliveries) proposed at the end of that
//   event-loop turn, with the turn's publishes (one state in flight, at most one per CONSUMER_STATE_GAP_MS);
//   every CONSUMER_STATE_EVERY_MS a tick catches the rest and the deletion of those that went. Replicas keep
//   the latest (and write the consumer's files at that tick, so a restart has them). A new leader starts
//   them from that state once it applied its log; the old one stops its own. An ack the client asked to
//   have confirmed is answered once the state with it is committed (nats-server 2.11's addAckReply), so a
//   confirmed ack is never delivered again; plain acks of the last gap and round trip before a failover
//   may be (at least once).
//   Ephemeral consumers (ordered consumers, KV watches) stay on the node that made them, leader or not
//   (it has every message too): the log only records which node holds each, so that node answers for it.
// - Interest and work-queue retention: the leader decides which messages go and proposes their removal
//   (as nats-server's consumer leader proposes the delete to the stream's group), so every replica drops
//   them when it commits, the leader too; removals of one event-loop turn make one entry. The leader knows
//   its own consumers; an ephemeral a follower holds tells the leader what that node's consumers are done
//   with (a RELEASED frame): a work queue's message goes at once, an interest stream's once every consumer,
//   here and on the live holders whose filter takes it, is done. Acked messages thus never come back after a
//   failover, whatever the consumer's replicated state says (a redelivery skips a message that is gone).
// - Direct gets (allow_direct): every current replica answers (servesReads; stream.ts updateDirectGets). The
//   leader tells the followers each commit before it applies it (raft sendCommitIndex), so a PubAck that
//   reaches a client through a follower's node comes after that follower applied the message (only where
//   followers serve: direct gets or ephemerals they hold; see followersServe).
// - Mirror and sources: the leader runs the feeds (source.ts), once it applied its log, from the stream's own
//   state; what they copy goes through the log (SOURCED, MIRRORED, MIRROR_SKIP) and every replica stores it
//   as an R1 stream would. A new leader starts them again from its store: the committed copy, no gap and no
//   duplicate (a source's position is in its stored messages' Nats-Stream-Source headers, a mirror's is
//   its last sequence).
// - After a restart the log is applied again from the start: a publish whose sequence the store already
//   has is skipped.
// A new leader proposes only once it applied everything in its log (the sequences it hands out then hold).
//
// Entry layout (binary, one per publish): u8 1 | f64 seq | u16 subject length | subject | u16 reply length |
// reply | u32 header length | header | payload. An API request: u8 2 | JSON {subject, reply, payload}.
// A durable's state: u8 3 | u16 name length | name | JSON {config, created, state} (a replica keeps the JSON as
// it is; the state's pending list as differences: carried-state.ts; logs written before held u8 3 | JSON
// {name, consumer}, and pending lists as triples); its deletion: u8 4 | name.
// The leader's decision to compact: u8 5 | the index (decimal). Messages retention removes: u8 6 | f64 seq….
// Forwarded to the leader, never in the log: a follower's consumers are done with: u8 7 | f64 seq….
// An atomic batch (its commit): u8 8 | f64 first seq | u16 id length | id | u16 reply length | reply | u32 count |
// per message: u16 subject length | subject | u32 header length | header | u32 payload length | payload.
// A message the leader's source feed copied: u8 9 | f64 seq | u16 subject length | subject | u32 header length |
// header | payload. One its mirror feed copied: u8 10 | f64 origin seq | the same; the origin's sequences up to
// N gone (a mirror skips them): u8 11 | f64 N.
// A turn's entries in one (see flushBatch): u8 12 | per entry: u32 length | the entry (any kind above).
// The leader's timestamp: a publish entry (PUBLISH, SOURCED, MIRRORED, ATOMIC_BATCH) whose kind has the
// STAMPED bit (0x80) holds f64 ms since the epoch right after its kind byte, then its kind's layout; every
// replica stores its messages with that time (nats-server's entries carry the leader's too). A MIRRORED
// entry's is the origin's time of the message (the origin consumer's ack reply), which a mirror keeps. Entries of
// logs written before have no stamp: a replica applying one stamps its messages itself.
import { createHash } from "node:crypto";
import { rmSync } from "node:fs";
import type { InternalMessage } from "../../internal-client.ts";
import type { Subscription } from "../../subscription.ts";
import type { AccountJetStream } from "../account.ts";
import type { ProposedBatch, Stream, StreamReplication } from "../stream.ts";
import { consumerFilters, type ConsumerConfig } from "../config.ts";
import { matchesAny } from "../store/indexed.ts";
import type { Consumer } from "../consumer.ts";
import { carryState, uncarryState, type CarriedState } from "./carried-state.ts";
import { RaftNode, systemClock } from "./raft.ts";
import { FileRaftStorage } from "./raft-file-storage.ts";
import type { NodeId, RaftMessage } from "./raft-types.ts";
import { RaftFrameType, type GroupHandler, type RouteTransport } from "./route-transport.ts";
import { uncarry, type CarriedRequest } from "./meta.ts";
import { EntryReader, EntryWriter } from "./entry-codec.ts";
import { collectSyncBatch, decodeSyncBatch, encodeSyncBatch, SYNC_BATCH_BYTES, type SyncRequest } from "./sync-batch.ts";
import { nowMs } from "../store/indexed.ts";

// Entry kinds (the first byte).
const PUBLISH = 1;
const API_REQUEST = 2;
const CONSUMER_STATE = 3;
const CONSUMER_GONE = 4;
const COMPACT = 5;
const REMOVE = 6;
const RELEASED = 7;
const ATOMIC_BATCH = 8;
const SOURCED = 9;
const MIRRORED = 10;
const MIRROR_SKIP = 11;
const GROUP = 12;
/** The bit of a publish entry's kind byte saying that the leader's timestamp follows it (see the layout above). */
const STAMPED = 0x80;
/**
 * A turn's publishes and consumer states go into the log as one GROUP entry of at most this many bytes (more
 * make several; an entry larger alone is one). One Raft entry per publish cost more than the publish itself
 * on a follower: its msgpack map in the append, its log record, its Raft bookkeeping. Below the Raft core's
 * maxAppendBytes, and with its append well inside a route frame whatever max_payload is (256 KB of slack).
 */
const GROUP_MAX_BYTES = 128 * 1024;
/** How long a replica catching up waits for an answer before asking again (sync-batch.ts sizes the answers). */
const SYNC_RETRY_MS = 1000;
/** How often the leader sends its durable consumers' changed states through the log (the redelivery window after a failover). */
const CONSUMER_STATE_EVERY_MS = 250;
/**
 * A durable's changed state goes into the log at the end of the event-loop turn of the change, but at most
 * once per this many ms (a state holds the whole pending list), and one in flight at a time; an ack the
 * client asked to have confirmed (AckAck) does not wait for the gap.
 */
const CONSUMER_STATE_GAP_MS = 20;
/** A new leader keeps at most this many publishes, this long, while it gets ready. */
const MAX_HELD = 10_000;
const HOLD_MS = 5000;
/** How often a replica considers dropping applied entries from its log, and how many commands (publishes, states…; a GROUP entry holds several) make it worth it. */
const COMPACT_EVERY_MS = 5000;
const COMPACT_MIN_COMMANDS = 1000;
/** A replica no longer assigned here stops at the latest after this, whether or not its group dropped it. */
const LEAVE_TIMEOUT_MS = 30_000;

/** The group's name on the wire: short and fixed whatever the account and stream names. */
export function streamGroupName(account: string, stream: string, created: string): string {
  return `S-${createHash("sha256").update(`${account}\0${stream}\0${created}`).digest("hex").slice(0, 16)}`;
}

/**
 * A consumer as the group replicates it: a durable with its state; an ephemeral with the node running it
 * (`holder`, no state: it stays on that node, as nats-server's R1 consumers stay where they were made).
 */
interface ReplicatedConsumer {
  config: ConsumerConfig;
  created: number;
  /** As the log carries it (carried-state.ts: the pending list as differences). */
  state?: CarriedState;
  holder?: NodeId;
}

export interface StreamReplicaOptions {
  transport: RouteTransport;
  group: string;
  dir: string;
  /** The replicas (member ids), the same list on each: the group's founders. */
  peers: NodeId[];
  ctx: AccountJetStream;
  stream: Stream;
  log: { info(line: string): void; warn(line: string): void; debug(line: string): void };
  leaderChanged?(leader: NodeId | undefined): void;
  /** This leader started the stream's durables (it leads them now). */
  durablesStarted?(names: string[]): void;
  /** This node led and heard from no majority for a while (it steps down right after). */
  quorumLost?(): void;
  /** This replica is leaving (see leave) and the group no longer counts it: it may stop and go. */
  left?(): void;
}

export class StreamReplica implements StreamReplication, GroupHandler {
  readonly raft: RaftNode;
  private readonly storage: FileRaftStorage;
  private _inflight = 0;
  /** Copying missing messages from the leader (see startSync), up to syncTarget; log entries applied meanwhile wait in `deferred`. */
  private syncing = false;
  private syncTarget = 0;
  private deferred: Uint8Array[] = [];
  private syncInbox: string | null = null;
  private syncReplySub: Subscription | null = null;
  private syncServeSub: Subscription | null = null;
  private syncTimer: ReturnType<typeof setTimeout> | null = null;
  /** This leader has applied its whole log once in its term (see acceptsPublishes). */
  private caughtUp = false;
  private readonly pending = new Map<string, number>();
  /** Publishes gathered in this turn of the event loop: proposed together (one fsync, one message per follower). */
  private batch: Uint8Array[] = [];
  /** Publishes in `batch` (an atomic batch's entry holds several). */
  private batchPublishes = 0;
  /**
   * The other members whose clients sent the publishes in `batch` (their routes brought them), or null: every
   * follower (a publish whose way here is not known: an atomic batch). See relayCommit.
   */
  private batchFrom: NodeId[] | null = [];
  /** Leader: the log ranges flushBatch proposed, oldest first, with the followers each one's commit goes to at once (null: every follower). */
  private commitRelays: { first: number; last: number; to: NodeId[] | null }[] = [];
  /** Sequences retention removes (leader) or this node's consumers are done with (follower), gathered in this turn of the event loop. */
  private removals: number[] = [];
  /** Leader, interest retention: the holders of remote ephemerals that are done with a sequence still kept for others. */
  private readonly released = new Map<number, Set<NodeId>>();
  private stopped = false;
  private compactTimer: ReturnType<typeof setInterval> | null = null;
  private consumerTimer: ReturnType<typeof setInterval> | null = null;
  /** Each durable's latest replicated config and state (JSON of ReplicatedConsumer), by name. */
  private readonly consumers = new CountedMap<string, string>();
  /** Ephemerals other nodes hold, with their filters (interest retention asks on every ack): derived from `consumers` at `remoteVersion`. */
  private remote: { name: string; holder: NodeId; filters: string[] | null }[] = [];
  private remoteVersion = -1;
  /** Replicas the meta group assigned that the leader still has to add (scaling up). */
  private wanted: NodeId[] = [];
  /** Whether this leader has started the replicated consumers (once it applied its log). */
  private consumersStarted = false;
  /** Publishes that reached this leader before it was ready (see acceptsPublishes), oldest first. */
  private held: InternalMessage[] = [];
  private heldTimer: ReturnType<typeof setTimeout> | null = null;
  /** Called once a leader is known (the create's answer waits for it, as nats-server's). */
  private leaderWaiters: (() => void)[] = [];
  /** No longer assigned here (a peer removal): waiting for the group to drop this node from its voters (see leave). */
  private leaving = false;
  private leaveTimer: ReturnType<typeof setTimeout> | null = null;
  /** The log index of the latest consumer state this leader proposed, and who waits for it to be applied. */
  private consumerIndex = 0;
  /** Durables whose state changed in this turn of the event loop (proposed with the turn's publishes). */
  private readonly changedConsumers = new Set<Consumer>();
  /** Whether a flush of `batch` and `changedConsumers` is queued for the end of this turn. */
  private flushQueued = false;
  /** Ack confirmations, each waiting for the consumer state at `index` to be applied here (oldest first). */
  private ackReplies: { index: number; reply: string }[] = [];
  /** Ack confirmations of this turn, or held while a consumer state is in flight: they wait for the next one proposed. */
  private unproposedReplies: string[] = [];
  /** When this leader last proposed consumer states (performance.now()), and the timer for changes held back since. */
  private lastStatesAt = 0;
  private statesTimer: ReturnType<typeof setTimeout> | null = null;
  /** Follower: durables whose replicated state its files do not have yet (written every CONSUMER_STATE_EVERY_MS). */
  private readonly unwrittenConsumers = new Set<string>();
  /** Commands applied since the last snapshot (the log's entries hold several each: see GROUP). */
  private appliedSinceSnapshot = 0;
  private commitWaiters: { index: number; then: (ok: boolean) => void; timer: ReturnType<typeof setTimeout> }[] = [];

  constructor(private readonly o: StreamReplicaOptions) {
    // The log has the durability of the stream's store: fsync'd per append with `sync: always`, else written
    // to the OS (the store's interval sync): an acknowledged message survives kill -9 of every replica.
    this.storage = new FileRaftStorage(o.dir, {
      warn: (line) => o.log.warn(`JetStream stream ${o.stream.name} log: ${line}`),
      syncAppends: o.ctx.options.sync === "always",
    });
    o.transport.register(o.group, this);
    this.raft = new RaftNode({
      id: o.transport.selfId,
      peers: o.peers,
      storage: this.storage,
      transport: o.transport.transportFor(o.group),
      clock: systemClock,
      random: Math.random,
      applyLater: queueMicrotask,
      stateMachine: {
        apply: (index, data) => {
          // Leader: the followers learn this commit before anything applying it answers (a PubAck) goes out on
          // the same routes, so a client on a follower's node that got its PubAck reads the message there.
          if (this.raft.role === "leader" && this.followersServe) this.relayCommit(index);
          this.apply(data);
          if (this.commitWaiters.length > 0) this.appliedTo(index);
          if ((this.ackReplies.length > 0 && this.ackReplies[0]!.index <= index) || (index >= this.consumerIndex && (this.changedConsumers.size > 0 || this.unproposedReplies.length > 0))) this.consumerStatesApplied(index);
        },
        restore: (snapshot) => this.restore(snapshot.data),
      },
      events: {
        leaderChanged: (leader, term) => {
          this._inflight = 0;
          this.pending.clear();
          this.batch = [];
          this.batchPublishes = 0;
          this.batchFrom = [];
          this.commitRelays = [];
          this.changedConsumers.clear();
          this.ackReplies = []; // unconfirmed: the client's ack times out and proves nothing
          this.unproposedReplies = [];
          this.released.clear();
          for (const w of this.commitWaiters.splice(0)) {
            clearTimeout(w.timer);
            w.then(false);
          }
          this.consumersStarted = false;
          this.caughtUp = false;
          this.serveSync(leader === o.transport.selfId);
          if (leader !== o.transport.selfId) {
            this.stopConsumers();
            o.stream.feedsForRole(false);
          } else {
            this.whenReady(() => {
              this.startConsumers();
              this.sweepRetention();
              o.stream.feedsForRole(true);
            });
          }
          if (leader !== undefined && leader !== o.transport.selfId) this.sweepRetention();
          o.log.debug(`JetStream stream ${o.stream.name}: leader ${leader ?? "unknown"} (term ${term})`);
          o.stream.subscribeForRole(); // captures and direct gets follow the leader
          o.leaderChanged?.(leader);
          if (leader !== undefined) for (const waiter of this.leaderWaiters.splice(0)) waiter();
          this.checkLeft();
        },
        quorumLost: () => o.quorumLost?.(),
        configChanged: () => this.checkLeft(),
      },
      log: (line) => o.log.debug(`stream ${o.stream.name} raft: ${line}`),
    });
    o.stream.replication = this;
    o.stream.subscribeForRole();
    o.stream.feedsForRole(false); // an R1 stream scaled up: its leader starts them again once elected and ready
    // Consumers loaded from disk at start wait for this node to lead; their state is what they start from.
    for (const c of [...o.stream.consumers.values()]) {
      if (!c.isDurable) continue;
      this.consumers.set(c.name, JSON.stringify({ config: c.config, created: c.created, state: carryState(c.state()) } satisfies ReplicatedConsumer));
      o.ctx.detachConsumer(c);
    }
    this.raft.start();
    this.consumerTimer = setInterval(() => {
      this.writeReplicatedConsumerFiles();
      this.tickConsumers();
      o.stream.updateDirectGets(); // a follower that stopped hearing its leader stops answering, one that caught up starts
      o.stream.feedsForRole(this.acceptsPublishes); // a leader that got ready late (whenReady gives up after HOLD_MS)
    }, CONSUMER_STATE_EVERY_MS);
    this.consumerTimer.unref?.();
    this.compactTimer = setInterval(() => this.compact(), COMPACT_EVERY_MS);
    this.compactTimer.unref?.();
  }

  /**
   * The log keeps what the stores already have only while a replica may still need it: the store is the
   * state. The leader decides how far, through the log: the point every replica has reached (all must
   * answer), so that no member ever needs a snapshot it could not use (a store cannot be rebuilt from a
   * peer yet). Every replica then drops its log up to that point when it applies the decision. While a
   * replica is away, nothing is dropped: the log grows until it is back.
   */
  private compact(): void {
    const raft = this.raft;
    if (this.stopped || !this.acceptsPublishes || this.appliedSinceSnapshot < COMPACT_MIN_COMMANDS) return;
    const followers = raft.followers();
    if (followers.length < raft.peers.length - 1) return;
    let index = raft.lastApplied;
    for (const f of followers) index = Math.min(index, f.matchIndex);
    if (index <= raft.snapshotIndex) return;
    raft.propose(Buffer.concat([Uint8Array.of(COMPACT), Buffer.from(String(index))]));
  }

  /** The leader's decision to drop the log up to `index` (applied in log order on every replica). */
  private compactTo(index: number): void {
    queueMicrotask(() => {
      const raft = this.raft;
      if (this.stopped || index <= raft.snapshotIndex || index > raft.lastApplied) return;
      this.o.stream.store.flush(); // what the log no longer holds must be in the store
      const lastSeq = this.o.stream.store.state().lastSeq;
      const consumers = Object.fromEntries([...this.consumers].map(([name, json]) => [name, JSON.parse(json) as ReplicatedConsumer]));
      raft.snapshot(index, Buffer.from(JSON.stringify({ last_seq: lastSeq, consumers })));
      this.appliedSinceSnapshot = 0;
    });
  }

  /**
   * A snapshot: this node's own at start (its store has it), or the leader's for a replica left behind. It
   * holds the store's last sequence and the durables' replicated states.
   */
  private restore(data: Uint8Array): void {
    let lastSeq = 0;
    try {
      const snapshot = JSON.parse(Buffer.from(data).toString()) as { last_seq: number; consumers?: Record<string, ReplicatedConsumer> };
      lastSeq = snapshot.last_seq;
      for (const [name, c] of Object.entries(snapshot.consumers ?? {})) this.consumers.set(name, JSON.stringify(c));
    } catch {
      return;
    }
    const have = this.o.stream.store.state().lastSeq;
    if (have < lastSeq) this.startSync(lastSeq);
  }

  get stream(): Stream {
    return this.o.stream;
  }

  get isLeader(): boolean {
    return this.raft.role === "leader";
  }

  get leader(): NodeId | undefined {
    return this.raft.leader;
  }

  /**
   * A leader takes publishes once it applied everything in its log at least once in its term (the
   * sequences it hands out assume a store that has every earlier publish); from then on its own entries
   * are the only ones in flight.
   */
  get acceptsPublishes(): boolean {
    if (!this.isLeader) return false;
    if (!this.caughtUp && this.raft.lastApplied === this.raft.lastIndex) this.caughtUp = true;
    return this.caughtUp;
  }

  /** Current (for /healthz): the group has a leader, and this is it, or a follower that hears it, applied what it knows committed and is not copying messages. */
  get current(): boolean {
    const leader = this.raft.leader;
    if (this.stopped || leader === undefined) return false;
    if (this.isLeader) return true;
    return this.o.transport.isAlive(leader) && this.raft.lastApplied >= this.raft.commitIndex && !this.syncing;
  }

  get inflight(): number {
    return this._inflight;
  }

  /**
   * Whether followers serve anything from their copies: direct gets (allow_direct), or ephemerals they hold.
   * Only then does each commit go to them at once (sendCommitIndex: two messages more per follower and
   * commit, a tenth of an R3 sync publish's CPU); else they learn it with the next append or heartbeat.
   */
  private get followersServe(): boolean {
    return this.o.stream.config.allow_direct === true || this.remoteEphemerals().length > 0;
  }

  /**
   * Leader, where followers serve (followersServe), before it applies the entry at `index`: the followers
   * that must know the commit before what applying it answers (PubAcks) goes out, told now (sendCommitIndex).
   * For publishes: with direct gets, the nodes whose clients sent them (their PubAcks pass through there, and
   * those clients read there: read-after-write); a client on this node reads here; a client elsewhere was
   * never promised its write on another node (nats-server's followers answer from whatever they applied).
   * With ephemerals held elsewhere: their holders (they deliver from their copies). An entry proposed on its
   * own (an API request: purge, delete; removals, compaction) or an atomic batch: every follower. The others
   * learn it with the next append or heartbeat: each follower told costs an append and its answer per commit,
   * a KV put's latency on this 2-core machine (src/jetstream/cluster/README.md, *Only where followers serve*).
   */
  private relayCommit(index: number): void {
    const relays = this.commitRelays;
    while (relays.length > 0 && relays[0]!.last < index) relays.shift();
    const range = relays[0];
    if (range === undefined || range.first > index || range.to === null) return this.raft.sendCommitIndex();
    if (this.o.stream.config.allow_direct === true) for (const id of range.to) this.raft.sendCommitIndex(id);
    for (const { holder } of this.remoteEphemerals()) this.raft.sendCommitIndex(holder);
  }

  /**
   * Answers direct gets (stream.ts updateDirectGets): the leader; a follower while its Raft node is current
   * (heard the leader within the shortest election timeout and applied everything it said was committed)
   * and it is not copying messages from the leader. nats-server's follower subscribes once current and
   * stays subscribed however far behind it falls later; this one stops answering then (the others answer).
   */
  get servesReads(): boolean {
    return !this.stopped && this.raft.isCurrent() && !this.syncing;
  }

  hold(m: InternalMessage): void {
    if (this.held.length >= MAX_HELD) return; // the publisher retries
    this.held.push(m);
    if (this.heldTimer === null) this.checkHeld(Date.now());
  }

  /** Until the new leader is ready (its first entry applied), then the held publishes go on in order. */
  private checkHeld(since: number): void {
    this.heldTimer = null;
    if (this.stopped || !this.isLeader || Date.now() - since > HOLD_MS) {
      this.held = [];
      return;
    }
    if (!this.acceptsPublishes) {
      this.heldTimer = setTimeout(() => this.checkHeld(since), 10);
      return;
    }
    const held = this.held;
    this.held = [];
    for (const m of held) this.o.stream.takePublish(m);
  }

  pendingMsgId(id: string): number | undefined {
    return this.pending.get(id);
  }

  /** Runs `then` once the group has a leader (at once if it has one), or after `timeoutMs` regardless. */
  whenLeaderKnown(timeoutMs: number, then: () => void): void {
    if (this.raft.leader !== undefined) return then();
    let done = false;
    const once = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      then();
    };
    const timer = setTimeout(once, timeoutMs);
    this.leaderWaiters.push(once);
  }

  /** Campaigns at once (the preferred first leader of a new group). */
  campaign(): void {
    this.raft.campaign();
  }

  propose(m: InternalMessage, msgId: string, seq: number): void {
    this._inflight++;
    if (msgId !== "") this.pending.set(msgId, seq);
    this.queueFlush();
    this.batch.push(encodePublish(m, seq, nowMs()));
    this.batchPublishes++;
    // A publish another node's route brought: that node's client sent it (a leaf connection is not a member).
    const via = m.from;
    const member = via?.isRoute === true && via.isLeaf !== true ? via.memberId : null;
    if (member !== undefined && member !== null && this.batchFrom !== null && !this.batchFrom.includes(member)) this.batchFrom.push(member);
  }

  proposeSourced(subject: string, headers: Buffer, payload: Buffer, msgId: string, seq: number): void {
    this._inflight++;
    if (msgId !== "") this.pending.set(msgId, seq);
    this.queueFlush();
    this.batch.push(encodeCopied(SOURCED, seq, subject, headers, payload, nowMs()));
    this.batchPublishes++;
  }

  /** `ts`: the origin's time of the message, which a mirror keeps (as nats-server's mirror entries carry it). */
  proposeMirrored(seq: number, subject: string, headers: Buffer | null, payload: Buffer, ts: number): void {
    this.queueFlush();
    this.batch.push(encodeCopied(MIRRORED, seq, subject, headers, payload, ts));
  }

  proposeMirrorSkip(last: number): void {
    const w = new EntryWriter(9);
    w.u8(MIRROR_SKIP);
    w.f64(last);
    this.queueFlush();
    this.batch.push(w.out);
  }

  proposeBatch(batch: ProposedBatch): void {
    this._inflight += batch.messages.length;
    for (const [k, msgId] of batch.msgIds.entries()) this.pending.set(msgId, batch.firstSeq + k);
    this.queueFlush();
    this.batch.push(encodeBatch(batch, nowMs()));
    this.batchPublishes += batch.messages.length;
    this.batchFrom = null; // its commit's node is not known here: every follower learns the commit at once
  }

  /**
   * This node's consumers are done with `seq` (acked, or none wants it). The leader removes it through the
   * log (an interest stream's once the remote holders are done too); a follower tells the leader.
   */
  proposeRemove(seq: number): void {
    if (this.stopped) return;
    if (this.isLeader && this.o.stream.config.retention === "interest" && !this.holdersDone(seq)) return;
    if (this.removals.length === 0) queueMicrotask(() => this.flushRemovals());
    this.removals.push(seq);
  }

  /**
   * Leader, interest retention: have the live nodes holding an ephemeral of this stream whose filter takes
   * `seq` all said they are done with it? (Durables run here; ephemerals stay on the node that made them.)
   */
  private holdersDone(seq: number): boolean {
    const subject = this.o.stream.store.subjectOf(seq);
    if (subject === null) return false; // gone already
    const done = this.released.get(seq);
    for (const { holder, filters } of this.remoteEphemerals()) {
      if (done?.has(holder) || !this.o.transport.isAlive(holder)) continue;
      if (filters === null || matchesAny(filters, subject)) return false;
    }
    this.released.delete(seq);
    return true;
  }

  private remoteEphemerals(): { name: string; holder: NodeId; filters: string[] | null }[] {
    if (this.remoteVersion === this.consumers.version) return this.remote;
    const self = this.o.transport.selfId;
    this.remote = [];
    for (const [name, json] of this.consumers) {
      if (!json.includes('"holder":')) continue; // a durable (its state can be long: no parse)
      const c = JSON.parse(json) as ReplicatedConsumer;
      if (c.holder !== undefined && c.holder !== self) this.remote.push({ name, holder: c.holder, filters: consumerFilters(c.config) });
    }
    this.remoteVersion = this.consumers.version;
    return this.remote;
  }

  /** The ephemerals of this stream that other nodes hold (they answer for them). */
  ephemeralsHeldElsewhere(): string[] {
    return this.remoteEphemerals().map((e) => e.name);
  }

  /** How many consumers the stream has across the cluster (durables, and ephemerals wherever they are held). */
  get consumerCount(): number {
    return this.consumers.size;
  }

  /**
   * After a leader change: what this node's consumers are done with goes to the group again. A removal
   * proposed or forwarded before may have been lost with the old leader, or while there was none (the
   * message would stay, never delivered again); removing one twice changes nothing.
   */
  private sweepRetention(): void {
    const stream = this.o.stream;
    if (this.stopped || stream.config.retention === "limits" || (!this.isLeader && stream.consumers.size === 0)) return;
    const { firstSeq, lastSeq, messages } = stream.store.state();
    if (messages === 0) return;
    for (let seq = firstSeq; seq <= lastSeq; seq++) {
      if (stream.store.subjectOf(seq) !== null && stream.retentionDone(seq)) this.proposeRemove(seq);
    }
  }

  private flushRemovals(): void {
    const seqs = this.removals;
    this.removals = [];
    if (seqs.length === 0 || this.stopped) return;
    const kind = this.isLeader || this.o.stream.config.retention === "workqueue" ? REMOVE : RELEASED;
    const entry = encodeSeqs(kind, seqs);
    if (this.isLeader) this.raft.propose(entry);
    else if (this.raft.leader !== undefined) this.o.transport.send(this.raft.leader, RaftFrameType.FORWARD, this.o.group, entry);
    // Not proposed (no leader, or a leadership transfer): the message stays, as after a lost ack; the consumer's state has the ack.
  }

  // ---- catching up from the leader's store ------------------------------------------------------
  //
  // A replica whose store is behind the group's snapshot (its store was wiped, or it is new to the group)
  // copies the missing messages from the leader: requests on `$JSC.SYNC.<group>` (the leader subscribes
  // while it leads), each answered with a batch of messages with their sequences and times (sync-batch.ts). The log
  // entries applied meanwhile wait, then go in order.

  private startSync(target: number): void {
    this.syncTarget = Math.max(this.syncTarget, target);
    if (this.syncing) return;
    this.syncing = true;
    this.o.stream.updateDirectGets();
    this.o.log.info(`JetStream stream ${this.o.stream.name}: this replica has messages up to ${this.o.stream.store.state().lastSeq}, the group up to ${target}: copying the rest from the leader`);
    queueMicrotask(() => this.requestSync());
  }

  private requestSync(): void {
    if (this.stopped || !this.syncing) return;
    const leader = this.raft.leader;
    const client = this.o.ctx.client;
    if (this.syncInbox === null) {
      this.syncInbox = `$JSC.SYNC.R.${this.o.group}.${Math.random().toString(36).slice(2)}`;
      this.syncReplySub = client.subscribe(this.syncInbox, (m) => this.onSyncReply(m.payload));
    }
    clearTimeout(this.syncTimer ?? undefined);
    // No leader known, or no answer: ask again (a leader change, a lost request).
    this.syncTimer = setTimeout(() => this.requestSync(), SYNC_RETRY_MS);
    if (leader === undefined || leader === this.o.transport.selfId) return;
    const request: SyncRequest = { from: this.o.stream.store.state().lastSeq + 1, to: this.syncTarget, binary: true };
    client.publish(`$JSC.SYNC.${this.o.group}`, Buffer.from(JSON.stringify(request)), this.syncInbox);
  }

  private onSyncReply(payload: Buffer): void {
    if (!this.syncing || this.stopped) return;
    const batch = decodeSyncBatch(payload);
    if (batch === null) return; // not an answer to our request: asked again after SYNC_RETRY_MS
    for (const m of batch.msgs) this.o.stream.appendSynced(m);
    const have = this.o.stream.store.state().lastSeq;
    // The leader has nothing more in the range (purged or expired there): the gap is the leader's too.
    if (batch.msgs.length === 0 && have < this.syncTarget) this.o.stream.store.purge({ seq: this.syncTarget + 1 });
    if (this.o.stream.store.state().lastSeq >= this.syncTarget) return this.finishSync();
    this.requestSync();
  }

  private finishSync(): void {
    clearTimeout(this.syncTimer ?? undefined);
    this.syncTimer = null;
    this.syncing = false;
    this.o.stream.updateDirectGets();
    this.o.log.info(`JetStream stream ${this.o.stream.name}: caught up with the leader (messages up to ${this.o.stream.store.state().lastSeq})`);
    const deferred = this.deferred;
    this.deferred = [];
    for (const data of deferred) this.apply(data);
  }

  /** The leader serves `$JSC.SYNC.<group>`: stored messages from `from`, with their sequences and times (sync-batch.ts). */
  private serveSync(lead: boolean): void {
    const client = this.o.ctx.client;
    if (!lead) {
      if (this.syncServeSub !== null) client.unsubscribe(this.syncServeSub);
      this.syncServeSub = null;
      return;
    }
    if (this.syncServeSub !== null) return;
    this.syncServeSub = client.subscribe(`$JSC.SYNC.${this.o.group}`, (m) => {
      if (m.reply === null || !this.isLeader) return;
      let req: SyncRequest;
      try {
        req = JSON.parse(m.payload.toString());
      } catch {
        return;
      }
      const store = this.o.stream.store;
      const next = (seq: number) => store.next(seq, null);
      const lastSeq = store.state().lastSeq;
      if (req.binary === true) return client.publish(m.reply, encodeSyncBatch({ msgs: collectSyncBatch(req.from, req.to, next), lastSeq }));
      // A node of before reads JSON with base64 bodies (a third larger: half the bytes keep it inside a route frame).
      const msgs = collectSyncBatch(req.from, req.to, next, SYNC_BATCH_BYTES / 2).map((s) => ({ seq: s.seq, subject: s.subject, ...(s.headers ? { hdrs: s.headers.toString("base64") } : {}), data: s.data.toString("base64"), ts: s.ts }));
      client.publish(m.reply, Buffer.from(JSON.stringify({ msgs, last_seq: lastSeq })));
    });
  }

  // ---- membership (scaling up and down) ---------------------------------------------------------

  /** The replicas the meta group assigned: the leader adds those not yet voters and removes those no longer assigned, one at a time. */
  wantPeers(peers: readonly NodeId[]): void {
    this.wanted = [...peers];
    this.tickMembers();
  }

  private tickMembers(): void {
    const raft = this.raft;
    if (this.stopped || this.wanted.length === 0 || !this.acceptsPublishes) return;
    // A group that starts with messages already stored (an R1 stream scaled up): a snapshot first, so a
    // joining replica copies the store rather than replaying a log that does not have it.
    if (raft.snapshotIndex === 0 && this.o.stream.store.state().lastSeq > 0 && raft.lastApplied > 0) {
      this.compactTo(raft.lastApplied);
      return;
    }
    const missing = this.wanted.filter((id) => !raft.peers.includes(id));
    const extra = raft.peers.filter((id) => !this.wanted.includes(id));
    if (missing.length === 0 && extra.length === 0) {
      this.wanted = [];
      return;
    }
    // Additions first (a replacement joins before the one it replaces leaves: the group never shrinks below its quorum).
    if (missing.length > 0) {
      if (raft.addPeer(missing[0]!).ok) this.o.log.info(`JetStream stream ${this.o.stream.name}: adding replica ${missing[0]}`);
    } else if (raft.removePeer(extra[0]!).ok) this.o.log.info(`JetStream stream ${this.o.stream.name}: removing replica ${extra[0]}`);
  }

  /**
   * This node is no longer assigned the stream (its peer was removed) while the group may still need it:
   * just stopping a leader of an R2 group, or a follower whose leader still needs its vote to add the
   * replacement, would leave the group without a quorum. So a leader brings in `peers` (the replacement)
   * and removes itself through the log, handing over once that commits; a follower stays a voter until the
   * group drops it (it sees its removal, or the leader stops talking to it). `left` is called then, and at
   * the latest after LEAVE_TIMEOUT_MS (a group that never gets to it).
   */
  leave(peers: readonly NodeId[]): void {
    if (this.stopped) return;
    this.wantPeers(peers.filter((id) => id !== this.o.transport.selfId));
    if (this.leaving) return;
    this.leaving = true;
    this.leaveTimer = setTimeout(() => this.o.left?.(), LEAVE_TIMEOUT_MS);
    this.leaveTimer.unref?.();
    this.checkLeft();
  }

  private checkLeft(): void {
    if (!this.leaving || this.stopped || this.isLeader) return; // a leader hands over once its removal commits
    const dropped = !this.raft.peers.includes(this.o.transport.selfId) || this.raft.leader === undefined;
    if (!dropped) return;
    queueMicrotask(() => {
      if (!this.stopped) this.o.left?.();
    });
  }

  /**
   * The stream is down to this one replica (scaled to R1): the group stops and its log goes; the store stays,
   * a plain R1 stream, and the durables run here from their replicated state if they did not already.
   */
  leaveGroup(): void {
    if (!this.isLeader) {
      this.consumersStarted = false;
      this.startConsumers(true);
    }
    this.stop(true);
  }

  // ---- consumers (stage C) ----------------------------------------------------------------------

  /**
   * Whether this leader applied its log (then it starts the replicated consumers, if it has not yet):
   * requests about the stream and its consumers may go.
   */
  get ready(): boolean {
    if (!this.acceptsPublishes) return false;
    if (!this.consumersStarted) this.startConsumers();
    return true;
  }

  /** Runs `then` once this node is a ready leader (polled: the core tells no event for it); dropped if it stops leading. */
  whenReady(then: () => void, since = Date.now()): void {
    if (this.stopped || !this.isLeader || Date.now() - since > HOLD_MS) return;
    if (this.ready) return then();
    setTimeout(() => this.whenReady(then, since), 10);
  }

  consumersChanged(): void {
    this.tickConsumers();
  }

  /**
   * `then(true)` once the consumers' states proposed so far are applied here (a consumer create is answered
   * then, as nats-server answers once the assignment is committed); `then(false)` if leadership moves or it
   * takes longer than HOLD_MS.
   */
  whenConsumersCommitted(then: (ok: boolean) => void): void {
    this.tickConsumers();
    const index = this.consumerIndex;
    if (!this.isLeader) return then(false);
    if (this.raft.lastApplied >= index) return then(true);
    const waiter = {
      index,
      then,
      timer: setTimeout(() => {
        this.commitWaiters = this.commitWaiters.filter((w) => w !== waiter);
        then(false);
      }, HOLD_MS),
    };
    this.commitWaiters.push(waiter);
  }

  private appliedTo(index: number): void {
    const due = this.commitWaiters.filter((w) => w.index <= index);
    if (due.length === 0) return;
    this.commitWaiters = this.commitWaiters.filter((w) => w.index > index);
    for (const w of due) {
      clearTimeout(w.timer);
      w.then(true);
    }
  }

  private tickConsumers(): void {
    if (this.stopped || !this.acceptsPublishes) return;
    this.tickMembers();
    if (!this.consumersStarted) return;
    const self = this.o.transport.selfId;
    const live = new Set<string>();
    for (const c of this.o.stream.consumers.values()) {
      live.add(c.name);
      const replicated: ReplicatedConsumer = c.isDurable
        ? { config: c.config, created: c.created, state: carryState(c.state()) }
        : { config: c.config, created: c.created, holder: self };
      const json = JSON.stringify(replicated);
      if (this.consumers.get(c.name) === json) continue;
      const result = this.raft.propose(encodeConsumerState(c.name, json));
      if (!result.ok) continue; // (a leadership transfer) the next tick tries again
      this.consumers.set(c.name, json); // what the log will hold (proposed once, not every tick)
      this.consumerIndex = result.index;
    }
    for (const [name, json] of [...this.consumers]) {
      if (live.has(name)) continue;
      // An ephemeral another node holds goes when that node does (it says nothing when it drops one: it cannot propose).
      const holder = (JSON.parse(json) as ReplicatedConsumer).holder;
      if (holder !== undefined && holder !== self && this.o.transport.isAlive(holder)) continue;
      const result = this.raft.propose(Buffer.concat([Uint8Array.of(CONSUMER_GONE), Buffer.from(name)]));
      if (!result.ok) continue;
      this.consumers.delete(name);
      this.consumerIndex = result.index;
    }
  }

  /** This node leads and applied its log: the durables start from their replicated state. */
  private startConsumers(alone = false): void {
    if (this.consumersStarted || (!this.isLeader && !alone)) return;
    this.consumersStarted = true;
    const stream = this.o.stream;
    const started: string[] = [];
    for (const [name, json] of this.consumers) {
      const c = JSON.parse(json) as ReplicatedConsumer;
      if (stream.consumers.has(name) || c.state === undefined) continue;
      try {
        const state = uncarryState(c.state);
        const consumer = this.o.ctx.restoreConsumer(stream, name, c.config, c.created, state);
        // Pending messages gone meanwhile (retention removed them after an ack this state predates): settled.
        for (const [seq] of state.pending) if (stream.store.subjectOf(seq) === null) consumer.onRemoved(seq, "", "delete");
        started.push(name);
      } catch (error) {
        this.o.log.warn(`JetStream stream ${stream.name}: consumer ${name} could not start: ${(error as Error).message}`);
      }
    }
    if (started.length > 0 && !alone) this.o.durablesStarted?.(started);
  }

  /** Leadership went elsewhere: this node's durables stop (their last replicated state stays); ephemerals stay. */
  private stopConsumers(): void {
    for (const c of [...this.o.stream.consumers.values()]) if (c.isDurable) this.o.ctx.detachConsumer(c);
  }

  /** The durables of this stream, as the log says (they run on the leader). */
  durableNames(): string[] {
    return [...this.consumers.keys()].filter((name) => !this.consumers.get(name)!.includes('"holder":'));
  }

  /** The node running an ephemeral consumer of this stream, as the log says (undefined: a durable, or none). */
  ephemeralHolder(name: string): NodeId | undefined {
    const json = this.consumers.get(name);
    return json === undefined ? undefined : (JSON.parse(json) as ReplicatedConsumer).holder;
  }

  /** Follower: the durables' files get the states applied since the last tick (a restart applies the log again anyway). */
  private writeReplicatedConsumerFiles(): void {
    if (this.unwrittenConsumers.size === 0) return;
    if (!this.isLeader) for (const name of this.unwrittenConsumers) this.writeConsumerFiles(name);
    this.unwrittenConsumers.clear(); // a leader's running consumers write their own
  }

  private writeConsumerFiles(name: string): void {
    const json = this.consumers.get(name);
    try {
      if (json === undefined) return this.o.ctx.removeConsumerFiles(this.o.stream, name);
      const c = JSON.parse(json) as ReplicatedConsumer;
      if (c.state !== undefined) this.o.ctx.writeConsumerFiles(this.o.stream, name, c.config, c.created, uncarryState(c.state));
    } catch (error) {
      this.o.log.warn(`JetStream stream ${this.o.stream.name}: consumer ${name} files: ${(error as Error).message}`);
    }
  }

  /** A purge or message delete: through the log, run on every replica, answered by the leader. */
  proposeRequest(request: CarriedRequest): boolean {
    return this.raft.propose(Buffer.concat([Uint8Array.of(API_REQUEST), Buffer.from(JSON.stringify(request))])).ok;
  }

  /** The turn's publishes and consumer states go into the log together at its end (one append, one message per follower). */
  private queueFlush(): void {
    if (this.flushQueued) return;
    this.flushQueued = true;
    queueMicrotask(() => this.flushBatch());
  }

  private flushBatch(): void {
    this.flushQueued = false;
    const batch = this.batch;
    const publishes = this.batchPublishes;
    const from = this.batchFrom;
    this.batch = [];
    this.batchPublishes = 0;
    this.batchFrom = [];
    if (this.stopped) return;
    // The durables' new states follow the publishes they may have delivered (a replica applies both in order).
    // One consumer state in flight at a time: while the last is not applied, changes and confirmations wait.
    // A state is the whole of the consumer's (its pending list too): at most one per CONSUMER_STATE_GAP_MS
    // unless an ack waits to be confirmed.
    const now = performance.now();
    const inFlight = this.raft.lastApplied < this.consumerIndex;
    const early = this.unproposedReplies.length === 0 && now - this.lastStatesAt < CONSUMER_STATE_GAP_MS;
    const statesDue = this.isLeader && !inFlight && !early;
    if (this.isLeader && !inFlight && early && this.changedConsumers.size > 0) this.flushStatesIn(CONSUMER_STATE_GAP_MS - (now - this.lastStatesAt));
    const states = statesDue ? this.changedConsumerStates() : [];
    for (const [, entry] of states) batch.push(entry);
    if (batch.length > 0) {
      const entries = groupEntries(batch);
      const result = this.raft.proposeBatch(entries);
      if (!result.ok) {
        // Lost leadership meanwhile: nothing was proposed (the publishers retry; the consumers stop here).
        this._inflight = Math.max(0, this._inflight - publishes);
        for (const [name] of states) this.consumers.delete(name);
        return;
      }
      if (states.length > 0) {
        this.consumerIndex = result.index + entries.length - 1;
        this.lastStatesAt = now;
      }
      if (this.followersServe) this.commitRelays.push({ first: result.index, last: result.index + entries.length - 1, to: from });
    }
    if (!statesDue || this.unproposedReplies.length === 0) return;
    const replies = this.unproposedReplies;
    this.unproposedReplies = [];
    if (this.raft.lastApplied >= this.consumerIndex) {
      for (const reply of replies) this.o.ctx.client.publish(reply, Buffer.alloc(0)); // already in an applied state
    } else {
      for (const reply of replies) this.ackReplies.push({ index: this.consumerIndex, reply });
    }
  }

  private flushStatesIn(ms: number): void {
    if (this.statesTimer !== null) return;
    this.statesTimer = setTimeout(() => {
      this.statesTimer = null;
      this.queueFlush();
    }, Math.max(1, ms));
  }

  /**
   * A durable's state changed in this turn (a delivery, an ack): proposed at the turn's end with its
   * publishes, so that a new leader knows of every ack but those of the last commit round trip (nats-server
   * replicates acks as they come, batched). One consumer state is in flight at a time: while the last is
   * not applied, changes gather, and go when it is (as many acks in one entry as the round trip lets come).
   */
  consumerStateChanged(consumer: Consumer): void {
    if (this.stopped || !this.consumersStarted) return;
    this.changedConsumers.add(consumer);
    if (this.raft.lastApplied >= this.consumerIndex) this.queueFlush();
  }

  /** The turn's changed durables still running here, as [name, entry] of those whose state differs from the last proposed. */
  private changedConsumerStates(): [string, Uint8Array][] {
    if (this.changedConsumers.size === 0) return [];
    const out: [string, Uint8Array][] = [];
    for (const c of this.changedConsumers) {
      if (this.o.stream.consumers.get(c.name) !== c) continue;
      const json = JSON.stringify({ config: c.config, created: c.created, state: carryState(c.state()) } satisfies ReplicatedConsumer);
      if (this.consumers.get(c.name) === json) continue;
      this.consumers.set(c.name, json); // what the log will hold
      out.push([c.name, encodeConsumerState(c.name, json)]);
    }
    this.changedConsumers.clear();
    return out;
  }

  /** An ack to confirm: once the consumer state proposed at this turn's end (or the latest one, if that has it) is applied. */
  replyWhenAckReplicated(reply: string): void {
    if (this.stopped || !this.isLeader) return;
    this.unproposedReplies.push(reply);
    this.queueFlush();
  }

  /** The consumer states up to `index` are applied here: their acks are confirmed; changes held back meanwhile go now. */
  private consumerStatesApplied(index: number): void {
    let n = 0;
    while (n < this.ackReplies.length && this.ackReplies[n]!.index <= index) n++;
    for (const { reply } of this.ackReplies.splice(0, n)) this.o.ctx.client.publish(reply, Buffer.alloc(0));
    if (this.isLeader && (this.changedConsumers.size > 0 || this.unproposedReplies.length > 0)) this.queueFlush();
  }

  private apply(data: Uint8Array): void {
    if (this.stopped) return;
    if (this.syncing) {
      this.deferred.push(Uint8Array.from(data));
      return;
    }
    if (data[0] === GROUP) {
      for (const entry of ungroup(data)) this.apply(entry);
      return;
    }
    this.appliedSinceSnapshot++;
    const kind = data[0]! & ~STAMPED;
    if (kind === PUBLISH) {
      const { m, seq, ts } = decodePublish(data);
      if (this._inflight > 0 && this.isLeader) this._inflight--;
      this.o.stream.applyPublish(m, seq, ts);
      const msgId = this.pending.size > 0 ? msgIdOf(m) : "";
      if (msgId !== "" && this.pending.get(msgId) === seq) this.pending.delete(msgId);
      return;
    }
    if (kind === SOURCED || kind === MIRRORED) {
      const c = decodeCopied(data);
      if (kind === MIRRORED) {
        const error = this.o.stream.applyMirrored(c.seq, c.subject, c.headers, c.payload, c.ts);
        if (error !== null) this.o.log.warn(`JetStream stream ${this.o.stream.name}: could not store mirrored message ${c.seq}: ${error.description}`);
        return;
      }
      if (this._inflight > 0 && this.isLeader) this._inflight--;
      this.o.stream.applySourced(c.seq, c.subject, c.headers ?? Buffer.alloc(0), c.payload, c.ts);
      const msgId = this.pending.size > 0 && c.headers !== null ? msgIdOf({ subject: c.subject, reply: null, headers: c.headers, payload: c.payload }) : "";
      if (msgId !== "" && this.pending.get(msgId) === c.seq) this.pending.delete(msgId);
      return;
    }
    if (kind === MIRROR_SKIP) {
      this.o.stream.applyMirrorSkip(new EntryReader(data).f64());
      return;
    }
    if (kind === ATOMIC_BATCH) {
      const batch = decodeBatch(data);
      if (this._inflight > 0 && this.isLeader) this._inflight = Math.max(0, this._inflight - batch.messages.length);
      this.o.stream.applyBatch(batch);
      for (const msgId of batch.msgIds) this.pending.delete(msgId);
      return;
    }
    if (kind === REMOVE) {
      for (const seq of decodeSeqs(data)) {
        this.o.stream.store.remove(seq);
        this.released.delete(seq);
      }
      this.o.ctx.markDirty(this.o.stream);
      return;
    }
    if (kind === COMPACT) {
      this.compactTo(Number(Buffer.from(data.subarray(1)).toString()));
      return;
    }
    if (kind === CONSUMER_STATE || kind === CONSUMER_GONE) {
      let name: string;
      if (kind === CONSUMER_GONE) {
        name = Buffer.from(data.subarray(1)).toString();
        this.consumers.delete(name);
      } else {
        const state = decodeConsumerState(data);
        name = state.name;
        this.consumers.set(name, state.json);
      }
      if (!this.isLeader) this.unwrittenConsumers.add(name); // written at the next tick, not once per entry
      return;
    }
    if (kind === API_REQUEST) {
      const m = uncarry(JSON.parse(Buffer.from(data.subarray(1)).toString()) as CarriedRequest);
      if (this.isLeader) this.o.ctx.api.handleLocally(m);
      else this.o.ctx.api.handleLocallyBody(m);
    }
  }

  // ---- GroupHandler ------------------------------------------------------------------------------

  receive(message: RaftMessage): void {
    if (!this.stopped) this.raft.receive(message);
  }

  /**
   * A follower's consumers are done with some messages: a work queue's go at once (REMOVE); an interest
   * stream's (RELEASED) once every consumer is done with them (see holdersDone).
   */
  onForward(from: NodeId, payload: Uint8Array): void {
    if (this.stopped || !this.isLeader || (payload.length - 1) % 8 !== 0) return;
    // A new leader's durables are not running yet: "every consumer is done" would forget them.
    if (!this.consumersStarted) return this.whenReady(() => this.onForward(from, payload));
    if (payload[0] === REMOVE) this.raft.propose(Uint8Array.from(payload));
    if (payload[0] !== RELEASED) return;
    for (const seq of decodeSeqs(payload)) {
      if (this.o.stream.store.subjectOf(seq) === null) continue;
      let done = this.released.get(seq);
      if (done === undefined) this.released.set(seq, (done = new Set()));
      done.add(from);
      if (this.o.stream.consumersDone(seq)) this.proposeRemove(seq);
    }
  }

  onStatus(): void {}

  /** nats-server's stream info `cluster.replicas`: the other replicas, as the leader sees them. */
  replicasInfo(nameOf: (id: NodeId) => string, alive: (id: NodeId) => boolean): Record<string, unknown>[] {
    const self = this.o.transport.selfId;
    const progress = new Map(this.raft.followers().map((f) => [f.id, f]));
    const last = this.raft.lastIndex;
    return this.raft.peers
      .filter((id) => id !== this.raft.leader && !(this.raft.leader === undefined && id === self))
      .map((id) => {
        const p = progress.get(id);
        const isSelf = id === self;
        const lag = isSelf ? Math.max(0, this.raft.commitIndex - this.raft.lastApplied) : p === undefined ? 0 : Math.max(0, last - p.matchIndex);
        const active = isSelf || p === undefined ? 0 : Math.round(p.lastAckAgoMs * 1e6);
        const offline = !alive(id);
        return { name: nameOf(id), current: !offline && lag === 0, active, ...(lag > 0 ? { lag } : {}), ...(offline ? { offline: true } : {}), peer: id };
      });
  }

  /** Stops the group (the stream goes, or the server stops); `removeLog` deletes its files. */
  stop(removeLog: boolean): void {
    if (!removeLog) this.writeReplicatedConsumerFiles();
    this.stopped = true;
    if (this.compactTimer) clearInterval(this.compactTimer);
    if (this.consumerTimer) clearInterval(this.consumerTimer);
    if (this.statesTimer) clearTimeout(this.statesTimer);
    if (this.heldTimer) clearTimeout(this.heldTimer);
    if (this.syncTimer) clearTimeout(this.syncTimer);
    if (this.leaveTimer) clearTimeout(this.leaveTimer);
    for (const w of this.commitWaiters.splice(0)) clearTimeout(w.timer);
    if (this.syncReplySub !== null) this.o.ctx.client.unsubscribe(this.syncReplySub);
    if (this.syncServeSub !== null) this.o.ctx.client.unsubscribe(this.syncServeSub);
    this.raft.stop();
    this.storage.close();
    if (this.o.stream.replication === this) {
      this.o.stream.replication = null;
      if (!this.o.stream.deleted) {
        this.o.stream.subscribeForRole();
        this.o.stream.feedsForRole(true); // scaled down to R1: its feeds run here (a stream still replicated starts none)
      }
    }
    if (removeLog) rmSync(this.o.dir, { recursive: true, force: true });
  }

  /** Hands leadership over; the consumers' latest states go into the log first (the new leader gets them). */
  stepDown(): boolean {
    this.tickConsumers();
    return this.raft.stepDown();
  }
}

/** Entries as GROUP entries of up to GROUP_MAX_BYTES each (an entry alone in its group stays as it is). */
function groupEntries(entries: Uint8Array[]): Uint8Array[] {
  if (entries.length === 1) return entries;
  const out: Uint8Array[] = [];
  let from = 0;
  while (from < entries.length) {
    let size = 1;
    let to = from;
    while (to < entries.length && (to === from || size + EntryWriter.long(entries[to]!) <= GROUP_MAX_BYTES)) size += EntryWriter.long(entries[to++]!);
    if (to - from === 1) out.push(entries[from]!);
    else {
      const w = new EntryWriter(size);
      w.u8(GROUP);
      for (let k = from; k < to; k++) w.long(entries[k]!);
      out.push(w.out);
    }
    from = to;
  }
  return out;
}

/** A GROUP entry's entries, as views into it. */
function ungroup(data: Uint8Array): Uint8Array[] {
  const r = new EntryReader(data);
  const out: Uint8Array[] = [];
  while (!r.done) out.push(r.longView());
  return out;
}

function encodeConsumerState(name: string, json: string): Uint8Array {
  const nameBytes = Buffer.from(name);
  const body = Buffer.from(json);
  const w = new EntryWriter(1 + EntryWriter.short(nameBytes) + body.length);
  w.u8(CONSUMER_STATE);
  w.short(nameBytes);
  w.rest(body);
  return w.out;
}

function decodeConsumerState(data: Uint8Array): { name: string; json: string } {
  if (data[1] === 0x7b) {
    // The layout before: JSON {name, consumer} ('{' is no name length's first byte: names are short).
    const old = JSON.parse(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("utf8", 1)) as { name: string; consumer: ReplicatedConsumer };
    return { name: old.name, json: JSON.stringify(old.consumer) };
  }
  const r = new EntryReader(data);
  const name = r.shortUtf8();
  return { name, json: r.restUtf8() };
}

/** A publish with the leader's timestamp `ts` (ms since the epoch). */
function encodePublish(m: InternalMessage, seq: number, ts: number): Uint8Array {
  const reply = m.reply ?? "";
  const w = new EntryWriter(1 + 8 + 8 + EntryWriter.shortText(m.subject) + EntryWriter.shortText(reply) + EntryWriter.long(m.headers) + m.payload.length);
  w.u8(PUBLISH | STAMPED);
  w.f64(ts);
  w.f64(seq);
  w.shortText(m.subject);
  w.shortText(reply);
  w.long(m.headers);
  w.rest(m.payload);
  return w.out;
}

/** A message a feed copied (SOURCED, MIRRORED): its timestamp (the leader's; a mirror's: the origin's), its sequence, subject, headers and payload. */
function encodeCopied(kind: number, seq: number, subject: string, headers: Buffer | null, payload: Buffer, ts: number): Uint8Array {
  const subjectBytes = Buffer.from(subject, "latin1");
  const w = new EntryWriter(1 + 8 + 8 + EntryWriter.short(subjectBytes) + EntryWriter.long(headers) + payload.length);
  w.u8(kind | STAMPED);
  w.f64(ts);
  w.f64(seq);
  w.short(subjectBytes);
  w.long(headers);
  w.rest(payload);
  return w.out;
}

/** The leader's timestamp of a publish entry; undefined for one without (written before entries had it). */
function stampOf(data: Uint8Array, r: EntryReader): number | undefined {
  return (data[0]! & STAMPED) !== 0 ? r.f64() : undefined;
}

function decodeCopied(data: Uint8Array): { seq: number; subject: string; headers: Buffer | null; payload: Buffer; ts: number | undefined } {
  const r = new EntryReader(data);
  const ts = stampOf(data, r);
  const seq = r.f64();
  const subject = r.shortText();
  const headers = r.long();
  return { seq, subject, headers, payload: r.rest(), ts };
}

function decodePublish(data: Uint8Array): { m: InternalMessage; seq: number; ts: number | undefined } {
  const r = new EntryReader(data);
  const ts = stampOf(data, r);
  const seq = r.f64();
  const subject = r.shortText();
  const reply = r.shortText();
  const headers = r.long();
  return { m: { subject, reply: reply === "" ? null : reply, headers, payload: r.rest() }, seq, ts };
}

/** An atomic batch's commit; its messages all get the leader's timestamp `ts`. */
function encodeBatch(batch: ProposedBatch, ts: number): Uint8Array {
  const id = Buffer.from(batch.id, "latin1");
  const reply = Buffer.from(batch.reply ?? "", "latin1");
  const subjects = batch.messages.map((m) => Buffer.from(m.subject, "latin1"));
  let size = 1 + 8 + 8 + EntryWriter.short(id) + EntryWriter.short(reply) + 4;
  batch.messages.forEach((m, k) => (size += EntryWriter.short(subjects[k]!) + EntryWriter.long(m.headers) + EntryWriter.long(m.data)));
  const w = new EntryWriter(size);
  w.u8(ATOMIC_BATCH | STAMPED);
  w.f64(ts);
  w.f64(batch.firstSeq);
  w.short(id);
  w.short(reply);
  w.u32(batch.messages.length);
  batch.messages.forEach((m, k) => {
    w.short(subjects[k]!);
    w.long(m.headers);
    w.long(m.data);
  });
  return w.out;
}

function decodeBatch(data: Uint8Array): ProposedBatch {
  const r = new EntryReader(data);
  const ts = stampOf(data, r);
  const firstSeq = r.f64();
  const id = r.shortText();
  const reply = r.shortText();
  const count = r.u32();
  const messages = [];
  const msgIds = [];
  for (let k = 0; k < count; k++) {
    const subject = r.shortText();
    const headers = r.long();
    const payload = r.long() ?? Buffer.alloc(0);
    messages.push({ subject, headers, data: payload });
    const msgId = msgIdOf({ subject, reply: null, headers, payload });
    if (msgId !== "") msgIds.push(msgId);
  }
  return { id, firstSeq, reply: reply === "" ? null : reply, messages, msgIds, ts };
}

/** A Map that counts its changes, so that what is derived from it knows when to derive again. */
class CountedMap<K, V> extends Map<K, V> {
  version = 0;

  override set(key: K, value: V): this {
    this.version++;
    return super.set(key, value);
  }

  override delete(key: K): boolean {
    this.version++;
    return super.delete(key);
  }

  override clear(): void {
    this.version++;
    super.clear();
  }
}

/** kind | f64 seq…: a REMOVE entry or a RELEASED frame. */
function encodeSeqs(kind: number, seqs: readonly number[]): Uint8Array {
  const out = Buffer.allocUnsafe(1 + 8 * seqs.length);
  out[0] = kind;
  for (let i = 0; i < seqs.length; i++) out.writeDoubleBE(seqs[i]!, 1 + 8 * i);
  return out;
}

function decodeSeqs(data: Uint8Array): number[] {
  const b = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const seqs: number[] = [];
  for (let at = 1; at + 8 <= b.length; at += 8) seqs.push(b.readDoubleBE(at));
  return seqs;
}

const MSG_ID = "\r\nNats-Msg-Id:";

function msgIdOf(m: InternalMessage): string {
  if (m.headers === null) return "";
  const text = m.headers.toString("latin1");
  const at = text.indexOf(MSG_ID);
  if (at < 0) return "";
  const end = text.indexOf("\r\n", at + MSG_ID.length);
  return text.slice(at + MSG_ID.length, end < 0 ? undefined : end).trim();
}
