// Replicated streams (issue 13, stage B): num_replicas 3 on three JetStream nodes is a Raft group; the
// leader takes publishes and acknowledges them once a majority stored them; kill -9 of the leader → a new
// leader takes publishes within a bounded time, nothing acknowledged is lost, and a publish retried with
// the same Nats-Msg-Id after the failover is a duplicate. Stream info's cluster block names the leader
// and the replicas. The same assertions hold against a nats-server 2.9 cluster (NATTER_TEST_SERVER=nats-server).
import { describe, expect, test } from "vitest";
import { AckPolicy, jetstream, jetstreamManager, type StreamInfo } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { serverKind } from "../harness/server.ts";
import { waitFor, type ClusterNode } from "./spawn.ts";
import { existsSync, readdirSync } from "node:fs";
import path from "node:path";
import { answers, client, natterOnly, storeDirs, threeJetStreamNodes } from "./js-cluster.ts";

const enc = new TextEncoder();

/** A client that reconnects to any node of the cluster (as an application would connect). */
async function clusterClient(nodes: ClusterNode[]): Promise<NatsConnection> {
  return connect({ servers: nodes.map((n) => n.hostport), reconnectTimeWait: 100, maxReconnectAttempts: -1, timeout: 5000 });
}

async function info(nc: NatsConnection, stream: string): Promise<StreamInfo> {
  const jsm = await jetstreamManager(nc, { timeout: 2000 });
  return jsm.streams.info(stream);
}

