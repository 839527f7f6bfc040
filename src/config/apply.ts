// Maps a parsed config tree onto Options, under nats-server's key names (case-insensitive, as nats-server).
//
// - A key natter implements sets its option; a wrong type or value is an error at the key's position.
// - A key nats-server knows but natter does not implement yet (jetstream, accounts…) is refused:
//   `<file>:<line>:<col>: "cluster" is not supported yet` — accepting it would pretend it works.
// - Any other key is `unknown field "x"`, as nats-server says it, unless it only serves as a $variable.
// All errors of a file are collected and thrown together (ConfigErrors); warnings are returned.
import { OptionsError, parseAdvertise, parseProcs, parseRouteUrl, type Options } from "../options.ts";
import { parseGoDuration, formatGoDuration } from "./duration.ts";
import { ConfigError, ConfigErrors, formatPosition, type ConfEntry, type ConfMap, type ConfNode } from "./parser.ts";
import { applySecurityKey, applyWebSocketSecurityKey } from "../auth/config.ts";
import { applyJetStreamKey } from "../jetstream/config-keys.ts";
import { applyLeafnodesKey } from "../leaf/options.ts";
import { applyMqttBlock } from "../mqtt/options.ts";
import { applyConsoleKey } from "../console/config.ts";
import { AccountsConfigContext, applyAccountsKey, checkAccountsConfig, parseMappings } from "../accounts/config.ts";

/** Top-level keys nats-server 2.10 knows that natter does not implement yet. */
export const UNSUPPORTED_KEYS: ReadonlySet<string> = new Set([
  "logtime_utc", "disable_sublist_cache", "no_sublist_cache",
  "http_base_path", "gateway",
  "logfile_size_limit", "log_size_limit",
  "logfile_max_num", "log_max_num", "syslog", "remote_syslog", "prof_port", "prof_block_rate", "max_traced_msg_len",
  "ocsp", "operator", "operators",
  "roots", "root", "root_operators", "root_operator", "resolver", "account_resolver", "accounts_resolver",
  "resolver_tls", "resolver_preload", "resolver_pinned_accounts", "trusted", "trusted_keys",
  "default_js_domain", "ocsp_cache",
]);

/** Keys of the cluster block nats-server knows that natter does not implement yet. */
const UNSUPPORTED_CLUSTER_KEYS: ReadonlySet<string> = new Set([
  "authorization", "tls", "connect_retries", "permissions", "pool_size", "accounts", "compression", "ping_interval", "ping_max",
]);

/** Keys of the websocket block nats-server knows that natter does not implement yet. */
const UNSUPPORTED_WS_KEYS: ReadonlySet<string> = new Set([
  "handshake_timeout",
]);

const MAX_INT32 = 2 ** 31 - 1;

class Applier {
  readonly errors: ConfigError[] = [];
  readonly warnings: string[] = [];
  /** Where the accounts block's parts are, for the checks made once the whole file is read. */
  readonly accounts = new AccountsConfigContext();

  constructor(readonly o: Options) {}

  fail(entry: ConfEntry | ConfNode, reason: string): never {
    throw new ConfigError(reason, entry.pos);
  }

  // ---- typed reads: the value of an entry, or an error at its key ---------------------------

  int(e: ConfEntry, what = "an integer"): number {
    if (e.node.kind !== "integer") this.fail(e, `${e.key} must be ${what}, got ${describe(e.node)}`);
    return e.node.value;
  }

  count(e: ConfEntry): number {
    const n = this.int(e);
    if (n < 0) this.fail(e, `${e.key} value can not be negative`);
    return n;
  }

  size(e: ConfEntry, max = Number.MAX_SAFE_INTEGER): number {
    const n = this.int(e, "an integer or a size (e.g. 1MB, 64KB)");
    if (n > max) this.fail(e, `${e.key} value is too big`);
    if (n < 0) this.fail(e, `${e.key} value can not be negative`);
    return n;
  }

  port(e: ConfEntry): number {
    const n = this.int(e);
    if (n < -1 || n > 65535) this.fail(e, `${e.key} must be a port number (0-65535, or -1 for a random port), got ${n}`);
    return n;
  }

  bool(e: ConfEntry): boolean {
    if (e.node.kind !== "bool") this.fail(e, `${e.key} must be a boolean (true/false, yes/no, on/off), got ${describe(e.node)}`);
    return e.node.value;
  }

  str(e: ConfEntry): string {
    if (e.node.kind !== "string") this.fail(e, `${e.key} must be a string, got ${describe(e.node)}`);
    return e.node.value;
  }

