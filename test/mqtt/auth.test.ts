// MQTT clients authenticate through the server's authorization (users, tokens, accounts, the mqtt
// block's no_auth_user) and are held to their publish/subscribe permissions on converted subjects.
import { describe, expect, test } from "vitest";
import { connectV2 } from "../harness/clients.ts";
import { serverKind } from "../harness/server.ts";
import { waitFor } from "../harness/raw.ts";
import { MQTT_5, PacketType, ReasonCode, type AckPacket, type ConnackPacket, type SubackPacket } from "../../src/mqtt/packets.ts";
import { collect, connectMqtt, startMqttServer } from "./helpers.ts";
import { RawMqtt } from "./raw-mqtt.ts";

const USERS = `
accounts {
  FACTORY {
    jetstream: enabled
    users: [
      { user: alice, password: wonder, permissions: { publish: "sensors.>", subscribe: ["cmd.>", "sensors.>"] } }
      { user: bob, password: builder }
    ]
  }
  OFFICE { jetstream: enabled, users: [ { user: carol, password: pw } ] }
}
`;

describe("MQTT authentication", () => {
  test("a wrong password is refused with CONNACK 0x05 (3.1.1, as nats-server answers)", async () => {
    const { mqttPort } = await startMqttServer({ config: USERS });
    const raw = await RawMqtt.connect(mqttPort);
    const ack = (await raw.handshake({ username: "alice", password: Buffer.from("nope") })) as ConnackPacket;
    expect(ack.reasonCode).toBe(5);
    await raw.waitClosed();
  });

  test.skipIf(serverKind === "nats-server")("a wrong password is refused with CONNACK 0x86 (MQTT 5)", async () => {
    const { mqttPort } = await startMqttServer({ config: USERS });
    const raw = await RawMqtt.connect(mqttPort, MQTT_5);
    const ack = (await raw.handshake({ username: "alice", password: Buffer.from("nope") })) as ConnackPacket;
    expect(ack.reasonCode).toBe(ReasonCode.BadUserNameOrPassword);
    await raw.waitClosed();
  });

  test("users live in their accounts: an MQTT publish reaches NATS clients of the same account only", async () => {
    const { server, mqttUrl } = await startMqttServer({ config: USERS });
    const bob = await connectV2(server, { user: "bob", pass: "builder" });
    const carol = await connectV2(server, { user: "carol", pass: "pw" });
    const bobGot: string[] = [];
    const carolGot: string[] = [];
    bob.subscribe("sensors.>", { callback: (_e, m) => bobGot.push(m.subject) });
    carol.subscribe("sensors.>", { callback: (_e, m) => carolGot.push(m.subject) });
    await bob.flush();
    await carol.flush();
    const alice = await connectMqtt(mqttUrl, { username: "alice", password: "wonder" });
    await alice.publishAsync("sensors/t1", "x", { qos: 1 });
    await waitFor(() => bobGot.length === 1, 5000, "bob's message");
    await carol.flush();
    expect(bobGot).toEqual(["sensors.t1"]);
    expect(carolGot).toEqual([]);
  });

  test("subscribe permissions apply to the converted filter, `#` with its parent level: refused filters get SUBACK 0x80 (3.1.1)", async () => {
    const { mqttPort } = await startMqttServer({ config: USERS });
    const raw = await RawMqtt.connect(mqttPort);
    await raw.handshake({ username: "alice", password: Buffer.from("wonder") });
    raw.sendPacket({
      type: PacketType.SUBSCRIBE, packetId: 1, properties: {},
      subscriptions: ["cmd/+", "cmd/#", "secret/#"].map((filter) => ({ filter, qos: 0 as const, noLocal: false, retainAsPublished: false, retainHandling: 0 as const })),
    });
    const ack = (await raw.next(PacketType.SUBACK)) as SubackPacket;
    // `cmd/#` is `cmd.>` and `cmd`: alice may subscribe to `cmd.>` only, so it is refused (as nats-server).
    expect(ack.reasonCodes).toEqual([0, 0x80, 0x80]);
  });

  test.skipIf(serverKind === "nats-server")("MQTT 5: a publish outside the permissions is answered PUBACK 0x87 and not delivered", async () => {
    const { server, mqttPort } = await startMqttServer({ config: USERS });
    const bob = await connectV2(server, { user: "bob", pass: "builder" });
    const got: string[] = [];
    bob.subscribe(">", { callback: (_e, m) => got.push(m.subject) });
    await bob.flush();
    const raw = await RawMqtt.connect(mqttPort, MQTT_5);
    await raw.handshake({ username: "alice", password: Buffer.from("wonder") });
    raw.sendPacket({ type: PacketType.PUBLISH, dup: false, qos: 1, retain: false, topic: "actuators/valve", packetId: 9, properties: {}, payload: Buffer.from("open") });
    const ack = (await raw.next(PacketType.PUBACK)) as AckPacket;
    expect(ack).toMatchObject({ packetId: 9, reasonCode: ReasonCode.NotAuthorized });
    await bob.flush();
    expect(got.filter((s) => !s.startsWith("$"))).toEqual([]);
  });

  test("a token is given as the MQTT password (nats-server's mapping)", async () => {
    const { mqttUrl } = await startMqttServer({ config: "authorization { token: s3cr3t }\n" });
    const client = await connectMqtt(mqttUrl, { username: "anything", password: "s3cr3t" });
    expect(client.connected).toBe(true);
    await expect(connectMqtt(mqttUrl, { username: "anything", password: "wrong" })).rejects.toThrow();
  });

  test("the mqtt block's no_auth_user lets clients without credentials in as that user", async () => {
    const { server, mqttUrl } = await startMqttServer({ config: USERS, mqttConfig: "  no_auth_user: bob" });
    const bob = await connectV2(server, { user: "bob", pass: "builder" });
    const sub = await connectMqtt(mqttUrl, {});
    const got = collect(sub);
    await sub.subscribeAsync("hello");
    bob.publish("hello", "from bob's account");
    expect((await got.wait(1))[0]!.payload).toBe("from bob's account");
  });
});

