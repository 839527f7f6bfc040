// Who may connect: nats-server's processClientOrLeafAuthentication (server/auth.go), for clients.
//
// Order of checks, as nats-server's:
// 1. nkey users, when the CONNECT names an nkey: the key must be configured and `sig` must sign this
//    connection's nonce.
// 2. users, when configured: with `tls { verify_and_map: true }` on the client port, the client
//    certificate names the user (src/auth/tls-map.ts; CONNECT's user is not looked at, its password must
//    match the mapped user's, usually none);
//    otherwise a CONNECT without user, pass and token becomes the no_auth_user (when set), and a named
//    user must exist and its password match.
// 3. otherwise the single token, or the single user and password.
// Users of the `accounts` block live in the same two maps (names are unique across accounts and the
// authorization block: src/accounts/config.ts checks it); each carries its Account, and the gate binds
// the connection to it. Users of the authorization block, the token and the single user are in `$G`.
// WebSocket clients may have their own user/password/token/no_auth_user in the websocket block; those
// replace the top-level single user/token (never the users list), and WebSocket cookies stand in for the
// CONNECT fields a browser cannot send safely.
import type { Options } from "../options.ts";
import type { Connection } from "../connection.ts";
import { AuthGate } from "./gate.ts";
import type { Transport } from "../transport/transport.ts";
import { CompiledPermissions } from "./permissions.ts";
import { PublishBucket } from "./ratelimit.ts";
import { comparePassword } from "./passwords.ts";
import type { Account } from "../accounts/account.ts";
import { Accounts } from "../accounts/accounts.ts";
import { randomBytes } from "../random.ts";
import { NkeyVerifier, newNonce } from "./nkeys.ts";
import { mapCertificateToUser } from "./tls-map.ts";
import type { CertificateIdentity } from "./x509.ts";
import { DEFAULT_AUTH_TIMEOUT_MS, DEFAULT_TLS_TIMEOUT_MS, type AuthorizationOptions, type ConnectionType, type UserOptions, type WebSocketAuthOptions } from "./options.ts";

/** The CONNECT fields authentication reads (wire casing). */
export interface Credentials {
  user?: unknown;
  pass?: unknown;
  auth_token?: unknown;
  nkey?: unknown;
  sig?: unknown;
  jwt?: unknown;
}

/** Credentials a WebSocket upgrade request carried in the configured cookies. */
export interface CookieCredentials {
  user?: string;
  pass?: string;
  token?: string;
}

/** An authenticated identity, shared by all of its connections. */
export interface AuthenticatedUser {
  /** The user name or nkey, as logged and shown in /connz; "" for a token or a single anonymous client. */
  readonly name: string;
  readonly permissions: CompiledPermissions | null;
  /** Publish rate limit, one budget shared by all of the user's connections (src/auth/ratelimit.ts). */
  readonly publishBucket: PublishBucket | null;
  /** The account the user belongs to (src/accounts); null = the global account `$G`. */
  readonly account?: Account | null;
  /** allowed_connection_types: the kinds of connection it may log in on; null/absent = any. */
  readonly connectionTypes?: ReadonlySet<string> | null;
}

/**
 * What a client's credentials stand for (Authenticator.resolve): the user, and the configured password or
 * token its `given` one must still match (null: nothing left to compare).
 */
export interface Claim {
  readonly user: AuthenticatedUser;
  readonly secret: string | null;
  readonly given: string;
}

/** The CONNECT's credential fields alone (what a config reload re-checks), or null when it carries none. */
export function credentialsOf(connect: Credentials): Credentials | null {
  const kept: Credentials = {};
  let any = false;
  for (const key of ["user", "pass", "auth_token", "nkey", "sig", "jwt"] as const) {
    if (connect[key] !== undefined) {
      kept[key] = connect[key];
      any = true;
    }
  }
  return any ? kept : null;
}

/** The outcome: the user, null (refused), or a promise of either (bcrypt is checked off the event loop). */
export type AuthResult = AuthenticatedUser | null | Promise<AuthenticatedUser | null>;

const ANONYMOUS: AuthenticatedUser = { name: "", permissions: null, publishBucket: null };

interface PasswordUser {
  readonly password: string;
  readonly user: AuthenticatedUser;
}

interface NkeyUser {
  readonly verifier: NkeyVerifier;
  readonly user: AuthenticatedUser;
}

/** The single user/token a kind of client authenticates with (top level, or the websocket override). */
interface SimpleAuth {
  user: string;
  password: string;
  token: string;
  noAuthUser: string;
}

