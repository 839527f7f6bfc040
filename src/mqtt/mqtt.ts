// The MQTT subsystem of a server: its listener, the sessions by client id (takeover, kept sessions,
// wills), retained messages, the timers (keepalive, QoS 1/2 redelivery after ack_wait), and what is
// kept in the stream layer (src/mqtt/store.ts). MQTT clients publish into the account's subject space
// the way a NATS client's PUB does, so NATS subscribers, routes and leaf links get MQTT messages with no
// change to the NATS path.
import type { Server } from "../server.ts";
import type { Account } from "../accounts/account.ts";
import type { Transport } from "../transport/transport.ts";
import { deliverToMatches } from "../router.ts";
import { disabledHeaders, hasTraceHeader } from "../trace/headers.ts";
import { SAMPLED_OUT, SKIP, startTrace, tracedResult } from "../trace/tracer.ts";
import type { MsgTrace } from "../trace/msg-trace.ts";
import { isValidPublishSubject, subjectMatches } from "../subjects/subject.ts";
import type { MqttOptions } from "./options.ts";
import { MqttConnection } from "./connection.ts";
import { MqttSession, MqttSubscription, type SessionKeeper } from "./session.ts";
import { MQTT_5, PacketType, ReasonCode, type PublishPacket, type Will } from "./packets.ts";
import { propertiesToHeaders } from "./headers.ts";
import { topicToSubject } from "./topics.ts";
import { listenMqtt, type MqttListener } from "./listener.ts";
import { Qos0Run } from "./qos0-run.ts";
import { clientIdHash, expiryOf, MqttStore, NoJetStream, SessionRecordChanged, storedWill, willFromStored, type ClusterListener, type StoredMessage, type StoredSession } from "./store.ts";
import { jetStreamClusterSize } from "../jetstream/jsz.ts";
import { RemoteSessionKeeper } from "./remote-session.ts";

/** How often keepalives and ack_wait are checked. */
const SWEEP_MS = 250;
/** How long a session record's sequence is kept to order records told out of order (recordSeqs). */
const RECORD_SEQ_KEEP_MS = 30_000;
const NEVER_EXPIRES = 0xffffffff;

/** One account's MQTT state: its store in the stream layer (null without JetStream) and retained messages by subject. */
interface AccountState {
  store: MqttStore | null;
  retained: Map<string, StoredMessage>;
}

export class Mqtt implements SessionKeeper {
  /** Sessions by account and client id: as in nats-server, each account has its own client ids. */
  readonly sessions = new Map<string, MqttSession>();
  /** The same sessions by account and client id hash (what another node's takeover names). */
  private readonly sessionsByHash = new Map<string, MqttSession>();
  /** Cluster: the kept sessions other nodes hold, by account and client id hash (src/mqtt/remote-session.ts). */
  private readonly remoteSessions = new Map<string, RemoteSessionKeeper>();
  /**
   * Cluster: the stream sequence of the latest session record seen of each client id hash, by account, and
   * when (older ones are stale). Only to order records told close together: forgotten a while after, unless
   * a keeper needs it (every CONNECT in a cluster writes a record, so this would grow with every client id).
   */
  private readonly recordSeqs = new Map<string, { seq: number; at: number }>();
  private nextRecordSeqsPrune = 0;
  readonly connections = new Map<number, MqttConnection>();
  /** MQTT clients accepted since start. */
  totalConnections = 0;
  /** Counters for /metrics. */
  readonly stats = { publishesIn: 0, publishesOut: 0, redeliveries: 0, protocolErrors: 0 };
  /** True until the kept state is loaded from the stream layer: clients' packets wait for it. */
  loading = false;
  private readonly accounts = new Map<Account, AccountState>();
  private listener: MqttListener | null = null;
  private timer: ReturnType<typeof setInterval> | null = null;
  /** QoS 0 messages of one publisher and topic waiting for the end of the read (publishQos0). */
  private readonly run = new Qos0Run();
  /** Stream-layer writes started by the publish being processed (beginWrites/endWrites). */
  private writes: Promise<unknown>[] | null = null;

  constructor(
    readonly server: Server,
    readonly options: MqttOptions,
  ) {}

  /**
   * A JetStream node of a cluster: the `$MQTT_*` streams are the cluster's, a client id's session is the
   * cluster's (taken over from whichever node held it), retained messages are seen by every node.
   */
  get clustered(): boolean {
    return this.server.options.jetstream && this.server.options.clusterPort !== 0;
  }

  /** This node in its sessions' records: the cluster member id (stable across restarts). */
  private get nodeId(): string {
    return this.server.cluster?.id ?? this.server.serverName;
  }

  /** The largest packet accepted (and announced as MQTT 5 maximum packet size): max_payload plus room for topic and properties. */
  get maxPacketSize(): number {
    return this.server.options.maxPayload + 65_536;
  }

