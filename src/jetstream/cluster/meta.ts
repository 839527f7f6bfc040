// The meta group's state (nats-server's jetStreamCluster streams map): which streams exist in the whole
// cluster, with their configuration and the node that holds each. Every JetStream node of the cluster
// applies the same commands in the same order (the meta Raft group, meta-group.ts), so every node has the
// same answer to "does stream X exist, and where". Pure data: what a node does when an assignment names it
// (create the stream, answer the client) is clustered-api.ts's.
//
// Commands are JSON, one object each; the snapshot is `{streams: [assignments], removed: [peer ids], group:
// identity}` (a snapshot written before SERVER.REMOVE existed is the bare list of assignments; one written
// before group identities existed has no `group`).
import type { StreamConfig } from "../config.ts";
import type { InternalMessage } from "../../internal-client.ts";
import type { Server } from "../../server.ts";
import { requesterOf } from "../api-audit.ts";

/** One stream of the cluster: its account, configuration and the node(s) holding it. */
export interface StreamAssignment {
  account: string;
  name: string;
  config: StreamConfig;
  /** Member ids (cluster addresses) of the nodes holding the stream; one for an R1 stream. */
  peers: string[];
  /** When it was assigned (RFC 3339). */
  created: string;
}

/**
 * Which meta group this is: its founder and when it was founded (ms). Two groups that formed apart (a
 * partition at first start) tell each other apart by it (meta-group.ts). A group whose log predates
 * identities is named by its first leader that knows them.
 */
export interface GroupIdentity {
  founder: string;
  founded: number;
}

export function sameGroup(a: GroupIdentity | undefined, b: GroupIdentity | undefined): boolean {
  return a !== undefined && b !== undefined && a.founder === b.founder && a.founded === b.founded;
}

/** How logs and errors name a group: `<founder>@<RFC 3339 founding time>`. */
export function groupName(g: GroupIdentity): string {
  return `${g.founder}@${new Date(g.founded).toISOString()}`;
}

/** A request that a command carries so that the node it names can answer the client. */
export interface CarriedRequest {
  subject: string;
  reply: string | null;
  /** The request's body, base64. */
  payload: string;
  /** Who sent it: ClientInfo JSON (src/request-info.ts), for the answering node's audit advisory; absent in logs from before. */
  client?: string;
}

/** A request to go through a Raft log, with who sent it (for the audit advisory of the node that answers). */
export function carry(m: InternalMessage, server: Server): CarriedRequest {
  const client = requesterOf(m, server);
  return { subject: m.subject, reply: m.reply, payload: m.payload.toString("base64"), ...(client !== null ? { client: JSON.stringify(client) } : {}) };
}

export function uncarry(r: CarriedRequest): InternalMessage {
  return { subject: r.subject, reply: r.reply, headers: null, payload: Buffer.from(r.payload, "base64"), requestInfo: r.client ?? null };
}

export type MetaCommand =
  /** A new stream (from the API): placed on `peers`; the holder creates it and answers `request`. */
  | { op: "stream.create"; assignment: StreamAssignment; request: CarriedRequest }
  /**
   * A new configuration (from the API); the holder applies it and answers `request`. With `peers`, the
   * replicas change too (num_replicas scaled up: the new ones join the stream's group).
   */
  | { op: "stream.update"; account: string; name: string; config: StreamConfig; request: CarriedRequest; peers?: string[] }
  /** Delete (from the API); the holder deletes its copy and answers `request`. */
  | { op: "stream.delete"; account: string; name: string; request: CarriedRequest }
  /** A stream the holder had before it joined the cluster (or could not create): recorded as it is. */
  | { op: "stream.adopt"; assignment: StreamAssignment }
  /** The holder could not create the stream: the assignment goes. */
  | { op: "stream.drop"; account: string; name: string; peer: string }
  /** The holder's configuration after an update it could not apply as asked. */
  | { op: "stream.config"; account: string; name: string; config: StreamConfig }
  /** The replicas after a peer's removal (STREAM.PEER.REMOVE, SERVER.REMOVE): a replacement joins, the removed one leaves. */
  | { op: "stream.peers"; account: string; name: string; peers: string[] }
  /** A server removed from the meta group (SERVER.REMOVE): no longer a voter, never added again. */
  | { op: "peer.remove"; peer: string }
  /** The group's identity: the founder's first command (or a leader's, for a log from before identities). */
  | { op: "group.found"; group: GroupIdentity };

