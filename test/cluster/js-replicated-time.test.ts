// A replicated message's time is the leader's (issue 13): the leader stamps each publish and every replica
// stores that timestamp (nats-server's stream entries carry it), so a message reads the same time from
// every replica, after a failover too, and max_age removes the same messages on each. A replicated
// mirror's copies have the origin's time, on every replica. Read here through
// direct gets on each node (natter: each node's own replica answers its client; nats-server 2.9: any
// replica may answer, so every read is repeated) and through STREAM.MSG.GET from each leader in turn.
import { describe, expect, test } from "vitest";
import { jetstream, jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { serverKind } from "../harness/server.ts";
import { waitFor, type ClusterNode } from "./spawn.ts";
import { client, threeJetStreamNodes } from "./js-cluster.ts";

const enc = new TextEncoder();

/** Each message's time (Nats-Time-Stamp) through direct gets on this node; a read before its replica has the message is retried. */
async function directTimes(nc: NatsConnection, stream: string, seqs: number[]): Promise<string[]> {
  const jsm = await jetstreamManager(nc);
  const times: string[] = [];
  for (const seq of seqs) {
    let time = "";
    await waitFor(`message ${seq} of ${stream} readable`, async () => {
      time = (await jsm.direct.getMessage(stream, { seq }).catch(() => null))?.timestamp ?? "";
      return time !== "";
    }, 10_000);
    times.push(time);
  }
  return times;
}

async function leaderOf(jsm: JetStreamManager, stream: string): Promise<string> {
  return (await jsm.streams.info(stream).catch(() => null))?.cluster?.leader ?? "";
}

/** Whether the node has its direct get subscription for `stream` (/subsz; see js-direct-replicas.test.ts). */
async function servesDirectGets(node: ClusterNode, stream: string): Promise<boolean> {
  const r = await fetch(`http://127.0.0.1:${node.httpPort}/subsz?subs=1`);
  const list = ((await r.json()) as { subscriptions_list?: { subject: string; qgroup?: string }[] }).subscriptions_list ?? [];
  return list.some((s) => s.qgroup === "_sys_" && s.subject === `$JS.API.DIRECT.GET.${stream}`);
}

/** Every replica's times of `seqs` (see directTimes): equal, and as many as asked. */
async function expectSameTimeEverywhere(nodes: ClusterNode[], clients: NatsConnection[], stream: string, seqs: number[]): Promise<string[]> {
  // Each replica answering: else a node's direct gets go to another's (natter: its own first).
  await waitFor(`every replica of ${stream} answering direct gets`, async () => (await Promise.all(nodes.map((n) => servesDirectGets(n, stream)))).every(Boolean), 15_000);
  // nats-server: any replica may answer a node's direct get; three reads per node make a miss unlikely.
  const rounds = serverKind === "natter" ? 1 : 3;
  const seen: string[][] = [];
  for (let round = 0; round < rounds; round++) for (const nc of clients) seen.push(await directTimes(nc, stream, seqs));
  for (const times of seen) expect(times, stream).toEqual(seen[0]);
  expect(seen[0]!.length).toBe(seqs.length);
  return seen[0]!;
}

const needsBatches = serverKind === "natter" || process.env.NATS_SERVER_BIN !== undefined ? test : test.skip;

describe("replicated message time", () => {
  test("R3 stream, its R3 source and mirror: every replica, and each leader after a stepdown, gives a message the same time", async () => {
    const nodes = await threeJetStreamNodes();
    const clients = await Promise.all(nodes.map(client));
    const jsm = await jetstreamManager(clients[0]!);
    await jsm.streams.add({ name: "TS", subjects: ["ts.>"], num_replicas: 3, allow_direct: true });
    await jsm.streams.add({ name: "TSRC", num_replicas: 3, allow_direct: true, sources: [{ name: "TS" }] });
    await jsm.streams.add({ name: "TMIR", num_replicas: 3, allow_direct: true, mirror: { name: "TS" } });
    const js = jetstream(clients[0]!);
    const seqs: number[] = [];
    for (let k = 0; k < 5; k++) seqs.push((await js.publish(`ts.${k}`, enc.encode(`m${k}`))).seq);
    await waitFor("the sourced and mirrored copies", async () => {
      const counts = await Promise.all(["TSRC", "TMIR"].map(async (s) => (await jsm.streams.info(s)).state.messages));
      return counts.every((n) => n === seqs.length);
    }, 10_000);

    const times = await expectSameTimeEverywhere(nodes, clients, "TS", seqs);
    const sourced = await expectSameTimeEverywhere(nodes, clients, "TSRC", seqs);
    // A mirror's copies keep the origin's time (nats-server's mirror entries carry it); a source's get the source leader's.
    expect(await expectSameTimeEverywhere(nodes, clients, "TMIR", seqs)).toEqual(times);
    for (const [k, time] of sourced.entries()) expect(Date.parse(time), `sourced ${seqs[k]}`).toBeGreaterThanOrEqual(Date.parse(times[k]!));

    // Each leader's own store (STREAM.MSG.GET is answered by the leader), before and after a stepdown: the same times.
    const leader = await leaderOf(jsm, "TS");
    const fromLeader = async () => Promise.all(seqs.map(async (seq) => (await jsm.streams.getMessage("TS", { seq }))?.timestamp ?? ""));
    expect(await fromLeader()).toEqual(times);
    await clients[0]!.request("$JS.API.STREAM.LEADER.STEPDOWN.TS", new Uint8Array(), { timeout: 5000 });
    await waitFor("a new leader of TS", async () => {
      const now = await leaderOf(jsm, "TS");
      return now !== "" && now !== leader;
    }, 15_000);
    expect(await fromLeader()).toEqual(times);
  }, 60_000);

  needsBatches("R3 atomic batch: its messages have the same times on every replica", async () => {
    const nodes = await threeJetStreamNodes();
    const clients = await Promise.all(nodes.map(client));
    const jsm = await jetstreamManager(clients[0]!);
    await jsm.streams.add({ name: "TB", subjects: ["tb.>"], num_replicas: 3, allow_direct: true, allow_atomic: true } as Parameters<typeof jsm.streams.add>[0]);
    const batch = await jetstream(clients[0]!).startBatch("tb.a", "one");
    batch.add("tb.b", "two");
    const ack = await batch.commit("tb.c", "three");
    expect(ack.seq).toBe(3);
    await expectSameTimeEverywhere(nodes, clients, "TB", [1, 2, 3]);
  }, 60_000);
});
