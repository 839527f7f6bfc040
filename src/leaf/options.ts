// Leafnode settings: the `leafnodes {}` block of the config file (nats-server's parseLeafNodes and
// parseRemoteLeafNodes, server/opts.go) and the --leafnode_remote / --leafnodes_listen flags.
//
//   leafnodes {
//     listen: "0.0.0.0:7422"            # or port / host; accept leaf connections (the hub side)
//     authorization { user, password, account, timeout, users [ { user, password, account } ] }
//     tls { cert_file, key_file, ca_file, verify, timeout }   # leaf connections must use TLS (verify: mutual)
//     reconnect: 1                       # seconds before redialing a hub (nats-server's default 1 s)
//     advertise: "host:port", no_advertise: true
//     remotes [                          # dial these hubs (the leaf side)
//       { url: "nats-leaf://user:pass@hub:7422"   # or urls: [...]; ws:// for WebSocket
//         user, password, token             # natter's own, instead of URL user info
//         credentials: "x.creds"            # user JWT + nkey seed: jwt in CONNECT, the hub's nonce signed
//         tls { ca_file, cert_file, key_file, insecure, timeout }   # TLS to the hub (see below)
//         account: "A"                      # the local account the link carries (default $G)
//         hub, no_randomize, ws_compression, ws_no_masking }
//     ]
//   }
//
// TLS, as nats-server: the hub sends its INFO in plaintext with tls_required, then both sides switch to
// TLS on the same socket. A remote uses TLS when it has a `tls {}` block or when the hub's INFO requires
// it (then with the system's CAs); the URL scheme (nats-leaf://, tls://, nats://) does not decide it.
// A hub with `tls { verify: true }` requires a client certificate chained to its ca_file (mutual TLS).
//
// Accounts, as nats-server: a remote's link carries one local account (`account`, default $G): that
// account's interest goes to the hub, the hub's messages are delivered into it. An accepted leaf is
// bound to the account of the user it authenticated as: leafnodes.authorization's `account` for the
// single user (and for leaf nodes without credentials when no authentication is configured), a user's
// `account` in its users list, or the account of a user in the accounts block (the clients' users).
// Every account named must exist (nats-server's validateLeafNode).
//
// Keys nats-server knows that natter does not implement (compression, deny_imports, …) are refused
// with "not supported yet": accepting them would pretend they work.
import { nodeFs } from "../node-builtins.ts";
import { ConfigError, type ConfEntry, type ConfNode } from "../config/parser.ts";
import { OptionsError, type Options } from "../options.ts";
import { parseTls } from "../auth/config.ts";
import { checkCredentials } from "./credentials.ts";
import type { TlsOptions } from "../auth/options.ts";
import { DEFAULT_SYSTEM_ACCOUNT, GLOBAL_ACCOUNT } from "../accounts/options.ts";

export interface RemoteLeafOptions {
  /** Hub URLs as given: nats-leaf://, nats://, tls:// (refused), ws://, wss:// (refused). */
  urls: string[];
  /** Credentials (URL user info wins over these, per URL, as nats-server). */
  user?: string;
  password?: string;
  /** Sent as CONNECT auth_token: a natter hub reads it; nats-server hubs do not take tokens from leaf nodes. */
  token?: string;
  /** Declares this side the hub of the connection (nats-server's `hub: true`). */
  hub?: boolean;
  noRandomize?: boolean;
  wsCompression?: boolean;
  wsNoMasking?: boolean;
  /** TLS to the hub (also used without this block when the hub requires TLS). */
  tls?: RemoteTlsOptions;
  /** A credentials file (user JWT and nkey seed, as `nsc` writes them). */
  credentials?: string;
  /** The local account the link carries (nats-server's LocalAccount); undefined = $G. */
  account?: string;
}

