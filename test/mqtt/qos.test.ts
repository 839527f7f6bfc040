// QoS 1 and 2 between MQTT clients, with raw packets on the subscriber side: redelivery with DUP after
// ack_wait, max_ack_pending, the QoS 2 handshake both ways, packet identifiers, and sessions kept for a
// client that left (clean session = false).
import { describe, expect, test } from "vitest";
import { serverKind } from "../harness/server.ts";
import { PacketType, type ConnackPacket, type PublishPacket } from "../../src/mqtt/packets.ts";
import { connectMqtt, startMqttServer } from "./helpers.ts";
import { RawMqtt } from "./raw-mqtt.ts";

const natsServer = serverKind === "nats-server";

function subscribe(raw: RawMqtt, filter: string, qos: 0 | 1 | 2, packetId = 1): void {
  raw.sendPacket({ type: PacketType.SUBSCRIBE, packetId, properties: {}, subscriptions: [{ filter, qos, noLocal: false, retainAsPublished: false, retainHandling: 0 }] });
}

describe("QoS 1", () => {
  test("an unacknowledged message is sent again with DUP after ack_wait, same packet id, until PUBACK", async () => {
    const { mqttPort, mqttUrl } = await startMqttServer({ mqttConfig: '  ack_wait: "1s"' });
    const raw = await RawMqtt.connect(mqttPort);
    await raw.handshake({ clientId: "redeliver-sub" });
    subscribe(raw, "r/t", 1);
    await raw.next(PacketType.SUBACK);
    const pub = await connectMqtt(mqttUrl, { clientId: "redeliver-pub" });
    await pub.publishAsync("r/t", "once", { qos: 1 });
    const first = (await raw.next(PacketType.PUBLISH)) as PublishPacket;
    expect(first).toMatchObject({ qos: 1, dup: false, topic: "r/t" });
    const again = (await raw.next(PacketType.PUBLISH, 10_000)) as PublishPacket;
    expect(again).toMatchObject({ qos: 1, dup: true, topic: "r/t", packetId: first.packetId });
    expect(again.payload.toString()).toBe("once");
    raw.sendPacket({ type: PacketType.PUBACK, packetId: first.packetId, reasonCode: 0, properties: {} });
    // Acknowledged: it is not sent again. A second message left unacknowledged is, and by the time its
    // DUP copy arrives the first one's redelivery time has long passed.
    await pub.publishAsync("r/t", "second", { qos: 1 });
    const second = (await raw.next(PacketType.PUBLISH)) as PublishPacket;
    const seen = (await raw.until((p) => p.type === PacketType.PUBLISH && p.packetId === second.packetId, 10_000)) as PublishPacket[];
    expect(seen.map((p) => [p.type, p.payload.toString(), p.dup])).toEqual([[PacketType.PUBLISH, "second", true]]);
  });

  test("max_ack_pending bounds the messages in flight to a subscriber", async () => {
    const { mqttPort, mqttUrl } = await startMqttServer({ mqttConfig: "  max_ack_pending: 2" });
    const raw = await RawMqtt.connect(mqttPort);
    await raw.handshake({ clientId: "pending-sub" });
    subscribe(raw, "p/#", 1);
    await raw.next(PacketType.SUBACK);
    const pub = await connectMqtt(mqttUrl, { clientId: "pending-pub" });
    for (let i = 0; i < 5; i++) await pub.publishAsync("p/m", `m${i}`, { qos: 1 });
    const a = (await raw.next(PacketType.PUBLISH)) as PublishPacket;
    const b = (await raw.next(PacketType.PUBLISH)) as PublishPacket;
    expect([a.payload.toString(), b.payload.toString()]).toEqual(["m0", "m1"]);
    expect(a.packetId).not.toBe(b.packetId);
    // Three were published and acknowledged to the publisher before this point; none of them came yet.
    expect(raw.packets.filter((p) => p.type === PacketType.PUBLISH)).toEqual([]);
    raw.sendPacket({ type: PacketType.PUBACK, packetId: a.packetId, reasonCode: 0, properties: {} });
    const c = (await raw.next(PacketType.PUBLISH)) as PublishPacket;
    expect(c.payload.toString()).toBe("m2");
  });

  test("a session kept by clean session = false collects QoS 1 messages while its client is away", async () => {
    const { mqttPort, mqttUrl } = await startMqttServer();
    const first = await RawMqtt.connect(mqttPort);
    expect(((await first.handshake({ clientId: "kept", cleanStart: false })) as ConnackPacket).sessionPresent).toBe(false);
    subscribe(first, "kept/#", 1);
    await first.next(PacketType.SUBACK);
    first.send([0xe0, 0x00]); // DISCONNECT
    await first.waitClosed();
    const pub = await connectMqtt(mqttUrl, { clientId: "kept-pub" });
    await pub.publishAsync("kept/a", "while away", { qos: 1 });
    const second = await RawMqtt.connect(mqttPort);
    expect(((await second.handshake({ clientId: "kept", cleanStart: false })) as ConnackPacket).sessionPresent).toBe(true);
    const message = (await second.next(PacketType.PUBLISH)) as PublishPacket;
    expect(message).toMatchObject({ topic: "kept/a", qos: 1 });
    expect(message.payload.toString()).toBe("while away");
    second.sendPacket({ type: PacketType.PUBACK, packetId: message.packetId, reasonCode: 0, properties: {} });
    // clean session = true ends it.
    second.send([0xe0, 0x00]);
    await second.waitClosed();
    const third = await RawMqtt.connect(mqttPort);
    expect(((await third.handshake({ clientId: "kept", cleanStart: true })) as ConnackPacket).sessionPresent).toBe(false);
  });
});

