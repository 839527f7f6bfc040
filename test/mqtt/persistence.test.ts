// Retained messages, kept sessions and their QoS 1 messages live in the stream layer: they survive a
// restart and kill -9, as acknowledged stream messages do.
import { describe, expect, test } from "vitest";
import { PacketType, ReasonCode, type ConnackPacket, type PublishPacket } from "../../src/mqtt/packets.ts";
import { serverKind, type RunningServer } from "../harness/server.ts";
import { connectV2 } from "../harness/clients.ts";
import { collect, connectMqtt, startMqttServer } from "./helpers.ts";
import { RawMqtt } from "./raw-mqtt.ts";

describe("retained messages", () => {
  test("a new subscriber gets the retained message with RETAIN set; an empty retained payload removes it", async () => {
    const { mqttUrl } = await startMqttServer();
    const pub = await connectMqtt(mqttUrl, { clientId: "r-pub" });
    await pub.publishAsync("status/boiler", "on", { qos: 1, retain: true });
    await pub.publishAsync("status/pump", "off", { qos: 1, retain: true });
    const sub = await connectMqtt(mqttUrl, { clientId: "r-sub" });
    const got = collect(sub);
    await sub.subscribeAsync("status/+", { qos: 1 });
    const messages = await got.wait(2);
    expect(messages.map((m) => [m.topic, m.payload, m.packet.retain]).sort()).toEqual([["status/boiler", "on", true], ["status/pump", "off", true]]);
    await pub.publishAsync("status/pump", "", { qos: 1, retain: true });
    const late = await connectMqtt(mqttUrl, { clientId: "r-late" });
    const lateGot = collect(late);
    await late.subscribeAsync("status/#", { qos: 1 });
    const lateMessages = await lateGot.wait(1);
    expect(lateMessages.map((m) => m.topic)).toEqual(["status/boiler"]);
  });

  test("retained messages survive kill -9", async () => {
    const { server, mqttUrl } = await startMqttServer();
    const pub = await connectMqtt(mqttUrl, { clientId: "k-pub" });
    await pub.publishAsync("config/site", "cold-1", { qos: 1, retain: true }); // PUBACK: stored
    await pub.endAsync(true);
    await server.kill9();
    await server.restart();
    const sub = await connectMqtt(mqttUrl, { clientId: "k-sub" });
    const got = collect(sub);
    await sub.subscribeAsync("config/#", { qos: 1 });
    const [m] = await got.wait(1, 10_000);
    expect([m!.topic, m!.payload, m!.packet.retain]).toEqual(["config/site", "cold-1", true]);
  });
});

