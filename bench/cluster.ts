// Cluster scenarios of `npm run bench` (issue 6): a three-node cluster of each server, started fresh
// for every run, side by side. Node A gets the publisher (or requester); the subscribers (or the
// responder) connect to the nodes the scenario names, round-robin. Both clusters are configured alike:
// every node names the two others as routes, one cluster name.
//
//   natter:      bun src/main.ts     -a 127.0.0.1 -p P -n bench-X --cluster nats://127.0.0.1:C --routes <the other two> --cluster_name bench
//   nats-server: nats-server         (the same flags)
//
// The load generator (--sub-ports, bench/loadgen/cluster.c) waits until the subscribers' interest has
// reached node A before anything is timed (probe messages on a side subject), so neither server's
// route set-up time is measured, only its steady state. Server CPU is the three nodes together.
import type { Scenario } from "./scenarios.ts";
import { freePort, startServer, type RunningServer, type ServerKind } from "./servers.ts";
import type { Target } from "./targets.ts";

const NODES = ["A", "B", "C"] as const;

export const CLUSTER_SCENARIOS: Scenario[] = [
  {
    name: "cluster-fan-out-2",
    kind: "throughput",
    description: "3-node cluster: publisher on node A, one subscriber on B and one on C (each message crosses two routes)",
    subs: 2,
    cluster: "BC",
    sizes: [16, 128, 1024],
  },
  {
    name: "cluster-queue-9",
    kind: "throughput",
    description: "3-node cluster: publisher on A, a queue group of 9 spread over A, B and C (local members first: A's take all)",
    subs: 9,
    queue: true,
    cluster: "ABC",
    sizes: [128],
  },
  {
    name: "cluster-queue-remote-6",
    kind: "throughput",
    description: "3-node cluster: publisher on A, a queue group of 6 on B and C only (each message crosses one route to one node)",
    subs: 6,
    queue: true,
    cluster: "BC",
    sizes: [128],
  },
  {
    name: "cluster-req-reply",
    kind: "latency",
    description: "3-node cluster: requester on A, responder on B, one request at a time (each round trip crosses the route twice)",
    subs: 0,
    cluster: "B",
    sizes: [128],
  },
];

/** Issue 6's targets: natter / nats-server, each cluster against the other. */
export const CLUSTER_TARGETS: Target[] = [
  { what: "cluster: publisher on A, subscribers on B and C", scenario: "cluster-fan-out-2", sizes: null, metric: "msgs/s", op: ">=", value: 0.7 },
  { what: "cluster: queue group over A, B, C", scenario: "cluster-queue-9", sizes: null, metric: "msgs/s", op: ">=", value: 0.7 },
  { what: "cluster: queue group on B and C", scenario: "cluster-queue-remote-6", sizes: null, metric: "msgs/s", op: ">=", value: 0.7 },
  { what: "cluster: request-reply across a route p99", scenario: "cluster-req-reply", sizes: null, metric: "p99", op: "<=", value: 1.5 },
];

export interface RunningCluster extends RunningServer {
  /** Nodes A, B, C. The cluster itself stands for node A (port, pid, log). */
  nodes: RunningServer[];
}

/** Starts three nodes of `kind` as one cluster (all at once; each names the other two as routes). */
export async function startCluster(kind: ServerKind, natsBin?: string): Promise<RunningCluster> {
  if (kind === "relay") throw new Error("the Bun relay has no cluster mode");
  const clusterPorts: number[] = [];
  while (clusterPorts.length < NODES.length) {
    const p = await freePort();
    if (!clusterPorts.includes(p)) clusterPorts.push(p);
  }
  const started = await Promise.allSettled(
    NODES.map((name, i) => {
      const routes = clusterPorts.filter((_, j) => j !== i).map((p) => `nats://127.0.0.1:${p}`).join(",");
      const args = ["-n", `bench-${name}`, "--cluster", `nats://127.0.0.1:${clusterPorts[i]}`, "--routes", routes, "--cluster_name", "bench"];
      return startServer(kind, false, { args, natsBin });
    }),
  );
  const nodes = started.filter((r) => r.status === "fulfilled").map((r) => (r as PromiseFulfilledResult<RunningServer>).value);
  const failure = started.find((r) => r.status === "rejected") as PromiseRejectedResult | undefined;
  if (failure !== undefined) {
    await Promise.all(nodes.map((n) => n.stop()));
    throw failure.reason;
  }
  const a = nodes[0]!;
  return {
    ...a,
    nodes,
    stop: async (keepLog = false) => {
      await Promise.all(nodes.map((n) => n.stop(keepLog)));
    },
  };
}

/**
 * The least warm-up of a cluster run. Three fresh processes: a Bun node's JIT threads compile its hot
 * paths for about its first second and a half under load (~180 ms of JIT-thread CPU in the first
 * second, per node), and a half-second warm-up leaves that in the timed phase (p99.9 about doubled).
 * Both clusters get the same warm-up.
 */
export const CLUSTER_MIN_WARMUP_MS = 2000;

/**
 * The load generator's cluster arguments: the subscribers' servers, the other nodes' pids for the CPU
 * figure, and the warm-up (appended after the usual arguments: the later --warmup-ms wins).
 */
export function clusterLoadgenArgs(cluster: RunningCluster, s: Scenario, warmupMs: number): string[] {
  const ports = [...(s.cluster ?? "")].map((letter) => {
    const node = cluster.nodes[NODES.indexOf(letter as (typeof NODES)[number])];
    if (node === undefined) throw new Error(`scenario ${s.name}: no node ${letter}`);
    return node.port;
  });
  return [
    "--sub-ports", ports.join(","),
    "--server-pids", cluster.nodes.slice(1).map((n) => n.pid).join(","),
    "--warmup-ms", String(Math.max(warmupMs, CLUSTER_MIN_WARMUP_MS)),
  ];
}
