// A JetStream node that was away while the cluster went on (issue 13): the meta leader compacts its log
// after every change, so the returning node gets a snapshot rather than the changes one by one. It must
// still end up as if it had seen them: its copy of a stream deleted meanwhile goes, and a replicated stream
// it holds catches up through its group.
import { describe } from "vitest";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { waitFor, type ClusterNode } from "./spawn.ts";
import { natterOnly, threeJetStreamNodes, waitForMeta } from "./js-cluster.ts";

const enc = new TextEncoder();

async function clusterClient(nodes: ClusterNode[]): Promise<NatsConnection> {
  return connect({ servers: nodes.map((n) => n.hostport), reconnectTimeWait: 100, maxReconnectAttempts: -1, timeout: 5000 });
}

/** The streams a node holds, from its own /jsz. */
async function streamsOn(node: ClusterNode): Promise<string[]> {
  const jsz = (await (await fetch(`http://127.0.0.1:${node.httpPort}/jsz?streams=true`)).json()) as {
    account_details?: { stream_detail?: { name: string }[] }[];
  };
  return (jsz.account_details ?? []).flatMap((a) => (a.stream_detail ?? []).map((s) => s.name)).sort();
}

describe("a node that was away", () => {
  natterOnly("drops its copy of a stream deleted meanwhile; its replicated streams catch up", async () => {
    const nodes = await threeJetStreamNodes();
    // The client stays on the meta leader (a client of the node that goes away would first have to reconnect).
    const metaLeader = await waitForMeta(nodes);
    const nc = await clusterClient(nodes.filter((n) => n.name === metaLeader));
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: "GONE", subjects: ["gone.>"], num_replicas: 3 });
    await jsm.streams.add({ name: "KEPT", subjects: ["kept.>"], num_replicas: 3 });
    await waitFor("every node holds both", async () => (await Promise.all(nodes.map(streamsOn))).every((s) => s.join() === "GONE,KEPT"));
    // A follower of KEPT that is not the meta leader goes away.
    const leader = (await jsm.streams.info("KEPT")).cluster!.leader!;
    const away = nodes.find((n) => n.name !== leader && n.name !== metaLeader)!;
    await away.kill9();
    await jsm.streams.delete("GONE");
    const js = jetstream(nc);
    for (let i = 1; i <= 5; i++) await js.publish(`kept.${i}`, enc.encode(String(i)));
    await away.start();
    await waitForMeta(nodes);
    await waitFor("the returning node dropped GONE", async () => (await streamsOn(away)).join() === "KEPT", 15_000);
    await waitFor("its KEPT replica current", async () => {
      const info = await jsm.streams.info("KEPT").catch(() => null);
      return info?.cluster?.replicas?.find((r) => r.name === away.name)?.current === true;
    }, 15_000);
    // Its own copy (its /jsz shows its local store) has the five messages.
    await waitFor("the returning node's copy of KEPT has the five messages", async () => {
      const jsz = (await (await fetch(`http://127.0.0.1:${away.httpPort}/jsz?streams=true`)).json()) as {
        account_details?: { stream_detail?: { name: string; state: { messages: number; last_seq: number } }[] }[];
      };
      const state = (jsz.account_details ?? []).flatMap((a) => a.stream_detail ?? []).find((d) => d.name === "KEPT")?.state;
      return state?.messages === 5 && state.last_seq === 5;
    }, 15_000);
    await nc.close();
  }, 60_000);
});
