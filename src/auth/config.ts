// The security parts of a nats-server config file: `authorization`, `no_auth_user`, `tls`, and in the
// `websocket` block `tls`, `authorization`, `no_auth_user` and the cookie names; plus natter's own rate
// limits (`connection_rate_per_ip`, and `rate_limit` in a user entry). Shapes, key aliases and
// error texts follow nats-server's opts.go (parseAuthorization, parseUsers, parseUserPermissions,
// parseAllowResponses, parseSubjectPermission, checkPermSubjectArray, parseTLS, parseWebsocket).
// src/config/apply.ts hands these keys over; errors are ConfigErrors at the offending key.
import type { Options } from "../options.ts";
import { parseGoDuration } from "../config/duration.ts";
import { ConfigError, type ConfEntry, type ConfMap, type ConfNode } from "../config/parser.ts";
import { isValidSubscribeSubject } from "../subjects/subject.ts";
import { isValidPublicUserKey } from "./nkeys.ts";
import { isKnownCipherSuite } from "./ciphers.ts";
import {
  CONNECTION_TYPES,
  DEFAULT_ALLOW_RESPONSE_EXPIRES_MS,
  DEFAULT_ALLOW_RESPONSE_MAX,
  type AuthorizationOptions,
  type PermissionOptions,
  type RateLimitOptions,
  type ResponsePermissionOptions,
  type SubjectPermissionOptions,
  type TlsOptions,
  type UserOptions,
  type WebSocketAuthOptions,
} from "./options.ts";

type At = ConfEntry | ConfNode;

function fail(at: At, reason: string): never {
  throw new ConfigError(reason, at.pos);
}

function describe(n: ConfNode): string {
  switch (n.kind) {
    case "string":
      return `string ${JSON.stringify(n.value)}`;
    case "integer":
      return `integer ${n.raw}`;
    case "array":
      return "an array";
    case "map":
      return "a map";
    default:
      return `${n.kind} ${String(n.value)}`;
  }
}

function str(e: ConfEntry): string {
  if (e.node.kind !== "string") fail(e, `${e.key} must be a string, got ${describe(e.node)}`);
  return e.node.value;
}

function bool(e: ConfEntry): boolean {
  if (e.node.kind !== "bool") fail(e, `${e.key} must be a boolean, got ${describe(e.node)}`);
  return e.node.value;
}

function map(e: ConfEntry, what: string): ConfMap {
  if (e.node.kind !== "map") fail(e, `Expected ${what} to be a map/struct, got ${describe(e.node)}`);
  return e.node.value;
}

/** Seconds as a number (nats-server's authorization and tls `timeout`), or a duration string ("2s"). */
function seconds(e: ConfEntry): number {
  const n = e.node;
  if (n.kind === "integer" || n.kind === "float") return n.value * 1000;
  if (n.kind === "string") {
    try {
      return parseGoDuration(n.value);
    } catch (error) {
      fail(e, `error parsing ${e.key}: ${(error as Error).message}`);
    }
  }
  fail(e, `${e.key} must be a number of seconds or a duration, got ${describe(n)}`);
}

function unknown(e: ConfEntry, text = `unknown field "${e.key}"`): void {
  if (!e.usedAsVariable) fail(e, text);
}

// ---- top level -------------------------------------------------------------------------------

/** Applies a top-level security key; false when `e` is not one. */
export function applySecurityKey(e: ConfEntry, o: Options): boolean {
  switch (e.key.toLowerCase()) {
    case "authorization":
      o.authorization = { ...parseAuthorization(e), noAuthUser: o.authorization?.noAuthUser };
      return true;
    case "no_auth_user":
      o.authorization = { ...(o.authorization ?? {}), noAuthUser: str(e) };
      return true;
    case "tls":
      o.tls = parseTls(e);
      return true;
    case "connection_rate_per_ip": // natter's own (src/auth/ratelimit.ts)
      if (e.node.kind !== "integer" || e.node.value < 0) fail(e, `${e.key} must be a non-negative integer, got ${describe(e.node)}`);
      o.connectionRatePerIp = e.node.value;
      return true;
  }
  return false;
}