describe("allowed_connection_types", () => {
  test("a user limited to STANDARD cannot log in over MQTT; one allowed MQTT can", async () => {
    const { mqttUrl } = await startMqttServer({
      config: `authorization { users: [
        { user: natsonly, password: a, allowed_connection_types: ["STANDARD"] }
        { user: device, password: b, allowed_connection_types: ["MQTT"] }
      ] }\n`,
    });
    await expect(connectMqtt(mqttUrl, { username: "natsonly", password: "a" })).rejects.toThrow();
    const ok = await connectMqtt(mqttUrl, { username: "device", password: "b" });
    expect(ok.connected).toBe(true);
  });
});

describe.skipIf(serverKind === "nats-server")("publish rate limits (natter's rate_limit)", () => {
  test("an MQTT user's publishes are paced by its rate limit, none lost", async () => {
    const { server, mqttUrl } = await startMqttServer({
      config: "authorization { users: [ { user: sensor, password: pw, rate_limit: { msgs_per_sec: 10 } } ] }\n",
    });
    const nc = await connectV2(server, { user: "sensor", pass: "pw" });
    let count = 0;
    nc.subscribe("paced", { callback: () => count++ });
    await nc.flush();
    const client = await connectMqtt(mqttUrl, { username: "sensor", password: "pw" });
    const start = Date.now();
    // One at a time (each in its own read): the limit is charged after each read, as for NATS clients.
    for (let i = 0; i < 30; i++) await client.publishAsync("paced", String(i), { qos: 1 });
    // 10 a second with a full bucket of 10 to start: the last of 30 cannot be taken before ~2 s.
    expect(Date.now() - start).toBeGreaterThanOrEqual(1500);
    await waitFor(() => count === 30, 5000, "all 30 messages");
  });
});

describe("client ids per account", () => {
  test("the same client id in two accounts is two sessions: neither takes the other over", async () => {
    const { mqttUrl } = await startMqttServer({ config: USERS });
    const a = await connectMqtt(mqttUrl, { clientId: "dev1", username: "bob", password: "builder" });
    const b = await connectMqtt(mqttUrl, { clientId: "dev1", username: "carol", password: "pw" });
    const gotA = collect(a);
    await a.subscribeAsync("ping");
    await a.publishAsync("ping", "still here"); // a round trip through the server after b connected
    await gotA.wait(1);
    expect(a.connected).toBe(true);
    expect(b.connected).toBe(true);
  });
});
