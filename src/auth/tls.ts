// TLS for the client port and the WebSocket port, from a `tls` block or the --tls* flags.
//
// The client port works as nats-server's (server.go createClient): INFO goes out in plaintext with
// tls_required, then the server starts the TLS handshake on the same socket (Bun's socket.upgradeTLS on
// the accepted socket; src/transport/tcp.ts). A client that sends plaintext instead (a CONNECT) fails the
// handshake and is closed without a NATS error, as with nats-server. `handshake_first` makes the listener
// TLS from the first byte instead (Bun.listen's tls option): INFO then comes inside TLS.
// With `verify`, a client certificate is required and must chain to ca_file (mutual TLS).
// With `pinned_certs`, the client certificate's SubjectPublicKeyInfo must hash (SHA-256) to one of them,
// else `TLS handshake error: certificate not pinned` and close (nats-server's matchesPinnedCert).
// With `verify_and_map`, the certificate is kept for authentication to name the user (src/auth/tls-map.ts).
// The handshake must end within `timeout` (default 2 s), or the connection is closed.
// With `connection_rate_limit`, TLS connections past that many a second get INFO, then
// `-ERR 'Connection throttling is active. Please try again later.'` and a close (nats-server's rateCounter).
import { nodeFs } from "../node-builtins.ts";
import type { TLSOptions } from "bun";
import { DEFAULT_TLS_TIMEOUT_MS, type TlsOptions } from "./options.ts";
import { readCertificate, type CertificateIdentity } from "./x509.ts";
import { opensslCipherList } from "./ciphers.ts";

export interface ServerTls {
  /** For Bun.listen / upgradeTLS / Bun.serve. */
  readonly bun: TLSOptions;
  readonly verify: boolean;
  readonly timeoutMs: number;
  readonly handshakeFirst: boolean;
  /** min_version, as node:tls names it (src/transport/sniffed-tls.ts). */
  readonly minVersion: "TLSv1.2" | "TLSv1.3";
  /** The client certificate names the user (verify_and_map). */
  readonly verifyAndMap: boolean;
  /** SPKI hashes a client certificate must have (pinned_certs), or null. */
  readonly pinnedCerts: ReadonlySet<string> | null;
  /** connection_rate_limit: TLS connections per second (0 = no limit). */
  readonly rateLimit: number;
}

/**
 * nats-server's rateCounter for `tls { connection_rate_limit }`: at most `limit` TLS connections in each
 * one-second window (the window starts at the first connection after the last one ended); the others are
 * counted as blocked, and the count is logged once a second.
 */
export class TlsRateCounter {
  private count = 0;
  private end = 0;
  blocked = 0;

  allow(limit: number, now = Date.now()): boolean {
    if (now > this.end) {
      this.count = 0;
      this.end = now + 1000;
    } else this.count++;
    const allowed = this.count < limit;
    if (!allowed) this.blocked++;
    return allowed;
  }
}

/** Reads the certificate, key and CA files (validated readable at start; src/auth/validate.ts). */
export function loadServerTls(t: TlsOptions): ServerTls {
  const verify = t.verify === true;
  const bun: TLSOptions = {
    cert: nodeFs().readFileSync(t.certFile, "utf8"),
    key: nodeFs().readFileSync(t.keyFile, "utf8"),
    requestCert: verify,
    rejectUnauthorized: verify,
  };
  if (t.caFile) bun.ca = nodeFs().readFileSync(t.caFile, "utf8");
  // cipher_suites: Go's names, as OpenSSL's (TLS 1.2; TLS 1.3's suites are not configurable, as in Go).
  if (t.cipherSuites !== undefined) bun.ciphers = opensslCipherList(t.cipherSuites);
  // node:crypto (~3 MiB of RSS) is loaded only when TLS is configured.
  const { constants } = process.getBuiltinModule("node:crypto");
  // min_version: TLS 1.2 is the floor (nats-server's too); 1.3 turns 1.2 off as well.
  bun.secureOptions = constants.SSL_OP_NO_TLSv1 | constants.SSL_OP_NO_TLSv1_1 | (t.minVersion === "1.3" ? constants.SSL_OP_NO_TLSv1_2 : 0);
  return {
    bun, verify, timeoutMs: t.timeoutMs || DEFAULT_TLS_TIMEOUT_MS, handshakeFirst: t.handshakeFirst === true,
    minVersion: t.minVersion === "1.3" ? "TLSv1.3" : "TLSv1.2",
    rateLimit: t.connectionRateLimit !== undefined && t.connectionRateLimit > 0 ? t.connectionRateLimit : 0,
    verifyAndMap: t.verifyAndMap === true, pinnedCerts: t.pinnedCerts && t.pinnedCerts.length > 0 ? new Set(t.pinnedCerts) : null,
  };
}

/**
 * Whether the server reads the client's certificate after the handshake: to check a pin, or to map a user
 * (also with plain verify, so that a config reload turning verify_and_map on can map connected clients).
 */
export function readsPeerCertificate(tls: ServerTls): boolean {
  return tls.verify || tls.pinnedCerts !== null;
}

/**
 * The client certificate's identity from its DER bytes (null: none, or unreadable), and the refusal to log
 * when pinned_certs does not list its key.
 */
export function checkPeerCertificate(tls: ServerTls, der: Buffer | null): { identity: CertificateIdentity | null; refusal: string | null } {
  let identity: CertificateIdentity | null = null;
  try {
    identity = der === null ? null : readCertificate(der);
  } catch {
    identity = null;
  }
  if (tls.pinnedCerts !== null) {
    const keyId = identity === null ? null : new Bun.CryptoHasher("sha256").update(identity.spki).digest("hex");
    if (keyId === null || !tls.pinnedCerts.has(keyId)) return { identity, refusal: "certificate not pinned" };
  }
  return { identity, refusal: null };
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
