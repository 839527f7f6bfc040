// The packet codec alone: every packet round-trips in both versions, properties keep their types, and
// malformed input is refused with the spec's reason code (never another exception, never a hang).
import { describe, expect, test } from "vitest";
import { PacketFramer, decodePacket } from "../../src/mqtt/decode.ts";
import { encodePacket } from "../../src/mqtt/encode.ts";
import { MqttProtocolError, PacketType, ReasonCode, type Packet } from "../../src/mqtt/packets.ts";
import { filterToSubject, subjectToTopic, topicToSubject, filterProblem } from "../../src/mqtt/topics.ts";
import { propertiesToHeaders, publishedQos, publishedRetain } from "../../src/mqtt/headers.ts";

function roundTrip(p: Packet, level: number): Packet {
  const bytes = encodePacket(p, level);
  const out: Packet[] = [];
  new PacketFramer(1 << 20).feed(bytes, (first, buf, start, end) => out.push(decodePacket(first, buf, start, end, level)));
  expect(out).toHaveLength(1);
  return out[0]!;
}

/** The reason code decoding `bytes` (one whole packet) fails with, or "ok". */
function refusal(bytes: number[], level = 5, max = 1 << 20): number | "ok" {
  try {
    new PacketFramer(max).feed(Buffer.from(bytes), (first, buf, start, end) => decodePacket(first, buf, start, end, level));
    return "ok";
  } catch (error) {
    if (error instanceof MqttProtocolError) return error.reasonCode;
    throw error;
  }
}

const packets: Packet[] = [
  {
    type: PacketType.CONNECT, protocolName: "MQTT", protocolLevel: 5, cleanStart: true, keepAlive: 30, clientId: "dev-1",
    will: { topic: "w/t", payload: Buffer.from("bye"), qos: 1, retain: false, properties: { willDelayInterval: 5, userProperties: [["a", "b"]] } },
    username: "u", password: Buffer.from("p"), properties: { sessionExpiryInterval: 60, receiveMaximum: 10, topicAliasMaximum: 4 },
  },
  { type: PacketType.CONNACK, sessionPresent: true, reasonCode: 0, properties: { assignedClientIdentifier: "x", maximumPacketSize: 1000 } },
  {
    type: PacketType.PUBLISH, dup: true, qos: 2, retain: true, topic: "a/b", packetId: 7,
    properties: { contentType: "text/plain", correlationData: Buffer.from([1, 2]), subscriptionIdentifiers: [1, 300], userProperties: [["k", "v"], ["k", "w"]] },
    payload: Buffer.from("hello"),
  },
  { type: PacketType.PUBACK, packetId: 1, reasonCode: ReasonCode.NoMatchingSubscribers, properties: { reasonString: "none" } },
  { type: PacketType.PUBREL, packetId: 2, reasonCode: 0, properties: {} },
  {
    type: PacketType.SUBSCRIBE, packetId: 3, properties: { subscriptionIdentifiers: [9] },
    subscriptions: [{ filter: "a/#", qos: 1, noLocal: true, retainAsPublished: true, retainHandling: 2 }],
  },
  { type: PacketType.SUBACK, packetId: 3, reasonCodes: [1, 0x87], properties: {} },
  { type: PacketType.UNSUBSCRIBE, packetId: 4, filters: ["a/#", "b"], properties: {} },
  { type: PacketType.UNSUBACK, packetId: 4, reasonCodes: [0, 0x11], properties: {} },
  { type: PacketType.PINGREQ },
  { type: PacketType.DISCONNECT, reasonCode: ReasonCode.DisconnectWithWill, properties: { sessionExpiryInterval: 0 } },
  { type: PacketType.AUTH, reasonCode: 0x18, properties: { authenticationMethod: "SCRAM" } },
];

