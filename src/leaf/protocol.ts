// The leafnode protocol, as nats-server speaks it (server/leafnode.go, client.go): text ops over TCP
// (or WebSocket), in both directions once connected.
//
//   hub → leaf   INFO {...}            first, with client_id, nonce, info_on_connect, leafnode_urls
//   leaf → hub   CONNECT {...}         server_id, name, headers, cluster, credentials
//   hub → leaf   INFO {...}            connect_info: true, remote_account: the CONNECT was accepted
//   both         LS+ <subject>[ <queue> <weight>]    interest (a queue group with its member count)
//                LS- <subject>[ <queue>]             interest gone
//                LMSG <subject> [<reply>] <size>\r\n<payload>\r\n
//                LMSG <subject> + <reply> <queue>… <size>   (| instead of + <reply>: no reply)
//                HMSG <subject> … <header size> <size>      the same with headers
//                PING, PONG, -ERR '<text>'
//
// A message goes to the other side only where that side has interest; an LMSG naming queue groups goes
// to the receiver's plain subscribers and to one member of each named group. Loops are detected with a
// per-server subscription on $LDS.<random>: a server that receives its own $LDS interest back is in a loop.

/** What a hub sends first, and again (connect_info) after accepting a CONNECT; wire casing. */
export interface LeafInfo {
  server_id: string;
  server_name: string;
  version: string;
  proto: number;
  go?: string;
  host?: string;
  port?: number;
  headers: boolean;
  auth_required?: boolean;
  tls_required?: boolean;
  /** The hub requires a client certificate (its tls { verify: true }). */
  tls_verify?: boolean;
  max_payload: number;
  client_id?: number;
  nonce?: string;
  cluster?: string;
  info_on_connect?: boolean;
  connect_info?: boolean;
  leafnode_urls?: string[];
  ws_connect_urls?: string[];
  remote_account?: string;
  /** The server's JetStream domain (src/jetstream/domain.ts), as nats-server's INFO. */
  domain?: string;
  ldm?: boolean;
  /** nats-server 2.10's compression negotiation: natter offers none. */
  compression?: string;
}

/** What a leaf sends to the hub after its INFO (nats-server's leafConnectInfo); wire casing. */
export interface LeafConnect {
  version?: string;
  jwt?: string;
  /** An nkey user's public key; `sig` is then its signature of the INFO's nonce (nats-server's leafConnectInfo). */
  nkey?: string;
  sig?: string;
  user?: string;
  pass?: string;
  /** natter's own (a natter hub reads it); nats-server's leaf CONNECT has no token. */
  auth_token?: string;
  server_id?: string;
  domain?: string;
  name?: string;
  is_hub?: boolean;
  cluster?: string;
  headers?: boolean;
  jetstream?: boolean;
  deny_pub?: string[];
  compress_mode?: string;
  gateway?: string;
  remote_account?: string;
  /** Only clients send it: its presence means a client dialed the leafnode port. */
  lang?: string;
}

/** The prefix of the loop detection subject each server subscribes to on every leaf connection. */
export const LDS_PREFIX = "$LDS.";

/**
 * Subjects that never cross a leaf connection (nats-server's denyAllClientJs, applied to every leaf
 * connection of a non-system account when JetStream domains do not extend over it): JetStream's API,
 * KV and object store subjects. Each side keeps its own JetStream. Neither interest nor messages on
 * them go over, in either direction; a nats-server hub even closes a leaf that subscribes to one.
 */
export const JS_DENY_PREFIXES = ["$JS.API.", "$KV.", "$OBJ."] as const;

/** Whether a subject (or a subscription subject under one of the prefixes) is kept off leaf connections. */
export function isLeafDenied(subject: string): boolean {
  if (subject.charCodeAt(0) !== 36 /* $ */) return false;
  for (const prefix of JS_DENY_PREFIXES) if (subject.startsWith(prefix)) return true;
  return false;
}

/** isLeafDenied for a subject in buf[start, end), without decoding it. */
export function isLeafDeniedBytes(buf: Buffer, start: number, end: number): boolean {
  if (buf[start] !== 36 /* $ */) return false;
  for (const prefix of JS_DENY_PREFIXES) {
    const n = prefix.length;
    if (end - start <= n) continue;
    let k = 0;
    while (k < n && buf[start + k] === prefix.charCodeAt(k)) k++;
    if (k === n) return true;
  }
  return false;
}

/** The global account, a link's account unless the remote or the leaf's user names another. */
export { GLOBAL_ACCOUNT } from "../accounts/options.ts";

// Error texts, as nats-server spells them (leafnode.go, errors.go): the other side matches on some.
export const LeafError = {
  WrongPort: "attempted to connect to leaf node port",
  ConnectedToWrongPort: "attempted to connect to wrong port",
  SameClusterName: "remote leafnode has same cluster name",
  AuthorizationViolation: "Authorization Violation",
  AuthenticationTimeout: "Authentication Timeout",
  StaleConnection: "Stale Connection",
  LoopDetected: (account: string, delaySeconds: number) => `Loop detected for leafnode account=${JSON.stringify(account)}. Delaying attempt to reconnect for ${delaySeconds}s`,
  /** An account past its max_leafnodes, for a leaf authenticated as a user of the accounts block (as a client would be). */
  MaxAccountConnections: "maximum account active connections exceeded",
} as const;

export const LS_PLUS = Buffer.from("LS+ ", "latin1");
export const LS_MINUS = Buffer.from("LS- ", "latin1");

/** `LS+ key[ weight]\r\n` (weight for a queue key, `subject queue`) or `LS- key\r\n` when n <= 0. */
export function interestLine(key: string, isQueue: boolean, n: number): string {
  if (n <= 0) return `LS- ${key}\r\n`;
  return isQueue ? `LS+ ${key} ${n}\r\n` : `LS+ ${key}\r\n`;
}

/** `INFO {...} \r\n`: nats-server puts a space before the CRLF. */
export function infoLine(info: LeafInfo): Buffer {
  return Buffer.from(`INFO ${JSON.stringify(info)} \r\n`);
}

export function connectLine(connect: LeafConnect): Buffer {
  return Buffer.from(`CONNECT ${JSON.stringify(connect)}\r\n`);
}

export function errLine(text: string): Buffer {
  return Buffer.from(`-ERR '${text}'\r\n`);
}
