import type { Socket, SocketHandler, TCPSocketListener } from "bun";
import type { Connection } from "../connection.ts";
import type { Server } from "../server.ts";
import type { Transport } from "./transport.ts";
import { CloseReason, ProtocolError } from "../protocol/errors.ts";
import { checkPeerCertificate, handshakeRefusal, loadServerTls, readsPeerCertificate, TlsRateCounter, type ServerTls } from "../auth/tls.ts";
import type { CertificateIdentity } from "../auth/x509.ts";
import type { SniffedTls } from "./sniffed-tls.ts";
import { optionalModule } from "../optional-modules.ts";
import { releaseRead } from "./read-memory.ts";

/** The first byte of a TLS record carrying a handshake (a ClientHello): the client chose TLS. */
const TLS_HANDSHAKE_RECORD = 0x16;

/** A client over plain TCP (Bun.listen). Bun keeps nothing of a short write: the rest stays in the connection's buffer until `drain`. */
class TcpTransport implements Transport {
  readonly kind = "tcp";
  blocked = false;
  readonly remoteAddress: string;
  readonly remotePort: number;

  /** TLS (src/auth/tls.ts): the handshake finished (or there is none). */
  handshaken = true;
  /** The TLS settings this connection's handshake uses (a config reload may load others for later ones). */
  tls: ServerTls | null = null;
  /** The client's certificate, read after the handshake when verify_and_map or pinned_certs need it. */
  peerCertificate: CertificateIdentity | null = null;
  /** allow_non_tls: the TLS settings offered until the client's first byte decides; then null. */
  offered: ServerTls | null = null;
  /** allow_non_tls: the client chose TLS; its session runs over node:tls (src/transport/sniffed-tls.ts). */
  sniffed: SniffedTls | null = null;

  /** The plain socket, or after upgradeTLS the TLS socket over it. */
  constructor(private socket: Socket<SocketData>) {
    // Bun has no address for a socket the peer reset before it was accepted here.
    this.remoteAddress = socket.remoteAddress ?? "";
    this.remotePort = socket.remotePort ?? 0;
  }

  write(buf: Buffer, start: number, end: number): number {
    if (this.sniffed !== null) {
      const { taken, full } = this.sniffed.write(buf, start, end);
      if (full) this.blocked = true;
      return taken;
    }
    const length = end - start;
    const written = this.socket.write(buf, start, length);
    if (written < length) this.blocked = true;
    return written < 0 ? 0 : written;
  }

  // Bun's sockets have pause/resume at run time; bun-types does not declare them yet.
  pauseReading(): void {
    (this.socket as unknown as PausableSocket).pause();
    this.sniffed?.pause();
  }

  resumeReading(): void {
    (this.socket as unknown as PausableSocket).resume();
    this.sniffed?.resume();
  }

  close(): void {
    if (this.sniffed !== null) this.sniffed.close();
    else this.socket.end();
  }

  /**
   * allow_non_tls, the client's first read: a TLS handshake record starts TLS over node:tls with it;
   * anything else is a plaintext client, and the read is its first protocol bytes.
   */
  firstRead(server: Server, conn: Connection, data: Buffer, tlsAllowed: (conn: Connection, tls: ServerTls) => boolean): void {
    const tls = this.offered!;
    this.offered = null;
    if (data[0] !== TLS_HANDSHAKE_RECORD) {
      conn.onRead(data);
      return;
    }
    if (!tlsAllowed(conn, tls)) return;
    this.tls = tls;
    this.sniffed = new (optionalModule("sniffedTls").SniffedTls)(this.socket as Socket<unknown>, data, tls, {
      handshake: (success, authorizationError, der) => {
        this.handshaken = true;
        let refusal = handshakeRefusal(tls, success, authorizationError);
        if (refusal === null && readsPeerCertificate(tls)) {
          const checked = checkPeerCertificate(tls, der);
          this.peerCertificate = checked.identity;
          refusal = checked.refusal;
        }
        if (refusal === null || conn.closed) return;
        server.log.error(`${conn.logPrefix} - TLS handshake error: ${refusal}`);
        conn.close(CloseReason.TLSHandshakeError, null);
      },
      data: (plain) => conn.onRead(plain),
      drain: () => conn.onDrain(),
      closed: () => conn.onTransportClosed(),
    });
    this.armHandshakeTimeout(server, conn, tls);
  }

