// The benchmark scenarios: what each one measures and how the load generator is told to run it.
import { CLUSTER_SCENARIOS } from "./cluster.ts";
import { LEAF_SCENARIOS } from "./leaf.ts";

export type ScenarioKind = "throughput" | "latency" | "oneway";

export interface Scenario {
  name: string;
  kind: ScenarioKind;
  description: string;
  subs: number; // subscriber connections (0 = pub-only)
  queue?: boolean; // the subscribers form one queue group
  ws?: boolean; // the subscribers connect over WebSocket
  sizes: number[]; // default payload sizes in bytes
  pubs?: number; // publisher connections (pub-only only); default 1
  subSubjects?: string; // subscription subjects, comma-separated, round-robin over the subscribers
  noiseSubs?: number; // unrelated subscriptions on an extra connection (must receive nothing)
  rate?: number; // oneway: messages per second, paced
  // Measured against the minimal Bun TCP relay (bench/relay.ts) instead of the B server: natter's
  // figure as a fraction of what the runtime itself can move.
  baseline?: "relay";
  // A three-node cluster of each server (bench/cluster.ts): the publisher on node A, the subscribers
  // (or the responder) on these nodes, round-robin, e.g. "BC".
  cluster?: string;
  // A leaf node and its hub instead of a cluster (bench/leaf.ts): node A is the leaf, node B the hub.
  leaf?: boolean;
}

export const ALL_SIZES = [16, 128, 1024];

export const SCENARIOS: Scenario[] = [
  {
    name: "pub-only",
    kind: "throughput",
    description: "one publisher, no subscribers: how fast the server reads and discards PUBs",
    subs: 0,
    sizes: ALL_SIZES,
  },
  {
    name: "pub-sub",
    kind: "throughput",
    description: "one publisher, one subscriber (1:1)",
    subs: 1,
    sizes: ALL_SIZES,
  },
  {
    name: "fan-out-10",
    kind: "throughput",
    description: "one publisher, 10 subscribers each receiving every message",
    subs: 10,
    sizes: ALL_SIZES,
  },
  {
    name: "fan-out-100",
    kind: "throughput",
    description: "one publisher, 100 subscribers each receiving every message",
    subs: 100,
    sizes: ALL_SIZES,
  },
  {
    name: "pub-only-4",
    kind: "throughput",
    description: "four publishers at once, no subscribers",
    subs: 0,
    pubs: 4,
    sizes: [128],
  },
  {
    name: "wildcard-10",
    kind: "throughput",
    description: "10 subscribers on bench.*, bench.> and *.tp among 1000 unrelated subscriptions",
    subs: 10,
    subSubjects: "bench.*,bench.>,*.tp",
    noiseSubs: 1000,
    sizes: [128],
  },
  {
    name: "queue-10",
    kind: "throughput",
    description: "one publisher, a queue group of 10: each message to exactly one member",
    subs: 10,
    queue: true,
    sizes: ALL_SIZES,
  },
  {
    name: "req-reply",
    kind: "latency",
    description: "request-reply round trip, one request at a time (responder and requester on TCP)",
    subs: 0,
    sizes: [128],
  },
  {
    name: "ws-fan-out-50",
    kind: "throughput",
    description: "one TCP publisher, 50 WebSocket subscribers each receiving every message",
    subs: 50,
    ws: true,
    sizes: ALL_SIZES,
  },
  {
    name: "latency-20k",
    kind: "oneway",
    description: "one-way latency, publisher paced at 20k msgs/s, one subscriber (send time in the payload)",
    subs: 1,
    rate: 20_000,
    sizes: [128],
  },
  {
    name: "ws-latency-50",
    kind: "oneway",
    description: "one-way latency to 50 WebSocket subscribers, publisher paced at 2k msgs/s (100k deliveries/s)",
    subs: 50,
    ws: true,
    rate: 2_000,
    sizes: [128],
  },
  {
    name: "relay",
    kind: "throughput",
    description: "natter 1:1 against a minimal Bun TCP relay that forwards MSG bytes unparsed (the runtime's ceiling)",
    subs: 1,
    baseline: "relay",
    sizes: [16],
  },
];

SCENARIOS.push(...CLUSTER_SCENARIOS, ...LEAF_SCENARIOS);

export function findScenario(name: string): Scenario | undefined {
  return SCENARIOS.find((s) => s.name === name);
}
