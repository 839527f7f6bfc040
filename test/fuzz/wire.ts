// The fuzzer's own clients (no vitest: run.ts uses them too). A strict reader of what the server sends:
// every byte must parse as INFO/MSG/HMSG/PING/PONG/+OK/-ERR in canonical form, sizes must match, and an
// -ERR text must be one of nats-server's. A TCP connection and a WebSocket connection (own framing, so
// the fuzzer controls every bit) feed it; both keep what was sent and received for reports.
import net from "node:net";
import zlib from "node:zlib";
import { ProtocolError } from "../../src/protocol/errors.ts";
import type { Rng } from "./prng.ts";
import { HOST } from "./server-process.ts";

export interface ServerFrame {
  op: "INFO" | "MSG" | "HMSG" | "PING" | "PONG" | "+OK" | "-ERR";
  subject?: string;
  sid?: string;
  reply?: string;
  headers?: Buffer;
  payload?: Buffer;
  /** -ERR text (without quotes). */
  text?: string;
  info?: Record<string, unknown>;
}

/** -ERR texts the server may send, and whether they close the connection. */
const KNOWN_ERRORS = new Map<string, boolean>(Object.values(ProtocolError).filter((e) => !e.text.includes("%q")).map((e) => [e.text, e.closes]));
const PERMISSION_ERROR = /^Permissions Violation for (Publish to|Subscription to|Publish with Reply of) "/;

export function errorCloses(text: string): boolean | undefined {
  if (KNOWN_ERRORS.has(text)) return KNOWN_ERRORS.get(text);
  if (PERMISSION_ERROR.test(text)) return false;
  return undefined;
}

/** Sizes are digits; leading zeros are the publisher's own (nats-server, like natter, copies the size token as sent). */
const SIZE = /^[0-9]{1,15}$/;

/** Parses the server's byte stream; a violation is recorded in `malformed` and stops parsing. */
export class ServerStreamReader {
  private buf: Buffer = Buffer.alloc(0);
  /** Chunks not yet joined to `buf`, while waiting for `need` bytes (a large payload arrives in many reads). */
  private parts: Buffer[] = [];
  private partsLength = 0;
  private need = 0;
  malformed: string | null = null;
  readonly frames: ServerFrame[] = [];
  /** How many frames to keep in `frames` (older ones are dropped; the counters below keep totals). */
  keep = 10_000;
  counts = { PONG: 0, MSG: 0, ERR: 0 };

  constructor(private readonly onFrame?: (f: ServerFrame) => void) {}

  /** Bytes of an incomplete frame still held. */
  get pendingBytes(): number {
    return this.buf.length + this.partsLength;
  }

