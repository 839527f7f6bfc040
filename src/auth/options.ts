// The shapes of natter's security settings, as the config file (src/auth/config.ts) and the flags
// (src/options.ts) fill them in. Field meanings follow nats-server's Options (server/opts.go, auth.go).
//
// Every secret (token, password, cookie value) lives inside one of these objects, never in a top-level
// string option: a config reload or a log line that prints an option then shows "[object Object]" at
// worst, never a secret (see src/auth/redact.ts for the protocol trace).

/** Subjects a user may (allow) or may not (deny) use. `allow` absent = everything; deny beats allow. */
export interface SubjectPermissionOptions {
  /** null/absent: no allow list (all allowed). An empty array allows nothing (nats-server's blanket-off for allow_responses). */
  allow?: string[] | null;
  deny?: string[] | null;
}

/** allow_responses: a user may publish to the reply subject of each request it received. */
export interface ResponsePermissionOptions {
  /** Replies allowed per request (nats-server's default 1; negative = unlimited). */
  max: number;
  /** How long after the request a reply is allowed (default 2 min; negative = forever). */
  expiresMs: number;
}

export interface PermissionOptions {
  publish?: SubjectPermissionOptions | null;
  /** Entries may name a queue group: `"foo v1"` allows only queue group v1 on foo. */
  subscribe?: SubjectPermissionOptions | null;
  responses?: ResponsePermissionOptions | null;
}

/** A user with a password (plain or bcrypt `$2a$`/`$2b$`/`$2y$`), or an nkey user (public key `U…`). */
export interface UserOptions {
  user?: string;
  password?: string;
  nkey?: string;
  permissions?: PermissionOptions | null;
  /** Per-user publish rate limit (natter's own; see src/auth/ratelimit.ts); absent = unlimited. */
  rateLimit?: RateLimitOptions | null;
  /** `allowed_connection_types` (upper case: STANDARD, WEBSOCKET, LEAFNODE, LEAFNODE_WS, MQTT, MQTT_WS); absent = any. */
  allowedConnectionTypes?: string[];
}

/** The kinds of connection a user may be limited to (nats-server's jwt.ConnectionType*). */
export const CONNECTION_TYPES = ["STANDARD", "WEBSOCKET", "LEAFNODE", "LEAFNODE_WS", "MQTT", "MQTT_WS"] as const;
export type ConnectionType = (typeof CONNECTION_TYPES)[number];

/** Publish limits: reads from a connection pause while it is over either; 0 = no limit for that one. */
export interface RateLimitOptions {
  msgsPerSec: number;
  bytesPerSec: number;
}

/** The `authorization` block, or --auth / --user / --pass. */
export interface AuthorizationOptions {
  /** A single token (plain or bcrypt). */
  token?: string;
  /** A single user and password (plain or bcrypt). */
  user?: string;
  password?: string;
  /** Users and nkey users, each with optional permissions. */
  users?: UserOptions[] | null;
  /** Permissions for users that have none of their own. */
  defaultPermissions?: PermissionOptions | null;
  /** Time a client has to send CONNECT; 0 = nats-server's default (2 s, or the TLS timeout + 1 s with TLS). */
  timeoutMs?: number;
  /** A client that sends no credentials is this user (must be in `users`). */
  noAuthUser?: string;
}

/** The `websocket` block's own authentication: it overrides the top-level single user/token for WebSocket clients. */
export interface WebSocketAuthOptions {
  user?: string;
  password?: string;
  token?: string;
  timeoutMs?: number;
  noAuthUser?: string;
  /** Cookie names whose values stand in for CONNECT's user, pass and auth_token (browsers keep them out of JS). */
  userCookie?: string;
  passCookie?: string;
  tokenCookie?: string;
}

/** A `tls` block (client port or websocket), or the --tls* flags. Paths as given. */
export interface TlsOptions {
  certFile: string;
  keyFile: string;
  /** CA bundle that client certificates must chain to (with verify). */
  caFile?: string;
  /** Require and verify a client certificate (mutual TLS). */
  verify?: boolean;
  /** Handshake deadline; nats-server's default is 2 s. */
  timeoutMs?: number;
  /** TLS from the first byte (no plaintext INFO first): nats-server's `handshake_first`. */
  handshakeFirst?: boolean;
  /** `verify_and_map`: verify, and the client certificate names the user (src/auth/tls-map.ts). */
  verifyAndMap?: boolean;
  /** `pinned_certs`: lower-case hex SHA-256 of the DER SubjectPublicKeyInfo a client certificate must have. */
  pinnedCerts?: string[];
  /** `cipher_suites`: Go names of the TLS 1.2 cipher suites allowed (src/auth/ciphers.ts); absent = the defaults. */
  cipherSuites?: string[];
  /** `connection_rate_limit`: TLS connections accepted per second on the client port (0 = no limit). */
  connectionRateLimit?: number;
  /** `min_version`: the oldest TLS version a client may use (nats-server's default and floor: 1.2). */
  minVersion?: "1.2" | "1.3";
}

/** Limits on new connections (natter's own, off by default). */
export interface ConnectionRateOptions {
  /** New connections accepted per second from one IP address; 0 = unlimited. */
  perIpPerSec: number;
}

/** nats-server's defaults (server/const.go). */
export const DEFAULT_AUTH_TIMEOUT_MS = 2000;
export const DEFAULT_TLS_TIMEOUT_MS = 2000;
export const DEFAULT_ALLOW_RESPONSE_MAX = 1;
export const DEFAULT_ALLOW_RESPONSE_EXPIRES_MS = 2 * 60 * 1000;
