// Where a consumer's acks go in a cluster: to the node running the consumer only, as nats-server's consumer
// subscribes its own ack subject. (natter's JetStream nodes each took `$JS.ACK.>` before, so every ack a
// client sent crossed the routes to every JetStream node, each parsing and dropping those not for it.)
// Passes against nats-server 2.9.10 too (NATTER_TEST_SERVER=nats-server).
import { expect, test } from "vitest";
import { AckPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { waitFor, type ClusterNode } from "./spawn.ts";
import { client, threeJetStreamNodes } from "./js-cluster.ts";

/** Messages a node received over its routes so far (/routez in_msgs, summed). */
async function routedIn(node: ClusterNode): Promise<number> {
  const z = (await (await fetch(`http://127.0.0.1:${node.httpPort}/routez`)).json()) as { routes: { in_msgs: number }[] };
  return z.routes.reduce((n, r) => n + r.in_msgs, 0);
}

test("an ack crosses the routes to the node running the consumer, not to every JetStream node", async () => {
  const nodes = await threeJetStreamNodes();
  const admin = await client(nodes[0]!);
  const jsm = await jetstreamManager(admin, { timeout: 5000 });
  const created = await jsm.streams.add({ name: "ACKS", subjects: ["acks.>"], num_replicas: 1 });
  const holder = nodes.find((n) => n.name === created.cluster?.leader)!;
  expect(holder).toBeDefined();
  const [near, third] = nodes.filter((n) => n !== holder) as [ClusterNode, ClusterNode];
  const total = 300;
  const js = jetstream(admin);
  await Promise.all(Array.from({ length: total }, (_, i) => js.publish(`acks.${i}`, "x")));
  await jsm.consumers.add("ACKS", { durable_name: "d", ack_policy: AckPolicy.Explicit });

  // A client on a node that holds neither the stream nor the consumer fetches and acks every message.
  const nc = await client(near);
  const consumer = await jetstream(nc).consumers.get("ACKS", "d");
  const before = await routedIn(third);
  let acked = 0;
  while (acked < total) {
    for await (const m of await consumer.fetch({ max_messages: 100, expires: 2000 })) {
      m.ack();
      acked++;
    }
  }
  await nc.flush();
  await waitFor("every ack applied", async () => (await jsm.consumers.info("ACKS", "d")).ack_floor.stream_seq === total, 10_000);
  const seenByThird = (await routedIn(third)) - before;
  // The third node gets none of the acks (a few messages of its own traffic may cross meanwhile).
  expect(seenByThird).toBeLessThan(total / 3);
});