  feed(chunk: Buffer): void {
    if (this.malformed !== null) return;
    if (this.need > 0) {
      this.parts.push(chunk);
      this.partsLength += chunk.length;
      if (this.buf.length + this.partsLength < this.need) return;
      chunk = Buffer.concat(this.parts);
      this.parts = [];
      this.partsLength = 0;
      this.need = 0;
    }
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    for (;;) {
      const buf = this.buf;
      const nl = buf.indexOf(0x0a);
      if (nl < 0) {
        if (buf.length > 1 << 20) this.bad(`control line longer than 1 MiB`);
        return;
      }
      if (nl === 0 || buf[nl - 1] !== 0x0d) return this.bad(`line not ended by CRLF: ${show(buf.subarray(0, nl + 1))}`);
      const line = buf.latin1Slice(0, nl - 1);
      let used = nl + 1;
      let frame: ServerFrame;
      const space = line.indexOf(" ");
      const op = space < 0 ? line : line.slice(0, space);
      if (op === "MSG" || op === "HMSG") {
        const args = line.slice(space + 1).split(" ");
        const isH = op === "HMSG";
        if (args.some((a) => a === "")) return this.bad(`empty argument in ${show(line)}`);
        const min = isH ? 4 : 3;
        if (args.length < min || args.length > min + 1) return this.bad(`wrong argument count in ${show(line)}`);
        if (!SIZE.test(args[args.length - 1]!) || (isH && !SIZE.test(args[args.length - 2]!))) return this.bad(`bad size in ${show(line)}`);
        const total = Number(args[args.length - 1]);
        const hdr = isH ? Number(args[args.length - 2]) : 0;
        if (hdr > total) return this.bad(`header size over total in ${show(line)}`);
        if (buf.length < used + total + 2) {
          this.need = used + total + 2; // payload still to come
          return;
        }
        if (buf[used + total] !== 0x0d || buf[used + total + 1] !== 0x0a) return this.bad(`payload of ${show(line)} not followed by CRLF`);
        const body = buf.subarray(used, used + total);
        frame = {
          op,
          subject: args[0],
          sid: args[1],
          reply: args.length === min + 1 ? args[2] : undefined,
          headers: isH ? Buffer.from(body.subarray(0, hdr)) : undefined,
          payload: Buffer.from(body.subarray(hdr)),
        };
        used += total + 2;
        this.counts.MSG++;
      } else if (op === "INFO") {
        if (!line.endsWith(" ")) return this.bad(`INFO without the trailing space: ${show(line)}`);
        let info: unknown;
        try {
          info = JSON.parse(line.slice(5));
        } catch {
          return this.bad(`INFO with bad JSON: ${show(line)}`);
        }
        if (info === null || typeof info !== "object") return this.bad(`INFO not an object: ${show(line)}`);
        frame = { op, info: info as Record<string, unknown> };
      } else if (line === "PING" || line === "PONG" || line === "+OK") {
        frame = { op: line };
        if (line === "PONG") this.counts.PONG++;
      } else if (op === "-ERR") {
        const m = /^-ERR '(.*)'$/.exec(line);
        if (!m) return this.bad(`malformed -ERR: ${show(line)}`);
        if (errorCloses(m[1]!) === undefined) return this.bad(`unknown -ERR text: ${show(line)}`);
        frame = { op: "-ERR", text: m[1]! };
        this.counts.ERR++;
      } else {
        return this.bad(`unknown server op: ${show(line)}`);
      }
      this.buf = buf.subarray(used);
      if (this.buf.length === 0) this.buf = Buffer.alloc(0);
      this.frames.push(frame);
      if (this.frames.length > this.keep) this.frames.splice(0, this.frames.length - this.keep);
      this.onFrame?.(frame);
    }
  }

  private bad(why: string): void {
    this.malformed = why;
  }
}

export function show(b: Buffer | string, max = 200): string {
  const s = typeof b === "string" ? b : b.latin1Slice(0, Math.min(b.length, max));
  return JSON.stringify(s.length > max ? `${s.slice(0, max)}…` : s);
}

/** Something that waits for conditions on a connection, re-checked on every arrival. */
export class Waitable {
  private waiters = new Set<() => void>();

  protected wake(): void {
    for (const w of [...this.waiters]) w();
  }

  /** Resolves with check()'s first non-undefined value, or undefined at the deadline. */
  waitFor<T>(check: () => T | undefined, timeoutMs: number): Promise<T | undefined> {
    return new Promise((resolve) => {
      const tryNow = () => {
        const v = check();
        if (v !== undefined) {
          cleanup();
          resolve(v);
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        resolve(undefined);
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.waiters.delete(tryNow);
      };
      this.waiters.add(tryNow);
      tryNow();
    });
  }
}

/** A client over which the fuzzer speaks: raw writes in, a strict reader out. */
export abstract class FuzzConn extends Waitable {
  readonly reader: ServerStreamReader;
  closed = false;
  /** When the server closed (or reset) the connection. */
  closedAt = 0;
  resetByPeer = false;
  receivedBytes = 0;
  /** The first bytes received (for reports). */
  receivedHead = "";
  readonly socket: net.Socket;
  protected connected: Promise<boolean>;

