// MQTT in a natter cluster: an MQTT publish on one node reaches MQTT and NATS subscribers on another,
// and a NATS publish reaches an MQTT subscriber across the route (MQTT sessions are ordinary subscribers
// of the account's subject space, so their interest crosses routes like a client's); a cluster without
// JetStream may run MQTT, as in nats-server. With JetStream, sessions and retained messages are the
// cluster's: the `$MQTT_*` streams are replicated, a client id moves to the node it connects to (the old
// connection is closed) with its subscriptions and QoS 1 messages, a retained message is seen from every
// node. That test also runs against a 3-node nats-server cluster (NATTER_TEST_SERVER=nats-server).
import { afterAll, beforeAll, describe, expect, onTestFinished, test } from "vitest";
import * as nats from "nats";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { headers as natsHeaders } from "@nats-io/transport-node";
import { freePort, serverKind } from "../harness/server.ts";
import { startNode, waitForMesh, type ClusterNode } from "../cluster/spawn.ts";
import { client, metaCluster, storeDir, waitForMeta } from "../cluster/js-cluster.ts";
import { waitFor } from "../harness/raw.ts";
import mqtt, { type MqttClient } from "mqtt";
import { collect, connectMqtt } from "./helpers.ts";

describe.skipIf(serverKind === "nats-server")("MQTT across a cluster", () => {
  test("MQTT → MQTT and NATS on another node, NATS → MQTT on another node", async () => {
    const [mqtt0, mqtt1] = [await freePort(), await freePort()];
    const n0 = await startNode({ name: "M0", seeds: [], extraArgs: ["--mqtt_port", String(mqtt0)] });
    const n1 = await startNode({ name: "M1", seeds: [n0.clusterPort], extraArgs: ["--mqtt_port", String(mqtt1)] });
    await waitForMesh([n0, n1]);
    const sub = await connectMqtt(`mqtt://127.0.0.1:${mqtt1}`, { clientId: "far-sub" });
    const got = collect(sub);
    await sub.subscribeAsync("plant/#");
    const nc1 = await nats.connect({ servers: n1.url, reconnect: false });
    const nc0 = await nats.connect({ servers: n0.url, reconnect: false });
    try {
      const natsGot: string[] = [];
      nc1.subscribe("plant.>", { callback: (_e, m) => natsGot.push(m.subject) });
      await nc1.flush();
      // Interest reaches node 0 asynchronously: probe until the MQTT subscriber on node 1 hears node 0.
      await waitFor(async () => {
        nc0.publish("plant.probe", "p");
        await nc0.flush();
        return got.messages.length > 0;
      }, 10_000, "interest from node 1 on node 0", 100);
      got.messages.length = 0;
      natsGot.length = 0;
      const pub = await connectMqtt(`mqtt://127.0.0.1:${mqtt0}`, { clientId: "near-pub" });
      await pub.publishAsync("plant/line-1/temp", "20", { qos: 1 });
      // Probes still on their way may arrive first: wait for this message by its topic.
      const m = await waitFor(() => got.messages.find((r) => r.topic === "plant/line-1/temp"), 5000, "the MQTT message on node 1");
      expect(m.payload).toBe("20");
      await waitFor(() => natsGot.includes("plant.line-1.temp"), 5000, "the NATS subscriber on node 1");
    } finally {
      await nc0.close();
      await nc1.close();
    }
  });
});

/** The session present flag of the client's CONNACK (MQTT.js keeps the packet). */
function sessionPresent(c: MqttClient): boolean {
  return (c as unknown as { connackPacket?: { sessionPresent: boolean } }).connackPacket?.sessionPresent === true;
}

/** Three JetStream nodes, each with an MQTT port (the mqtt block in a config file, as nats-server needs it). */
async function threeMqttNodes(mqttBlock: string): Promise<{ nodes: ClusterNode[]; mqttUrls: string[] }> {
  const kind = serverKind;
  const ports = [await freePort(), await freePort(), await freePort()];
  const mqttPorts = [await freePort(), await freePort(), await freePort()];
  const seeds = (i: number) => (kind === "natter" ? (i === 0 ? [] : [ports[i - 1]!]) : ports.filter((_, j) => j !== i));
  const nodes: ClusterNode[] = [];
  for (let i = 0; i < 3; i++) {
    const dir = storeDir();
    const conf = path.join(dir, "mqtt.conf");
    writeFileSync(conf, `mqtt {\n  host: "127.0.0.1"\n  port: ${mqttPorts[i]}\n${mqttBlock}\n}\n`);
    nodes.push(await startNode({ name: `M${i}`, kind, monitor: true, clusterPort: ports[i], seeds: seeds(i), extraArgs: ["-c", conf, "-js", "--store_dir", dir] }));
  }
  if (kind === "natter") await waitForMesh(nodes);
  await waitForMeta(nodes);
  return { nodes, mqttUrls: mqttPorts.map((p) => `mqtt://127.0.0.1:${p}`) };
}