describe("codec", () => {
  test.each(packets.map((p) => [p.type, p] as const))("packet type %i round-trips in MQTT 5", (_type, p) => {
    expect(roundTrip(p, 5)).toEqual(p);
  });

  test("3.1.1 packets carry no properties or MQTT 5 reason codes", () => {
    const publish = roundTrip({ type: PacketType.PUBLISH, dup: false, qos: 1, retain: false, topic: "t", packetId: 1, properties: {}, payload: Buffer.from("x") }, 4);
    expect(publish).toMatchObject({ topic: "t", packetId: 1, payload: Buffer.from("x") });
    const bytes = encodePacket({ type: PacketType.PUBACK, packetId: 1, reasonCode: 0x10, properties: {} }, 4);
    expect([...bytes]).toEqual([0x40, 2, 0, 1]);
  });

  test("a packet split at every byte is framed the same", () => {
    const bytes = Buffer.concat(packets.slice(0, 4).map((p) => encodePacket(p, 5)));
    for (let cut = 1; cut < bytes.length; cut++) {
      const framer = new PacketFramer(1 << 20);
      const types: number[] = [];
      const on = (first: number, buf: Buffer, start: number, end: number) => types.push(decodePacket(first, buf, start, end, 5).type);
      framer.feed(bytes.subarray(0, cut), on);
      framer.feed(bytes.subarray(cut), on);
      expect(types).toEqual([1, 2, 3, 4]);
    }
  });

  test.each([
    ["a remaining length of 5 bytes", [0x30, 0xff, 0xff, 0xff, 0xff, 0x01], ReasonCode.MalformedPacket],
    ["reserved packet type 0", [0x00, 0x00], ReasonCode.MalformedPacket],
    ["PUBREL with flags 0", [0x60, 0x02, 0x00, 0x01], ReasonCode.MalformedPacket],
    ["SUBSCRIBE with flags 0", [0x80, 0x06, 0, 1, 0, 1, 0x61, 0], ReasonCode.MalformedPacket],
    ["PUBLISH QoS 3", [0x36, 0x05, 0, 1, 0x61, 0, 1], ReasonCode.MalformedPacket],
    ["PUBLISH QoS 0 with DUP", [0x38, 0x04, 0, 1, 0x61, 0], ReasonCode.MalformedPacket],
    ["PUBLISH QoS 1 with packet id 0", [0x32, 0x06, 0, 1, 0x61, 0, 0, 0], ReasonCode.ProtocolError],
    ["a topic of invalid UTF-8", [0x30, 0x04, 0, 1, 0xff, 0], ReasonCode.MalformedPacket],
    ["a topic with U+0000", [0x30, 0x04, 0, 1, 0x00, 0], ReasonCode.MalformedPacket],
    ["a string longer than the packet", [0x30, 0x03, 0, 9, 0x61], ReasonCode.MalformedPacket],
    ["an unknown property", [0x30, 0x06, 0, 1, 0x61, 2, 0x7f, 0], ReasonCode.MalformedPacket],
    ["a property twice", [0x30, 0x08, 0, 1, 0x61, 4, 0x01, 0, 0x01, 1], ReasonCode.ProtocolError],
    ["a property not allowed in the packet", [0x30, 0x09, 0, 1, 0x61, 5, 0x11, 0, 0, 0, 0], ReasonCode.ProtocolError],
    ["SUBSCRIBE without filters", [0x82, 0x03, 0, 1, 0], ReasonCode.ProtocolError],
    ["SUBSCRIBE retain handling 3", [0x82, 0x07, 0, 1, 0, 0, 1, 0x61, 0x30], ReasonCode.ProtocolError],
    ["CONNECT reserved flag", [0x10, 0x0b, 0, 4, 0x4d, 0x51, 0x54, 0x54, 5, 0x01, 0, 0, 0], ReasonCode.MalformedPacket],
    ["CONNECT will QoS without will flag", [0x10, 0x0b, 0, 4, 0x4d, 0x51, 0x54, 0x54, 5, 0x08, 0, 0, 0], ReasonCode.MalformedPacket],
    ["trailing bytes after PINGREQ", [0xc0, 0x01, 0], ReasonCode.MalformedPacket],
  ] as const)("%s is refused", (_what, bytes, code) => {
    expect(refusal([...bytes])).toBe(code);
  });

  test("a packet larger than the maximum packet size is refused from its fixed header (0x95)", () => {
    expect(refusal([0x30, 0x80, 0x80, 0x01], 5, 1000)).toBe(ReasonCode.PacketTooLarge);
  });

  test("random bytes never throw anything but a protocol error", () => {
    let seed = 42;
    const random = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    for (let n = 0; n < 20_000; n++) {
      const length = 1 + Math.floor(random() * 24);
      const bytes = Array.from({ length }, () => Math.floor(random() * 256));
      if (random() < 0.5) bytes[1] = Math.min(length - 2, 127) & 0x7f; // often a plausible length
      const result = refusal(bytes, random() < 0.5 ? 4 : 5);
      expect(result === "ok" || typeof result === "number").toBe(true);
    }
  });
});

