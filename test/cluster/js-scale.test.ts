// Scaling a stream up by updating num_replicas (issue 13, stage D): an R1 stream with messages becomes R3;
// the new replicas copy what it had and take part from then on, so the stream survives kill -9 of its
// leader with every message. Scaling down (R3 → R2 → R1): the removed replicas stop and delete their copy,
// the stream keeps its messages and its durable. Also against nats-server 2.9.
import { describe, expect, test } from "vitest";
import { AckPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { waitFor } from "./spawn.ts";
import { threeJetStreamNodes, waitForMeta } from "./js-cluster.ts";
import type { ClusterNode } from "./spawn.ts";

const enc = new TextEncoder();

describe("scaling a stream", () => {
  test("R1 → R3 by update: the new replicas get the messages; the stream survives its leader's kill -9", async () => {
    const nodes = await threeJetStreamNodes();
    const metaLeader = await waitForMeta(nodes);
    const nc = await connect({ servers: nodes.map((n) => n.hostport), reconnectTimeWait: 100, maxReconnectAttempts: -1, timeout: 5000 });
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: "UP", subjects: ["up.>"], num_replicas: 1 });
    const js = jetstream(nc);
    await waitFor("the stream takes publishes", async () => (await js.publish("up.0", enc.encode("0"), { msgID: "m0", timeout: 1000 }).catch(() => null)) !== null);
    for (let i = 1; i < 10; i++) await js.publish(`up.${i}`, enc.encode(String(i)), { msgID: `m${i}` });

    const info = await jsm.streams.info("UP");
    const updated = await jsm.streams.update("UP", { ...info.config, num_replicas: 3 });
    expect(updated.config.num_replicas).toBe(3);
    await waitFor("three current replicas", async () => {
      const s = await jsm.streams.info("UP").catch(() => null);
      return s?.cluster?.replicas?.length === 2 && s.cluster.replicas.every((r) => r.current);
    }, 20_000);

    // The leader goes (kill -9; or, if it also leads the meta group, a stepdown): a new one has all ten,
    // and takes the eleventh.
    const leaderName = (await jsm.streams.info("UP")).cluster!.leader!;
    if (leaderName !== metaLeader) await nodes.find((n) => n.name === leaderName)!.kill9();
    else await nc.request("$JS.API.STREAM.LEADER.STEPDOWN.UP", new Uint8Array(), { timeout: 5000 });
    let ack = null;
    const t0 = Date.now();
    while (ack === null && Date.now() - t0 < 20_000) ack = await js.publish("up.10", enc.encode("10"), { msgID: "m10", timeout: 1000 }).catch(() => null);
    expect(ack?.seq).toBe(11);
    await waitFor("a new leader answers", async () => {
      const leader = (await jsm.streams.info("UP").catch(() => null))?.cluster?.leader;
      return leader !== undefined && leader !== leaderName;
    }, 20_000);
    const s = await jsm.streams.info("UP");
    expect(s.state.messages).toBe(11);
    expect((await jsm.streams.getMessage("UP", { seq: 5 }))?.string()).toBe("4");
    expect((await js.publish("up.3", enc.encode("again"), { msgID: "m3" })).duplicate).toBe(true);
    await nc.close();
  }, 60_000);

  test("R3 → R2 → R1 by update: the removed replicas delete their copy; messages and the durable stay", async () => {
    const nodes = await threeJetStreamNodes();
    const nc = await connect({ servers: nodes.map((n) => n.hostport), reconnectTimeWait: 100, maxReconnectAttempts: -1, timeout: 5000 });
    const jsm = await jetstreamManager(nc);
    const js = jetstream(nc);
    await jsm.streams.add({ name: "DOWN", subjects: ["down.>"], num_replicas: 3 });
    for (let i = 1; i <= 5; i++) await js.publish(`down.${i}`, enc.encode(String(i)));
    await jsm.consumers.add("DOWN", { durable_name: "d", ack_policy: AckPolicy.Explicit });
    const consumer = await js.consumers.get("DOWN", "d");
    for await (const m of await consumer.fetch({ max_messages: 2, expires: 2000 })) await m.ackAck();

    for (const replicas of [2, 1]) {
      const info = await jsm.streams.info("DOWN");
      const updated = await jsm.streams.update("DOWN", { ...info.config, num_replicas: replicas });
      expect(updated.config.num_replicas).toBe(replicas);
      await waitFor(`${replicas} node(s) hold DOWN, the info lists ${replicas - 1} other replica(s)`, async () => {
        const s = await jsm.streams.info("DOWN").catch(() => null);
        const held = (await Promise.all(nodes.map(streamsOn))).reduce((x, y) => x + y, 0);
        return s !== null && (s.cluster?.replicas ?? []).length === replicas - 1 && held === replicas;
      }, 20_000);
    }
    const s = await jsm.streams.info("DOWN");
    expect(s.state.messages).toBe(5);
    expect((await js.publish("down.6", enc.encode("6"))).seq).toBe(6);
    const next: number[] = [];
    await waitFor("the durable goes on from 3", async () => {
      try {
        for await (const m of await (await js.consumers.get("DOWN", "d")).fetch({ max_messages: 4 - next.length, expires: 1000 })) {
          next.push(m.seq);
          await m.ackAck();
        }
      } catch {
        // nats-server moves the consumer's own group meanwhile (a fetch may miss its heartbeats): again
      }
      return next.length >= 4;
    }, 15_000);
    expect(next).toEqual([3, 4, 5, 6]);
    await nc.close();
  }, 60_000);
});

/** How many streams a node holds (its /jsz). */
async function streamsOn(node: ClusterNode): Promise<number> {
  const r = await fetch(`http://127.0.0.1:${node.httpPort}/jsz`);
  return ((await r.json()) as { streams: number }).streams;
}
