// MQTT (the server's MQTT port): packet sequences of 3.1.1 and 5.0 as devices send them (CONNECT with
// wills and properties, SUBSCRIBE with options and shared groups, PUBLISH at every QoS with topic
// aliases and user properties, the acks, PINGREQ, UNSUBSCRIBE, DISCONNECT), then broken the ways a
// hostile or broken client breaks them: bit flips, truncation, inserted bytes, lengths and flags
// overwritten, remaining lengths that lie, huge varints, packets before CONNECT, plain noise. Also the
// connection the fuzzer speaks MQTT over, with a strict reader: every byte the server sends must decode.
import net from "node:net";
import { PacketFramer, decodePacket } from "../../src/mqtt/decode.ts";
import { encodePacket } from "../../src/mqtt/encode.ts";
import { MQTT_5, PacketType, type ConnectPacket, type Packet } from "../../src/mqtt/packets.ts";
import type { FuzzCase } from "./cases.ts";
import type { GenContext } from "./gen-protocol.ts";
import { splitChunks } from "./mutate.ts";
import type { Rng } from "./prng.ts";
import { Waitable } from "./wire.ts";
import { HOST } from "./server-process.ts";

export const PINGREQ = Buffer.from([0xc0, 0x00]);

/** The largest packet natter takes (its maximum packet size: max_payload + 64 KiB). */
export function mqttMaxPacket(ctx: GenContext): number {
  return ctx.maxPayload + 65_536;
}

/**
 * A filler that ends any packet still pending and is then no packet at all: zeros (first byte 0 is a
 * reserved packet type), longer than the largest packet. A connection still open after it is stuck.
 */
export function mqttFiller(ctx: GenContext): Buffer {
  return Buffer.alloc(mqttMaxPacket(ctx) + 16);
}

/** Client ids hostile cases share (takeovers, kept sessions); their sessions are ended between rounds. */
const POOL_IDS = 40;

const TOPICS = ["fz/a", "fz/b/x", "fz/c", "fz/ünï", "fz//e", "fz/.d"];
const FILTERS = ["fz/#", "fz/+/x", "$share/g/fz/#", "#", "fz/a", "+/+", "fz/+"];

function connect(rng: Rng, level: 4 | 5, clientId: string, cleanStart: boolean, keepAlive: number): ConnectPacket {
  const v5 = level === MQTT_5;
  return {
    type: PacketType.CONNECT, protocolName: "MQTT", protocolLevel: level, cleanStart, keepAlive, clientId, username: null, password: null,
    properties: v5 && rng.chance(0.6)
      ? { sessionExpiryInterval: rng.int(3), receiveMaximum: 1 + rng.int(5), topicAliasMaximum: rng.int(5), maximumPacketSize: rng.chance(0.2) ? 64 + rng.int(200) : undefined, userProperties: rng.chance(0.2) ? [["dev", "x"]] : undefined }
      : {},
    will: rng.chance(0.2)
      ? { topic: "fz/will", payload: rng.bytes(rng.int(20)), qos: rng.int(3) as 0 | 1 | 2, retain: rng.chance(0.3), properties: v5 ? { willDelayInterval: rng.int(2), contentType: rng.chance(0.3) ? "text/plain" : undefined } : {} }
      : null,
  };
}

/** Packets a well-behaved client may send after CONNECT; PINGREQs counted. */
function session(rng: Rng, level: 4 | 5, count: number): { packets: Packet[]; pings: number } {
  const v5 = level === MQTT_5;
  const packets: Packet[] = [];
  let pings = 0;
  for (let i = 0; i < count; i++) {
    const id = 1 + rng.int(5);
    switch (rng.int(8)) {
      case 0:
        packets.push({
          type: PacketType.SUBSCRIBE, packetId: id, properties: v5 && rng.chance(0.3) ? { subscriptionIdentifiers: [1 + rng.int(9)] } : {},
          subscriptions: Array.from({ length: 1 + rng.small(2) }, () => ({ filter: rng.pick(FILTERS), qos: rng.int(3) as 0 | 1 | 2, noLocal: false, retainAsPublished: v5 && rng.chance(0.5), retainHandling: (v5 ? rng.int(3) : 0) as 0 | 1 | 2 })),
        });
        break;
      case 1:
      case 2:
      case 3: {
        const qos = rng.int(3) as 0 | 1 | 2;
        packets.push({
          type: PacketType.PUBLISH, dup: false, qos, retain: rng.chance(0.1), topic: rng.pick(TOPICS), packetId: qos > 0 ? id : 0,
          properties: v5 && rng.chance(0.4) ? { topicAlias: 1 + rng.int(3), userProperties: [["k", "v"]], responseTopic: rng.chance(0.2) ? "fz/reply" : undefined, messageExpiryInterval: rng.chance(0.2) ? 1 + rng.int(5) : undefined } : {},
          payload: rng.bytes(rng.chance(0.05) ? rng.int(4000) : rng.int(40)),
        });
        break;
      }
      case 4:
        packets.push({ type: rng.pick([PacketType.PUBACK, PacketType.PUBREC, PacketType.PUBREL, PacketType.PUBCOMP]), packetId: id, reasonCode: 0, properties: {} });
        break;
      case 5:
        packets.push({ type: PacketType.UNSUBSCRIBE, packetId: id, properties: {}, filters: [rng.pick(FILTERS)] });
        break;
      default:
        packets.push({ type: PacketType.PINGREQ });
        pings++;
    }
  }
  return { packets, pings };
}

