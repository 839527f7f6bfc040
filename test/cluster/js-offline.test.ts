// A stream whose every replica is down (an R1 stream's node stopped), as nats-server answers for it: the meta
// leader says "stream is offline" (10118) to STREAM.INFO and "consumer is offline" (10119) to CONSUMER.INFO,
// and STREAM.LIST shows it with its configuration, its replicas offline, and its name under `missing`.
// Also against a nats-server 2.9 cluster (NATTER_TEST_SERVER=nats-server).
import { describe, expect, test } from "vitest";
import { jetstreamManager } from "@nats-io/jetstream";
import { waitFor } from "./spawn.ts";
import { answers, client, threeJetStreamNodes, waitForMeta } from "./js-cluster.ts";

describe("a stream whose replicas are all down", () => {
  test("STREAM.INFO 10118, CONSUMER.INFO 10119, STREAM.LIST lists it as missing", async () => {
    const nodes = await threeJetStreamNodes();
    const stream = "OFF";
    const nc = await client(nodes[0]!);
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: stream, subjects: ["off.>"] });
    const holder = (await jsm.streams.info(stream)).cluster!.leader!;
    // The meta leader must survive (it answers for the stream): step it down while it is the holder.
    await waitFor("a meta leader that does not hold the stream", async () => {
      const leader = await waitForMeta(nodes);
      if (leader === holder) await nc.request("$JS.API.META.LEADER.STEPDOWN", new Uint8Array(), { timeout: 2000 }).catch(() => null);
      return leader !== holder;
    }, 30_000);
    await jsm.consumers.add(stream, { durable_name: "D" });
    await nodes.find((n) => n.name === holder)!.stop(); // a clean stop: nats-server sees it offline at once
    const nc2 = await client(nodes.find((n) => n.name !== holder && n.running)!);
    // nats-server marks a server offline at once after a clean stop (after kill -9 only once it has missed its heartbeats).
    await waitFor("the holder seen as offline", async () => (await answers(nc2, `$JS.API.STREAM.INFO.${stream}`, "", 2000)).length > 0, 20_000);
    const info = await answers(nc2, `$JS.API.STREAM.INFO.${stream}`);
    expect(info).toHaveLength(1);
    expect(info[0]!.error).toEqual({ code: 500, err_code: 10118, description: "stream is offline" });
    const consumer = await answers(nc2, `$JS.API.CONSUMER.INFO.${stream}.D`);
    expect(consumer).toHaveLength(1);
    expect(consumer[0]!.error).toEqual({ code: 500, err_code: 10119, description: "consumer is offline" });
    const list = await answers(nc2, "$JS.API.STREAM.LIST", "{}");
    expect(list).toHaveLength(1);
    expect(list[0]).toMatchObject({ total: 1, missing: [stream] });
    const listed = (list[0]!.streams as Record<string, unknown>[])[0]!;
    expect(listed.config).toMatchObject({ name: stream, subjects: ["off.>"], num_replicas: 1 });
    expect(listed.state).toMatchObject({ messages: 0, last_seq: 0 });
    expect(listed.cluster).toMatchObject({ replicas: [{ name: holder, current: false, offline: true }] });
    expect((await answers(nc2, "$JS.API.STREAM.NAMES", "{}"))[0]).toMatchObject({ total: 1, streams: [stream] });
  }, 60_000);
});