describe("topics ↔ subjects, as nats-server 2.10's mqtt.go", () => {
  test.each([
    ["foo/bar", "foo.bar"],
    ["/foo/bar", "/.foo.bar"],
    ["foo/bar/", "foo.bar./"],
    ["foo//bar", "foo./.bar"],
    ["//foo", "/./.foo"],
    ["foo.bar", "foo//bar"],
    ["foo", "foo"],
    ["/", "/./"],
  ])("topic %s → subject %s and back", (topic, subject) => {
    expect(topicToSubject(topic)).toBe(subject);
    expect(subjectToTopic(subject)).toBe(topic);
  });

  test("filters: + → *, # → >", () => {
    expect(filterToSubject("a/+/c")).toBe("a.*.c");
    expect(filterToSubject("a/#")).toBe("a.>");
    expect(filterToSubject("#")).toBe(">");
    expect(() => topicToSubject("a/+")).toThrow("wildcards not allowed in publish's topic");
    expect(() => topicToSubject("a b")).toThrow("character ' ' not supported for MQTT topics");
    expect(filterProblem("a/#/b")).not.toBeNull();
    expect(filterProblem("a+/b")).not.toBeNull();
    expect(filterProblem("+/+/#")).toBeNull();
  });
});

describe("Nmqtt-Pub: the publisher's QoS and retain flag across routes", () => {
  test("written as the QoS, and the PUBLISH flags in hex after it when retained (nats-server's current layout)", () => {
    expect(propertiesToHeaders({}, 0)).toBeNull();
    expect(propertiesToHeaders({}, 1)?.toString()).toBe("NATS/1.0\r\nNmqtt-Pub: 1\r\n\r\n");
    expect(propertiesToHeaders({}, 0, true)?.toString()).toBe("NATS/1.0\r\nNmqtt-Pub: 01\r\n\r\n");
    expect(propertiesToHeaders({}, 1, true)?.toString()).toBe("NATS/1.0\r\nNmqtt-Pub: 13\r\n\r\n");
    expect(propertiesToHeaders({}, 2, true)?.toString()).toBe("NATS/1.0\r\nNmqtt-Pub: 25\r\n\r\n");
  });

  test("read back: the first byte is the QoS (all that nats-server 2.9 and 2.10 write), bit 0 of the second the retain flag", () => {
    const read = (value: string | null) => {
      const block = Buffer.from(`NATS/1.0\r\n${value === null ? "X: y" : `Nmqtt-Pub:${value}`}\r\n\r\n`);
      return [publishedQos(block, 0, block.length), publishedRetain(block, 0, block.length)];
    };
    expect(read(null)).toEqual([0, false]);
    expect(read("1")).toEqual([1, false]);
    expect(read(" 01")).toEqual([0, true]);
    expect(read("13")).toEqual([1, true]);
    expect(read("25")).toEqual([2, true]);
    expect(read("24")).toEqual([2, false]);
  });
});
