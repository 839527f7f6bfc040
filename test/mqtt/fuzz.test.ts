// The MQTT decoder against the live server with hostile input: valid packet sequences of both versions,
// mutated (bit flips, truncation, inserted bytes, overwritten lengths and flags, duplicated packets)
// and split at random points, 8 connections at a time. Checked: the process never exits, a canary
// MQTT round trip keeps working within a bound, and every hostile connection is gone at the end (no
// leak: /connz counts only the canary). Seeded: FUZZ_SEED=<seed> repeats a run, FUZZ_CASES resizes it.
import net from "node:net";
import { expect, test } from "vitest";
import { Rng } from "../fuzz/prng.ts";
import { encodePacket } from "../../src/mqtt/encode.ts";
import { PacketType, type Packet } from "../../src/mqtt/packets.ts";
import { freePort, serverKind } from "../harness/server.ts";
import { waitFor } from "../harness/raw.ts";
import { collect, connectMqtt, startMqttServer } from "./helpers.ts";
import { connectPacket } from "./raw-mqtt.ts";

const SEED = process.env.FUZZ_SEED ?? String(Date.now());
const CASES = Number(process.env.FUZZ_CASES ?? 1500);
const CONCURRENCY = 8;

/** A plausible session: CONNECT, then subscribes, publishes at every QoS, acks, pings, maybe DISCONNECT. */
function validSession(rng: Rng, level: 4 | 5): Packet[] {
  const packets: Packet[] = [connectPacket(level, {
    clientId: rng.chance(0.2) ? "" : `fz${rng.int(50)}`, cleanStart: rng.chance(0.7), keepAlive: rng.int(3),
    properties: level === 5 && rng.chance(0.5) ? { sessionExpiryInterval: rng.int(3), receiveMaximum: 1 + rng.int(5), topicAliasMaximum: rng.int(5) } : {},
    will: rng.chance(0.2) ? { topic: "fz/will", payload: Buffer.from("w"), qos: rng.int(3) as 0 | 1 | 2, retain: rng.chance(0.3), properties: level === 5 ? { willDelayInterval: rng.int(2) } : {} } : null,
  })];
  const n = 1 + rng.int(8);
  for (let i = 0; i < n; i++) {
    const id = 1 + rng.int(5);
    switch (rng.int(7)) {
      case 0:
        packets.push({ type: PacketType.SUBSCRIBE, packetId: id, properties: level === 5 && rng.chance(0.3) ? { subscriptionIdentifiers: [1 + rng.int(9)] } : {}, subscriptions: [{ filter: ["fz/#", "fz/+/x", "$share/g/fz/#", "#", "fz/a"][rng.int(5)]!, qos: rng.int(3) as 0 | 1 | 2, noLocal: false, retainAsPublished: rng.chance(0.5), retainHandling: rng.int(3) as 0 | 1 | 2 }] });
        break;
      case 1:
      case 2: {
        const qos = rng.int(3) as 0 | 1 | 2;
        packets.push({ type: PacketType.PUBLISH, dup: false, qos, retain: rng.chance(0.1), topic: ["fz/a", "fz/b/x", "fz/c"][rng.int(3)]!, packetId: qos > 0 ? id : 0, properties: level === 5 && rng.chance(0.3) ? { topicAlias: 1 + rng.int(3), userProperties: [["k", "v"]] } : {}, payload: rng.bytes(rng.int(40)) });
        break;
      }
      case 3:
        packets.push({ type: rng.chance(0.5) ? PacketType.PUBACK : PacketType.PUBREL, packetId: id, reasonCode: 0, properties: {} });
        break;
      case 4:
        packets.push({ type: PacketType.UNSUBSCRIBE, packetId: id, properties: {}, filters: ["fz/#"] });
        break;
      case 5:
        packets.push({ type: PacketType.PINGREQ });
        break;
      default:
        packets.push({ type: PacketType.PUBCOMP, packetId: id, reasonCode: 0, properties: {} });
    }
  }
  if (rng.chance(0.3)) packets.push({ type: PacketType.DISCONNECT, reasonCode: rng.chance(0.5) ? 0 : 4, properties: {} });
  return packets;
}

