// Protocol rules where the spec leaves no choice, with raw packets, against natter (or nats-server with
// NATTER_TEST_SERVER=nats-server) and against Mosquitto 2.0 when it is installed: a disagreement shows
// who deviates.
import { beforeAll, describe, expect, test } from "vitest";
import { serverKind } from "../harness/server.ts";
import { MQTT_5, PacketType, ReasonCode, type ConnackPacket, type DisconnectPacket, type PublishPacket, type SubackPacket } from "../../src/mqtt/packets.ts";
import { startMqttServer } from "./helpers.ts";
import { connectPacket, mosquittoInstalled, RawMqtt, startMosquitto } from "./raw-mqtt.ts";

if (!mosquittoInstalled) console.warn("mosquitto is not installed (apt-get install mosquitto): protocol tests run against the server under test only");

const targets = [serverKind, ...(mosquittoInstalled ? ["mosquitto"] : [])] as const;

describe.each(targets)("%s", (target) => {
  let port = 0;
  const isNatsServer = target === "nats-server";
  beforeAll(async () => {
    port = target === "mosquitto" ? (await startMosquitto()).port : (await startMqttServer()).mqttPort;
  });

  test("a first packet other than CONNECT closes the connection without an answer [MQTT-3.1.0-1]", async () => {
    const raw = await RawMqtt.connect(port);
    raw.send([0xc0, 0x00]); // PINGREQ
    await raw.waitClosed();
    expect(raw.packets).toEqual([]);
  });

  test("a second CONNECT closes the connection [MQTT-3.1.0-2]", async () => {
    const raw = await RawMqtt.connect(port);
    expect(((await raw.handshake({ clientId: `second-${target}` })) as ConnackPacket).reasonCode).toBe(0);
    raw.sendPacket(connectPacket(4));
    await raw.waitClosed();
  });

  test("an unsupported protocol level gets CONNACK 0x01 and is closed [MQTT-3.1.2-2]", async () => {
    const raw = await RawMqtt.connect(port);
    raw.sendPacket(connectPacket(4, { protocolLevel: 6 }));
    const ack = (await raw.next(PacketType.CONNACK)) as ConnackPacket;
    expect(ack.reasonCode).toBe(1);
    await raw.waitClosed();
  });

  test("3.1.1: an empty client id without clean session gets CONNACK 0x02 [MQTT-3.1.3-8]", async () => {
    const raw = await RawMqtt.connect(port);
    const ack = (await raw.handshake({ clientId: "", cleanStart: false })) as ConnackPacket;
    expect(ack.reasonCode).toBe(2);
    await raw.waitClosed();
  });

  test("3.1.1: a malformed packet closes the connection", async () => {
    const raw = await RawMqtt.connect(port);
    await raw.handshake({ clientId: `malformed-${target}` });
    raw.send([0x36, 0x05, 0, 1, 0x61, 0, 1]); // PUBLISH with QoS 3
    await raw.waitClosed();
  });

  // nats-server 2.9.10 closes after 1× the keep alive (measured ~1.0 s for 1 s): it deviates; natter and Mosquitto follow the spec.
  test.skipIf(isNatsServer)("the keep alive is enforced at 1.5 times its value [MQTT-3.1.2-24]", async () => {
    const raw = await RawMqtt.connect(port);
    await raw.handshake({ clientId: `keepalive-${target}`, keepAlive: 1 });
    const start = Date.now();
    await raw.waitClosed(10_000);
    const elapsed = Date.now() - start;
    expect(elapsed).toBeGreaterThanOrEqual(1400);
    expect(elapsed).toBeLessThan(6000);
  });

  test("a subscription's packet id comes back in SUBACK with the granted QoS [MQTT-3.8.4-2]", async () => {
    const raw = await RawMqtt.connect(port);
    await raw.handshake({ clientId: `suback-${target}` });
    raw.sendPacket({ type: PacketType.SUBSCRIBE, packetId: 42, properties: {}, subscriptions: [{ filter: "x/+", qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 }] });
    const ack = (await raw.next(PacketType.SUBACK)) as SubackPacket;
    expect(ack.packetId).toBe(42);
    expect(ack.reasonCodes).toEqual([1]);
  });

  test("a wildcard in a PUBLISH topic closes the connection (3.1.1) [MQTT-3.3.2-2]", async () => {
    const raw = await RawMqtt.connect(port);
    await raw.handshake({ clientId: `wild-${target}` });
    raw.sendPacket({ type: PacketType.PUBLISH, dup: false, qos: 0, retain: false, topic: "a/+/c", packetId: 0, properties: {}, payload: Buffer.from("x") });
    await raw.waitClosed();
  });

  test("an invalid topic filter (`a/#/b`) is not subscribed (3.1.1: SUBACK 0x80 or a close)", async () => {
    const raw = await RawMqtt.connect(port);
    await raw.handshake({ clientId: `badfilter-${target}` });
    raw.sendPacket({ type: PacketType.SUBSCRIBE, packetId: 3, properties: {}, subscriptions: [{ filter: "a/#/b", qos: 0, noLocal: false, retainAsPublished: false, retainHandling: 0 }] });
    const outcome = await Promise.race([
      raw.next(PacketType.SUBACK).then((p) => `suback ${(p as SubackPacket).reasonCodes.join(",")}`),
      raw.waitClosed().then(() => "closed"),
    ]);
    // The spec lets the server choose; natter answers 0x80 as nats-server does, Mosquitto closes.
    expect(["suback 128", "closed"]).toContain(outcome);
    if (target !== "mosquitto") expect(outcome).toBe("suback 128");
  });

  // nats-server 2.9.10 deviates: its `#` also delivers `$…` topics (and its own $MQTT/sess records).
  test.skipIf(isNatsServer)("`#` does not match a topic starting with `$`; `$x/#` does [MQTT-4.7.2-1]", async () => {
    const sub = await RawMqtt.connect(port);
    await sub.handshake({ clientId: `dollar-sub-${target}` });
    sub.sendPacket({ type: PacketType.SUBSCRIBE, packetId: 1, properties: {}, subscriptions: ["#", "$x/#"].map((filter) => ({ filter, qos: 0 as const, noLocal: false, retainAsPublished: false, retainHandling: 0 as const })) });
    await sub.next(PacketType.SUBACK);
    const pub = await RawMqtt.connect(port);
    await pub.handshake({ clientId: `dollar-pub-${target}` });
    pub.sendPacket({ type: PacketType.PUBLISH, dup: false, qos: 0, retain: false, topic: "$x/y", packetId: 0, properties: {}, payload: Buffer.from("1") });
    pub.sendPacket({ type: PacketType.PUBLISH, dup: false, qos: 0, retain: false, topic: "x/y", packetId: 0, properties: {}, payload: Buffer.from("2") });
    const first = (await sub.next(PacketType.PUBLISH)) as PublishPacket;
    const second = (await sub.next(PacketType.PUBLISH)) as PublishPacket;
    // `$x/y` once (through `$x/#` only), then `x/y` (through `#`).
    expect([first.topic, second.topic]).toEqual(["$x/y", "x/y"]);
  });

  test("a retained message reaches a later subscriber with RETAIN set; an empty one clears it [MQTT-3.3.1-6, -10]", async () => {
    const pub = await RawMqtt.connect(port);
    await pub.handshake({ clientId: `ret-pub-${target}` });
    const topic = `ret/${target}`;
    pub.sendPacket({ type: PacketType.PUBLISH, dup: false, qos: 1, retain: true, topic, packetId: 1, properties: {}, payload: Buffer.from("v1") });
    await pub.next(PacketType.PUBACK);
    const sub = await RawMqtt.connect(port);
    await sub.handshake({ clientId: `ret-sub-${target}` });
    sub.sendPacket({ type: PacketType.SUBSCRIBE, packetId: 1, properties: {}, subscriptions: [{ filter: topic, qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 }] });
    const m = (await sub.next(PacketType.PUBLISH)) as PublishPacket;
    expect([m.retain, m.payload.toString()]).toEqual([true, "v1"]);
    pub.sendPacket({ type: PacketType.PUBLISH, dup: false, qos: 1, retain: true, topic, packetId: 2, properties: {}, payload: Buffer.alloc(0) });
    await pub.next(PacketType.PUBACK);
    const late = await RawMqtt.connect(port);
    await late.handshake({ clientId: `ret-late-${target}` });
    late.sendPacket({ type: PacketType.SUBSCRIBE, packetId: 1, properties: {}, subscriptions: [{ filter: `ret/#`, qos: 0, noLocal: false, retainAsPublished: false, retainHandling: 0 }] });
    await late.next(PacketType.SUBACK);
    // A marker after the SUBACK: had the cleared message been sent, it would come before it.
    pub.sendPacket({ type: PacketType.PUBLISH, dup: false, qos: 0, retain: false, topic: `ret/marker-${target}`, packetId: 0, properties: {}, payload: Buffer.from("m") });
    const next = (await late.next(PacketType.PUBLISH)) as PublishPacket;
    expect(next.topic).toBe(`ret/marker-${target}`);
  });

  describe.skipIf(isNatsServer)("MQTT 5", () => {
    test("a malformed packet gets DISCONNECT 0x81 before the close [MQTT-4.13.1-1]", async () => {
      const raw = await RawMqtt.connect(port, MQTT_5);
      await raw.handshake({ clientId: `malformed5-${target}` });
      raw.send([0x36, 0x06, 0, 1, 0x61, 0, 1, 0]); // PUBLISH with QoS 3
      const disconnect = (await raw.next(PacketType.DISCONNECT)) as DisconnectPacket;
      expect(disconnect.reasonCode).toBe(ReasonCode.MalformedPacket);
      await raw.waitClosed();
    });

    test("an unknown topic alias is a protocol error (DISCONNECT 0x82)", async () => {
      const raw = await RawMqtt.connect(port, MQTT_5);
      await raw.handshake({ clientId: `alias-${target}` });
      raw.sendPacket({ type: PacketType.PUBLISH, dup: false, qos: 0, retain: false, topic: "", packetId: 0, properties: { topicAlias: 1 }, payload: Buffer.from("x") });
      const disconnect = (await raw.next(PacketType.DISCONNECT)) as DisconnectPacket;
      expect(disconnect.reasonCode).toBe(ReasonCode.ProtocolError);
      await raw.waitClosed();
    });

    // Mosquitto 2.0's max_keepalive and natter's max_keep_alive both default to 65535.
    test("a keep alive of 0 is answered with the server keep alive 65535; a shorter one is kept [MQTT-3.2.2-21]", async () => {
      const none = await RawMqtt.connect(port, MQTT_5);
      expect(await none.handshake({ clientId: `ka0-${target}`, keepAlive: 0 })).toMatchObject({ reasonCode: 0, properties: { serverKeepAlive: 65535 } });
      const some = await RawMqtt.connect(port, MQTT_5);
      const ack = (await some.handshake({ clientId: `ka60-${target}`, keepAlive: 60 })) as ConnackPacket;
      expect(ack.properties.serverKeepAlive).toBeUndefined();
    });

    test("an empty client id is assigned one in CONNACK [MQTT-3.2.2-16]", async () => {
      const raw = await RawMqtt.connect(port, MQTT_5);
      const ack = (await raw.handshake({ clientId: "" })) as ConnackPacket;
      expect(ack.reasonCode).toBe(0);
      expect(ack.properties.assignedClientIdentifier).toMatch(/.+/);
    });

    test("UNSUBSCRIBE of a filter never subscribed answers 0x11", async () => {
      const raw = await RawMqtt.connect(port, MQTT_5);
      await raw.handshake({ clientId: `unsub-${target}` });
      raw.sendPacket({ type: PacketType.UNSUBSCRIBE, packetId: 5, properties: {}, filters: ["never/subscribed"] });
      const ack = await raw.next(PacketType.UNSUBACK);
      expect(ack).toMatchObject({ packetId: 5, reasonCodes: [ReasonCode.NoSubscriptionExisted] });
    });

    // The spec's MUST is the close; natter also sends DISCONNECT 0x8E first (section 4.13), Mosquitto 2.0 does not.
    test("a session taken over by the same client id is closed [MQTT-3.1.4-3]", async () => {
      const first = await RawMqtt.connect(port, MQTT_5);
      await first.handshake({ clientId: `takeover-${target}` });
      const second = await RawMqtt.connect(port, MQTT_5);
      await second.handshake({ clientId: `takeover-${target}` });
      await first.waitClosed();
      if (target !== "mosquitto") expect(first.packets).toMatchObject([{ type: PacketType.DISCONNECT, reasonCode: ReasonCode.SessionTakenOver }]);
    });
  });
});