  get port(): number {
    return this.listener?.port ?? this.options.port;
  }

  /** Binds the MQTT port (throws as Bun.listen does when it cannot). */
  listen(): void {
    const o = this.options;
    this.listener = listenMqtt(this, o.host, o.port === -1 ? 0 : o.port, this.server.options.procs > 1);
    this.timer = setInterval(() => this.sweep(), SWEEP_MS);
    this.loading = true; // until start() has loaded what the stream layer keeps
  }

  /**
   * After the stream layer started: for every account with JetStream, the MQTT streams are created (or
   * found) and their retained messages and kept sessions loaded; clients wait for it.
   */
  start(): void {
    const loads: Promise<void>[] = [];
    for (const account of this.server.accounts.all()) {
      if (account === this.server.accounts.system) continue;
      loads.push(this.openAccount(account));
    }
    Promise.allSettled(loads).then(() => {
      this.loading = false;
      for (const conn of this.connections.values()) conn.releaseHeldReads();
      this.server.flushDirty();
    });
  }

  private async openAccount(account: Account): Promise<void> {
    const state: AccountState = { store: null, retained: new Map() };
    this.accounts.set(account, state);
    const store = new MqttStore(this.server, account, this.clustered ? this.clusterListener(account, state) : null);
    try {
      const loaded = await store.open(this.streamReplicas());
      state.store = store;
      for (const [subject, message] of loaded.retained) state.retained.set(subject, message); // news from other nodes may be there already
      let restored = 0;
      for (const { record: stored, seq } of loaded.sessions) {
        if (this.clustered && stored.node !== this.nodeId) {
          this.sessionRecorded(account, clientIdHash(stored.clientId), stored, seq); // another node's: kept for here too
          continue;
        }
        if (stored.expiry === 0) {
          void store.forgetSession(stored.clientId).catch(() => {}); // its connection ended with this node
          continue;
        }
        restored++;
        const session = new MqttSession(stored.clientId, account, this.options.maxAckPending, this);
        session.expirySeconds = stored.expiry;
        session.storedSeq = seq;
        session.persisted = true;
        // Its expiry counts from when its client went away (from now if it was connected when the server stopped).
        session.disconnectedAt = typeof stored.disconnectedAt === "number" ? stored.disconnectedAt : Date.now();
        const will = stored.will === undefined ? null : willFromStored(stored.will);
        for (const s of stored.subscriptions) session.restoreSubscription(s);
        for (const { seq, message } of loaded.pending.get(stored.clientId) ?? []) {
          session.restorePending({ type: PacketType.PUBLISH, dup: false, qos: message.qos, retain: false, topic: message.topic, packetId: 0, properties: message.properties, payload: message.payload }, seq, message.expiresAt);
        }
        this.addSession(session);
        if (will !== null) this.armWill(session, will, stored.will!.at);
        this.armExpiry(session);
      }
      if (restored > 0 || loaded.retained.size > 0) {
        this.server.log.info(`MQTT: account ${account.name}: restored ${restored} session(s) and ${loaded.retained.size} retained message(s)`);
      }
    } catch (error) {
      store.close();
      if (!(error instanceof NoJetStream)) this.server.log.error(`MQTT: account ${account.name}: cannot use the stream layer: ${(error as Error).message}`);
    }
  }

  /**
   * nats-server's replicas for the MQTT streams: stream_replicas, else 1 alone and, in a cluster, as many
   * as it has JetStream nodes, at most 3 (its mqttDetermineReplicas counts the configured routes).
   */
  private streamReplicas(): number {
    if (this.options.streamReplicas > 0) return this.options.streamReplicas;
    if (!this.clustered) return 1;
    return Math.max(1, Math.min(3, jetStreamClusterSize(this.server)));
  }

  /** What the other nodes of the cluster tell this one about an account's sessions and retained messages. */
  private clusterListener(account: Account, state: AccountState): ClusterListener {
    return {
      sessionClaimed: (idHash, seq) => this.sessionClaimed(account, idHash, seq),
      sessionRecorded: (idHash, record, seq) => this.sessionRecorded(account, idHash, record, seq),
      retainedChanged: (subject, message) => {
        if (message === null) state.retained.delete(subject);
        else state.retained.set(subject, message);
      },
    };
  }

  private addSession(session: MqttSession): void {
    this.sessions.set(sessionKey(session.account, session.clientId), session);
    this.sessionsByHash.set(sessionKey(session.account, session.idHash), session);
  }

  private removeSession(session: MqttSession): void {
    const key = sessionKey(session.account, session.clientId);
    if (this.sessions.get(key) !== session) return;
    this.sessions.delete(key);
    this.sessionsByHash.delete(sessionKey(session.account, session.idHash));
  }