/** Applies a security key of the websocket block; false when `w` is not one. */
export function applyWebSocketSecurityKey(w: ConfEntry, o: Options): boolean {
  const set = (patch: WebSocketAuthOptions) => {
    o.websocketAuth = { ...(o.websocketAuth ?? {}), ...patch };
  };
  switch (w.key.toLowerCase()) {
    case "tls":
      o.wsTls = parseTls(w, "websocket");
      return true;
    case "authorization":
    case "authentication": {
      const a = parseSimpleAuth(w);
      if ((a.user || a.password) && a.token) fail(w, "Cannot have a user/pass and token");
      set(a);
      return true;
    }
    case "no_auth_user":
      set({ noAuthUser: str(w) });
      return true;
    case "user_cookie":
      set({ userCookie: str(w) });
      return true;
    case "pass_cookie":
      set({ passCookie: str(w) });
      return true;
    case "token_cookie":
      set({ tokenCookie: str(w) });
      return true;
    case "jwt_cookie":
      // nats-server needs trusted operators for it; natter has no JWT authentication at all.
      fail(w, `"websocket.${w.key}" is not supported: natter has no JWT (operator mode) authentication`);
  }
  return false;
}

// ---- authorization ---------------------------------------------------------------------------

export function parseAuthorization(e: ConfEntry): AuthorizationOptions {
  const a: AuthorizationOptions = {};
  let defaults: PermissionOptions | null = null;
  for (const k of map(e, "authorization").values()) {
    switch (k.key.toLowerCase()) {
      case "user":
      case "username":
        a.user = str(k);
        break;
      case "pass":
      case "password":
        a.password = str(k);
        break;
      case "token":
        a.token = str(k);
        break;
      case "timeout":
        a.timeoutMs = seconds(k);
        break;
      case "users":
        a.users = parseUsers(k);
        break;
      case "default_permission":
      case "default_permissions":
      case "permissions":
        defaults = parsePermissions(k);
        break;
      case "auth_callout":
      case "auth_hook":
        fail(k, `"authorization.${k.key}" is not supported yet`);
        break;
      default:
        unknown(k);
    }
  }
  if ((a.user || a.password) && a.token) fail(e, "Cannot have a user/pass and token");
  if (a.users && a.user) fail(e, "Can not have a single user/pass and a users array");
  if (a.users && a.token) fail(e, "Can not have a token and a users array");
  if (a.users) {
    const seen = new Set<string>();
    for (const u of a.users) {
      const id = u.nkey ?? u.user!;
      if (seen.has(id)) fail(e, `Duplicate ${u.nkey ? "nkey" : "user"} ${JSON.stringify(id)} detected`);
      seen.add(id);
      if (!u.permissions && defaults) u.permissions = defaults;
    }
  }
  if (defaults) a.defaultPermissions = defaults;
  return a;
}

/** A `users` array (authorization block or an account): users with passwords, or nkey users. */
export function parseUsers(e: ConfEntry): UserOptions[] {
  if (e.node.kind !== "array") fail(e, `Expected users field to be an array, got ${describe(e.node)}`);
  const users: UserOptions[] = [];
  for (const item of e.node.value) {
    if (item.kind !== "map") fail(item, `Expected user entry to be a map/struct, got ${describe(item)}`);
    const u: UserOptions = {};
    for (const k of item.value.values()) {
      switch (k.key.toLowerCase()) {
        case "nkey":
          u.nkey = str(k);
          break;
        case "user":
        case "username":
          u.user = str(k);
          break;
        case "pass":
        case "password":
          u.password = str(k);
          break;
        case "permission":
        case "permissions":
        case "authorization":
          u.permissions = parsePermissions(k);
          break;
        case "rate_limit": // natter's own (src/auth/ratelimit.ts)
          u.rateLimit = parseRateLimit(k);
          break;
        case "allowed_connection_types":
        case "connection_types":
        case "clients":
          u.allowedConnectionTypes = parseConnectionTypes(k);
          break;
        default:
          unknown(k);
      }
    }
    if (!u.nkey && u.user === undefined) fail(item, "User entry requires a user");
    if (u.nkey) {
      if (!isValidPublicUserKey(u.nkey)) fail(item, "Not a valid public nkey for a user");
      if (u.user !== undefined || u.password !== undefined) fail(item, "Nkey users do not take usernames or passwords");
    }
    users.push(u);
  }
  return users;
}