function str(v: unknown): string {
  return typeof v === "string" ? v : "";
}

/** The users of one configured account. */
export interface AccountUsers {
  readonly account: Account;
  readonly users: readonly UserOptions[];
}

function toUser(name: string, u: UserOptions, account: Account | null): AuthenticatedUser {
  return {
    name,
    permissions: u.permissions ? new CompiledPermissions(u.permissions) : null,
    publishBucket: u.rateLimit && (u.rateLimit.msgsPerSec > 0 || u.rateLimit.bytesPerSec > 0) ? new PublishBucket(u.rateLimit) : null,
    account,
    connectionTypes: u.allowedConnectionTypes && u.allowedConnectionTypes.length > 0 ? new Set(u.allowedConnectionTypes) : null,
  };
}

/** nats-server's connectionTypeAllowed: no list allows every kind. */
function typeAllowed(user: AuthenticatedUser, type: ConnectionType): boolean {
  return user.connectionTypes == null || user.connectionTypes.has(type);
}

export class Authenticator {
  private readonly users = new Map<string, PasswordUser>();
  private readonly nkeys = new Map<string, NkeyUser>();
  private readonly top: SimpleAuth;
  private readonly ws: SimpleAuth;
  private readonly wsOverride: boolean;
  /** The mqtt block's user/password/token/no_auth_user (src/mqtt), replacing the top-level ones as websocket's do. */
  private readonly mqtt: SimpleAuth;
  private readonly mqttOverride: boolean;
  private readonly mqttTimeoutMs: number;
  private readonly cookies: WebSocketAuthOptions | null;
  /** Auth required on the client port (and, unless overridden, on WebSocket). */
  private readonly required: boolean;
  readonly nonceRequired: boolean;
  private readonly timeoutMs: number;
  private readonly wsTimeoutMs: number;
  /** verify_and_map on the client port: the names a certificate may map to (the users with passwords' names). */
  private readonly tlsMapNames: ReadonlySet<string> | null;

  constructor(
    auth: AuthorizationOptions | null,
    ws: WebSocketAuthOptions | null,
    tlsTimeoutMs: number | null,
    /** Users of the accounts block, bound to their accounts. */
    accountUsers: readonly AccountUsers[] = [],
    /** `tls { verify_and_map: true }` on the client port. */
    tlsMap = false,
    mqtt: WebSocketAuthOptions | null = null,
  ) {
    const a = auth ?? {};
    const add = (u: UserOptions, account: Account | null) => {
      if (u.nkey) this.nkeys.set(u.nkey, { verifier: new NkeyVerifier(u.nkey), user: toUser(u.nkey, u, account) });
      else if (u.user !== undefined) this.users.set(u.user, { password: u.password ?? "", user: toUser(u.user, u, account) });
    };
    for (const u of a.users ?? []) add(u, null);
    for (const au of accountUsers) for (const u of au.users) add(u, au.account);
    this.top = { user: a.user ?? "", password: a.password ?? "", token: a.token ?? "", noAuthUser: a.noAuthUser ?? "" };
    this.required = this.users.size > 0 || this.nkeys.size > 0 || a.users != null || this.top.user !== "" || this.top.token !== "";
    this.wsOverride = !!ws && (!!ws.user || !!ws.token || !!ws.noAuthUser);
    this.ws = this.wsOverride
      ? { user: ws!.user ?? "", password: ws!.password ?? "", token: ws!.token ?? "", noAuthUser: ws!.noAuthUser ?? "" }
      : this.top;
    this.mqttOverride = !!mqtt && (!!mqtt.user || !!mqtt.token || !!mqtt.noAuthUser);
    this.mqtt = this.mqttOverride
      ? { user: mqtt!.user ?? "", password: mqtt!.password ?? "", token: mqtt!.token ?? "", noAuthUser: mqtt!.noAuthUser ?? "" }
      : this.top;
    this.cookies = ws && (ws.userCookie || ws.passCookie || ws.tokenCookie) ? ws : null;
    this.nonceRequired = this.nkeys.size > 0;
    // nats-server's getDefaultAuthTimeout: 2 s, or the TLS timeout + 1 s when TLS is configured.
    const defaultTimeout = tlsTimeoutMs !== null ? tlsTimeoutMs + 1000 : DEFAULT_AUTH_TIMEOUT_MS;
    this.timeoutMs = a.timeoutMs || defaultTimeout;
    this.wsTimeoutMs = (this.wsOverride && ws!.timeoutMs) || this.timeoutMs;
    this.mqttTimeoutMs = mqtt?.timeoutMs || this.timeoutMs;
    // Only client-port connections are mapped: users that may not log in there are not candidates.
    this.tlsMapNames = tlsMap ? new Set([...this.users].filter(([, e]) => typeAllowed(e.user, "STANDARD")).map(([name]) => name)) : null;
  }

