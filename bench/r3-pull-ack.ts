// R3 pull consume + ack alone (the scenario of bench/jetstream-cluster.ts), with the CPU each node spent per
// consumed and acked message, the stream leader apart from its followers: where a durable's replicated state
// costs. Rounds alternate A B B A on fresh 3-node clusters; the stream is filled first (async publishes), then
// one durable consumes and acks it all. NATS_SERVER_BIN=<a wrapper running an older natter> makes the
// "nats-server" side that natter: an A/B of a code change (see the common brief's recipe).
//
//   bun bench/r3-pull-ack.ts [--msgs 20000] [--rounds 4] [--size 128] [--max 1000] [--only natter|nats-server]
//                            [--term] [--any]
import { AckPolicy, jetstream } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { readFileSync } from "node:fs";
import { startJsCluster, type ClusterServer, type JsCluster } from "../test/cluster/jepsen/cluster.ts";
import { connectCluster, createReplicatedStream, jetstreamManager, streamLeader, until, waitStreamHealthy } from "../test/cluster/jepsen/stream.ts";
import { numberArg } from "./args.ts";

const MSGS = numberArg("msgs", 20_000);
const ROUNDS = numberArg("rounds", 4);
const SIZE = numberArg("size", 128);
const MAX_MESSAGES = numberArg("max", 1000);
const onlyAt = process.argv.indexOf("--only");
const KINDS: ClusterServer[] = onlyAt >= 0 ? [process.argv[onlyAt + 1] as ClusterServer] : ["natter", "nats-server"];
const CLOCK_TICKS = 100;
/** --term: stop the servers with SIGTERM (profiles written on exit) rather than SIGKILL. */
const TERM = process.argv.includes("--term");
/**
 * --any: the consuming client connects wherever connectCluster lands (as bench/jetstream-cluster.ts); by
 * default it connects to the stream leader's node, since a client on a follower moves its deliveries and
 * acks through that node, and which node it lands on changed the servers' CPU per message by half.
 */
const ANY = process.argv.includes("--any");

/** CPU time (user + system, ms) one process has used so far. */
function cpuMs(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}

interface Round {
  msgsPerS: number;
  leaderUs: number;
  followersUs: number;
}

async function round(kind: ClusterServer): Promise<Round> {
  const cluster: JsCluster = await startJsCluster({ server: kind, nodes: 3, network: "loopback" });
  const nc = await connectCluster(cluster, "bench");
  try {
    const jsm = await until("JetStream to answer", 60_000, () => jetstreamManager(nc, { timeout: 5_000 }));
    const created = await createReplicatedStream(jsm, { name: "BENCH", subjects: ["bench.>"], num_replicas: 3 });
    if (!created.ok) throw new Error(created.unsupported);
    await waitStreamHealthy(jsm, "BENCH", 3, 60_000);
    const js = jetstream(nc, { timeout: 10_000 });
    const payload = new Uint8Array(SIZE);
    let inflight: Promise<unknown>[] = [];
    for (let i = 0; i < MSGS; i++) {
      inflight.push(js.publish("bench.async", payload));
      if (inflight.length >= 256) {
        await Promise.all(inflight);
        inflight = [];
      }
    }
    await Promise.all(inflight);
    const leaderName = await streamLeader(jsm, "BENCH");
    const leader = cluster.nodes.find((n) => n.name === leaderName);
    if (leader === undefined) throw new Error("no stream leader");
    const followers = cluster.nodes.filter((n) => n !== leader);
    await jsm.consumers.add("BENCH", { durable_name: "pull", ack_policy: AckPolicy.Explicit, filter_subject: "bench.async" });
    const consumerNc: NatsConnection = ANY ? nc : await connect({ servers: [leader.hostport], name: "bench-consumer" });
    const pull = await jetstream(consumerNc, { timeout: 10_000 }).consumers.get("BENCH", "pull");
    const leader0 = cpuMs(leader.pid);
    const followers0 = followers.reduce((s, n) => s + cpuMs(n.pid), 0);
    const t = performance.now();
    let n = 0;
    for await (const m of await pull.consume({ max_messages: MAX_MESSAGES })) {
      m.ack();
      if (++n >= MSGS) break;
    }
    const seconds = (performance.now() - t) / 1000;
    await consumerNc.flush();
    if (consumerNc !== nc) await consumerNc.close();
    return {
      msgsPerS: MSGS / seconds,
      leaderUs: ((cpuMs(leader.pid) - leader0) * 1000) / MSGS,
      followersUs: ((followers.reduce((s, n) => s + cpuMs(n.pid), 0) - followers0) * 1000) / MSGS / followers.length,
    };
  } finally {
    await nc.close().catch(() => {});
    if (TERM) {
      // A graceful stop first: a server run with `bun --cpu-prof` writes its profile on exit.
      for (const node of cluster.nodes) process.kill(node.pid, "SIGTERM");
      await until("the servers to exit", 30_000, async () => (cluster.nodes.every((node) => !node.running) ? true : undefined));
    }
    await cluster.shutdown();
  }
}

/** The three servers' CPU per message (where the client's connection lands moves CPU between them, not this much). */
const total = (x: Round) => x.leaderUs + 2 * x.followersUs;
const results: Record<string, Round[]> = { natter: [], "nats-server": [] };
console.log(`R3 pull consume + ack: ${MSGS} msgs of ${SIZE} B, max_messages ${MAX_MESSAGES}, ${ROUNDS} rounds (A B B A)`);
for (let r = 0; r < ROUNDS; r++) {
  for (const kind of r % 2 === 0 ? KINDS : [...KINDS].reverse()) {
    const x = await round(kind);
    results[kind]!.push(x);
    console.log(`round ${r + 1} ${kind}: ${Math.round(x.msgsPerS)} msg/s, CPU per msg: ${total(x).toFixed(1)} µs (leader ${x.leaderUs.toFixed(1)}, each follower ${x.followersUs.toFixed(1)})`);
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const range = (xs: number[], digits: number) => `${median(xs).toFixed(digits)} (${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)})`;
for (const kind of KINDS) {
  const xs = results[kind]!;
  console.log(`${kind}: ${range(xs.map((x) => x.msgsPerS), 0)} msg/s; servers' CPU ${range(xs.map(total), 1)} µs/msg; leader ${range(xs.map((x) => x.leaderUs), 1)} µs/msg; follower ${range(xs.map((x) => x.followersUs), 1)} µs/msg`);
}
if (KINDS.length === 2) {
  const [a, b] = KINDS.map((k) => results[k]!);
  const ratios = a!.map((x, i) => x.msgsPerS / b![i]!.msgsPerS);
  console.log(`msg/s ratio ${KINDS[0]} / ${KINDS[1]} per round: ${ratios.map((x) => x.toFixed(2)).join(" ")}`);
  console.log(`CPU per msg ratio ${KINDS[0]} / ${KINDS[1]} per round: ${a!.map((x, i) => (total(x) / total(b![i]!)).toFixed(2)).join(" ")}`);
}
