// One JetStream for the whole cluster (nats-server's jetstream_cluster.go, for R1 streams): every JetStream
// node subscribes to $JS.API.> and sees every request, and exactly one of them answers:
//
//   request                                       answered by
//   INFO, STREAM.CREATE/UPDATE/DELETE/NAMES/LIST  the meta leader (create, update and delete go through the
//                                                 meta log; the node holding the stream answers once it applied)
//   STREAM.INFO/PURGE/MSG.*, CONSUMER.*           the node holding the stream (any node: no meta leader needed)
//   anything about a stream nobody holds          the meta leader (its "stream not found")
//   anything needing a leader while there is none 10008, from the lowest-id reachable JetStream node
//
// The account's JetStream (account.ts, api.ts) runs unchanged under this: a node holding a stream runs the
// request through its own API as a single server would (JetStreamApi.handleLocally). Messages, consumers'
// pull requests, acks and direct gets already reach the stream's node through the routes' interest.
import path from "node:path";
import type { Cluster } from "../../cluster/cluster.ts";
import type { InternalMessage } from "../../internal-client.ts";
import { InternalClient } from "../../internal-client.ts";
import type { Subscription } from "../../subscription.ts";
import type { AccountJetStream } from "../account.ts";
import { checkSubjectOverlap, jsonObject, type JetStreamApi } from "../api.ts";
import { subjectMatches } from "../../subjects/subject.ts";
import { subjectsCollide, type StreamConfig } from "../config.ts";
import { ApiError, apiError } from "../errors.ts";
import { advisoriesOf, withAdvisories } from "../action-advisories.ts";
import type { JetStream } from "../jetstream.ts";
import { nuid } from "../nuid.ts";
import { rfc3339, ZERO_TIME } from "../wire.ts";
import { API_AUDIT_SUBJECT, apiAudit, GATHER_INBOX_PREFIX } from "../api-audit.ts";
import { carry, groupName, uncarry, type CarriedRequest, type MetaCommand, type StreamAssignment } from "./meta.ts";
import { MetaGroup } from "./meta-group.ts";
import { RouteTransport } from "./route-transport.ts";
import { StreamReplica, streamGroupName } from "./stream-replica.ts";

type Body = Record<string, unknown>;

const NAMES_LIMIT = 1024;
const LIST_LIMIT = 256;
/** How long the meta leader waits for the holders' stream infos (list, account info). */
const GATHER_TIMEOUT_MS = 2000;
/** How often a node retries recording the streams it had before it joined. */
const ADOPT_RETRY_MS = 2000;

export class JetStreamCluster {
  readonly transport: RouteTransport;
  readonly meta: MetaGroup;
  /** Streams this node had before it joined (a fresh meta log), to record in the meta group. */
  private adoptions: { account: string; name: string }[] = [];
  private adoptTimer: ReturnType<typeof setInterval> | null = null;
  private systemClient: InternalClient | null = null;
  private stepdownSub: Subscription | null = null;
  private serverRemoveSub: Subscription | null = null;
  /** This node was removed from the meta group (SERVER.REMOVE): its JetStream takes no part any more. */
  private removed = false;
  /** This node's replicas of replicated streams, by account and stream name. */
  private readonly replicas = new Map<string, StreamReplica>();
  /** Per account: an internal client that asks the holders (list, account info), and its waiting requests. */
  private readonly askers = new Map<string, { client: InternalClient; inbox: string; waiting: Map<string, (body: Body | null) => void> }>();

