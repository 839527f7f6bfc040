// MQTT control packets (3.1.1 = protocol level 4, 5.0 = level 5) as plain objects, and the constants
// both versions spell on the wire. One table each: packet types, reason codes, CONNACK return codes.
import type { Properties } from "./properties.ts";

export const PacketType = {
  CONNECT: 1, CONNACK: 2, PUBLISH: 3, PUBACK: 4, PUBREC: 5, PUBREL: 6, PUBCOMP: 7,
  SUBSCRIBE: 8, SUBACK: 9, UNSUBSCRIBE: 10, UNSUBACK: 11, PINGREQ: 12, PINGRESP: 13, DISCONNECT: 14, AUTH: 15,
} as const;
export type PacketType = (typeof PacketType)[keyof typeof PacketType];

export const PACKET_NAMES = ["", "CONNECT", "CONNACK", "PUBLISH", "PUBACK", "PUBREC", "PUBREL", "PUBCOMP", "SUBSCRIBE",
  "SUBACK", "UNSUBSCRIBE", "UNSUBACK", "PINGREQ", "PINGRESP", "DISCONNECT", "AUTH"] as const;

export const MQTT_311 = 4;
export const MQTT_5 = 5;

/** MQTT 5 reason codes (spec 2.4), the ones natter sends or reads. */
export const ReasonCode = {
  Success: 0x00,
  GrantedQoS1: 0x01,
  GrantedQoS2: 0x02,
  DisconnectWithWill: 0x04,
  NoMatchingSubscribers: 0x10,
  NoSubscriptionExisted: 0x11,
  UnspecifiedError: 0x80,
  MalformedPacket: 0x81,
  ProtocolError: 0x82,
  ImplementationSpecificError: 0x83,
  UnsupportedProtocolVersion: 0x84,
  ClientIdentifierNotValid: 0x85,
  BadUserNameOrPassword: 0x86,
  NotAuthorized: 0x87,
  ServerUnavailable: 0x88,
  ServerBusy: 0x89,
  ServerShuttingDown: 0x8b,
  BadAuthenticationMethod: 0x8c,
  KeepAliveTimeout: 0x8d,
  SessionTakenOver: 0x8e,
  TopicFilterInvalid: 0x8f,
  TopicNameInvalid: 0x90,
  PacketIdentifierInUse: 0x91,
  PacketIdentifierNotFound: 0x92,
  ReceiveMaximumExceeded: 0x93,
  TopicAliasInvalid: 0x94,
  PacketTooLarge: 0x95,
  QuotaExceeded: 0x97,
  PayloadFormatInvalid: 0x99,
  RetainNotSupported: 0x9a,
  QoSNotSupported: 0x9b,
  SharedSubscriptionsNotSupported: 0x9e,
  SubscriptionIdentifiersNotSupported: 0xa1,
  WildcardSubscriptionsNotSupported: 0xa2,
} as const;

/** MQTT 3.1.1 CONNACK return codes (spec 3.2.2.3). */
export const ConnackCode311 = {
  Accepted: 0,
  UnacceptableProtocolVersion: 1,
  IdentifierRejected: 2,
  ServerUnavailable: 3,
  BadUserNameOrPassword: 4,
  NotAuthorized: 5,
} as const;

/** A 3.1.1 SUBACK entry for a refused filter. */
export const SUBACK_FAILURE_311 = 0x80;

export interface Will {
  topic: string;
  payload: Buffer;
  qos: 0 | 1 | 2;
  retain: boolean;
  properties: Properties;
}

export interface ConnectPacket {
  type: typeof PacketType.CONNECT;
  protocolName: string;
  protocolLevel: number;
  cleanStart: boolean;
  keepAlive: number;
  clientId: string;
  will: Will | null;
  username: string | null;
  password: Buffer | null;
  properties: Properties;
}

export interface ConnackPacket {
  type: typeof PacketType.CONNACK;
  sessionPresent: boolean;
  /** A 3.1.1 return code or an MQTT 5 reason code. */
  reasonCode: number;
  properties: Properties;
}

export interface PublishPacket {
  type: typeof PacketType.PUBLISH;
  dup: boolean;
  qos: 0 | 1 | 2;
  retain: boolean;
  topic: string;
  /** 0 for QoS 0. */
  packetId: number;
  properties: Properties;
  payload: Buffer;
}

/** PUBACK, PUBREC, PUBREL, PUBCOMP: a packet id and (MQTT 5) a reason code. */
export interface AckPacket {
  type: typeof PacketType.PUBACK | typeof PacketType.PUBREC | typeof PacketType.PUBREL | typeof PacketType.PUBCOMP;
  packetId: number;
  reasonCode: number;
  properties: Properties;
}

export interface SubscriptionRequest {
  filter: string;
  qos: 0 | 1 | 2;
  noLocal: boolean;
  retainAsPublished: boolean;
  retainHandling: 0 | 1 | 2;
}

export interface SubscribePacket {
  type: typeof PacketType.SUBSCRIBE;
  packetId: number;
  subscriptions: SubscriptionRequest[];
  properties: Properties;
}

export interface SubackPacket {
  type: typeof PacketType.SUBACK;
  packetId: number;
  reasonCodes: number[];
  properties: Properties;
}

export interface UnsubscribePacket {
  type: typeof PacketType.UNSUBSCRIBE;
  packetId: number;
  filters: string[];
  properties: Properties;
}

export interface UnsubackPacket {
  type: typeof PacketType.UNSUBACK;
  packetId: number;
  /** MQTT 5 only (3.1.1's UNSUBACK has none). */
  reasonCodes: number[];
  properties: Properties;
}

export interface PingPacket {
  type: typeof PacketType.PINGREQ | typeof PacketType.PINGRESP;
}

export interface DisconnectPacket {
  type: typeof PacketType.DISCONNECT;
  reasonCode: number;
  properties: Properties;
}

export interface AuthPacket {
  type: typeof PacketType.AUTH;
  reasonCode: number;
  properties: Properties;
}

export type Packet =
  | ConnectPacket | ConnackPacket | PublishPacket | AckPacket | SubscribePacket | SubackPacket
  | UnsubscribePacket | UnsubackPacket | PingPacket | DisconnectPacket | AuthPacket;

/**
 * A packet that breaks the spec: `reasonCode` is what an MQTT 5 server answers with (0x81 malformed,
 * 0x82 protocol error, 0x95 too large…) in CONNACK or DISCONNECT; a 3.1.1 server just closes.
 */
export class MqttProtocolError extends Error {
  constructor(
    readonly reasonCode: number,
    message: string,
  ) {
    super(message);
  }
}

export function malformed(message: string): MqttProtocolError {
  return new MqttProtocolError(ReasonCode.MalformedPacket, message);
}

export function protocolError(message: string): MqttProtocolError {
  return new MqttProtocolError(ReasonCode.ProtocolError, message);
}
