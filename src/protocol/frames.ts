// Encoders for what the server writes: INFO, -ERR, and the fixed frames, as nats-server spells them.

export const PING_FRAME = Buffer.from("PING\r\n");
export const PONG_FRAME = Buffer.from("PONG\r\n");
export const OK_FRAME = Buffer.from("+OK\r\n");

export function errFrame(text: string): Buffer {
  return Buffer.from(`-ERR '${text}'\r\n`);
}

/** The INFO a server sends, in wire casing (the field names clients read). */
export interface ServerInfo {
  server_id: string;
  server_name: string;
  /** The nats-server version whose features natter implements: clients gate features on it. */
  version: string;
  proto: number;
  go: string;
  host: string;
  port: number;
  headers: boolean;
  max_payload: number;
  jetstream?: boolean;
  auth_required?: boolean;
  tls_required?: boolean;
  tls_available?: boolean;
  nonce?: string;
  client_id?: number;
  client_ip?: string;
  connect_urls?: string[];
  ws_connect_urls?: string[];
  ldm?: boolean;
}

/** `INFO {...} \r\n` — nats-server puts a space before the CRLF. */
export function infoFrame(info: ServerInfo): Buffer {
  return Buffer.from(`INFO ${JSON.stringify(info)} \r\n`);
}

/**
 * The status message a requester gets when nobody received its request:
 * `HMSG <reply> <sid> 16 16\r\nNATS/1.0 503\r\n\r\n\r\n` (as nats-server 2.10.0 sends it).
 */
export function noRespondersFrame(reply: Buffer | Uint8Array, sid: string): Buffer {
  const head = Buffer.from("HMSG ");
  const tail = Buffer.from(` ${sid} 16 16\r\nNATS/1.0 503\r\n\r\n\r\n`, "latin1");
  return Buffer.concat([head, reply, tail]);
}