describe("MQTT sessions and retained messages in a JetStream cluster", () => {
  // One cluster for the tests below (each uses its own client ids and topics); the last one kills a node.
  let nodes: ClusterNode[] = [];
  let url0 = "", url1 = "", url2 = "";
  beforeAll(async () => {
    const started = await threeMqttNodes("  stream_replicas: 3");
    nodes = started.nodes;
    [url0, url1, url2] = started.mqttUrls as [string, string, string];
  }, 60_000);
  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.kill9()));
  });

  test("replicated streams; a retained message seen from every node; a session taken over on another node keeps its subscription and QoS 1 messages", async () => {
    // Connecting waits while the MQTT streams are created (once for the cluster, R3).
    const pub = await connectMqtt(url0, { clientId: "c-pub", connectTimeout: 20_000 });
    const nc = await client(nodes[1]!);
    const jsm = await jetstreamManager(nc, { timeout: 5000 });
    const sessions = await jsm.streams.info("$MQTT_sess");
    expect(sessions.config.num_replicas).toBe(3);
    expect(sessions.cluster?.replicas?.length).toBe(2);

    // A retained message published on node 0 is given to a new subscription on node 2.
    await pub.publishAsync("site/state", "open", { qos: 1, retain: true });
    await waitFor(async () => {
      const probe = await connectMqtt(url2, { clientId: `c-probe-${Math.random().toString(36).slice(2)}`, connectTimeout: 20_000 });
      const got = collect(probe);
      await probe.subscribeAsync("site/#", { qos: 1 });
      const seen = await got.wait(1, 1000).then((m) => m, () => []);
      await probe.endAsync(true);
      return seen.some((m) => m.topic === "site/state" && m.payload === "open" && m.packet.retain);
    }, 15_000, "the retained message on node 2");

    // A session on node 0, taken over on node 1: the connection on node 0 is closed, the session is present.
    const first = await connectMqtt(url0, { clientId: "dev-1", clean: false, connectTimeout: 20_000 });
    await first.subscribeAsync("jobs/#", { qos: 1 });
    const firstClosed = new Promise<void>((resolve) => first.once("close", () => resolve()));
    const second = await connectMqtt(url1, { clientId: "dev-1", clean: false, connectTimeout: 20_000 });
    await firstClosed;
    expect(sessionPresent(second)).toBe(true);
    const onSecond = collect(second);
    await pub.publishAsync("jobs/1", "first", { qos: 1 });
    expect((await onSecond.wait(1, 10_000))[0]!.payload).toBe("first");
    await second.endAsync();

    // Away: QoS 1 messages published meanwhile are kept; the client returns on node 2 and gets them.
    for (const n of [2, 3, 4]) await pub.publishAsync(`jobs/${n}`, `job ${n}`, { qos: 1 });
    if (serverKind === "natter") {
      // The node that held the session stores them in $MQTT_qos (asynchronously to the publisher's PUBACK there).
      await waitFor(async () => (await jsm.streams.info("$MQTT_qos")).state.messages >= 3, 10_000, "the kept messages stored");
    }
    // Collecting from before CONNACK: the kept messages follow it at once.
    const third = mqtt.connect(url2, { clientId: "dev-1", clean: false, connectTimeout: 20_000, reconnectPeriod: 0, protocolVersion: 4 });
    onTestFinished(() => third.endAsync(true).catch(() => {}));
    const onThird = collect(third);
    await new Promise<void>((resolve, reject) => {
      third.once("connect", () => resolve());
      third.once("error", reject);
    });
    expect(sessionPresent(third)).toBe(true);
    const got = await onThird.wait(3, 10_000);
    expect([...new Set(got.map((m) => m.payload))].sort()).toEqual(["job 2", "job 3", "job 4"]);
    if (serverKind === "natter") {
      // Kept once: by node 1, which held the session (node 0, where they were published, left them to it).
      await third.subscribeAsync("jobs/sync", { qos: 1 });
      await pub.publishAsync("jobs/sync", "sync", { qos: 1 });
      await waitFor(() => got.some((m) => m.payload === "sync"), 10_000, "the sync message");
      expect(got.filter((m) => m.payload.startsWith("job ")).length).toBe(3);
    }
    await third.endAsync();
    await pub.endAsync();
  });

  test("the retain flag across nodes: live deliveries without it (3.1.1), with it where MQTT 5 asks retain as published", async () => {
    const pub = await connectMqtt(url0, { clientId: "rf-pub", connectTimeout: 20_000 });
    const sub311 = await connectMqtt(url1, { clientId: "rf-311", connectTimeout: 20_000 });
    const got311 = collect(sub311);
    await sub311.subscribeAsync("flag/#", { qos: 1 });
    const v5 = serverKind === "natter"; // nats-server 2.9 and 2.10 refuse MQTT 5
    const subRap = v5 ? await connectMqtt(url1, { clientId: "rf-rap", protocolVersion: 5, connectTimeout: 20_000 }) : null;
    const subPlain = v5 ? await connectMqtt(url1, { clientId: "rf-plain", protocolVersion: 5, connectTimeout: 20_000 }) : null;
    const gotRap = subRap === null ? null : collect(subRap);
    const gotPlain = subPlain === null ? null : collect(subPlain);
    await subRap?.subscribeAsync("flag/#", { qos: 1, rap: true });
    await subPlain?.subscribeAsync("flag/#", { qos: 1 });
    // Interest crosses the routes asynchronously: probe until every subscriber on node 1 hears node 0.
    const everyone = [got311, gotRap, gotPlain].filter((g) => g !== null);
    await waitFor(async () => {
      await pub.publishAsync("flag/probe", "p", { qos: 0 });
      return everyone.every((g) => g.messages.some((m) => m.topic === "flag/probe"));
    }, 10_000, "interest from node 1 on node 0", 100);
    await pub.publishAsync("flag/kept-0", "r0", { qos: 0, retain: true });
    await pub.publishAsync("flag/kept-1", "r1", { qos: 1, retain: true });
    const live = async (g: ReturnType<typeof collect>) => {
      const topics = ["flag/kept-0", "flag/kept-1"];
      await waitFor(() => topics.every((t) => g.messages.some((m) => m.topic === t)), 10_000, "both retained publishes");
      return topics.map((t) => g.messages.find((m) => m.topic === t)!.packet.retain);
    };
    // [MQTT-3.3.1-9]: a live delivery to an established subscription has RETAIN 0 (nats-server: also across routes).
    expect(await live(got311)).toEqual([false, false]);
    if (gotRap !== null && gotPlain !== null) {
      // MQTT 5 [MQTT-3.3.1-12]/[MQTT-3.3.1-13]: retain as published keeps the publisher's flag, the publisher being on another node.
      expect(await live(gotRap)).toEqual([true, true]);
      expect(await live(gotPlain)).toEqual([false, false]);
    }
    // Leave no retained messages behind for the other tests.
    await pub.publishAsync("flag/kept-0", "", { qos: 1, retain: true });
    await pub.publishAsync("flag/kept-1", "", { qos: 1, retain: true });
  });

  // natter only: every run against nats-server 2.9.10 (two) and 2.12.0 (three) failed a round of ten; those looked at
  // ended with both racers closed (both connected then both closed, or one never connected and the other closed).
  test.skipIf(serverKind !== "natter")("two connections with one client id racing on two nodes: exactly one keeps the session, the other is closed", async () => {
    const rounds = 10;
    for (let r = 0; r < rounds; r++) {
      const clientId = `race-${r}`;
      if (r % 2 === 1) {
        // Odd rounds race for a session that exists (kept, its client away), even rounds for a new one.
        const earlier = await connectMqtt(url2, { clientId, clean: false, connectTimeout: 20_000 });
        await earlier.subscribeAsync(`race/${r}`, { qos: 1 });
        await earlier.endAsync();
      }
      const racers = [url0, url1].map((url) => {
        const c = mqtt.connect(url, { clientId, clean: false, connectTimeout: 20_000, reconnectPeriod: 0, protocolVersion: 4 });
        c.on("error", () => {}); // a refused CONNECT: counted below as closed
        onTestFinished(() => c.endAsync(true).catch(() => {}));
        const state = { connected: false, closed: false, client: c };
        c.on("connect", () => (state.connected = true));
        c.on("close", () => (state.closed = true));
        return state;
      });
      const settled = () => racers.filter((s) => s.connected && !s.closed).length === 1 && racers.some((s) => s.closed);
      await waitFor(settled, 15_000, `round ${r}: one connection left`, 20).catch((error: Error) => {
        throw new Error(`${error.message}; [connected, closed] of each: ${JSON.stringify(racers.map((s) => [s.connected, s.closed]))}`);
      });
      // The one left has the session: a QoS 1 round trip on it, after which the other node's claim is long settled.
      const winner = racers.find((s) => !s.closed)!.client;
      const got = collect(winner);
      await winner.subscribeAsync(`race/${r}/echo`, { qos: 1 });
      await winner.publishAsync(`race/${r}/echo`, "mine", { qos: 1 });
      await got.wait(1, 10_000);
      expect(racers.filter((s) => !s.closed).length).toBe(1);
      await winner.endAsync();
    }
    // A clean start for a kept session (its record purged while the claim is written) is no race: it connects, twice.
    for (const url of [url0, url0]) {
      const clean = await connectMqtt(url, { clientId: "race-1", clean: true, connectTimeout: 20_000 });
      expect(sessionPresent(clean)).toBe(false);
      await clean.endAsync();
    }
  });

  // Runs last: it kills the node that held the session.
  test("a kept session's QoS 1 messages are kept cluster-wide: published on a second node while the node that held it is down; received on a third", async () => {
    const urls = [url0, url1, url2];
    const qosStream = serverKind === "natter" ? "$MQTT_qos" : "$MQTT_msgs";
    // The session is left on a node that leads neither the meta group nor the streams when there is one, so
    // that killing it waits for no election (node 0 otherwise).
    const probe = await client(nodes[1]!);
    const probeJsm = await jetstreamManager(probe, { timeout: 5000 });
    const leaders = new Set([(await metaCluster(nodes[1]!))?.leader]);
    for (const stream of ["$MQTT_sess", qosStream]) leaders.add((await probeJsm.streams.info(stream).catch(() => null))?.cluster?.leader ?? "M0");
    const held = Math.max(0, nodes.findIndex((n) => !leaders.has(n.name)));
    const [pubAt, backAt] = [(held + 1) % 3, (held + 2) % 3];
    const nc = await client(nodes[pubAt]!);
    const jsm = await jetstreamManager(nc, { timeout: 5000 });
    const away = await connectMqtt(urls[held]!, { clientId: "away-1", clean: false, connectTimeout: 20_000 });
    await away.subscribeAsync("fleet/#", { qos: 1 });
    await away.endAsync();
    await nodes[held]!.kill9();
    // The streams' replicas on the other two nodes go on (R3): wait until they answer without the killed node.
    for (const stream of ["$MQTT_sess", qosStream]) {
      await waitFor(async () => {
        const info = await jsm.streams.info(stream).catch(() => null);
        return info?.cluster?.leader !== undefined && info.cluster.leader !== nodes[held]!.name;
      }, 20_000, `${stream} led without ${nodes[held]!.name}`, 200);
    }
    const pub = await connectMqtt(urls[pubAt]!, { clientId: "away-pub", connectTimeout: 20_000 });
    // A NATS publish is QoS 0 to MQTT subscribers (as nats-server): not kept for a client that is away.
    nc.publish("fleet.nats", "plain");
    if (serverKind === "natter") {
      // One carrying nats-server's Nmqtt-Pub header is an MQTT publish of that QoS (as from another node): kept.
      const h = natsHeaders();
      h.set("Nmqtt-Pub", "1");
      nc.publish("fleet.nats-qos1", "from NATS", { headers: h });
    }
    await nc.flush(); // the node has them before the MQTT publishes below
    await pub.publishAsync("fleet/truck-1", "t1", { qos: 1 });
    await pub.publishAsync("fleet/truck-2", "t2", { qos: 1 });
    const back = mqtt.connect(urls[backAt]!, { clientId: "away-1", clean: false, connectTimeout: 20_000, reconnectPeriod: 0, protocolVersion: 4 });
    onTestFinished(() => back.endAsync(true).catch(() => {}));
    const got = collect(back);
    await new Promise<void>((resolve, reject) => {
      back.once("connect", () => resolve());
      back.once("error", reject);
    });
    expect(sessionPresent(back)).toBe(true);
    const expected = serverKind === "natter" ? ["from NATS", "t1", "t2"] : ["t1", "t2"];
    // Kept in the order published; "fleet/truck-2" came last, so all kept before it are here with it.
    await waitFor(() => got.messages.some((m) => m.topic === "fleet/truck-2"), 15_000, "the kept messages on node 2");
    expect([...new Set(got.messages.map((m) => m.payload))].sort()).toEqual(expected);
    expect(got.messages.every((m) => m.packet.qos === 1)).toBe(true);
    await back.endAsync();
    await pub.endAsync();
  });
});