export function encodeCommand(command: MetaCommand): Uint8Array {
  return Buffer.from(JSON.stringify(command));
}

export function decodeCommand(data: Uint8Array): MetaCommand {
  return JSON.parse(Buffer.from(data).toString()) as MetaCommand;
}

const key = (account: string, name: string) => `${account}\u0000${name}`;

export class MetaState {
  private readonly streams = new Map<string, StreamAssignment>();
  /** Servers removed from the meta group (SERVER.REMOVE): the leader does not add them again. */
  readonly removed = new Set<string>();
  /** The group's identity, once its `group.found` is applied. */
  group: GroupIdentity | undefined;

  stream(account: string, name: string): StreamAssignment | undefined {
    return this.streams.get(key(account, name));
  }

  /** Every stream of `account`, by name. */
  accountStreams(account: string): StreamAssignment[] {
    return [...this.streams.values()].filter((a) => a.account === account).sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
  }

  /** How many streams the cluster has. */
  get streamCount(): number {
    return this.streams.size;
  }

  all(): IterableIterator<StreamAssignment> {
    return this.streams.values();
  }

  /** Streams each node holds (placement's load). */
  load(): Map<string, number> {
    const out = new Map<string, number>();
    for (const a of this.streams.values()) for (const p of a.peers) out.set(p, (out.get(p) ?? 0) + 1);
    return out;
  }

  /**
   * Applies one command. Returns whether it changed the assignments as asked (an adopt of a name that
   * is taken, a create of one that exists, a drop by a node that does not hold it: false).
   */
  apply(command: MetaCommand): boolean {
    switch (command.op) {
      case "stream.create":
      case "stream.adopt": {
        const a = command.assignment;
        if (this.streams.has(key(a.account, a.name))) return false;
        this.streams.set(key(a.account, a.name), a);
        return true;
      }
      case "stream.update":
      case "stream.config": {
        const a = this.stream(command.account, command.name);
        if (a === undefined) return false;
        a.config = command.config;
        if (command.op === "stream.update" && command.peers !== undefined) a.peers = command.peers;
        return true;
      }
      case "stream.delete":
        return this.streams.delete(key(command.account, command.name));
      case "stream.peers": {
        const a = this.stream(command.account, command.name);
        if (a === undefined) return false;
        a.peers = command.peers;
        return true;
      }
      case "peer.remove":
        if (this.removed.has(command.peer)) return false;
        this.removed.add(command.peer);
        return true;
      case "group.found":
        if (this.group !== undefined) return false; // named once (two leaders naming an old log: the first wins)
        this.group = { founder: command.group.founder, founded: command.group.founded };
        return true;
      case "stream.drop": {
        const a = this.stream(command.account, command.name);
        if (a === undefined || !a.peers.includes(command.peer)) return false;
        return this.streams.delete(key(command.account, command.name));
      }
    }
  }

  snapshot(): Uint8Array {
    return Buffer.from(JSON.stringify({ streams: [...this.streams.values()], removed: [...this.removed], group: this.group }));
  }

  restore(data: Uint8Array): void {
    this.streams.clear();
    this.removed.clear();
    this.group = undefined;
    type Snapshot = StreamAssignment[] | { streams: StreamAssignment[]; removed?: string[]; group?: GroupIdentity };
    const parsed = data.length === 0 ? [] : (JSON.parse(Buffer.from(data).toString()) as Snapshot);
    const list = Array.isArray(parsed) ? parsed : parsed.streams;
    for (const a of list) this.streams.set(key(a.account, a.name), a);
    if (!Array.isArray(parsed)) {
      for (const id of parsed.removed ?? []) this.removed.add(id);
      this.group = parsed.group;
    }
  }
}
