// False elections under load: a 3-node cluster (natter, nats-server, or both one after the other, each
// started fresh) with R3 streams kept busy (publishes with a window of acks in flight and a pull consumer
// acking, per stream) for --duration seconds, no fault at all. Counted: the streams' leader-elected and
// quorum-lost advisories once each stream was healthy, and changes of the meta leader (polled on every
// node's /jsz). Every one is a false election: nothing failed. Also printed: how late a 50 ms timer of
// this process fired (the machine's stalls: an election timeout fires when a node's loop stalls past it).
// With --pauses N, a machine-wide stall N times during the run: every node SIGSTOPped at once for 1–3 s
// (seeded), then resumed together (a swapping or starved machine stalls all its processes at once).
//
//   bun bench/false-elections.ts [--duration 120] [--streams 3] [--window 256] [--pauses 0] [--seed 1]
//                                [--only natter|nats-server]
import { AckPolicy, jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { startJsCluster, type ClusterServer } from "../test/cluster/jepsen/cluster.ts";
import { connectCluster, createReplicatedStream, jetstreamManager, until, waitStreamHealthy } from "../test/cluster/jepsen/stream.ts";
import { numberArg } from "./args.ts";

const DURATION_MS = numberArg("duration", 120) * 1000;
const STREAMS = numberArg("streams", 3);
const WINDOW = numberArg("window", 256);
const PAUSES = numberArg("pauses", 0);
const SEED = numberArg("seed", 1);
const onlyAt = process.argv.indexOf("--only");
const KINDS: ClusterServer[] = onlyAt >= 0 ? [process.argv[onlyAt + 1] as ClusterServer] : ["natter", "nats-server"];

interface Outcome {
  elections: number;
  quorumLost: number;
  metaChanges: number;
  published: number;
  consumed: number;
  lateP99: number;
  lateMax: number;
  stallsOver1s: number;
}

/** How late a 50 ms timer fires in this process, sampled for the whole run. */
function stallProbe(): () => number[] {
  const late: number[] = [];
  let due = performance.now() + 50;
  const timer = setInterval(() => {
    const now = performance.now();
    late.push(Math.max(0, now - due));
    due = now + 50;
  }, 50);
  return () => {
    clearInterval(timer);
    return late.sort((a, b) => a - b);
  };
}

async function publishLoop(nc: NatsConnection, subject: string, running: () => boolean): Promise<number> {
  const js = jetstream(nc, { timeout: 20_000 });
  const payload = new Uint8Array(128);
  let n = 0;
  while (running()) {
    const window: Promise<unknown>[] = [];
    for (let i = 0; i < WINDOW; i++) window.push(js.publish(subject, payload).then(() => n++, () => {}));
    await Promise.all(window);
  }
  return n;
}

async function consumeLoop(nc: NatsConnection, stream: string, running: () => boolean): Promise<number> {
  const js = jetstream(nc, { timeout: 20_000 });
  let n = 0;
  while (running()) {
    try {
      const c = await js.consumers.get(stream, "work");
      const batch = await c.fetch({ max_messages: 500, expires: 1000 });
      for await (const m of batch) {
        m.ack();
        n++;
      }
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return n;
}

async function run(kind: ClusterServer): Promise<Outcome> {
  const cluster = await startJsCluster({ server: kind, nodes: 3, network: "loopback" });
  const nc = await connectCluster(cluster, "false-elections");
  try {
    const jsm = await until("JetStream to answer", 60_000, () => jetstreamManager(nc, { timeout: 5_000 }));
    const names = Array.from({ length: STREAMS }, (_, i) => `BUSY${i}`);
    for (const name of names) {
      const created = await createReplicatedStream(jsm, { name, subjects: [`${name.toLowerCase()}.>`], num_replicas: 3 });
      if (!created.ok) throw new Error(created.unsupported);
      await waitStreamHealthy(jsm, name, 3, 60_000);
      await jsm.consumers.add(name, { durable_name: "work", ack_policy: AckPolicy.Explicit });
    }
    await nc.flush();
    const counted = new Set(names);
    const out: Outcome = { elections: 0, quorumLost: 0, metaChanges: 0, published: 0, consumed: 0, lateP99: 0, lateMax: 0, stallsOver1s: 0 };
    nc.subscribe("$JS.EVENT.ADVISORY.STREAM.*.>", {
      callback: (_err, m) => {
        const [what, stream] = m.subject.split(".").slice(4, 6);
        if (!counted.has(stream!)) return;
        if (what === "LEADER_ELECTED") out.elections++;
        if (what === "QUORUM_LOST") out.quorumLost++;
      },
    });
    await nc.flush();
    // The meta leader, as each node reports it: a change seen by any node counts once.
    let metaLeader: string | undefined;
    const pollMeta = async () => {
      for (const node of cluster.nodes) {
        const jsz = await fetch(`${node.monitorUrl}/jsz`, { signal: AbortSignal.timeout(2000) }).then((r) => r.json() as Promise<{ meta_cluster?: { leader?: string } }>, () => null);
        const leader = jsz?.meta_cluster?.leader;
        if (leader === undefined || leader === "") continue;
        if (metaLeader !== undefined && leader !== metaLeader) out.metaChanges++;
        metaLeader = leader;
      }
    };
    await pollMeta();
    const end = Date.now() + DURATION_MS;
    const running = () => Date.now() < end;
    const stalls = stallProbe();
    const meta = (async () => {
      while (running()) {
        await pollMeta();
        await new Promise((r) => setTimeout(r, 500));
      }
    })();
    // The machine-wide stalls, spread over the run (a small LCG: the same seed, the same stalls).
    let rnd = SEED >>> 0;
    const next = () => ((rnd = (Math.imul(rnd, 1664525) + 1013904223) >>> 0) / 2 ** 32);
    const pauses = (async () => {
      for (let i = 0; i < PAUSES && running(); i++) {
        await new Promise((r) => setTimeout(r, DURATION_MS / (PAUSES + 1)));
        const ms = 1000 + next() * 2000;
        for (const node of cluster.nodes) node.pause();
        await new Promise((r) => setTimeout(r, ms));
        for (const node of cluster.nodes) node.resume();
      }
    })();
    const counts = await Promise.all([
      pauses.then(() => 0),
      ...names.map((name) => publishLoop(nc, `${name.toLowerCase()}.x`, running)),
      ...names.map((name) => consumeLoop(nc, name, running)),
      meta.then(() => 0),
    ]);
    await nc.flush();
    const late = stalls();
    out.published = counts.slice(1, 1 + STREAMS).reduce((a, b) => a + b, 0);
    out.consumed = counts.slice(1 + STREAMS, 1 + 2 * STREAMS).reduce((a, b) => a + b, 0);
    out.lateP99 = late[Math.floor(late.length * 0.99)] ?? 0;
    out.lateMax = late[late.length - 1] ?? 0;
    out.stallsOver1s = late.filter((x) => x > 1000).length;
    return out;
  } finally {
    await nc.close().catch(() => {});
    await cluster.shutdown();
  }
}

console.log(`false elections: 3 nodes, ${STREAMS} R3 streams each published (window ${WINDOW}) and consumed for ${DURATION_MS / 1000} s, no fault${PAUSES > 0 ? `; ${PAUSES} machine-wide stalls of 1–3 s (seed ${SEED})` : ""}`);
for (const kind of KINDS) {
  const o = await run(kind);
  console.log(
    `${kind}: ${o.elections} stream leader elections, ${o.quorumLost} quorum lost, ${o.metaChanges} meta leader changes; ` +
      `${o.published} published, ${o.consumed} consumed; this process's 50 ms timer late by p99 ${o.lateP99.toFixed(0)} ms, max ${o.lateMax.toFixed(0)} ms (${o.stallsOver1s} stalls over 1 s)`,
  );
}
process.exit(0);
