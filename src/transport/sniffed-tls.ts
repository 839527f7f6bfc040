// TLS on a socket whose first bytes were already read: `allow_non_tls` (nats-server's server.go
// createClient) decides by the client's first byte whether it speaks TLS (0x16, a handshake record) or
// plaintext, and by then Bun has handed that read over. Bun's upgradeTLS cannot be given those bytes back,
// so this runs node:tls as the server over a stream we feed: the bytes read so far, then every later read;
// what TLS writes goes out through the Bun socket (kept in order when the socket is full).
// Only these connections pay for node streams; a port without allow_non_tls never comes here.
import { createSecureContext, TLSSocket } from "node:tls";
import { Duplex } from "node:stream";
import type { Socket } from "bun";
import type { ServerTls } from "../auth/tls.ts";

export interface SniffedTlsEvents {
  /** The handshake ended: success, the verification error (if any), the client certificate's DER (if any). */
  handshake(success: boolean, authorizationError: Error | null, peerCertificate: Buffer | null): void;
  /** Plaintext from the client. */
  data(data: Buffer): void;
  /** The TLS socket can take more. */
  drain(): void;
  /** The session ended or failed. */
  closed(error: Error | null): void;
}

export class SniffedTls {
  private readonly secure: TLSSocket;
  private readonly wire: Duplex;
  /** Ciphertext the Bun socket did not take yet, and the callback that waits for it. */
  private unsent: Buffer | null = null;
  private unsentDone: ((error?: Error | null) => void) | null = null;
  private handshakeDone = false;

  constructor(
    private readonly socket: Socket<unknown>,
    first: Buffer,
    tls: ServerTls,
    events: SniffedTlsEvents,
  ) {
    const bun = tls.bun as { cert?: string; key?: string; ca?: string; ciphers?: string };
    this.wire = new Duplex({
      read() {},
      write: (chunk: Buffer, _encoding, done) => this.send(chunk, done),
      final: (done) => {
        socket.end();
        done();
      },
    });
    this.secure = new TLSSocket(this.wire, {
      isServer: true,
      secureContext: createSecureContext({ cert: bun.cert, key: bun.key, ca: bun.ca, minVersion: tls.minVersion, ciphers: bun.ciphers }),
      requestCert: tls.verify,
      rejectUnauthorized: tls.verify,
    });
    this.secure.on("secure", () => {
      this.handshakeDone = true;
      const der = (this.secure.getPeerCertificate(true) as { raw?: Buffer } | null)?.raw ?? null;
      const error = this.secure.authorizationError;
      events.handshake(true, error ? new Error(String(error)) : null, der && der.length > 0 ? Buffer.from(der) : null);
    });
    this.secure.on("data", (data: Buffer) => events.data(data));
    this.secure.on("drain", () => events.drain());
    this.secure.on("error", (error: Error) => {
      if (!this.handshakeDone) {
        this.handshakeDone = true;
        events.handshake(false, error, null);
      } else events.closed(error);
    });
    this.secure.on("close", () => events.closed(null));
    this.feed(first);
  }

  /** A read from the Bun socket (copied: Bun reuses its read buffer). */
  feed(data: Buffer): void {
    this.wire.push(Buffer.from(data));
  }

  /** The Bun socket closed. */
  socketClosed(): void {
    this.wire.push(null);
    this.secure.destroy();
  }

  /** Writes plaintext; returns how much was taken (all: node buffers it; `false` from write means wait for drain). */
  write(buf: Buffer, start: number, end: number): { taken: number; full: boolean } {
    const ok = this.secure.write(Buffer.from(buf.subarray(start, end))); // copied: the caller reuses its buffer
    return { taken: end - start, full: !ok };
  }

  pause(): void {
    this.secure.pause();
  }

  resume(): void {
    this.secure.resume();
  }

  close(): void {
    this.secure.end();
  }

  /** The Bun socket drained: send the ciphertext it did not take. */
  socketDrained(): void {
    const rest = this.unsent;
    const done = this.unsentDone;
    if (rest === null || done === null) return;
    this.unsent = null;
    this.unsentDone = null;
    this.send(rest, done);
  }

  private send(chunk: Buffer, done: (error?: Error | null) => void): void {
    const written = this.socket.write(chunk);
    if (written >= chunk.length) {
      done();
      return;
    }
    this.unsent = chunk.subarray(Math.max(0, written));
    this.unsentDone = done;
  }
}
