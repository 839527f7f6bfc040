// One configured remote (a hub this server dials): its URLs, the connection to it when there is one,
// and redialing with backoff when there is none.
//
// - URLs: the configured ones (shuffled unless no_randomize), plus what the hub's INFO lists in
//   leafnode_urls (ws_connect_urls for a WebSocket remote): the other members of the hub's cluster.
//   Each dial takes the next URL in turn.
// - Redial: `reconnect` (1 s) after a connection closes, then doubling per failed dial up to
//   MAX_BACKOFF_MS, with jitter; back to the start once a connection opens. After a loop or a cluster
//   name clash reported by the hub, the next dial waits 30 s (as nats-server).
// - Interest is sent again in full on every new connection (the hub forgot it when the old one closed).
import type { Socket, TLSOptions } from "bun";
import type { Server } from "../server.ts";
import type { Account } from "../accounts/account.ts";
import type { LeafConnection, LeafSocket } from "./connection.ts";
import { parseLeafUrl, type LeafUrl, type RemoteLeafOptions } from "./options.ts";
import { dialWebSocket } from "./websocket.ts";
import { tlsNameOf } from "./tls.ts";

const MAX_BACKOFF_MS = 10_000;
/** How long a dial may take to connect (nats-server's DEFAULT_ROUTE_DIAL is 1 s; a little more on a busy box). */
const DIAL_TIMEOUT_MS = 2_000;

/** What a remote needs from the leafnodes manager. */
export interface RemoteOwner {
  readonly server: Server;
  readonly reconnectIntervalMs: number;
  /** Wraps a dialed socket in a LeafConnection (solicited) and registers it. */
  attach(remote: LeafRemote, socket: LeafSocket, url: LeafUrl): LeafConnection;
  readonly stopped: boolean;
}

export interface LeafTcpData {
  conn: LeafConnection | null;
}

export class LeafRemote {
  /** Configured URLs first, then those the hub told us about. */
  urls: LeafUrl[];
  private next = 0;
  conn: LeafConnection | null = null;
  /** The URL of the current (or last) connection. */
  url: LeafUrl | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private failures = 0;
  /** It was connected once (failed dials are then reported by reconnect_error_reports). */
  private everConnected = false;
  /** Set by a loop report: the next dial waits this long instead. */
  delayOverrideMs = 0;
  dialing = false;

  constructor(
    private readonly owner: RemoteOwner,
    readonly options: RemoteLeafOptions,
    /** The local account this remote's connections carry. */
    readonly account: Account,
  ) {
    const configured = options.urls.map((u) => parseLeafUrl(u));
    if (!options.noRandomize) shuffle(configured);
    this.configured = configured;
    this.urls = [...configured];
    this.tlsName = tlsNameOf(configured);
  }

  /** A host name among the configured URLs: the TLS server name checked when dialing an IP (./tls.ts). */
  readonly tlsName: string;

  private readonly configured: LeafUrl[];

  get isWebSocket(): boolean {
    return this.configured[0]!.transport === "ws";
  }

  /** For logs: the configured URLs without credentials. */
  get display(): string {
    return this.configured.map((u) => u.display).join(", ");
  }

  start(): void {
    this.dial();
  }

  stop(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.conn?.close("Server Shutdown", null);
  }

  /** The hub's INFO listed these host:port URLs (other members of its cluster): dial them too, in turn. */
  learnUrls(hostports: string[]): void {
    const scheme = this.isWebSocket ? "ws" : "nats-leaf";
    const learned: LeafUrl[] = [];
    for (const hp of hostports) {
      let u: LeafUrl;
      try {
        u = parseLeafUrl(`${scheme}://${hp}`);
      } catch {
        continue;
      }
      if (this.configured.some((c) => c.host === u.host && c.port === u.port)) continue;
      // Credentials of the configured URL go along (nats-server keeps the user/password for bare URLs).
      const first = this.configured[0]!;
      learned.push({ ...u, user: first.user, password: first.password, path: first.path });
    }
    this.urls = [...learned, ...this.configured];
    if (this.next >= this.urls.length) this.next = 0;
  }

  /** The connection closed: dial again after the reconnect interval (or a loop's delay). */
  connectionClosed(conn: LeafConnection, wasOpen: boolean): void {
    if (this.conn !== conn) return;
    this.conn = null;
    if (this.owner.stopped) return;
    if (wasOpen) this.failures = 0;
    else this.failures++;
    this.schedule();
  }

  connectionOpened(): void {
    this.failures = 0;
    this.everConnected = true;
  }

