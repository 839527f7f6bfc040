// Interest and work-queue retention on replicated streams (issue 13): a message that every consumer is done
// with is removed on every replica (through the stream's group, as nats-server's consumer leader proposes
// the delete), so a new leader after a failover has the same state and redelivers nothing acknowledged. An
// ephemeral consumer that stayed on a follower keeps the interest stream's messages until it acks too.
// The same assertions hold against a nats-server 2.9 cluster (NATTER_TEST_SERVER=nats-server).
import { describe, expect, test } from "vitest";
import { AckPolicy, RetentionPolicy, jetstream, jetstreamManager, type Consumer, type JetStreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { serverKind } from "../harness/server.ts";
import { waitFor } from "./spawn.ts";
import { threeJetStreamNodes } from "./js-cluster.ts";

const enc = new TextEncoder();

async function leaderOf(jsm: JetStreamManager, stream: string): Promise<string | undefined> {
  return (await jsm.streams.info(stream).catch(() => null))?.cluster?.leader;
}

async function stepDown(nc: NatsConnection, stream: string): Promise<void> {
  await nc.request(`$JS.API.STREAM.LEADER.STEPDOWN.${stream}`, new Uint8Array(), { timeout: 3000 }).catch(() => null);
}

/** Fetches and acks (ackAck: the server has it) `count` messages; their stream sequences. */
async function fetchAndAck(consumer: Consumer, count: number): Promise<number[]> {
  const got: number[] = [];
  await waitFor(`${count} fetched and acked`, async () => {
    for await (const m of await consumer.fetch({ max_messages: count - got.length, expires: 1000 })) {
      got.push(m.seq);
      await m.ackAck();
    }
    return got.length >= count;
  }, 15_000);
  return got;
}

describe("retention on a replicated stream (R3)", () => {
  test("work queue and interest: what every consumer acked is gone on every replica; after kill -9 of the leader nothing acked comes again", async () => {
    const nodes = await threeJetStreamNodes();
    const nc = await connect({ servers: nodes.map((n) => n.hostport), reconnectTimeWait: 100, maxReconnectAttempts: -1, timeout: 5000 });
    const jsm = await jetstreamManager(nc);
    // Polls for a leader ask again soon: a request in flight while a group elects gets no answer.
    const poll = await jetstreamManager(nc, { timeout: 1000 });
    const js = jetstream(nc);
    await jsm.streams.add({ name: "WQ", subjects: ["wq.>"], num_replicas: 3, retention: RetentionPolicy.Workqueue });
    await jsm.streams.add({ name: "INT", subjects: ["int.>"], num_replicas: 3, retention: RetentionPolicy.Interest });
    // An ephemeral on INT: natter keeps it on the node that made it (INT's leader now).
    const ephemeralHolder = (await leaderOf(jsm, "INT"))!;
    const ephemeral = await jsm.consumers.add("INT", { ack_policy: AckPolicy.Explicit, ack_wait: 30_000_000_000, inactive_threshold: 60_000_000_000 });
    // Both streams led by one node that does not hold the ephemeral (so one kill moves both, and the
    // ephemeral's acks come from a follower): stepdowns until so.
    let leader = "";
    await waitFor("WQ and INT led by one node, not the ephemeral's", async () => {
      const [wq, int] = [await leaderOf(jsm, "WQ"), await leaderOf(jsm, "INT")];
      if (wq === undefined || int === undefined) return false;
      if (wq === ephemeralHolder) await stepDown(nc, "WQ");
      else if (int !== wq) await stepDown(nc, "INT");
      else leader = wq;
      return leader !== "";
    }, 30_000);

    await jsm.consumers.add("WQ", { durable_name: "worker", ack_policy: AckPolicy.Explicit, ack_wait: 30_000_000_000 });
    await jsm.consumers.add("INT", { durable_name: "reader", ack_policy: AckPolicy.Explicit, ack_wait: 30_000_000_000 });
    // Every consumer of the stream is listed and counted, the ephemeral a follower holds too.
    const names = (await nc.request("$JS.API.CONSUMER.NAMES.INT", enc.encode("{}"), { timeout: 5000 })).json<{ consumers: string[] }>();
    expect(names.consumers.sort()).toEqual([ephemeral.name, "reader"].sort());
    const listed = await jsm.consumers.list("INT").next();
    expect(listed.map((c) => c.name).sort()).toEqual([ephemeral.name, "reader"].sort());
    expect((await jsm.streams.info("INT")).state.consumer_count).toBe(2);
    for (let i = 1; i <= 10; i++) {
      await js.publish(`wq.${i}`, enc.encode(String(i)));
      await js.publish(`int.${i}`, enc.encode(String(i)));
    }
    expect(await fetchAndAck(await js.consumers.get("WQ", "worker"), 10)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    await waitFor("WQ empty", async () => (await jsm.streams.info("WQ")).state.messages === 0);
    // INT: the durable acks all ten, the ephemeral five; only those five go (the other five wait for it).
    expect(await fetchAndAck(await js.consumers.get("INT", "reader"), 10)).toHaveLength(10);
    const eph = await js.consumers.get("INT", ephemeral.name);
    expect(await fetchAndAck(eph, 5)).toEqual([1, 2, 3, 4, 5]);
    await waitFor("INT keeps 6..10", async () => {
      const s = (await jsm.streams.info("INT")).state;
      return s.messages === 5 && s.first_seq === 6;
    });
    expect(await fetchAndAck(eph, 5)).toEqual([6, 7, 8, 9, 10]);
    await waitFor("INT empty", async () => (await jsm.streams.info("INT")).state.messages === 0);

    await nodes.find((n) => n.name === leader)!.kill9();
    for (const [stream, durable, prefix] of [["WQ", "worker", "wq"], ["INT", "reader", "int"]] as const) {
      await waitFor(`a new leader of ${stream}`, async () => {
        const l = await leaderOf(poll, stream);
        return l !== undefined && l !== leader;
      }, 20_000);
      const info = await jsm.streams.info(stream);
      expect(info.state.messages).toBe(0);
      expect(info.state.first_seq).toBe(11);
      // Nothing acknowledged comes again; the next publish is the next delivery.
      const consumer = await js.consumers.get(stream, durable);
      const again: number[] = [];
      for await (const m of await consumer.fetch({ max_messages: 10, expires: 1000 })) again.push(m.seq);
      expect(again).toEqual([]);
      await waitFor(`${stream} takes a publish`, async () => (await js.publish(`${prefix}.11`, enc.encode("11"), { msgID: `${stream}-11`, timeout: 1000 }).catch(() => null)) !== null, 20_000);
      expect(await fetchAndAck(consumer, 1)).toEqual([11]);
      expect((await jsm.consumers.info(stream, durable)).num_ack_pending).toBe(0);
    }

    // Deleting consumers of INT drops what no consumer left wants, on every replica: the durable goes first
    // (the ephemeral, held by a follower, still wants 12 and 13), then the ephemeral.
    for (const i of [12, 13]) await js.publish(`int.${i}`, enc.encode(String(i)));
    await jsm.consumers.delete("INT", "reader");
    expect((await jsm.streams.info("INT")).state.messages).toBe(3); // 11 (the ephemeral never acked it), 12, 13
    await jsm.consumers.delete("INT", ephemeral.name);
    await waitFor("INT empty once its last consumer is deleted", async () => (await jsm.streams.info("INT")).state.messages === 0);
    const before = await leaderOf(jsm, "INT");
    await waitFor("INT led by another replica", async () => {
      const l = await leaderOf(poll, "INT");
      if (l === before) await stepDown(nc, "INT");
      return l !== undefined && l !== before;
    }, 20_000);
    expect((await jsm.streams.info("INT")).state).toMatchObject({ messages: 0, last_seq: 13 });
    await nc.close();
  }, 90_000);

  // natter only: its ephemerals stay on the node that made them and serve from that replica's store.
  test.skipIf(serverKind !== "natter")("what a follower's ephemeral acked while the group had no leader is removed once it has one", async () => {
    const nodes = await threeJetStreamNodes();
    const nc = await connect({ servers: nodes.map((n) => n.hostport), reconnectTimeWait: 100, maxReconnectAttempts: -1, timeout: 5000 });
    const jsm = await jetstreamManager(nc);
    const poll = await jetstreamManager(nc, { timeout: 1000 });
    const js = jetstream(nc);
    await jsm.streams.add({ name: "LL", subjects: ["ll.>"], num_replicas: 3, retention: RetentionPolicy.Interest });
    const holder = (await leaderOf(jsm, "LL"))!;
    const ephemeral = await jsm.consumers.add("LL", { ack_policy: AckPolicy.Explicit, ack_wait: 30_000_000_000, inactive_threshold: 60_000_000_000 });
    for (let i = 1; i <= 3; i++) await js.publish(`ll.${i}`, enc.encode(String(i)));
    await waitFor("LL led by another node than the ephemeral's", async () => {
      const l = await leaderOf(poll, "LL");
      if (l === holder) await stepDown(nc, "LL");
      return l !== undefined && l !== holder;
    }, 20_000);
    // The two other replicas die: the group has no leader, but the ephemeral's node still serves it.
    const others = nodes.filter((n) => n.name !== holder);
    await Promise.all(others.map((n) => n.kill9()));
    const onHolder = await connect({ servers: nodes.find((n) => n.name === holder)!.hostport, timeout: 5000 });
    const eph = await jetstream(onHolder).consumers.get("LL", ephemeral.name);
    const got: number[] = [];
    await waitFor("3 fetched and acked on the leaderless replica", async () => {
      for await (const m of await eph.fetch({ max_messages: 3 - got.length, expires: 1000 })) {
        got.push(m.seq);
        m.ack();
      }
      return got.length >= 3;
    }, 15_000);
    await onHolder.flush();
    expect(got).toEqual([1, 2, 3]);
    await Promise.all(others.map((n) => n.start()));
    await waitFor("LL has a leader again", async () => (await leaderOf(poll, "LL")) !== undefined, 20_000);
    await waitFor("LL empty: the acks made without a leader took effect", async () => (await poll.streams.info("LL").catch(() => null))?.state.messages === 0, 15_000);
    await onHolder.close();
    await nc.close();
  }, 60_000);
});
