// One QoS 0 PUBLISH packet, encoded once for all its MQTT subscribers (fan-out): most subscribers get
// exactly the same bytes (no topic alias, no subscription identifier), so the packet is built at the first
// of them for each protocol level and each further delivery is one copy into the subscriber's buffer
// (Uint8Array.set, which the engine does inline: Buffer.copy per topic and payload was 40% of a 1:100
// fan-out of 16-byte messages). One instance is reused for every message: deliveries are synchronous.
import { MQTT_5 } from "./packets.ts";
import { varintSize } from "./wire.ts";

export class PreparedPublish {
  topic: Buffer = Buffer.alloc(0);
  buf: Buffer = Buffer.alloc(0);
  start = 0;
  end = 0;
  private v311: Buffer | null = null;
  private v5: Buffer | null = null;

  /** A new message: the topic's bytes and the payload buf[start, end) (kept by reference until the next). */
  reset(topic: Buffer, buf: Buffer, start: number, end: number): this {
    this.topic = topic;
    this.buf = buf;
    this.start = start;
    this.end = end;
    this.v311 = null;
    this.v5 = null;
    return this;
  }

  /** The whole PUBLISH (QoS 0, no retain, no properties) for a client of this protocol level. */
  packet(level: number): Buffer {
    if (level === MQTT_5) return (this.v5 ??= this.encode(true));
    return (this.v311 ??= this.encode(false));
  }

  private encode(v5: boolean): Buffer {
    const topic = this.topic;
    const payloadLength = this.end - this.start;
    const remaining = 2 + topic.length + (v5 ? 1 : 0) + payloadLength;
    const out = Buffer.allocUnsafe(1 + varintSize(remaining) + remaining);
    let at = 0;
    out[at++] = 0x30;
    let v = remaining;
    do {
      let b = v & 0x7f;
      v = Math.floor(v / 128);
      if (v > 0) b |= 0x80;
      out[at++] = b;
    } while (v > 0);
    out[at++] = topic.length >> 8;
    out[at++] = topic.length & 0xff;
    out.set(topic, at);
    at += topic.length;
    if (v5) out[at++] = 0; // no properties
    this.buf.copy(out, at, this.start, this.end);
    return out;
  }
}
