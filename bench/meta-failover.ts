// Meta leader failover: a fresh 3-node cluster (natter or nats-server, test/cluster/jepsen/cluster.ts on
// loopback), then --kills times: kill -9 of the meta leader → the first stream create that succeeds after it
// (a meta operation: it needs the new meta leader), 250 ms per attempt; the killed node is
// restarted and every node agrees on a meta leader of three before the next kill. Prints each kill and the
// median, min and max. (bench/jetstream-cluster.ts measures a stream leader's failover.)
//
//   bun bench/meta-failover.ts [--kills 10] [--only natter|nats-server]
import { startJsCluster, type ClusterServer, type JsCluster } from "../test/cluster/jepsen/cluster.ts";
import { connectCluster, jetstreamManager, until } from "../test/cluster/jepsen/stream.ts";
import { numberArg } from "./args.ts";

const KILLS = numberArg("kills", 10);
const onlyAt = process.argv.indexOf("--only");
const KINDS: ClusterServer[] = onlyAt >= 0 ? [process.argv[onlyAt + 1] as ClusterServer] : ["natter", "nats-server"];

interface MetaView {
  leader?: string;
  cluster_size?: number;
}

async function metaView(cluster: JsCluster, i: number): Promise<MetaView | null> {
  const node = cluster.nodes[i]!;
  const r = await fetch(`${node.monitorUrl}/jsz`, { signal: AbortSignal.timeout(2000) }).catch(() => null);
  if (r === null) return null;
  return ((await r.json().catch(() => null)) as { meta_cluster?: MetaView } | null)?.meta_cluster ?? null;
}

/** The meta leader every node names, with a group of all three. */
async function agreedLeader(cluster: JsCluster): Promise<string> {
  return until("one meta leader known to every node", 120_000, async () => {
    const views = await Promise.all(cluster.nodes.map((_, i) => metaView(cluster, i)));
    const leader = views[0]?.leader;
    return leader && views.every((v) => v?.leader === leader && v.cluster_size === 3) ? leader : undefined;
  });
}

async function measure(kind: ClusterServer): Promise<number[]> {
  const cluster = await startJsCluster({ server: kind, nodes: 3, network: "loopback" });
  const nc = await connectCluster(cluster, "meta-failover");
  try {
    await until("JetStream to answer", 60_000, () => jetstreamManager(nc, { timeout: 5_000 }));
    // 250 ms per attempt: a request no node answers (no meta leader known yet) costs no more.
    const jsm = await jetstreamManager(nc, { timeout: 250, checkAPI: false });
    const ms: number[] = [];
    for (let k = 0; k < KILLS; k++) {
      const leader = await agreedLeader(cluster);
      const node = cluster.nodes.find((x) => x.name === leader)!;
      const t0 = performance.now();
      await node.kill9();
      for (let attempt = 0; ; attempt++) {
        const at = performance.now();
        const ok = await jsm.streams.add({ name: `META${k}`, subjects: [`meta.${k}`] }).then(() => true, () => false);
        if (ok) break;
        if (performance.now() - t0 > 120_000) throw new Error(`no stream create within 120 s of killing ${leader}`);
        const spent = performance.now() - at;
        if (spent < 20) await new Promise((r) => setTimeout(r, 20)); // an error at once (10008): do not spin
      }
      const took = performance.now() - t0;
      ms.push(took);
      console.log(`  ${kind} kill ${k + 1}/${KILLS}: meta leader ${leader} → first stream create after ${(took / 1000).toFixed(2)} s`);
      await node.start();
    }
    return ms;
  } finally {
    await nc.close().catch(() => {});
    await cluster.shutdown();
  }
}

const results: Partial<Record<ClusterServer, number[]>> = {};
for (const kind of KINDS) results[kind] = await measure(kind);
console.log("\nmeta leader failover (kill -9 of the meta leader → first successful stream create):");
for (const kind of KINDS) {
  const s = [...results[kind]!].sort((a, b) => a - b);
  console.log(`  ${kind.padEnd(11)}  median ${(s[Math.floor(s.length / 2)]! / 1000).toFixed(2)} s, min ${(s[0]! / 1000).toFixed(2)} s, max ${(s[s.length - 1]! / 1000).toFixed(2)} s over ${s.length} kills`);
}