/** Breaks a byte stream the ways a hostile or broken client does. */
function mutate(rng: Rng, bytes: Buffer, ctx: GenContext): Buffer {
  const edits = 1 + rng.int(4);
  let data: Buffer = Buffer.from(bytes);
  for (let e = 0; e < edits && data.length > 0; e++) {
    const at = rng.int(data.length);
    switch (rng.int(9)) {
      case 0: data[at] = data[at]! ^ (1 << rng.int(8)); break; // bit flip
      case 1: data = data.subarray(0, at); break; // truncation
      case 2: data = Buffer.concat([data.subarray(0, at), rng.bytes(1 + rng.int(8)), data.subarray(at)]); break;
      case 3: data[at] = rng.pick([0xff, 0x80, 0x00, 0x7f, 0x01]); break; // a length or flag byte overwritten
      case 4: data = Buffer.concat([data, data.subarray(at)]); break; // duplicated tail
      case 5: // a remaining length that lies: a 4-byte varint up to 268 MB, or just over the maximum packet
        data = Buffer.concat([data.subarray(0, at), Buffer.from([rng.pick([0x30, 0x32, 0x82, 0x10, 0xe0])]), varint(rng.chance(0.5) ? rng.int(268_435_456) : mqttMaxPacket(ctx) + rng.int(3)), data.subarray(at)]);
        break;
      case 6: data = Buffer.concat([data.subarray(0, at), Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x7f]), data.subarray(at)]); break; // a 5-byte varint
      case 7: data = Buffer.concat([data.subarray(0, at), data.subarray(at + 1 + rng.int(6))]); break; // bytes dropped
      default: data[at] = rng.int(256); break;
    }
  }
  return data;
}

function varint(n: number): Buffer {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return Buffer.from(out);
}

/**
 * One MQTT case. "valid" cases (a unique client id, no DISCONNECT, nothing that ends a connection) must
 * stay connected and answer the probe PINGREQ; the others are hostile: whatever the server answers must
 * decode, a refusal or DISCONNECT must be followed by the close, and nothing may be left stuck.
 */
export function genMqtt(rng: Rng, index: number, ctx: GenContext): FuzzCase {
  const level = rng.chance(0.5) ? 4 : 5;
  const style = rng.weighted([[3, "valid"], [6, "mutated"], [1, "no-connect"], [1, "noise"]] as const);
  let bytes: Buffer;
  let note = `mqtt ${level === 5 ? "5.0" : "3.1.1"} ${style}`;
  if (style === "valid") {
    // A unique client id (no takeover by a concurrent case), a session that ends with the connection or
    // within 2 s (nothing accumulates), no keep alive that could run out while the case is judged.
    const cleanStart = level === 4 ? true : rng.chance(0.7);
    const c = connect(rng, level, rng.chance(0.2) ? "" : `fzv-${index}`, cleanStart, rng.pick([0, 30, 600]));
    if (level === 4) c.clientId ||= `fzv-${index}`;
    const { packets, pings } = session(rng, level, 1 + rng.int(10));
    bytes = Buffer.concat([c, ...packets].map((p) => encodePacket(p, level)));
    return { family: "mqtt", index, note, transport: "mqtt", chunks: splitChunks(rng, bytes), expect: { kind: "alive", pongs: pings + 1 }, mqtt: { level } };
  }
  if (style === "noise") {
    bytes = rng.bytes(1 + rng.int(300));
  } else {
    // Hostile sessions share a small pool of client ids: takeovers and kept sessions (bounded) happen too.
    const { packets } = session(rng, level, rng.int(10));
    const c = connect(rng, level, rng.chance(0.1) ? "" : `fz${rng.int(POOL_IDS)}`, rng.chance(0.7), rng.int(3));
    const all: Packet[] = style === "no-connect" ? packets : [c, ...packets];
    if (rng.chance(0.2)) all.push({ type: PacketType.DISCONNECT, reasonCode: rng.pick([0, 4, 0x81]), properties: rng.chance(0.3) ? { sessionExpiryInterval: rng.int(3) } : {} });
    if (rng.chance(0.1)) all.splice(1 + rng.int(all.length), 0, c); // a second CONNECT
    if (rng.chance(0.05)) all.push({ type: PacketType.AUTH, reasonCode: 0x18, properties: {} });
    bytes = Buffer.concat(all.map((p) => encodePacket(p, level)));
    if (style === "mutated") bytes = mutate(rng, bytes, ctx);
    if (rng.chance(0.05)) {
      note += " oversized";
      bytes = Buffer.concat([bytes, encodePacket({ type: PacketType.PUBLISH, dup: false, qos: 0, retain: false, topic: "fz/big", packetId: 0, properties: {}, payload: Buffer.alloc(mqttMaxPacket(ctx) + rng.int(10), 0x41) }, level)]);
    }
  }
  const chunks = bytes.length > 1 << 16 ? [bytes] : splitChunks(rng, bytes);
  return { family: "mqtt", index, note, transport: "mqtt", chunks, expect: { kind: "any" }, mqtt: { level } };
}