  /** An Authenticator when any authentication is configured, else null (the server then checks nothing). */
  static fromOptions(o: Options, accounts: Accounts = new Accounts(o)): Authenticator | null {
    const accountUsers: AccountUsers[] = [];
    for (const ao of o.accounts) {
      const account = accounts.get(ao.name);
      if (account !== undefined && ao.users.length > 0) accountUsers.push({ account, users: ao.users });
    }
    let authorization = o.authorization;
    // nats-server (configureAccounts): when the only configured account is the system account and there is
    // no authorization block, clients without credentials still get in, to `$G`, as a made-up no_auth_user,
    // so that users can be given to the system account alone.
    const a = authorization ?? {};
    const onlySystem = o.accounts.length === 1 && accounts.system !== null && accounts.get(o.accounts[0]!.name) === accounts.system;
    if (onlySystem && accountUsers.length > 0 && !a.users && !a.user && !a.token && !a.noAuthUser) {
      const name = `nats-${randomBytes(8).toString("hex")}`;
      authorization = { ...a, users: [{ user: name, password: randomBytes(16).toString("hex") }], noAuthUser: name };
    }
    const auth = new Authenticator(authorization, o.websocketAuth, o.tls ? (o.tls.timeoutMs ?? DEFAULT_TLS_TIMEOUT_MS) : null, accountUsers, o.tls?.verifyAndMap === true, o.mqtt.auth);
    return auth.required || auth.wsOverride || auth.mqttOverride ? auth : null;
  }

  /** Puts a new connection behind an AuthGate when its kind of client must authenticate. */
  attach(conn: Connection): void {
    const kind = conn.transport.kind;
    if (this.requiredFor(kind)) conn.authGate = new AuthGate(conn, this, this.newNonce() ?? "", this.timeoutFor(kind));
  }

  /** Must a client of this kind authenticate (CONNECT first, within the auth timeout)? */
  requiredFor(kind: Transport["kind"] | "mqtt"): boolean {
    return this.required || (kind === "websocket" && this.wsOverride) || (kind === "mqtt" && this.mqttOverride);
  }

  /** The auth timeout of MQTT clients: the mqtt block's authorization { timeout }, else the top level's. */
  get mqttAuthTimeoutMs(): number {
    return this.mqttTimeoutMs;
  }

  /** INFO's auth_required: as nats-server, false on the client port when a no_auth_user is set. */
  infoAuthRequired(kind: Transport["kind"]): boolean {
    if (kind === "websocket") return this.requiredFor(kind);
    return this.required && this.top.noAuthUser === "";
  }

  timeoutFor(kind: Transport["kind"]): number {
    return kind === "websocket" ? this.wsTimeoutMs : this.timeoutMs;
  }

  newNonce(): string | undefined {
    return this.nonceRequired ? newNonce() : undefined;
  }

  /** The no_auth_user a client of this kind becomes when it sends an op other than CONNECT first (or null). */
  noAuthUserFor(kind: Transport["kind"]): AuthenticatedUser | null {
    const user = this.namedUser((kind === "websocket" ? this.ws : this.top).noAuthUser);
    return user !== null && typeAllowed(user, kind === "websocket" ? "WEBSOCKET" : "STANDARD") ? user : null;
  }

  /** A configured user (or nkey user) by name, as no_auth_user names one. */
  private namedUser(name: string): AuthenticatedUser | null {
    if (name === "") return null;
    return this.users.get(name)?.user ?? this.nkeys.get(name)?.user ?? null;
  }

  /** Checks a CONNECT's credentials (cookies fill in what it leaves out, for WebSocket clients). */
  authenticate(
    kind: Transport["kind"], connect: Credentials, nonce: string, cookies: CookieCredentials | undefined, peer: CertificateIdentity | null = null,
    type: ConnectionType = kind === "websocket" ? "WEBSOCKET" : "STANDARD",
  ): AuthResult {
    const claim = this.resolve(kind, connect, nonce, cookies, peer, type);
    if (claim === null) return null;
    if (claim.secret === null) return claim.user;
    return settle(comparePassword(claim.secret, claim.given), claim.user);
  }