/** A remote's `tls {}`: this side is the TLS client. Paths as given. */
export interface RemoteTlsOptions {
  /** CAs the hub's certificate must chain to (default: the system's). */
  caFile?: string;
  /** A client certificate and key, for hubs with verify (mutual TLS). */
  certFile?: string;
  keyFile?: string;
  /** Skip verifying the hub's certificate (nats-server's insecure; logged as a warning). */
  insecure?: boolean;
  /** Handshake deadline (nats-server's default for leaf connections: 2 s). */
  timeoutMs?: number;
}

export interface LeafAuthorizationOptions {
  user?: string;
  password?: string;
  /** The account `user` (or a leaf without credentials, when nothing else authenticates) is bound to; undefined = $G. */
  account?: string;
  /** Each bound to its `account` (undefined = $G). */
  users?: { user: string; password: string; account?: string }[];
  /** Time a leaf has to send CONNECT; 0 = the default (2 s). */
  timeoutMs?: number;
}

export interface LeafnodeOptions {
  /** Listener for leaf connections (port 0 = none, -1 = random). */
  host: string;
  port: number;
  /** Authorization of accepted leaf connections; null = the client authorization (if any). */
  authorization: LeafAuthorizationOptions | null;
  /** Hubs to dial. */
  remotes: RemoteLeafOptions[];
  /** Wait before redialing a hub that went away (nats-server's `reconnect`, default 1 s); backoff grows from it. */
  reconnectIntervalMs: number;
  /** host:port told to leaf nodes in leafnode_urls; "" = the listen address. */
  advertise: string;
  noAdvertise: boolean;
  /** TLS on the leafnode port (the INFO in plaintext, then the handshake); null = plaintext. */
  tls: TlsOptions | null;
  /** `min_version`: the oldest nats-server version a leaf node may announce in its CONNECT ("" = any). */
  minVersion: string;
}

export const DEFAULT_LEAFNODE_PORT = 7422;
export const DEFAULT_RECONNECT_INTERVAL_MS = 1000;

export function defaultLeafnodeOptions(): LeafnodeOptions {
  return { host: "0.0.0.0", port: 0, authorization: null, remotes: [], reconnectIntervalMs: DEFAULT_RECONNECT_INTERVAL_MS, advertise: "", noAdvertise: false, tls: null, minVersion: "" };
}

/** The settings of the leafnodes block natter does not implement yet (nats-server has them). */
const UNSUPPORTED_LEAFNODE_KEYS: ReadonlySet<string> = new Set(["compression"]);
const UNSUPPORTED_REMOTE_KEYS: ReadonlySet<string> = new Set([
  "nkey", "seed", "deny_imports", "deny_import", "deny_exports", "deny_export", "compression", "jetstream_cluster_migrate", "js_cluster_migrate",
]);

/** A parsed hub URL. */
export interface LeafUrl {
  /** "tcp" (nats-leaf://, tls://, nats://, bare host:port) or "ws" (ws://). */
  transport: "tcp" | "ws";
  host: string;
  port: number;
  /** The path of a ws:// URL (appended to /leafnode, as nats-server does). */
  path: string;
  user: string;
  password: string;
  /** For logs: the URL without credentials. */
  display: string;
}

