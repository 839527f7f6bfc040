// SIGHUP: re-read the config file and apply what can change while clients stay connected.
//
// As nats-server: the new file (with the command-line flags laid over it again) is compared with the running
// options; if a setting that needs a restart changed (ports, host, server_name, websocket, monitoring), the
// whole reload is refused with `config reload not supported for <key>: old=…, new=…` and nothing changes.
// A file that does not parse is logged and the running options stay. Otherwise every changed setting is
// applied and logged as `Reloaded: <key> = <value>`.
//
// What a change reaches:
// - debug, trace, logtime, log_file: at once.
// - ping_interval, ping_max, write_deadline, connect_timeout, max_pending, max_subscriptions,
//   lame_duck_*: read live by the timers and the write path, so every connection (existing ones too).
// - max_payload, max_control_line: new connections and INFO; existing connections' parsers are updated
//   too, as nats-server does (those clients keep the max_payload their INFO told them).
// - max_connections: new connections; if fewer are allowed than are connected, the excess is closed
//   with `-ERR 'maximum connections exceeded'`, as nats-server does.
// - pid_file, ports_file_dir: the files are written again (the old ports file is removed).
// - authorization (token, user/password, users with permissions and rate limits, default_permissions,
//   timeout), no_auth_user, the websocket block's authorization/no_auth_user/cookie names, and the users
//   and default_permissions of accounts: a new Authenticator, and every connected client is checked again
//   with its CONNECT's credentials (src/auth/reload.ts): closed with 'Authorization Violation' when they no
//   longer pass, else given its new permissions and rate limit (subscriptions now refused are removed with
//   an -ERR each). Logged by name only (`Reloaded: authorization`), never with a value. The accounts
//   themselves (names, imports/exports, limits, jetstream) need a restart.
// - tls (client port): the certificate, key and CA files are read again on every reload (a certificate
//   renewed in place counts) and checked; new connections get them, connected ones keep their session.
//   Turning TLS on or off needs a restart. websocket tls needs a restart: Bun.serve's reload() takes new
//   handlers but not a new certificate (a changed file is only warned about).
import { createSecureContext } from "node:tls";
import type { Options } from "../options.ts";
import type { AccountOptions } from "../accounts/options.ts";
import type { TlsOptions } from "../auth/options.ts";
import { Authenticator } from "../auth/authenticator.ts";
import { reloadAuthorization } from "../auth/reload.ts";
import { loadServerTls, type ServerTls } from "../auth/tls.ts";
import type { Server } from "../server.ts";
import type { Logger } from "../log.ts";
import { CloseReason } from "../protocol/errors.ts";
import { formatGoDuration } from "./duration.ts";
import { loadOptions } from "./load.ts";

interface Setting {
  /** The config key, as logged. */
  name: string;
  reloadable: boolean;
  show?: (v: unknown) => string;
  /** Holds passwords or tokens: logged by name only. */
  secret?: boolean;
  /** Why a change needs a restart, when natter's reason differs from nats-server's (appended to the refusal). */
  why?: string;
}

const duration = (v: unknown) => formatGoDuration(v as number);
const tlsFiles = (v: unknown) => {
  const t = v as TlsOptions | null;
  return t === null ? "disabled" : `{cert_file: ${t.certFile}, key_file: ${t.keyFile}${t.caFile ? `, ca_file: ${t.caFile}` : ""}}`;
};
const accountNames = (v: unknown) => `[${(v as AccountOptions[]).map((a) => a.name).join(" ")}]`;