  constructor(port: number, onFrame?: (f: ServerFrame) => void) {
    super();
    this.reader = new ServerStreamReader(onFrame);
    const socket = net.connect({ host: HOST, port });
    socket.setNoDelay(true);
    this.socket = socket;
    this.connected = new Promise((resolve) => {
      socket.once("connect", () => resolve(true));
      socket.once("error", () => resolve(false));
    });
    socket.on("error", (err: NodeJS.ErrnoException) => {
      // Writing on after the server closed: its RST can discard what it sent last (an -ERR) before we read it.
      if (err.code === "ECONNRESET" || err.code === "EPIPE") this.resetByPeer = true;
      this.markClosed();
    });
    socket.on("close", () => this.markClosed());
    socket.on("end", () => {
      // The server finished sending: end our side too, so the socket closes.
      socket.end();
    });
  }

  protected markClosed(): void {
    if (this.closed) return;
    this.closed = true;
    this.closedAt = Date.now();
    this.wake();
  }

  protected received(data: Buffer): void {
    this.receivedBytes += data.length;
    if (this.receivedHead.length < 2048) this.receivedHead += data.latin1Slice(0, Math.min(data.length, 2048 - this.receivedHead.length));
    this.reader.feed(data);
    this.wake();
  }

  /** Writes raw bytes; resolves when they were handed to the kernel (or the socket is gone). */
  writeRaw(data: Buffer): Promise<void> {
    if (this.socket.destroyed || this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      try {
        this.socket.write(data, () => resolve());
      } catch {
        resolve();
      }
    });
  }

  /** Sends NATS protocol bytes (as-is on TCP, in one binary frame on WebSocket). */
  abstract send(data: Buffer | string): Promise<void>;

  /** Waits until the server's INFO arrived (false if it did not within the deadline). */
  async ready(timeoutMs: number): Promise<boolean> {
    if (!(await this.connected)) return false;
    const ok = await this.waitFor(() => (this.reader.frames.some((f) => f.op === "INFO") ? true : this.closed || this.reader.malformed !== null ? false : undefined), timeoutMs);
    return ok === true;
  }

  waitClosed(timeoutMs: number): Promise<boolean> {
    return this.waitFor(() => (this.closed ? true : undefined), timeoutMs).then((v) => v === true);
  }

  destroy(): void {
    this.socket.destroy();
    this.markClosed();
  }
}

export class TcpConn extends FuzzConn {
  constructor(port: number, onFrame?: (f: ServerFrame) => void) {
    super(port, onFrame);
    this.socket.on("data", (d: Buffer) => this.received(d));
  }

  send(data: Buffer | string): Promise<void> {
    return this.writeRaw(typeof data === "string" ? Buffer.from(data, "latin1") : data);
  }
}

// ---- WebSocket ------------------------------------------------------------------------------------

export const Op = { cont: 0x0, text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa } as const;

export interface FrameSpec {
  opcode: number;
  payload: Buffer;
  fin?: boolean;
  rsv1?: boolean;
  rsv2?: boolean;
  rsv3?: boolean;
  /** Default true: clients must mask. */
  masked?: boolean;
  /** Length encoding to use: "auto" (minimal), 16 or 64 bits even for small payloads. */
  lengthForm?: "auto" | "16" | "64";
  /** Declare this length instead of the payload's (a lying frame header). */
  declaredLength?: number | bigint;
  /** Send only the first n bytes of the encoded frame. */
  truncateTo?: number;
}

