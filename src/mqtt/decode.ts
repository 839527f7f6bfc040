// Bytes → MQTT packets. PacketFramer cuts a byte stream into packets (fixed header, remaining
// length); decodePacket reads one packet's body for protocol level 4 (3.1.1) or 5. Every violation
// the spec names is an MqttProtocolError with its MQTT 5 reason code; nothing else is thrown.
import {
  MqttProtocolError, PacketType, ReasonCode, MQTT_5, malformed, protocolError,
  type AckPacket, type ConnectPacket, type Packet, type SubscriptionRequest, type Will,
} from "./packets.ts";
import { readProperties, WILL, type Properties } from "./properties.ts";
import { ByteReader } from "./wire.ts";

const NO_PROPERTIES: Properties = Object.freeze({}) as Properties;

/**
 * Splits a byte stream into packets. A packet larger than `maxPacketSize` (fixed header included)
 * is refused as soon as its remaining length is read, before its body is buffered.
 */
export class PacketFramer {
  private pending: Buffer | null = null;

  constructor(public maxPacketSize: number) {}

  /** Calls `onPacket` for every complete packet in the stream so far; throws on a bad fixed header. */
  feed(data: Buffer, onPacket: (first: number, buf: Buffer, start: number, end: number, packetStart: number) => void): void {
    let buf = data;
    if (this.pending !== null) {
      buf = Buffer.concat([this.pending, data]);
      this.pending = null;
    }
    let at = 0;
    while (at < buf.length) {
      const first = buf[at]!;
      // Remaining length: up to 4 bytes of 7 bits each.
      let length = 0;
      let multiplier = 1;
      let k = at + 1;
      let complete = false;
      for (; k < buf.length && k < at + 5; k++) {
        const b = buf[k]!;
        length += (b & 0x7f) * multiplier;
        multiplier *= 128;
        if ((b & 0x80) === 0) {
          complete = true;
          k++;
          break;
        }
      }
      if (!complete) {
        if (k >= at + 5) throw malformed("malformed variable int");
        break; // the length is split across reads
      }
      const total = k - at + length;
      if (total > this.maxPacketSize) throw new MqttProtocolError(ReasonCode.PacketTooLarge, `packet of ${total} bytes exceeds the maximum packet size of ${this.maxPacketSize}`);
      if (k + length > buf.length) break;
      onPacket(first, buf, k, k + length, at);
      at = k + length;
    }
    if (at < buf.length) this.pending = Buffer.from(buf.subarray(at));
  }
}

/**
 * Reads the body buf[start, end) of a packet whose first byte is `first`. A PUBLISH's payload is a view of
 * `buf`, valid while the read is handled: whoever keeps it copies it. `level` is the connection's
 * protocol level (CONNECT carries its own). Fixed-header flags other than the spec's are malformed.
 */