describe("kept sessions", () => {
  test("a session (clean session = false) and a QoS 1 message published while its client was away survive kill -9", async () => {
    const { server, mqttPort, mqttUrl } = await startMqttServer();
    const first = await RawMqtt.connect(mqttPort);
    await first.handshake({ clientId: "durable", cleanStart: false });
    first.sendPacket({ type: PacketType.SUBSCRIBE, packetId: 1, properties: {}, subscriptions: [{ filter: "orders/#", qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 }] });
    await first.next(PacketType.SUBACK);
    first.send([0xe0, 0x00]);
    await first.waitClosed();
    const pub = await connectMqtt(mqttUrl, { clientId: "durable-pub" });
    await pub.publishAsync("orders/1", "first order", { qos: 1 }); // PUBACK after the kept session's copy is stored
    await pub.endAsync(true);
    await server.kill9();
    await server.restart();
    const again = await RawMqtt.connect(mqttPort);
    const ack = (await again.handshake({ clientId: "durable", cleanStart: false })) as ConnackPacket;
    expect(ack.sessionPresent).toBe(true);
    const message = (await again.next(PacketType.PUBLISH, 10_000)) as PublishPacket;
    expect([message.topic, message.payload.toString(), message.qos]).toEqual(["orders/1", "first order", 1]);
    again.sendPacket({ type: PacketType.PUBACK, packetId: message.packetId, reasonCode: 0, properties: {} });
    // The subscription came back too: a new message reaches the restored session.
    const pub2 = await connectMqtt(mqttUrl, { clientId: "durable-pub2" });
    await pub2.publishAsync("orders/2", "second order", { qos: 1 });
    const next = (await again.next(PacketType.PUBLISH)) as PublishPacket;
    expect(next.payload.toString()).toBe("second order");
  });

  // natter resends at once on reconnect ([MQTT-4.4.0-1]); nats-server 2.9.10 only after ack_wait, hence its 1 s here.
  test("an acknowledged message is not delivered again after a restart; a session ended by clean session is gone", async () => {
    const { server, mqttPort, mqttUrl } = await startMqttServer({ mqttConfig: '  ack_wait: "1s"' });
    const first = await RawMqtt.connect(mqttPort);
    await first.handshake({ clientId: "acker", cleanStart: false });
    first.sendPacket({ type: PacketType.SUBSCRIBE, packetId: 1, properties: {}, subscriptions: [{ filter: "acks", qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 }] });
    await first.next(PacketType.SUBACK);
    const pub = await connectMqtt(mqttUrl, { clientId: "acker-pub" });
    await pub.publishAsync("acks", "one", { qos: 1 });
    const m = (await first.next(PacketType.PUBLISH)) as PublishPacket;
    first.sendPacket({ type: PacketType.PUBACK, packetId: m.packetId, reasonCode: 0, properties: {} });
    // A round trip after the PUBACK: the server has handled it before this answer.
    first.sendPacket({ type: PacketType.PINGREQ });
    await first.next(PacketType.PINGRESP);
    await pub.publishAsync("acks", "two", { qos: 1 });
    await first.next(PacketType.PUBLISH); // "two" stays unacknowledged
    await server.restart(); // a graceful stop (SIGTERM) and start
    const again = await RawMqtt.connect(mqttPort);
    expect(((await again.handshake({ clientId: "acker", cleanStart: false })) as ConnackPacket).sessionPresent).toBe(true);
    const redelivered = (await again.next(PacketType.PUBLISH, 10_000)) as PublishPacket;
    expect(redelivered.payload.toString()).toBe("two");
    again.send([0xe0, 0x00]);
    await again.waitClosed();
    const clean = await RawMqtt.connect(mqttPort);
    await clean.handshake({ clientId: "acker", cleanStart: true });
    clean.send([0xe0, 0x00]);
    await clean.waitClosed();
    await server.restart(); // a graceful stop (SIGTERM) and start
    const last = await RawMqtt.connect(mqttPort);
    expect(((await last.handshake({ clientId: "acker", cleanStart: false })) as ConnackPacket).sessionPresent).toBe(false);
  });
});

// natter's own answer (nats-server 2.9.10 has no MQTT 5, and the harness's store dir flag is natter's).
describe.skipIf(serverKind === "nats-server")("a write the stream layer refuses", () => {
  // A 4 KiB file store limit (the store dir is the harness's temp dir, -sd): the MQTT streams are
  // created, a large QoS 1 copy for a kept session is not.
  const limited = { jetstream: true, config: "jetstream { max_file_store: 4KB }\n" } as const;

  test("3.1.1: no PUBACK for a QoS 1 message that could not be stored; the publisher is closed", async () => {
    const { mqttPort } = await startMqttServer(limited);
    const keeper = await RawMqtt.connect(mqttPort);
    await keeper.handshake({ clientId: "full-keeper", cleanStart: false });
    keeper.sendPacket({ type: PacketType.SUBSCRIBE, packetId: 1, properties: {}, subscriptions: [{ filter: "big", qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 }] });
    await keeper.next(PacketType.SUBACK);
    keeper.send([0xe0, 0x00]);
    await keeper.waitClosed();
    const pub = await RawMqtt.connect(mqttPort);
    await pub.handshake({ clientId: "full-pub" });
    pub.sendPacket({ type: PacketType.PUBLISH, dup: false, qos: 1, retain: false, topic: "big", packetId: 7, properties: {}, payload: Buffer.alloc(16 * 1024, 0x61) });
    await pub.waitClosed(10_000);
    expect(pub.packets.filter((p) => p.type === PacketType.PUBACK)).toEqual([]);
  });

  test("MQTT 5: the PUBACK says 0x97 (quota exceeded)", async () => {
    const { mqttPort } = await startMqttServer(limited);
    const keeper = await RawMqtt.connect(mqttPort, 5);
    await keeper.handshake({ clientId: "full-keeper5", properties: { sessionExpiryInterval: 600 } });
    keeper.sendPacket({ type: PacketType.SUBSCRIBE, packetId: 1, properties: {}, subscriptions: [{ filter: "big5", qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 }] });
    await keeper.next(PacketType.SUBACK);
    keeper.sendPacket({ type: PacketType.DISCONNECT, reasonCode: 0, properties: {} });
    await keeper.waitClosed();
    const pub = await RawMqtt.connect(mqttPort, 5);
    await pub.handshake({ clientId: "full-pub5" });
    pub.sendPacket({ type: PacketType.PUBLISH, dup: false, qos: 1, retain: false, topic: "big5", packetId: 8, properties: {}, payload: Buffer.alloc(16 * 1024, 0x61) });
    expect(await pub.next(PacketType.PUBACK, 10_000)).toMatchObject({ packetId: 8, reasonCode: ReasonCode.QuotaExceeded });
  });
});

