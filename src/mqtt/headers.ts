// MQTT 5 message properties ↔ NATS headers, so properties cross between MQTT and NATS clients:
// user properties are header lines (name: value, repeated as given); the MQTT-only properties travel
// in `Nmqtt-` headers, which an MQTT subscriber gets back as properties, not as user properties.
// The message expiry interval travels as given; the time it was published is not carried, so it counts
// from when a session or the retained store takes the message.
import type { Properties } from "./properties.ts";

const CONTENT_TYPE = "Nmqtt-Content-Type";
const CORRELATION = "Nmqtt-Correlation-Data";
const PAYLOAD_FORMAT = "Nmqtt-Payload-Format";
const MESSAGE_EXPIRY = "Nmqtt-Message-Expiry";
/**
 * nats-server's header on what an MQTT client published: its QoS (nats-server 2.9 and 2.10 write `Nmqtt-Pub:1`).
 * natter writes it for QoS 1 and 2, and for a retained publish, so that an MQTT subscriber on another node of
 * a cluster (the message came over a route) gets the QoS and retain flag the publisher gave, as one on the
 * publisher's node does. The retain flag rides as the second byte of the value (nats-server's current sources): the PUBLISH
 * flags nibble in hex (bit 0 retain, bits 1–2 QoS: `01` retained QoS 0, `13` retained QoS 1); the first byte
 * stays the bare QoS, which is all that nats-server 2.9 and 2.10 read.
 */
const PUBLISHED_QOS = "Nmqtt-Pub";
const PUBLISHED_QOS_LINE = Buffer.from(`\r\n${PUBLISHED_QOS}:`, "latin1");

/** The header block for an MQTT PUBLISH's QoS and MQTT 5 properties, or null when there is nothing to carry. */
export function propertiesToHeaders(props: Properties, qos: 0 | 1 | 2 = 0, retain = false): Buffer | null {
  const lines: string[] = [];
  if (retain) lines.push(`${PUBLISHED_QOS}: ${qos}${((qos << 1) | 1).toString(16)}`);
  else if (qos > 0) lines.push(`${PUBLISHED_QOS}: ${qos}`);
  for (const [name, value] of props.userProperties ?? []) {
    // A NATS header name cannot hold ':' or whitespace, nor a value a line break: such pairs cannot cross.
    if (name === "" || /[:\s]/.test(name) || /[\r\n]/.test(value)) continue;
    lines.push(`${name}: ${value}`);
  }
  if (props.contentType !== undefined && !/[\r\n]/.test(props.contentType)) lines.push(`${CONTENT_TYPE}: ${props.contentType}`);
  if (props.correlationData !== undefined) lines.push(`${CORRELATION}: ${props.correlationData.toString("base64")}`);
  if (props.payloadFormatIndicator !== undefined) lines.push(`${PAYLOAD_FORMAT}: ${props.payloadFormatIndicator}`);
  if (props.messageExpiryInterval !== undefined) lines.push(`${MESSAGE_EXPIRY}: ${props.messageExpiryInterval}`);
  if (lines.length === 0) return null;
  return Buffer.from(`NATS/1.0\r\n${lines.join("\r\n")}\r\n\r\n`, "utf8");
}

/** The properties a NATS header block stands for (the reverse of propertiesToHeaders). */
export function headersToProperties(block: Buffer, props: Properties): void {
  const text = block.toString("utf8");
  const lines = text.split("\r\n");
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const name = line.slice(0, colon);
    const value = line.slice(colon + 1).trim();
    if (name === PUBLISHED_QOS) continue;
    if (name === CONTENT_TYPE) props.contentType = value;
    else if (name === CORRELATION) props.correlationData = Buffer.from(value, "base64");
    else if (name === PAYLOAD_FORMAT) props.payloadFormatIndicator = Number(value) & 1;
    else if (name === MESSAGE_EXPIRY) props.messageExpiryInterval = Math.max(0, Math.min(0xffffffff, Math.floor(Number(value)) || 0));
    else (props.userProperties ??= []).push([name, value]);
  }
}

/** The QoS an MQTT publisher gave a message, from its header block buf[start, start + size) (0 without `Nmqtt-Pub`). */
export function publishedQos(buf: Buffer, start: number, size: number): 0 | 1 | 2 {
  const at = publishedValueAt(buf, start, size);
  if (at < 0) return 0;
  const digit = buf[at]! - 0x30;
  return digit === 1 || digit === 2 ? digit : 0;
}

/** Whether an MQTT publisher set RETAIN on a message, from the flags byte of its `Nmqtt-Pub` value (false without it). */
export function publishedRetain(buf: Buffer, start: number, size: number): boolean {
  const at = publishedValueAt(buf, start, size);
  if (at < 0 || at + 1 >= start + size) return false;
  const flags = Number.parseInt(String.fromCharCode(buf[at + 1]!), 16);
  return !Number.isNaN(flags) && (flags & 1) === 1;
}

/** Where the `Nmqtt-Pub` value starts in the header block buf[start, start + size), or -1. */
function publishedValueAt(buf: Buffer, start: number, size: number): number {
  const end = start + size;
  const at = buf.indexOf(PUBLISHED_QOS_LINE, start);
  if (at < 0 || at >= end) return -1;
  let i = at + PUBLISHED_QOS_LINE.length;
  while (i < end && buf[i] === 0x20) i++;
  return i < end ? i : -1;
}
