// The MQTT port: plain TCP, or TLS from the first byte (mqtt { tls {} }), as nats-server's MQTT listener.
import type { Socket, TCPSocketListener } from "bun";
import type { Transport } from "../transport/transport.ts";
import { loadServerTls, checkPeerCertificate, handshakeRefusal, readsPeerCertificate } from "../auth/tls.ts";
import type { CertificateIdentity } from "../auth/x509.ts";
import type { MqttConnection } from "./connection.ts";
import type { Mqtt } from "./mqtt.ts";

interface SocketData {
  connection: MqttConnection | null;
}

class MqttTcpTransport implements Transport {
  readonly kind = "tcp";
  blocked = false;
  readonly remoteAddress: string;
  readonly remotePort: number;
  peerCertificate: CertificateIdentity | null = null;

  constructor(private readonly socket: Socket<SocketData>) {
    this.remoteAddress = socket.remoteAddress ?? "";
    this.remotePort = socket.remotePort ?? 0;
  }

  write(buf: Buffer, start: number, end: number): number {
    const length = end - start;
    const written = this.socket.write(buf, start, length);
    if (written < length) this.blocked = true;
    return written < 0 ? 0 : written;
  }

  pauseReading(): void {
    (this.socket as unknown as { pause(): void }).pause();
  }

  resumeReading(): void {
    (this.socket as unknown as { resume(): void }).resume();
  }

  close(): void {
    this.socket.end();
  }
}

export interface MqttListener {
  readonly port: number;
  stop(): void;
}

/** `shared`: --procs (src/workers/): every worker binds this port with SO_REUSEPORT. */
export function listenMqtt(mqtt: Mqtt, hostname: string, port: number, shared: boolean): MqttListener {
  const tls = mqtt.options.tls !== null ? loadServerTls(mqtt.options.tls) : null;
  const listener: TCPSocketListener<SocketData> = Bun.listen<SocketData>({
    hostname,
    port,
    // Bun honours reusePort on listen; bun-types declares it only for Bun.serve (hence the spread).
    ...(shared ? { reusePort: true } : {}),
    data: { connection: null },
    ...(tls !== null ? { tls: tls.bun } : {}),
    socket: {
      open(socket) {
        socket.setNoDelay(true);
        const transport = new MqttTcpTransport(socket);
        socket.data = { connection: mqtt.accept(transport) };
      },
      handshake(socket, success, authorizationError) {
        const conn = socket.data.connection;
        if (conn === null || tls === null) return;
        let refusal = handshakeRefusal(tls, success, authorizationError);
        if (refusal === null && readsPeerCertificate(tls)) {
          let der: Buffer | null = null;
          try {
            const cert = socket.getPeerX509Certificate();
            der = cert ? Buffer.from(cert.raw) : null;
          } catch {
            der = null;
          }
          const checked = checkPeerCertificate(tls, der);
          (conn.transport as MqttTcpTransport).peerCertificate = checked.identity;
          refusal = checked.refusal;
        }
        if (refusal === null) return;
        mqtt.server.log.error(`${conn.logPrefix} - TLS handshake error: ${refusal}`);
        conn.close("TLS Handshake Failure");
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
        mqtt.server.log.debug(`${socket.remoteAddress}:${socket.remotePort} - MQTT socket error: ${error.message}`);
        socket.data.connection?.onTransportClosed();
      },
    },
  });
  return {
    port: listener.port,
    stop: () => listener.stop(false),
  };
}
