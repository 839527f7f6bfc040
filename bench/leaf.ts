// Leafnode scenarios of `npm run bench` (issue 8): a leaf node dialing a hub, both of one server kind,
// started fresh for every run, side by side (natter leaf → natter hub next to nats-server leaf →
// nats-server hub). The publisher (or requester) is on the leaf, the subscribers (or the responder) on
// the hub: every message crosses the leafnode link. Both pairs are configured alike, from a config file:
//
//   hub:  leafnodes { listen: "127.0.0.1:L" }
//   leaf: leafnodes { remotes [ { url: "nats-leaf://127.0.0.1:L" } ] }
//
// The pair stands in for a cluster (bench/cluster.ts) whose node A is the leaf and node B the hub, so
// the load generator's --sub-ports waits until the subscribers' interest has crossed the link before
// anything is timed; server CPU is both processes together.
import { rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { RunningCluster } from "./cluster.ts";
import type { Scenario } from "./scenarios.ts";
import { freePort, startServer, type ServerKind } from "./servers.ts";

export const LEAF_SCENARIOS: Scenario[] = [
  {
    name: "leaf-pub-sub",
    kind: "throughput",
    description: "leaf node → hub: publisher on the leaf, one subscriber on the hub (each message crosses the link)",
    subs: 1,
    cluster: "B",
    leaf: true,
    sizes: [16, 128, 1024],
  },
  {
    name: "leaf-req-reply",
    kind: "latency",
    description: "leaf node → hub: requester on the leaf, responder on the hub, one request at a time (the link twice per round trip)",
    subs: 0,
    cluster: "B",
    leaf: true,
    sizes: [128],
  },
];

/** Starts a hub of `kind`, then a leaf of `kind` dialing it; node A is the leaf, node B the hub. */
export async function startLeafPair(kind: ServerKind, natsBin?: string): Promise<RunningCluster> {
  if (kind === "relay") throw new Error("the Bun relay has no leafnode mode");
  const leafPort = await freePort();
  const hubConf = join(tmpdir(), `natter-bench-hub-${process.pid}-${leafPort}.conf`);
  const leafConf = join(tmpdir(), `natter-bench-leaf-${process.pid}-${leafPort}.conf`);
  writeFileSync(hubConf, `leafnodes { listen: "127.0.0.1:${leafPort}" }\n`);
  writeFileSync(leafConf, `leafnodes { remotes [ { url: "nats-leaf://127.0.0.1:${leafPort}" } ] }\n`);
  const cleanup = () => {
    rmSync(hubConf, { force: true });
    rmSync(leafConf, { force: true });
  };
  let hub;
  try {
    hub = await startServer(kind, false, { args: ["-n", "bench-hub", "-c", hubConf], natsBin });
  } catch (error) {
    cleanup();
    throw error;
  }
  let leaf;
  try {
    leaf = await startServer(kind, false, { args: ["-n", "bench-leaf", "-c", leafConf], natsBin });
  } catch (error) {
    await hub.stop(true);
    cleanup();
    throw error;
  }
  const nodes = [leaf, hub];
  return {
    ...leaf,
    nodes,
    stop: async (keepLog = false) => {
      await Promise.all(nodes.map((n) => n.stop(keepLog)));
      cleanup();
    },
  };
}
