// TLS for the client port and the WebSocket port, from a `tls` block or the --tls* flags.
//
// The client port works as nats-server's (server.go createClient): INFO goes out in plaintext with
// tls_required, then the server starts the TLS handshake on the same socket (Bun's socket.upgradeTLS on
// the accepted socket; src/transport/tcp.ts). A client that sends plaintext instead (a CONNECT) fails the
// handshake and is closed without a NATS error, as with nats-server. `handshake_first` makes the listener
// TLS from the first byte instead (Bun.listen's tls option): INFO then comes inside TLS.
// With `verify`, a client certificate is required and must chain to ca_file (mutual TLS).
// The handshake must end within `timeout` (default 2 s), or the connection is closed.
import { readFileSync } from "node:fs";
import type { TLSOptions } from "bun";
import { DEFAULT_TLS_TIMEOUT_MS, type TlsOptions } from "./options.ts";

export interface ServerTls {
  /** For Bun.listen / upgradeTLS / Bun.serve. */
  readonly bun: TLSOptions;
  readonly verify: boolean;
  readonly timeoutMs: number;
  readonly handshakeFirst: boolean;
}

/** Reads the certificate, key and CA files (validated readable at start; src/auth/validate.ts). */
export function loadServerTls(t: TlsOptions): ServerTls {
  const verify = t.verify === true;
  const bun: TLSOptions = {
    cert: readFileSync(t.certFile, "utf8"),
    key: readFileSync(t.keyFile, "utf8"),
    requestCert: verify,
    rejectUnauthorized: verify,
  };
  if (t.caFile) bun.ca = readFileSync(t.caFile, "utf8");
  return { bun, verify, timeoutMs: t.timeoutMs || DEFAULT_TLS_TIMEOUT_MS, handshakeFirst: t.handshakeFirst === true };
}

/**
 * Whether a finished handshake admits the client: it must have succeeded and, with verify, the client's
 * certificate must have been verified. Returns the reason to log when it does not.
 */
export function handshakeRefusal(tls: ServerTls, success: boolean, authorizationError: Error | null): string | null {
  if (!success) return authorizationError?.message ?? "handshake failed";
  if (tls.verify && authorizationError) return authorizationError.message;
  return null;
}
