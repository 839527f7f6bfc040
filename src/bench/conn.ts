// One client connection speaking the raw NATS protocol over a Bun socket: the handshake (INFO, optional TLS,
// CONNECT, PING/PONG), writes that never lose bytes (a short write keeps the rest until `drain`), PING/PONG
// round trips, and the parser feeding the role's message handler. No nats.js: the bench must push far more
// messages per second than a general-purpose client does.

import type { Socket, SocketHandler } from "bun";
import { readFileSync } from "node:fs";
import { Parser, ProtocolError, type ProtocolHandler } from "./parser.ts";
import type { ServerUrl } from "./url.ts";

/** A failure the command reports on one line (exit status 1). */
export class BenchError extends Error {}

export interface ServerInfo {
  server_id?: string;
  server_name?: string;
  version?: string;
  go?: string;
  proto?: number;
  max_payload?: number;
  headers?: boolean;
  auth_required?: boolean;
  tls_required?: boolean;
  tls_available?: boolean;
  nonce?: string;
}

export interface TlsFiles {
  ca?: string;
  cert?: string;
  key?: string;
}

export interface ConnectSettings {
  /** Client name in CONNECT (shows in the server's /connz). */
  name: string;
  user?: string;
  password?: string;
  token?: string;
  tls: TlsFiles;
  timeoutMs: number;
}

/** Called for every MSG/HMSG: the parser holds the fields; the body starts at body[bodyStart]. */
export type MessageHandler = (p: Parser, body: Uint8Array, bodyStart: number) => void;

const PING = new TextEncoder().encode("PING\r\n");
const PONG = new TextEncoder().encode("PONG\r\n");
const encoder = new TextEncoder();

/** Microseconds since the epoch, with sub-microsecond resolution; comparable across threads and processes. */
export function nowMicros(): number {
  return (performance.timeOrigin + performance.now()) * 1000;
}

type State = "connecting" | "handshake" | "open" | "closed";

export class NatsConn implements ProtocolHandler {
  info: ServerInfo = {};
  /** Set by the role; messages before that are dropped. */
  onMessage: MessageHandler = () => {};
  /** After each chunk has been parsed (a responder writes its batched replies here). */
  afterRead: (() => void) | null = null;
  /** Called once when the connection fails after the handshake (server closed it, -ERR, protocol error). */
  onFailure: ((message: string) => void) | null = null;
  /** µs since the epoch at the start of the chunk being parsed: the receive time of every message in it. */
  readAt = 0;
  /** Bytes received and written (protocol included). */
  bytesIn = 0;
  bytesOut = 0;

