// `npm run bench:js-cluster`: replicated JetStream, a 3-node natter cluster next to a 3-node nats-server
// cluster on this machine (each started fresh per round on loopback free ports, every node given the same
// nats-server config file: test/cluster/jepsen/cluster.ts), driven by the official clients from this
// process. Scenarios, all on R3: publish with acks one at a time (sync: msg/s, p50/p99 of the ack) and
// with a window of 256 in flight (async), pull consume + ack, KV put/get (replicas: 3), and for the first
// three the CPU time the three server processes spent per message (/proc: steadier than msg/s when others
// load the machine); then failover:
// kill -9 of the stream leader → the first PubAck after it, median and max over --kills kills (the
// killed node is restarted and every replica current again before the next), with a check that no
// acknowledged publish was lost. Rounds alternate A B B A; medians are reported. A server that refuses
// num_replicas > 1 is reported "unsupported" (natter, until it has replicated streams).
//
//   bun bench/jetstream-cluster.ts [--msgs 20000] [--sync 2000] [--kv 1000] [--rounds 3] [--window 256]
//                                  [--kills 20] [--size 128] [--only natter|nats-server]
import { AckPolicy, jetstream, type JetStreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { readFileSync } from "node:fs";
import { startJsCluster, type ClusterServer, type JsCluster } from "../test/cluster/jepsen/cluster.ts";
import { connectCluster, createReplicatedStream, jetstreamManager, streamLeader, until, waitStreamHealthy } from "../test/cluster/jepsen/stream.ts";
import { numberArg } from "./args.ts";

const MSGS = numberArg("msgs", 20_000);
const SYNC = numberArg("sync", 2000);
const KV_OPS = numberArg("kv", 1000);
const ROUNDS = numberArg("rounds", 3);
const WINDOW = numberArg("window", 256);
const KILLS = numberArg("kills", 20);
const SIZE = numberArg("size", 128);
const onlyAt = process.argv.indexOf("--only");
const KINDS: ClusterServer[] = onlyAt >= 0 ? [process.argv[onlyAt + 1] as ClusterServer] : ["natter", "nats-server"];

type Result = Record<string, number>;
const ELECTIONS = "leader elections, no fault (sum over rounds)";
const QUORUM_LOST = "quorum lost, no fault (sum over rounds)";
const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** A fresh 3-node cluster, JetStream answering; null (and the reason) when it refuses R3 streams. */
async function freshCluster(kind: ClusterServer): Promise<{ cluster: JsCluster; nc: NatsConnection; jsm: JetStreamManager } | { unsupported: string }> {
  const cluster = await startJsCluster({ server: kind, nodes: 3, network: "loopback" });
  const nc = await connectCluster(cluster, "bench");
  const jsm = await until("JetStream to answer", 60_000, () => jetstreamManager(nc, { timeout: 5_000 }));
  const probe = await createReplicatedStream(jsm, { name: "PROBE", subjects: ["probe.>"], num_replicas: 3 });
  if (!probe.ok) {
    await nc.close();
    await cluster.shutdown();
    return { unsupported: probe.unsupported };
  }
  await jsm.streams.delete("PROBE");
  return { cluster, nc, jsm };
}

/**
 * Leader elections with no fault: the stream leader-elected and quorum-lost advisories of the streams once
 * they were healthy (the first election of each is its creation's). What a busy machine costs in false
 * elections (a loop stalled past the election timeout).
 */
class ElectionCounter {
  private readonly counted = new Set<string>();
  elections = 0;
  quorumLost = 0;
  constructor(nc: NatsConnection) {
    nc.subscribe("$JS.EVENT.ADVISORY.STREAM.*.>", {
      callback: (_err, m) => {
        const [kind, stream] = m.subject.split(".").slice(4, 6);
        if (!this.counted.has(stream!)) return;
        if (kind === "LEADER_ELECTED") this.elections++;
        if (kind === "QUORUM_LOST") this.quorumLost++;
      },
    });
  }
  /** From now on, `stream`'s elections count. */
  count(stream: string): void {
    this.counted.add(stream);
  }
}

/**
 * CPU time (user + system, ms) the cluster's server processes have used so far (/proc/<pid>/stat; 0 where it
 * cannot be read). On a shared machine throughput swings with the load of others; the CPU a server spends
 * per message much less.
 */
function serversCpuMs(cluster: JsCluster): number {
  let ms = 0;
  for (const node of cluster.nodes) {
    try {
      const fields = readFileSync(`/proc/${node.pid}/stat`, "utf8").split(") ")[1]!.split(" ");
      ms += ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
    } catch {}
  }
  return ms;
}
const CLOCK_TICKS = 100;

async function throughput(cluster: JsCluster, nc: NatsConnection, jsm: JetStreamManager): Promise<Result> {
  const js = jetstream(nc, { timeout: 10_000 });
  const payload = new Uint8Array(SIZE);
  const out: Result = {};
  const elections = new ElectionCounter(nc);
  const created = await createReplicatedStream(jsm, { name: "BENCH", subjects: ["bench.>"], num_replicas: 3 });
  if (!created.ok) throw new Error(created.unsupported);
  await waitStreamHealthy(jsm, "BENCH", 3, 60_000);
  await nc.flush();
  elections.count("BENCH");

  for (let i = 0; i < 200; i++) await js.publish("bench.warm", payload); // warm-up: JIT, connections to the leader
  const lat: number[] = [];
  let cpu = serversCpuMs(cluster);
  let t = performance.now();
  for (let i = 0; i < SYNC; i++) {
    const s = performance.now();
    await js.publish("bench.sync", payload);
    lat.push((performance.now() - s) * 1000);
  }
  out["R3 sync publish (msg/s)"] = SYNC / ((performance.now() - t) / 1000);
  lat.sort((a, b) => a - b);
  out["R3 sync publish p50 (µs, lower is better)"] = percentile(lat, 50);
  out["R3 sync publish p99 (µs, lower is better)"] = percentile(lat, 99);
  out["R3 sync publish, servers' CPU per msg (µs, lower is better)"] = ((serversCpuMs(cluster) - cpu) * 1000) / SYNC;

  cpu = serversCpuMs(cluster);
  t = performance.now();
  let inflight: Promise<unknown>[] = [];
  for (let i = 0; i < MSGS; i++) {
    inflight.push(js.publish("bench.async", payload));
    if (inflight.length >= WINDOW) {
      await Promise.all(inflight);
      inflight = [];
    }
  }
  await Promise.all(inflight);
  out[`R3 async publish, window ${WINDOW} (msg/s)`] = MSGS / ((performance.now() - t) / 1000);
  out[`R3 async publish, servers' CPU per msg (µs, lower is better)`] = ((serversCpuMs(cluster) - cpu) * 1000) / MSGS;

  await jsm.consumers.add("BENCH", { durable_name: "pull", ack_policy: AckPolicy.Explicit, filter_subject: "bench.async" });
  const pull = await js.consumers.get("BENCH", "pull");
  cpu = serversCpuMs(cluster);
  t = performance.now();
  let n = 0;
  for await (const m of await pull.consume({ max_messages: 1000 })) {
    m.ack();
    if (++n >= MSGS) break;
  }
  out["R3 pull consume + ack (msg/s)"] = MSGS / ((performance.now() - t) / 1000);
  out["R3 pull consume + ack, servers' CPU per msg (µs, lower is better)"] = ((serversCpuMs(cluster) - cpu) * 1000) / MSGS;

  const kv = await new Kvm(nc).create("bench", { replicas: 3 });
  await until("the KV bucket's stream to be healthy", 60_000, () => waitStreamHealthy(jsm, "KV_bench", 3, 5_000).then(() => true));
  await nc.flush();
  elections.count("KV_bench");
  t = performance.now();
  for (let i = 0; i < KV_OPS; i++) await kv.put(`k${i % 100}`, payload);
  out["R3 KV put (µs, lower is better)"] = ((performance.now() - t) / KV_OPS) * 1000;
  t = performance.now();
  for (let i = 0; i < KV_OPS; i++) await kv.get(`k${i % 100}`);
  out["R3 KV get (µs, lower is better)"] = ((performance.now() - t) / KV_OPS) * 1000;
  await nc.flush();
  out[ELECTIONS] = elections.elections;
  out[QUORUM_LOST] = elections.quorumLost;
  return out;
}

interface Failover {
  ms: number[];
  acked: number;
  stored: number;
}

/** kill -9 of the stream leader, then publish (unique Msg-Id, 1 s per attempt) until one is acknowledged. */
async function failover(cluster: JsCluster, nc: NatsConnection, jsm: JetStreamManager, log: (s: string) => void): Promise<Failover> {
  const js = jetstream(nc, { timeout: 1_000 });
  const created = await createReplicatedStream(jsm, { name: "FAILOVER", subjects: ["failover.>"], num_replicas: 3 });
  if (!created.ok) throw new Error(created.unsupported);
  await waitStreamHealthy(jsm, "FAILOVER", 3, 60_000);
  const acked = new Set<string>();
  let next = 0;
  const publishOnce = async (): Promise<boolean> => {
    const id = `f${next++}`;
    try {
      await js.publish("failover.x", id, { msgID: id, timeout: 1_000 });
      acked.add(id);
      return true;
    } catch {
      return false;
    }
  };
  const ms: number[] = [];
  for (let k = 0; k < KILLS; k++) {
    for (let i = 0; i < 20; i++) await publishOnce(); // traffic before the kill
    const leader = await until("a stream leader", 60_000, async () => (await streamLeader(jsm, "FAILOVER")) ?? undefined);
    const node = cluster.nodes.find((x) => x.name === leader)!;
    const t0 = performance.now();
    await node.kill9();
    const deadline = t0 + 120_000;
    for (;;) {
      const attempt = performance.now();
      if (await publishOnce()) break;
      if (performance.now() > deadline) throw new Error(`no PubAck within 120 s of killing ${leader}`);
      // "no responders" comes back at once while there is no leader: don't spin on it
      if (performance.now() - attempt < 20) await new Promise((r) => setTimeout(r, 20));
    }
    const took = performance.now() - t0;
    ms.push(took);
    log(`  kill ${k + 1}/${KILLS}: ${leader} → first PubAck after ${(took / 1000).toFixed(2)} s`);
    await node.start();
    await waitStreamHealthy(jsm, "FAILOVER", 3, 120_000);
  }
  const info = await jsm.streams.info("FAILOVER");
  return { ms, acked: acked.size, stored: info.state.messages };
}

const results: Record<ClusterServer, Result[]> = { natter: [], "nats-server": [] };
const unsupported: Partial<Record<ClusterServer, string>> = {};
console.log(`JetStream cluster bench: 3 nodes each, R3, ${SIZE} B; sync ${SYNC}, async ${MSGS} (window ${WINDOW}), KV ${KV_OPS} ops; ${ROUNDS} round(s); ${KILLS} leader kills`);
for (let r = 0; r < ROUNDS; r++) {
  const order = r % 2 === 0 ? KINDS : [...KINDS].reverse();
  for (const kind of order) {
    if (unsupported[kind]) continue;
    const fresh = await freshCluster(kind);
    if ("unsupported" in fresh) {
      unsupported[kind] = fresh.unsupported;
      console.log(`${kind}: unsupported — ${fresh.unsupported}`);
      continue;
    }
    try {
      results[kind].push(await throughput(fresh.cluster, fresh.nc, fresh.jsm));
      process.stdout.write(`round ${r + 1} ${kind} done\n`);
    } finally {
      await fresh.nc.close().catch(() => {});
      await fresh.cluster.shutdown();
    }
  }
}

const failovers: Partial<Record<ClusterServer, Failover>> = {};
if (KILLS > 0) {
  for (const kind of KINDS) {
    if (unsupported[kind]) continue;
    console.log(`${kind}: failover, ${KILLS} kills of the stream leader`);
    const fresh = await freshCluster(kind);
    if ("unsupported" in fresh) continue;
    try {
      failovers[kind] = await failover(fresh.cluster, fresh.nc, fresh.jsm, console.log);
    } finally {
      await fresh.nc.close().catch(() => {});
      await fresh.cluster.shutdown();
    }
  }
}

const keys = Object.keys(results["nats-server"][0] ?? results.natter[0] ?? {}).filter((k) => k !== ELECTIONS && k !== QUORUM_LOST);
const w = Math.max(30, ...keys.map((k) => k.length));
const cell = (kind: ClusterServer, k: string) => {
  if (unsupported[kind]) return "unsupported";
  const xs = results[kind].map((x) => x[k]!);
  if (xs.length === 0) return "-";
  const v = median(xs);
  return k.includes("µs") ? v.toFixed(0) : Math.round(v).toString();
};
console.log(`\n${"scenario".padEnd(w)}  ${"natter".padStart(11)}  ${"nats-server".padStart(11)}  ratio`);
for (const k of keys) {
  const a = results.natter.length ? median(results.natter.map((x) => x[k]!)) : NaN;
  const b = results["nats-server"].length ? median(results["nats-server"].map((x) => x[k]!)) : NaN;
  const ratio = k.includes("µs") ? b / a : a / b; // > 1: natter better
  // The range: the ratio of each round's pair (rounds alternate A B B A, so a pair ran side by side).
  const pairs = Math.min(results.natter.length, results["nats-server"].length);
  const rs = Array.from({ length: pairs }, (_, i) => (k.includes("µs") ? results["nats-server"][i]![k]! / results.natter[i]![k]! : results.natter[i]![k]! / results["nats-server"][i]![k]!)).sort((x, y) => x - y);
  const range = rs.length > 1 ? ` (${rs[0]!.toFixed(2)}–${rs[rs.length - 1]!.toFixed(2)})` : "";
  console.log(`${k.padEnd(w)}  ${cell("natter", k).padStart(11)}  ${cell("nats-server", k).padStart(11)}  ${Number.isFinite(ratio) ? `${ratio.toFixed(2)}x${range}` : "-"}`);
}
for (const k of [ELECTIONS, QUORUM_LOST]) {
  const sum = (kind: ClusterServer) => (results[kind].length ? String(results[kind].reduce((n, x) => n + x[k]!, 0)) : "-");
  console.log(`${k.padEnd(w)}  ${sum("natter").padStart(11)}  ${sum("nats-server").padStart(11)}`);
}
const fo = (kind: ClusterServer) => {
  if (unsupported[kind]) return "unsupported";
  const f = failovers[kind];
  if (!f) return "-";
  const s = [...f.ms].sort((x, y) => x - y);
  return `median ${(median(s) / 1000).toFixed(2)} s, min ${(s[0]! / 1000).toFixed(2)} s, max ${(s[s.length - 1]! / 1000).toFixed(2)} s over ${s.length} kills; ${f.acked} acked, ${f.stored} stored${f.stored < f.acked ? " — ACKED MESSAGES LOST" : ""}`;
};
if (KILLS > 0) {
  console.log(`\nfailover (kill -9 of the stream leader → first PubAck):`);
  for (const kind of KINDS) console.log(`  ${kind.padEnd(11)}  ${fo(kind)}`);
}
console.log("ratio = natter / nats-server for throughput, nats-server / natter for latency: ≥ 1 means natter is as good or better");
for (const [kind, why] of Object.entries(unsupported)) console.log(`${kind}: ${why}`);
process.exit(Object.values(failovers).some((f) => f!.stored < f!.acked) ? 1 : 0);
