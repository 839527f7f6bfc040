// MQTT 5 properties (spec 2.2.2): an identifier byte and a typed value each, after a length. Unknown
// identifiers are malformed; a property given twice (other than user property and, in PUBLISH,
// subscription identifier) is a protocol error; one not allowed in the packet is a protocol error.
import { malformed, protocolError, PacketType } from "./packets.ts";
import { ByteReader, ByteWriter, varintSize } from "./wire.ts";

export interface Properties {
  payloadFormatIndicator?: number;
  messageExpiryInterval?: number;
  contentType?: string;
  responseTopic?: string;
  correlationData?: Buffer;
  subscriptionIdentifiers?: number[];
  sessionExpiryInterval?: number;
  assignedClientIdentifier?: string;
  serverKeepAlive?: number;
  authenticationMethod?: string;
  authenticationData?: Buffer;
  requestProblemInformation?: number;
  willDelayInterval?: number;
  requestResponseInformation?: number;
  responseInformation?: string;
  serverReference?: string;
  reasonString?: string;
  receiveMaximum?: number;
  topicAliasMaximum?: number;
  topicAlias?: number;
  maximumQoS?: number;
  retainAvailable?: number;
  userProperties?: [string, string][];
  maximumPacketSize?: number;
  wildcardSubscriptionAvailable?: number;
  subscriptionIdentifierAvailable?: number;
  sharedSubscriptionAvailable?: number;
}

type Kind = "byte" | "u16" | "u32" | "varint" | "string" | "binary" | "pair";

/** `WILL` stands for the will properties of CONNECT's payload. */
export const WILL = 0;
const P = PacketType;

interface Definition {
  readonly name: keyof Properties;
  readonly kind: Kind;
  /** The packets it may appear in (spec 2.2.2.2). */
  readonly packets: readonly number[];
}

const ACKS = [P.PUBACK, P.PUBREC, P.PUBREL, P.PUBCOMP, P.SUBACK, P.UNSUBACK];

const DEFINITIONS: ReadonlyMap<number, Definition> = new Map<number, Definition>([
  [0x01, { name: "payloadFormatIndicator", kind: "byte", packets: [P.PUBLISH, WILL] }],
  [0x02, { name: "messageExpiryInterval", kind: "u32", packets: [P.PUBLISH, WILL] }],
  [0x03, { name: "contentType", kind: "string", packets: [P.PUBLISH, WILL] }],
  [0x08, { name: "responseTopic", kind: "string", packets: [P.PUBLISH, WILL] }],
  [0x09, { name: "correlationData", kind: "binary", packets: [P.PUBLISH, WILL] }],
  [0x0b, { name: "subscriptionIdentifiers", kind: "varint", packets: [P.PUBLISH, P.SUBSCRIBE] }],
  [0x11, { name: "sessionExpiryInterval", kind: "u32", packets: [P.CONNECT, P.CONNACK, P.DISCONNECT] }],
  [0x12, { name: "assignedClientIdentifier", kind: "string", packets: [P.CONNACK] }],
  [0x13, { name: "serverKeepAlive", kind: "u16", packets: [P.CONNACK] }],
  [0x15, { name: "authenticationMethod", kind: "string", packets: [P.CONNECT, P.CONNACK, P.AUTH] }],
  [0x16, { name: "authenticationData", kind: "binary", packets: [P.CONNECT, P.CONNACK, P.AUTH] }],
  [0x17, { name: "requestProblemInformation", kind: "byte", packets: [P.CONNECT] }],
  [0x18, { name: "willDelayInterval", kind: "u32", packets: [WILL] }],
  [0x19, { name: "requestResponseInformation", kind: "byte", packets: [P.CONNECT] }],
  [0x1a, { name: "responseInformation", kind: "string", packets: [P.CONNACK] }],
  [0x1c, { name: "serverReference", kind: "string", packets: [P.CONNACK, P.DISCONNECT] }],
  [0x1f, { name: "reasonString", kind: "string", packets: [P.CONNACK, ...ACKS, P.DISCONNECT, P.AUTH] }],
  [0x21, { name: "receiveMaximum", kind: "u16", packets: [P.CONNECT, P.CONNACK] }],
  [0x22, { name: "topicAliasMaximum", kind: "u16", packets: [P.CONNECT, P.CONNACK] }],
  [0x23, { name: "topicAlias", kind: "u16", packets: [P.PUBLISH] }],
  [0x24, { name: "maximumQoS", kind: "byte", packets: [P.CONNACK] }],
  [0x25, { name: "retainAvailable", kind: "byte", packets: [P.CONNACK] }],
  [0x26, { name: "userProperties", kind: "pair", packets: [P.CONNECT, P.CONNACK, P.PUBLISH, WILL, ...ACKS, P.SUBSCRIBE, P.UNSUBSCRIBE, P.DISCONNECT, P.AUTH] }],
  [0x27, { name: "maximumPacketSize", kind: "u32", packets: [P.CONNECT, P.CONNACK] }],
  [0x28, { name: "wildcardSubscriptionAvailable", kind: "byte", packets: [P.CONNACK] }],
  [0x29, { name: "subscriptionIdentifierAvailable", kind: "byte", packets: [P.CONNACK] }],
  [0x2a, { name: "sharedSubscriptionAvailable", kind: "byte", packets: [P.CONNACK] }],
]);