  private schedule(): void {
    if (this.timer !== null || this.owner.stopped) return;
    const base = this.owner.reconnectIntervalMs;
    let delay = this.failures === 0 ? base : Math.min(base * 2 ** (this.failures - 1), Math.max(base, MAX_BACKOFF_MS));
    delay = delay * (1 + Math.random() * 0.2);
    if (this.delayOverrideMs > 0) {
      delay = this.delayOverrideMs;
      this.delayOverrideMs = 0;
    }
    this.owner.server.log.debug(`Leafnode remote ${this.display}: dialing again in ${Math.round(delay)} ms`);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.dial();
    }, delay);
  }

  private dial(): void {
    if (this.owner.stopped || this.conn !== null || this.dialing) return;
    const url = this.urls[this.next % this.urls.length]!;
    this.next = (this.next + 1) % this.urls.length;
    this.url = url;
    this.dialing = true;
    const log = this.owner.server.log;
    log.debug(`Trying to connect as leafnode to remote server on ${url.display}`);
    const failed = (why: string) => {
      if (!this.dialing) return;
      this.dialing = false;
      this.failures++;
      const text = `Error trying to connect as leafnode to remote server ${JSON.stringify(`${url.host}:${url.port}`)} (attempt ${this.failures}): ${why}`;
      // As nats-server (shouldReportConnectErr): the first failure and every Nth are errors, the rest debug
      // lines; N is connect_error_reports until the remote was connected once, reconnect_error_reports after.
      const o = this.owner.server.options;
      const every = this.everConnected ? o.reconnectErrorReports : o.connectErrorReports;
      if (this.failures === 1 || this.failures % every === 0) log.error(text);
      else log.debug(text);
      this.schedule();
    };
    const connected = (socket: LeafSocket): LeafConnection | null => {
      if (!this.dialing) {
        socket.end(); // timed out meanwhile
        return null;
      }
      this.dialing = false;
      if (this.owner.stopped) {
        socket.end();
        return null;
      }
      const conn = this.owner.attach(this, socket, url);
      this.conn = conn;
      return conn;
    };
    const timeout = setTimeout(() => failed("dial timeout"), DIAL_TIMEOUT_MS);
    if (url.transport === "ws") {
      dialWebSocket(url, this.options, {
        opened: (socket) => {
          clearTimeout(timeout);
          return connected(socket);
        },
        failed: (why) => {
          clearTimeout(timeout);
          failed(why);
        },
      }, log);
      return;
    }
    Bun.connect<LeafTcpData>({
      hostname: url.host,
      port: url.port,
      data: { conn: null },
      socket: {
        open(socket) {
          clearTimeout(timeout);
          socket.setNoDelay(true);
          socket.data = { conn: connected(new TcpLeafSocket(socket)) }; // a new object: never share `data`
        },
        data: (socket, data) => socket.data.conn?.onRead(data),
        drain: (socket) => socket.data.conn?.onDrain(),
        close: (socket) => socket.data.conn?.onSocketClosed(),
        error: (socket, error) => {
          log.debug(`Leafnode remote ${url.display}: socket error: ${error.message}`);
          socket.data.conn?.onSocketClosed();
        },
        connectError: (_socket, error) => {
          clearTimeout(timeout);
          failed(error.message);
        },
      },
    }).catch((error: Error) => {
      clearTimeout(timeout);
      failed(error.message);
    });
  }
}

/** A leaf connection over TCP (Bun.connect or Bun.listen), plain or TLS. Bun keeps nothing of a short write. */
export class TcpLeafSocket implements LeafSocket {
  readonly kind = "tcp";
  readonly remoteAddress: string;
  readonly remotePort: number;
  tls = false;

  /** The plain socket, or after startTls the TLS socket over it. */
  constructor(private socket: Socket<LeafTcpData>) {
    this.remoteAddress = socket.remoteAddress;
    this.remotePort = (socket as unknown as { remotePort?: number }).remotePort ?? 0;
  }

  /**
   * TLS on this socket from now on (server or client side, as the socket was accepted or dialed; see
   * ./tls.ts). Bun hands back both ends: `raw` stays on the plain handlers and sees ciphertext, so it
   * is detached from the connection; only `secure` reaches it. `done` is called once: with the
   * handshake's outcome, or (false, timeout) past `timeoutMs`.
   */
  startTls(conn: LeafConnection, tls: TLSOptions, timeoutMs: number, done: (success: boolean, error: Error | null) => void): void {
    let settled = false;
    const settle = (success: boolean, error: Error | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      done(success, error);
    };
    const timer = setTimeout(() => settle(false, new Error("TLS handshake timeout")), timeoutMs);
    const [raw, secure] = this.socket.upgradeTLS<LeafTcpData>({
      data: { conn },
      tls,
      socket: {
        handshake: (_socket, success, authorizationError) => settle(success, authorizationError),
        data: (socket, data) => socket.data.conn?.onRead(data),
        drain: (socket) => socket.data.conn?.onDrain(),
        close: (socket) => {
          settle(false, new Error("connection closed during the TLS handshake"));
          socket.data.conn?.onSocketClosed();
        },
        error: (socket, error) => {
          settle(false, error);
          socket.data.conn?.onSocketClosed();
        },
      },
    });
    raw.data = { conn: null };
    this.socket = secure;
    this.tls = true;
  }

  write(buf: Buffer, start: number, end: number): number {
    const written = this.socket.write(buf, start, end - start);
    return written < 0 ? 0 : written;
  }

  end(): void {
    this.socket.end();
  }
}

function shuffle<T>(list: T[]): void {
  for (let i = list.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [list[i], list[j]] = [list[j]!, list[i]!];
  }
}
