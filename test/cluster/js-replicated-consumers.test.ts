// Consumers of replicated streams (issue 13, stage C): a durable's state (delivered, ack floor, pending)
// is replicated with its stream (in the stream's Raft group, src/jetstream/cluster/stream-replica.ts), so
// after a leader change the durable goes on where it was: nothing acknowledged before a stepdown comes
// again, and after kill -9 of the leader only the last moments' acks may (at least once, never a message
// skipped). Ordered consumers and KV watches of the official clients resume across a leader change.
// The same assertions hold against a nats-server 2.9 cluster (NATTER_TEST_SERVER=nats-server).
import { describe, expect, test } from "vitest";
import { AckPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { waitFor, type ClusterNode } from "./spawn.ts";
import { natterOnly, threeJetStreamNodes } from "./js-cluster.ts";

const enc = new TextEncoder();

async function clusterClient(nodes: ClusterNode[]): Promise<NatsConnection> {
  return connect({ servers: nodes.map((n) => n.hostport), reconnectTimeWait: 100, maxReconnectAttempts: -1, timeout: 5000 });
}

async function streamLeader(nc: NatsConnection, stream: string): Promise<string | undefined> {
  const jsm = await jetstreamManager(nc, { timeout: 2000 }).catch(() => null);
  return (await jsm?.streams.info(stream).catch(() => null))?.cluster?.leader;
}

/** Until the stream has a leader other than `old`. */
async function waitForNewLeader(nc: NatsConnection, stream: string, old: string): Promise<string> {
  let leader: string | undefined;
  await waitFor(`a new leader of ${stream}`, async () => {
    leader = await streamLeader(nc, stream);
    return leader !== undefined && leader !== old;
  }, 20_000);
  return leader!;
}

/** The server running a consumer (natter: its stream's leader; nats-server: the consumer group's leader). */
async function consumerLeader(nc: NatsConnection, stream: string, consumer: string): Promise<string | undefined> {
  const jsm = await jetstreamManager(nc, { timeout: 2000 }).catch(() => null);
  return (await jsm?.consumers.info(stream, consumer).catch(() => null))?.cluster?.leader;
}

async function waitForNewConsumerLeader(nc: NatsConnection, stream: string, consumer: string, old: string): Promise<void> {
  await waitFor(`a new leader of ${stream} > ${consumer}`, async () => {
    const leader = await consumerLeader(nc, stream, consumer);
    return leader !== undefined && leader !== old;
  }, 20_000);
}

describe("consumers of a replicated stream (R3)", () => {
  test("a durable goes on from its replicated state after a stepdown and after kill -9 of the leader", async () => {
    const nodes = await threeJetStreamNodes();
    const nc = await clusterClient(nodes);
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: "Q", subjects: ["q.>"], num_replicas: 3 });
    const js = jetstream(nc);
    for (let i = 1; i <= 12; i++) await js.publish(`q.${i}`, enc.encode(String(i)));
    await jsm.consumers.add("Q", { durable_name: "work", ack_policy: AckPolicy.Explicit, ack_wait: 2_000_000_000 });

    // Four fetched and acknowledged (the server confirms each ack), then the leadership moves.
    const consumer = await js.consumers.get("Q", "work");
    for await (const m of await consumer.fetch({ max_messages: 4, expires: 2000 })) await m.ackAck();
    const first = (await consumerLeader(nc, "Q", "work"))!;
    const stepdown = await nc.request("$JS.API.CONSUMER.LEADER.STEPDOWN.Q.work", new Uint8Array(), { timeout: 5000 });
    expect(stepdown.json<{ success: boolean }>().success).toBe(true);
    await waitForNewConsumerLeader(nc, "Q", "work", first);
    let ci = await jsm.consumers.info("Q", "work");
    expect(ci.ack_floor.stream_seq).toBe(4);
    expect(ci.delivered.stream_seq).toBe(4);
    expect(ci.num_ack_pending).toBe(0);
    const next: number[] = [];
    for await (const m of await (await js.consumers.get("Q", "work")).fetch({ max_messages: 4, expires: 2000 })) {
      next.push(m.seq);
      await m.ackAck();
    }
    expect(next).toEqual([5, 6, 7, 8]);

    // kill -9 of the node running it: the durable is there on the new leader; every message is delivered, none
    // skipped; at most the last moments' acknowledged ones (5..8) come again.
    const second = (await consumerLeader(nc, "Q", "work"))!;
    await nodes.find((n) => n.name === second)!.kill9();
    await waitForNewConsumerLeader(nc, "Q", "work", second);
    ci = await jsm.consumers.info("Q", "work");
    expect(ci.ack_floor.stream_seq).toBeGreaterThanOrEqual(4);
    const rest = new Set<number>();
    await waitFor("9..12 delivered", async () => {
      for await (const m of await (await js.consumers.get("Q", "work")).fetch({ max_messages: 8, expires: 1000 })) {
        rest.add(m.seq);
        await m.ackAck();
      }
      return [9, 10, 11, 12].every((s) => rest.has(s));
    }, 20_000);
    for (const s of rest) expect(s).toBeGreaterThanOrEqual(5);
    await nc.close();
  }, 60_000);

  // A durable's replicated state holds its pending list: with 45,000 messages pending it is ~1.5 MB, more than
  // a route frame (max_payload + 256 KiB). It went into the group's log as one entry, whose append the route
  // refused: the route closed and reopened every 250 ms and every group on it stopped. Now a Raft message too
  // large for one frame goes in parts (src/jetstream/cluster/raft-parts.ts).
  test("a durable with 45,000 messages pending: the group goes on, and the state moves with a stepdown", async () => {
    const nodes = await threeJetStreamNodes();
    const nc = await clusterClient(nodes);
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: "BIG", subjects: ["big.>"], num_replicas: 3 });
    await jsm.consumers.add("BIG", { durable_name: "slow", ack_policy: AckPolicy.Explicit, max_ack_pending: 100_000, ack_wait: 600_000_000_000 });
    const js = jetstream(nc);
    const total = 45_000;
    for (let i = 0; i < total; i += 1000) await Promise.all(Array.from({ length: 1000 }, (_, j) => js.publish(`big.${i + j}`)));
    const consumer = await js.consumers.get("BIG", "slow");
    let fetched = 0;
    while (fetched < total) for await (const _ of await consumer.fetch({ max_messages: 5000, expires: 5000 })) fetched++;
    // The group still takes publishes (each waits for a follower to store it).
    for (let i = 0; i < 20; i++) expect((await js.publish("big.after", undefined, { timeout: 5000 })).seq).toBe(total + 1 + i);
    const first = (await consumerLeader(nc, "BIG", "slow"))!;
    const stepdown = await nc.request("$JS.API.CONSUMER.LEADER.STEPDOWN.BIG.slow", new Uint8Array(), { timeout: 5000 });
    expect(stepdown.json<{ success: boolean }>().success).toBe(true);
    await waitForNewConsumerLeader(nc, "BIG", "slow", first);
    await waitFor("the new leader has the whole pending list", async () => (await jsm.consumers.info("BIG", "slow")).num_ack_pending === total, 20_000);
    await nc.close();
  }, 90_000);

  // nats-server 2.9 confirms an ack once it proposed it (an ack lost with its leader is confirmed yet comes
  // again: this test failed 1 run in 3 against 2.9.10); natter confirms once its group committed it, as
  // nats-server 2.11+ does (addAckReply; it passed against 2.12.0).
  natterOnly("an ack the server confirmed is not delivered again after kill -9 of the leader right after", async () => {
    const nodes = await threeJetStreamNodes();
    const nc = await clusterClient(nodes);
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: "C", subjects: ["c.>"], num_replicas: 3 });
    const js = jetstream(nc);
    for (let i = 1; i <= 20; i++) await js.publish(`c.${i}`, enc.encode(String(i)));
    await jsm.consumers.add("C", { durable_name: "work", ack_policy: AckPolicy.Explicit, ack_wait: 60_000_000_000 });
    const leader = (await consumerLeader(nc, "C", "work"))!;
    const confirmed: number[] = [];
    for await (const m of await (await js.consumers.get("C", "work")).fetch({ max_messages: 20, expires: 2000 })) {
      if (await m.ackAck({ timeout: 5000 })) confirmed.push(m.seq);
    }
    expect(confirmed.length).toBe(20);
    await nodes.find((n) => n.name === leader)!.kill9(); // at once: no tick of a timer in between
    await waitForNewConsumerLeader(nc, "C", "work", leader);
    const ci = await jsm.consumers.info("C", "work");
    expect(ci.ack_floor.stream_seq).toBe(20);
    expect(ci.num_ack_pending).toBe(0);
    const again: number[] = [];
    for await (const m of await (await js.consumers.get("C", "work")).fetch({ max_messages: 20, expires: 1000 })) again.push(m.seq);
    expect(again).toEqual([]);
    await nc.close();
  }, 60_000);

  test("a KV watch and an ordered consumer resume across a leader change", async () => {
    const nodes = await threeJetStreamNodes();
    const nc = await clusterClient(nodes);
    const kv = await new Kvm(nc).create("cfg", { replicas: 3 });
    await kv.put("color", "blue");
    const seen: string[] = [];
    const watch = await kv.watch({ key: "color" });
    void (async () => {
      for await (const e of watch) seen.push(e.string());
    })();
    await waitFor("the watch's first value", () => seen.includes("blue"));

    const js = jetstream(nc);
    const ordered = await js.consumers.get("KV_cfg"); // an ordered consumer (no name)
    const orderedSeen: number[] = [];
    const messages = await ordered.consume();
    void (async () => {
      for await (const m of messages) orderedSeen.push(m.seq);
    })();
    await waitFor("the ordered consumer's first message", () => orderedSeen.length === 1);

    const leader = (await streamLeader(nc, "KV_cfg"))!;
    const stepdown = await nc.request("$JS.API.STREAM.LEADER.STEPDOWN.KV_cfg", new Uint8Array(), { timeout: 5000 });
    expect(stepdown.json<{ success: boolean }>().success).toBe(true);
    await waitForNewLeader(nc, "KV_cfg", leader);
    let put = false;
    await waitFor("a put after the leader change", async () => {
      put ||= await kv.put("color", "green").then(() => true, () => false);
      return put;
    }, 20_000);
    await waitFor("the watch and the ordered consumer see it", () => seen.includes("green") && orderedSeen.length >= 2, 25_000, () => `watch ${seen}, ordered ${orderedSeen}`);
    expect(seen.filter((v) => v === "blue").length).toBe(1);
    expect(orderedSeen.slice(0, 2)).toEqual([1, 2]);
    watch.stop();
    messages.stop();
    await nc.close();
  }, 60_000);
});
