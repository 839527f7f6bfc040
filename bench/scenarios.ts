// The benchmark scenarios: what each one measures and how the load generator is told to run it.

export type ScenarioKind = "throughput" | "latency";

export interface Scenario {
  name: string;
  kind: ScenarioKind;
  description: string;
  subs: number; // subscriber connections (0 = pub-only)
  queue?: boolean; // the subscribers form one queue group
  ws?: boolean; // the subscribers connect over WebSocket
  sizes: number[]; // default payload sizes in bytes
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
];

export function findScenario(name: string): Scenario | undefined {
  return SCENARIOS.find((s) => s.name === name);
}