/** Breaks a byte stream the ways a hostile or broken client does. */
function mutate(rng: Rng, bytes: Buffer): Buffer {
  const edits = rng.int(4);
  let data: Buffer<ArrayBufferLike> = Buffer.from(bytes);
  for (let e = 0; e < edits && data.length > 0; e++) {
    const at = rng.int(data.length);
    switch (rng.int(6)) {
      case 0: data[at] = data[at]! ^ (1 << rng.int(8)); break; // bit flip
      case 1: data = data.subarray(0, at); break; // truncation
      case 2: data = Buffer.concat([data.subarray(0, at), rng.bytes(1 + rng.int(8)), data.subarray(at)]); break;
      case 3: data[at] = [0xff, 0x80, 0x00, 0x7f][rng.int(4)]!; break; // a length or flag byte overwritten
      case 4: data = Buffer.concat([data, data.subarray(at)]); break; // duplicated tail
      default: data[at] = rng.int(256); break;
    }
  }
  return data;
}

async function runCase(port: number, rng: Rng): Promise<void> {
  const level = rng.chance(0.5) ? 4 : 5;
  const packets = validSession(rng, level);
  let bytes: Buffer<ArrayBufferLike> = Buffer.concat(packets.map((p) => encodePacket(p, level)));
  if (rng.chance(0.8)) bytes = mutate(rng, bytes);
  if (rng.chance(0.05)) bytes = rng.bytes(1 + rng.int(200)); // plain noise
  const socket = net.connect(port, "127.0.0.1");
  socket.on("error", () => {});
  socket.on("data", () => {});
  await new Promise<void>((resolve) => socket.once("connect", resolve).once("error", resolve));
  let at = 0;
  while (at < bytes.length && !socket.destroyed) {
    const cut = rng.chance(0.5) ? bytes.length : Math.min(bytes.length, at + 1 + rng.int(16));
    socket.write(bytes.subarray(at, cut));
    at = cut;
    if (rng.chance(0.3)) await new Promise((r) => setTimeout(r, 1));
  }
  await new Promise((r) => setTimeout(r, rng.int(20)));
  socket.destroy();
}

// natter's decoder (its canary speaks MQTT 5, which nats-server refuses).
test.skipIf(serverKind === "nats-server")(`MQTT fuzz: ${CASES} hostile sessions (FUZZ_SEED=${SEED})`, { timeout: 180_000 }, async () => {
  const httpPort = await freePort();
  const { server, mqttPort, mqttUrl } = await startMqttServer({ args: ["-m", String(httpPort)], mqttConfig: '  ack_wait: "1s"' });
  const canarySub = await connectMqtt(mqttUrl, { clientId: "canary-sub", protocolVersion: 5 });
  const canaryPub = await connectMqtt(mqttUrl, { clientId: "canary-pub", protocolVersion: 5 });
  const got = collect(canarySub);
  await canarySub.subscribeAsync("canary/#", { qos: 1 });
  let rounds = 0;
  const canary = async () => {
    const before = got.messages.length;
    const t0 = Date.now();
    await canaryPub.publishAsync("canary/ping", String(++rounds), { qos: 1 });
    await got.wait(before + 1, 5000);
    expect(Date.now() - t0).toBeLessThan(5000);
  };
  let next = 0;
  const worker = async () => {
    while (next < CASES) {
      const index = next++;
      await runCase(mqttPort, Rng.forCase(SEED, "mqtt", index));
      if (index % 250 === 0) await canary();
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  await canary();
  expect(server.log()).not.toMatch(/exited code=/);
  // No leak: only the two canary clients remain connected.
  await waitFor(async () => {
    const body = (await (await fetch(`http://127.0.0.1:${httpPort}/connz?limit=10000`)).json()) as { connections: { type: string }[] };
    return body.connections.filter((c) => c.type === "mqtt").length === 2;
  }, 10_000, "only the canary MQTT clients left in /connz");
  expect(server.log()).not.toMatch(/MQTT internal error/);
});