  /**
   * A duration as nats-server reads ping_interval and write_deadline: a Go duration string ("2m", "10s"),
   * or, for backward compatibility, a number of seconds, with a warning.
   */
  duration(e: ConfEntry, allowSeconds: boolean): number {
    const n = e.node;
    if (n.kind === "string") {
      try {
        return parseGoDuration(n.value);
      } catch (error) {
        this.fail(e, `error parsing ${e.key}: ${(error as Error).message}`);
      }
    }
    if (allowSeconds && n.kind === "integer") {
      this.warnings.push(
        `${formatPosition(e.pos)}: invalid use of field "${e.key}": ${e.key} should be converted to a duration`,
      );
      return n.value * 1000;
    }
    this.fail(e, `${e.key} must be a duration string (e.g. "2m", "10s"), got ${describe(n)}`);
  }

  /** `listen`/`http`: a port, or "host:port". */
  listen(e: ConfEntry): { host: string | null; port: number } {
    const n = e.node;
    if (n.kind === "integer") return { host: null, port: n.value };
    if (n.kind !== "string") this.fail(e, `expected port or host:port, got ${describe(n)}`);
    const m = /^(?:\[([^\]]*)\]|([^:]*)):(-?\d+)$/.exec(n.value);
    if (!m) this.fail(e, `could not parse address string ${JSON.stringify(n.value)}`);
    const port = Number(m[3]);
    if (port < -1 || port > 65535) this.fail(e, `could not parse port ${JSON.stringify(m[3])}`);
    return { host: m[1] ?? m[2]!, port };
  }

  // ---- the keys -------------------------------------------------------------------------------

  top(e: ConfEntry): void {
    const o = this.o;
    const key = e.key.toLowerCase();
    switch (key) {
      case "listen": {
        const hp = this.listen(e);
        if (hp.host !== null) o.host = hp.host;
        o.port = hp.port;
        return;
      }
      case "host":
      case "net":
        o.host = this.str(e);
        return;
      case "port":
        o.port = this.port(e);
        return;
      case "server_name":
        o.serverName = this.str(e);
        return;
      case "debug":
        o.debug = this.bool(e);
        return;
      case "trace":
        o.trace = this.bool(e);
        return;
      case "trace_verbose": // nats-server: trace, system account too (natter has none)
        o.trace = this.bool(e);
        return;
      case "logtime":
        o.logtime = this.bool(e);
        return;
      case "logfile":
      case "log_file":
        o.logFile = this.str(e);
        return;
      case "pidfile":
      case "pid_file":
        o.pidFile = this.str(e);
        return;
      case "ports_file_dir":
        o.portsFileDir = this.str(e);
        return;
      case "audit_log": // natter's own (src/audit.ts)
        o.auditLog = this.str(e);
        return;
      case "max_payload":
        o.maxPayload = this.size(e, MAX_INT32);
        return;
      case "max_control_line":
        o.maxControlLine = this.size(e, MAX_INT32);
        return;
      case "max_pending":
        o.maxPending = this.size(e);
        return;
      case "max_connections":
      case "max_conn":
        o.maxConnections = this.count(e);
        return;
      case "max_subscriptions":
      case "max_subs":
        o.maxSubscriptions = this.count(e);
        return;
      case "ping_interval":
        o.pingIntervalMs = this.duration(e, true);
        if (o.pingIntervalMs <= 0) this.fail(e, "ping_interval must be positive");
        return;
      case "ping_max":
        o.pingMax = this.count(e);
        return;
      case "write_deadline":
        o.writeDeadlineMs = this.duration(e, true);
        return;
      case "connect_timeout": // natter's own: nats-server has no such timer without auth
        o.connectTimeoutMs = this.duration(e, true);
        return;
      case "lame_duck_duration": {
        const d = this.duration(e, false);
        if (d < 30_000) this.fail(e, `invalid lame_duck_duration of ${formatGoDuration(d)}, minimum is 30 seconds`);
        o.lameDuckDurationMs = d;
        return;
      }
      case "lame_duck_grace_period": {
        const d = this.duration(e, false);
        if (d < 0) this.fail(e, "invalid lame_duck_grace_period, needs to be positive");
        o.lameDuckGracePeriodMs = d;
        return;
      }
      case "http_port":
      case "monitor_port":
        o.httpPort = this.port(e);
        return;
      case "http": {
        const hp = this.listen(e);
        if (hp.host !== null) o.httpHost = hp.host;
        o.httpPort = hp.port;
        return;
      }
      case "https_port":
        o.httpsPort = this.port(e);
        return;
      case "https": {
        const hp = this.listen(e);
        if (hp.host !== null) o.httpHost = hp.host;
        o.httpsPort = hp.port;
        return;
      }
      case "http_host": // natter's own, as its --http_host flag (nats-server: http: "host:port")
        o.httpHost = this.str(e);
        return;
      case "mqtt":
        o.mqtt = { ...o.mqtt };
        applyMqttBlock(e, o.mqtt);
        return;
      case "websocket":
      case "ws":
        this.websocket(e);
        return;
      case "cluster":
        this.cluster(e);
        return;
      case "max_sub_tokens":
      case "max_subscription_tokens": {
        const n = this.int(e);
        if (n > 255) this.fail(e, `${e.key} value is too big`);
        if (n <= 0) this.fail(e, `${e.key} value can not be negative`);
        o.maxSubTokens = n;
        return;
      }
      case "client_advertise":
        o.clientAdvertise = this.str(e);
        try {
          parseAdvertise(o.clientAdvertise, 0);
        } catch (error) {
          if (error instanceof OptionsError) this.fail(e, error.message);
          throw error;
        }
        return;
      case "connect_error_reports": // 0 (or less) keeps the default, as nats-server's baseline options
        o.connectErrorReports = this.int(e) > 0 ? this.int(e) : 3600;
        return;
      case "reconnect_error_reports":
        o.reconnectErrorReports = this.int(e) > 0 ? this.int(e) : 1;
        return;
      case "no_header_support":
        o.noHeaderSupport = this.bool(e);
        return;
      case "mappings": // the global account's (src/accounts/mappings.ts)
      case "maps":
        o.mappings = parseMappings(e);
        return;
      case "server_tags": {
        // As nats-server's jwt.TagList: trimmed, lower case, each once. They label the server in /varz.
        const tags: string[] = [];
        for (const t of this.stringArray(e)) {
          const tag = t.trim().toLowerCase();
          if (tag !== "" && !tags.includes(tag)) tags.push(tag);
        }
        o.serverTags = tags;
        return;
      }
      case "allow_non_tls": // with tls: plaintext clients on the same port too (src/transport/tcp.ts)
        o.allowNonTls = this.bool(e);
        return;
      case "procs": // natter's own: worker processes on one port (src/workers/)
        try {
          o.procs = parseProcs(e.node.kind === "integer" ? String(e.node.value) : this.str(e), "procs");
        } catch (error) {
          if (error instanceof OptionsError) this.fail(e, `procs must be a number of processes (1 to 1024) or "auto", got ${describe(e.node)}`);
          throw error;
        }
        return;
    }
    if (applySecurityKey(e, o)) return; // authorization, no_auth_user, tls: src/auth/config.ts
    if (applyJetStreamKey(e, o)) return; // jetstream, store_dir: src/jetstream/config-keys.ts
    if (applyLeafnodesKey(e, o)) return; // leafnodes (leaf): src/leaf/options.ts
    if (applyConsoleKey(e, o)) return; // console (natter's own web console): src/console/config.ts
    if (applyAccountsKey(e, o, this.accounts, (fn) => this.guard(fn))) return; // accounts, system_account: src/accounts/config.ts
    if (UNSUPPORTED_KEYS.has(key)) this.fail(e, `"${e.key}" is not supported yet`);
    if (!e.usedAsVariable) this.fail(e, `unknown field "${e.key}"`);
  }

  websocket(e: ConfEntry): void {
    const n = e.node;
    if (n.kind !== "map") this.fail(e, `Expected websocket to be a map, got ${describe(n)}`);
    const o = this.o;
    let noTls = false;
    for (const w of n.value.values()) {
      this.guard(() => {
        const key = w.key.toLowerCase();
        switch (key) {
          case "listen": {
            const hp = this.listen(w);
            if (hp.host !== null) o.wsHost = hp.host;
            o.wsPort = hp.port;
            return;
          }
          case "port":
            o.wsPort = this.port(w);
            return;
          case "host":
          case "net":
            o.wsHost = this.str(w);
            return;
          case "no_tls":
            noTls = this.bool(w);
            return;
          case "same_origin":
            o.wsSameOrigin = this.bool(w);
            return;
          case "allowed_origins":
          case "allowed_origin":
          case "allow_origins":
          case "allow_origin":
          case "origins":
          case "origin":
            o.wsAllowedOrigins = this.stringArray(w);
            return;
          case "compress":
          case "compression":
            o.wsCompression = this.bool(w);
            return;
          case "advertise":
            o.wsAdvertise = this.str(w);
            try {
              parseAdvertise(o.wsAdvertise, 0, "websocket advertise");
            } catch (error) {
              if (error instanceof OptionsError) this.fail(w, error.message);
              throw error;
            }
            return;
        }
        if (applyWebSocketSecurityKey(w, o)) return; // tls, authorization, no_auth_user, *_cookie: src/auth/config.ts
        if (UNSUPPORTED_WS_KEYS.has(key)) this.fail(w, `"websocket.${w.key}" is not supported yet`);
        if (!w.usedAsVariable) this.fail(w, `unknown field "${w.key}"`);
      });
    }
    // nats-server refuses a websocket listener without TLS unless no_tls is set.
    if (noTls) o.wsTls = null; // as nats-server: no_tls wins over a tls block
    if (o.wsPort !== 0 && !noTls && o.wsTls === null) {
      this.fail(e, "websocket requires TLS configuration");
    }
  }

  /** `cluster { name, listen (or host/port), routes [...], advertise, no_advertise }` */
  cluster(e: ConfEntry): void {
    const n = e.node;
    if (n.kind !== "map") this.fail(e, `Expected map to define cluster, got ${describe(n)}`);
    const o = this.o;
    for (const c of n.value.values()) {
      this.guard(() => {
        const key = c.key.toLowerCase();
        switch (key) {
          case "name":
            o.clusterName = this.str(c);
            return;
          case "listen": {
            const hp = this.listen(c);
            if (hp.host !== null) o.clusterHost = hp.host;
            o.clusterPort = hp.port;
            return;
          }
          case "port":
            o.clusterPort = this.port(c);
            return;
          case "host":
          case "net":
            o.clusterHost = this.str(c);
            return;
          case "routes":
            o.routes = this.stringArray(c).map((url) => {
              try {
                const hp = parseRouteUrl(url, "routes");
                return `${hp.host}:${hp.port}`;
              } catch (error) {
                if (error instanceof OptionsError) this.fail(c, `error parsing route url ${JSON.stringify(url)}`);
                throw error;
              }
            });
            return;
          case "advertise":
          case "cluster_advertise":
            o.clusterAdvertise = this.str(c);
            return;
          case "no_advertise":
            o.clusterNoAdvertise = this.bool(c);
            return;
        }
        if (UNSUPPORTED_CLUSTER_KEYS.has(key)) this.fail(c, `"cluster.${c.key}" is not supported yet`);
        if (!c.usedAsVariable) this.fail(c, `unknown field "${c.key}"`);
      });
    }
  }

  /** A string, or an array of strings. */
  stringArray(e: ConfEntry): string[] {
    const n = e.node;
    if (n.kind === "string") return [n.value];
    if (n.kind !== "array") this.fail(e, `error parsing ${e.key}: unsupported type ${describe(n)}`);
    return n.value.map((item) => {
      if (item.kind !== "string") this.fail(item, `error parsing ${e.key}: unsupported type in array ${describe(item)}`);
      return item.value;
    });
  }

  /** Runs one key's handler; its error is collected so the other keys are still checked. */
  guard(fn: () => void): void {
    try {
      fn();
    } catch (error) {
      if (error instanceof ConfigError) this.errors.push(error);
      else throw error;
    }
  }
}

function describe(n: ConfNode): string {
  switch (n.kind) {
    case "string":
      return `string ${JSON.stringify(n.value)}`;
    case "integer":
      return `integer ${n.raw}`;
    case "float":
      return `float ${n.value}`;
    case "bool":
      return `boolean ${n.value}`;
    case "datetime":
      return `datetime ${n.value.toISOString()}`;
    case "array":
      return "an array";
    case "map":
      return "a map";
  }
}

/**
 * Sets `options` from the tree (in file order; a later key wins). Throws ConfigErrors listing every bad key;
 * returns warnings (lines to print).
 */
export function applyConfig(root: ConfMap, options: Options, file = ""): string[] {
  const a = new Applier(options);
  if (root.size === 0) a.warnings.push(`${file || "<config>"}: config has no values or is empty`);
  for (const entry of root.values()) a.guard(() => a.top(entry));
  if (a.errors.length === 0) a.errors.push(...checkAccountsConfig(options, a.accounts));
  if (a.errors.length > 0) throw new ConfigErrors(a.errors);
  return a.warnings;
}
