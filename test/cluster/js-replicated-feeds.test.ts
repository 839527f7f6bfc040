// Mirrors and sources on replicated streams (issue 13): the stream's leader runs the copying and appends
// what it copies through the stream's Raft log, so every replica has it; after kill -9 of that leader the new
// one resumes from the stream's own state: every origin message once, in order, on every replica; the
// mirror's leader answers the origin's direct gets (mirror_direct). The same
// assertions hold against a nats-server 2.9 cluster (NATTER_TEST_SERVER=nats-server), where a replica's
// contents are checked through its /jsz (direct gets there may be answered by any replica).
import { describe, expect, test } from "vitest";
import { jetstream, jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { serverKind } from "../harness/server.ts";
import { waitFor, type ClusterNode } from "./spawn.ts";
import { client, threeJetStreamNodes } from "./js-cluster.ts";

const enc = new TextEncoder();

interface StreamState {
  messages: number;
  first_seq: number;
  last_seq: number;
}

/** The node's own copy of `stream` (/jsz shows each node's local store). */
async function localState(node: ClusterNode, stream: string): Promise<StreamState | undefined> {
  type Jsz = { account_details?: { stream_detail?: { name: string; state: StreamState }[] }[] };
  const j = (await (await fetch(`http://127.0.0.1:${node.httpPort}/jsz?streams=true`)).json()) as Jsz;
  return (j.account_details ?? []).flatMap((a) => a.stream_detail ?? []).find((d) => d.name === stream)?.state;
}

/** How many members of `stream`'s direct get queue group (`$JS.API.DIRECT.GET.<stream>`) the node has (/subsz). */
async function directGetMembers(node: ClusterNode, stream: string): Promise<number> {
  const r = await fetch(`http://127.0.0.1:${node.httpPort}/subsz?subs=1`);
  const list = ((await r.json()) as { subscriptions_list?: { subject: string; qgroup?: string }[] }).subscriptions_list ?? [];
  return list.filter((s) => s.qgroup === "_sys_" && s.subject === `$JS.API.DIRECT.GET.${stream}`).length;
}

async function leaderOf(jsm: JetStreamManager, stream: string): Promise<string | undefined> {
  return (await jsm.streams.info(stream).catch(() => null))?.cluster?.leader;
}

/** Every message's payload by sequence, 1..last, through direct gets on the node `nc` is connected to. */
async function contents(nc: NatsConnection, stream: string, last: number): Promise<string[]> {
  // No account-info check: direct gets need no meta leader, and one may be in an election (its request unanswered).
  const jsm = await jetstreamManager(nc, { checkAPI: false });
  const out: string[] = [];
  for (let seq = 1; seq <= last; seq++) out.push((await jsm.direct.getMessage(stream, { seq }))?.string() ?? `missing ${seq}`);
  return out;
}

/** Publishes `prefix`1..`count` to `subject`, retrying each (same Msg-Id) until acknowledged; paced so that copying runs alongside. */
async function publishAll(nc: NatsConnection, subject: string, prefix: string, count: number, progress: (n: number) => void): Promise<void> {
  const js = jetstream(nc, { timeout: 1000 });
  for (let i = 1; i <= count; i++) {
    for (;;) {
      const ack = await js.publish(subject, enc.encode(`${prefix}${i}`), { msgID: `${prefix}${i}` }).catch(() => null);
      if (ack !== null) break;
    }
    progress(i);
    if (i % 10 === 0) await new Promise((resolve) => setTimeout(resolve, 20)); // pace: about 400 a second
  }
}

describe("mirrors and sources on replicated streams", () => {
  test("an R3 mirror and an R3 stream with two sources: kill -9 of their leader mid-copy, every origin message once and in order on every replica", async () => {
    const nodes = await threeJetStreamNodes();
    const byName = new Map(nodes.map((n) => [n.name, n]));
    const nc = await connect({ servers: nodes.map((n) => n.hostport), reconnectTimeWait: 100, maxReconnectAttempts: -1, timeout: 5000 });
    const jsm = await jetstreamManager(nc, { timeout: 5000 });
    await jsm.streams.add({ name: "ORIG", subjects: ["orig.>"], num_replicas: 3, allow_direct: true });
    await jsm.streams.add({ name: "OTHER", subjects: ["other.>"], num_replicas: 3 });
    await jsm.streams.add({ name: "MIR", num_replicas: 3, mirror: { name: "ORIG" }, allow_direct: true, mirror_direct: true });
    await jsm.streams.add({ name: "SRC", num_replicas: 3, sources: [{ name: "ORIG" }, { name: "OTHER" }], allow_direct: true });

    // One node leads both copies (stepdowns until it does), so one kill -9 interrupts both.
    await waitFor("MIR and SRC led by one node", async () => {
      const [m, s] = [await leaderOf(jsm, "MIR"), await leaderOf(jsm, "SRC")];
      if (m === undefined || s === undefined) return false;
      if (m === s) return true;
      await nc.request("$JS.API.STREAM.LEADER.STEPDOWN.SRC", new Uint8Array(), { timeout: 5000 }).catch(() => null);
      return false;
    }, 30_000);
    const leader = byName.get((await leaderOf(jsm, "MIR"))!)!;

    const COUNT = 400;
    let published = 0;
    const publishing = Promise.all([
      publishAll(nc, "orig.x", "o", COUNT, (n) => (published = n)),
      publishAll(nc, "other.y", "t", COUNT / 2, () => {}),
    ]);
    // Mid-copy: the mirror has some of what is published so far, and publishing goes on.
    let copied = 0;
    await waitFor("copying under way", async () => {
      copied = (await jsm.streams.info("MIR").catch(() => null))?.state.messages ?? 0;
      return published >= COUNT / 4 && copied > 0;
    });
    await leader.kill9();
    console.log(`killed ${leader.name}, the leader of MIR and SRC, with ${copied} of ${published} (of ${COUNT}) origin messages copied`);
    expect(copied).toBeLessThan(COUNT);
    await publishing;
    await leader.start();

    // Every replica ends with every origin message: the mirror under the origin's sequences, the stream with
    // sources each once.
    const total = COUNT + COUNT / 2;
    await waitFor("every replica has every copied message", async () => {
      const states = await Promise.all(nodes.map(async (n) => [await localState(n, "MIR"), await localState(n, "SRC")] as const));
      return states.every(([m, s]) => m?.messages === COUNT && m.last_seq === COUNT && s?.messages === total && s.last_seq === total);
    }, 30_000);
    for (const node of nodes) {
      expect(await localState(node, "MIR")).toMatchObject({ messages: COUNT, first_seq: 1, last_seq: COUNT });
      expect(await localState(node, "SRC")).toMatchObject({ messages: total, first_seq: 1, last_seq: total });
    }

    // The contents, in order. natter: read on each node (a client's own node answers its direct gets), so
    // each replica's copy is the one read. nats-server: through any replica.
    const readers = serverKind === "natter" ? await Promise.all(nodes.map(client)) : [nc];
    const originOrder = Array.from({ length: COUNT }, (_, i) => `o${i + 1}`);
    const otherOrder = Array.from({ length: COUNT / 2 }, (_, i) => `t${i + 1}`);
    for (const reader of readers) {
      expect(await contents(reader, "MIR", COUNT)).toEqual(originOrder);
      const sourced = await contents(reader, "SRC", total);
      expect(sourced.filter((d) => d.startsWith("o"))).toEqual(originOrder);
      expect(sourced.filter((d) => d.startsWith("t"))).toEqual(otherOrder);
    }
    // And copying goes on under the new leader.
    await jetstream(nc).publish("orig.x", enc.encode("after"));
    await waitFor("the mirror and the stream copy a new message", async () => {
      const info = [await jsm.streams.info("MIR").catch(() => null), await jsm.streams.info("SRC").catch(() => null)];
      return info[0]?.state.last_seq === COUNT + 1 && info[1]?.state.last_seq === total + 1;
    }, 20_000);
    // mirror_direct: the mirror's leader, caught up, answers ORIG's direct gets too (its node has two members
    // of that queue group, ORIG's replica and MIR's); its followers do not (nats-server 2.9's rule).
    const mirrorLeader = await leaderOf(jsm, "MIR");
    await waitFor("MIR's leader in ORIG's direct get queue group", async () => {
      const counts = await Promise.all(nodes.map((n) => directGetMembers(n, "ORIG")));
      return nodes.every((n, i) => counts[i] === (n.name === mirrorLeader ? 2 : 1));
    }, 20_000);
    await nc.close();
  }, 90_000);
});
