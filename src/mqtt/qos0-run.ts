// QoS 0 fan-out, encoded once and copied once per subscriber per run: consecutive QoS 0 PUBLISH packets
// of one read from one publisher to one topic (a sensor streaming) go to the same MQTT subscribers, so they
// are encoded once into one buffer (per protocol level) and each subscriber gets the whole run in one copy
// at the end of the read, instead of a fixed header, a topic copy and a payload copy per message and
// subscriber (Buffer.copy is a native call of ~50 ns whatever its size: 40% of a 1:100 fan-out of 16-byte
// messages went there). A subscriber whose packets differ (topic aliases, a subscription identifier, a
// smaller maximum packet size) gets the messages one by one. One instance is reused: the run is delivered
// before the read ends and before anything else the publisher sends is handled (src/mqtt/mqtt.ts).
import type { Subscription } from "../subscription.ts";
import type { MqttSession } from "./session.ts";
import { MQTT_5 } from "./packets.ts";
import { varintSize, writeVarint } from "./wire.ts";

/** A run stops growing past this many encoded bytes (the next message starts a new run). */
const MAX_RUN_BYTES = 64 * 1024;
const NO_SUBS: readonly Subscription[] = [];

export class Qos0Run {
  /** The publisher of the run; null when there is none. */
  publisher: MqttSession | null = null;
  subject = "";
  topic: Buffer = Buffer.alloc(0);
  /** The MQTT subscriptions the subject matched (every match was an MQTT session's). */
  subs: readonly Subscription[] = NO_SUBS;
  count = 0;
  payloadBytes = 0;
  /** The largest packet of the run (3.1.1 encoding; MQTT 5 adds a byte, or two when the length grows). */
  largest = 0;
  /** The 3.1.1 packets, back to back; payload i is packets311[bounds[2i], bounds[2i+1]). */
  private packets311: Buffer = Buffer.allocUnsafe(MAX_RUN_BYTES);
  private end311 = 0;
  private readonly bounds: number[] = [];
  private packets5: Buffer | null = null;

  begin(publisher: MqttSession, subject: string, topic: Buffer, subs: readonly Subscription[]): void {
    this.publisher = publisher;
    this.subject = subject;
    this.topic = topic;
    this.subs = subs;
    this.count = 0;
    this.payloadBytes = 0;
    this.largest = 0;
    this.end311 = 0;
    this.bounds.length = 0;
    this.packets5 = null;
  }

  /** Whether a message of `payloadLength` bytes still goes into this run. */
  fits(payloadLength: number): boolean {
    return this.end311 + 8 + this.topic.length + payloadLength <= MAX_RUN_BYTES;
  }

  /** Adds a message (its payload copied: buf[start, end) is the reader's). A first message larger than a run is encoded alone. */
  append(buf: Buffer, start: number, end: number): void {
    const topic = this.topic;
    const payloadLength = end - start;
    const remaining = 2 + topic.length + payloadLength;
    const size = 1 + varintSize(remaining) + remaining;
    if (this.end311 + size > this.packets311.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.end311 + size, MAX_RUN_BYTES));
      this.packets311.copy(grown, 0, 0, this.end311);
      this.packets311 = grown;
    }
    const out = this.packets311;
    let at = this.end311;
    out[at++] = 0x30;
    at = writeVarint(out, at, remaining);
    out[at++] = topic.length >> 8;
    out[at++] = topic.length & 0xff;
    out.set(topic, at);
    at += topic.length;
    buf.copy(out, at, start, end);
    this.bounds.push(at, at + payloadLength);
    this.end311 = at + payloadLength;
    this.count++;
    this.payloadBytes += payloadLength;
    if (size > this.largest) this.largest = size;
  }

  /** The largest packet for a client of this level. */
  largestFor(level: number): number {
    return level === MQTT_5 ? this.largest + 2 : this.largest;
  }

  /** The whole run (QoS 0, no retain, no properties) for a client of this protocol level. */
  packets(level: number): Buffer {
    if (level !== MQTT_5) return this.packets311.subarray(0, this.end311);
    return (this.packets5 ??= this.encode5());
  }

  /** The buffer payloads are read from (payloadStart/payloadEnd index it). */
  get payloads(): Buffer {
    return this.packets311;
  }

  payloadStart(i: number): number {
    return this.bounds[2 * i]!;
  }

  payloadEnd(i: number): number {
    return this.bounds[2 * i + 1]!;
  }

  /** Releases what the run refers to (the publisher, the subscriptions), keeping the buffers. */
  clear(): void {
    this.publisher = null;
    this.subs = NO_SUBS;
    this.packets5 = null;
    if (this.packets311.length > MAX_RUN_BYTES) this.packets311 = Buffer.allocUnsafe(MAX_RUN_BYTES); // after one large message
  }

  private encode5(): Buffer {
    const topic = this.topic;
    let total = 0;
    for (let i = 0; i < this.count; i++) {
      const remaining = 3 + topic.length + this.payloadEnd(i) - this.payloadStart(i);
      total += 1 + varintSize(remaining) + remaining;
    }
    const out = Buffer.allocUnsafe(total);
    let at = 0;
    for (let i = 0; i < this.count; i++) {
      const start = this.payloadStart(i);
      const end = this.payloadEnd(i);
      out[at++] = 0x30;
      at = writeVarint(out, at, 3 + topic.length + end - start);
      out[at++] = topic.length >> 8;
      out[at++] = topic.length & 0xff;
      out.set(topic, at);
      at += topic.length;
      out[at++] = 0; // no properties
      this.packets311.copy(out, at, start, end);
      at += end - start;
    }
    return out;
  }
}