export function decodePacket(first: number, buf: Buffer, start: number, end: number, level: number): Packet {
  const type = first >> 4;
  const flags = first & 0x0f;
  const r = new ByteReader(buf, start, end);
  const v5 = level === MQTT_5;
  if (type !== PacketType.PUBLISH) {
    const expected = type === PacketType.PUBREL || type === PacketType.SUBSCRIBE || type === PacketType.UNSUBSCRIBE ? 2 : 0;
    if (flags !== expected) throw malformed(`invalid flags 0x${flags.toString(16)} for packet type ${type}`);
  }
  let packet: Packet;
  switch (type) {
    case PacketType.CONNECT:
      packet = decodeConnect(r);
      break;
    case PacketType.CONNACK: {
      const ackFlags = r.u8("connack flags");
      if ((ackFlags & 0xfe) !== 0) throw malformed("connack flags reserved bits");
      const reasonCode = r.u8("connack reason code");
      packet = { type, sessionPresent: (ackFlags & 1) === 1, reasonCode, properties: v5 ? readProperties(r, type) : NO_PROPERTIES };
      break;
    }
    case PacketType.PUBLISH: {
      const qos = (flags >> 1) & 3;
      if (qos === 3) throw malformed("QoS 3");
      const dup = (flags & 8) !== 0;
      if (qos === 0 && dup) throw malformed("DUP set on a QoS 0 message"); // [MQTT-3.3.1-2]
      const topic = r.string("topic name");
      const packetId = qos > 0 ? r.u16("packet identifier") : 0;
      if (qos > 0 && packetId === 0) throw protocolError("packet identifier cannot be 0");
      const properties = v5 ? readProperties(r, type) : NO_PROPERTIES;
      packet = { type, dup, qos: qos as 0 | 1 | 2, retain: (flags & 1) !== 0, topic, packetId, properties, payload: buf.subarray(r.at, end) };
      r.at = end;
      break;
    }
    case PacketType.PUBACK:
    case PacketType.PUBREC:
    case PacketType.PUBREL:
    case PacketType.PUBCOMP: {
      const packetId = r.u16("packet identifier");
      if (packetId === 0) throw protocolError("packet identifier cannot be 0");
      // MQTT 5: the reason code and properties may be left out (spec 3.4.2.1).
      const reasonCode = v5 && r.remaining > 0 ? r.u8("reason code") : 0;
      const properties = v5 && r.remaining > 0 ? readProperties(r, type) : NO_PROPERTIES;
      packet = { type, packetId, reasonCode, properties } as AckPacket;
      break;
    }
    case PacketType.SUBSCRIBE: {
      const packetId = r.u16("packet identifier");
      if (packetId === 0) throw protocolError("packet identifier cannot be 0");
      const properties = v5 ? readProperties(r, type) : NO_PROPERTIES;
      const subscriptions: SubscriptionRequest[] = [];
      while (r.remaining > 0) {
        const filter = r.string("topic filter");
        const options = r.u8("subscription options");
        const qos = options & 3;
        if (qos === 3) throw malformed("QoS 3 in a subscription");
        // 3.1.1: the upper six bits are reserved; 5: the upper two ([MQTT-3.8.3-5]), retain handling 3 is a protocol error.
        if (!v5 && (options & 0xfc) !== 0) throw malformed("subscription options reserved bits");
        if (v5 && (options & 0xc0) !== 0) throw malformed("subscription options reserved bits");
        const retainHandling = (options >> 4) & 3;
        if (retainHandling === 3) throw protocolError("retain handling 3");
        subscriptions.push({
          filter, qos: qos as 0 | 1 | 2, noLocal: v5 && (options & 4) !== 0,
          retainAsPublished: v5 && (options & 8) !== 0, retainHandling: retainHandling as 0 | 1 | 2,
        });
      }
      if (subscriptions.length === 0) throw protocolError("SUBSCRIBE without a topic filter"); // [MQTT-3.8.3-3]
      packet = { type, packetId, subscriptions, properties };
      break;
    }
    case PacketType.SUBACK: {
      const packetId = r.u16("packet identifier");
      const properties = v5 ? readProperties(r, type) : NO_PROPERTIES;
      const reasonCodes: number[] = [];
      while (r.remaining > 0) reasonCodes.push(r.u8("reason code"));
      packet = { type, packetId, reasonCodes, properties };
      break;
    }
    case PacketType.UNSUBSCRIBE: {
      const packetId = r.u16("packet identifier");
      if (packetId === 0) throw protocolError("packet identifier cannot be 0");
      const properties = v5 ? readProperties(r, type) : NO_PROPERTIES;
      const filters: string[] = [];
      while (r.remaining > 0) filters.push(r.string("topic filter"));
      if (filters.length === 0) throw protocolError("UNSUBSCRIBE without a topic filter"); // [MQTT-3.10.3-2]
      packet = { type, packetId, filters, properties };
      break;
    }
    case PacketType.UNSUBACK: {
      const packetId = r.u16("packet identifier");
      const properties = v5 ? readProperties(r, type) : NO_PROPERTIES;
      const reasonCodes: number[] = [];
      while (v5 && r.remaining > 0) reasonCodes.push(r.u8("reason code"));
      packet = { type, packetId, reasonCodes, properties };
      break;
    }
    case PacketType.PINGREQ:
    case PacketType.PINGRESP:
      packet = { type };
      break;
    case PacketType.DISCONNECT: {
      const reasonCode = v5 && r.remaining > 0 ? r.u8("reason code") : 0;
      const properties = v5 && r.remaining > 0 ? readProperties(r, type) : NO_PROPERTIES;
      packet = { type, reasonCode, properties };
      break;
    }
    case PacketType.AUTH: {
      if (!v5) throw malformed("AUTH is an MQTT 5 packet");
      const reasonCode = r.remaining > 0 ? r.u8("reason code") : 0;
      const properties = r.remaining > 0 ? readProperties(r, type) : NO_PROPERTIES;
      packet = { type, reasonCode, properties };
      break;
    }
    default:
      throw malformed(`invalid packet type ${type}`); // 0 is reserved
  }
  if (r.remaining !== 0) throw malformed(`${r.remaining} unexpected bytes at the end of the packet`);
  return packet;
}

