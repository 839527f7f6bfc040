import type { Socket, TCPSocketListener } from "bun";
import type { Connection } from "../connection.ts";
import type { Server } from "../server.ts";
import type { Transport } from "./transport.ts";

/** A client over plain TCP (Bun.listen). Bun keeps nothing of a short write: the rest stays in the connection's buffer until `drain`. */
class TcpTransport implements Transport {
  readonly kind = "tcp";
  blocked = false;
  readonly remoteAddress: string;
  readonly remotePort: number;

  constructor(private readonly socket: Socket<SocketData>) {
    this.remoteAddress = socket.remoteAddress;
    this.remotePort = socket.remotePort;
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
  stop(): void;
}

export function listenTcp(server: Server, hostname: string, port: number): TcpListener {
  const listener: TCPSocketListener<SocketData> = Bun.listen<SocketData>({
    hostname,
    port,
    data: { connection: null },
    socket: {
      open(socket) {
        socket.setNoDelay(true);
        socket.data = { connection: server.accept(new TcpTransport(socket)) };
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
    },
  });
  return {
    port: listener.port,
    stop: () => listener.stop(false),
  };
}