/** Parses a hub URL; throws OptionsError with a one-line reason. */
export function parseLeafUrl(raw: string): LeafUrl {
  const text = raw.trim();
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `nats-leaf://${text}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new OptionsError(`invalid leafnode remote URL ${JSON.stringify(raw)}`);
  }
  const scheme = url.protocol.slice(0, -1).toLowerCase();
  let transport: "tcp" | "ws";
  // As nats-server: tls:// is a TCP URL like the others; TLS comes from the remote's tls {} or the hub's INFO.
  if (scheme === "nats-leaf" || scheme === "nats" || scheme === "tls" || scheme === "leafnode" || scheme === "tcp") transport = "tcp";
  else if (scheme === "ws") transport = "ws";
  else if (scheme === "wss") throw new OptionsError(`leafnode remote ${JSON.stringify(raw)}: TLS over WebSocket (wss://) is not supported yet`);
  else throw new OptionsError(`leafnode remote ${JSON.stringify(raw)}: unknown scheme "${scheme}" (nats-leaf://, tls://, nats:// or ws://)`);
  const host = url.hostname.replace(/^\[|\]$/g, "");
  if (host === "") throw new OptionsError(`leafnode remote ${JSON.stringify(raw)}: no host`);
  const port = url.port === "" ? (transport === "ws" ? 80 : DEFAULT_LEAFNODE_PORT) : Number(url.port);
  const path = transport === "ws" && url.pathname !== "/" ? url.pathname : "";
  return {
    transport,
    host,
    port,
    path,
    user: decodeURIComponent(url.username),
    password: decodeURIComponent(url.password),
    display: `${scheme}://${url.hostname}:${port}${path}`,
  };
}

// ---- config file --------------------------------------------------------------------------

function fail(e: ConfEntry | ConfNode, reason: string): never {
  throw new ConfigError(reason, e.pos);
}

function describe(n: ConfNode): string {
  return n.kind === "string" ? `string ${JSON.stringify(n.value)}` : n.kind;
}

function str(e: ConfEntry): string {
  if (e.node.kind !== "string") fail(e, `${e.key} must be a string, got ${describe(e.node)}`);
  return e.node.value;
}

function bool(e: ConfEntry): boolean {
  if (e.node.kind !== "bool") fail(e, `${e.key} must be a boolean, got ${describe(e.node)}`);
  return e.node.value;
}

function port(e: ConfEntry): number {
  if (e.node.kind !== "integer" || e.node.value < -1 || e.node.value > 65535) fail(e, `${e.key} must be a port number (0-65535, or -1 for a random port)`);
  return e.node.value;
}

function seconds(e: ConfEntry): number {
  const n = e.node;
  if (n.kind === "integer" || n.kind === "float") {
    if (n.value < 0) fail(e, `${e.key} can not be negative`);
    return n.value * 1000;
  }
  fail(e, `${e.key} must be a number of seconds, got ${describe(n)}`);
}

function listen(e: ConfEntry): { host: string | null; port: number } {
  const n = e.node;
  if (n.kind === "integer") return { host: null, port: n.value };
  if (n.kind !== "string") fail(e, `expected port or host:port, got ${describe(n)}`);
  const m = /^(?:\[([^\]]*)\]|([^:]*)):(-?\d+)$/.exec(n.value);
  if (!m) fail(e, `could not parse address string ${JSON.stringify(n.value)}`);
  const p = Number(m[3]);
  if (p < -1 || p > 65535) fail(e, `could not parse port ${JSON.stringify(m[3])}`);
  return { host: m[1] ?? m[2]!, port: p };
}

function unknown(k: ConfEntry, unsupported: ReadonlySet<string>, where: string): void {
  if (unsupported.has(k.key.toLowerCase())) fail(k, `"${where}.${k.key}" is not supported yet`);
  if (!k.usedAsVariable) fail(k, `unknown field "${k.key}"`);
}