describe("a replicated stream (R3)", () => {
  test("publishes acknowledged by a majority survive kill -9 of the leader; retries are duplicates", async () => {
    const nodes = await threeJetStreamNodes();
    const byName = new Map(nodes.map((n) => [n.name, n]));
    const nc = await clusterClient(nodes);
    const jsm = await jetstreamManager(nc);
    const created = await jsm.streams.add({ name: "R3", subjects: ["r3.>"], num_replicas: 3 });
    expect(created.config.num_replicas).toBe(3);
    expect(created.cluster?.name).toBe("test");
    expect(["N0", "N1", "N2"]).toContain(created.cluster?.leader);

    // Every replica current, as the leader sees them.
    let si = created;
    await waitFor("two current replicas", async () => {
      si = await info(nc, "R3");
      return si.cluster?.replicas?.length === 2 && si.cluster.replicas.every((r) => r.current);
    });
    expect(si.cluster!.replicas!.map((r) => r.name).sort()).toEqual(["N0", "N1", "N2"].filter((n) => n !== si.cluster!.leader));

    // One answer to a stream info, from any node (the leader's).
    for (const node of nodes) {
      const got = await answers(await client(node), "$JS.API.STREAM.INFO.R3");
      expect(got.length).toBe(1);
    }

    const js = jetstream(nc);
    for (let i = 1; i <= 20; i++) {
      const ack = await js.publish(`r3.${i}`, enc.encode(`m${i}`), { msgID: `id-${i}` });
      expect(ack.seq).toBe(i);
      expect(ack.duplicate).toBe(false);
    }
    expect((await js.publish("r3.1", enc.encode("again"), { msgID: "id-1" })).duplicate).toBe(true);

    // kill -9 of the leader: the first publish acknowledged afterwards is timed.
    const leader = byName.get(si.cluster!.leader!)!;
    await leader.kill9();
    const killedAt = Date.now();
    let failoverAck = null;
    while (failoverAck === null) {
      try {
        failoverAck = await js.publish("r3.after", enc.encode("after"), { msgID: "after-kill", timeout: 1000 });
      } catch {
        if (Date.now() - killedAt > 20_000) throw new Error("no leader took a publish within 20 s of the kill");
      }
    }
    const failoverMs = Date.now() - killedAt;
    console.log(`R3 failover (leader kill -9 → first PubAck): ${failoverMs} ms`);
    expect(failoverMs).toBeLessThan(20_000);
    expect(failoverAck.seq).toBe(21);
    // Acknowledged before the kill: still there once, and its Msg-Id still deduplicated.
    expect((await js.publish("r3.5", enc.encode("retry"), { msgID: "id-5" })).duplicate).toBe(true);
    expect((await js.publish("r3.after", enc.encode("after"), { msgID: "after-kill" })).duplicate).toBe(true);
    // The killed node may have led the meta group too: its election can end after the stream's.
    await waitFor("stream info answered after the failover", async () => {
      const answered = await info(nc, "R3").catch(() => null);
      if (answered !== null) si = answered;
      return answered !== null;
    }, 20_000);
    expect(si.state.messages).toBe(21);
    expect(si.cluster?.leader).not.toBe(leader.name);
    const killed = si.cluster?.replicas?.find((r) => r.name === leader.name);
    expect(killed?.current).toBe(false);
    // natter marks it offline as soon as its route is gone; nats-server 2.9 once it declared the peer lost.
    if (serverKind === "natter") expect(killed?.offline).toBe(true);

    // Every message once, in order, through a consumer on the new leader.
    await jsm.consumers.add("R3", { durable_name: "reader", ack_policy: AckPolicy.Explicit });
    const consumer = await js.consumers.get("R3", "reader");
    const seen: string[] = [];
    for await (const m of await consumer.fetch({ max_messages: 21, expires: 3000 })) {
      seen.push(m.string());
      m.ack();
      if (seen.length === 21) break;
    }
    expect(seen).toEqual([...Array.from({ length: 20 }, (_, i) => `m${i + 1}`), "after"]);

    // The killed node comes back and catches up: current again.
    await leader.start();
    await waitFor("the restarted replica current", async () => {
      const s = await info(nc, "R3").catch(() => null); // the restarted node may answer 10008 until it knows the leader
      return s?.cluster?.replicas?.find((r) => r.name === leader.name)?.current === true;
    }, 20_000);
    await nc.close();
  }, 60_000);

  test("leader stepdown moves the leader; more replicas than nodes is refused; KV with replicas", async () => {
    const nodes = await threeJetStreamNodes();
    const nc = await clusterClient(nodes);
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: "SD", subjects: ["sd.>"], num_replicas: 3 });
    const before = (await info(nc, "SD")).cluster!.leader!;
    await waitFor("two current replicas", async () => (await info(nc, "SD")).cluster?.replicas?.every((r) => r.current) === true);
    const reply = await nc.request("$JS.API.STREAM.LEADER.STEPDOWN.SD", new Uint8Array(), { timeout: 5000 });
    expect(reply.json<{ success: boolean }>().success).toBe(true);
    await waitFor("another leader", async () => {
      const leader = (await info(nc, "SD").catch(() => null))?.cluster?.leader;
      return leader !== undefined && leader !== before;
    });
    expect((await jetstream(nc).publish("sd.1", enc.encode("x"))).seq).toBe(1);

    // Five replicas on three nodes: nats-server's "no suitable peers for placement" (10005).
    const r5 = await answers(nc, "$JS.API.STREAM.CREATE.R5", JSON.stringify({ name: "R5", subjects: ["r5"], num_replicas: 5 }));
    expect(r5.length).toBe(1);
    expect((r5[0]!.error as { err_code: number }).err_code).toBe(10005);
    expect((r5[0]!.error as { description: string }).description).toMatch(/^no suitable peers for placement/);
    // A consumer may not have more replicas than its stream (10126).
    await jsm.streams.add({ name: "ONE", subjects: ["one"], num_replicas: 1 });
    const r3 = await answers(nc, "$JS.API.CONSUMER.DURABLE.CREATE.ONE.c", JSON.stringify({ stream_name: "ONE", config: { durable_name: "c", ack_policy: "explicit", num_replicas: 3 } }));
    expect(r3.map((a) => a.error)).toEqual([{ code: 400, err_code: 10126, description: "consumer config replica count exceeds parent stream" }]);

    const kv = await new Kvm(nc).create("cfg", { replicas: 3, history: 5 });
    expect((await kv.status()).replicas).toBe(3);
    await kv.put("a", "1");
    await kv.put("a", "2");
    expect((await kv.get("a"))?.string()).toBe("2");
    expect((await kv.get("a", { revision: 1 }))?.string()).toBe("1");

    // A message of nearly max_payload read through a node that does not lead the stream: the leader's
    // answer holds it in base64, larger than any client may publish, and crosses a route (nats-server's
    // routes take any size; natter's closed at max_payload + 256 KiB, and the request went unanswered).
    const leader = (await info(nc, "SD")).cluster!.leader!;
    const far = await connect({ servers: nodes.find((n) => n.name !== leader)!.hostport, timeout: 5000 });
    try {
      const big = new Uint8Array(1024 * 1024 - 256).fill(7);
      const seq = (await jetstream(far).publish("sd.big", big)).seq;
      const got = await (await jetstreamManager(far)).streams.getMessage("SD", { seq });
      expect(got?.data.length).toBe(big.length);
      expect(got?.data.every((b) => b === 7)).toBe(true);
    } finally {
      await far.close();
    }
    await nc.close();
  }, 60_000);

  natterOnly("each replica compacts its log once its store has the messages; a restart after it loses nothing", async () => {
    const nodes = await threeJetStreamNodes();
    const nc = await clusterClient(nodes);
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: "BIG", subjects: ["big.>"], num_replicas: 3 });
    const js = jetstream(nc);
    const total = 1200;
    for (let i = 0; i < total; i += 100) {
      await Promise.all(Array.from({ length: 100 }, (_, j) => js.publish(`big.${i + j}`, enc.encode(String(i + j)), { msgID: `b${i + j}` })));
    }
    // Every replica's group directory gets a snapshot (the log before it dropped) within its 5 s period.
    const snapshotOf = (node: ClusterNode) => {
      const sys = path.join(storeDirs.get(node)!, "jetstream", "$SYS", "_js_");
      return existsSync(sys) && readdirSync(sys).some((g) => g.startsWith("S-") && existsSync(path.join(sys, g, "snapshot")));
    };
    await waitFor("a snapshot on every replica", () => nodes.every(snapshotOf), 15_000);
    const leaderName = (await info(nc, "BIG")).cluster!.leader!;
    const leader = nodes.find((n) => n.name === leaderName)!;
    await leader.kill9();
    await leader.start();
    let after = null;
    while (after === null) after = await js.publish("big.after", enc.encode("after"), { msgID: "after", timeout: 1000 }).catch(() => null);
    expect(after.seq).toBe(total + 1);
    await waitFor("the restarted replica current", async () => {
      const s = await info(nc, "BIG").catch(() => null);
      return s?.state.messages === total + 1 && s.cluster?.replicas?.every((r) => r.current) === true;
    }, 20_000);
    await nc.close();
  }, 60_000);
});