  /**
   * A client with this client id connected to another node, which stored the session (nats-server's
   * processSessionPersist): the session moves there. Its connection here is closed (MQTT 5: DISCONNECT
   * 0x8E), and it stops collecting messages here; the record is the other node's now. A claim no newer than
   * the record this node read or wrote last is stale and changes nothing. Also while this node's own claim
   * is under way: a newer claim means the other node read the record after this one's was stored (its
   * client connected later and takes the session over), or this node's claim will be refused (it follows
   * an older record); either way this connection is the one to close.
   */
  private sessionClaimed(account: Account, idHash: string, seq: number): void {
    const session = this.sessionsByHash.get(sessionKey(account, idHash));
    if (session === undefined || seq <= session.storedSeq) return;
    this.removeSession(session);
    session.persisted = false;
    session.movedAway = true;
    const connection = session.connection;
    if (connection !== null) {
      this.server.log.debug(`${connection.logPrefix} - Closing because a remote connection has started with the same client ID: ${JSON.stringify(session.clientId)}`);
      connection.closeWith(ReasonCode.SessionTakenOver, "session taken over");
    }
    session.close();
    this.server.flushDirty();
  }

  /**
   * Cluster: a session record another node wrote (or found at start). A kept session held by another node
   * gets a keeper here (src/mqtt/remote-session.ts), replacing the one of the record before; a record of
   * this node's, an ended or a clean session, none. A record older than one seen before (told out of
   * order) changes nothing.
   */
  private sessionRecorded(account: Account, idHash: string, record: StoredSession, seq: number): void {
    const key = sessionKey(account, idHash);
    if (seq <= (this.recordSeqs.get(key)?.seq ?? 0)) return;
    this.recordSeqs.set(key, { seq, at: Date.now() });
    this.dropRemoteSession(key);
    // A newer record of another node's for a session this node holds is that node's claim: its takeover
    // (sessionClaimed) follows, and the keeper is here already.
    if (record.node === undefined || record.node === this.nodeId || record.expiry === 0) return;
    const away = record.disconnectedAt;
    const expiresAt = away === undefined || record.expiry === NEVER_EXPIRES ? null : away + record.expiry * 1000;
    if (expiresAt !== null && expiresAt <= Date.now()) return;
    const state = this.stateOf(account);
    const holder = record.node;
    const keeper = new RemoteSessionKeeper(
      record.clientId,
      account,
      expiresAt,
      (subject) => this.holderTakes(account, holder, subject),
      (clientId, message) => {
        const store = state.store;
        if (store !== null) this.track(store.keepPending(clientId, message), "keep a QoS message for a session held by another node");
      },
    );
    keeper.subscribeAll(record);
    this.remoteSessions.set(key, keeper);
  }

  private dropRemoteSession(key: string): void {
    const keeper = this.remoteSessions.get(key);
    if (keeper === undefined) return;
    keeper.close();
    this.remoteSessions.delete(key);
  }

  /** Whether the node `holder` gets a message on `subject` published here: its route is up and has told the interest. */
  private holderTakes(account: Account, holder: string, subject: string): boolean {
    const route = this.server.cluster?.routes.get(holder);
    if (route === undefined || route.closed) return false;
    const plain = account.sublist.match(subject).plain;
    for (let i = 0; i < plain.length; i++) if (plain[i]!.client === route) return true;
    return false;
  }

  private stateOf(account: Account): AccountState {
    let state = this.accounts.get(account);
    if (state === undefined) {
      state = { store: null, retained: new Map() };
      this.accounts.set(account, state);
    }
    return state;
  }

  /** Retained messages held now, over all accounts. */
  get retainedCount(): number {
    let n = 0;
    for (const state of this.accounts.values()) n += state.retained.size;
    return n;
  }

  /** QoS 1/2 messages in flight to clients or waiting for a slot, over all sessions. */
  get pendingCount(): number {
    let n = 0;
    for (const session of this.sessions.values()) n += session.inflight.size + session.queuedCount;
    return n;
  }

  /** Retained messages and kept sessions need the account's JetStream (as in nats-server). */
  retainAvailable(account: Account): boolean {
    return this.stateOf(account).store !== null;
  }

  /** A transport connected (TCP, TLS, or WebSocket at /mqtt). */
  accept(transport: Transport): MqttConnection {
    const conn = new MqttConnection(this, this.server, transport, this.server.allocateClientId());
    this.totalConnections++;
    this.server.stats.totalConnections++;
    if (this.server.isShuttingDown || this.server.clientCount >= this.server.options.maxConnections) {
      conn.close("Maximum Connections Exceeded");
      return conn;
    }
    this.connections.set(conn.cid, conn);
    return conn;
  }

  remove(conn: MqttConnection): void {
    this.connections.delete(conn.cid);
  }

