// Helpers of the clustered JetStream tests (js-meta, js-replicated): JetStream nodes as real processes
// (natter, or nats-server with NATTER_TEST_SERVER=nats-server), the meta group's leader as /jsz shows it,
// and counting the answers one request gets.
import { afterAll, test } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { freePort, serverKind } from "../harness/server.ts";
import { startNode, waitFor, waitForMesh, type ClusterNode } from "./spawn.ts";

const open = new Set<NatsConnection>();
const dirs: string[] = [];
afterAll(async () => {
  await Promise.all([...open].map((nc) => nc.close().catch(() => {})));
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

export function storeDir(): string {
  const d = mkdtempSync(path.join(tmpdir(), "natter-js-meta-"));
  dirs.push(d);
  return d;
}

export async function client(node: ClusterNode): Promise<NatsConnection> {
  const nc = await connect({ servers: node.hostport, reconnect: false, timeout: 5000 });
  open.add(nc);
  return nc;
}

/**
 * Every answer one request to `subject` gets (a plain inbox subscription, not the request API): until
 * 400 ms after the first answer (time for a second one to show), or `ms` without any.
 */
export async function answers(nc: NatsConnection, subject: string, body = "", ms = 3000): Promise<Record<string, unknown>[]> {
  const inbox = `reply.${Math.random().toString(36).slice(2)}`;
  const got: Record<string, unknown>[] = [];
  let done: () => void = () => {};
  const finished = new Promise<void>((resolve) => (done = resolve));
  const sub = nc.subscribe(inbox, {
    callback: (_, m) => {
      got.push(m.json());
      if (got.length === 1) setTimeout(done, 400);
    },
  });
  await nc.flush();
  nc.publish(subject, new TextEncoder().encode(body), { reply: inbox });
  const timer = setTimeout(done, ms);
  await finished;
  clearTimeout(timer);
  sub.unsubscribe();
  return got;
}

interface MetaCluster {
  leader: string;
  cluster_size: number;
}

export async function metaCluster(node: ClusterNode): Promise<MetaCluster | undefined> {
  const r = await fetch(`http://127.0.0.1:${node.httpPort}/jsz`);
  return ((await r.json()) as { meta_cluster?: MetaCluster }).meta_cluster;
}

/** Until every node reports the same meta leader and a group of all of them. */
export async function waitForMeta(nodes: ClusterNode[]): Promise<string> {
  let leader = "";
  await waitFor("one meta leader known to every node", async () => {
    const views = await Promise.all(nodes.map(metaCluster));
    leader = views[0]?.leader ?? "";
    return leader !== "" && views.every((v) => v !== undefined && v.leader === leader && v.cluster_size === nodes.length);
  }, 20_000);
  return leader;
}

/** The store directory of each node threeJetStreamNodes started. */
export const storeDirs = new Map<ClusterNode, string>();

export const natterOnly = serverKind === "natter" ? test : test.skip;

/**
 * Three nodes, each running JetStream with its own store. natter: seeds in a chain (N1 → N0, N2 → N1),
 * the way its cluster tests start; nats-server needs routes on every JetStream node: each names the others.
 */
export async function threeJetStreamNodes(extraArgs: string[] = []): Promise<ClusterNode[]> {
  const kind = serverKind;
  const ports = [await freePort(), await freePort(), await freePort()];
  const seeds = (i: number) => (kind === "natter" ? (i === 0 ? [] : [ports[i - 1]!]) : ports.filter((_, j) => j !== i));
  const nodes: ClusterNode[] = [];
  for (let i = 0; i < 3; i++) {
    const dir = storeDir();
    const node = await startNode({ name: `N${i}`, kind, monitor: true, clusterPort: ports[i], seeds: seeds(i), extraArgs: [...extraArgs, "-js", "--store_dir", dir] });
    storeDirs.set(node, dir);
    nodes.push(node);
  }
  const [n0, n1, n2] = nodes as [ClusterNode, ClusterNode, ClusterNode];
  if (kind === "natter") await waitForMesh([n0, n1, n2]);
  await waitForMeta([n0, n1, n2]);
  return [n0, n1, n2];
}

