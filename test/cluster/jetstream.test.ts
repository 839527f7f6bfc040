// JetStream in a cluster: one node runs JetStream (-js), the two others do not. Its stream lives on
// that node and is reachable from every node: API calls (the official @nats-io/jetstream managers),
// publishes with PubAcks, consumers and fetches, all from clients connected elsewhere. Each API
// request gets exactly one answer (only the JetStream node has $JS.API.> interest to propagate).
// And the core mechanism a stream layer could use to keep a subscription on its own node:
// InternalClient.subscribe(..., { local: true }) is not told to the other nodes.
import { afterAll, describe, expect, test } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { AckPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { InternalClient } from "../../src/internal-client.ts";
import { LocalInterest, ObservedSublist } from "../../src/cluster/interest.ts";
import { testLogger } from "../harness/failure-log.ts";
import { defaultOptions } from "../../src/options.ts";
import { Server } from "../../src/server.ts";
import type { Subscription } from "../../src/subscription.ts";
import { startNode, waitFor, waitForMesh, type ClusterNode } from "./spawn.ts";

const open = new Set<NatsConnection>();
const dirs: string[] = [];
afterAll(async () => {
  await Promise.all([...open].map((nc) => nc.close().catch(() => {})));
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function client(node: ClusterNode): Promise<NatsConnection> {
  const nc = await connect({ servers: node.hostport, reconnect: false, timeout: 5000 });
  open.add(nc);
  return nc;
}

/** How many answers one request to `subject` gets within `ms` (a plain inbox subscription, not the request API). */
async function answers(nc: NatsConnection, subject: string, ms = 1000): Promise<number> {
  const inbox = `reply.${Math.random().toString(36).slice(2)}`;
  let n = 0;
  const sub = nc.subscribe(inbox, { callback: () => { n++; } });
  await nc.flush();
  nc.publish(subject, new Uint8Array(), { reply: inbox });
  await nc.flush();
  await new Promise((r) => setTimeout(r, ms));
  sub.unsubscribe();
  return n;
}

describe("one JetStream node in a three-node cluster", () => {
  test("streams, publishes, pull consumers and KV, all from clients on the other nodes", async () => {
    const store = mkdtempSync(path.join(tmpdir(), "natter-cluster-js-"));
    dirs.push(store);
    const js0 = await startNode({ name: "N0", extraArgs: ["-js", "--store_dir", store] });
    const n1 = await startNode({ name: "N1", seeds: [js0.clusterPort] });
    const n2 = await startNode({ name: "N2", seeds: [n1.clusterPort] });
    await waitForMesh([js0, n1, n2]);

    const c1 = await client(n1);
    const c2 = await client(n2);
    // The JetStream node's $JS.API.> interest reaches the others (no-responders until it has).
    // Then the meta group (of one JetStream node) has a leader: 10008 until then.
    await waitFor("$JS.API interest on N2 and a meta leader", async () => {
      try {
        const answer = await c2.request("$JS.API.INFO", new Uint8Array(), { timeout: 500 });
        return !answer.string().includes("10008");
      } catch {
        return false;
      }
    });

    // Stream created from N2, published to from N1, read from N2.
    const jsm2 = await jetstreamManager(c2);
    await jsm2.streams.add({ name: "ORDERS", subjects: ["orders.>"] });
    // The stream's capture subscription reaches N1 (a publish before it has would find no stream).
    const js1 = jetstream(c1);
    await waitFor("orders.> interest on N1", async () => {
      try {
        // With a message id: a probe that was stored but whose PubAck came late is not stored twice.
        await js1.publish("orders.probe", new TextEncoder().encode("probe"), { timeout: 500, msgID: "probe" });
        return true;
      } catch {
        return false;
      }
    });
    for (let i = 1; i <= 5; i++) {
      const ack = await js1.publish(`orders.${i}`, new TextEncoder().encode(`order ${i}`), { msgID: `id-${i}` });
      expect(ack.stream).toBe("ORDERS");
      expect(ack.duplicate).toBe(false);
    }
    // Deduplication works across nodes as on one server.
    expect((await js1.publish("orders.1", new TextEncoder().encode("again"), { msgID: "id-1" })).duplicate).toBe(true);
    const info = await jsm2.streams.info("ORDERS");
    expect(info.state.messages).toBe(6); // the probe and five orders

    // A durable pull consumer created from N1, fetched from N2, acked across the route.
    const jsm1 = await jetstreamManager(c1);
    await jsm1.consumers.add("ORDERS", { durable_name: "worker", ack_policy: AckPolicy.Explicit, filter_subject: "orders.*" });
    const consumer = await jetstream(c2).consumers.get("ORDERS", "worker");
    const got: string[] = [];
    const batch = await consumer.fetch({ max_messages: 6, expires: 2000 });
    for await (const m of batch) {
      got.push(m.subject);
      m.ack();
    }
    expect(got).toEqual(["orders.probe", "orders.1", "orders.2", "orders.3", "orders.4", "orders.5"]);
    await waitFor("acks reach the JetStream node", async () => (await jsm1.consumers.info("ORDERS", "worker")).num_ack_pending === 0);

    // Exactly one answer per API request, from any node.
    for (const nc of [c1, c2]) expect(await answers(nc, "$JS.API.INFO")).toBe(1);
    // Direct API requests: the stream's info from N1.
    expect((await jsm1.streams.info("ORDERS")).config.subjects).toEqual(["orders.>"]);

    // KV from the other nodes: a bucket made from N1, written from N2, read (direct get) and watched
    // (an ordered push consumer delivering to an inbox on N1) from N1.
    const kv1 = await new Kvm(c1).create("cfg");
    const kv2 = await new Kvm(c2).open("cfg");
    // The new bucket's subjects are interest of the JetStream node: they reach N2 over the routes a
    // moment after the create returns (interest propagates asynchronously, as in a nats-server cluster).
    await waitFor("the bucket's interest to reach N2", async () => {
      try {
        await kv2.put("color", "blue");
        return true;
      } catch (error) {
        // No interest yet: the client reports it as "no responders", or (jetstream client) as JetStreamNotEnabled caused by it.
        const text = `${String(error)} ${String((error as Error).cause ?? "")}`;
        if (text.includes("no responders")) return false;
        throw error;
      }
    });
    expect((await kv1.get("color"))?.string()).toBe("blue");
    const seen: string[] = [];
    const watch = await kv1.watch({ key: "color" });
    const watching = (async () => {
      for await (const e of watch) {
        seen.push(`${e.key}=${e.string()}`);
        if (seen.length === 2) break;
      }
    })();
    await waitFor("the watch's first value", () => seen.length === 1);
    await kv2.put("color", "green");
    await watching;
    expect(seen).toEqual(["color=blue", "color=green"]);
    const keys: string[] = [];
    for await (const k of await kv1.keys()) keys.push(k);
    expect(keys).toEqual(["color"]);
  }, 60_000);
});

describe("local-only internal subscriptions", () => {
  function server(): Server {
    return new Server({ ...defaultOptions, wsAllowedOrigins: [], routes: [], host: "127.0.0.1", port: -1 }, testLogger());
  }

  test("are not told to the other nodes; ordinary internal subscriptions are", () => {
    const s = server();
    const sent: string[] = [];
    const interest = new LocalInterest((subject, queue, weight) => sent.push(`${weight < 0 ? "-" : "+"}${subject}${queue ? ` ${queue}` : ""}`));
    (s.sublist as ObservedSublist<Subscription>).observer = interest;
    const ic = new InternalClient(s, "test");
    const local = ic.subscribe("$JS.API.>", () => {}, null, { local: true });
    const localQueue = ic.subscribe("work", () => {}, "g", { local: true });
    const shared = ic.subscribe("orders.>", () => {});
    expect(sent).toEqual(["+orders.>"]);
    expect(interest.size).toBe(1);
    // The table a new route gets leaves them out too.
    const table: string[] = [];
    interest.forEach((subject) => table.push(subject));
    expect(table).toEqual(["orders.>"]);
    ic.unsubscribe(local);
    ic.unsubscribe(localQueue);
    ic.unsubscribe(shared);
    expect(sent).toEqual(["+orders.>", "-orders.>"]);
  });

  test("a message another node forwarded (for another subscription here) does not reach them", async () => {
    const s = server();
    const ic = new InternalClient(s, "test");
    const got: string[] = [];
    ic.subscribe("x.>", (m) => got.push(`local ${m.subject}`), null, { local: true });
    ic.subscribe("x.>", (m) => got.push(`shared ${m.subject}`));
    const sub = [...(s.sublist.match("x.1").plain)];
    const fakeRoute = { isRoute: true } as never;
    const frame = Buffer.from("PUB x.1 2\r\nhi\r\n", "latin1");
    for (const one of sub) one.client.deliver(one, frame, 4, 7, -1, -1, -1, 10, 12, 8, fakeRoute);
    // A local publisher reaches both.
    for (const one of sub) one.client.deliver(one, frame, 4, 7, -1, -1, -1, 10, 12, 8, null);
    await new Promise((r) => setTimeout(r, 10));
    expect(got.sort()).toEqual(["local x.1", "shared x.1", "shared x.1"]);
  });
});