/** Applies `leafnodes {}` (also spelled `leaf`); false when `e` is another key. Errors are ConfigErrors at the key. */
export function applyLeafnodesKey(e: ConfEntry, o: Options): boolean {
  const key = e.key.toLowerCase();
  if (key !== "leafnodes" && key !== "leaf") return false;
  const n = e.node;
  if (n.kind !== "map") fail(e, `Expected map to define a leafnode, got ${describe(n)}`);
  const ln = o.leafnodes ?? defaultLeafnodeOptions();
  for (const k of n.value.values()) {
    switch (k.key.toLowerCase()) {
      case "listen": {
        const hp = listen(k);
        if (hp.host !== null) ln.host = hp.host;
        ln.port = hp.port;
        break;
      }
      case "port":
        ln.port = port(k);
        break;
      case "host":
      case "net":
        ln.host = str(k);
        break;
      case "authorization":
        ln.authorization = leafAuthorization(k);
        break;
      case "remotes":
        ln.remotes = remotes(k);
        break;
      case "reconnect":
      case "reconnect_delay":
      case "reconnect_interval":
        ln.reconnectIntervalMs = seconds(k) || DEFAULT_RECONNECT_INTERVAL_MS;
        break;
      case "advertise":
      case "leafnode_advertise":
        ln.advertise = str(k);
        break;
      case "no_advertise":
        ln.noAdvertise = bool(k);
        break;
      case "min_version":
      case "minimum_version": {
        // nats-server's checkLeafMinVersionConfig: a version of at least 2.8.0.
        const v = str(k);
        const parts = parseVersion(v);
        if (parts === null) fail(k, "invalid leafnode's minimum version: invalid semver");
        if (!versionAtLeast(parts, [2, 8, 0])) fail(k, "the minimum version should be at least 2.8.0");
        ln.minVersion = v;
        break;
      }
      case "tls": {
        const t = parseTls(k, "leafnodes");
        if (t.handshakeFirst) fail(k, `"leafnodes.tls.handshake_first" is not supported yet`);
        ln.tls = t;
        break;
      }
      default:
        unknown(k, UNSUPPORTED_LEAFNODE_KEYS, "leafnodes");
    }
  }
  o.leafnodes = ln;
  return true;
}

function leafAuthorization(e: ConfEntry): LeafAuthorizationOptions {
  if (e.node.kind !== "map") fail(e, `Expected a map for leafnodes authorization, got ${describe(e.node)}`);
  const auth: LeafAuthorizationOptions = {};
  for (const k of e.node.value.values()) {
    switch (k.key.toLowerCase()) {
      case "user":
      case "username":
        auth.user = str(k);
        break;
      case "pass":
      case "password":
        auth.password = str(k);
        break;
      case "timeout":
        auth.timeoutMs = seconds(k);
        break;
      case "users": {
        if (k.node.kind !== "array") fail(k, "users must be an array");
        auth.users = k.node.value.map((item) => {
          if (item.kind !== "map") fail(item, "each leafnode user must be a map");
          let user = "";
          let password = "";
          let account: string | undefined;
          for (const u of item.value.values()) {
            const uk = u.key.toLowerCase();
            if (uk === "user" || uk === "username") user = str(u);
            else if (uk === "pass" || uk === "password") password = str(u);
            else if (uk === "account") account = str(u);
            else if (!u.usedAsVariable) fail(u, `unknown field "${u.key}"`);
          }
          if (user === "") fail(item, "a leafnode user needs a user name");
          return account === undefined ? { user, password } : { user, password, account };
        });
        break;
      }
      case "account":
        auth.account = str(k);
        break;
      default:
        if (k.key.toLowerCase() === "token") fail(k, `"leafnodes.authorization.token" is not supported: as nats-server, leaf nodes authenticate with user and password`);
        if (!k.usedAsVariable) fail(k, `unknown field "${k.key}"`);
    }
  }
  if (auth.user !== undefined && auth.users !== undefined) fail(e, "can not have a single user/pass and a users array");
  return auth;
}