  /**
   * TLS after the plaintext INFO (nats-server's way): from now on bytes go through `tls`, and the plain
   * socket's handlers no longer reach the connection. With handshake_first the socket is TLS already.
   */
  startTls(server: Server, conn: Connection, tls: ServerTls, handlers: SocketHandler<SocketData>): void {
    this.tls = tls;
    if (!tls.handshakeFirst) {
      // Bun hands back both ends: `raw` (a new handle on the plain socket, still on the listener's handlers,
      // which then see the ciphertext) and `secure`. Only `secure` may reach the connection.
      const [raw, secure] = this.socket.upgradeTLS<SocketData>({ data: { connection: conn }, tls: tls.bun, socket: handlers });
      raw.data = { connection: null };
      this.socket = secure;
    }
    this.armHandshakeTimeout(server, conn, tls);
  }

  /** The handshake must end within the tls timeout, or the connection is closed. */
  private armHandshakeTimeout(server: Server, conn: Connection, tls: ServerTls): void {
    this.handshaken = false;
    setTimeout(() => {
      if (this.handshaken || conn.closed) return;
      server.log.error(`${conn.logPrefix} - TLS handshake timeout`);
      conn.close(CloseReason.TLSHandshakeError, null);
    }, tls.timeoutMs);
  }
}

/** A read on a plain socket (or on TLS after upgradeTLS), for its connection. */
function readPlainSocket(socket: Socket<SocketData>, data: Buffer): void {
  const conn = socket.data.connection;
  // A read nothing kept (onRead says so) is freed now, not at the next collection (src/transport/read-memory.ts).
  if (conn != null && conn.onRead(data)) releaseRead(data);
}

/** The socket of a discarding TCP transport: it takes the bytes written and sends them nowhere. */
export interface DiscardingSocket {
  /** The most one write takes: a short write blocks the transport until its connection's onDrain. */
  takeAtMost: number;
  /** Set once the transport has its connection: what `read` hands reads to. */
  data: { connection: Connection | null };
  /** A read arriving, through the socket handler clients' reads go through (the Buffer is freed after it). */
  read(data: Buffer): void;
}

/**
 * A TCP transport over a socket that takes the bytes written (up to `takeAtMost` per write) and sends them
 * nowhere: the start's warm-up (src/warm-up.ts) drives the connection code with it, through the class
 * (and so the object shape) clients' connections have.
 */
export function discardingTcpTransport(): { transport: Transport; socket: DiscardingSocket } {
  const socket = {
    remoteAddress: "127.0.0.1",
    remotePort: 0,
    takeAtMost: Infinity,
    data: { connection: null } as SocketData,
    write(_buf: Buffer, _start: number, length: number): number {
      return length < this.takeAtMost ? length : this.takeAtMost;
    },
    read(data: Buffer): void {
      readPlainSocket(this as unknown as Socket<SocketData>, data);
    },
    end() {},
    pause() {},
    resume() {},
  };
  return { transport: new TcpTransport(socket as unknown as Socket<SocketData>), socket };
}

/** The DER bytes of the client's certificate on a TLS socket, or null when it sent none. */
function peerCertificateDer(socket: Socket<SocketData>): Buffer | null {
  try {
    const cert = socket.getPeerX509Certificate();
    return cert ? Buffer.from(cert.raw) : null;
  } catch {
    return null;
  }
}

interface PausableSocket {
  pause(): void;
  resume(): void;
}

interface SocketData {
  connection: Connection | null;
}

export interface TcpListener {
  readonly port: number;
  /** The TLS settings new connections get; null = plaintext. */
  readonly tls: ServerTls | null;
  /** A config reload: new connections use these (the handshake is per connection, so Bun's listener stays). */
  setTls(tls: ServerTls): void;
  stop(): void;
}

