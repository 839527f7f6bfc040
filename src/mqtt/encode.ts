// MQTT packets → bytes, for protocol level 4 (3.1.1) or 5. The server encodes what it sends
// (CONNACK, PUBLISH, the acks, SUBACK, UNSUBACK, PINGRESP, DISCONNECT); the client side (CONNECT,
// SUBSCRIBE…) is here too, for tests and the fuzzer.
import { MQTT_5, PacketType, type Packet } from "./packets.ts";
import { writeProperties } from "./properties.ts";
import { ByteWriter } from "./wire.ts";

export function encodePacket(p: Packet, level: number): Buffer {
  const v5 = level === MQTT_5;
  const body = new ByteWriter();
  let flags = 0;
  switch (p.type) {
    case PacketType.CONNECT: {
      body.string(p.protocolName).u8(p.protocolLevel);
      let f = 0;
      if (p.cleanStart) f |= 2;
      if (p.will !== null) f |= 4 | (p.will.qos << 3) | (p.will.retain ? 32 : 0);
      if (p.password !== null) f |= 64;
      if (p.username !== null) f |= 128;
      body.u8(f).u16(p.keepAlive);
      if (v5) writeProperties(body, p.properties);
      body.string(p.clientId);
      if (p.will !== null) {
        if (v5) writeProperties(body, p.will.properties);
        body.string(p.will.topic).binary(p.will.payload);
      }
      if (p.username !== null) body.string(p.username);
      if (p.password !== null) body.binary(p.password);
      break;
    }
    case PacketType.CONNACK:
      body.u8(p.sessionPresent ? 1 : 0).u8(p.reasonCode);
      if (v5) writeProperties(body, p.properties);
      break;
    case PacketType.PUBLISH:
      flags = (p.dup ? 8 : 0) | (p.qos << 1) | (p.retain ? 1 : 0);
      body.string(p.topic);
      if (p.qos > 0) body.u16(p.packetId);
      if (v5) writeProperties(body, p.properties);
      body.raw(p.payload);
      break;
    case PacketType.PUBACK:
    case PacketType.PUBREC:
    case PacketType.PUBREL:
    case PacketType.PUBCOMP:
      if (p.type === PacketType.PUBREL) flags = 2;
      body.u16(p.packetId);
      // MQTT 5: success without properties may leave both out (spec 3.4.2.1).
      if (v5 && (p.reasonCode !== 0 || Object.keys(p.properties).length > 0)) {
        body.u8(p.reasonCode);
        writeProperties(body, p.properties);
      }
      break;
    case PacketType.SUBSCRIBE:
      flags = 2;
      body.u16(p.packetId);
      if (v5) writeProperties(body, p.properties);
      for (const s of p.subscriptions) {
        body.string(s.filter).u8(s.qos | (s.noLocal ? 4 : 0) | (s.retainAsPublished ? 8 : 0) | (s.retainHandling << 4));
      }
      break;
    case PacketType.SUBACK:
      body.u16(p.packetId);
      if (v5) writeProperties(body, p.properties);
      for (const code of p.reasonCodes) body.u8(code);
      break;
    case PacketType.UNSUBSCRIBE:
      flags = 2;
      body.u16(p.packetId);
      if (v5) writeProperties(body, p.properties);
      for (const filter of p.filters) body.string(filter);
      break;
    case PacketType.UNSUBACK:
      body.u16(p.packetId);
      if (v5) {
        writeProperties(body, p.properties);
        for (const code of p.reasonCodes) body.u8(code);
      }
      break;
    case PacketType.PINGREQ:
    case PacketType.PINGRESP:
      break;
    case PacketType.DISCONNECT:
    case PacketType.AUTH:
      if (v5 && (p.reasonCode !== 0 || Object.keys(p.properties).length > 0)) {
        body.u8(p.reasonCode);
        writeProperties(body, p.properties);
      }
      break;
  }
  const out = new ByteWriter();
  out.u8((p.type << 4) | flags).varint(body.length).raw(body.bytes());
  return Buffer.from(out.bytes());
}