function remotes(e: ConfEntry): RemoteLeafOptions[] {
  if (e.node.kind !== "array") fail(e, `Expected remotes field to be an array, got ${describe(e.node)}`);
  return e.node.value.map((item) => {
    if (item.kind !== "map") fail(item, `Expected remote leafnode entry to be a map/struct, got ${describe(item)}`);
    const remote: RemoteLeafOptions = { urls: [] };
    for (const k of item.value.values()) {
      switch (k.key.toLowerCase()) {
        case "url":
        case "urls": {
          const list = k.node.kind === "array" ? k.node.value : [k.node];
          remote.urls = list.map((u) => {
            if (u.kind !== "string") fail(k, `Expected remote leafnode url to be an array or string, got ${describe(u)}`);
            try {
              parseLeafUrl(u.value);
            } catch (error) {
              if (error instanceof OptionsError) fail(k, error.message);
              throw error;
            }
            return u.value;
          });
          break;
        }
        case "user":
        case "username":
          remote.user = str(k);
          break;
        case "pass":
        case "password":
          remote.password = str(k);
          break;
        case "token":
          remote.token = str(k);
          break;
        case "creds":
        case "credentials":
          remote.credentials = str(k);
          break;
        case "tls":
          remote.tls = remoteTls(k);
          break;
        case "account":
        case "local":
          remote.account = str(k);
          break;
        case "hub":
          remote.hub = bool(k);
          break;
        case "no_randomize":
        case "dont_randomize":
          remote.noRandomize = bool(k);
          break;
        case "ws_compress":
        case "ws_compression":
        case "websocket_compress":
        case "websocket_compression":
          remote.wsCompression = bool(k);
          break;
        case "ws_no_masking":
        case "websocket_no_masking":
          remote.wsNoMasking = bool(k);
          break;
        default:
          unknown(k, UNSUPPORTED_REMOTE_KEYS, "leafnodes.remotes");
      }
    }
    if (remote.urls.length === 0) fail(item, "a leafnode remote needs a url");
    const kinds = new Set(remote.urls.map((u) => parseLeafUrl(u).transport));
    if (kinds.size > 1) fail(item, "a leafnode remote's urls must all be WebSocket (ws://) or all not");
    return remote;
  });
}

/** A remote's tls {}: as nats-server's parseTLS for a client context (no certificate required). */
function remoteTls(e: ConfEntry): RemoteTlsOptions {
  if (e.node.kind !== "map") fail(e, `Expected a map for a leafnode remote's tls, got ${describe(e.node)}`);
  const t: RemoteTlsOptions = {};
  for (const k of e.node.value.values()) {
    switch (k.key.toLowerCase()) {
      case "ca_file":
        t.caFile = str(k);
        break;
      case "cert_file":
        t.certFile = str(k);
        break;
      case "key_file":
        t.keyFile = str(k);
        break;
      case "insecure":
        t.insecure = bool(k);
        break;
      case "verify":
        bool(k); // a server-side setting; a dialing side always verifies the hub unless insecure
        break;
      case "timeout":
        t.timeoutMs = seconds(k);
        break;
      case "handshake_first":
      case "first":
      case "immediate":
        fail(k, `"leafnodes.remotes.tls.${k.key}" is not supported yet`);
        break;
      default:
        if (!k.usedAsVariable) fail(k, `error parsing tls config, unknown field [${JSON.stringify(k.key)}]`);
    }
  }
  if ((t.certFile === undefined) !== (t.keyFile === undefined)) fail(e, "a leafnode remote's tls needs both cert_file and key_file, or neither");
  return t;
}

// ---- flags --------------------------------------------------------------------------------
// The flags have Options fields of their own (leafnodeRemoteFlags, leafnodesListenFlag): flags are laid
// over the config file key by key, and a flag must add to the leafnodes block, not replace it.

/** --leafnode_remote URL[,URL…]: one more remote (given twice: two remotes). */
export function addRemoteFlag(o: Options, value: string, flag: string): void {
  const urls = value.split(",").map((s) => s.trim()).filter(Boolean);
  if (urls.length === 0) throw new OptionsError(`flag -${flag} needs a URL, e.g. nats-leaf://hub:7422`);
  for (const u of urls) {
    try {
      parseLeafUrl(u);
    } catch (error) {
      throw new OptionsError(`invalid value "${value}" for flag -${flag}: ${(error as Error).message}`);
    }
  }
  o.leafnodeRemoteFlags = [...o.leafnodeRemoteFlags, urls.join(",")]; // a new array: the flag is recorded
}

/** --leafnodes_listen host:port (port -1: random). */
export function setListenFlag(o: Options, value: string, flag: string): void {
  parseListenFlag(value, flag);
  o.leafnodesListenFlag = value;
}

