// Store-and-forward with a natter JetStream cluster as the hub (issue 14's scenario 3): an edge (leaf,
// domain `edge`) attached to node A of a 3-node natter cluster (domain `hub`). A hub stream placed by the
// meta leader on any node sources the edge's TELEMETRY across the leaf link (its consumer create and the
// deliveries cross the cluster's routes to and from A), and the edge mirrors the hub's COMMANDS, through
// a kill -9 of A.
// NATTER_TEST_SERVER=nats-server runs the same with a nats-server cluster and edge.
import type { JetStreamManager, NatsConnection } from "nats";
import { expect, test } from "vitest";
import { serverKind } from "../harness/server.ts";
import { contents, sc, storeDir } from "./edge-helpers.ts";
import { client, logs, waitForLink } from "./helpers.ts";
import { HOST, startProc, waitFor, type Proc } from "./spawn.ts";

async function hubNode(name: string, seed: Proc | null): Promise<Proc> {
  // The seed routes to itself: nats-server starts a JetStream cluster only with routes configured.
  const routes = `, routes: ["nats://${HOST}:${seed === null ? "{{cluster_port}}" : seed.clusterPort}"]`;
  return startProc(serverKind, {
    name,
    config: `jetstream { store_dir: "${storeDir()}", domain: hub }\ncluster { name: hub, listen: "${HOST}:{{cluster_port}}"${routes} }\nleafnodes { listen: "${HOST}:{{leaf_port}}" }\n`,
  });
}

/** A stream's last sequence and message count; zeros while its node is away (the request times out). */
async function state(jsm: JetStreamManager, stream: string): Promise<{ last_seq: number; messages: number }> {
  try {
    return (await jsm.streams.info(stream)).state;
  } catch {
    return { last_seq: 0, messages: 0 };
  }
}

/** Until the request's answer says something but "no responders" / a timeout (the meta group may still be electing). */
async function retried<T>(what: string, op: () => Promise<T>, detail: () => string): Promise<T> {
  let last: unknown = null;
  const got = await waitFor(what, async () => {
    try {
      return { value: await op() };
    } catch (error) {
      last = error;
      return null;
    }
  }, 20_000, () => `${String(last)}\n${detail()}`);
  return got.value;
}

test(`an edge attached to a 3-node ${serverKind} JetStream cluster: a hub stream sources the edge's stream, the edge mirrors the hub's, through a kill -9 of the edge's node`, async () => {
  const a = await hubNode("A", null);
  const b = await hubNode("B", a);
  const c = await hubNode("C", a);
  const edge = await startProc(serverKind, {
    name: "EDGE",
    config: `jetstream { store_dir: "${storeDir()}", domain: edge }\nleafnodes { reconnect: 1, remotes [ { url: "nats-leaf://${HOST}:${a.leafPort}" } ] }\n`,
  });
  const detail = logs(a, b, c, edge);
  const ec = await client(edge);
  const cc: NatsConnection = await client(c); // the hub's client is on C: nothing of this goes through A's clients
  await waitForLink(ec, cc, detail);
  const ejsm = await ec.jetstreamManager();
  const hjsm = await retried("the hub's JetStream (its meta leader elected)", () => cc.jetstreamManager(), detail);
  await ejsm.streams.add({ name: "TELEMETRY", subjects: ["telemetry.>"] });
  await retried("the hub's sourcing stream", () => hjsm.streams.add({ name: "ALL_TELEMETRY", sources: [{ name: "TELEMETRY", external: { api: "$JS.edge.API", deliver: "" } }] }), detail);
  await retried("the hub's COMMANDS", () => hjsm.streams.add({ name: "COMMANDS", subjects: ["commands.>"] }), detail);
  await ejsm.streams.add({ name: "COMMANDS", mirror: { name: "COMMANDS", external: { api: "$JS.hub.API", deliver: "" } } });

  const ejs = ec.jetstream();
  const hjs = cc.jetstream();
  for (let i = 0; i < 20; i++) await ejs.publish(`telemetry.s${i % 3}`, sc.encode(`m${i}`));
  for (let i = 0; i < 5; i++) await hjs.publish(`commands.edge.c${i}`, sc.encode(`c${i}`));
  await waitFor("20 messages in the hub's stream", async () => (await state(hjsm, "ALL_TELEMETRY")).messages === 20, 20_000, detail);
  await waitFor("5 commands mirrored at the edge", async () => (await state(ejsm, "COMMANDS")).last_seq === 5, 20_000, detail);

  // The edge's node dies (the hub streams may live there too: they come back with it); the edge keeps
  // acknowledging, and redials A or another node its INFO named.
  await a.kill9();
  for (let i = 20; i < 60; i++) await ejs.publish(`telemetry.s${i % 3}`, sc.encode(`m${i}`));
  await a.start();
  await retried("a command published once A is back", () => hjs.publish("commands.edge.c5", sc.encode("c5")), detail);
  for (let i = 6; i < 10; i++) await hjs.publish(`commands.edge.c${i}`, sc.encode(`c${i}`));
  await waitFor("60 messages in the hub's stream", async () => (await state(hjsm, "ALL_TELEMETRY")).messages >= 60, 30_000, detail);
  await waitFor("10 commands mirrored at the edge", async () => (await state(ejsm, "COMMANDS")).last_seq === 10, 30_000, detail);
  const { data } = await contents(hjsm, "ALL_TELEMETRY");
  expect(data).toEqual(Array.from({ length: 60 }, (_, i) => `m${i}`));
  const mirrored = await contents(ejsm, "COMMANDS");
  expect(mirrored.data).toEqual(Array.from({ length: 10 }, (_, i) => `c${i}`));
}, 90_000);