/** nats-server's parseAllowedConnectionTypes: a string or strings, each a known type (any case). */
function parseConnectionTypes(e: ConfEntry): string[] {
  const n = e.node;
  const items = n.kind === "array" ? n.value : [n];
  const types: string[] = [];
  const unknownTypes: string[] = [];
  for (const item of items) {
    if (item.kind !== "string") fail(item, `error parsing allowed connection types: unsupported type ${describe(item)}`);
    const t = item.value.toUpperCase();
    if ((CONNECTION_TYPES as readonly string[]).includes(t)) types.push(t);
    else unknownTypes.push(t);
  }
  if (unknownTypes.length > 0) fail(e, `invalid connection types [${unknownTypes.map((t) => JSON.stringify(t)).join(" ")}]`);
  return types;
}

/** `rate_limit { msgs_per_sec: N, bytes_per_sec: SIZE }` (natter's own). */
export function parseRateLimit(e: ConfEntry): RateLimitOptions {
  const r: RateLimitOptions = { msgsPerSec: 0, bytesPerSec: 0 };
  for (const k of map(e, "rate_limit").values()) {
    const key = k.key.toLowerCase();
    if (key !== "msgs_per_sec" && key !== "bytes_per_sec") {
      unknown(k);
      continue;
    }
    if (k.node.kind !== "integer" || k.node.value < 0) fail(k, `${k.key} must be a non-negative integer, got ${describe(k.node)}`);
    if (key === "msgs_per_sec") r.msgsPerSec = k.node.value;
    else r.bytesPerSec = k.node.value;
  }
  return r;
}

export function parsePermissions(e: ConfEntry): PermissionOptions {
  const p: PermissionOptions = {};
  if (e.node.kind !== "map") fail(e, `Expected permissions to be a map/struct, got ${describe(e.node)}`);
  for (const k of e.node.value.values()) {
    switch (k.key.toLowerCase()) {
      case "pub":
      case "publish":
      case "import":
        p.publish = parseSubjectPermission(k, false);
        break;
      case "sub":
      case "subscribe":
      case "export":
        p.subscribe = parseSubjectPermission(k, true);
        break;
      case "publish_allow_responses":
      case "allow_responses":
        p.responses = parseAllowResponses(k);
        break;
      default:
        unknown(k, `Unknown field ${JSON.stringify(k.key)} parsing permissions`);
    }
  }
  return p;
}

/** `{ allow: [...], deny: [...] }`, or the old style: a subject or a list of subjects (= allow). */
function parseSubjectPermission(e: ConfEntry, subscribe: boolean): SubjectPermissionOptions | null {
  if (e.node.kind !== "map") return { allow: permSubjects(e, e.node, subscribe) };
  if (e.node.value.size === 0) return null;
  const p: SubjectPermissionOptions = {};
  for (const k of e.node.value.values()) {
    switch (k.key.toLowerCase()) {
      case "allow":
        p.allow = permSubjects(k, k.node, subscribe);
        break;
      case "deny":
        p.deny = permSubjects(k, k.node, subscribe);
        break;
      default:
        unknown(k, `Unknown field name ${JSON.stringify(k.key)} parsing subject permissions, only 'allow' or 'deny' are permitted`);
    }
  }
  return p;
}