function parseListenFlag(value: string, flag: string): { host: string; port: number } {
  const m = /^(?:[a-z-]+:\/\/)?(?:\[([^\]]*)\]|([^:/]*)):(-?\d+)\/?$/i.exec(value.trim());
  const p = m ? Number(m[3]) : NaN;
  if (!m || !(p >= -1 && p <= 65535)) throw new OptionsError(`invalid value "${value}" for flag -${flag}: expected host:port`);
  return { host: m[1] ?? (m[2] || "0.0.0.0"), port: p };
}

/** The leafnodes settings in effect: the config block with the flags added; null when leafnodes are off. */
export function effectiveLeafnodeOptions(o: Options): LeafnodeOptions | null {
  if (o.leafnodes === null && o.leafnodeRemoteFlags.length === 0 && o.leafnodesListenFlag === "") return null;
  const ln: LeafnodeOptions = o.leafnodes === null ? defaultLeafnodeOptions() : { ...o.leafnodes, remotes: [...o.leafnodes.remotes] };
  for (const urls of o.leafnodeRemoteFlags) ln.remotes.push({ urls: urls.split(",") });
  if (o.leafnodesListenFlag !== "") {
    const hp = parseListenFlag(o.leafnodesListenFlag, "leafnodes_listen");
    ln.host = hp.host;
    ln.port = hp.port;
  }
  return ln;
}

/** Checks a complete set of leafnode options. */
export function validateLeafnodeOptions(o: Options): void {
  const ln = effectiveLeafnodeOptions(o);
  if (ln === null) return;
  // Files must be readable now: a server that cannot load them should not start.
  const files: string[] = [];
  if (ln.tls !== null) files.push(ln.tls.certFile, ln.tls.keyFile, ...(ln.tls.caFile ? [ln.tls.caFile] : []));
  for (const r of ln.remotes) {
    for (const f of [r.tls?.caFile, r.tls?.certFile, r.tls?.keyFile, r.credentials]) if (f) files.push(f);
  }
  for (const file of files) {
    try {
      nodeFs().readFileSync(file);
    } catch (error) {
      throw new OptionsError(`leafnodes: cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
  }
  for (const r of ln.remotes) {
    if (r.credentials === undefined) continue;
    try {
      checkCredentials(r.credentials);
    } catch (error) {
      throw new OptionsError(`leafnode remote credentials ${r.credentials}: ${(error as Error).message}`);
    }
  }
  // As nats-server (validateLeafNode): every account named must exist ($G always does, and the system
  // account unless no_system_account).
  const names = new Set<string>([GLOBAL_ACCOUNT, ...o.accounts.map((a) => a.name)]);
  if (!o.noSystemAccount) names.add(o.systemAccount || DEFAULT_SYSTEM_ACCOUNT);
  const checkAccount = (name: string | undefined, where: string) => {
    if (name !== undefined && name !== "" && !names.has(name)) throw new OptionsError(`cannot find local account ${JSON.stringify(name)} specified in leafnode ${where}`);
  };
  checkAccount(ln.authorization?.account, "authorization");
  for (const u of ln.authorization?.users ?? []) checkAccount(u.account, "authorization");
  for (const r of ln.remotes) checkAccount(r.account, "remote");
  if (ln.port > 0 && (ln.port === o.port || ln.port === o.wsPort || ln.port === o.httpPort || ln.port === o.clusterPort)) {
    throw new OptionsError(`leafnode port ${ln.port} is already used by another listener`);
  }
}

/** A version's major, minor and patch (nats-server's semVerRe: `v` optional, all three numbers needed); null when not one. */
export function parseVersion(version: string): [number, number, number] | null {
  const m = /^v?(\d+)\.(\d+)\.(\d+)/.exec(version);
  return m === null ? null : [Number(m[1]), Number(m[2]), Number(m[3])];
}

/** nats-server's versionAtLeast. */
export function versionAtLeast(v: readonly number[], min: readonly number[]): boolean {
  for (let i = 0; i < 3; i++) if (v[i] !== min[i]) return v[i]! > min[i]!;
  return true;
}