/** Every option, by its config key; an option missing here (added later) needs a restart. */
const SETTINGS: Partial<Record<keyof Options, Setting>> = {
  host: { name: "host", reloadable: false },
  port: { name: "port", reloadable: false },
  serverName: { name: "server_name", reloadable: false },
  wsPort: { name: "websocket port", reloadable: false },
  mqtt: { name: "mqtt", reloadable: false, secret: true },
  wsHost: { name: "websocket host", reloadable: false },
  wsAllowedOrigins: { name: "websocket allowed_origins", reloadable: false, show: (v) => `[${(v as string[]).join(" ")}]` },
  wsSameOrigin: { name: "websocket same_origin", reloadable: false },
  wsCompression: { name: "websocket compression", reloadable: false },
  httpPort: { name: "http_port", reloadable: false },
  httpsPort: { name: "https_port", reloadable: false },
  httpHost: { name: "http_host", reloadable: false },
  // The console's users hold passwords: logged by name only. Reading them again needs a restart.
  console: { name: "console", reloadable: false, secret: true },
  configFile: { name: "config file", reloadable: false },
  auditLog: { name: "audit_log", reloadable: false },
  // Authentication and permissions (src/auth/reload.ts re-checks every client). Accounts: only their users
  // and default_permissions (checked in reloadConfig); names, imports/exports, limits and jetstream need a restart.
  authorization: { name: "authorization", reloadable: true, secret: true },
  websocketAuth: { name: "websocket authorization", reloadable: true, secret: true },
  accounts: { name: "accounts", reloadable: true, show: accountNames },
  // New certificate/key/CA for new client-port connections; turning TLS on or off needs a restart (checked below).
  tls: { name: "tls", reloadable: true, show: tlsFiles },
  wsTls: {
    name: "websocket tls",
    reloadable: false,
    show: tlsFiles,
    why: "Bun.serve cannot change its certificate while running, restart natter",
  },
  debug: { name: "debug", reloadable: true },
  trace: { name: "trace", reloadable: true },
  logtime: { name: "logtime", reloadable: true },
  logFile: { name: "log_file", reloadable: true },
  pidFile: { name: "pid_file", reloadable: true },
  portsFileDir: { name: "ports_file_dir", reloadable: true },
  maxPayload: { name: "max_payload", reloadable: true },
  maxControlLine: { name: "max_control_line", reloadable: true },
  maxPending: { name: "max_pending", reloadable: true },
  maxConnections: { name: "max_connections", reloadable: true },
  maxSubscriptions: { name: "max_subscriptions", reloadable: true },
  pingIntervalMs: { name: "ping_interval", reloadable: true, show: duration },
  pingMax: { name: "ping_max", reloadable: true },
  writeDeadlineMs: { name: "write_deadline", reloadable: true, show: duration },
  connectTimeoutMs: { name: "connect_timeout", reloadable: true, show: duration },
  lameDuckDurationMs: { name: "lame_duck_duration", reloadable: true, show: duration },
  lameDuckGracePeriodMs: { name: "lame_duck_grace_period", reloadable: true, show: duration },
};

function same(a: unknown, b: unknown): boolean {
  return a === b || JSON.stringify(a) === JSON.stringify(b);
}

export interface ReloadHooks {
  /** pid_file changed: write the new one. */
  pidFileChanged(): void;
  /** ports_file_dir changed: remove the file from the old directory, write it in the new one. */
  portsFileDirChanged(oldDir: string): void;
}

