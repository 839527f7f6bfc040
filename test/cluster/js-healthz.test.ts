// /healthz on the nodes of a JetStream cluster (issue 13), as nats-server answers it: ok while the meta
// group has a leader that the node is current with and the streams assigned to it are current; 503 with
// nats-server's text when the meta leader is gone; ?js-enabled-only=true only asks whether JetStream runs.
// Also against a nats-server 2.9 cluster (NATTER_TEST_SERVER=nats-server).
import { describe, expect, test } from "vitest";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { waitFor, type ClusterNode } from "./spawn.ts";
import { threeJetStreamNodes, waitForMeta } from "./js-cluster.ts";

async function healthz(node: ClusterNode, query = ""): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await fetch(`http://127.0.0.1:${node.httpPort}/healthz${query}`);
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
}

const OK = { status: 200, body: { status: "ok" } };

async function allHealthy(nodes: ClusterNode[]): Promise<void> {
  await waitFor("every node healthy", async () => (await Promise.all(nodes.map((n) => healthz(n)))).every((h) => JSON.stringify(h) === JSON.stringify(OK)), 20_000);
}

describe("/healthz in a JetStream cluster", () => {
  test("ok with a meta leader and current streams; 503 without a meta leader; js-enabled-only stays ok", async () => {
    const nodes = await threeJetStreamNodes();
    const metaLeader = await waitForMeta(nodes);
    const nc = await connect({ servers: nodes.map((n) => n.hostport), timeout: 5000 });
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: "H", subjects: ["h.>"], num_replicas: 3 });
    for (let i = 1; i <= 3; i++) await jetstream(nc).publish(`h.${i}`, new TextEncoder().encode(String(i)));
    await allHealthy(nodes);
    await nc.close();

    // The meta leader and one more go: the last node has no meta leader (nor quorum for its stream).
    const killed = [nodes.find((n) => n.name === metaLeader)!, nodes.find((n) => n.name !== metaLeader)!];
    const survivor = nodes.find((n) => !killed.includes(n))!;
    for (const n of killed) await n.kill9();
    await waitFor("the survivor reports no meta leader", async () => {
      const h = await healthz(survivor);
      return h.status === 503 && h.body.error === "JetStream has not established contact with a meta leader";
    }, 20_000);
    expect((await healthz(survivor)).body).toEqual({ status: "unavailable", error: "JetStream has not established contact with a meta leader" });
    expect(await healthz(survivor, "?js-enabled-only=true")).toEqual(OK);

    // Back: healthy again once the group has a leader and the stream's replicas are current.
    for (const n of killed) await n.start();
    await allHealthy(nodes);
  }, 60_000);
});
