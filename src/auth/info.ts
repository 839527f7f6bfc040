// The security fields of a client's INFO, as nats-server sets them: auth_required (false on the client
// port when a no_auth_user lets anonymous clients in), tls_required / tls_verify for the transport the
// client came in on (tls_available instead of tls_required with allow_non_tls), and the nonce nkey users sign.
import type { Connection } from "../connection.ts";
import type { Server } from "../server.ts";

export interface SecurityInfo {
  auth_required?: boolean;
  tls_required?: boolean;
  tls_verify?: boolean;
  tls_available?: boolean;
  nonce?: string;
}

export function securityInfo(server: Server, conn: Connection): SecurityInfo {
  const info: SecurityInfo = {};
  const kind = conn.transport.kind;
  if (server.auth !== null && server.auth.infoAuthRequired(kind)) info.auth_required = true;
  const tls = kind === "websocket" ? server.options.wsTls : server.options.tls;
  if (tls) {
    // allow_non_tls (client port): TLS is offered, not required; the client's first byte decides.
    const optional = kind === "tcp" && server.options.allowNonTls && !tls.handshakeFirst;
    if (!optional) info.tls_required = true;
    if (tls.verify) info.tls_verify = true;
    if (optional) info.tls_available = true; // after tls_verify, in nats-server's field order
  }
  const nonce = conn.authGate?.nonce;
  if (nonce) info.nonce = nonce;
  return info;
}