/**
 * Ends the sessions hostile cases may have kept (3.1.1 clean session = false, MQTT 5 session expiry):
 * each pool id connects with a clean session and disconnects, so what they collected between rounds
 * does not count as a leak.
 */
export async function endKeptSessions(port: number, timeoutMs: number): Promise<void> {
  await Promise.all(Array.from({ length: POOL_IDS }, async (_, i) => {
    const conn = new MqttFuzzConn(port, 4);
    try {
      if (!(await conn.ready())) return;
      const c: ConnectPacket = { type: PacketType.CONNECT, protocolName: "MQTT", protocolLevel: 4, cleanStart: true, keepAlive: 0, clientId: `fz${i}`, username: null, password: null, properties: {}, will: null };
      await conn.writeRaw(Buffer.concat([encodePacket(c, 4), Buffer.from([0xe0, 0x00])]));
      await conn.waitClosed(timeoutMs);
    } finally {
      conn.destroy();
    }
  }));
}

/**
 * The fuzzer's MQTT connection: raw writes, and a strict reader of what the server sends (each packet
 * decoded at the case's protocol level, or at the other one: a mutated CONNECT may have changed it).
 */
export class MqttFuzzConn extends Waitable {
  readonly socket: net.Socket;
  readonly packets: Packet[] = [];
  closed = false;
  malformed: string | null = null;
  private readonly framer = new PacketFramer(1 << 28);
  private readonly connected: Promise<boolean>;
  constructor(port: number, private readonly level: number) {
    super();
    const socket = net.connect({ host: HOST, port });
    socket.setNoDelay(true);
    this.socket = socket;
    this.connected = new Promise((resolve) => {
      socket.once("connect", () => resolve(true));
      socket.once("error", () => resolve(false));
    });
    socket.on("data", (d: Buffer) => this.received(d));
    socket.on("error", () => this.markClosed());
    socket.on("close", () => this.markClosed());
    socket.on("end", () => socket.end());
  }

  ready(): Promise<boolean> {
    return this.connected;
  }

  private received(data: Buffer): void {
    if (this.malformed !== null) return;
    try {
      this.framer.feed(data, (first, buf, start, end) => {
        let packet: Packet;
        try {
          packet = decodePacket(first, buf, start, end, this.level);
        } catch {
          packet = decodePacket(first, buf, start, end, this.level === MQTT_5 ? 4 : MQTT_5);
        }
        if (packet.type === PacketType.CONNECT || packet.type === PacketType.SUBSCRIBE || packet.type === PacketType.UNSUBSCRIBE || packet.type === PacketType.PINGREQ) {
          throw new Error(`a client packet (${packet.type}) from the server`);
        }
        this.packets.push(packet);
      });
    } catch (error) {
      this.malformed = `${(error as Error).message} in ${data.subarray(0, 64).toString("hex")}`;
    }
    this.wake();
  }

  private markClosed(): void {
    if (this.closed) return;
    this.closed = true;
    this.wake();
  }

  count(type: number): number {
    return this.packets.filter((p) => p.type === type).length;
  }

  /** The server said it ends the connection: a refusing CONNACK or a DISCONNECT. */
  get refused(): boolean {
    return this.packets.some((p) => p.type === PacketType.DISCONNECT || (p.type === PacketType.CONNACK && p.reasonCode !== 0));
  }

  writeRaw(data: Buffer): Promise<void> {
    if (this.socket.destroyed || this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      try {
        this.socket.write(data, () => resolve());
      } catch {
        resolve();
      }
    });
  }

  waitClosed(timeoutMs: number): Promise<boolean> {
    return this.waitFor(() => (this.closed ? true : undefined), timeoutMs).then((v) => v === true);
  }

  destroy(): void {
    this.socket.destroy();
    this.markClosed();
  }
}