const IDS = new Map<keyof Properties, number>([...DEFINITIONS].map(([id, d]) => [d.name, id]));

/** Reads a property block (its varint length first) for `packet` (a PacketType, or WILL). */
export function readProperties(r: ByteReader, packet: number): Properties {
  const length = r.varint("properties length");
  if (length > r.remaining) throw malformed("properties length exceeds the packet");
  const end = r.at + length;
  const props: Properties = {};
  const bag = props as Record<string, unknown>;
  const inner = new ByteReader(r.buf, r.at, end);
  while (inner.remaining > 0) {
    const id = inner.varint("property identifier");
    const def = DEFINITIONS.get(id);
    if (def === undefined) throw malformed(`unknown property 0x${id.toString(16)}`);
    if (!def.packets.includes(packet)) throw protocolError(`property ${def.name} not allowed in this packet`);
    const value = readValue(inner, def);
    if (def.name === "userProperties") {
      (props.userProperties ??= []).push(value as [string, string]);
    } else if (def.name === "subscriptionIdentifiers") {
      if (value === 0) throw protocolError("subscription identifier 0");
      if (props.subscriptionIdentifiers !== undefined && packet !== P.PUBLISH) throw protocolError("subscription identifier given twice");
      (props.subscriptionIdentifiers ??= []).push(value as number);
    } else {
      if (bag[def.name] !== undefined) throw protocolError(`property ${def.name} given twice`);
      bag[def.name] = value;
    }
  }
  r.at = end;
  return props;
}

function readValue(r: ByteReader, def: Definition): unknown {
  switch (def.kind) {
    case "byte": return r.u8(def.name);
    case "u16": return r.u16(def.name);
    case "u32": return r.u32(def.name);
    case "varint": return r.varint(def.name);
    case "string": return r.string(def.name);
    case "binary": return r.binary(def.name);
    case "pair": return [r.string(def.name), r.string(def.name)];
  }
}

/** Writes a property block (length first); undefined fields are left out. */
export function writeProperties(w: ByteWriter, props: Properties): void {
  const body = new ByteWriter();
  for (const [name, value] of Object.entries(props) as [keyof Properties, unknown][]) {
    if (value === undefined) continue;
    const id = IDS.get(name)!;
    const kind = DEFINITIONS.get(id)!.kind;
    if (name === "userProperties") {
      for (const [k, v] of value as [string, string][]) body.u8(id).string(k).string(v);
    } else if (name === "subscriptionIdentifiers") {
      for (const n of value as number[]) body.u8(id).varint(n);
    } else {
      body.u8(id);
      writeValue(body, kind, value);
    }
  }
  w.varint(body.length).raw(body.bytes());
}

function writeValue(w: ByteWriter, kind: Kind, value: unknown): void {
  switch (kind) {
    case "byte": w.u8(value as number); return;
    case "u16": w.u16(value as number); return;
    case "u32": w.u32(value as number); return;
    case "varint": w.varint(value as number); return;
    case "string": w.string(value as string); return;
    case "binary": w.binary(value as Uint8Array); return;
    case "pair": throw new Error("pairs are written by writeProperties");
  }
}

/** The encoded size of a property block, its length prefix included. */
export function propertiesSize(props: Properties): number {
  const w = new ByteWriter();
  writeProperties(w, props);
  return w.length;
}

export { varintSize };
