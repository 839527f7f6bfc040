// A raw WebSocket client for wire tests: it does the HTTP upgrade itself so a test controls every frame
// (split an op across frames, text frames, fragmented messages, permessage-deflate), and feeds the server's
// decoded bytes to a RawConnection, the same NATS frame reader the TCP raw client uses.
import { randomBytes } from "node:crypto";
import net from "node:net";
import zlib from "node:zlib";
import { closeAfterTest, RawConnection, type RawOptions } from "./raw.ts";

export const WsOpcode = { continuation: 0x0, text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa } as const;
export type WsOpcode = (typeof WsOpcode)[keyof typeof WsOpcode];

export interface WsFrameOptions {
  opcode?: WsOpcode;
  fin?: boolean;
  /** permessage-deflate "compressed" bit. */
  rsv1?: boolean;
}

/** A frame as received from the server. */
export interface WsFrame {
  fin: boolean;
  rsv1: boolean;
  opcode: number;
  payload: Buffer;
}

export interface WsHandshake {
  status: number;
  statusLine: string;
  /** Response headers, lower-cased names. */
  headers: Record<string, string>;
}

const DEFLATE_TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);

/** Encodes one client frame (always masked, as RFC 6455 requires of clients). */
export function encodeFrame(payload: Buffer, opts: WsFrameOptions = {}): Buffer {
  const { opcode = WsOpcode.binary, fin = true, rsv1 = false } = opts;
  const len = payload.length;
  const head: number[] = [(fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | opcode];
  if (len < 126) head.push(0x80 | len);
  else if (len < 65536) head.push(0x80 | 126, len >> 8, len & 0xff);
  else {
    head.push(0x80 | 127, 0, 0, 0, 0);
    head.push((len >>> 24) & 0xff, (len >>> 16) & 0xff, (len >>> 8) & 0xff, len & 0xff);
  }
  const mask = randomBytes(4);
  const masked = Buffer.alloc(len);
  for (let i = 0; i < len; i++) masked[i] = payload[i]! ^ mask[i & 3]!;
  return Buffer.concat([Buffer.from(head), mask, masked]);
}

/** permessage-deflate body for `data`: raw deflate, sync flush, without the final 00 00 ff ff. */
export function deflateMessage(data: Buffer): Buffer {
  const out = zlib.deflateRawSync(data, { finishFlush: zlib.constants.Z_SYNC_FLUSH });
  return out.subarray(0, out.length - (out.subarray(-4).equals(DEFLATE_TAIL) ? 4 : 0));
}

export function inflateMessage(data: Buffer): Buffer {
  return zlib.inflateRawSync(Buffer.concat([data, DEFLATE_TAIL]), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
}

export class RawWsClient extends RawConnection {
  /** Every data frame received from the server, as it came (before inflation). */
  readonly wsFrames: WsFrame[] = [];
  handshake!: WsHandshake;
  private wsBuf: Buffer = Buffer.alloc(0);
  private fragments: Buffer[] = [];
  private fragmentCompressed = false;

  constructor(
    readonly socket: net.Socket,
    opts: RawOptions = {},
  ) {
    super(() => {}, opts);
    // Each send() of the NATS layer goes out as one binary frame.
    this.writeFn = (b) => this.sendFrame(b);
  }

  /** Sends one frame carrying `data` (a string is encoded latin1). */
  sendFrame(data: string | Uint8Array, opts: WsFrameOptions = {}): void {
    const payload = typeof data === "string" ? Buffer.from(data, "latin1") : Buffer.from(data);
    if (!this.socket.destroyed) this.socket.write(encodeFrame(payload, opts));
  }

  /** Sends `data` as one compressed (permessage-deflate) message. */
  sendCompressed(data: string | Uint8Array, opcode: WsOpcode = WsOpcode.binary): void {
    const payload = typeof data === "string" ? Buffer.from(data, "latin1") : Buffer.from(data);
    this.sendFrame(deflateMessage(payload), { opcode, rsv1: true });
  }

  /** Feeds bytes that follow the HTTP response (WebSocket frames). */
  feedWs(chunk: Buffer): void {
    this.wsBuf = this.wsBuf.length ? Buffer.concat([this.wsBuf, chunk]) : chunk;
    for (;;) {
      const b = this.wsBuf;
      if (b.length < 2) return;
      const fin = (b[0]! & 0x80) !== 0;
      const rsv1 = (b[0]! & 0x40) !== 0;
      const opcode = b[0]! & 0x0f;
      const masked = (b[1]! & 0x80) !== 0;
      let len = b[1]! & 0x7f;
      let off = 2;
      if (len === 126) {
        if (b.length < 4) return;
        len = b.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (b.length < 10) return;
        len = Number(b.readBigUInt64BE(2));
        off = 10;
      }
      const maskKey = masked ? b.subarray(off, off + 4) : undefined;
      if (masked) off += 4;
      if (b.length < off + len) return;
      let payload = Buffer.from(b.subarray(off, off + len));
      if (maskKey) for (let i = 0; i < payload.length; i++) payload[i] = payload[i]! ^ maskKey[i & 3]!;
      this.wsBuf = b.subarray(off + len);
      this.wsFrames.push({ fin, rsv1, opcode, payload });

      if (opcode === WsOpcode.ping) {
        this.sendFrame(payload, { opcode: WsOpcode.pong });
        continue;
      }
      if (opcode === WsOpcode.pong) continue;
      if (opcode === WsOpcode.close) {
        this.socket.end();
        this.markClosed();
        continue;
      }
      if (opcode !== WsOpcode.continuation) this.fragmentCompressed = rsv1;
      this.fragments.push(payload);
      if (!fin) continue;
      payload = Buffer.concat(this.fragments);
      this.fragments = [];
      this.feed(this.fragmentCompressed ? inflateMessage(payload) : payload);
    }
  }

  close(): void {
    this.socket.destroy();
  }
}

export interface WsConnectOptions extends RawOptions {
  /** Sec-WebSocket-Extensions to offer, e.g. "permessage-deflate". */
  extensions?: string;
  origin?: string;
  path?: string;
  timeoutMs?: number;
  /** Wait for the server's INFO before returning (default true). */
  waitInfo?: boolean;
}

/**
 * Opens a WebSocket to the server's ws port and returns after the upgrade (and the INFO, by default).
 * A non-101 answer resolves too: check `handshake.status`.
 */
export async function connectRawWs(port: number, opts: WsConnectOptions = {}): Promise<RawWsClient> {
  const host = opts.host ?? "127.0.0.1";
  const timeoutMs = opts.timeoutMs ?? 5_000;
  const socket = net.connect({ host, port });
  socket.setNoDelay(true);
  const c = closeAfterTest(new RawWsClient(socket, opts));
  const key = randomBytes(16).toString("base64");
  const handshake = await new Promise<WsHandshake>((resolve, reject) => {
    let buf = Buffer.alloc(0);
    let done = false;
    const timer = setTimeout(() => fail(new Error(`no WebSocket upgrade answer within ${timeoutMs} ms: ${JSON.stringify(buf.toString("latin1"))}`)), timeoutMs);
    const fail = (err: Error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      reject(err);
    };
    socket.on("error", (err) => {
      c.markClosed();
      fail(err);
    });
    socket.on("close", () => {
      c.markClosed();
      fail(new Error(`closed during the WebSocket upgrade: ${JSON.stringify(buf.toString("latin1"))}`));
    });
    socket.on("connect", () => {
      const lines = [
        `GET ${opts.path ?? "/"} HTTP/1.1`,
        `Host: ${host}:${port}`,
        "Upgrade: websocket",
        "Connection: Upgrade",
        `Sec-WebSocket-Key: ${key}`,
        "Sec-WebSocket-Version: 13",
      ];
      if (opts.extensions) lines.push(`Sec-WebSocket-Extensions: ${opts.extensions}`);
      if (opts.origin) lines.push(`Origin: ${opts.origin}`);
      socket.write(lines.join("\r\n") + "\r\n\r\n");
    });
    const onData = (d: Buffer) => {
      if (done) {
        c.feedWs(d);
        return;
      }
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf("\r\n\r\n");
      if (end < 0) return;
      const head = buf.subarray(0, end).toString("latin1").split("\r\n");
      const statusLine = head[0] ?? "";
      const headers: Record<string, string> = {};
      for (const h of head.slice(1)) {
        const i = h.indexOf(":");
        if (i > 0) headers[h.slice(0, i).trim().toLowerCase()] = h.slice(i + 1).trim();
      }
      done = true;
      clearTimeout(timer);
      resolve({ status: Number(statusLine.split(" ")[1]), statusLine, headers });
      const rest = buf.subarray(end + 4);
      if (rest.length) c.feedWs(rest);
    };
    socket.on("data", onData);
  });
  c.handshake = handshake;
  if (handshake.status === 101 && opts.waitInfo !== false) await c.expectLine(/^INFO /, timeoutMs);
  return c;
}