/** CONNECT (spec 3.1): its protocol level decides how the rest is read. */
function decodeConnect(r: ByteReader): ConnectPacket {
  const protocolName = r.string("protocol name");
  const protocolLevel = r.u8("protocol level");
  if (protocolName !== "MQTT" && protocolName !== "MQIsdp") throw protocolError(`invalid protocol name ${JSON.stringify(protocolName)}`);
  // Levels other than 4 and 5 are answered with "unsupported protocol version" by the caller; stop here.
  if (protocolName !== "MQTT" || (protocolLevel !== 4 && protocolLevel !== 5)) {
    r.at = r.end;
    return { type: PacketType.CONNECT, protocolName, protocolLevel, cleanStart: true, keepAlive: 0, clientId: "", will: null, username: null, password: null, properties: NO_PROPERTIES };
  }
  const v5 = protocolLevel === MQTT_5;
  const flags = r.u8("connect flags");
  if ((flags & 1) !== 0) throw malformed("connect flags reserved bit not set to 0"); // [MQTT-3.1.2-3]
  const cleanStart = (flags & 2) !== 0;
  const hasWill = (flags & 4) !== 0;
  const willQos = (flags >> 3) & 3;
  const willRetain = (flags & 32) !== 0;
  const hasPassword = (flags & 64) !== 0;
  const hasUser = (flags & 128) !== 0;
  if (willQos === 3) throw malformed("will QoS 3");
  if (!hasWill && (willQos !== 0 || willRetain)) throw malformed("if Will flag is set to 0, Will QoS and Will Retain must be 0 too");
  if (!v5 && hasPassword && !hasUser) throw malformed("password flag set but username flag is not"); // [MQTT-3.1.2-22]
  const keepAlive = r.u16("keep alive");
  const properties = v5 ? readProperties(r, PacketType.CONNECT) : NO_PROPERTIES;
  if (properties.receiveMaximum === 0) throw protocolError("receive maximum 0");
  if (properties.maximumPacketSize === 0) throw protocolError("maximum packet size 0");
  const clientId = r.string("client identifier");
  let will: Will | null = null;
  if (hasWill) {
    const willProperties = v5 ? readProperties(r, WILL) : NO_PROPERTIES;
    const topic = r.string("will topic");
    const payload = r.binary("will payload");
    will = { topic, payload, qos: willQos as 0 | 1 | 2, retain: willRetain, properties: willProperties };
  }
  const username = hasUser ? r.string("user name") : null;
  const password = hasPassword ? r.binary("password") : null;
  return { type: PacketType.CONNECT, protocolName, protocolLevel, cleanStart, keepAlive, clientId, will, username, password, properties };
}
