// MQTT 5 specifics with MQTT.js: user properties ↔ NATS headers, response topic/correlation data ↔ NATS
// request-reply, shared subscriptions ↔ queue groups, subscription options and identifiers, topic
// aliases, receive maximum, wills with a delay, and the server's DISCONNECT on shutdown.
import { describe, expect, test } from "vitest";
import * as v2 from "nats";
import mqtt from "mqtt";
import { connectV2 } from "../harness/clients.ts";
import { serverKind } from "../harness/server.ts";
import { waitFor } from "../harness/raw.ts";
import { PacketType, ReasonCode, type ConnackPacket, type PublishPacket } from "../../src/mqtt/packets.ts";
import { collect, connectMqtt, startMqttServer } from "./helpers.ts";
import { RawMqtt } from "./raw-mqtt.ts";

const v5 = { protocolVersion: 5 } as const;

// nats-server refuses MQTT 5 at CONNECT: these are natter's.
describe.skipIf(serverKind === "nats-server")("MQTT 5", () => {
  test("user properties become NATS headers and NATS headers become user properties", async () => {
    const { server, mqttUrl } = await startMqttServer();
    const nc = await connectV2(server);
    const natsSub = nc.subscribe("props.in", { max: 1 });
    await nc.flush();
    const client = await connectMqtt(mqttUrl, v5);
    await client.publishAsync("props/in", "x", { properties: { userProperties: { site: "cold-1", unit: "C" }, contentType: "text/plain" } });
    for await (const m of natsSub) {
      expect(m.headers?.get("site")).toBe("cold-1");
      expect(m.headers?.get("unit")).toBe("C");
      expect(m.headers?.get("Nmqtt-Content-Type")).toBe("text/plain");
    }
    const got = collect(client);
    await client.subscribeAsync("props/out");
    const h = v2.headers();
    h.set("trace-id", "abc");
    nc.publish("props.out", "y", { headers: h });
    const [received] = await got.wait(1);
    expect(received!.packet.properties?.userProperties).toEqual({ "trace-id": "abc" });
  });

  test("an MQTT 5 request with a response topic is answered by a NATS service; a NATS request by an MQTT 5 responder", async () => {
    const { server, mqttUrl } = await startMqttServer();
    const nc = await connectV2(server);
    nc.subscribe("svc.time", { callback: (_e, m) => m.respond(new TextEncoder().encode(`now for ${m.string()}`)) });
    await nc.flush();
    const requester = await connectMqtt(mqttUrl, v5);
    const got = collect(requester);
    await requester.subscribeAsync("replies/me");
    await requester.publishAsync("svc/time", "dev-1", { properties: { responseTopic: "replies/me", correlationData: Buffer.from("c-1") } });
    expect((await got.wait(1))[0]!.payload).toBe("now for dev-1");

    const responder = await connectMqtt(mqttUrl, v5);
    responder.on("message", (_topic, payload, packet) => {
      const responseTopic = packet.properties?.responseTopic;
      if (responseTopic) responder.publish(responseTopic, `pong ${payload}`, { properties: { correlationData: packet.properties?.correlationData } });
    });
    await responder.subscribeAsync("devices/+/ping");
    const reply = await nc.request("devices.d7.ping", "hi", { timeout: 5000 });
    expect(reply.string()).toBe("pong hi");
  });

  test("correlation data travels with the message to an MQTT 5 subscriber", async () => {
    const { mqttUrl } = await startMqttServer();
    const sub = await connectMqtt(mqttUrl, v5);
    const got = collect(sub);
    await sub.subscribeAsync("corr/#");
    const pub = await connectMqtt(mqttUrl, v5);
    await pub.publishAsync("corr/x", "q", { properties: { responseTopic: "corr-reply/x", correlationData: Buffer.from([1, 2, 3]) } });
    const [m] = await got.wait(1);
    expect(m!.packet.properties?.responseTopic).toBe("corr-reply/x");
    expect([...(m!.packet.properties?.correlationData ?? [])]).toEqual([1, 2, 3]);
  });

  test("$share/<group>/<filter> is a queue group shared with NATS queue subscribers of that name", async () => {
    const { server, mqttUrl } = await startMqttServer();
    const a = await connectMqtt(mqttUrl, v5);
    const b = await connectMqtt(mqttUrl, v5);
    const gotA = collect(a);
    const gotB = collect(b);
    await a.subscribeAsync("$share/workers/jobs/#");
    await b.subscribeAsync("$share/workers/jobs/#");
    const nc = await connectV2(server);
    let natsCount = 0;
    nc.subscribe("jobs.>", { queue: "workers", callback: () => natsCount++ });
    await nc.flush();
    const pub = await connectV2(server);
    for (let i = 0; i < 300; i++) pub.publish(`jobs.n${i}`, "job");
    await pub.flush();
    await waitFor(() => gotA.messages.length + gotB.messages.length + natsCount === 300, 5000, "300 jobs, each taken once");
    expect(gotA.messages.length).toBeGreaterThan(0);
    expect(gotB.messages.length).toBeGreaterThan(0);
    expect(natsCount).toBeGreaterThan(0);
  });

  test("no local: a client's own publishes do not come back on that subscription", async () => {
    const { mqttUrl } = await startMqttServer();
    const client = await connectMqtt(mqttUrl, v5);
    const got = collect(client);
    await client.subscribeAsync("echo/quiet", { qos: 0, nl: true });
    await client.subscribeAsync("echo/loud", { qos: 0 });
    await client.publishAsync("echo/quiet", "1");
    await client.publishAsync("echo/loud", "2");
    const [m] = await got.wait(1);
    expect(m!.topic).toBe("echo/loud");
    expect(got.messages).toHaveLength(1);
  });

  test("retain as published keeps RETAIN on live messages; retain handling 2 sends no retained messages, 1 only to a new subscription", async () => {
    const { mqttUrl } = await startMqttServer();
    const pub = await connectMqtt(mqttUrl, v5);
    await pub.publishAsync("rh/state", "kept", { qos: 1, retain: true });
    const client = await connectMqtt(mqttUrl, v5);
    const got = collect(client);
    await client.subscribeAsync("rh/+", { qos: 0, rh: 2 }); // none
    await client.subscribeAsync("rh/#", { qos: 0, rh: 1, rap: true }); // the retained one (a new subscription)
    await client.subscribeAsync("rh/#", { qos: 0, rh: 1, rap: true }); // the same again: none this time
    await pub.publishAsync("rh/state", "live", { qos: 1, retain: true });
    const messages = await got.wait(3);
    // The retained message once (RETAIN set), then "live" on both subscriptions: RETAIN kept on the `rap` one only.
    expect(messages.map((m) => `${m.payload}:${m.packet.retain}`).sort()).toEqual(["kept:true", "live:false", "live:true"]);
  });

  test("a subscription identifier comes back on the messages it matched", async () => {
    const { mqttUrl } = await startMqttServer();
    const client = await connectMqtt(mqttUrl, v5);
    const got = collect(client);
    await client.subscribeAsync("ids/#", { qos: 0, properties: { subscriptionIdentifier: 77 } });
    await client.publishAsync("ids/a", "x");
    const [m] = await got.wait(1);
    expect(m!.packet.properties?.subscriptionIdentifier).toBe(77);
  });

  test("a topic alias set by the client stands for its topic afterwards", async () => {
    const { mqttPort, mqttUrl } = await startMqttServer();
    const sub = await connectMqtt(mqttUrl, v5);
    const got = collect(sub);
    await sub.subscribeAsync("alias/#");
    const raw = await RawMqtt.connect(mqttPort, 5);
    const ack = await raw.handshake({ clientId: "aliaser" });
    expect(ack).toMatchObject({ properties: { topicAliasMaximum: expect.any(Number) } });
    const base: PublishPacket = { type: PacketType.PUBLISH, dup: false, qos: 0, retain: false, topic: "alias/long/topic", packetId: 0, properties: { topicAlias: 3 }, payload: Buffer.from("1") };
    raw.sendPacket(base);
    raw.sendPacket({ ...base, topic: "", payload: Buffer.from("2") });
    const messages = await got.wait(2);
    expect(messages.map((m) => `${m.topic} ${m.payload}`)).toEqual(["alias/long/topic 1", "alias/long/topic 2"]);
  });

  test("topic aliases towards the client: a repeated topic goes as its alias, up to the client's topic alias maximum (MQTT.js)", async () => {
    const { server, mqttUrl } = await startMqttServer();
    const sub = await connectMqtt(mqttUrl, { ...v5, properties: { topicAliasMaximum: 2 } });
    const got = collect(sub);
    await sub.subscribeAsync("alias/#", { qos: 1 });
    const nc = await connectV2(server);
    for (const t of ["a", "a", "b", "b", "c", "a"]) nc.publish(`alias.${t}`, t);
    const pub = await connectMqtt(mqttUrl, v5);
    await pub.publishAsync("alias/b", "qos1", { qos: 1 });
    const received = await got.wait(7);
    // MQTT.js resolves the aliases: every message has its topic.
    expect(received.map((r) => `${r.topic}=${r.payload}`)).toEqual(["alias/a=a", "alias/a=a", "alias/b=b", "alias/b=b", "alias/c=c", "alias/a=a", "alias/b=qos1"]);
    // Two aliases (the client's maximum): a and b; c goes with its topic only.
    expect(received.map((r) => r.packet.properties?.topicAlias)).toEqual([1, 1, 2, 2, undefined, 1, 2]);
  });

  test("topic aliases towards the client on the wire: the topic once with the alias, then empty [MQTT-3.3.2-12]; none without a topic alias maximum", async () => {
    const { server, mqttPort } = await startMqttServer();
    const raw = await RawMqtt.connect(mqttPort, 5);
    await raw.handshake({ clientId: "alias-raw", properties: { topicAliasMaximum: 5 } });
    raw.sendPacket({ type: PacketType.SUBSCRIBE, packetId: 1, properties: {}, subscriptions: [{ filter: "wire/+", qos: 0, noLocal: false, retainAsPublished: false, retainHandling: 0 }] });
    await raw.next(PacketType.SUBACK);
    const plain = await RawMqtt.connect(mqttPort, 5);
    await plain.handshake({ clientId: "alias-none" });
    plain.sendPacket({ type: PacketType.SUBSCRIBE, packetId: 1, properties: {}, subscriptions: [{ filter: "wire/+", qos: 0, noLocal: false, retainAsPublished: false, retainHandling: 0 }] });
    await plain.next(PacketType.SUBACK);
    const nc = await connectV2(server);
    nc.publish("wire.t", "1");
    nc.publish("wire.t", "2");
    const first = (await raw.next(PacketType.PUBLISH)) as PublishPacket;
    const second = (await raw.next(PacketType.PUBLISH)) as PublishPacket;
    expect([first.topic, first.properties.topicAlias, first.payload.toString()]).toEqual(["wire/t", 1, "1"]);
    expect([second.topic, second.properties.topicAlias, second.payload.toString()]).toEqual(["", 1, "2"]);
    for (const payload of ["1", "2"]) {
      const m = (await plain.next(PacketType.PUBLISH)) as PublishPacket;
      expect([m.topic, m.properties.topicAlias, m.payload.toString()]).toEqual(["wire/t", undefined, payload]);
    }
  });

  test("server keep alive: an MQTT 5 client asking for none or more than max_keep_alive is given max_keep_alive in CONNACK, and held to it", async () => {
    const { mqttUrl, mqttPort } = await startMqttServer({ mqttConfig: "max_keep_alive: 1" });
    const connack = await new Promise<mqtt.IConnackPacket>((resolve, reject) => {
      const client = mqtt.connect(mqttUrl, { protocolVersion: 5, keepalive: 0, reconnectPeriod: 0 });
      client.once("connect", (ack) => {
        resolve(ack);
        client.end(true);
      });
      client.once("error", reject);
    });
    expect(connack.properties?.serverKeepAlive).toBe(1);
    const longer = await RawMqtt.connect(mqttPort, 5);
    expect(await longer.handshake({ clientId: "ka-long", keepAlive: 30 })).toMatchObject({ properties: { serverKeepAlive: 1 } });
    const silent = await RawMqtt.connect(mqttPort, 5);
    expect(await silent.handshake({ clientId: "ka-silent", keepAlive: 0 })).toMatchObject({ properties: { serverKeepAlive: 1 } });
    // Silent past 1.5 × 1 s: DISCONNECT 0x8D.
    expect(await silent.next(PacketType.DISCONNECT, 10_000)).toMatchObject({ reasonCode: ReasonCode.KeepAliveTimeout });
    const within = await RawMqtt.connect(mqttPort, 5);
    const ack = (await within.handshake({ clientId: "ka-within", keepAlive: 1 })) as ConnackPacket;
    expect(ack.properties.serverKeepAlive).toBeUndefined();
  });

  test("the client's receive maximum bounds the QoS 1 messages in flight to it", async () => {
    const { mqttPort, mqttUrl } = await startMqttServer();
    const raw = await RawMqtt.connect(mqttPort, 5);
    await raw.handshake({ clientId: "small", properties: { receiveMaximum: 1 } });
    raw.sendPacket({ type: PacketType.SUBSCRIBE, packetId: 1, properties: {}, subscriptions: [{ filter: "rm", qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 }] });
    await raw.next(PacketType.SUBACK);
    const pub = await connectMqtt(mqttUrl, v5);
    await pub.publishAsync("rm", "a", { qos: 1 });
    await pub.publishAsync("rm", "b", { qos: 1 });
    const first = (await raw.next(PacketType.PUBLISH)) as PublishPacket;
    expect(raw.packets.filter((p) => p.type === PacketType.PUBLISH)).toEqual([]);
    raw.sendPacket({ type: PacketType.PUBACK, packetId: first.packetId, reasonCode: 0, properties: {} });
    expect(((await raw.next(PacketType.PUBLISH)) as PublishPacket).payload.toString()).toBe("b");
  });

  test("a will is published when the client goes away without DISCONNECT, after its will delay; DISCONNECT 0x00 cancels it", async () => {
    const { mqttPort, mqttUrl } = await startMqttServer();
    const watcher = await connectMqtt(mqttUrl, v5);
    const got = collect(watcher);
    await watcher.subscribeAsync("wills/#");
    const polite = await RawMqtt.connect(mqttPort, 5);
    await polite.handshake({ clientId: "polite", will: { topic: "wills/polite", payload: Buffer.from("gone"), qos: 0, retain: false, properties: {} } });
    polite.sendPacket({ type: PacketType.DISCONNECT, reasonCode: 0, properties: {} });
    await polite.waitClosed();
    const abrupt = await RawMqtt.connect(mqttPort, 5);
    await abrupt.handshake({
      clientId: "abrupt", properties: { sessionExpiryInterval: 10 },
      will: { topic: "wills/abrupt", payload: Buffer.from("lost"), qos: 1, retain: false, properties: { willDelayInterval: 1 } },
    });
    const closedAt = Date.now();
    abrupt.close();
    const [m] = await got.wait(1, 5000);
    expect(m!.topic).toBe("wills/abrupt");
    expect(m!.payload).toBe("lost");
    expect(Date.now() - closedAt).toBeGreaterThanOrEqual(900);
    expect(got.messages).toHaveLength(1); // the polite client's will never came
  });

  test("DISCONNECT 0x04 (with will) publishes the will", async () => {
    const { mqttPort, mqttUrl } = await startMqttServer();
    const watcher = await connectMqtt(mqttUrl, v5);
    const got = collect(watcher);
    await watcher.subscribeAsync("wills/#");
    const raw = await RawMqtt.connect(mqttPort, 5);
    await raw.handshake({ clientId: "leaver", will: { topic: "wills/leaver", payload: Buffer.from("bye"), qos: 0, retain: false, properties: {} } });
    raw.sendPacket({ type: PacketType.DISCONNECT, reasonCode: ReasonCode.DisconnectWithWill, properties: {} });
    expect((await got.wait(1))[0]!.payload).toBe("bye");
  });

  test("a session with a session expiry interval is kept that long, then ended", async () => {
    const { mqttPort } = await startMqttServer();
    const first = await RawMqtt.connect(mqttPort, 5);
    await first.handshake({ clientId: "expiring", cleanStart: true, properties: { sessionExpiryInterval: 1 } });
    first.sendPacket({ type: PacketType.SUBSCRIBE, packetId: 1, properties: {}, subscriptions: [{ filter: "exp/t", qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 }] });
    await first.next(PacketType.SUBACK);
    first.sendPacket({ type: PacketType.DISCONNECT, reasonCode: 0, properties: {} });
    await first.waitClosed();
    // While the session lives its subscription takes messages; once it expired, PUBACK says no one matched (0x10).
    const pub = await RawMqtt.connect(mqttPort, 5);
    await pub.handshake({ clientId: "expiry-probe" });
    let id = 1;
    const probe = async () => {
      pub.sendPacket({ type: PacketType.PUBLISH, dup: false, qos: 1, retain: false, topic: "exp/t", packetId: id++, properties: {}, payload: Buffer.from("?") });
      return ((await pub.next(PacketType.PUBACK)) as { reasonCode: number }).reasonCode;
    };
    expect(await probe()).toBe(ReasonCode.Success);
    await waitFor(async () => (await probe()) === ReasonCode.NoMatchingSubscribers, 10_000, "the session to expire", 100);
    const later = await RawMqtt.connect(mqttPort, 5);
    expect(await later.handshake({ clientId: "expiring", cleanStart: false })).toMatchObject({ sessionPresent: false });
  });

  // Found by the fuzzer (test/fuzz gen-mqtt.ts): a timer longer than 2^31-1 ms fires at once.
  test("a session expiry longer than a timer can wait (over 24.8 days) keeps the session", async () => {
    const { mqttPort, server } = await startMqttServer();
    const first = await RawMqtt.connect(mqttPort, 5);
    await first.handshake({ clientId: "long-expiry", cleanStart: true, properties: { sessionExpiryInterval: 0xfffffffe } });
    first.sendPacket({ type: PacketType.DISCONNECT, reasonCode: 0, properties: {} });
    await first.waitClosed();
    // A round trip through the server after the disconnect: a timer firing at once would have run by now.
    const other = await RawMqtt.connect(mqttPort, 5);
    await other.handshake({ clientId: "long-expiry-probe" });
    other.sendPacket({ type: PacketType.PINGREQ });
    await other.next(PacketType.PINGRESP);
    const again = await RawMqtt.connect(mqttPort, 5);
    expect(await again.handshake({ clientId: "long-expiry", cleanStart: false, properties: { sessionExpiryInterval: 0xfffffffe } })).toMatchObject({ sessionPresent: true });
    expect(server.log()).not.toMatch(/TimeoutOverflowWarning/);
  });

  test("a message larger than the client's maximum packet size is not sent to it [MQTT-3.1.2-25]", async () => {
    const { mqttPort, mqttUrl } = await startMqttServer();
    const raw = await RawMqtt.connect(mqttPort, 5);
    await raw.handshake({ clientId: "tiny", properties: { maximumPacketSize: 64 } });
    raw.sendPacket({ type: PacketType.SUBSCRIBE, packetId: 1, properties: {}, subscriptions: [{ filter: "size/#", qos: 0, noLocal: false, retainAsPublished: false, retainHandling: 0 }] });
    await raw.next(PacketType.SUBACK);
    const pub = await connectMqtt(mqttUrl, v5);
    await pub.publishAsync("size/big", "x".repeat(200));
    await pub.publishAsync("size/small", "ok");
    const m = (await raw.next(PacketType.PUBLISH)) as PublishPacket;
    expect(m.topic).toBe("size/small"); // the big one, published first, never came
  });

  test("message expiry: an expired message is not delivered to a returning session nor as a retained message", async () => {
    const { mqttPort, mqttUrl } = await startMqttServer();
    const first = await RawMqtt.connect(mqttPort, 5);
    await first.handshake({ clientId: "expiry-sub", cleanStart: true, properties: { sessionExpiryInterval: 60 } });
    first.sendPacket({ type: PacketType.SUBSCRIBE, packetId: 1, properties: {}, subscriptions: [{ filter: "ex/q", qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 }] });
    await first.next(PacketType.SUBACK);
    first.sendPacket({ type: PacketType.DISCONNECT, reasonCode: 0, properties: {} });
    await first.waitClosed();
    const pub = await connectMqtt(mqttUrl, v5);
    await pub.publishAsync("ex/q", "short", { qos: 1, properties: { messageExpiryInterval: 1 } });
    await pub.publishAsync("ex/q", "long", { qos: 1, properties: { messageExpiryInterval: 3600 } });
    await pub.publishAsync("ex/r/short", "gone", { qos: 1, retain: true, properties: { messageExpiryInterval: 1 } });
    await pub.publishAsync("ex/r/long", "kept", { qos: 1, retain: true, properties: { messageExpiryInterval: 3600 } });
    // Expiry is about time passing: let the short interval run out.
    const publishedAt = Date.now();
    await waitFor(() => Date.now() - publishedAt > 1200, 5000, "the short expiry to pass");
    const back = await RawMqtt.connect(mqttPort, 5);
    expect(await back.handshake({ clientId: "expiry-sub", cleanStart: false, properties: { sessionExpiryInterval: 60 } })).toMatchObject({ sessionPresent: true });
    const m = (await back.next(PacketType.PUBLISH)) as PublishPacket;
    expect(m.payload.toString()).toBe("long"); // "short", queued first, expired
    expect(m.properties.messageExpiryInterval).toBeGreaterThan(3590);
    expect(m.properties.messageExpiryInterval).toBeLessThanOrEqual(3600);
    const sub = await connectMqtt(mqttUrl, v5);
    const got = collect(sub);
    await sub.subscribeAsync("ex/r/+");
    const retained = await got.wait(1);
    expect(retained.map((r) => r.payload)).toEqual(["kept"]);
  });

  test("a server shutting down tells MQTT 5 clients with DISCONNECT 0x8B", async () => {
    const { server, mqttPort } = await startMqttServer();
    const raw = await RawMqtt.connect(mqttPort, 5);
    await raw.handshake({ clientId: "shutdown" });
    await server.stop();
    const disconnect = await raw.next(PacketType.DISCONNECT);
    expect(disconnect).toMatchObject({ reasonCode: ReasonCode.ServerShuttingDown });
  });

  test("enhanced authentication is refused with CONNACK 0x8C", async () => {
    const { mqttPort } = await startMqttServer();
    const raw = await RawMqtt.connect(mqttPort, 5);
    const ack = await raw.handshake({ properties: { authenticationMethod: "SCRAM-SHA-1" } });
    expect(ack).toMatchObject({ reasonCode: ReasonCode.BadAuthenticationMethod });
    await raw.waitClosed();
  });
});
