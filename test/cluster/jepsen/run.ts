// A Jepsen-style run against a real cluster: start the nodes, create an R3 stream and a durable pull
// consumer, let publishers and the consumer work while the seeded fault schedule runs, heal everything,
// read every replica, and check the history (checker.ts).
//
// As a script (`npm run jepsen -- --nodes 5 --duration 300 --seed N --server natter|nats-server
// [--network netns|loopback] [--faults kill,partition,pause] [--publishers 3] [--rate 100] [--logs]`); the seed may also come from JEPSEN_SEED.
// Exit status 0 when the checker finds nothing, 1 when it does, 2 when the server has no replicated streams.
import type { JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { check, type CheckResult, type ReplicaRead } from "./checker.ts";
import { netnsUnavailable, startJsCluster, type ClusterServer, type JsCluster, type NetworkMode } from "./cluster.ts";
import { History } from "./history.ts";
import { Rng, seedFromEnv } from "./random.ts";
import { formatSchedule, generateSchedule, type Episode, type FaultKind } from "./schedule.ts";
import { connectCluster, createReplicatedStream, jetstreamManager, readReplica, replicaState, streamLeader, until, waitStreamHealthy } from "./stream.ts";
import { Consumer, consumerConfig, Publisher } from "./workload.ts";

export interface JepsenOptions {
  server: ClusterServer;
  nodes: number;
  durationMs: number;
  seed: number;
  /** Default: netns when available, loopback otherwise. */
  network?: NetworkMode;
  publishers?: number;
  /** Fault kinds to draw from (default: schedule.ts). */
  faults?: FaultKind[];
  /** Per publisher, messages/s at most. */
  rate?: number;
  ackWaitMs?: number;
  /** Deadline for each recovery step after healing (leader, catch-up, drain). */
  recoveryMs?: number;
  log?: (line: string) => void;
}

export type JepsenOutcome =
  | { kind: "unsupported"; reason: string }
  | { kind: "checked"; result: CheckResult; schedule: Episode[]; seed: number; logs: string; network: NetworkMode; notes: string[] };

const STREAM = "JEPSEN";
const DURABLE = "jepsen";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function runJepsen(opts: JepsenOptions): Promise<JepsenOutcome> {
  const log = opts.log ?? ((line: string) => console.log(line));
  const whyNoNetns = netnsUnavailable();
  const network: NetworkMode = opts.network ?? (whyNoNetns === null ? "netns" : "loopback");
  if (network === "netns" && whyNoNetns !== null) throw new Error(`--network netns: ${whyNoNetns}`);
  const ackWaitMs = opts.ackWaitMs ?? 5_000;
  const recoveryMs = opts.recoveryMs ?? 90_000;
  const schedule = generateSchedule({ seed: opts.seed, nodes: opts.nodes, durationMs: opts.durationMs, partitions: network === "netns", faults: opts.faults });
  log(`jepsen: seed=${opts.seed} (replay: JEPSEN_SEED=${opts.seed}) server=${opts.server} nodes=${opts.nodes} duration=${opts.durationMs / 1000}s network=${network}${whyNoNetns && network === "loopback" ? ` (${whyNoNetns}: pauses stand in for partitions)` : ""}`);
  log(`schedule:\n${formatSchedule(schedule)}`);

  const cluster = await startJsCluster({ server: opts.server, nodes: opts.nodes, network });
  const conns: NatsConnection[] = [];
  let history = new History();
  const notes: string[] = [];
  const publishers: Publisher[] = [];
  let consumer: Consumer | null = null;
  try {
    const admin = await connectCluster(cluster, "jepsen-admin");
    conns.push(admin);
    const jsm = await until("JetStream to answer", 60_000, () => jetstreamManager(admin, { timeout: 5_000 }));
    const created = await createReplicatedStream(jsm, {
      name: STREAM,
      subjects: ["jepsen.>"],
      num_replicas: 3,
      allow_direct: true,
      duplicate_window: (opts.durationMs + 10 * 60_000) * 1_000_000, // longer than any retry of the run
    });
    if (!created.ok) return { kind: "unsupported", reason: created.unsupported };
    await waitStreamHealthy(jsm, STREAM, 3, 60_000);
    const consumerOptions = { stream: STREAM, durable: DURABLE, ackWaitMs, batch: 50 };
    await until("the durable consumer to be created", 60_000, () => jsm.consumers.add(STREAM, consumerConfig(consumerOptions)).then(() => true));

    history = new History(); // its clock starts with the clients and the schedule
    for (let i = 0; i < (opts.publishers ?? 2); i++) {
      const nc = await connectCluster(cluster, `jepsen-p${i}`);
      conns.push(nc);
      publishers.push(new Publisher(nc, history, { name: `p${i}`, subject: `jepsen.p${i}`, rate: opts.rate ?? 50, timeoutMs: 2_000 }));
    }
    const consumerConn = await connectCluster(cluster, "jepsen-consumer");
    conns.push(consumerConn);
    const reader = new Consumer(consumerConn, history, consumerOptions);
    consumer = reader;

    const quickJsm = await jetstreamManager(admin, { timeout: 2_000 }); // who leads now: asked at each episode, not waited for
    await runSchedule(cluster, quickJsm, schedule, history, new Rng(opts.seed ^ 0x5eed), log);

    // Heal, then let the clients finish what they started and the replicas catch up.
    await cluster.healAll();
    history.add({ t: history.now(), type: "fault", phase: "heal", text: "healed: partitions removed, paused nodes resumed, killed nodes restarted" });
    log(`+${(history.now() / 1000).toFixed(1)}s healed`);
    await waitStreamHealthy(jsm, STREAM, 3, recoveryMs);
    await Promise.all(publishers.map((p) => p.stop(recoveryMs)));
    // The fence: one more acknowledged write after the clients stop. A follower may apply the last entry it
    // holds only when the next one arrives (nats-server 2.9.10 left one follower exactly one message behind
    // for minutes, stream info calling it current, until the next write), so everything before the fence is
    // what every replica must agree on; the fence itself is not judged.
    const fence = new Publisher(admin, history, { name: "fence", subject: "jepsen.fence", rate: 1, timeoutMs: 2_000 });
    await fence.stop(recoveryMs); // one message, retried until acked
    const fenceAck = history.events.find((e) => e.type === "pub-ok" && e.client === "fence");
    const leaderLast = (await until("stream info", 30_000, () => jsm.streams.info(STREAM))).state.last_seq;
    const readUpTo = fenceAck?.type === "pub-ok" ? fenceAck.seq - 1 : leaderLast;
    if (fenceAck === undefined) notes.push(`the fence write was never acknowledged: reading up to the leader's last sequence ${leaderLast}`);
    let detail = "";
    await until(`every replica to hold sequences up to ${readUpTo}`, recoveryMs, async () => {
      await waitStreamHealthy(jsm, STREAM, 3, 5_000);
      const states = await Promise.all(cluster.nodes.map((n) => replicaState(n, STREAM).catch(() => null)));
      detail = cluster.nodes.map((n, i) => `${n.name}=${states[i] ? `${states[i]!.messages}/${states[i]!.last_seq}` : "none"}`).join(" ");
      const held = states.filter((x) => x !== null);
      return held.length >= 3 && held.every((x) => x!.last_seq >= readUpTo) ? true : undefined;
    }).catch(() => notes.push(`replicas still behind ${recoveryMs / 1000} s after the fence (messages/last per node: ${detail})`));
    for (const note of notes) log(note);
    const lastSeq = readUpTo;
    const consumerDrained = await until("the consumer to receive every stored message", recoveryMs, async () => {
      for (let s = 1; s <= lastSeq; s++) if (!reader.delivered.has(s)) throw new Error(`seq ${s} not received yet (${reader.delivered.size} received)`);
      return true;
    }).catch((error) => {
      log(`consumer: ${(error as Error).message}`);
      return false;
    });
    await reader.stop();

    const replicas: ReplicaRead[] = [];
    for (const node of cluster.nodes) {
      const state = await replicaState(node, STREAM).catch(() => null);
      if (state === null) continue; // not a replica (5 nodes, R3)
      replicas.push(await readReplica(node, STREAM, lastSeq));
    }
    // natter confirms an ack once its group committed it (nats-server 2.9 once it proposed it).
    const result = check({ events: history.events, replicas, ackWaitMs, consumerDrained, readUpTo, acksCommitted: opts.server === "natter" });
    const s = result.stats;
    log(`history: ${s.invoked} publishes (${s.acked} acked, ${s.indeterminate} indeterminate, ${s.duplicateAcks} duplicate acks after retries), ${history.count("pub-fail")} failed attempts; ${s.stored} stored before the fence; ${s.deliveries} deliveries (${s.redeliveries} redeliveries, ${s.redeliveredAfterAckAllowed} after a confirmed ack and a fault, allowed)`);
    log(`replicas read: ${replicas.map((r) => `${r.server}=${r.messages.length}`).join(" ")}`);
    log(result.ok ? `jepsen: OK (seed ${opts.seed})` : `jepsen: FAILED (replay: JEPSEN_SEED=${opts.seed})\n  ${result.violations.join("\n  ")}`);
    return { kind: "checked", result, schedule, seed: opts.seed, logs: cluster.logs(), network, notes };
  } finally {
    // On an early failure too: no client loop may outlive the run.
    for (const p of publishers) void p.stop(0);
    void consumer?.stop();
    await Promise.all(conns.map((c) => c.close().catch(() => {})));
    await cluster.shutdown();
  }
}

/** Runs each episode at its time; "leader" is resolved when the episode starts. */
async function runSchedule(cluster: JsCluster, jsm: JetStreamManager, schedule: Episode[], history: History, rng: Rng, log: (line: string) => void): Promise<void> {
  const t0 = history.now();
  for (const episode of schedule) {
    const wait = episode.atMs - (history.now() - t0);
    if (wait > 0) await sleep(wait); // the schedule's clock
    const leaderName = episode.targets.includes("leader") ? await streamLeader(jsm, STREAM) : null;
    const targets: number[] = [];
    for (const t of episode.targets) {
      let i = t === "leader" ? cluster.nodes.findIndex((n) => n.name === leaderName) : t;
      while (i < 0 || targets.includes(i)) i = rng.int(0, cluster.nodes.length - 1); // no leader now, or already chosen
      targets.push(i);
    }
    const names = targets.map((i) => cluster.nodes[i]!.name).join(",");
    const text = `${episode.kind} ${names}${leaderName ? ` (stream leader ${leaderName})` : ""}`;
    history.add({ t: history.now(), type: "fault", phase: "start", text });
    log(`+${(history.now() / 1000).toFixed(1)}s ${text}`);
    if (episode.kind === "kill") await Promise.all(targets.map((i) => cluster.nodes[i]!.kill9()));
    else if (episode.kind === "pause") for (const i of targets) cluster.nodes[i]!.pause();
    else cluster.partition(targets);
    await sleep(episode.forMs);
    if (episode.kind === "kill") await Promise.all(targets.map((i) => cluster.nodes[i]!.start()));
    else if (episode.kind === "pause") for (const i of targets) cluster.nodes[i]!.resume();
    else cluster.heal();
    history.add({ t: history.now(), type: "fault", phase: "end", text: `end of ${text}` });
    log(`+${(history.now() / 1000).toFixed(1)}s end of ${episode.kind} ${names}`);
  }
}

function argValue(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

if (import.meta.main) {
  // Ctrl-C: exit through the 'exit' hook, which kills the nodes and removes the namespaces.
  for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => process.exit(130));
  const server = (argValue("server") ?? "natter") as ClusterServer;
  if (server !== "natter" && server !== "nats-server") throw new Error("--server natter|nats-server");
  const network = argValue("network") as NetworkMode | undefined;
  const seedArg = argValue("seed");
  const outcome = await runJepsen({
    server,
    nodes: Number(argValue("nodes") ?? 3),
    durationMs: Number(argValue("duration") ?? 60) * 1000,
    seed: seedArg !== undefined ? Number(seedArg) : seedFromEnv(),
    network,
    publishers: Number(argValue("publishers") ?? 2),
    rate: Number(argValue("rate") ?? 50),
    faults: argValue("faults")?.split(",") as FaultKind[] | undefined,
  });
  if (outcome.kind === "unsupported") {
    console.log(`jepsen: ${outcome.reason}`);
    process.exit(2);
  }
  if (!outcome.result.ok && process.argv.includes("--logs")) console.log(outcome.logs);
  process.exit(outcome.result.ok ? 0 : 1);
}
