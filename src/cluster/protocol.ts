// The route protocol between natter nodes (ours, not nats-server's). Length-prefixed binary frames:
//
//   u32 length (bytes after this field) | u8 kind | body
//
// HELLO and ERROR bodies are msgpack maps carrying the protocol version; the frames that flow all
// the time (interest and messages) are fixed binary layouts, cheap to write and to read:
//
//   SUB    u16 account | u16 subject length | subject | u16 queue length | queue | u32 weight
//          (plain interest: queue length 0, weight 1; a queue group: weight = its local members;
//          a SUB for a key that exists sets its weight)
//   UNSUB  u16 account | u16 subject length | subject | u16 queue length | queue
//   MSG    u8 flags | u16 subject length | u16 reply length | u16 head length | i32 header size
//          | u32 payload length | u16 queue count | u16 account | subject | tail | [deliver] | [info] | queues
//          tail  = `[reply ][hdr ]size\r\n` (head length bytes) payload `\r\n`: byte for byte the tail
//                  of the MSG/HMSG a client gets, so the receiver delivers it with two copies.
//          queues = (u16 length | name) × queue count: the groups the origin picked this node for.
//          deliver = u16 length | subject, with flag DELIVER_AS only: the receiver delivers to its
//                  subscribers of that subject while showing `subject` (a JetStream delivery to an
//                  inbox, nats-server's `pa.deliver`).
//          info = u16 length | UTF-8 JSON, with flag REQUEST_INFO only: a JetStream API request from a
//                  client of the sender, and that client's ClientInfo (src/request-info.ts; nats-server's
//                  Nats-Request-Info header), for the audit advisory of the node that answers it.
//          flags: REPLY, HEADERS, QUEUES_ONLY (sent for queue groups only: plain subscribers skip it),
//          DELIVER_AS, REQUEST_INFO.
//   RAFT   u8 type | u8 group length | group | payload: JetStream's clustered layer
//          (src/jetstream/cluster/route-transport.ts): a Raft message of the named group, a proposal
//          forwarded to its leader, or a node's status. The route only carries it.
//   PING   (empty) sent on an idle route; any frame proves the peer alive. With a body, an RTT probe:
//          u8 PING_ECHO_REQUEST | f64 stamp (the sender's clock, ms) asks for the same stamp back in
//          u8 PING_ECHO_REPLY | f64 stamp. A node that does not know bodies ignores them (it never did
//          look at a PING's body), so probes need no new protocol version.
//
// Accounts: `account` is an index into the *sender's* HELLO `accounts` list ($G is always 0). The
// receiver maps each index to its own account of that name once, at HELLO, so a message costs one
// array lookup and two bytes, whatever the account. Names a node does not have are ignored (logged
// once): every node of a cluster must be configured with the same accounts.
import { decode, encode } from "@msgpack/msgpack";

/**
 * Version of the route and gossip protocols; every HELLO, ERROR and gossip message carries it.
 * 2: MSG frames may carry a deliver subject (DELIVER_AS), which a version 1 node would misread.
 * 3: SUB, UNSUB and MSG frames carry an account index; HELLO lists the accounts.
 * 4: RAFT frames (clustered JetStream); HELLO says whether the sender runs JetStream, and its tags.
 * 5: MSG frames may carry a request's ClientInfo (REQUEST_INFO), which a version 4 node would misread.
 */
export const PROTOCOL_VERSION = 5;

export const FrameKind = {
  HELLO: 1,
  ERROR: 2,
  PING: 3,
  SUB: 5,
  UNSUB: 6,
  MSG: 7,
  RAFT: 8,
} as const;
export type FrameKind = (typeof FrameKind)[keyof typeof FrameKind];

export const MsgFlag = {
  REPLY: 1,
  HEADERS: 2,
  QUEUES_ONLY: 4,
  DELIVER_AS: 8,
  REQUEST_INFO: 16,
} as const;

/** Bytes of a MSG frame before the subject: length, kind and the fixed fields. */
export const MSG_HEADER = 24;
/** Offsets inside a MSG frame, from its first byte. */
export const MsgAt = {
  FLAGS: 5,
  SUBJECT_LENGTH: 6,
  REPLY_LENGTH: 8,
  HEAD_LENGTH: 10,
  HEADER_SIZE: 12,
  PAYLOAD_LENGTH: 16,
  QUEUE_COUNT: 20,
  ACCOUNT: 22,
} as const;

/** A HELLO too big is not a route speaking to us: refuse it before buffering it. */
export const MAX_HELLO = 64 * 1024;

/** What each side of a route says first, in wire casing. */
export interface Hello {
  /** PROTOCOL_VERSION of the sender. */
  v: number;
  /** Cluster name ("" = unnamed). */
  cluster: string;
  /** Member id: the cluster address other members reach the sender at (host:port). */
  id: string;
  /** Incarnation of the sender (see gossip.ts). */
  inc: number;
  server_id: string;
  server_name: string;
  /** The sender's accounts; frames name an account by its index here ($G first). */
  accounts: string[];
  /** Whether the sender runs JetStream (a member of the meta group) — version 4. */
  js?: boolean;
  /** The sender's server_tags (placement) — version 4. */
  tags?: string[];
}