export function listenTcp(server: Server, hostname: string, port: number): TcpListener {
  // Every connection's handshake is its own upgradeTLS (with handshake_first too: at open, before INFO), so a
  // config reload can hand new connections a new certificate; Bun.listen's own tls could not change.
  let tls = server.options.tls ? loadServerTls(server.options.tls) : null;
  // tls { connection_rate_limit }: TLS connections past the limit in a second get nats-server's throttling
  // -ERR and are closed; how many were is logged once a second.
  const rate = new TlsRateCounter();
  let rateReport: ReturnType<typeof setInterval> | null = null;
  const tlsAllowed = (conn: Connection, current: ServerTls): boolean => {
    if (current.rateLimit <= 0) return true;
    if (rateReport === null) {
      rateReport = setInterval(() => {
        if (rate.blocked === 0) return;
        server.log.warn(`Rejected ${rate.blocked} connections due to TLS rate limiting`);
        rate.blocked = 0;
      }, 1000);
      rateReport.unref?.();
    }
    if (rate.allow(current.rateLimit)) return true;
    conn.close(CloseReason.MaxConnectionsExceeded, ProtocolError.ConnectionThrottling.text);
    return false;
  };
  // What a socket does once it has its connection: the plain socket, and the TLS socket after upgradeTLS.
  const io: SocketHandler<SocketData> = {
    handshake(socket, success, authorizationError) {
      const conn = socket.data.connection;
      const transport = conn?.transport as TcpTransport | undefined;
      if (conn == null || transport?.tls == null) return;
      transport.handshaken = true;
      let refusal = handshakeRefusal(transport.tls, success, authorizationError);
      if (refusal === null && readsPeerCertificate(transport.tls)) {
        const checked = checkPeerCertificate(transport.tls, peerCertificateDer(socket));
        transport.peerCertificate = checked.identity;
        refusal = checked.refusal;
      }
      if (refusal === null) return;
      server.log.error(`${conn.logPrefix} - TLS handshake error: ${refusal}`);
      conn.close(CloseReason.TLSHandshakeError, null);
    },
    data: readPlainSocket,
    drain(socket) {
      socket.data.connection?.onDrain();
    },
    close(socket) {
      socket.data.connection?.onTransportClosed();
    },
    error(socket, error) {
      server.log.debug(`${socket.remoteAddress}:${socket.remotePort} - socket error: ${error.message}`);
      socket.data.connection?.onTransportClosed();
    },
  };
  // allow_non_tls (a restart-only setting): reads go through the first-byte decision, and a client that chose
  // TLS has its reads fed to node:tls. Ports without it keep the plain handlers above.
  const sniffing: Pick<SocketHandler<SocketData>, "data" | "drain" | "close" | "error"> = {
    data(socket, data) {
      const conn = socket.data.connection;
      if (conn == null) return;
      const transport = conn.transport as TcpTransport;
      if (transport.sniffed !== null) transport.sniffed.feed(data);
      else if (transport.offered !== null) transport.firstRead(server, conn, data, tlsAllowed);
      else conn.onRead(data);
    },
    drain(socket) {
      const conn = socket.data.connection;
      const sniffed = (conn?.transport as TcpTransport | undefined)?.sniffed;
      if (sniffed != null) sniffed.socketDrained();
      else conn?.onDrain();
    },
    close(socket) {
      const conn = socket.data.connection;
      (conn?.transport as TcpTransport | undefined)?.sniffed?.socketClosed();
      conn?.onTransportClosed();
    },
    error(socket, error) {
      server.log.debug(`${socket.remoteAddress}:${socket.remotePort} - socket error: ${error.message}`);
      const conn = socket.data.connection;
      (conn?.transport as TcpTransport | undefined)?.sniffed?.socketClosed();
      conn?.onTransportClosed();
    },
  };
  const allowNonTls = server.options.allowNonTls;
  const handlers: SocketHandler<SocketData> = {
    ...io,
    ...(allowNonTls ? sniffing : {}),
    open(socket) {
      socket.setNoDelay(true);
      const current = tls;
      if (current?.handshakeFirst) {
        // TLS from the first byte: INFO waits in the connection's buffer until the handshake drains it.
        const [raw, secure] = socket.upgradeTLS<SocketData>({ data: { connection: null }, tls: current.bun, socket: io });
        raw.data = { connection: null };
        const transport = new TcpTransport(secure);
        const conn = server.accept(transport);
        secure.data = { connection: conn };
        if (!conn.closed) transport.startTls(server, conn, current, io);
        return;
      }
      const transport = new TcpTransport(socket);
      // allow_non_tls: INFO offers TLS (tls_available); the client's first byte decides (firstRead).
      if (current !== null && allowNonTls) transport.offered = current;
      const conn = server.accept(transport);
      socket.data = { connection: conn };
      if (current !== null && !allowNonTls && !conn.closed && tlsAllowed(conn, current)) transport.startTls(server, conn, current, io);
    },
  };
  const listener: TCPSocketListener<SocketData> = Bun.listen<SocketData>({
    hostname,
    port,
    // --procs (src/workers/): every worker binds this port; the kernel spreads new connections over them.
    // Bun honours reusePort on listen; bun-types declares it only for Bun.serve (hence the spread).
    ...(server.options.procs > 1 ? { reusePort: true } : {}),
    data: { connection: null },
    socket: handlers,
  });
  return {
    port: listener.port,
    get tls() {
      return tls;
    },
    setTls: (next) => {
      tls = next;
    },
    stop: () => {
      if (rateReport !== null) clearInterval(rateReport);
      listener.stop(false);
    },
  };
}
