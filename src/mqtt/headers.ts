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

/** The header block for an MQTT 5 PUBLISH's properties, or null when there is nothing to carry. */
export function propertiesToHeaders(props: Properties): Buffer | null {
  const lines: string[] = [];
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
    if (name === CONTENT_TYPE) props.contentType = value;
    else if (name === CORRELATION) props.correlationData = Buffer.from(value, "base64");
    else if (name === PAYLOAD_FORMAT) props.payloadFormatIndicator = Number(value) & 1;
    else if (name === MESSAGE_EXPIRY) props.messageExpiryInterval = Math.max(0, Math.min(0xffffffff, Math.floor(Number(value)) || 0));
    else (props.userProperties ??= []).push([name, value]);
  }
}