/** Encodes one frame; the mask comes from `rng` so a case is reproducible. */
export function encodeWsFrame(spec: FrameSpec, rng: Rng): Buffer {
  const { opcode, payload, fin = true, rsv1 = false, rsv2 = false, rsv3 = false, masked = true, lengthForm = "auto" } = spec;
  const declared = spec.declaredLength ?? payload.length;
  const head: number[] = [(fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | (rsv2 ? 0x20 : 0) | (rsv3 ? 0x10 : 0) | (opcode & 0x0f)];
  const m = masked ? 0x80 : 0;
  const big = typeof declared === "bigint" ? declared : BigInt(declared);
  if (lengthForm === "auto" && big < 126n) head.push(m | Number(big));
  else if ((lengthForm === "auto" && big < 65536n) || (lengthForm === "16" && big < 65536n)) head.push(m | 126, Number(big >> 8n) & 0xff, Number(big) & 0xff);
  else {
    head.push(m | 127);
    for (let i = 7; i >= 0; i--) head.push(Number((big >> BigInt(i * 8)) & 0xffn));
  }
  let body: Buffer = payload;
  let maskKey: Buffer = Buffer.alloc(0);
  if (masked) {
    maskKey = rng.bytes(4);
    body = Buffer.allocUnsafe(payload.length);
    for (let i = 0; i < payload.length; i++) body[i] = payload[i]! ^ maskKey[i & 3]!;
  }
  const out = Buffer.concat([Buffer.from(head), maskKey, body]);
  return spec.truncateTo !== undefined ? out.subarray(0, spec.truncateTo) : out;
}

const DEFLATE_TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);

/** permessage-deflate body: raw deflate, sync flush, without the trailing 00 00 ff ff. */
export function deflateBody(data: Buffer): Buffer {
  const out = zlib.deflateRawSync(data, { finishFlush: zlib.constants.Z_SYNC_FLUSH });
  return out.subarray(-4).equals(DEFLATE_TAIL) ? out.subarray(0, out.length - 4) : out;
}

export interface WsHandshakeSpec {
  /** The whole request (for hostile handshakes); default: a valid upgrade built from the fields below. */
  raw?: Buffer;
  extensions?: string;
  key?: string;
}

export class WsConn extends FuzzConn {
  status = 0;
  upgraded = false;
  negotiatedDeflate = false;
  /** Bytes after the HTTP answer (frames), before they are decoded. */
  private wsBuf: Buffer = Buffer.alloc(0);
  private httpBuf: Buffer = Buffer.alloc(0);
  private fragments: Buffer[] = [];
  private fragmentCompressed = false;
  /** The server sent a close frame. */
  gotCloseFrame = false;
  /** A violation of RFC 6455 by the server's frames. */
  frameError: string | null = null;
  answered = false;

  constructor(
    port: number,
    private readonly rng: Rng,
    onFrame?: (f: ServerFrame) => void,
  ) {
    super(port, onFrame);
    this.socket.on("data", (d: Buffer) => this.onData(d));
  }

  /** Sends the upgrade request; resolves with the HTTP status (0 when the connection closed first). */
  async handshake(spec: WsHandshakeSpec, timeoutMs: number): Promise<number> {
    if (!(await this.connected)) return 0;
    let req = spec.raw;
    if (req === undefined) {
      const lines = [
        "GET / HTTP/1.1",
        `Host: ${HOST}`,
        "Upgrade: websocket",
        "Connection: Upgrade",
        `Sec-WebSocket-Key: ${spec.key ?? this.rng.bytes(16).toString("base64")}`,
        "Sec-WebSocket-Version: 13",
      ];
      if (spec.extensions) lines.push(`Sec-WebSocket-Extensions: ${spec.extensions}`);
      req = Buffer.from(lines.join("\r\n") + "\r\n\r\n", "latin1");
    }
    await this.writeRaw(req);
    await this.waitFor(() => (this.answered || this.closed ? true : undefined), timeoutMs);
    return this.status;
  }

