// JetStream helpers shared by the Jepsen-style run and the cluster benchmark: connecting to a cluster,
// creating a replicated stream (and telling "this server has no replicated streams" apart from "not
// ready yet"), finding the stream leader, waiting until every replica is current, and reading one
// replica's copy through its own server.
import { jetstreamManager, type JetStreamManager, type StreamConfig } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import type { ReplicaRead, ReplicaState, StoredMessage } from "./checker.ts";
import type { JsCluster, JsNode } from "./cluster.ts";

export const NO_REPLICATED_STREAMS = "natter has no replicated streams yet";

/** A client that reconnects to any node for as long as it lives. */
export function connectCluster(cluster: JsCluster, name: string): Promise<NatsConnection> {
  return connect({
    servers: cluster.servers,
    name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    timeout: 5_000,
    pingInterval: 2_000,
    maxPingOut: 3,
  });
}

/** A client on one node only (no reconnect): what is read through it comes from that node. */
export function connectNode(node: JsNode): Promise<NatsConnection> {
  return connect({ servers: node.hostport, maxReconnectAttempts: 0, timeout: 5_000 });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls until `check` returns a value (not undefined) or the deadline passes (then throws with the last error). */
export async function until<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (error) {
      last = (error as Error).message;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${last})` : ""}`);
    await sleep(100);
  }
}

export type CreateResult = { ok: true } | { ok: false; unsupported: string };

/**
 * Creates (or finds) the stream, retrying while the cluster is still electing its meta leader or
 * learning its peers. A refusal of num_replicas > 1 (natter's "replicas > 1 not supported in
 * non-clustered mode", code 10074) is not retried: it is the answer.
 */
export async function createReplicatedStream(jsm: JetStreamManager, config: Partial<StreamConfig> & { name: string }, timeoutMs = 60_000): Promise<CreateResult> {
  return until(`stream ${config.name} (R${config.num_replicas}) to be created`, timeoutMs, async () => {
    try {
      await jsm.streams.add(config);
      return { ok: true } as const;
    } catch (error) {
      const message = (error as Error).message;
      if (/replicas > 1 not supported/i.test(message)) return { ok: false, unsupported: `${NO_REPLICATED_STREAMS} (the server said: ${message})` } as const;
      if (/already in use/i.test(message)) return { ok: true } as const;
      throw error;
    }
  });
}

/** The stream leader's server_name, or null when there is none now (or the request timed out). */
export async function streamLeader(jsm: JetStreamManager, stream: string): Promise<string | null> {
  try {
    const info = await jsm.streams.info(stream);
    return info.cluster?.leader || null;
  } catch {
    return null;
  }
}

/** Waits until the stream has a leader and every other replica is current, online and not lagging. */
export async function waitStreamHealthy(jsm: JetStreamManager, stream: string, replicas: number, timeoutMs: number): Promise<void> {
  await until(`stream ${stream} to have a leader and ${replicas - 1} current replicas`, timeoutMs, async () => {
    const info = await jsm.streams.info(stream);
    const c = info.cluster;
    if (!c?.leader) throw new Error("no leader");
    const peers = c.replicas ?? [];
    const healthy = peers.filter((p) => p.current && !p.offline && !p.lag);
    if (healthy.length < replicas - 1) throw new Error(`replicas: ${JSON.stringify(peers)}`);
    return true;
  });
}

/** The state a node reports for its own copy of the stream (/jsz), or null when it has none. */
export async function replicaState(node: JsNode, stream: string): Promise<ReplicaState | null> {
  const r = await fetch(`${node.monitorUrl}/jsz?accounts=true&streams=true`, { signal: AbortSignal.timeout(5_000) });
  const jsz = (await r.json()) as { account_details?: { stream_detail?: { name: string; state: ReplicaState }[] }[] };
  for (const account of jsz.account_details ?? []) {
    for (const s of account.stream_detail ?? []) {
      if (s.name === stream) return { messages: s.state.messages, bytes: s.state.bytes, first_seq: s.state.first_seq, last_seq: s.state.last_seq };
    }
  }
  return null;
}

/**
 * Every message of one node's copy, by direct get (allow_direct) through a connection to that node: each
 * replica answers direct gets in a queue group, and a server hands a request to a local member of a queue
 * group before a remote one, so the node's own copy answers. A replica that is not current (nats-server
 * unsubscribes it from direct gets until it catches up) leaves the reads to another replica: then the
 * node's own /jsz numbers (last sequence, no gap, bytes) are what show the difference.
 */
export async function readReplica(node: JsNode, stream: string, lastSeq: number, firstSeq = 1): Promise<ReplicaRead> {
  const nc = await connectNode(node);
  try {
    const messages: StoredMessage[] = [];
    const subject = `$JS.API.DIRECT.GET.${stream}`;
    const window = 64;
    for (let from = firstSeq; from <= lastSeq; from += window) {
      const seqs: number[] = [];
      for (let s = from; s < from + window && s <= lastSeq; s++) seqs.push(s);
      const replies = await Promise.all(seqs.map(async (seq) => {
        for (let attempt = 1; ; attempt++) {
          try {
            const m = await nc.request(subject, JSON.stringify({ seq }), { timeout: 5_000 });
            const status = m.headers?.code ?? 0;
            if (status === 404) return null; // deleted or never stored at this sequence
            if (status >= 400) throw new Error(`direct get ${seq}: ${status} ${m.headers?.description ?? ""}`);
            return { seq: Number(m.headers?.get("Nats-Sequence") || seq), id: new TextDecoder().decode(m.data) };
          } catch (error) {
            if (attempt >= 5) throw error;
            await sleep(200);
          }
        }
      }));
      for (const r of replies) if (r !== null) messages.push(r);
    }
    let state: ReplicaState | null = null;
    try {
      state = await replicaState(node, stream);
    } catch {
      // reported by the checker as missing
    }
    return { server: node.name, messages, state };
  } finally {
    await nc.close().catch(() => {});
  }
}

export { jetstreamManager };