  /**
   * CONNECT accepted: the client's session, new or kept. A client id already connected is taken over:
   * the older connection is closed (MQTT 5: DISCONNECT 0x8E) [MQTT-3.1.4-2]. `stored`, when not null,
   * settles once the session is in the stream layer (CONNACK waits for it, so a kept session acknowledged
   * survives kill -9), to whether a session was present: in a cluster, a kept session the client had on
   * another node is read from the stream layer and taken over from that node first.
   */
  attach(conn: MqttConnection, cleanStart: boolean, account: Account, expirySeconds: number): { session: MqttSession; present: boolean; stored: Promise<boolean> | null } {
    const key = sessionKey(account, conn.clientId);
    let session = this.sessions.get(key);
    if (session !== undefined) {
      const previous = session.connection;
      if (previous !== null && previous !== conn) {
        previous.closeWith(ReasonCode.SessionTakenOver, "session taken over");
      }
      if (session.willTimer !== null) {
        clearTimeout(session.willTimer); // the client is back before its will delay ended: no will
        session.willTimer = null;
      }
      session.pendingWill = null;
      session.disconnectedAt = null;
      if (session.expiryTimer !== null) {
        clearTimeout(session.expiryTimer);
        session.expiryTimer = null;
      }
      if (cleanStart) {
        this.endSession(session);
        session = undefined;
      }
    }
    const present = session !== undefined;
    if (session === undefined) {
      session = new MqttSession(conn.clientId, account, this.options.maxAckPending, this);
      this.addSession(session);
    }
    session.connection = conn;
    const wasKept = session.persisted;
    session.expirySeconds = expirySeconds;
    const store = this.stateOf(account).store;
    if (store === null) return { session, present, stored: null };
    if (this.clustered) {
      this.dropRemoteSession(sessionKey(account, session.idHash)); // this node holds the session now: it keeps for it itself
      // Every session is written at CONNECT in a cluster (as nats-server does), clean ones too: the write
      // tells the node holding the client id to let it go.
      const stored = !present && !cleanStart ? this.resume(session, store) : this.claim(session, store, present, cleanStart);
      return { session, present, stored };
    }
    if (expirySeconds > 0) return { session, present, stored: this.writeSession(session, store, false).then(() => present) };
    if (wasKept) return { session, present, stored: this.forget(session).then(() => present) };
    return { session, present, stored: null };
  }

  /** Cluster: writes the session at CONNECT, so that another node holding it lets it go; a clean start drops what it had in flight. */
  private async claim(session: MqttSession, store: MqttStore, present: boolean, cleanStart: boolean): Promise<boolean> {
    session.resuming = true;
    try {
      // The record this write follows: this node's own last one, else the stream's (as nats-server reads it at every CONNECT).
      if (!present) session.storedSeq = (await store.loadSession(session.clientId))?.seq ?? 0;
      if (session.closed) return false;
      await this.claimRecord(session, store);
    } finally {
      session.resuming = false;
    }
    if (cleanStart) await store.forgetPending(session.clientId);
    else if (present && !session.closed) {
      // What other nodes kept for it while this node could not take it (src/mqtt/remote-session.ts).
      const pending = await store.loadPending(session.clientId);
      if (!session.closed) await session.restorePendingBefore(pending);
    }
    return present;
  }

  /**
   * Cluster: a client connecting without clean start whose session this node does not hold. Its record
   * (subscriptions) is read from `$MQTT_sess`, this node claims it (the node that held it closes its
   * connection and stops collecting), then its QoS 1/2 messages not completed are read from `$MQTT_qos`.
   * Its subscriptions are back before the claim, so nothing published meanwhile is missed (at worst a
   * QoS 1 message comes twice).
   */
  private async resume(session: MqttSession, store: MqttStore): Promise<boolean> {
    session.resuming = true;
    let present = false;
    try {
      const loaded = await store.loadSession(session.clientId);
      if (session.closed) return false;
      const record = loaded?.record;
      const expired = record?.disconnectedAt !== undefined && record.expiry !== NEVER_EXPIRES && record.disconnectedAt + record.expiry * 1000 <= Date.now();
      if (record !== undefined && record.expiry > 0 && !expired) {
        for (const s of record.subscriptions) session.restoreSubscription(s);
        present = true;
      }
      session.storedSeq = loaded?.seq ?? 0;
      await this.claimRecord(session, store);
    } finally {
      session.resuming = false;
    }
    if (!present || session.closed) return present;
    const pending = await store.loadPending(session.clientId);
    if (!session.closed) await session.restorePendingBefore(pending);
    return present;
  }