/** nats-server's parsePermSubjects + checkPermSubjectArray: valid subjects, or "subject queue". */
function permSubjects(e: ConfEntry, n: ConfNode, _subscribe: boolean): string[] {
  let subjects: string[];
  if (n.kind === "string") subjects = [n.value];
  else if (n.kind === "array") {
    subjects = n.value.map((item) => {
      if (item.kind !== "string") fail(item, "Subject in permissions array cannot be cast to string");
      return item.value;
    });
  } else fail(e, `Expected subject permissions to be a subject, or array of subjects, got ${describe(n)}`);
  for (const s of subjects) {
    if (isValidSubscribeSubject(s)) continue;
    const parts = s.trim().split(/\s+/);
    if (parts.length !== 2) fail(e, `subject ${JSON.stringify(s)} is not a valid subject`);
    if (!isValidSubscribeSubject(parts[0]!)) fail(e, `subject ${JSON.stringify(parts[0])} is not a valid subject`);
  }
  return subjects;
}

function parseAllowResponses(e: ConfEntry): ResponsePermissionOptions | null {
  const rp: ResponsePermissionOptions = { max: DEFAULT_ALLOW_RESPONSE_MAX, expiresMs: DEFAULT_ALLOW_RESPONSE_EXPIRES_MS };
  if (e.node.kind === "bool") return e.node.value ? rp : null;
  if (e.node.kind !== "map") fail(e, "error parsing response permissions, expected a boolean or a map");
  for (const k of e.node.value.values()) {
    switch (k.key.toLowerCase()) {
      case "max":
      case "max_msgs":
      case "max_messages":
      case "max_responses":
        if (k.node.kind !== "integer") fail(k, `${k.key} must be an integer, got ${describe(k.node)}`);
        // 0 keeps the default; a negative value means unlimited.
        if (k.node.value !== 0) rp.max = k.node.value;
        break;
      case "expires":
      case "expiration":
      case "ttl": {
        if (k.node.kind !== "string") fail(k, "error parsing expires, not a duration string");
        let ms: number;
        try {
          ms = parseGoDuration(k.node.value);
        } catch (error) {
          fail(k, `error parsing expires: ${(error as Error).message}`);
        }
        if (ms !== 0) rp.expiresMs = ms;
        break;
      }
      default:
        unknown(k, `Unknown field ${JSON.stringify(k.key)} parsing permissions`);
    }
  }
  return rp;
}

/** The websocket block's `authorization { user, password, token, timeout }` (nats-server's parseSimpleAuth). */
export function parseSimpleAuth(e: ConfEntry): WebSocketAuthOptions {
  const a: WebSocketAuthOptions = {};
  for (const k of map(e, "authorization").values()) {
    switch (k.key.toLowerCase()) {
      case "user":
      case "username":
        a.user = str(k);
        break;
      case "pass":
      case "password":
        a.password = str(k);
        break;
      case "token":
        a.token = str(k);
        break;
      case "timeout":
        a.timeoutMs = seconds(k);
        break;
      default:
        unknown(k);
    }
  }
  return a;
}

// ---- tls -------------------------------------------------------------------------------------

/** Keys of nats-server's tls block natter does not implement (README, "Config keys natter refuses"). */
const UNSUPPORTED_TLS_KEYS = new Set([
  "curve_preferences", "cert_match_by", "cert_match",
  "ocsp_peer", "certs", "certificates",
]);

/** Where a tls block is: the client port maps certificates to users and checks pins; the others not yet. */
export type TlsContext = "client" | "websocket" | "leafnodes";

const PINNED_CERT = /^[A-Fa-f0-9]{64}$/;