/** Re-reads the config file and applies it; returns false (after logging why) when nothing was applied. */
export function reloadConfig(server: Server, log: Logger, flagged: Partial<Options>, hooks: ReloadHooks): boolean {
  const current = server.options;
  if (!current.configFile) {
    log.error("Failed to reload server configuration: can only reload config when a file is provided using -c or --config");
    return false;
  }
  let next: Options;
  try {
    const loaded = loadOptions(current.configFile, flagged);
    for (const w of loaded.warnings) log.warn(w);
    next = loaded.options;
  } catch (error) {
    log.error(`Failed to reload server configuration: ${(error as Error).message.replace(/\n/g, "; ")}`);
    return false;
  }
  // -p -1 / ws_port -1 / -m -1 stay as they were (the random port was resolved once).
  const changed: (keyof Options)[] = [];
  for (const key of Object.keys(next) as (keyof Options)[]) {
    if (same(current[key], next[key])) continue;
    const setting = SETTINGS[key];
    let why = setting?.reloadable ? null : (setting?.why ?? "");
    if (key === "tls" && (current.tls === null) !== (next.tls === null)) why = "turning TLS on or off needs a restart";
    if (key === "accounts" && !sameAccountsButUsers(current.accounts, next.accounts)) {
      why = "only the users and default_permissions of accounts reload";
    }
    if (why !== null) {
      const show = setting?.show ?? String;
      log.error(
        `Failed to reload server configuration: config reload not supported for ${setting?.name ?? key}: old=${show(current[key])}, new=${show(next[key])}${why ? ` (${why})` : ""}`,
      );
      return false;
    }
    changed.push(key);
  }
  // TLS files are read again on every reload: a certificate renewed in place (same paths) is a change too.
  let clientTls: ServerTls | null = null;
  if (next.tls !== null && server.clientTls !== null) {
    try {
      const loaded = loadServerTls(next.tls);
      createSecureContext({ cert: loaded.bun.cert as string, key: loaded.bun.key as string, ca: loaded.bun.ca as string | undefined });
      if (changed.includes("tls") || !sameTls(loaded, server.clientTls)) clientTls = loaded;
    } catch (error) {
      log.error(`Failed to reload server configuration: tls: ${(error as Error).message}`);
      return false;
    }
  }
  if (next.wsTls !== null && server.wsTls !== null) {
    try {
      if (!sameTls(loadServerTls(next.wsTls), server.wsTls)) {
        log.warn("websocket tls: the certificate files changed, but Bun.serve cannot change its certificate while running: restart natter to use them");
      }
    } catch (error) {
      log.warn(`websocket tls: ${(error as Error).message}`);
    }
  }
  // The auth timeout's default follows the TLS timeout.
  const authChanged =
    changed.includes("authorization") ||
    changed.includes("websocketAuth") ||
    changed.includes("accounts") ||
    (changed.includes("tls") && current.tls?.timeoutMs !== next.tls?.timeoutMs);
  // Open a new log file first: if it cannot be opened, nothing is applied.
  if (changed.includes("logFile")) {
    try {
      log.setFile(next.logFile);
    } catch (error) {
      log.error(`Failed to reload server configuration: cannot open log file: ${(error as Error).message}`);
      return false;
    }
  }
  const oldPortsDir = current.portsFileDir;
  Object.assign(current, next);
  for (const key of changed) {
    const setting = SETTINGS[key]!;
    applyLive(server, log, key);
    if (key === "tls") continue; // below, with the files
    if (key === "accounts") log.info("Reloaded: accounts users");
    else if (setting.secret) log.info(`Reloaded: ${setting.name}`);
    else log.info(`Reloaded: ${setting.name} = ${(setting.show ?? String)(current[key])}`);
  }
  if (clientTls !== null) {
    server.setClientTls(clientTls);
    log.info(`Reloaded: tls = ${tlsFiles(current.tls)} (for new connections)`);
  }
  if (authChanged) reloadAuthorization(server, Authenticator.fromOptions(current, server.accounts));
  if (changed.includes("pidFile")) hooks.pidFileChanged();
  if (changed.includes("portsFileDir")) hooks.portsFileDirChanged(oldPortsDir);
  log.info("Reloaded server configuration");
  return true;
}

/** What a changed option needs beyond the new value in server.options (which timers and writes read live). */
function applyLive(server: Server, log: Logger, key: keyof Options): void {
  const o = server.options;
  switch (key) {
    case "debug":
    case "trace":
      log.debugEnabled = o.debug || o.trace;
      log.traceEnabled = o.trace;
      server.tracing = o.trace;
      return;
    case "logtime":
      log.logtime = o.logtime;
      return;
    case "maxPayload":
      for (const conn of server.connections.values()) conn.parser.maxPayload = o.maxPayload;
      return;
    case "maxControlLine":
      for (const conn of server.connections.values()) conn.parser.maxControlLine = o.maxControlLine;
      return;
    case "pingIntervalMs": {
      // A connection waiting out the old (longer) interval gets its next PING within the new one.
      const due = Date.now() + o.pingIntervalMs;
      for (const conn of server.connections.values()) conn.nextPingAt = Math.min(conn.nextPingAt, due);
      return;
    }
    case "maxConnections": {
      const excess = server.connections.size - o.maxConnections;
      if (o.maxConnections > 0 && excess > 0) {
        let closed = 0;
        for (const conn of [...server.connections.values()]) {
          if (closed >= excess) break;
          conn.closeWithError("MaxConnections", CloseReason.MaxConnectionsExceeded);
          closed++;
        }
        log.info(`Closed ${closed} connections to fall within max_connections`);
      }
      return;
    }
  }
}

/** The accounts blocks alike but for their users and default_permissions (the only parts that reload). */
function sameAccountsButUsers(a: AccountOptions[], b: AccountOptions[]): boolean {
  const strip = (list: AccountOptions[]) => list.map(({ users: _u, defaultPermissions: _d, ...rest }) => rest);
  return same(strip(a), strip(b));
}

/** Same certificate, key, CA and handshake settings. */
function sameTls(a: ServerTls, b: ServerTls): boolean {
  return (
    a.bun.cert === b.bun.cert &&
    a.bun.key === b.bun.key &&
    a.bun.ca === b.bun.ca &&
    a.verify === b.verify &&
    a.timeoutMs === b.timeoutMs &&
    a.handshakeFirst === b.handshakeFirst
  );
}