  /**
   * Cluster: the session record written at CONNECT, following the record read (session.storedSeq). Of two
   * connections with one client id racing on two nodes, both read the same record and the stream stores
   * only the first write that follows it (nats-server's session save with Nats-Expected-Last-Subject-Sequence):
   * the other is refused, its node never held the session, and its CONNECT is refused. A record that moved
   * on because the node holding the session wrote that its client went away (the client is back here before
   * that node noticed), or was removed (a clean start's purge landing after the read), is no rival: the
   * claim is made again, once, after it.
   */
  private async claimRecord(session: MqttSession, store: MqttStore): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.writeSession(session, store, true);
        return;
      } catch (error) {
        if (!(error instanceof SessionRecordChanged)) throw error;
        if (attempt === 0 && !session.closed) {
          const now = await store.loadSession(session.clientId);
          // Gone (purged: a clean start, the session's end) or its client away: nobody holds it.
          if (now === null || now.record === undefined || now.record.disconnectedAt !== undefined) {
            session.storedSeq = now?.seq ?? 0;
            continue;
          }
        }
        this.server.log.debug(`MQTT: client id ${JSON.stringify(session.clientId)}: another node connected it first`);
        this.removeSession(session);
        session.persisted = false;
        session.movedAway = true;
        session.claimLost = true;
        throw error;
      }
    }
  }

  /**
   * Writes the session record now (see saveSession), resolving once stored. In a cluster one write at a
   * time per session, each following the one before (its expected last sequence).
   */
  private writeSession(session: MqttSession, store: MqttStore, claim: boolean): Promise<void> {
    session.persisted = true;
    if (!this.clustered) return store.saveSession(this.sessionRecord(session), claim).then(() => {});
    const written = session.recordWrites.then(async () => {
      const seq = await store.saveSession(this.sessionRecord(session), claim, session.storedSeq);
      if (seq > session.storedSeq) session.storedSeq = seq;
      // This node's own records are not told back to it: its view of the latest follows them here.
      const key = sessionKey(session.account, session.idHash);
      if (seq > (this.recordSeqs.get(key)?.seq ?? 0)) this.recordSeqs.set(key, { seq, at: Date.now() });
    });
    session.recordWrites = written.catch(() => {});
    return written;
  }

  private sessionRecord(session: MqttSession): StoredSession {
    const record: StoredSession = { clientId: session.clientId, expiry: session.expirySeconds, subscriptions: session.storedSubscriptions() };
    if (session.disconnectedAt !== null) record.disconnectedAt = session.disconnectedAt;
    if (session.pendingWill !== null) record.will = storedWill(session.pendingWill.will, session.pendingWill.at);
    if (this.clustered) record.node = this.nodeId;
    return record;
  }

  /** The session's connection closed: its will is published (after the will delay), the session kept or ended. */
  detach(conn: MqttConnection, will: Will | null): void {
    const session = conn.session!;
    if (session.connection !== conn) return; // taken over: the session lives on with the new connection
    session.connection = null;
    if (session.movedAway || session.resuming) {
      // Taken over by another node (its client is back there: a delayed will is not due), gone before its
      // session was read, or its CONNECT lost to another node's (never connected: no will): nothing here is
      // the session's record any more.
      if (will !== null && !session.resuming && !session.claimLost && (conn.level !== MQTT_5 || (will.properties.willDelayInterval ?? 0) === 0)) this.publishWill(session, will);
      this.removeSession(session);
      session.close();
      return;
    }
    const now = Date.now();
    session.disconnectedAt = now;
    if (will !== null) {
      const delay = conn.level === MQTT_5 ? Math.min(will.properties.willDelayInterval ?? 0, session.expirySeconds) : 0;
      if (delay > 0) this.armWill(session, will, now + delay * 1000);
      else this.publishWill(session, will);
    }
    if (session.expirySeconds === 0) this.endSession(session);
    else {
      this.armExpiry(session);
      this.saveSession(session); // when it went away, and its waiting will: both outlive a restart
    }
  }

  /** A will waiting for its will delay (until `at`, ms since the epoch), kept with the session. */
  private armWill(session: MqttSession, will: Will, at: number): void {
    session.pendingWill = { will, at };
    session.willTimer = timerUntil(at, () => {
      session.willTimer = null;
      session.pendingWill = null;
      this.publishWill(session, will);
      if (!session.closed) this.saveSession(session); // the will is gone from the record too
    }, (t) => (session.willTimer = t));
  }

  /** A kept session ends its expiry interval after its client went away (3.1.1's never do), also counted across restarts. */
  private armExpiry(session: MqttSession): void {
    if (session.expirySeconds === NEVER_EXPIRES || session.expirySeconds === 0) return;
    const due = (session.disconnectedAt ?? Date.now()) + session.expirySeconds * 1000;
    session.expiryTimer = timerUntil(due, () => {
      if (session.connection !== null) return;
      const pending = session.pendingWill;
      if (session.willTimer !== null) {
        clearTimeout(session.willTimer); // the session ends first: its will goes now ([MQTT-3.1.3-9])
        session.willTimer = null;
      }
      session.pendingWill = null;
      if (pending !== null) this.publishWill(session, pending.will);
      this.endSession(session);
    }, (t) => (session.expiryTimer = t));
  }

  /** Ends a session: its subscriptions and messages go, in memory and in the stream layer. */
  private endSession(session: MqttSession): void {
    session.close();
    this.removeSession(session);
    if (session.persisted) void this.forget(session);
  }

  private async forget(session: MqttSession): Promise<void> {
    session.persisted = false;
    const store = this.stateOf(session.account).store;
    try {
      await store?.forgetSession(session.clientId);
    } catch (error) {
      this.server.log.error(`MQTT: could not remove session ${JSON.stringify(session.clientId)}: ${(error as Error).message}`);
    }
  }

  /**
   * Writes a kept session's subscriptions to the stream layer (a session ending with its connection is
   * not kept); null when there is nothing to write, else settles (never rejects) once written or failed.
   */
  saveSession(session: MqttSession): Promise<void> | null {
    const store = this.stateOf(session.account).store;
    if (store === null || session.expirySeconds === 0) return null;
    const written = this.writeSession(session, store, false);
    this.writes?.push(written);
    return written.catch((error: unknown) => {
      // Refused because another node wrote the record since: that node holds the session now (its takeover is on its way).
      if (error instanceof SessionRecordChanged) this.server.log.debug(`MQTT: session ${JSON.stringify(session.clientId)} not saved here: another node holds it now`);
      else this.server.log.error(`MQTT: could not save session: ${(error as Error).message}`);
    });
  }

  // ---- SessionKeeper: QoS 1/2 messages of kept sessions ------------------------------------------

  keepPending(session: MqttSession, packet: PublishPacket, expiresAt: number | undefined): Promise<number> {
    const store = this.stateOf(session.account).store;
    if (store === null) return Promise.resolve(0);
    const stored = store.keepPending(session.clientId, { topic: packet.topic, payload: packet.payload, qos: packet.qos, properties: packet.properties, expiresAt });
    this.track(stored, "keep a QoS message");
    return stored.catch(() => 0);
  }

  completePending(session: MqttSession, stored: Promise<number>): void {
    const store = this.stateOf(session.account).store;
    if (store === null) return;
    void stored.then((seq) => {
      if (seq > 0) return store.completePending(seq);
    }).catch((error: unknown) => this.server.log.error(`MQTT: could not remove a completed message: ${(error as Error).message}`));
  }

  /** Starts collecting the stream-layer writes of one publish; the caller acknowledges after them. */
  beginWrites(): Promise<unknown>[] {
    this.writes = [];
    return this.writes;
  }

  endWrites(): void {
    this.writes = null;
  }

  private track(write: Promise<unknown>, what: string): void {
    this.writes?.push(write);
    write.catch((error: unknown) => this.server.log.error(`MQTT: could not ${what}: ${(error as Error).message}`));
  }

  // ---- retained messages ---------------------------------------------------------------------------

  /** A PUBLISH with RETAIN: it becomes the topic's retained message; an empty payload removes it ([MQTT-3.3.1-10]). */
  retain(account: Account, subject: string, message: StoredMessage): void {
    const state = this.stateOf(account);
    if (state.store === null) return;
    if (message.payload.length === 0) {
      state.retained.delete(subject);
      this.track(state.store.clearRetained(subject), "remove a retained message");
    } else {
      const kept = { ...message, expiresAt: expiryOf(message.properties) };
      state.retained.set(subject, kept);
      this.track(state.store.retain(subject, kept), "store a retained message");
    }
  }

  /** A new subscription gets the retained messages its filter matches, with RETAIN set ([MQTT-3.3.1-6]). */
  sendRetained(session: MqttSession, subs: MqttSubscription[]): void {
    const retained = this.stateOf(session.account).retained;
    if (retained.size === 0) return;
    const main = subs[0]!;
    const parent = subs[1]?.subject;
    const v5 = session.connection?.level === MQTT_5;
    const now = Date.now();
    for (const [subject, message] of retained) {
      if (!subjectMatches(main.subject, subject) && subject !== parent) continue;
      if (message.expiresAt !== undefined && message.expiresAt <= now) {
        this.retain(session.account, subject, { ...message, payload: Buffer.alloc(0) }); // expired: removed ([MQTT-3.3.2-5])
        continue;
      }
      let properties = v5 ? { ...message.properties, ...(main.subscriptionId !== undefined ? { subscriptionIdentifiers: [main.subscriptionId] } : {}) } : {};
      if (v5 && message.expiresAt !== undefined) properties = { ...properties, messageExpiryInterval: Math.ceil((message.expiresAt - now) / 1000) };
      const qos = Math.min(message.qos, main.qos) as 0 | 1 | 2;
      session.enqueue({ type: PacketType.PUBLISH, dup: false, qos, retain: true, topic: message.topic, packetId: 0, properties, payload: message.payload });
    }
  }

  // ---- publishing ----------------------------------------------------------------------------------

  private publishWill(session: MqttSession, will: Will): void {
    let subject: string;
    try {
      subject = topicToSubject(will.topic);
    } catch {
      return;
    }
    const reply = will.properties.responseTopic !== undefined ? safeSubject(will.properties.responseTopic) : null;
    this.publish(session, subject, reply, propertiesToHeaders(will.properties, will.qos, will.retain), will.payload, will.qos, will.retain);
    if (will.retain) this.retain(session.account, subject, { topic: will.topic, payload: will.payload, qos: will.qos, properties: will.properties });
    this.server.flushDirty();
  }

  /**
   * Publishes like a NATS client's PUB/HPUB from `session` (its QoS and retain flag read by MQTT
   * subscribers' sessions). Returns whether anyone received it.
   */
  publish(session: MqttSession, subject: string, reply: string | null, headers: Buffer | null, payload: Buffer, qos: 0 | 1 | 2, retain = false): boolean {
    if (this.run.publisher !== null) this.flushQos0Run(); // in order after the QoS 0 run before it
    if (!isValidPublishSubject(subject)) return false;
    // The frame a NATS client's PUB/HPUB would be, so NATS subscribers copy its tail as usual:
    // `PUB <subject> [reply] <sizes>\r\n<headers><payload>\r\n`.
    const headerSize = headers === null ? -1 : headers.length;
    const total = payload.length + (headers === null ? 0 : headers.length);
    const head = session.frameHead(subject, reply, headers !== null);
    const sizes = headers === null ? `${total}` : `${headerSize} ${total}`;
    const lineLength = head.bytes.length + sizes.length + 2;
    const frame = Buffer.allocUnsafe(lineLength + total + 2);
    head.bytes.copy(frame, 0);
    frame.write(sizes, head.bytes.length, "latin1");
    frame[lineLength - 2] = 13;
    frame[lineLength - 1] = 10;
    let at = lineLength;
    if (headers !== null) at += headers.copy(frame, at);
    at += payload.copy(frame, at);
    frame[at] = 13;
    frame[at + 1] = 10;
    const subjectStart = headers === null ? 4 : 5;
    const subjectEnd = subjectStart + head.subjectLength;
    const replyStart = reply === null ? -1 : subjectEnd + 1;
    const replyEnd = reply === null ? -1 : head.bytes.length - 1;
    // Message tracing (src/trace): an MQTT 5 publisher starts a trace with a `Nats-Trace-Dest` user property,
    // or a sampled `traceparent` where its account has msg_trace, exactly as a NATS client's HPUB does.
    let trace: MsgTrace | null = null;
    if (headers !== null && hasTraceHeader(headers, 0, headers.length)) {
      const started = startTrace(this.server, session, session.account, frame, subjectStart, subjectEnd, lineLength, headerSize, total);
      if (started === SKIP) return false;
      if (started === SAMPLED_OUT) return this.publish(session, subject, reply, disabledHeaders(headers), payload, qos, retain);
      trace = started;
    }
    const stats = this.server.stats;
    stats.inMsgs++;
    stats.inBytes += total;
    session.publishingQos = qos;
    session.publishingRetain = retain;
    let result = session.account.sublist.match(subject);
    if (trace !== null) result = tracedResult(result, trace, session, false);
    const delivered = deliverToMatches(result, session, false, frame, subjectStart, subjectEnd, replyStart, replyEnd, headerSize, lineLength, lineLength + total, subjectEnd + 1);
    if (trace !== null) trace.release();
    session.publishingQos = 0;
    session.publishingRetain = false;
    if (!delivered) stats.noInterestMsgs++;
    return delivered;
  }

  /**
   * A QoS 0 message without properties from an MQTT client (connection.ts publishQos0Fast): when every
   * subscription it matches is an MQTT session's (no NATS client, route, leaf link, stream, or queue
   * group), it joins the run of this read (src/mqtt/qos0-run.ts) and no NATS frame is built; otherwise
   * it is published like any other.
   */
  publishQos0(session: MqttSession, subject: string, topic: Buffer, buf: Buffer, payloadStart: number, payloadEnd: number): void {
    const run = this.run;
    if (run.publisher === session && run.subject === subject && run.fits(payloadEnd - payloadStart)) {
      // The same publisher and topic as the message before, in the same read: the same subscribers.
      const stats = this.server.stats;
      stats.inMsgs++;
      stats.inBytes += payloadEnd - payloadStart;
      run.append(buf, payloadStart, payloadEnd);
      return;
    }
    if (run.publisher !== null) this.flushQos0Run();
    const result = session.account.sublist.match(subject);
    const plain = result.plain;
    let mqttOnly = result.queues.length === 0;
    for (let k = 0; mqttOnly && k < plain.length; k++) mqttOnly = plain[k] instanceof MqttSubscription;
    if (!mqttOnly) {
      this.publish(session, subject, null, null, buf.subarray(payloadStart, payloadEnd), 0);
      return;
    }
    const stats = this.server.stats;
    stats.inMsgs++;
    stats.inBytes += payloadEnd - payloadStart;
    if (plain.length === 0) {
      stats.noInterestMsgs++;
      return;
    }
    run.begin(session, subject, topic, plain);
    run.append(buf, payloadStart, payloadEnd);
  }

  /**
   * Delivers the QoS 0 run (publishQos0): at the end of the publisher's read, before any other packet of
   * it is handled, and before any other publish, so every subscriber gets messages in the order sent.
   */
  flushQos0Run(): void {
    const run = this.run;
    const publisher = run.publisher;
    if (publisher === null) return;
    run.publisher = null; // a delivery that publishes (a will of a connection it closes) finds no run
    const subs = run.subs;
    for (let k = 0; k < subs.length; k++) {
      const sub = subs[k] as MqttSubscription;
      (sub.client as MqttSession | RemoteSessionKeeper).deliverQos0(sub, run, publisher);
    }
    run.clear();
  }

  /** Keepalive ([MQTT-3.1.2-24]: 1.5 × keep alive without a packet closes) and QoS 1/2 redelivery after ack_wait. */
  private sweep(): void {
    const now = Date.now();
    if (now >= this.nextRecordSeqsPrune) this.pruneRecordSeqs(now);
    for (const conn of this.connections.values()) {
      if (conn.closed) continue;
      if (conn.level === 0 || conn.session === null) {
        if (!this.loading && now - conn.startedAt > this.authTimeoutMs) conn.close("Authentication Timeout");
        continue;
      }
      if (conn.keepAlive > 0 && now - conn.lastActivity > conn.keepAlive * 1500) {
        this.server.log.debug(`${conn.logPrefix} - Keep alive timeout`);
        conn.closeWith(ReasonCode.KeepAliveTimeout, "keep alive timeout");
        continue;
      }
      if (this.options.ackWaitMs > 0) conn.session.redeliver(now, this.options.ackWaitMs);
      if (now - conn.lastActivity >= SWEEP_MS) conn.releaseIdleBuffer(conn.outMsgsAtLastSweep);
      else conn.trimOutbound();
      conn.outMsgsAtLastSweep = conn.outMsgs;
    }
    this.server.flushDirty();
  }

  /** Forgets the record sequences older than RECORD_SEQ_KEEP_MS of client ids no keeper is for. */
  private pruneRecordSeqs(now: number): void {
    this.nextRecordSeqsPrune = now + RECORD_SEQ_KEEP_MS;
    for (const [key, { at }] of this.recordSeqs) {
      if (now - at > RECORD_SEQ_KEEP_MS && !this.remoteSessions.has(key)) this.recordSeqs.delete(key);
    }
  }

  /** How long a client has to send CONNECT (nats-server's auth timeout; 2 s without authentication). */
  private get authTimeoutMs(): number {
    return this.server.auth?.mqttAuthTimeoutMs ?? 2000;
  }

  /** Lame duck mode: no new MQTT clients; the connected ones stay. */
  stopAccepting(): void {
    this.listener?.stop();
    this.listener = null;
  }

  /** Server shutdown: MQTT 5 clients are told (DISCONNECT 0x8B), then every connection is closed; kept sessions stay in the stream layer. */
  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.listener?.stop();
    this.listener = null;
    for (const session of this.sessions.values()) session.persisted = false; // shutting down ends nothing on disk
    for (const conn of [...this.connections.values()]) conn.closeWith(ReasonCode.ServerShuttingDown, "server shutting down");
    for (const session of this.sessions.values()) session.close();
    this.sessions.clear();
    for (const keeper of this.remoteSessions.values()) keeper.close();
    this.remoteSessions.clear();
    for (const state of this.accounts.values()) state.store?.close();
  }
}

/** The longest a runtime timer waits; past it, it fires at once (with a TimeoutOverflowWarning). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Calls `fire` at `due` (ms since the epoch), also when that is further off than a timer can wait (a
 * session expiry or will delay of up to 136 years): a long wait is re-armed in steps, each new timer
 * handed to `rearmed` so the caller can still cancel it.
 */
function timerUntil(due: number, fire: () => void, rearmed: (t: ReturnType<typeof setTimeout>) => void): ReturnType<typeof setTimeout> {
  const wait = Math.max(0, due - Date.now());
  return setTimeout(() => {
    if (due - Date.now() > 0) rearmed(timerUntil(due, fire, rearmed));
    else fire();
  }, Math.min(wait, MAX_TIMER_MS));
}

function sessionKey(account: Account, clientId: string): string {
  return `${account.name}\u0000${clientId}`;
}

function safeSubject(topic: string): string | null {
  try {
    return topicToSubject(topic);
  } catch {
    return null;
  }
}
