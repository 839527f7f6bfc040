import type { CookieCredentials } from "../auth/authenticator.ts";
import type { CertificateIdentity } from "../auth/x509.ts";

/**
 * How bytes leave a connection and how it is closed. TCP and WebSocket differ only here;
 * parsing, limits, subscriptions and delivery are shared (src/connection.ts).
 */
export interface Transport {
  readonly kind: "tcp" | "websocket";
  readonly remoteAddress: string;
  readonly remotePort: number;
  /**
   * Writes buf[start, end) and returns how many bytes the transport took (the rest stays with
   * the caller). Sets `blocked` when the peer is not keeping up; `drain` then comes later.
   */
  write(buf: Buffer, start: number, end: number): number;
  /** True from a short or buffered write until the transport drains. */
  blocked: boolean;
  /** Stops reading from the peer (slows a fast publisher); resume undoes it. */
  pauseReading(): void;
  resumeReading(): void;
  /** Closes after what was already written goes out. */
  close(): void;
  /** WebSocket: credentials from the configured auth cookies of the upgrade request (src/auth). */
  readonly authCookies?: CookieCredentials;
  /** TLS: the client's certificate, when verify_and_map needs it (src/auth/tls-map.ts). */
  readonly peerCertificate?: CertificateIdentity | null;
}
