// TLS on leaf connections, as nats-server does it (leafnode.go createLeafNode, processLeafnodeInfo):
//
// - Accepted (the hub side, `leafnodes { tls {} }`): the INFO goes out in plaintext with tls_required
//   (and tls_verify with verify), then the hub starts the server-side handshake on the same socket. A
//   leaf that sends plaintext instead fails the handshake and is closed without a NATS error. With
//   verify the leaf must present a certificate that chains to ca_file (mutual TLS).
// - Solicited (the leaf side): after the hub's plaintext INFO, the leaf starts the client-side handshake
//   when its remote has `tls {}` or the INFO says tls_required (then with the system's CAs, as
//   nats-server's default tls.Config); CONNECT goes out only once the handshake succeeded. The server
//   name checked is the URL's host, or for an IP the first host name among the remote's URLs.
//
// Both sides reuse the client port's TLS (src/auth/tls.ts): Bun's upgradeTLS on the connected socket.
import { nodeFs } from "../node-builtins.ts";
import type { TLSOptions } from "bun";
import { loadServerTls, type ServerTls } from "../auth/tls.ts";
import type { TlsOptions } from "../auth/options.ts";
import type { LeafUrl, RemoteTlsOptions } from "./options.ts";

/** node:net's isIP, loaded at the first use: node:net costs ~3 MiB of RSS, and /varz reaches this module. */
function isIP(host: string): number {
  return process.getBuiltinModule("node:net").isIP(host);
}

/** nats-server's DEFAULT_LEAF_TLS_TIMEOUT. */
export const DEFAULT_LEAF_TLS_TIMEOUT_MS = 2000;

/** The hub side's TLS (files read once, at start). */
export function loadLeafServerTls(t: TlsOptions): ServerTls {
  return loadServerTls({ ...t, timeoutMs: t.timeoutMs || DEFAULT_LEAF_TLS_TIMEOUT_MS, handshakeFirst: false });
}

/** The leaf side's TLS for one dial: what upgradeTLS takes, whether to verify, and the deadline. */
export interface ClientTls {
  readonly bun: TLSOptions;
  readonly verify: boolean;
  readonly timeoutMs: number;
}

/**
 * The client TLS settings for dialing `url` of a remote (`t` undefined: the hub required TLS and the
 * remote has no tls {}). `tlsName`: a host name from the remote's URLs, checked when `url` is an IP.
 */
export function clientTls(t: RemoteTlsOptions | undefined, url: LeafUrl, tlsName: string): ClientTls {
  const insecure = t?.insecure === true;
  const bun: TLSOptions = { rejectUnauthorized: !insecure };
  if (t?.caFile) bun.ca = nodeFs().readFileSync(t.caFile, "utf8");
  if (t?.certFile && t.keyFile) {
    bun.cert = nodeFs().readFileSync(t.certFile, "utf8");
    bun.key = nodeFs().readFileSync(t.keyFile, "utf8");
  }
  bun.serverName = isIP(url.host) !== 0 && tlsName !== "" ? tlsName : url.host;
  return { bun, verify: !insecure, timeoutMs: t?.timeoutMs || DEFAULT_LEAF_TLS_TIMEOUT_MS };
}

/** The first host name (not an IP) among the URLs, for the server name check of IP URLs; "" if none. */
export function tlsNameOf(urls: readonly LeafUrl[]): string {
  for (const u of urls) if (isIP(u.host) === 0) return u.host;
  return "";
}

/** Why a finished client handshake does not admit the hub (null: it does). */
export function clientHandshakeRefusal(tls: ClientTls, success: boolean, authorizationError: Error | null): string | null {
  if (!success) return authorizationError?.message ?? "handshake failed";
  if (tls.verify && authorizationError) return authorizationError.message;
  return null;
}