// nats-server 2.9.10 has no QoS 2.
describe.skipIf(natsServer)("QoS 2", () => {
  test("to a subscriber: PUBLISH, PUBREC → PUBREL (resent after ack_wait), PUBCOMP", async () => {
    const { mqttPort, mqttUrl } = await startMqttServer({ mqttConfig: '  ack_wait: "1s"' });
    const raw = await RawMqtt.connect(mqttPort);
    await raw.handshake({ clientId: "q2-sub" });
    subscribe(raw, "q2", 2);
    await raw.next(PacketType.SUBACK);
    const pub = await connectMqtt(mqttUrl, { clientId: "q2-pub" });
    await pub.publishAsync("q2", "exactly once", { qos: 2 });
    const message = (await raw.next(PacketType.PUBLISH)) as PublishPacket;
    expect(message.qos).toBe(2);
    raw.sendPacket({ type: PacketType.PUBREC, packetId: message.packetId, reasonCode: 0, properties: {} });
    expect(await raw.next(PacketType.PUBREL)).toMatchObject({ packetId: message.packetId });
    expect(await raw.next(PacketType.PUBREL, 10_000)).toMatchObject({ packetId: message.packetId }); // no PUBCOMP yet: again
    raw.sendPacket({ type: PacketType.PUBCOMP, packetId: message.packetId, reasonCode: 0, properties: {} });
    // Completed: no more PUBREL for it. A second message's PUBLISH is redelivered; none of the first's comes between.
    await pub.publishAsync("q2", "second", { qos: 2 });
    const second = (await raw.next(PacketType.PUBLISH)) as PublishPacket;
    const seen = await raw.until((p) => p.type === PacketType.PUBLISH, 10_000);
    expect(seen).toMatchObject([{ type: PacketType.PUBLISH, packetId: second.packetId, dup: true }]);
  });

  test("from a publisher: a PUBLISH sent again before PUBREL is delivered once [MQTT-4.3.3-9]", async () => {
    const { mqttPort, mqttUrl } = await startMqttServer();
    const sub = await connectMqtt(mqttUrl, { clientId: "q2in-sub" });
    const got: string[] = [];
    sub.on("message", (_t, p) => got.push(p.toString()));
    await sub.subscribeAsync("in/q2", { qos: 2 });
    const raw = await RawMqtt.connect(mqttPort);
    await raw.handshake({ clientId: "q2in-pub" });
    const publish: PublishPacket = { type: PacketType.PUBLISH, dup: false, qos: 2, retain: false, topic: "in/q2", packetId: 5, properties: {}, payload: Buffer.from("one") };
    raw.sendPacket(publish);
    expect(await raw.next(PacketType.PUBREC)).toMatchObject({ packetId: 5 });
    raw.sendPacket({ ...publish, dup: true });
    expect(await raw.next(PacketType.PUBREC)).toMatchObject({ packetId: 5 });
    raw.sendPacket({ type: PacketType.PUBREL, packetId: 5, reasonCode: 0, properties: {} });
    expect(await raw.next(PacketType.PUBCOMP)).toMatchObject({ packetId: 5 });
    // The id is free again: the same id is a new message.
    raw.sendPacket({ ...publish, payload: Buffer.from("two") });
    expect(await raw.next(PacketType.PUBREC)).toMatchObject({ packetId: 5 });
    raw.sendPacket({ type: PacketType.PUBREL, packetId: 5, reasonCode: 0, properties: {} });
    await raw.next(PacketType.PUBCOMP);
    // Delivery keeps order: a second copy of "one" would come before "two".
    const deadline = Date.now() + 5000;
    while (got.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(got).toEqual(["one", "two"]);
  });
});
