// What a fuzz case is: the bytes to send (already split into the writes that carry them) and what the
// server must do with them. Cases are plain data so that a failing one can be written to a file and
// replayed exactly (run.ts --replay).

export type Family = "protocol" | "scenario" | "connect" | "jetstream" | "websocket" | "mqtt";
export const FAMILIES: readonly Family[] = ["protocol", "scenario", "connect", "jetstream", "websocket", "mqtt"];

/**
 * What the server must do after the case's bytes.
 * - alive: the trailing probe PING is answered (pongs: how many PONGs in all, counting the case's own
 *   PINGs), no -ERR but `allow`, the connection stays open;
 * - close: the connection is closed, with exactly this -ERR first (null: no -ERR at all);
 * - error-stays: exactly this -ERR, and the connection stays and answers the probe;
 * - any: hostile input. Whatever happens, a closing -ERR must be followed by the close, and the
 *   connection must not be left stuck: fed a filler of CRLFs longer than any pending op, it must close.
 */
export type Expectation =
  | { kind: "alive"; pongs: number; allow?: string[] }
  | { kind: "close"; err: string | null }
  | { kind: "error-stays"; err: string; pongs: number }
  | { kind: "any" };

/** A JetStream request inside a case, answered on its own inbox. */
export interface JsRequest {
  subject: string;
  inbox: string;
  /** The sid the case subscribed `inbox` with (a pulled message arrives with its own subject, on this sid). */
  sid: string;
  /** The answer must come (within the deadline); otherwise it may, and is checked if it does. */
  required: boolean;
  /** How to check the answer: an API JSON response, a PubAck, a status/message (direct get, pull), or anything. */
  answer: "api" | "puback" | "status-or-msg" | "any";
}

/**
 * WebSocket: `raw` is a hostile upgrade request (then no frames follow); otherwise a valid upgrade offering
 * `extensions`. `wellFramed`: every frame is valid RFC 6455, so the NATS layer sees exactly the bytes (and
 * the same rules as on TCP apply); `compressed`: some frames need the deflate extension to be accepted.
 */
export interface WsSpec {
  raw?: Buffer;
  extensions?: string;
  wellFramed: boolean;
  compressed: boolean;
}

export interface FuzzCase {
  family: Family;
  index: number;
  note: string;
  /** mqtt: the server's MQTT port (the expectation's PING/PONG are PINGREQ/PINGRESP there). */
  transport: "tcp" | "ws" | "mqtt";
  /** The writes, in order (WebSocket: raw frame bytes after the upgrade). */
  chunks: Buffer[];
  expect: Expectation;
  /** WebSocket: the upgrade request (raw, for hostile handshakes) or the extensions to offer. */
  ws?: WsSpec;
  /** MQTT: the protocol level the case's CONNECT asks for (how the server's answers are read). */
  mqtt?: { level: number };
  /** JetStream: requests to check (their inboxes are subscribed by the case's own bytes). */
  requests?: JsRequest[];
  /**
   * Echo cases: every message the connection must receive (on its own subscriptions, private subjects), as
   * `sid subject reply|- <header block as base64|-> <payload as base64>`, in any order within one publish and
   * in publish order across publishes (payloads are unique).
   */
  deliveries?: string[];
}

export interface SerializedCase extends Omit<FuzzCase, "chunks" | "ws"> {
  chunks: string[];
  ws?: Omit<WsSpec, "raw"> & { raw?: string };
  /** The chunks as text (latin1), for reading. */
  preview: string;
}

export function serializeCase(c: FuzzCase): SerializedCase {
  const text = Buffer.concat(c.chunks).toString("latin1");
  return {
    ...c,
    chunks: c.chunks.map((b) => b.toString("base64")),
    ws: c.ws && { ...c.ws, raw: c.ws.raw?.toString("base64") },
    preview: text.length > 4000 ? `${text.slice(0, 4000)}… (${text.length} bytes)` : text,
  };
}

export function deserializeCase(s: SerializedCase): FuzzCase {
  const { preview: _preview, ...rest } = s;
  return {
    ...rest,
    chunks: s.chunks.map((b) => Buffer.from(b, "base64")),
    ws: s.ws && { ...s.ws, raw: s.ws.raw === undefined ? undefined : Buffer.from(s.ws.raw, "base64") },
  };
}
