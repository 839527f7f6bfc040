// Direct gets from every replica (issue 13): each replica of a stream with allow_direct answers
// `$JS.API.DIRECT.GET.<stream>` in the `_sys_` queue group, so reads scale with the replicas and a client's own
// node answers when it holds one (a queue group's local members come first). Which node answered shows in
// /subsz (subs=1: each node's direct get subscription with the requests it received), on natter and
// nats-server alike. A client that got its PubAck reads the message through its own node, leader or follower
// (natter; another node's replica has it once the commit reaches it).
// A follower that stops hearing its leader, or has not caught up, does not answer (natter: see
// src/jetstream/cluster/README.md; nats-server 2.9 keeps answering once subscribed).
import { describe, expect, test } from "vitest";
import { jetstream, jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { serverKind } from "../harness/server.ts";
import { waitFor, type ClusterNode } from "./spawn.ts";
import { client, natterOnly, threeJetStreamNodes } from "./js-cluster.ts";

const enc = new TextEncoder();

interface SubDetail {
  subject: string;
  qgroup?: string;
  msgs: number;
}

/** The node's direct get subscriptions of `stream` (/subsz): whether it has one, and the requests they received. */
async function directGets(node: ClusterNode, stream: string): Promise<{ subscribed: boolean; served: number }> {
  const r = await fetch(`http://127.0.0.1:${node.httpPort}/subsz?subs=1`);
  const list = ((await r.json()) as { subscriptions_list?: SubDetail[] }).subscriptions_list ?? [];
  // `$JS.API.DIRECT.GET.<stream>` (with a JSON body) and `….<stream>.>` (the last message of a subject).
  const base = `$JS.API.DIRECT.GET.${stream}`;
  const direct = list.filter((s) => s.qgroup === "_sys_" && (s.subject === base || s.subject === `${base}.>`));
  return { subscribed: direct.length > 0, served: direct.reduce((n, s) => n + s.msgs, 0) };
}

async function served(nodes: ClusterNode[], stream: string): Promise<number[]> {
  return Promise.all(nodes.map(async (n) => (await directGets(n, stream)).served));
}

async function everyNodeServes(nodes: ClusterNode[], stream: string): Promise<void> {
  await waitFor(`every replica of ${stream} answering direct gets`, async () => (await Promise.all(nodes.map((n) => directGets(n, stream)))).every((d) => d.subscribed), 15_000);
}

async function leaderOf(jsm: JetStreamManager, stream: string): Promise<string | undefined> {
  return (await jsm.streams.info(stream).catch(() => null))?.cluster?.leader;
}

/**
 * Reads until `ok` (on natter the first read must be it). nats-server 2.9 gives no read-after-write to direct
 * gets of a replicated stream: any replica may answer (its queue group does not keep a request on the
 * client's node), a follower from its store as soon as it is asked, also before it applied the write just
 * acknowledged (nats-server issues 4710, 6557); so there the reads are retried.
 */
async function readBack<T>(atOnce: boolean, read: () => Promise<T>, ok: (value: T) => boolean): Promise<T> {
  let value = await read();
  if (!atOnce) await waitFor("the write visible", async () => ok((value = await read())));
  return value;
}

/**
 * Through each node's own client: publish, then read it back by subject (KV's get) and by sequence, on that
 * node. natter: at once, on every node (a follower applies the commit before the PubAck passes through it).
 */
async function writeThenReadOnEachNode(clients: NatsConnection[], stream: string, prefix: string, rounds: number): Promise<void> {
  const atOnce = serverKind === "natter";
  for (let i = 0; i < clients.length; i++) {
    const js = jetstream(clients[i]!);
    const jsm = await jetstreamManager(clients[i]!);
    for (let k = 0; k < rounds; k++) {
      const subject = `${prefix}.${i}.${k % 3}`;
      const ack = await js.publish(subject, enc.encode(`${i}-${k}`));
      const last = await readBack(atOnce, () => jsm.direct.getMessage(stream, { last_by_subj: subject }), (m) => m?.seq === ack.seq);
      expect({ seq: last?.seq, data: last?.string() }).toEqual({ seq: ack.seq, data: `${i}-${k}` });
      const bySeq = await readBack(atOnce, () => jsm.direct.getMessage(stream, { seq: ack.seq }), (m) => m?.seq === ack.seq);
      expect(bySeq?.subject).toBe(subject);
    }
  }
}

/**
 * Requests each node answered since `before`: on natter exactly `n` each, its own client's (local queue
 * members first). nats-server's replicas answered them all between them (at least: reads retried), not
 * necessarily each its own client's.
 */
function expectServedEach(before: number[], after: number[], n: number): void {
  const delta = after.map((a, i) => a - before[i]!);
  if (serverKind === "natter") expect(delta).toEqual(delta.map(() => n));
  else expect(delta.reduce((sum, d) => sum + d, 0)).toBeGreaterThanOrEqual(n * delta.length);
}

describe("direct gets from every replica", () => {
  test("R3 stream and KV bucket: every replica answers, a read after the PubAck sees the write, also after a stepdown and on a stream scaled to R3", async () => {
    const nodes = await threeJetStreamNodes();
    const clients = await Promise.all(nodes.map(client));
    const jsm = await jetstreamManager(clients[0]!);
    await jsm.streams.add({ name: "DG", subjects: ["dg.>"], num_replicas: 3, allow_direct: true });
    await everyNodeServes(nodes, "DG");

    const before = await served(nodes, "DG");
    await writeThenReadOnEachNode(clients, "DG", "dg", 10);
    // Each client's own node answered its 20 gets (local queue members first): the followers too.
    expectServedEach(before, await served(nodes, "DG"), 20);

    // The leader hands over: the new one and the followers (the old leader one now) keep answering.
    const leader = await leaderOf(jsm, "DG");
    await clients[0]!.request("$JS.API.STREAM.LEADER.STEPDOWN.DG", new Uint8Array(), { timeout: 5000 });
    await waitFor("a new leader", async () => {
      const now = await leaderOf(jsm, "DG");
      return now !== undefined && now !== leader;
    }, 15_000);
    await everyNodeServes(nodes, "DG");
    const beforeRound2 = await served(nodes, "DG");
    await writeThenReadOnEachNode(clients, "DG", "dg", 5);
    expectServedEach(beforeRound2, await served(nodes, "DG"), 10);

    // KV (buckets set allow_direct): put then get through each node, each node answering.
    const kv = await new Kvm(clients[0]!).create("dgkv", { replicas: 3 });
    await everyNodeServes(nodes, "KV_dgkv");
    const kvBefore = await served(nodes, "KV_dgkv");
    for (let i = 0; i < nodes.length; i++) {
      // open() binds without asking the stream: it reads through direct gets when told the bucket allows them.
      const mine = await new Kvm(clients[i]!).open("dgkv", { allow_direct: true });
      for (let k = 0; k < 5; k++) {
        const rev = await mine.put("key", enc.encode(`v${i}-${k}`));
        const got = await readBack(serverKind === "natter", () => mine.get("key"), (e) => e?.revision === rev);
        expect({ revision: got?.revision, value: got?.string() }).toEqual({ revision: rev, value: `v${i}-${k}` });
      }
    }
    expectServedEach(kvBefore, await served(nodes, "KV_dgkv"), 5);
    // Through another node (client 0's): the last put, once the commit reached that replica. Only the writer's
    // node is told before the PubAck; the others learn it with the next append or heartbeat (natter, as
    // nats-server's followers: read-after-write is a promise to the writer's node only).
    await waitFor("the last put readable through another node", async () => (await kv.get("key"))?.string() === "v2-4", 5_000);

    // An R1 stream scaled to R3: the new replicas answer once they have the messages.
    await jsm.streams.add({ name: "SC", subjects: ["sc.>"], num_replicas: 1, allow_direct: true });
    const js = jetstream(clients[0]!);
    for (let k = 1; k <= 5; k++) await js.publish(`sc.${k}`, enc.encode(`s${k}`));
    const config = (await jsm.streams.info("SC")).config;
    await jsm.streams.update("SC", { ...config, num_replicas: 3 });
    await everyNodeServes(nodes, "SC");
    const scBefore = await served(nodes, "SC");
    for (let i = 0; i < nodes.length; i++) {
      const m = await (await jetstreamManager(clients[i]!)).direct.getMessage("SC", { last_by_subj: "sc.5" });
      expect(m?.string()).toBe("s5");
    }
    expectServedEach(scBefore, await served(nodes, "SC"), 1);
  }, 60_000);

  natterOnly("a follower that lost its group stops answering; restarted, it answers once it has caught up", async () => {
    const nodes = await threeJetStreamNodes();
    const [n0, n1, n2] = nodes as [ClusterNode, ClusterNode, ClusterNode];
    const c0 = await client(n0);
    const jsm0 = await jetstreamManager(c0);
    await jsm0.streams.add({ name: "LG", subjects: ["lg.>"], num_replicas: 3, allow_direct: true });
    await everyNodeServes(nodes, "LG");
    const js0 = jetstream(c0);
    for (let k = 1; k <= 5; k++) await js0.publish("lg.a", enc.encode(`a${k}`));

    // n0 alone: whoever led, it hears no leader and stops answering (others would have the newer writes).
    await n1.kill9();
    await n2.kill9();
    await waitFor("the lone replica stops answering direct gets", async () => !(await directGets(n0, "LG")).subscribed, 10_000);
    await expect(jsm0.direct.getMessage("LG", { last_by_subj: "lg.a" })).rejects.toThrow();

    // Back with one peer: a group again; then more writes while n2 is still down.
    await n1.start();
    await waitFor("n0 and n1 answering again", async () => (await directGets(n0, "LG")).subscribed && (await directGets(n1, "LG")).subscribed, 20_000);
    const js1 = jetstream(await client(n1));
    let last = 0;
    await waitFor("a publish taken", async () => {
      last = (await js1.publish("lg.a", enc.encode("a6"), { msgID: "a6", timeout: 1000 }).catch(() => null))?.seq ?? 0;
      return last > 0;
    }, 15_000);
    for (let k = 7; k <= 50; k++) last = (await js1.publish("lg.a", enc.encode(`a${k}`))).seq;

    // n2 restarts behind: from the moment it answers, its answers have every write acknowledged before.
    await n2.start();
    await waitFor("n2 answering", async () => (await directGets(n2, "LG")).subscribed, 20_000);
    // No account-info check: a node just restarted may answer it 10008 before it knows the meta leader.
    const jsm2 = await jetstreamManager(await client(n2), { checkAPI: false });
    const m = await jsm2.direct.getMessage("LG", { last_by_subj: "lg.a" });
    expect({ seq: m?.seq, data: m?.string() }).toEqual({ seq: last, data: "a50" });
    expect((await directGets(n2, "LG")).served).toBe(1);
  }, 60_000);
});