  private socket: Socket<NatsConn> | null = null;
  private readonly parser = new Parser(this);
  private state: State = "connecting";
  private queue: Uint8Array[] = [];
  private drainWaiters: Array<() => void> = [];
  private pongWaiters: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];
  private handshakeDone: ((error: Error | null) => void) | null = null;
  private closing = false;

  private constructor(
    readonly url: ServerUrl,
    private readonly settings: ConnectSettings,
  ) {}

  /** Connects, reads INFO, upgrades to TLS if asked, sends CONNECT and waits for the PONG of a PING. */
  static async connect(url: ServerUrl, settings: ConnectSettings): Promise<NatsConn> {
    const conn = new NatsConn(url, settings);
    await conn.open();
    return conn;
  }

  private async open(): Promise<void> {
    const where = this.url.display;
    const done = new Promise<void>((resolve, reject) => {
      this.handshakeDone = (error) => {
        this.handshakeDone = null;
        if (error) reject(error);
        else resolve();
      };
    });
    const timer = setTimeout(() => {
      const secs = `${this.settings.timeoutMs / 1000}s`;
      this.failHandshake(this.info.server_id === undefined ? `no INFO from ${where} within ${secs} (is it a NATS server?)` : `no answer to CONNECT from ${where} within ${secs}`);
    }, this.settings.timeoutMs);
    try {
      this.socket = await Bun.connect<NatsConn>({ hostname: this.url.host, port: this.url.port, data: this, socket: handlers });
    } catch (error) {
      clearTimeout(timer);
      this.state = "closed";
      throw new BenchError(`cannot connect to ${where}: ${describeSocketError(error)}`);
    }
    this.socket.setNoDelay(true);
    this.state = "handshake";
    try {
      await done;
    } catch (error) {
      this.close();
      throw error;
    } finally {
      clearTimeout(timer);
    }
    this.state = "open";
  }

  private failHandshake(message: string): void {
    this.handshakeDone?.(new BenchError(message));
  }

  /** Sends CONNECT and a PING once INFO came (and TLS is up, when asked for). */
  private sendConnect(): void {
    const s = this.settings;
    const connect: Record<string, unknown> = {
      verbose: false,
      pedantic: false,
      tls_required: this.url.tls || this.info.tls_required === true,
      name: s.name,
      lang: "natter-bench",
      version: "0.1.0",
      protocol: 1,
      echo: true,
      headers: true,
      no_responders: true,
    };
    const user = s.user ?? this.url.user;
    const password = s.password ?? this.url.password;
    const token = s.token ?? this.url.token;
    if (user !== undefined) connect.user = user;
    if (password !== undefined) connect.pass = password;
    if (token !== undefined) connect.auth_token = token;
    this.writeText(`CONNECT ${JSON.stringify(connect)}\r\n`);
    this.write(PING);
    this.pongWaiters.push({
      resolve: () => this.handshakeDone?.(null),
      reject: (e) => this.handshakeDone?.(e),
    });
  }

  // ---- ProtocolHandler -------------------------------------------------------------------------------

  onMsg(p: Parser, body: Uint8Array, bodyStart: number): void {
    this.onMessage(p, body, bodyStart);
  }

  onPing(): void {
    this.write(PONG);
  }

  onPong(): void {
    this.pongWaiters.shift()?.resolve();
  }

  onInfo(json: string): void {
    let info: ServerInfo;
    try {
      info = JSON.parse(json) as ServerInfo;
    } catch {
      throw new ProtocolError("INFO is not JSON");
    }
    if (this.state !== "handshake" || this.info.server_id !== undefined) {
      this.info = { ...this.info, ...info }; // an update (cluster URLs, lame duck mode): nothing to do
      return;
    }
    this.info = info;
    if (info.tls_required || this.url.tls) {
      this.startTls();
      return;
    }
    this.sendConnect();
  }

  onErr(message: string): void {
    const text = `server error from ${this.url.display}: ${message}`;
    if (this.state === "handshake") {
      this.failHandshake(text);
      return;
    }
    this.fail(text);
  }

  // ---- TLS -------------------------------------------------------------------------------------------

  private startTls(): void {
    const files = this.settings.tls;
    const read = (file: string | undefined, what: string) => {
      if (!file) return undefined;
      try {
        return readFileSync(file, "utf8");
      } catch (error) {
        this.failHandshake(`cannot read TLS ${what} ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
        return null;
      }
    };
    const ca = read(files.ca, "CA");
    const cert = read(files.cert, "certificate");
    const key = read(files.key, "key");
    if (ca === null || cert === null || key === null) return;
    const plain = this.socket!;
    // The plaintext socket's handlers must stop feeding the parser: the TLS socket takes over.
    plain.data = detached;
    const [, secure] = plain.upgradeTLS<NatsConn>({
      data: this,
      tls: { ca, cert, key, serverName: this.url.host, rejectUnauthorized: true },
      socket: handlers,
    });
    this.socket = secure;
  }

  onHandshake(success: boolean, error: Error | null): void {
    if (this.state !== "handshake") return;
    if (!success || error) {
      this.failHandshake(`TLS handshake with ${this.url.display} failed: ${error?.message ?? "refused"}`);
      return;
    }
    this.sendConnect();
  }

  // ---- socket events ---------------------------------------------------------------------------------

  onData(chunk: Uint8Array): void {
    this.readAt = nowMicros();
    this.bytesIn += chunk.length;
    try {
      this.parser.feed(chunk);
    } catch (error) {
      const message = error instanceof ProtocolError
        ? `protocol error from ${this.url.display}: ${error.message} (is it a NATS server?)`
        : `${this.url.display}: ${(error as Error).message}`;
      if (this.state === "handshake") this.failHandshake(message);
      else this.fail(message);
      return;
    }
    this.afterRead?.();
  }

  onDrain(): void {
    while (this.queue.length > 0) {
      const head = this.queue[0]!;
      const written = this.socket!.write(head);
      if (written < 0) return;
      this.bytesOut += written;
      if (written < head.length) {
        this.queue[0] = head.subarray(written);
        return;
      }
      this.queue.shift();
    }
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w();
  }

  onClose(error?: Error): void {
    if (this.state === "closed") return;
    const wasHandshake = this.state === "handshake";
    this.state = "closed";
    const reason = error ? describeSocketError(error) : "closed by the server";
    const message = `connection to ${this.url.display} ${error ? `failed: ${reason}` : "was closed by the server"}`;
    const e = new BenchError(message);
    for (const w of this.pongWaiters.splice(0)) w.reject(e);
    for (const w of this.drainWaiters.splice(0)) w();
    if (wasHandshake) {
      this.handshakeDone?.(new BenchError(`${message}${this.info.server_id === undefined ? " before sending INFO (is it a NATS server?)" : ""}`));
      return;
    }
    if (!this.closing) this.fail(message);
  }

  private fail(message: string): void {
    const handler = this.onFailure;
    this.onFailure = null;
    if (handler) handler(message);
    this.close();
  }

  // ---- writing ---------------------------------------------------------------------------------------

  get isOpen(): boolean {
    return this.state === "open" || this.state === "handshake";
  }

  /** True while bytes wait for the socket to drain. */
  get blocked(): boolean {
    return this.queue.length > 0;
  }

  /** Writes `buf[start, end)`; what the socket does not take now is copied and sent on drain. */
  write(buf: Uint8Array, start = 0, end = buf.length): void {
    if (this.state === "closed" || this.socket === null) return;
    if (this.queue.length === 0) {
      const written = this.socket.write(buf, start, end - start);
      if (written < 0) return;
      this.bytesOut += written;
      start += written;
      if (start >= end) return;
    }
    this.queue.push(buf.slice(start, end));
  }

  writeText(text: string): void {
    this.write(encoder.encode(text));
  }

  /** Resolves once everything written so far has gone to the socket. */
  drained(): Promise<void> {
    if (this.queue.length === 0 || this.state === "closed") return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /** PING, resolved at its PONG: the server has handled everything this connection sent before. */
  ping(): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.state === "closed") {
        reject(new BenchError(`connection to ${this.url.display} is closed`));
        return;
      }
      this.pongWaiters.push({ resolve, reject });
      this.write(PING);
    });
  }

  close(): void {
    if (this.closing) return;
    this.closing = true;
    const socket = this.socket;
    this.state = "closed";
    if (socket) socket.end();
  }
}

/** Data of a plaintext socket after its TLS upgrade: events on it are ignored. */
const detached = null as unknown as NatsConn;

const handlers: SocketHandler<NatsConn> = {
  data(socket, chunk) {
    socket.data?.onData(chunk);
  },
  drain(socket) {
    socket.data?.onDrain();
  },
  close(socket, error) {
    socket.data?.onClose(error);
  },
  error(socket, error) {
    socket.data?.onClose(error);
  },
  end(socket) {
    socket.data?.onClose();
  },
  connectError(socket, error) {
    socket.data?.onClose(error);
  },
  handshake(socket, success, authorizationError) {
    socket.data?.onHandshake(success, authorizationError);
  },
};

export function describeSocketError(error: unknown): string {
  const e = error as NodeJS.ErrnoException;
  switch (e?.code) {
    case "ECONNREFUSED":
      return "connection refused";
    case "ENOTFOUND":
    case "EAI_NONAME":
    case "EAI_AGAIN":
    case "DNS_ENOTFOUND":
      return "host not found";
    case "ETIMEDOUT":
      return "timed out";
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return "host unreachable";
    case "ECONNRESET":
      return "connection reset";
    case "EPIPE":
      return "broken pipe";
  }
  const message = e?.message ?? String(error);
  return message.split("\n")[0]!;
}
