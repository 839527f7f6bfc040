import type { Socket, SocketHandler, TCPSocketListener } from "bun";
import type { Connection } from "../connection.ts";
import type { Server } from "../server.ts";
import type { Transport } from "./transport.ts";
import { CloseReason } from "../protocol/errors.ts";
import { handshakeRefusal, loadServerTls, type ServerTls } from "../auth/tls.ts";

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

  /** The plain socket, or after upgradeTLS the TLS socket over it. */
  constructor(private socket: Socket<SocketData>) {
    // Bun has no address for a socket the peer reset before it was accepted here.
    this.remoteAddress = socket.remoteAddress ?? "";
    this.remotePort = socket.remotePort ?? 0;
  }

  write(buf: Buffer, start: number, end: number): number {
    const length = end - start;
    const written = this.socket.write(buf, start, length);
    if (written < length) this.blocked = true;
    return written < 0 ? 0 : written;
  }

  // Bun's sockets have pause/resume at run time; bun-types does not declare them yet.
  pauseReading(): void {
    (this.socket as unknown as PausableSocket).pause();
  }

  resumeReading(): void {
    (this.socket as unknown as PausableSocket).resume();
  }

  close(): void {
    this.socket.end();
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
    this.handshaken = false;
    setTimeout(() => {
      if (this.handshaken || conn.closed) return;
      server.log.error(`${conn.logPrefix} - TLS handshake timeout`);
      conn.close(CloseReason.TLSHandshakeError, null);
    }, tls.timeoutMs);
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
  // What a socket does once it has its connection: the plain socket, and the TLS socket after upgradeTLS.
  const io: SocketHandler<SocketData> = {
    handshake(socket, success, authorizationError) {
      const conn = socket.data.connection;
      const transport = conn?.transport as TcpTransport | undefined;
      if (conn == null || transport?.tls == null) return;
      transport.handshaken = true;
      const refusal = handshakeRefusal(transport.tls, success, authorizationError);
      if (refusal === null) return;
      server.log.error(`${conn.logPrefix} - TLS handshake error: ${refusal}`);
      conn.close(CloseReason.TLSHandshakeError, null);
    },
    data(socket, data) {
      socket.data.connection?.onRead(data);
    },
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
  const handlers: SocketHandler<SocketData> = {
    ...io,
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
      const conn = server.accept(transport);
      socket.data = { connection: conn };
      if (current !== null && !conn.closed) transport.startTls(server, conn, current, io);
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
    stop: () => listener.stop(false),
  };
}