  private onData(d: Buffer): void {
    this.receivedBytes += d.length;
    if (!this.answered) {
      this.httpBuf = Buffer.concat([this.httpBuf, d]);
      const end = this.httpBuf.indexOf("\r\n\r\n");
      if (end < 0) {
        this.wake();
        return;
      }
      const head = this.httpBuf.latin1Slice(0, end).split("\r\n");
      this.status = Number(head[0]?.split(" ")[1] ?? 0);
      this.upgraded = this.status === 101;
      this.negotiatedDeflate = head.some((h) => /^sec-websocket-extensions:.*permessage-deflate/i.test(h));
      this.answered = true;
      const rest = this.httpBuf.subarray(end + 4);
      this.httpBuf = Buffer.alloc(0);
      if (this.upgraded && rest.length > 0) this.onFrames(rest);
      this.wake();
      return;
    }
    if (this.upgraded) this.onFrames(d);
    this.wake();
  }

  private wsParts: Buffer[] = [];
  private wsPartsLength = 0;
  private wsNeed = 0;

  private onFrames(chunk: Buffer): void {
    if (this.wsNeed > 0) {
      // A large frame arrives in many reads: join once it is complete.
      this.wsParts.push(chunk);
      this.wsPartsLength += chunk.length;
      if (this.wsBuf.length + this.wsPartsLength < this.wsNeed) return;
      chunk = Buffer.concat(this.wsParts);
      this.wsParts = [];
      this.wsPartsLength = 0;
      this.wsNeed = 0;
    }
    this.wsBuf = this.wsBuf.length ? Buffer.concat([this.wsBuf, chunk]) : chunk;
    for (;;) {
      const b = this.wsBuf;
      if (b.length < 2 || this.frameError !== null) return;
      const fin = (b[0]! & 0x80) !== 0;
      const rsv1 = (b[0]! & 0x40) !== 0;
      const opcode = b[0]! & 0x0f;
      if ((b[1]! & 0x80) !== 0) return this.frameFail("server frame is masked");
      if ((b[0]! & 0x30) !== 0) return this.frameFail("server frame sets rsv2/rsv3");
      if (rsv1 && !this.negotiatedDeflate) return this.frameFail("compressed server frame without negotiation");
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
      if (b.length < off + len) {
        this.wsNeed = off + len;
        return;
      }
      const payload = Buffer.from(b.subarray(off, off + len));
      this.wsBuf = b.subarray(off + len);
      if (opcode >= 0x8) {
        if (!fin || len > 125) return this.frameFail("bad control frame from the server");
        if (opcode === Op.close) {
          this.gotCloseFrame = true;
          continue;
        }
        if (opcode === Op.ping) {
          void this.writeRaw(encodeWsFrame({ opcode: Op.pong, payload }, this.rng));
          continue;
        }
        if (opcode === Op.pong) continue;
        return this.frameFail(`unknown control opcode ${opcode}`);
      }
      if (opcode === Op.text) return this.frameFail("the server sent a text frame (it sends binary only)");
      if (opcode !== Op.binary && opcode !== Op.cont) return this.frameFail(`unknown data opcode ${opcode}`);
      if (opcode !== Op.cont) this.fragmentCompressed = rsv1;
      this.fragments.push(payload);
      if (!fin) continue;
      let data = Buffer.concat(this.fragments);
      this.fragments = [];
      if (this.fragmentCompressed) {
        try {
          data = zlib.inflateRawSync(Buffer.concat([data, DEFLATE_TAIL]), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
        } catch (error) {
          return this.frameFail(`server sent bad deflate data: ${(error as Error).message}`);
        }
      }
      this.receivedHead.length < 2048 && (this.receivedHead += data.latin1Slice(0, Math.min(data.length, 2048 - this.receivedHead.length)));
      this.reader.feed(data);
    }
  }

  private frameFail(why: string): void {
    this.frameError = why;
  }

  /** One valid binary frame (masked) carrying `data`. */
  send(data: Buffer | string): Promise<void> {
    const payload = typeof data === "string" ? Buffer.from(data, "latin1") : data;
    return this.writeRaw(encodeWsFrame({ opcode: Op.binary, payload }, this.rng));
  }
}

// ---- a small well-behaved client (canary, JetStream setup and cleanup) ----------------------------

/** A plain NATS client over TcpConn: answers server PINGs, request/reply with per-request inboxes. */
export class NatsClient {
  readonly conn: TcpConn;
  private nextId = 0;
  private readonly waiting = new Map<string, (f: ServerFrame) => void>();
  private pongWaiters: (() => void)[] = [];