export interface ErrorBody {
  v: number;
  error: string;
}

export function helloFrame(hello: Hello): Buffer {
  return controlFrame(FrameKind.HELLO, encode(hello));
}

export function errorFrame(text: string): Buffer {
  const body: ErrorBody = { v: PROTOCOL_VERSION, error: text };
  return controlFrame(FrameKind.ERROR, encode(body));
}

/** A RAFT frame: `type` (the clustered layer's), the group's name (latin1, < 256 bytes), the payload. */
export function raftFrame(type: number, group: string, payload: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(5 + 2 + group.length + payload.length);
  frame.writeUInt32BE(frame.length - 4, 0);
  frame[4] = FrameKind.RAFT;
  frame[5] = type;
  frame[6] = group.length;
  frame.write(group, 7, "latin1");
  frame.set(payload, 7 + group.length);
  return frame;
}

export const PING_FRAME = controlFrame(FrameKind.PING, new Uint8Array(0));

/** The first body byte of a PING that is an RTT probe, and of its answer. */
export const PING_ECHO_REQUEST = 1;
export const PING_ECHO_REPLY = 2;
/** Bytes of a PING frame with an RTT body: length, kind, u8, f64. */
export const PING_ECHO_LENGTH = 5 + 1 + 8;

/** A PING carrying an RTT probe (PING_ECHO_REQUEST) or its answer (PING_ECHO_REPLY) with `stamp`. */
export function pingEchoFrame(type: number, stamp: number): Buffer {
  const frame = Buffer.allocUnsafe(PING_ECHO_LENGTH);
  frame.writeUInt32BE(PING_ECHO_LENGTH - 4, 0);
  frame[4] = FrameKind.PING;
  frame[5] = type;
  frame.writeDoubleBE(stamp, 6);
  return frame;
}

function controlFrame(kind: FrameKind, body: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(5 + body.length);
  frame.writeUInt32BE(1 + body.length, 0);
  frame[4] = kind;
  frame.set(body, 5);
  return frame;
}

/** The msgpack body of a HELLO or ERROR frame; throws on anything that is not a map. */
export function decodeBody(buf: Buffer, start: number, end: number): Record<string, unknown> {
  const value = decode(buf.subarray(start, end));
  if (value === null || typeof value !== "object" || Array.isArray(value)) throw new Error("not a map");
  return value as Record<string, unknown>;
}

/**
 * Whether a HELLO has the fields every version has. `accounts` (version 3) is checked with the version
 * (hasAccounts), so that a node of another version is refused for its version, not for a missing field.
 */
export function isHello(value: Record<string, unknown>): value is Record<string, unknown> & Hello {
  return (
    typeof value.v === "number" &&
    typeof value.cluster === "string" &&
    typeof value.id === "string" &&
    typeof value.inc === "number" &&
    typeof value.server_id === "string" &&
    typeof value.server_name === "string"
  );
}

/** Whether a HELLO's `accounts` is a list of names (at most 65536: indexes are u16). */
export function hasAccounts(hello: Hello): boolean {
  const a = (hello as { accounts?: unknown }).accounts;
  return Array.isArray(a) && a.length <= 0x10000 && a.every((n) => typeof n === "string" && n !== "");
}

/** Bytes of a SUB (weight >= 0) or UNSUB (weight < 0) frame for one interest key. */
export function interestFrameLength(subject: string, queue: string | null, weight: number): number {
  return 5 + 2 + 2 + subject.length + 2 + (queue === null ? 0 : queue.length) + (weight >= 0 ? 4 : 0);
}

/**
 * Writes a SUB (weight >= 0) or UNSUB (weight < 0) frame at `at` for the account of index `account`
 * (in this node's HELLO); returns its end. Subjects and queues are latin1, as parsed.
 */
export function writeInterestFrame(out: Buffer, at: number, account: number, subject: string, queue: string | null, weight: number): number {
  const length = interestFrameLength(subject, queue, weight);
  out.writeUInt32BE(length - 4, at);
  out[at + 4] = weight >= 0 ? FrameKind.SUB : FrameKind.UNSUB;
  out.writeUInt16BE(account, at + 5);
  at += 7;
  out.writeUInt16BE(subject.length, at);
  at += 2;
  at += out.write(subject, at, "latin1");
  const queueLength = queue === null ? 0 : queue.length;
  out.writeUInt16BE(queueLength, at);
  at += 2;
  if (queue !== null) at += out.write(queue, at, "latin1");
  if (weight >= 0) {
    out.writeUInt32BE(weight, at);
    at += 4;
  }
  return at;
}