/** The kept session record of `clientId` in $MQTT_sess, read as any JetStream client would (null: none). */
async function sessionRecord(server: RunningServer, clientId: string): Promise<Record<string, unknown> | null> {
  const nc = await connectV2(server);
  try {
    for (let seq = 1; ; ) {
      const reply = JSON.parse(new TextDecoder().decode((await nc.request("$JS.API.STREAM.MSG.GET.$MQTT_sess", JSON.stringify({ seq, next_by_subj: "$MQTT.sess.>" }), { timeout: 5000 })).data)) as { message?: { seq: number; data: string } };
      if (reply.message === undefined) return null;
      const record = JSON.parse(Buffer.from(reply.message.data, "base64").toString("utf8")) as Record<string, unknown>;
      if (record.clientId === clientId) return record;
      seq = reply.message.seq + 1;
    }
  } finally {
    await nc.close();
  }
}

async function waitForRecord(server: RunningServer, clientId: string, ready: (r: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const record = await sessionRecord(server, clientId);
    if (record !== null && ready(record)) return record;
    if (Date.now() > deadline) throw new Error(`session record of ${clientId}: ${JSON.stringify(record)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

// MQTT 5 (will delay, session expiry): natter's.
describe.skipIf(serverKind === "nats-server")("wills and session expiry across kill -9", () => {
  test("a will waiting for its will delay survives kill -9 and is published when the delay ends", async () => {
    const { server, mqttPort } = await startMqttServer();
    // The will's reader: a kept session, so the will (QoS 1) waits for it whenever it is published.
    const reader = await RawMqtt.connect(mqttPort, 5);
    await reader.handshake({ clientId: "will-reader", cleanStart: false, properties: { sessionExpiryInterval: 600 } });
    reader.sendPacket({ type: PacketType.SUBSCRIBE, packetId: 1, properties: {}, subscriptions: [{ filter: "wills/#", qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 }] });
    await reader.next(PacketType.SUBACK);
    reader.sendPacket({ type: PacketType.DISCONNECT, reasonCode: 0, properties: {} });
    await reader.waitClosed();
    const device = await RawMqtt.connect(mqttPort, 5);
    await device.handshake({
      clientId: "will-device", cleanStart: true, properties: { sessionExpiryInterval: 600 },
      will: { topic: "wills/device", payload: Buffer.from("gone"), qos: 1, retain: false, properties: { willDelayInterval: 3 } },
    });
    device.close(); // no DISCONNECT: the will is due 3 s from now
    const record = await waitForRecord(server, "will-device", (r) => r.will !== undefined);
    const due = (record.will as { at: number }).at;
    await server.kill9();
    await server.restart();
    const back = await RawMqtt.connect(mqttPort, 5);
    expect(await back.handshake({ clientId: "will-reader", cleanStart: false, properties: { sessionExpiryInterval: 600 } })).toMatchObject({ sessionPresent: true });
    const will = (await back.next(PacketType.PUBLISH, 15_000)) as PublishPacket;
    expect([will.topic, will.payload.toString()]).toEqual(["wills/device", "gone"]);
    expect(Date.now()).toBeGreaterThanOrEqual(due - 50); // not before its delay (the clock of this machine: same as the server's)
    // Published once: the record no longer holds it.
    await waitForRecord(server, "will-device", (r) => r.will === undefined);
  });

  test("a kept session's expiry counts from its client's disconnect across kill -9, not from the restart", async () => {
    const { server, mqttPort } = await startMqttServer();
    const client = await RawMqtt.connect(mqttPort, 5);
    await client.handshake({ clientId: "expiring", cleanStart: false, properties: { sessionExpiryInterval: 4 } });
    client.sendPacket({ type: PacketType.DISCONNECT, reasonCode: 0, properties: {} });
    await client.waitClosed();
    const record = await waitForRecord(server, "expiring", (r) => typeof r.disconnectedAt === "number");
    const disconnectedAt = record.disconnectedAt as number;
    await server.kill9();
    await server.restart();
    // Past its expiry counted from the disconnect (whatever the restart took): the session is gone.
    while (Date.now() < disconnectedAt + 4500) await new Promise((r) => setTimeout(r, 50));
    const again = await RawMqtt.connect(mqttPort, 5);
    expect(await again.handshake({ clientId: "expiring", cleanStart: false, properties: { sessionExpiryInterval: 4 } })).toMatchObject({ sessionPresent: false });
  });
});