  constructor(
    readonly js: JetStream,
    readonly cluster: Cluster,
  ) {
    const log = js.server.log;
    this.transport = new RouteTransport(cluster, log);
    this.meta = new MetaGroup({
      transport: this.transport,
      dir: path.join(js.dir, "$SYS", "_js_", "_meta_"),
      seeds: js.server.options.routes.map((r) => r.replace(/^[a-z]+:\/\//, "").replace(/^localhost:/, "127.0.0.1:")),
      log,
      applied: (command, changed, prior) => this.applied(command, changed, prior),
      leaderChanged: (leader) => this.metaLeaderChanged(leader),
      restored: () => this.reconcile(),
      removedHere: () => this.serverRemoved(this.selfId),
    });
    this.transport.onPeerChange = (peer, up) => {
      if (up) return this.meta.peerReachable(peer.id);
      // Its route closed: the groups it led here elect sooner (RaftNode.peerUnreachable).
      this.meta.raft?.peerUnreachable(peer.id);
      for (const replica of this.replicas.values()) replica.raft.peerUnreachable(peer.id);
    };
  }

  get selfId(): string {
    return this.transport.selfId;
  }

  /** The meta leader hands over to a caught-up voter; `{"success":true}`, or 10008 when no other voter can take it. */
  private metaStepDown(answer: (body: Body) => void): void {
    const moved = this.meta.raft!.stepDown();
    answer(moved ? { success: true } : { error: apiError("ClusterNotAvailable").json });
  }

  /** An answer to a system account request (META.LEADER.STEPDOWN, SERVER.REMOVE), then its audit advisory there. */
  private answerSystem(client: InternalClient, m: InternalMessage, type: string, body: Body): void {
    const response = JSON.stringify({ type: `io.nats.jetstream.api.v1.${type}`, ...body });
    if (m.reply !== null) client.publish(m.reply, Buffer.from(response));
    client.publish(API_AUDIT_SUBJECT, Buffer.from(JSON.stringify(apiAudit(this.js.server, m, response, this.js.options.domain))));
  }

  /**
   * $JS.API.META.LEADER.STEPDOWN is a system account request that only the meta leader subscribes to
   * (nats-server's jsLeaderStepDownRequest): leadership of the meta group moves to a caught-up voter. (A
   * JetStream account's request for it reaches the meta leader through takeRequest, as in nats-server 2.9.)
   */
  private metaLeaderChanged(leader: string | undefined): void {
    const system = this.js.server.accounts.system;
    if (system === null) return;
    if (leader === this.selfId && this.stepdownSub === null) {
      this.systemClient ??= new InternalClient(this.js.server, "jetstream-cluster (system)", system);
      const client = this.systemClient;
      this.stepdownSub = client.subscribe("$JS.API.META.LEADER.STEPDOWN", (m) => {
        if (m.reply === null || !this.meta.isLeader) return;
        this.metaStepDown((body) => this.answerSystem(client, m, "meta_leader_stepdown_response", body));
      });
      this.serverRemoveSub = client.subscribe("$JS.API.SERVER.REMOVE", (m) => {
        if (m.reply === null || !this.meta.isLeader) return;
        this.answerSystem(client, m, "meta_server_remove_response", this.serverRemove(m));
      });
    } else if (leader !== this.selfId && this.stepdownSub !== null) {
      this.systemClient?.unsubscribe(this.stepdownSub);
      this.stepdownSub = null;
      if (this.serverRemoveSub !== null) this.systemClient?.unsubscribe(this.serverRemoveSub);
      this.serverRemoveSub = null;
    }
  }

  /**
   * $JS.API.SERVER.REMOVE (system account, the meta leader answers; nats-server's jsLeaderServerRemoveRequest):
   * `{"peer": <server name>}` or `{"peer_id": <member id>}` leaves the meta group for good, and the streams
   * it held get a replacement replica where a node is free (see remap).
   */
  private serverRemove(m: InternalMessage): Body {
    try {
      const body = nonEmptyRequest(m);
      const byId = typeof body.peer_id === "string" && body.peer_id !== "" ? body.peer_id : undefined;
      const found = byId !== undefined ? this.meta.peers.find((id) => id === byId) : this.meta.peers.find((id) => this.serverNameOf(id) === body.peer);
      if (found === undefined) throw apiError("ClusterServerNotMember");
      if (!this.meta.propose({ op: "peer.remove", peer: found })) throw apiError("ClusterNotAvailable");
      return { success: true };
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      return { error: error.json };
    }
  }

  /**
   * $JS.API.STREAM.PEER.REMOVE.<stream> `{"peer": <server name>}` (nats-server's jsStreamRemovePeerRequest,
   * answered by the meta leader): that replica leaves the stream; a free node takes its place if there is
   * one (else the stream runs on fewer replicas and the answer is 10075, as nats-server's).
   */
  private peerRemove(api: JetStreamApi, m: InternalMessage, name: string): boolean {
    if (m.reply === null) return true;
    const type = "stream_remove_peer_response";
    return this.byLeader(api, m, type, () => {
      const body = nonEmptyRequest(m);
      if (typeof body.peer !== "string" || body.peer === "") throw apiError("BadRequest");
      const a = this.meta.state.stream(api.accountName, name);
      if (a === undefined) throw apiError("StreamNotFound");
      const peer = a.peers.find((id) => this.serverNameOf(id) === body.peer);
      if (peer === undefined) throw apiError("ClusterPeerNotMember");
      const replaced = this.removePeerFromStream(a, peer);
      if (!replaced) throw apiError("PeerRemap");
      api.answer(m, type, { success: true });
    });
  }

  /**
   * The meta leader takes `peer` out of a stream's replicas (nats-server's removePeerFromStream): replaced
   * by a reachable voter not holding it (least loaded), or, if none is free, just removed (an R1 stream
   * keeps its only replica). Whether it was replaced.
   */
  private removePeerFromStream(a: StreamAssignment, peer: string): boolean {
    let peers: string[];
    let replaced = true;
    try {
      const [spare] = this.place({ ...a.config, num_replicas: 1 }, a.peers);
      peers = a.peers.map((id) => (id === peer ? spare! : id));
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      replaced = false;
      if (a.peers.length === 1) return false;
      peers = a.peers.filter((id) => id !== peer);
    }
    this.meta.propose({ op: "stream.peers", account: a.account, name: a.name, peers });
    return replaced;
  }

  start(): void {
    if (this.meta.fresh) {
      for (const ctx of this.js.accounts.values()) for (const name of ctx.streams.keys()) this.adoptions.push({ account: ctx.account.name, name });
    }
    this.meta.start();
    this.attachReplicas();
    if (this.adoptions.length > 0) this.adoptTimer = setInterval(() => this.adopt(), ADOPT_RETRY_MS);
  }

  stop(): void {
    if (this.adoptTimer) clearInterval(this.adoptTimer);
    for (const replica of this.replicas.values()) replica.stop(false);
    this.replicas.clear();
    this.meta.stop();
    for (const asker of this.askers.values()) asker.client.close();
    this.systemClient?.close();
  }

  // ---- who answers ---------------------------------------------------------------------------------

  /** Called for every API request this node sees; true when handled here (answered, or left to another node). */
  takeRequest(api: JetStreamApi, m: InternalMessage, t: string[], type: string | null): boolean {
    const [, , area, op, a] = t;
    const account = api.accountName;
    if (this.removed) return true; // SERVER.REMOVE took this node out: the others answer
    if (area === "STREAM" && op === "LEADER" && a === "STEPDOWN" && t.length === 6) return this.streamStepDown(api, m, t[5]!, null);
    if (area === "STREAM" && op === "PEER" && a === "REMOVE" && t.length === 6) return this.peerRemove(api, m, t[5]!);
    if (area === "CONSUMER" && op === "LEADER" && a === "STEPDOWN" && t.length === 7) return this.streamStepDown(api, m, t[5]!, t[6]!);
    if (area === "META" && op === "LEADER" && a === "STEPDOWN" && t.length === 5) {
      // nats-server 2.9 takes it from a JetStream account too (its API reaches the system's subscription).
      if (m.reply !== null && this.meta.isLeader) this.metaStepDown((body) => api.answer(m, "meta_leader_stepdown_response", body));
      return true;
    }
    if (type === null) return true;
    if (area === "INFO") return this.byLeader(api, m, type, () => this.accountInfo(api, m, type));
    if (area === "STREAM") {
      switch (op) {
        case "CREATE":
          return this.byLeader(api, m, type, () => this.create(api, m, a!, type));
        case "UPDATE":
        case "DELETE":
          if (this.meta.state.stream(account, a!) === undefined) return this.byLeader(api, m, type, () => api.handleLocally(m));
          return this.byLeader(api, m, type, () => this.change(api, m, a!, type, op));
        case "NAMES":
          return this.byLeader(api, m, type, () => api.answer(m, type, this.names(api, m)));
        case "LIST":
          return this.byLeader(api, m, type, () => void this.list(api, m, type));
      }
      return this.byHolder(api, m, type, op === "MSG" ? t[5]! : a!); // STREAM.MSG.GET|DELETE.<stream>
    }
    if (area === "CONSUMER") return this.byHolder(api, m, type, op === "DURABLE" ? t[5]! : a!);
    return false;
  }

  /** The meta leader runs `run`; with no leader, 10008 from one node; the others stay quiet. */
  private byLeader(api: JetStreamApi, m: InternalMessage, type: string, run: () => void): boolean {
    if (this.meta.isLeader) {
      try {
        run();
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        api.answerError(m, type, error);
      }
    } else if (this.meta.leader === undefined && this.answersLeaderless()) {
      api.answerError(m, type, apiError("ClusterNotAvailable"));
    }
    return true;
  }

  /** Requests about one stream: its holder answers as a single server; a stream nobody holds, the leader. */
  private byHolder(api: JetStreamApi, m: InternalMessage, type: string, stream: string): boolean {
    const assignment = this.meta.state.stream(api.accountName, stream);
    if (assignment === undefined) return this.byLeader(api, m, type, () => api.handleLocally(m));
    if (this.allOffline(assignment)) return this.offline(api, m, type);
    if (assignment.peers.length === 1) return assignment.peers[0] !== this.selfId;
    // Replicated: the stream's leader answers; what changes the stream goes through its log first.
    const replica = this.replicas.get(replicaKey(api.accountName, stream));
    if (replica === undefined) return true;
    // An ephemeral consumer stays on the node that made it: that node answers for it while it is there.
    const consumer = consumerNameOf(m.subject.split("."));
    const holder = consumer === null ? undefined : replica.ephemeralHolder(consumer);
    if (holder !== undefined && holder !== replica.leader && (holder === this.selfId || this.transport.isAlive(holder))) {
      return holder !== this.selfId;
    }
    if (!replica.isLeader) return true;
    if (!replica.ready) {
      // A new leader: the request waits until its consumers run (a "consumer not found" would be wrong).
      replica.whenReady(() => {
        if (!this.byHolder(api, m, type, stream)) api.handleLocally(m);
      });
      return true;
    }
    const t = m.subject.split(".");
    if (t[2] === "CONSUMER" && (t[3] === "NAMES" || t[3] === "LIST") && t.length === 5 && m.reply !== null && replica.ephemeralsHeldElsewhere().length > 0) {
      void this.consumersAcrossNodes(api, m, type, replica, t[3]);
      return true;
    }
    // A consumer create is answered once its state is in the group's log (committed), as nats-server answers
    // once the assignment is: a leader killed right after the answer does not take the consumer with it.
    const createsConsumer = t[2] === "CONSUMER" && (t[3] === "CREATE" || (t[3] === "DURABLE" && t[4] === "CREATE"));
    if (createsConsumer && m.reply !== null) {
      const body = api.handleLocallyBody(m);
      if (body.error !== undefined) api.answer(m, type, body);
      else replica.whenConsumersCommitted((ok) => {
        if (!ok) return api.answerError(m, type, apiError("ClusterNotAvailable"));
        api.answer(m, type, body);
        // A new durable's first leader (an ephemeral stays on one node: no group, no advisory, as nats-server's R1 ones).
        const created = (body as { name?: string; config?: { durable_name?: string } });
        const ctx = this.js.accounts.get(api.accountName);
        if (ctx !== undefined && created.config?.durable_name !== undefined && created.name !== undefined) this.consumerLeaderElected(ctx, assignment, created.name);
      });
      return true;
    }
    const changesStream = (t[3] === "PURGE" && t.length === 5) || (t[3] === "MSG" && t[4] === "DELETE");
    if (!changesStream) return false;
    if (!replica.proposeRequest(carry(m, this.js.server))) api.answerError(m, type, apiError("ClusterNotAvailable"));
    return true;
  }

  /** Is every node holding the stream down (this one holds none of it)? */
  private allOffline(a: StreamAssignment): boolean {
    return a.peers.every((id) => id !== this.selfId && !this.transport.isAlive(id));
  }

  /**
   * A stream whose every replica is down: the meta leader says so to INFO requests (nats-server's 10118 and
   * 10119); anything else about it gets no answer, as in nats-server.
   */
  private offline(api: JetStreamApi, m: InternalMessage, type: string): boolean {
    if (type === "stream_info_response") return this.byLeader(api, m, type, () => api.answerError(m, type, apiError("StreamOffline")));
    if (type === "consumer_info_response") return this.byLeader(api, m, type, () => api.answerError(m, type, apiError("ConsumerOffline")));
    return true;
  }

  /**
   * $JS.API.STREAM.LEADER.STEPDOWN.<stream>: the stream's leader hands over to a caught-up replica. And
   * CONSUMER.LEADER.STEPDOWN.<stream>.<consumer>: a consumer of a replicated stream runs on its stream's
   * leader (stream-replica.ts), so it moves with the stream's leadership.
   */
  private streamStepDown(api: JetStreamApi, m: InternalMessage, stream: string, consumer: string | null): boolean {
    if (m.reply === null) return true;
    const type = consumer === null ? "stream_leader_stepdown_response" : "consumer_leader_stepdown_response";
    const assignment = this.meta.state.stream(api.accountName, stream);
    if (assignment === undefined) {
      return this.byLeader(api, m, type, () => api.answerError(m, type, apiError("StreamNotFound")));
    }
    const replica = this.replicas.get(replicaKey(api.accountName, stream));
    if (assignment.peers.length === 1) {
      // An R1 stream has nobody to hand over to: its holder says so (nats-server's answer for a single replica).
      if (assignment.peers[0] !== this.selfId) return true;
      const exists = consumer === null || api.context?.streams.get(stream)?.consumers.has(consumer) === true;
      if (exists) api.answer(m, type, { success: true });
      else api.answerError(m, type, apiError("ConsumerNotFound"));
      return true;
    }
    if (replica === undefined || !replica.isLeader) return true;
    if (consumer !== null && !replica.stream.consumers.has(consumer)) {
      api.answerError(m, type, apiError("ConsumerNotFound"));
      return true;
    }
    if (replica.stepDown()) api.answer(m, type, { success: true });
    else api.answerError(m, type, apiError("ClusterNotAvailable"));
    return true;
  }

  /**
   * With no meta leader, one node answers 10008: none if a reachable peer knows a leader (it answers, or the
   * leader does), else the lowest id this node can reach (all agree when the routes do).
   */
  private answersLeaderless(): boolean {
    if (this.meta.peerKnowsLeader()) return false;
    for (const peer of this.transport.peers.values()) if (peer.alive && peer.id < this.selfId) return false;
    return true;
  }

  /**
   * Stream info and consumer info carry the cluster block (nats-server's ClusterInfo): the cluster, the
   * leader's server name, and for a replicated stream the other replicas as the leader sees them (a
   * consumer of a replicated stream shares its stream's group: the same block).
   */
  decorate(body: Body, account: string): void {
    if (body.error !== undefined || body.config === undefined) return;
    const isStreamInfo = body.state !== undefined && body.created !== undefined;
    const isConsumerInfo = body.stream_name !== undefined && body.delivered !== undefined;
    if (!isStreamInfo && !isConsumerInfo) return;
    const stream = isStreamInfo ? (body.config as { name: string }).name : (body.stream_name as string);
    const replica = this.replicas.get(replicaKey(account, stream));
    if (replica === undefined) {
      body.cluster = { name: this.cluster.name, leader: this.js.server.serverName };
      return;
    }
    // Consumers held by other nodes count too (nats-server counts every consumer the stream has).
    if (isStreamInfo) (body.state as { consumer_count: number }).consumer_count = Math.max(replica.consumerCount, (body.state as { consumer_count: number }).consumer_count);
    const leader = replica.leader;
    body.cluster = {
      name: this.cluster.name,
      ...(leader === undefined ? {} : { leader: this.serverNameOf(leader) }),
      replicas: replica.replicasInfo((id) => this.serverNameOf(id), (id) => this.transport.isAlive(id)),
    };
  }

  /** What the meta group knows of a stream none of whose replicas is up: its configuration, an empty state. */
  private offlineInfo(a: StreamAssignment): Body {
    return {
      config: a.config,
      created: a.created,
      state: { messages: 0, bytes: 0, first_seq: 0, first_ts: ZERO_TIME, last_seq: 0, last_ts: ZERO_TIME, consumer_count: 0 },
      cluster: { name: this.cluster.name, replicas: a.peers.map((id) => ({ name: this.serverNameOf(id), current: false, offline: true, active: 0, peer: id })) },
    };
  }

  /** The replicas of a stream as advisories list them (nats-server's PeerInfo). */
  private replicaNames(a: StreamAssignment): Body[] {
    return a.peers.map((id) => ({ name: this.serverNameOf(id), current: this.transport.isAlive(id), active: 0, ...(this.transport.isAlive(id) ? {} : { offline: true }), peer: id }));
  }

  private serverNameOf(id: string): string {
    return id === this.selfId ? this.js.server.serverName : (this.transport.peers.get(id)?.serverName ?? id);
  }

  // ---- through the meta log ------------------------------------------------------------------------

  private create(api: JetStreamApi, m: InternalMessage, name: string, type: string): void {
    const account = api.accountName;
    const config = api.checkStreamCreate(name, m);
    const existing = this.meta.state.stream(account, name);
    if (existing !== undefined) {
      // The same configuration again is answered by its holder (an idempotent create); another is refused here.
      if (JSON.stringify(existing.config) !== JSON.stringify(config)) throw apiError("StreamNameExist");
    } else {
      const others = this.meta.state.accountStreams(account).flatMap((s) => s.config.subjects);
      checkSubjectOverlap(config.subjects, others);
      // The account's limits hold for its streams in the whole cluster, not per node.
      api.context?.checkClusterStreamLimits(config, true, this.meta.state.accountStreams(account).map((s) => s.config));
    }
    const peers = existing?.peers ?? this.place(config);
    const assignment: StreamAssignment = { account, name, config, peers, created: rfc3339(Date.now()) };
    this.proposeOr10008(api, m, type, { op: "stream.create", assignment, request: carry(m, this.js.server) });
  }

  private change(api: JetStreamApi, m: InternalMessage, name: string, type: string, op: "UPDATE" | "DELETE"): void {
    const account = api.accountName;
    const request = carry(m, this.js.server);
    if (op === "DELETE") return this.proposeOr10008(api, m, type, { op: "stream.delete", account, name, request });
    const config = api.checkStreamCreate(name, m); // the same shape checks; the holder checks what may change
    const existing = this.meta.state.stream(account, name)!;
    const others = this.meta.state.accountStreams(account).filter((s) => s.name !== name).flatMap((s) => s.config.subjects);
    checkSubjectOverlap(config.subjects, others);
    api.context?.checkClusterStreamLimits(config, false, this.meta.state.accountStreams(account).map((s) => s.config));
    const wanted = Math.max(1, config.num_replicas);
    if (wanted < existing.peers.length) return void this.scaleDown(api, m, type, existing, config, wanted);
    // Scaling up adds replicas (least loaded first).
    const more = wanted - existing.peers.length;
    const peers = more > 0 ? [...existing.peers, ...this.place({ ...config, num_replicas: more }, existing.peers)] : undefined;
    this.proposeOr10008(api, m, type, { op: "stream.update", account, name, config, request, ...(peers ? { peers } : {}) });
  }

  /**
   * Scaling down (as nats-server's jsClusteredStreamUpdateRequest): the replicas kept are the stream's
   * leader (asked for, if this node is not a replica) and then the others in order, reachable ones first;
   * the removed ones stop and delete their copy when they apply the update, the group's leader removes them
   * from its voters (stream-replica.ts wantPeers), and a stream down to one replica is a plain R1 stream.
   */
  private async scaleDown(api: JetStreamApi, m: InternalMessage, type: string, existing: StreamAssignment, config: StreamConfig, wanted: number): Promise<void> {
    const leader = await this.streamLeader(api, existing);
    const alive = (id: string) => this.transport.isAlive(id) || id === this.selfId;
    const order = [...existing.peers].sort((x, y) => Number(y === leader) - Number(x === leader) || Number(alive(y)) - Number(alive(x)));
    const peers = order.slice(0, wanted);
    this.proposeOr10008(api, m, type, { op: "stream.update", account: existing.account, name: existing.name, config, request: carry(m, this.js.server), peers });
  }

  /** The member id of a replicated stream's leader: this node's replica knows it, else the stream's info says (undefined: none answered). */
  private async streamLeader(api: JetStreamApi, a: StreamAssignment): Promise<string | undefined> {
    const replica = this.replicas.get(replicaKey(a.account, a.name));
    if (replica !== undefined) return replica.leader;
    const info = await this.streamInfo(api, a);
    const name = (info?.cluster as { leader?: string } | undefined)?.leader;
    if (name === undefined) return undefined;
    if (name === this.js.server.serverName) return this.selfId;
    for (const peer of this.transport.peers.values()) if (peer.serverName === name) return peer.id;
    return undefined;
  }

  private proposeOr10008(api: JetStreamApi, m: InternalMessage, type: string, command: MetaCommand): void {
    if (!this.meta.propose(command)) api.answerError(m, type, apiError("ClusterNotAvailable"));
  }

  /**
   * Where a new stream goes: the reachable voter holding fewest streams (ties: at random), among those
   * whose server_tags include every placement tag (nats-server's selectPeerGroup, by count not bytes).
   */
  private place(config: StreamConfig, exclude: readonly string[] = []): string[] {
    const placement = config.placement as { cluster?: string; tags?: string[] } | undefined;
    const noPeers = (detail = "") => apiError("ClusterNoPeers", { err: `no suitable peers for placement${detail}` });
    if (placement?.cluster && placement.cluster !== this.cluster.name) throw noPeers();
    const wanted = (placement?.tags ?? []).map((t) => t.toLowerCase());
    const load = this.meta.state.load();
    const tagsOf = (id: string) => (id === this.selfId ? this.js.server.options.serverTags : (this.transport.peers.get(id)?.tags ?? []));
    const candidates = this.meta.peers
      .filter((id) => this.transport.isAlive(id) && !exclude.includes(id) && !this.meta.state.removed.has(id))
      .filter((id) => wanted.every((t) => tagsOf(id).map((x) => x.toLowerCase()).includes(t)))
      .map((id) => ({ id, load: load.get(id) ?? 0, tie: Math.random() }))
      .sort((x, y) => x.load - y.load || x.tie - y.tie);
    const replicas = Math.max(1, config.num_replicas);
    if (candidates.length === 0) throw noPeers(wanted.length > 0 ? `, tags not matched [${wanted.map((t) => `'${t}'`).join(", ")}]` : "");
    if (candidates.length < replicas) throw noPeers(this.meta.peers.length >= replicas ? ", peer offline" : ", insufficient resources");
    return candidates.slice(0, replicas).map((c) => c.id);
  }

  /**
   * Every node, for each committed command: the nodes named by it act (create, update, delete their copy).
   * One answers the client: an R1 stream's holder; for a replicated stream its leader (at create, the first
   * replica, once the new group has a leader).
   */
  private applied(command: MetaCommand, changed: boolean, prior: StreamAssignment | undefined): void {
    switch (command.op) {
      case "stream.create": {
        const a = this.meta.state.stream(command.assignment.account, command.assignment.name);
        if (a === undefined || !a.peers.includes(this.selfId)) break;
        const ctx = this.js.accounts.get(a.account);
        if (ctx === undefined) break;
        const request = uncarry(command.request);
        const first = this.firstAlivePeer(a) === this.selfId;
        const body = ctx.api.handleLocallyBody(request);
        // The holder could not create it (limits, a local name clash): the assignment goes.
        if (body.error !== undefined && changed && !ctx.streams.has(a.name)) {
          this.meta.propose({ op: "stream.drop", account: a.account, name: a.name, peer: this.selfId });
        }
        const replica = this.attachReplica(a);
        if (!first || request.reply === null) break;
        if (replica === null) {
          ctx.api.answer(request, "stream_create_response", body);
          break;
        }
        // A new group elects its first leader at once; the same create again (an idempotent create) must not
        // disturb the leader it has: the answer waits for nothing then.
        if (changed) replica.campaign();
        replica.whenLeaderKnown(5000, () => {
          const stream = ctx.streams.get(a.name);
          const answer = body.error !== undefined || stream === undefined ? body : withAdvisories<Body>({ ...(stream.info() as unknown as Body), did_create: true }, advisoriesOf(body));
          if (answer.error === undefined) this.decorate(answer, a.account);
          ctx.api.answer(request, "stream_create_response", answer);
        });
        break;
      }
      case "stream.update": {
        const a = this.meta.state.stream(command.account, command.name);
        const ctx = this.js.accounts.get(command.account);
        if (prior === undefined || a === undefined || ctx === undefined) break;
        this.js.server.log.debug(`JetStream cluster: stream ${a.name} update: replicas ${prior.peers.join(", ")} → ${a.peers.join(", ")}`);
        if (!a.peers.includes(this.selfId)) {
          if (prior.peers.includes(this.selfId)) this.removedReplica(a, prior, command.request);
          break;
        }
        if (a.peers.length !== prior.peers.length) this.js.server.log.info(`JetStream cluster: stream ${a.name} (account ${a.account}) now has replicas ${a.peers.join(", ")}`);
        if (!prior.peers.includes(this.selfId)) {
          // A new replica (scaled up): an empty copy joins the group, which fills it (stream-replica.ts sync).
          if (!ctx.streams.has(a.name)) ctx.createStream(a.config);
          this.attachReplica(a, []);
          break;
        }
        const answers = this.answersFor(prior);
        if (a.peers.length < prior.peers.length) {
          // Scaled down: down to one, this copy is a plain R1 stream (its durables run here); else the group's
          // leader removes the others from its voters.
          const key = replicaKey(a.account, a.name);
          if (a.peers.length === 1) {
            this.replicas.get(key)?.leaveGroup();
            this.replicas.delete(key);
          } else this.replicas.get(key)?.wantPeers(a.peers);
        }
        const body = answers ? ctx.api.handleLocally(uncarry(command.request)) : ctx.api.handleLocallyBody(uncarry(command.request));
        const stream = ctx.streams.get(command.name);
        if (body?.error !== undefined && stream !== undefined && answers) {
          this.meta.propose({ op: "stream.config", account: command.account, name: command.name, config: stream.config });
        }
        if (a.peers.length > prior.peers.length) {
          // An R1 stream becomes a group of one here first (its holder founds it), then every replica's
          // group leader adds the new ones.
          const replica = this.attachReplica(a, prior.peers.length === 1 ? [this.selfId] : undefined);
          if (prior.peers.length === 1) replica?.campaign();
          replica?.wantPeers(a.peers);
        }
        break;
      }
      case "stream.peers": {
        const a = this.meta.state.stream(command.account, command.name);
        if (prior !== undefined && a !== undefined) this.replicasChanged(a, prior);
        break;
      }
      case "peer.remove":
        this.serverRemoved(command.peer);
        break;
      case "stream.delete": {
        if (prior === undefined || !prior.peers.includes(this.selfId)) break;
        const answers = this.answersFor(prior);
        const key = replicaKey(command.account, command.name);
        this.replicas.get(key)?.stop(true);
        this.replicas.delete(key);
        const ctx = this.js.accounts.get(command.account);
        if (answers) ctx?.api.handleLocally(uncarry(command.request));
        else ctx?.api.handleLocallyBody(uncarry(command.request));
        break;
      }
      default:
        break;
    }
    this.attachReplicas();
  }

  /**
   * This node is no longer one of a stream's replicas (scaled down, or its peer removed): its replica stops
   * and its copy goes. If it was the one to answer (the leader, when the meta leader did not know it), it
   * answers the update first.
   */
  private removedReplica(a: StreamAssignment, prior: StreamAssignment, request: CarriedRequest | null): void {
    const ctx = this.js.accounts.get(a.account);
    if (ctx === undefined) return;
    if (request !== null && this.answersFor(prior) && request.reply !== null && request.reply !== "") ctx.api.handleLocally(uncarry(request));
    const key = replicaKey(a.account, a.name);
    this.replicas.get(key)?.stop(true);
    this.replicas.delete(key);
    const stream = ctx.streams.get(a.name);
    if (stream !== undefined) ctx.deleteStream(stream);
    this.js.server.log.info(`JetStream cluster: stream ${a.name} (account ${a.account}) no longer has a replica here; its copy is deleted`);
  }

  /**
   * A stream's replicas changed without a new configuration (a peer removed, maybe replaced): the removed one
   * deletes its copy; a new one creates an empty copy that joins the group (which fills it); the group's
   * leader adds and removes voters to match; one replica left is a plain R1 stream.
   */
  private replicasChanged(a: StreamAssignment, prior: StreamAssignment): void {
    const self = this.selfId;
    if (!a.peers.includes(self)) {
      if (!prior.peers.includes(self)) return;
      // The group may need this replica to change its voters (it leads, or it is one of two): it leaves
      // through the group, then goes (attachReplica's `left`).
      const replica = this.replicas.get(replicaKey(a.account, a.name));
      if (replica !== undefined) replica.leave(a.peers);
      else this.removedReplica(a, prior, null);
      return;
    }
    const ctx = this.js.accounts.get(a.account);
    if (ctx === undefined) return;
    this.js.server.log.info(`JetStream cluster: stream ${a.name} (account ${a.account}) now has replicas ${a.peers.join(", ")}`);
    const key = replicaKey(a.account, a.name);
    if (!prior.peers.includes(self)) {
      if (!ctx.streams.has(a.name)) ctx.createStream(a.config);
      this.attachReplica(a, []);
      return;
    }
    if (a.peers.length === 1) {
      this.replicas.get(key)?.leaveGroup();
      this.replicas.delete(key);
    } else this.replicas.get(key)?.wantPeers(a.peers);
  }

  /**
   * A server left the meta group (SERVER.REMOVE). The meta leader: every stream it held gets a replacement
   * replica where a node is free. That server: its JetStream takes no part any more (nats-server disables
   * it): an advisory, it answers no API request, its R1 streams stop (their files stay) and its replicas
   * leave their groups.
   */
  private serverRemoved(peer: string): void {
    // The meta leader (the removed one too: it leads until its removal from the voters commits).
    if (this.meta.isLeader) for (const a of [...this.meta.state.all()]) if (a.peers.includes(peer)) this.removePeerFromStream(a, peer);
    if (peer === this.selfId) {
      if (this.removed) return;
      this.removed = true;
      const server = this.js.server;
      server.log.error("JetStream being DISABLED, our server was removed from the cluster");
      const system = server.accounts.system;
      if (system !== null) {
        this.systemClient ??= new InternalClient(server, "jetstream-cluster (system)", system);
        this.systemClient.publish("$JS.EVENT.ADVISORY.SERVER.REMOVED", Buffer.from(JSON.stringify({
          type: "io.nats.jetstream.advisory.v1.server_removed", id: nuid(), timestamp: rfc3339(Date.now()),
          server: server.serverName, server_id: server.serverId, cluster: this.cluster.name,
        })));
      }
      // Its R1 streams stop (files kept): they are placed elsewhere. Its replicas leave their groups now
      // (the meta leader's reassignments may not reach a node it is removing).
      for (const ctx of this.js.accounts.values()) {
        for (const stream of [...ctx.streams.values()]) if (!this.replicas.has(replicaKey(ctx.account.name, stream.name))) ctx.closeStream(stream);
      }
      for (const replica of this.replicas.values()) replica.leave(replica.raft.peers);
    }
  }

  /**
   * After a snapshot from the meta leader (this node was away while the leader compacted its log): the
   * streams assigned to this node that it lacks are created (a replica then catches up through its group),
   * and its copies of streams that are no longer assigned to it (deleted meanwhile) go.
   */
  private reconcile(): void {
    const log = this.js.server.log;
    for (const a of this.meta.state.all()) {
      if (!a.peers.includes(this.selfId)) continue;
      // Replicas changed meanwhile (scaled, a peer removed): down to this one, or the others as assigned.
      const key = replicaKey(a.account, a.name);
      const replica = this.replicas.get(key);
      if (replica !== undefined && a.peers.length === 1) {
        replica.leaveGroup();
        this.replicas.delete(key);
      } else replica?.wantPeers(a.peers);
      const ctx = this.js.accounts.get(a.account);
      if (ctx === undefined || ctx.streams.has(a.name)) continue;
      try {
        ctx.createStream(a.config);
        log.info(`JetStream cluster: created stream ${a.name} (account ${a.account}), assigned to this node while it was away`);
      } catch (error) {
        log.warn(`JetStream cluster: cannot create stream ${a.name} (account ${a.account}) assigned to this node: ${(error as Error).message}`);
      }
    }
    this.attachReplicas();
    const adopting = new Set(this.adoptions.map((x) => replicaKey(x.account, x.name)));
    for (const ctx of this.js.accounts.values()) {
      for (const stream of [...ctx.streams.values()]) {
        const key = replicaKey(ctx.account.name, stream.name);
        const a = this.meta.state.stream(ctx.account.name, stream.name);
        if ((a !== undefined && a.peers.includes(this.selfId)) || adopting.has(key)) continue;
        this.replicas.get(key)?.stop(true);
        this.replicas.delete(key);
        ctx.deleteStream(stream);
        log.info(`JetStream cluster: deleted this node's copy of stream ${stream.name} (account ${ctx.account.name}): not assigned to it any more`);
      }
    }
  }

  /**
   * Whether this node answers for a stream's change: its holder, or its leader (while no reachable leader is
   * known, the first reachable replica).
   */
  private answersFor(a: StreamAssignment): boolean {
    if (a.peers.length === 1) return a.peers[0] === this.selfId;
    const replica = this.replicas.get(replicaKey(a.account, a.name));
    if (replica?.isLeader) return true;
    const leader = replica?.leader;
    const leaderReachable = leader !== undefined && this.transport.isAlive(leader);
    return !leaderReachable && this.firstAlivePeer(a) === this.selfId;
  }

  /** The first of a stream's replicas this node can reach (itself included): who answers while no leader is known. */
  private firstAlivePeer(a: StreamAssignment): string | undefined {
    return a.peers.find((id) => this.transport.isAlive(id));
  }

  /** Starts this node's replica of every replicated stream it holds (after a restart, a create, a snapshot). */
  private attachReplicas(): void {
    for (const a of this.meta.state.all()) if (a.peers.length > 1 && a.peers.includes(this.selfId)) this.attachReplica(a);
  }

  /** `founders`: the group's first voters ([] for a replica that joins an existing group); the assignment's peers by default. */
  private attachReplica(a: StreamAssignment, founders: string[] = a.peers): StreamReplica | null {
    if (a.peers.length <= 1) return null;
    const key = replicaKey(a.account, a.name);
    const existing = this.replicas.get(key);
    if (existing !== undefined) return existing;
    const ctx = this.js.accounts.get(a.account);
    const stream = ctx?.streams.get(a.name);
    if (ctx === undefined || stream === undefined) return null;
    const group = streamGroupName(a.account, a.name, a.created);
    const replica = new StreamReplica({
      transport: this.transport,
      group,
      dir: path.join(this.js.dir, "$SYS", "_js_", group),
      peers: founders,
      ctx,
      stream,
      log: this.js.server.log,
      // nats-server's advisories, in the stream's account.
      leaderChanged: (leader) => {
        if (leader !== this.selfId) return;
        ctx.advisory(`$JS.EVENT.ADVISORY.STREAM.LEADER_ELECTED.${a.name}`, {
          type: "io.nats.jetstream.advisory.v1.stream_leader_elected", id: nuid(), timestamp: rfc3339(Date.now()),
          stream: a.name, leader: this.js.server.serverName, replicas: this.replicaNames(a),
        });
      },
      // Its durables run where the stream leads: they start once this new leader has applied its log.
      durablesStarted: (names) => {
        for (const consumer of names) this.consumerLeaderElected(ctx, a, consumer);
      },
      left: () => {
        const now = this.meta.state.stream(a.account, a.name);
        if (!this.removed && now !== undefined && now.peers.includes(this.selfId)) return; // assigned here again meanwhile
        this.removedReplica(now ?? a, a, null);
      },
      quorumLost: () => {
        ctx.advisory(`$JS.EVENT.ADVISORY.STREAM.QUORUM_LOST.${a.name}`, {
          type: "io.nats.jetstream.advisory.v1.stream_quorum_lost", id: nuid(), timestamp: rfc3339(Date.now()),
          stream: a.name, replicas: this.replicaNames(a),
        });
        for (const consumer of replica.durableNames()) {
          ctx.advisory(`$JS.EVENT.ADVISORY.CONSUMER.QUORUM_LOST.${a.name}.${consumer}`, {
            type: "io.nats.jetstream.advisory.v1.consumer_quorum_lost", id: nuid(), timestamp: rfc3339(Date.now()),
            stream: a.name, consumer, replicas: this.replicaNames(a),
          });
        }
      },
    });
    this.replicas.set(key, replica);
    return replica;
  }

  /** nats-server's consumer leader-elected advisory, in the stream's account (this node leads the consumer). */
  private consumerLeaderElected(ctx: AccountJetStream, a: StreamAssignment, consumer: string): void {
    ctx.advisory(`$JS.EVENT.ADVISORY.CONSUMER.LEADER_ELECTED.${a.name}.${consumer}`, {
      type: "io.nats.jetstream.advisory.v1.consumer_leader_elected", id: nuid(), timestamp: rfc3339(Date.now()),
      stream: a.name, consumer, leader: this.js.server.serverName, replicas: this.replicaNames(a),
    });
  }

  /** Records the streams this node had before it joined, once there is a leader to take them. */
  private adopt(): void {
    this.adoptions = this.adoptions.filter(({ account, name }) => {
      const a = this.meta.state.stream(account, name);
      if (a === undefined) return true;
      if (a.peers[0] !== this.selfId) {
        this.js.server.log.warn(`JetStream cluster: stream ${name} (account ${account}) of this node exists on another node of the cluster; this copy is not served`);
      }
      return false;
    });
    for (const { account, name } of this.adoptions) {
      const stream = this.js.accounts.get(account)?.streams.get(name);
      if (stream === undefined) continue;
      const assignment: StreamAssignment = { account, name, config: stream.config, peers: [this.selfId], created: rfc3339(stream.created) };
      this.meta.propose({ op: "stream.adopt", assignment });
    }
    if (this.adoptions.length === 0 && this.adoptTimer !== null) {
      clearInterval(this.adoptTimer);
      this.adoptTimer = null;
    }
  }

  // ---- answers the meta leader composes --------------------------------------------------------------

  private matching(account: string, body: Body): StreamAssignment[] {
    const subject = typeof body.subject === "string" && body.subject !== "" ? body.subject : null;
    const all = this.meta.state.accountStreams(account);
    if (subject === null) return all;
    return all.filter((s) => s.config.subjects.some((x) => subjectsCollide(x, subject) || subjectMatches(subject, x)));
  }

  private names(api: JetStreamApi, m: InternalMessage): Body {
    const body = requestBody(m);
    const streams = this.matching(api.accountName, body);
    const offset = offsetOf(body);
    const page = streams.slice(offset, offset + NAMES_LIMIT).map((s) => s.name);
    return { total: streams.length, offset, limit: NAMES_LIMIT, streams: page.length === 0 ? null : page };
  }

  private async list(api: JetStreamApi, m: InternalMessage, type: string): Promise<void> {
    const body = requestBody(m);
    const streams = this.matching(api.accountName, body);
    const offset = offsetOf(body);
    const page = streams.slice(offset, offset + LIST_LIMIT);
    const infos = await Promise.all(page.map((s) => this.streamInfo(api, s)));
    const missing = page.filter((_, i) => infos[i] === null).map((s) => s.name);
    // A stream whose replicas are all down is listed from its assignment (nats-server's offline info); one that
    // did not answer in time is only missing.
    for (const [i, a] of page.entries()) if (infos[i] === null && this.allOffline(a)) infos[i] = this.offlineInfo(a);
    const answer: Body = { total: streams.length, offset, limit: LIST_LIMIT, streams: infos.filter((i) => i !== null) };
    if (missing.length > 0) answer.missing = missing;
    api.answer(m, type, answer);
  }

  /**
   * CONSUMER.NAMES / LIST of a replicated stream, at its leader: its own consumers and the ephemerals other
   * nodes hold (nats-server lists every consumer of the stream); their infos come from their holders, and one
   * that does not answer in time is named under `missing`.
   */
  private async consumersAcrossNodes(api: JetStreamApi, m: InternalMessage, type: string, replica: StreamReplica, op: "NAMES" | "LIST"): Promise<void> {
    const local = api.handleLocallyBody(m);
    if (local.error !== undefined) return api.answer(m, type, local);
    const offset = offsetOf(requestBody(m));
    const elsewhere = replica.ephemeralsHeldElsewhere().filter((name) => !replica.stream.consumers.has(name));
    if (op === "NAMES") {
      const names = [...replica.stream.consumers.keys(), ...elsewhere].sort();
      return api.answer(m, type, { total: names.length, offset, limit: NAMES_LIMIT, consumers: names.slice(offset, offset + NAMES_LIMIT) });
    }
    const ctx = api.context!;
    const asked = await Promise.all(elsewhere.map((name) => this.ask(ctx, `$JS.API.CONSUMER.INFO.${replica.stream.name}.${name}`)));
    const infos: Body[] = [...replica.stream.consumers.values()].map((c) => {
      const info = c.info() as unknown as Body;
      this.decorate(info, ctx.account.name);
      return info;
    });
    const missing: string[] = [];
    for (const [i, info] of asked.entries()) {
      if (info === null || info.error !== undefined) missing.push(elsewhere[i]!);
      else infos.push(info);
    }
    infos.sort((x, y) => ((x.name as string) < (y.name as string) ? -1 : 1));
    const answer: Body = { total: infos.length + missing.length, offset, limit: LIST_LIMIT, consumers: infos.slice(offset, offset + LIST_LIMIT) };
    if (missing.length > 0) answer.missing = missing.sort();
    api.answer(m, type, answer);
  }

  /** The account's usage summed over the streams of the whole cluster (from their holders' infos). */
  private async accountInfo(api: JetStreamApi, m: InternalMessage, type: string): Promise<void> {
    const local = api.handleLocallyBody(m);
    if (local.error !== undefined) return api.answer(m, type, local);
    const infos = await Promise.all(this.meta.state.accountStreams(api.accountName).map((s) => this.streamInfo(api, s)));
    let memory = 0;
    let storage = 0;
    let consumers = 0;
    let streams = 0;
    for (const info of infos) {
      if (info === null) continue;
      const state = info.state as { bytes: number; consumer_count: number };
      const config = info.config as { storage: string };
      if (config.storage === "memory") memory += state.bytes;
      else storage += state.bytes;
      consumers += state.consumer_count;
      streams++;
    }
    api.answer(m, type, { ...local, memory, storage, streams: Math.max(streams, infos.length), consumers });
  }

  /** A stream's info from its holder (this node, or a request over the cluster); null when it does not answer. */
  private streamInfo(api: JetStreamApi, a: StreamAssignment): Promise<Body | null> {
    const ctx = api.context;
    const replica = this.replicas.get(replicaKey(a.account, a.name));
    if ((a.peers.length === 1 && a.peers[0] === this.selfId) || replica?.isLeader === true) {
      const stream = ctx?.streams.get(a.name);
      if (stream === undefined) return Promise.resolve(null);
      const info = stream.info() as unknown as Body;
      this.decorate(info, a.account);
      return Promise.resolve(info);
    }
    return this.ask(ctx!, `$JS.API.STREAM.INFO.${a.name}`);
  }

  /** An API request in the account, over the cluster; its answer, or null when none comes in time. */
  private ask(ctx: AccountJetStream, subject: string): Promise<Body | null> {
    const asker = this.asker(ctx);
    const token = nuid();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        asker.waiting.delete(token);
        resolve(null);
      }, GATHER_TIMEOUT_MS);
      asker.waiting.set(token, (body) => {
        clearTimeout(timer);
        resolve(body);
      });
      asker.client.publish(subject, Buffer.alloc(0), `${asker.inbox}.${token}`);
    });
  }

  private asker(ctx: AccountJetStream) {
    let asker = this.askers.get(ctx.account.name);
    if (asker === undefined) {
      const client = new InternalClient(this.js.server, `jetstream-cluster ${ctx.account.name}`, ctx.account);
      const inbox = `${GATHER_INBOX_PREFIX}${nuid()}`;
      const waiting = new Map<string, (body: Body | null) => void>();
      client.subscribe(`${inbox}.*`, (reply) => {
        const token = reply.subject.slice(inbox.length + 1);
        const done = waiting.get(token);
        if (done === undefined) return;
        waiting.delete(token);
        let body: Body | null = null;
        try {
          body = JSON.parse(reply.payload.toString()) as Body;
        } catch {
          // null: unreadable
        }
        done(body !== null && body.error === undefined ? body : null);
      });
      asker = { client, inbox, waiting };
      this.askers.set(ctx.account.name, asker);
    }
    return asker;
  }

  // ---- /healthz -------------------------------------------------------------------------------------

  /**
   * nats-server's /healthz JetStream checks on a cluster node (its healthz): a meta leader known, this
   * node current with it, then (unless `serverOnly`, ?js-server-only) every stream assigned here present
   * and, if replicated, current in its group. The first failure's text, or null when healthy. (Consumers
   * share their stream's group here: the stream's check covers them.)
   */
  health(serverOnly: boolean): string | null {
    if (this.removed) return `${apiError("NotEnabled").message} (10076)`;
    // Two meta groups that both hold streams (formed apart, see meta-group.ts): not one JetStream any more.
    if (this.meta.conflict !== null) return this.meta.conflict;
    if (this.meta.leader === undefined) return "JetStream has not established contact with a meta leader";
    if (!this.meta.current) return "JetStream is not current with the meta leader";
    if (serverOnly) return null;
    for (const a of this.meta.state.all()) {
      if (!a.peers.includes(this.selfId)) continue;
      const present = this.js.accounts.get(a.account)?.streams.has(a.name) === true;
      const current = a.peers.length === 1 || this.replicas.get(replicaKey(a.account, a.name))?.current === true;
      if (!present || !current) return `JetStream stream '${a.account} > ${a.name}' is not current`;
    }
    return null;
  }

  // ---- /jsz ----------------------------------------------------------------------------------------

  /** nats-server's /jsz meta_cluster. */
  metaCluster(): Body {
    const raft = this.meta.raft;
    const leader = this.meta.leader;
    const nameOf = (id: string | undefined) => (id === undefined ? "" : id === this.selfId ? this.js.server.serverName : (this.transport.peers.get(id)?.serverName ?? id));
    return {
      name: this.cluster.name,
      leader: nameOf(leader),
      peer: leader ?? "",
      cluster_size: this.meta.peers.length,
      replicas: this.meta.peers
        .filter((id) => id !== this.selfId)
        .map((id) => ({ name: nameOf(id), current: this.transport.isAlive(id), active: 0, peer: id, offline: !this.transport.isAlive(id) || undefined })),
      ...(raft === null ? {} : { term: raft.term, applied: raft.lastApplied }),
      // natter's own: which group this is, and another group holding streams that it cannot merge with.
      ...(this.meta.identity === undefined ? {} : { group: groupName(this.meta.identity) }),
      ...(this.meta.conflict === null ? {} : { conflict: this.meta.conflict }),
    };
  }
}

/** The consumer a CONSUMER.* request names ($JS.API.CONSUMER.<op>.<stream>.<consumer>…), or null. */
function consumerNameOf(t: string[]): string | null {
  if (t[2] !== "CONSUMER") return null;
  if (t[3] === "DURABLE") return t[6] ?? null;
  if (t[3] === "INFO" || t[3] === "DELETE" || t[3] === "CREATE") return t[5] ?? null;
  return null;
}

function replicaKey(account: string, stream: string): string {
  return `${account}\u0000${stream}`;
}

function requestBody(m: InternalMessage): Body {
  try {
    const v = JSON.parse(m.payload.toString() || "{}") as unknown;
    return v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Body) : {};
  } catch {
    return {};
  }
}

/** nats-server's isEmptyRequest then JSON: nothing (or `{}`) is 10003 bad request, bad JSON 10025. */
function nonEmptyRequest(m: InternalMessage): Body {
  const text = m.payload.toString().trim();
  if (text === "") throw apiError("BadRequest");
  const v = jsonObject(text);
  if (Object.keys(v).length === 0) throw apiError("BadRequest");
  return v;
}

function offsetOf(body: Body): number {
  const o = body.offset;
  return typeof o === "number" && o > 0 ? Math.floor(o) : 0;
}