export function parseTls(e: ConfEntry, context: TlsContext = "client"): TlsOptions {
  const t: TlsOptions = { certFile: "", keyFile: "" };
  for (const k of map(e, "tls").values()) {
    const key = k.key.toLowerCase();
    const file = (what: string) => {
      if (k.node.kind !== "string") fail(k, `error parsing tls config, expected '${what}' to be filename`);
      return k.node.value;
    };
    const flag = () => {
      if (k.node.kind !== "bool") fail(k, `error parsing tls config, expected '${key}' to be a boolean`);
      return k.node.value;
    };
    switch (key) {
      case "cert_file":
        t.certFile = file("cert_file");
        break;
      case "key_file":
        t.keyFile = file("key_file");
        break;
      case "ca_file":
        t.caFile = file("ca_file");
        break;
      case "verify":
        t.verify = flag();
        break;
      case "timeout":
        if (k.node.kind !== "integer" && k.node.kind !== "float" && k.node.kind !== "string") fail(k, "error parsing tls config, 'timeout' wrong type");
        t.timeoutMs = seconds(k);
        break;
      case "handshake_first":
      case "first":
      case "immediate":
        t.handshakeFirst = flag();
        break;
      case "verify_and_map": {
        const on = flag();
        if (on && context !== "client") fail(k, `"${context}.tls.${k.key}" is not supported yet (only on the client port)`);
        if (on) t.verify = true;
        t.verifyAndMap = on;
        break;
      }
      case "verify_cert_and_check_known_urls":
        // nats-server takes it only where a server dials (routes, gateways): every tls block natter has is a client context.
        if (flag()) fail(k, "verify_cert_and_check_known_urls not supported in this context");
        break;
      case "pinned_certs": {
        if (k.node.kind !== "array") fail(k, "error parsing tls config, expected 'pinned_certs' to be a list of hex-encoded sha256 of DER encoded SubjectPublicKeyInfo");
        if (context !== "client") fail(k, `"${context}.tls.${k.key}" is not supported yet (only on the client port)`);
        const pins: string[] = [];
        for (const item of k.node.value) {
          const entry = item.kind === "string" ? item.value.toLowerCase() : "";
          if (!PINNED_CERT.test(entry)) {
            fail(item, `error parsing tls config, 'pinned_certs' key ${entry} does not look like hex-encoded sha256 of DER encoded SubjectPublicKeyInfo`);
          }
          pins.push(entry);
        }
        if (pins.length > 0) t.pinnedCerts = pins;
        break;
      }
      case "insecure":
        // nats-server: skip verifying the *server* a connection dials (InsecureSkipVerify). Every tls block
        // natter reads here is a listening side, where nats-server gives it no effect either.
        flag();
        break;
      case "min_version": {
        if (k.node.kind !== "string") fail(k, `error parsing tls config: 'min_version' wrong type: ${describe(k.node)}`);
        const v = k.node.value;
        if (v === "1.0" || v === "1.1") fail(k, `error parsing tls config: unsupported TLS version: TLS ${v}`);
        if (v !== "1.2" && v !== "1.3") fail(k, `error parsing tls config: unknown version: ${v}`);
        t.minVersion = v;
        break;
      }
      case "cipher_suites": {
        if (k.node.kind !== "array") fail(k, `error parsing tls config, 'cipher_suites' must be an array, got ${describe(k.node)}`);
        if (k.node.value.length === 0) fail(k, "error parsing tls config, 'cipher_suites' cannot be empty");
        t.cipherSuites = k.node.value.map((item) => {
          const name = item.kind === "string" ? item.value : String((item as { value?: unknown }).value);
          if (!isKnownCipherSuite(name)) fail(item, `unrecognized cipher ${name}`);
          return name;
        });
        break;
      }
      case "connection_rate_limit":
        if (k.node.kind !== "integer") fail(k, "error parsing tls config, 'connection_rate_limit' wrong type");
        if (context !== "client") fail(k, `"${context}.tls.${k.key}" is not supported yet (only on the client port)`);
        t.connectionRateLimit = k.node.value;
        break;
      case "cert_store":
        // The Windows certificate store; nats-server refuses it the same way on other systems.
        fail(k, "cert_store not compatible with current operating system");
        break;
      default:
        if (UNSUPPORTED_TLS_KEYS.has(key)) fail(k, `"tls.${k.key}" is not supported yet`);
        fail(k, `error parsing tls config, unknown field [${JSON.stringify(k.key)}]`);
    }
  }
  if (!t.certFile) fail(e, "missing 'cert_file' in TLS configuration");
  if (!t.keyFile) fail(e, "missing 'key_file' in TLS configuration");
  return t;
}