  /**
   * Who the credentials claim to be, and what is left to check: the configured password or token
   * (`secret`, plain or bcrypt) that `given` must match, or nothing (null) when the claim is decided
   * already (nkey signature, certificate, no_auth_user, no authentication). null: refused outright.
   * `peer`: the client's TLS certificate, read when verify_and_map is on. `type`: the kind of connection,
   * for users limited by allowed_connection_types (a leaf connection authenticating as a client's user
   * passes LEAFNODE or LEAFNODE_WS).
   */
  resolve(
    kind: Transport["kind"] | "mqtt", connect: Credentials, nonce: string, cookies: CookieCredentials | undefined, peer: CertificateIdentity | null = null,
    type: ConnectionType = kind === "websocket" ? "WEBSOCKET" : kind === "mqtt" ? "MQTT" : "STANDARD",
  ): Claim | null {
    if (!this.requiredFor(kind)) return { user: ANONYMOUS, secret: null, given: "" };
    const simple = kind === "websocket" ? this.ws : kind === "mqtt" ? this.mqtt : this.top;
    let user = str(connect.user);
    let pass = str(connect.pass);
    let token = str(connect.auth_token);
    if (cookies !== undefined && this.cookies !== null) {
      if (user === "") user = cookies.user ?? "";
      if (pass === "") pass = cookies.pass ?? "";
      if (token === "") token = cookies.token ?? "";
    }
    const nkey = str(connect.nkey);
    if (this.nkeys.size > 0 && nkey !== "") {
      const entry = this.nkeys.get(nkey);
      if (entry === undefined || !typeAllowed(entry.user, type)) return null;
      return entry.verifier.verify(nonce, str(connect.sig)) ? { user: entry.user, secret: null, given: "" } : null;
    }
    if (this.tlsMapNames !== null && type === "STANDARD" && this.users.size > 0) {
      const name = peer === null ? null : mapCertificateToUser(peer, this.tlsMapNames);
      const entry = name === null ? undefined : this.users.get(name);
      // As nats-server, the mapped user's password (usually none) must still match CONNECT's.
      return entry === undefined ? null : { user: entry.user, secret: entry.password, given: pass };
    }
    if (simple.noAuthUser !== "" && user === "" && pass === "" && token === "" && nkey === "") {
      const named = this.namedUser(simple.noAuthUser);
      if (named !== null) return typeAllowed(named, type) ? { user: named, secret: null, given: "" } : null;
    }
    if (this.users.size > 0) {
      if (user !== "") {
        const entry = this.users.get(user);
        if (entry === undefined || !typeAllowed(entry.user, type)) return null;
        return { user: entry.user, secret: entry.password, given: pass };
      }
    }
    if (simple.token !== "") return { user: ANONYMOUS, secret: simple.token, given: token };
    if (simple.user !== "") {
      if (user !== simple.user) return null;
      return { user: { ...ANONYMOUS, name: user }, secret: simple.password, given: pass };
    }
    return null;
  }

  /** The log line of a refused client, as nats-server's authViolation words it. */
  describeFailure(connect: Credentials): string {
    if (this.nkeys.size > 0) return `authentication error - Nkey ${JSON.stringify(str(connect.nkey))}`;
    if (this.users.size > 0) return `authentication error - User ${JSON.stringify(str(connect.user))}`;
    return "authentication error";
  }
}

function settle(match: boolean | Promise<boolean>, user: AuthenticatedUser): AuthResult {
  if (typeof match === "boolean") return match ? user : null;
  return match.then((ok) => (ok ? user : null));
}

/**
 * The configured auth cookies of a WebSocket upgrade request (websocket { user_cookie, pass_cookie,
 * token_cookie }), or undefined when none is configured or sent.
 */
export function cookieCredentials(cookieHeader: string | null, ws: WebSocketAuthOptions | null): CookieCredentials | undefined {
  if (cookieHeader === null || ws === null || !(ws.userCookie || ws.passCookie || ws.tokenCookie)) return undefined;
  const found: CookieCredentials = {};
  for (const part of cookieHeader.split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim();
    let value = part.slice(eq + 1).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    try {
      value = decodeURIComponent(value);
    } catch {
      // not percent-encoded: taken as it is
    }
    if (name === ws.userCookie) found.user = value;
    else if (name === ws.passCookie) found.pass = value;
    else if (name === ws.tokenCookie) found.token = value;
  }
  return found.user !== undefined || found.pass !== undefined || found.token !== undefined ? found : undefined;
}