  constructor(
    port: number,
    private readonly inboxPrefix: string,
    private readonly onMessage?: (f: ServerFrame, client: NatsClient) => void,
  ) {
    this.conn = new TcpConn(port, (f) => this.onFrame(f));
    this.conn.reader.keep = 16;
  }

  async start(timeoutMs = 5_000): Promise<void> {
    if (!(await this.conn.ready(timeoutMs))) throw new Error(`no INFO from the server (${this.inboxPrefix})`);
    await this.conn.send(`CONNECT {"verbose":false,"pedantic":false,"headers":true,"protocol":1,"name":"${this.inboxPrefix}"}\r\nSUB ${this.inboxPrefix}.> 1\r\n`);
    if (!(await this.ping(timeoutMs))) throw new Error(`no PONG from the server (${this.inboxPrefix})`);
  }

  private onFrame(f: ServerFrame): void {
    if (f.op === "PING") void this.conn.send("PONG\r\n");
    else if (f.op === "PONG") this.pongWaiters.shift()?.();
    else if (f.op === "MSG" || f.op === "HMSG") {
      const w = this.waiting.get(f.subject!);
      if (w) {
        this.waiting.delete(f.subject!);
        w(f);
      } else this.onMessage?.(f, this);
    }
  }

  /** PING → PONG; false at the deadline or when closed. */
  ping(timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      if (this.conn.closed) return resolve(false);
      const timer = setTimeout(() => {
        const i = this.pongWaiters.indexOf(done);
        if (i >= 0) this.pongWaiters.splice(i, 1);
        resolve(false);
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        resolve(true);
      };
      this.pongWaiters.push(done);
      void this.conn.send("PING\r\n");
    });
  }

  /** Publishes with a fresh reply inbox; resolves with the answer, or null at the deadline. */
  request(subject: string, body: Buffer | string, timeoutMs: number, headers?: Buffer): Promise<ServerFrame | null> {
    const inbox = `${this.inboxPrefix}.${++this.nextId}`;
    const data = typeof body === "string" ? Buffer.from(body) : body;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(inbox);
        resolve(null);
      }, timeoutMs);
      this.waiting.set(inbox, (f) => {
        clearTimeout(timer);
        resolve(f);
      });
      const line = headers
        ? `HPUB ${subject} ${inbox} ${headers.length} ${headers.length + data.length}\r\n`
        : `PUB ${subject} ${inbox} ${data.length}\r\n`;
      void this.conn.send(Buffer.concat([Buffer.from(line), ...(headers ? [headers] : []), data, Buffer.from("\r\n")]));
    });
  }

  publish(subject: string, body: Buffer | string, reply?: string): Promise<void> {
    const data = typeof body === "string" ? Buffer.from(body) : body;
    return this.conn.send(Buffer.concat([Buffer.from(`PUB ${subject}${reply ? ` ${reply}` : ""} ${data.length}\r\n`), data, Buffer.from("\r\n")]));
  }

  /** A JSON API request; the parsed answer (or null on timeout / unparsable answer). */
  async api(subject: string, body: unknown, timeoutMs: number): Promise<Record<string, unknown> | null> {
    const f = await this.request(subject, body === undefined ? "" : JSON.stringify(body), timeoutMs);
    if (f === null) return null;
    try {
      return JSON.parse(f.payload!.toString()) as Record<string, unknown>;
    } catch {
      return null;
    }
  }

  close(): void {
    this.conn.destroy();
  }
}
