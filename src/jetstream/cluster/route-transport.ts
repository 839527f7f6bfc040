// Clustered JetStream over the cluster's routes: RAFT frames (src/cluster/protocol.ts) carry the messages
// of each Raft group by the group's name, and this node learns from each route's HELLO which members run
// JetStream, their server names and tags. An open route means "alive" here: gossip and the routes say who
// is reachable; only Raft decides anything.
import type { Cluster, RaftListener } from "../../cluster/cluster.ts";
import type { Hello } from "../../cluster/protocol.ts";
import { decodeMessage, encodeMessage } from "./raft-codec.ts";
import { PartsAssembler, RAFT_PART_BYTES, splitIntoParts } from "./raft-parts.ts";
import type { NodeId, RaftMessage, RaftTransport } from "./raft-types.ts";

/** The first byte of a RAFT frame's body. */
export const RaftFrameType = {
  /** A Raft message of the named group (raft-codec.ts). */
  MESSAGE: 1,
  /** A command for the group's leader to propose (a follower cannot). */
  FORWARD: 2,
  /** The sender's status in the group (whether it has joined one): what a fresh node waits for. */
  STATUS: 3,
  /** A part of a payload of one of the types above too large for one route frame (raft-parts.ts). */
  PART: 4,
} as const;

/** Another JetStream node of the cluster, as its route's HELLO describes it. */
export interface JetStreamPeer {
  id: NodeId;
  serverName: string;
  tags: string[];
  /** A route to it is open. */
  alive: boolean;
  /** When its route last opened or closed (ms). */
  since: number;
}

export interface GroupHandler {
  onForward(from: NodeId, payload: Uint8Array): void;
  onStatus(from: NodeId, payload: Uint8Array): void;
  receive(message: RaftMessage): void;
}

export class RouteTransport implements RaftListener {
  readonly peers = new Map<NodeId, JetStreamPeer>();
  private readonly groups = new Map<string, GroupHandler>();
  private readonly parts = new PartsAssembler();
  /** Called when a JetStream node's route opens (true) or closes (false). */
  onPeerChange: (peer: JetStreamPeer, up: boolean) => void = () => {};

  constructor(
    readonly cluster: Cluster,
    private readonly log: { debug(line: string): void; warn(line: string): void },
  ) {
    cluster.raftListener = this;
    // Routes that opened before JetStream joined (none today: it starts first), for completeness.
    for (const [id, route] of cluster.routes) if (route.remote !== null) this.routeOpened(id, route.remote);
  }

  get selfId(): NodeId {
    return this.cluster.id;
  }

  register(group: string, handler: GroupHandler): void {
    this.groups.set(group, handler);
  }

  /** The Raft transport of one group: best effort, as Raft wants it. */
  transportFor(group: string): RaftTransport {
    return { send: (to, message) => void this.send(to, RaftFrameType.MESSAGE, group, encodeMessage(message)) };
  }

  /** Sends a payload of `type` to `to` (in parts when a route frame cannot hold it); false when no route to it is open. */
  send(to: NodeId, type: number, group: string, payload: Uint8Array): boolean {
    if (payload.length <= RAFT_PART_BYTES) return this.cluster.sendRaft(to, type, group, payload);
    const parts = splitIntoParts(type, payload);
    if (parts === null) {
      this.log.warn(`JetStream cluster: a message of ${payload.length} bytes for ${group} is too large to send to ${to}`);
      return false;
    }
    for (const part of parts) if (!this.cluster.sendRaft(to, RaftFrameType.PART, group, part)) return false;
    return true;
  }

  isAlive(id: NodeId): boolean {
    return id === this.selfId || this.peers.get(id)?.alive === true;
  }

  // ---- RaftListener ----------------------------------------------------------------------------------

  onRaft(from: string, type: number, group: string, payload: Uint8Array): void {
    if (type === RaftFrameType.PART) {
      const whole = this.parts.add(from, group, payload);
      if (whole === null || whole.type === RaftFrameType.PART) return;
      return this.onRaft(from, whole.type, group, whole.payload);
    }
    const handler = this.groups.get(group);
    if (handler === undefined) return;
    switch (type) {
      case RaftFrameType.MESSAGE: {
        let message: RaftMessage;
        try {
          message = decodeMessage(payload);
        } catch (error) {
          this.log.warn(`JetStream cluster: unreadable Raft message from ${from} for ${group}: ${(error as Error).message}`);
          return;
        }
        if (message.from !== from) return; // a member speaks for itself only
        return handler.receive(message);
      }
      case RaftFrameType.FORWARD:
        return handler.onForward(from, payload);
      case RaftFrameType.STATUS:
        return handler.onStatus(from, payload);
    }
  }

  routeOpened(id: string, hello: Hello): void {
    if (hello.js !== true) return;
    const peer: JetStreamPeer = { id, serverName: hello.server_name, tags: Array.isArray(hello.tags) ? hello.tags : [], alive: true, since: Date.now() };
    this.peers.set(id, peer);
    this.log.debug(`JetStream cluster: peer ${hello.server_name} (${id}) is reachable`);
    this.onPeerChange(peer, true);
  }

  routeClosed(id: string): void {
    this.parts.forget(id);
    const peer = this.peers.get(id);
    if (peer === undefined) return;
    peer.alive = false;
    peer.since = Date.now();
    this.onPeerChange(peer, false);
  }
}
