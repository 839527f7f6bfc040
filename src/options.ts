// One Options type for the whole server: defaults (nats-server's), command-line flags under
// nats-server's names, and validation that ends in one clear line instead of a stack trace.

import { formatGoDuration } from "./config/duration.ts";
import type { AuthorizationOptions, TlsOptions, WebSocketAuthOptions } from "./auth/options.ts";
import { validateSecurityOptions } from "./auth/validate.ts";
import type { AccountOptions, MappingOptions } from "./accounts/options.ts";
import { addRemoteFlag, effectiveLeafnodeOptions, setListenFlag, validateLeafnodeOptions, type LeafnodeOptions } from "./leaf/options.ts";
import { defaultMqttOptions, MQTT_NEEDS_JETSTREAM, type MqttOptions } from "./mqtt/options.ts";
import { defaultConsoleOptions, validateConsoleOptions, type ConsoleOptions } from "./console/options.ts";
import { domainNameError } from "./jetstream/domain.ts";
import { nodeOs } from "./node-builtins.ts";

export interface Options {
  host: string;
  port: number;
  serverName: string;
  /** WebSocket listener; 0 = off. */
  wsPort: number;
  wsHost: string;
  /** Origins allowed to open a WebSocket (empty = any). A request without Origin is always allowed. */
  wsAllowedOrigins: string[];
  wsSameOrigin: boolean;
  /** websocket `advertise`: the host[:port] the cluster hands WebSocket clients for this node; "" = its listener. */
  wsAdvertise: string;
  wsCompression: boolean;
  maxPayload: number;
  maxControlLine: number;
  /** Bytes queued for one client before it is cut as a slow consumer. */
  maxPending: number;
  maxConnections: number;
  /** Subscriptions per connection; 0 = unlimited. */
  maxSubscriptions: number;
  pingIntervalMs: number;
  pingMax: number;
  /** How long a blocked write may stay blocked before the client is cut as a slow consumer. */
  writeDeadlineMs: number;
  /** A connection that sends nothing valid within this time is closed (nats-server has no such timer without auth). */
  connectTimeoutMs: number;
  /** Authentication and permissions (authorization block, no_auth_user, --auth, --user/--pass); null = none. See src/auth/. */
  authorization: AuthorizationOptions | null;
  /** TLS on the client port (tls block, --tls*); null = plaintext. */
  tls: TlsOptions | null;
  /** `client_advertise`: the host[:port] clients are told (INFO host/port, the cluster's connect_urls); "" = the listen address. */
  clientAdvertise: string;
  /** `connect_error_reports`: a leaf remote that never connected logs its 1st failed dial and every Nth as errors (nats-server: 3600). */
  connectErrorReports: number;
  /** `reconnect_error_reports`: the same after it was connected once (nats-server: 1, every failure). */
  reconnectErrorReports: number;
  /** Top-level `mappings` (the global account's; src/accounts/mappings.ts). */
  mappings: MappingOptions[];
  /** `no_header_support`: INFO says headers: false and no connection uses headers (nats-server's supportsHeaders). */
  noHeaderSupport: boolean;
  /** `server_tags`: labels of this server (trimmed, lower case, no repeats), shown in /varz `tags`. */
  serverTags: string[];
  /** `max_sub_tokens`: the most tokens a subscription's subject may have (0 = no limit; at most 255). */
  maxSubTokens: number;
  /** `allow_non_tls`: with tls, plaintext clients too, on the same port (the client's first byte decides). */
  allowNonTls: boolean;
  /** The websocket block's own authorization, no_auth_user and auth cookie names; null = none. */
  websocketAuth: WebSocketAuthOptions | null;
  /** TLS on the WebSocket port (wss); null = plain ws. */
  wsTls: TlsOptions | null;
  /** New connections accepted per second from one IP address; 0 = unlimited (natter's own; src/auth/ratelimit.ts). */
  connectionRatePerIp: number;
  /** The accounts block (src/accounts): each its own subject space, with users, imports/exports and limits. */
  accounts: AccountOptions[];
  /** system_account: where server events go; "" = `$SYS` (created when not configured). */
  systemAccount: string;
  /** no_system_account: no system account, no events. */
  noSystemAccount: boolean;
  /** audit_log (natter's own): append connects, disconnects, auth failures and admin operations here as JSON lines; "" = off. */
  auditLog: string;
  /** Monitoring HTTP port (/varz, /connz, …); 0 = off. */
  httpPort: number;
  /** Monitoring over HTTPS with the `tls` block's certificate (nats-server's https_port); 0 = off. Not with httpPort. */
  httpsPort: number;
  httpHost: string;
  /** The web console on the monitoring port (--console, console {}; natter's own, src/console/); off by default. */
  console: ConsoleOptions;
  debug: boolean;
  trace: boolean;
  /** Config file (-c, nats-server syntax; see src/config/); "" = none. Flags override what it sets. */
  configFile: string;
  /** Append log lines to this file instead of stderr (-l); "" = stderr. */
  logFile: string;
  /** Timestamps on log lines (-T; on by default, as nats-server). */
  logtime: boolean;
  /** Write the process id to this file at start (-P). */
  pidFile: string;
  /** Write `<exe>_<pid>.ports` (the listeners' URLs) into this directory at start; removed at exit. */
  portsFileDir: string;
  /** Lame duck mode (SIGUSR2): clients are closed spread over this time; at least 30 s, as nats-server. */
  lameDuckDurationMs: number;
  /** Lame duck mode: how long to wait before closing the first client. */
  lameDuckGracePeriodMs: number;
  /** The mqtt block and --mqtt_port (src/mqtt); port 0 = no MQTT listener. */
  mqtt: MqttOptions;
  /** JetStream (-js, jetstream {}): the stream layer in src/jetstream answers $JS.API.>. */
  jetstream: boolean;
  /** Where streams are kept (-sd, store_dir; under it jetstream/); "" = <os temp dir>/nats, as nats-server. */
  storeDir: string;
  /** jetstream { domain } / --js_domain (src/jetstream/domain.ts); "" = none. */
  jsDomain: string;
  /** max_memory_store / max_file_store in bytes; -1 = nats-server's defaults (75% of memory / the disk). */
  jsMaxMemory: number;
  jsMaxFile: number;
  /**
   * sync_interval: how often file streams are fsynced; 0 = "always" (before every PubAck). Default 1s: every
   * acknowledged message has reached the OS (survives kill -9); a power failure can lose the last second.
   */
  jsSyncIntervalMs: number;
  /** jetstream { limits { batch { max_msgs, max_inflight_per_stream, max_inflight_total, timeout } } }; 0 = default. */
  jsBatchLimits: { maxMsgs: number; maxInflightPerStream: number; maxInflightTotal: number; timeoutMs: number };
  /** Route listener (--cluster nats://host:port, cluster { listen }); port 0 = not clustered, -1 = random. */
  clusterHost: string;
  clusterPort: number;
  /** --cluster_name; "" = unnamed: joins the cluster its routes lead to. Two different names never join. */
  clusterName: string;
  /** Seed routes (--routes, cluster { routes }), as host:port. */
  routes: string[];
  /** --no_advertise: don't tell clients about other members, nor other members about this one's clients. */
  clusterNoAdvertise: boolean;
  /** --cluster_advertise: host:port other members reach this one at; "" = the listen address. */
  clusterAdvertise: string;
  /** The leafnodes block (remotes to dial, a listener for leaf nodes); null = none. See src/leaf/options.ts. */
  leafnodes: LeafnodeOptions | null;
  /** --leafnode_remote (each: comma-separated URLs of one hub), added to the leafnodes block's remotes. */
  leafnodeRemoteFlags: string[];
  /** --leafnodes_listen host:port, over the leafnodes block's listen; "" = not given. */
  leafnodesListenFlag: string;
  /**
   * --procs N / procs (natter's own): N > 1 = this process supervises N worker processes that share the
   * client and WebSocket ports (SO_REUSEPORT) and are joined by loopback routes. See src/workers/.
   */
  procs: number;
}

/** What `natter --healthcheck` asks when given no URL: the monitoring port's default (-m 8222) on this host. */
export const DEFAULT_HEALTHCHECK_URL = "http://127.0.0.1:8222/healthz";

export const defaultOptions: Readonly<Options> = {
  host: "0.0.0.0",
  port: 4222,
  serverName: "",
  wsPort: 0,
  wsHost: "0.0.0.0",
  wsAllowedOrigins: [],
  wsSameOrigin: false,
  wsAdvertise: "",
  wsCompression: false,
  maxPayload: 1024 * 1024,
  maxControlLine: 4096,
  maxPending: 64 * 1024 * 1024,
  maxConnections: 64 * 1024,
  maxSubscriptions: 0,
  pingIntervalMs: 2 * 60 * 1000,
  pingMax: 2,
  writeDeadlineMs: 10_000,
  connectTimeoutMs: 10_000,
  authorization: null,
  tls: null,
  allowNonTls: false,
  maxSubTokens: 0,
  serverTags: [],
  noHeaderSupport: false,
  mappings: [],
  connectErrorReports: 3600,
  reconnectErrorReports: 1,
  clientAdvertise: "",
  websocketAuth: null,
  wsTls: null,
  mqtt: defaultMqttOptions(),
  connectionRatePerIp: 0,
  accounts: [],
  systemAccount: "",
  noSystemAccount: false,
  auditLog: "",
  httpPort: 0,
  httpsPort: 0,
  console: defaultConsoleOptions,
  httpHost: "",
  debug: false,
  trace: false,
  configFile: "",
  logFile: "",
  logtime: true,
  pidFile: "",
  portsFileDir: "",
  lameDuckDurationMs: 2 * 60 * 1000,
  lameDuckGracePeriodMs: 10_000,
  jetstream: false,
  storeDir: "",
  jsMaxMemory: -1,
  jsMaxFile: -1,
  jsDomain: "",
  jsSyncIntervalMs: 1000,
  jsBatchLimits: { maxMsgs: 0, maxInflightPerStream: 0, maxInflightTotal: 0, timeoutMs: 0 },
  clusterHost: "0.0.0.0",
  clusterPort: 0,
  clusterName: "",
  routes: [],
  clusterNoAdvertise: false,
  clusterAdvertise: "",
  leafnodes: null,
  leafnodeRemoteFlags: [],
  leafnodesListenFlag: "",
  procs: 1,
};

/** A bad flag or value: main prints the message on one line and exits 1. */
export class OptionsError extends Error {}

export type ParsedCommandLine =
  /** `flagged`: what the flags set, laid over the config file's values (at start and on reload). */
  | { kind: "run"; options: Options; flagged: Partial<Options>; checkConfig: boolean }
  /** --signal <command>[=<pid or pid file>]: send it to a running natter and exit. */
  | { kind: "signal"; signal: string }
  /** --healthcheck [URL]: GET the URL (a running natter's /healthz), exit 0 on HTTP 200 and 1 otherwise. */
  | { kind: "healthcheck"; url: string }
  | { kind: "help" }
  | { kind: "version" };

type FlagSetter = (options: Options, value: string, flag: string) => void;
interface FlagSpec {
  names: string[];
  takesValue: boolean;
  help: string;
  set: FlagSetter;
}

const flags: FlagSpec[] = [
  { names: ["a", "addr", "net"], takesValue: true, help: "Bind to host address (default: 0.0.0.0)",
    set: (o, v) => { o.host = v; } },
  { names: ["p", "port"], takesValue: true, help: "Use port for clients (default: 4222; -1 for a random port)",
    set: (o, v, f) => { o.port = parsePort(v, f, true); } },
  { names: ["n", "server_name"], takesValue: true, help: "Server name (default: the server ID)",
    set: (o, v) => { o.serverName = v; } },
  { names: ["ws_port"], takesValue: true, help: "Use port for WebSocket clients (default: off)",
    set: (o, v, f) => { o.wsPort = parsePort(v, f, true); } },
  { names: ["ws_host"], takesValue: true, help: "Bind WebSocket to host address (default: 0.0.0.0)",
    set: (o, v) => { o.wsHost = v; } },
  { names: ["ws_allowed_origins"], takesValue: true, help: "Comma-separated origins allowed to open a WebSocket",
    set: (o, v) => { o.wsAllowedOrigins = v.split(",").map((s) => s.trim()).filter(Boolean); } },
  { names: ["ws_same_origin"], takesValue: false, help: "Allow WebSocket only from the server's own origin",
    set: (o, v) => { o.wsSameOrigin = v === "true"; } },
  { names: ["ws_advertise"], takesValue: true, help: "WebSocket address (host[:port]) the cluster advertises to WebSocket clients",
    set: (o, v, f) => { parseAdvertise(v, 0, f); o.wsAdvertise = v; } },
  { names: ["ws_compression"], takesValue: false, help: "Offer permessage-deflate on WebSocket (default: off, as nats-server)",
    set: (o, v) => { o.wsCompression = v === "true"; } },
  { names: ["mqtt_port"], takesValue: true, help: "Use port for MQTT clients (default: off; needs JetStream)",
    set: (o, v, f) => { o.mqtt = { ...o.mqtt, port: parsePort(v, f, true) }; } },
  { names: ["max_payload"], takesValue: true, help: "Maximum message payload in bytes (default: 1MB)",
    set: (o, v, f) => { o.maxPayload = parseSize(v, f); } },
  { names: ["max_control_line"], takesValue: true, help: "Maximum control line in bytes (default: 4KB)",
    set: (o, v, f) => { o.maxControlLine = parseSize(v, f); } },
  { names: ["max_pending"], takesValue: true, help: "Maximum bytes queued per client (default: 64MB)",
    set: (o, v, f) => { o.maxPending = parseSize(v, f); } },
  { names: ["max_connections"], takesValue: true, help: "Maximum client connections (default: 65536)",
    set: (o, v, f) => { o.maxConnections = parseCount(v, f); } },
  { names: ["max_subscriptions", "max_subs"], takesValue: true, help: "Maximum subscriptions per client (default: 0, unlimited)",
    set: (o, v, f) => { o.maxSubscriptions = parseCount(v, f); } },
  { names: ["ping_interval"], takesValue: true, help: "Interval between server PINGs (default: 2m)",
    set: (o, v, f) => { o.pingIntervalMs = parseDuration(v, f); } },
  { names: ["ping_max"], takesValue: true, help: "Unanswered PINGs before a connection is stale (default: 2)",
    set: (o, v, f) => { o.pingMax = parseCount(v, f); } },
  { names: ["write_deadline"], takesValue: true, help: "How long a write may block before the client is a slow consumer (default: 10s)",
    set: (o, v, f) => { o.writeDeadlineMs = parseDuration(v, f); } },
  { names: ["connect_timeout"], takesValue: true, help: "Time a new connection has to send its first op (default: 10s)",
    set: (o, v, f) => { o.connectTimeoutMs = parseDuration(v, f); } },
  { names: ["auth"], takesValue: true, help: "Authorization token required for connections",
    set: (o, v) => { o.authorization = { ...o.authorization, token: v }; } },
  { names: ["user"], takesValue: true, help: "User required for connections",
    set: (o, v) => { o.authorization = { ...o.authorization, user: v }; } },
  { names: ["pass"], takesValue: true, help: "Password required for connections",
    set: (o, v) => { o.authorization = { ...o.authorization, password: v }; } },
  { names: ["tls"], takesValue: false, help: "Enable TLS, do not verify clients (default: false)",
    set: (o, v) => { o.tls = v === "true" ? { certFile: "", keyFile: "", ...o.tls } : null; } },
  { names: ["tlscert"], takesValue: true, help: "Server certificate file",
    set: (o, v) => { o.tls = { keyFile: "", ...o.tls, certFile: v }; } },
  { names: ["tlskey"], takesValue: true, help: "Private key for server certificate",
    set: (o, v) => { o.tls = { certFile: "", ...o.tls, keyFile: v }; } },
  { names: ["tlscacert"], takesValue: true, help: "Client certificate CA for verification",
    set: (o, v) => { o.tls = { certFile: "", keyFile: "", ...o.tls, caFile: v }; } },
  { names: ["tlsverify"], takesValue: false, help: "Enable TLS, verify client certificates",
    set: (o, v) => { o.tls = { certFile: "", keyFile: "", ...o.tls, verify: v === "true" }; } },
  { names: ["connection_rate_per_ip"], takesValue: true, help: "New connections per second accepted from one IP address (default: 0, unlimited)",
    set: (o, v, f) => { o.connectionRatePerIp = parseCount(v, f); } },
  { names: ["m", "http_port"], takesValue: true, help: "Use port for HTTP monitoring (default: off)",
    set: (o, v, f) => { o.httpPort = parsePort(v, f, true); } },
  { names: ["ms", "https_port"], takesValue: true, help: "Use port for HTTPS monitoring, with the tls block's certificate (default: off)",
    set: (o, v, f) => { o.httpsPort = parsePort(v, f, true); } },
  { names: ["console"], takesValue: false, help: "Serve the web console on the monitoring port at /console (users in the config's console block)",
    set: (o, v) => { o.console = { ...o.console, enabled: v === "true" }; } },
  { names: ["http_host"], takesValue: true, help: "Bind HTTP monitoring to host address (default: the client host)",
    set: (o, v) => { o.httpHost = v; } },
  { names: ["D", "debug"], takesValue: false, help: "Enable debug logging", set: (o, v) => { o.debug = v === "true"; } },
  { names: ["V", "trace"], takesValue: false, help: "Trace the raw protocol", set: (o, v) => { o.trace = v === "true"; } },
  { names: ["DV"], takesValue: false, help: "Debug and trace", set: (o, v) => { o.debug = o.trace = v === "true"; } },
  { names: ["c", "config"], takesValue: true, help: "Configuration file (nats-server syntax)",
    set: (o, v) => { o.configFile = v; } },
  { names: ["l", "log"], takesValue: true, help: "Append log lines to this file instead of stderr",
    set: (o, v) => { o.logFile = v; } },
  { names: ["T", "logtime"], takesValue: false, help: "Timestamp log lines (default: true; -T=false turns them off)",
    set: (o, v) => { o.logtime = v === "true"; } },
  { names: ["P", "pid"], takesValue: true, help: "File to store the process id",
    set: (o, v) => { o.pidFile = v; } },
  { names: ["audit_log"], takesValue: true, help: "Append connects, disconnects, auth failures, permission violations and admin operations to this file (JSON lines)",
    set: (o, v) => { o.auditLog = v; } },
  { names: ["ports_file_dir"], takesValue: true, help: "Write <executable>_<pid>.ports, the listeners' URLs, into this directory",
    set: (o, v) => { o.portsFileDir = v; } },
  { names: ["lame_duck_duration"], takesValue: true, help: "Lame duck mode: spread closing clients over this time (default: 2m, at least 30s)",
    set: (o, v, f) => { o.lameDuckDurationMs = parseDuration(v, f); } },
  { names: ["js", "jetstream"], takesValue: false, help: "Enable JetStream (streams, consumers, KV)",
    set: (o, v) => { o.jetstream = v === "true"; } },
  { names: ["sd", "store_dir"], takesValue: true, help: "JetStream storage directory (default: <temp dir>/nats)",
    set: (o, v) => { o.storeDir = v; } },
  { names: ["js_domain"], takesValue: true, help: "JetStream domain (as jetstream { domain }; nats-server has no such flag)",
    set: (o, v, f) => { const error = domainNameError(v); if (error !== null) throw new OptionsError(`invalid value "${v}" for flag -${f}: ${error}`); o.jsDomain = v; } },
  { names: ["lame_duck_grace_period"], takesValue: true, help: "Lame duck mode: wait this long before closing clients (default: 10s)",
    set: (o, v, f) => { o.lameDuckGracePeriodMs = parseDuration(v, f); } },
  { names: ["cluster", "cluster_listen"], takesValue: true, help: "Cluster URL members connect to, e.g. nats://0.0.0.0:6222 (port -1: random)",
    set: (o, v, f) => { const hp = parseRouteUrl(v, f); o.clusterHost = hp.host; o.clusterPort = hp.port; } },
  { names: ["routes"], takesValue: true, help: "Comma-separated seed routes: nats://host:port,nats://host:port",
    set: (o, v, f) => { o.routes = v.split(",").map((s) => s.trim()).filter(Boolean).map((u) => { const hp = parseRouteUrl(u, f); return `${hp.host}:${hp.port}`; }); } },
  { names: ["cluster_name"], takesValue: true, help: "Cluster name (default: unnamed, joins the cluster its routes lead to)",
    set: (o, v) => { o.clusterName = v; } },
  { names: ["no_advertise"], takesValue: false, help: "Do not advertise known cluster information to clients",
    set: (o, v) => { o.clusterNoAdvertise = v === "true"; } },
  { names: ["cluster_advertise"], takesValue: true, help: "Cluster address (host:port) to advertise to other members",
    set: (o, v) => { o.clusterAdvertise = v; } },
  { names: ["client_advertise"], takesValue: true, help: "Client address (host[:port]) to advertise to clients and other members",
    set: (o, v, f) => { parseAdvertise(v, 0, f); o.clientAdvertise = v; } },
  { names: ["leafnode_remote", "leafnode_remotes"], takesValue: true, help: "Dial this hub as a leaf node: nats-leaf://[user:pass@]host:7422 or ws://host:port (comma-separated URLs of one hub; repeat for more hubs)",
    set: addRemoteFlag },
  { names: ["leafnodes_listen", "leafnode_listen"], takesValue: true, help: "Accept leaf node connections on host:port (default port 7422; -1 for a random port)",
    set: setListenFlag },
  { names: ["procs"], takesValue: true, help: "Worker processes sharing the client port, joined by loopback routes (default: 1; auto: one per CPU)",
    set: (o, v, f) => { o.procs = parseProcs(v, f); } },
];

const flagByName = new Map<string, FlagSpec>();
for (const spec of flags) for (const name of spec.names) flagByName.set(name, spec);

/** Parses argv (without the runtime and script) the way Go's flag package does: -name or --name, value after `=` or as the next word. */
export function parseCommandLine(argv: readonly string[]): ParsedCommandLine {
  const options: Options = { ...defaultOptions, wsAllowedOrigins: [], routes: [] };
  // Every field a flag writes is recorded: those values win over the config file's.
  const flagged: Partial<Options> = {};
  const tracked = new Proxy(options, {
    set(target, key, value) {
      (target as unknown as Record<string | symbol, unknown>)[key] = value;
      (flagged as Record<string | symbol, unknown>)[key] = value;
      return true;
    },
  });
  let checkConfig = false;
  let signal: string | null = null;
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i]!;
    if (!word.startsWith("-") || word === "-" || word === "--") {
      throw new OptionsError(`unexpected argument: ${word}`);
    }
    const body = word.slice(word.startsWith("--") ? 2 : 1);
    const eq = body.indexOf("=");
    const name = eq >= 0 ? body.slice(0, eq) : body;
    if (name === "h" || name === "help") return { kind: "help" };
    if (name === "v" || name === "version") return { kind: "version" };
    if (name === "healthcheck") {
      // The container image has no curl: its HEALTHCHECK runs the binary itself (Containerfile).
      if (eq >= 0) return { kind: "healthcheck", url: body.slice(eq + 1) };
      const next = argv[i + 1];
      return { kind: "healthcheck", url: next !== undefined && !next.startsWith("-") ? next : DEFAULT_HEALTHCHECK_URL };
    }
    if (name === "t") {
      checkConfig = true;
      continue;
    }
    if (name === "sl" || name === "signal") {
      if (eq >= 0) signal = body.slice(eq + 1);
      else if (i + 1 < argv.length) signal = argv[++i]!;
      else throw new OptionsError(`flag needs an argument: -${name}`);
      continue;
    }
    const spec = flagByName.get(name);
    if (!spec) throw new OptionsError(`flag provided but not defined: -${name}`);
    let value: string;
    if (!spec.takesValue) {
      const v = eq >= 0 ? body.slice(eq + 1) : "true";
      if (v !== "true" && v !== "false") throw new OptionsError(`invalid boolean value "${v}" for flag -${name}`);
      spec.set(tracked, v, name);
      continue;
    }
    if (eq >= 0) value = body.slice(eq + 1);
    else {
      if (i + 1 >= argv.length) throw new OptionsError(`flag needs an argument: -${name}`);
      value = argv[++i]!;
    }
    spec.set(tracked, value, name);
  }
  if (signal !== null) return { kind: "signal", signal };
  if (checkConfig && !options.configFile) throw new OptionsError("must specify [-c, --config] option to check configuration file syntax");
  // With a config file, the merged options are validated once the file is read (src/config/load.ts).
  if (!options.configFile) validateOptions(options);
  return { kind: "run", options, flagged, checkConfig };
}

/** Checks a complete set of options (flags, or a config file with flags over it). */
export function validateOptions(o: Options): void {
  if (o.maxPayload < 1) throw new OptionsError("max_payload must be at least 1 byte");
  validateSecurityOptions(o);
  validateLeafnodeOptions(o);
  validateConsoleOptions(o);
  if (o.maxControlLine < 32) throw new OptionsError("max_control_line must be at least 32 bytes");
  if (o.maxPending < o.maxPayload) throw new OptionsError(`max_payload (${o.maxPayload}) cannot be higher than max_pending (${o.maxPending})`);
  if (o.wsPort > 0 && o.wsPort === o.port) throw new OptionsError(`ws_port ${o.wsPort} is the same as the client port`);
  if (o.httpPort > 0 && (o.httpPort === o.port || o.httpPort === o.wsPort)) throw new OptionsError(`http_port ${o.httpPort} is already used by another listener`);
  // nats-server's StartMonitoring, in its words: one monitoring port, and HTTPS needs the server's certificate.
  if (o.httpPort !== 0 && o.httpsPort !== 0) throw new OptionsError(`can't specify both HTTP (${o.httpPort}) and HTTPs (${o.httpsPort}) ports`);
  if (o.httpsPort !== 0 && o.tls === null) throw new OptionsError("TLS cert and key required for HTTPS");
  if (o.httpsPort > 0 && (o.httpsPort === o.port || o.httpsPort === o.wsPort)) throw new OptionsError(`https_port ${o.httpsPort} is already used by another listener`);
  if (o.pingIntervalMs < 1) throw new OptionsError("ping_interval must be positive");
  validateMqttOptions(o);
  if (o.lameDuckDurationMs < 30_000) throw new OptionsError(`invalid lame_duck_duration of ${formatGoDuration(o.lameDuckDurationMs)}, minimum is 30 seconds`);
  if (o.routes.length > 0 && o.clusterPort === 0) throw new OptionsError("solicited routes require cluster capabilities, e.g. --cluster");
  if (o.clusterPort > 0 && (o.clusterPort === o.port || o.clusterPort === o.wsPort || o.clusterPort === o.httpPort)) {
    throw new OptionsError(`cluster port ${o.clusterPort} is already used by another listener`);
  }
  if (o.lameDuckGracePeriodMs < 0) throw new OptionsError("invalid lame_duck_grace_period, needs to be positive");
  if (o.lameDuckGracePeriodMs >= o.lameDuckDurationMs) {
    throw new OptionsError(`lame duck grace period (${formatGoDuration(o.lameDuckGracePeriodMs)}) should be strictly lower than lame duck duration (${formatGoDuration(o.lameDuckDurationMs)})`);
  }
}

export function usage(): string {
  const lines = [
    "Usage: natter [options]               Run the server",
    "       natter bench <mode> [options]  Benchmark a NATS server: pub, sub, pubsub, req, reply (natter bench --help)",
    "",
    "Server options:",
  ];
  for (const spec of flags) {
    const names = spec.names.map((n) => (n.length <= 2 ? `-${n}` : `--${n}`)).join(", ");
    const left = spec.takesValue ? `${names} <value>` : names;
    lines.push(`    ${left.padEnd(40)} ${spec.help}`);
  }
  lines.push(`    ${"-t".padEnd(40)} Test the configuration file (-c) and exit`);
  lines.push(`    ${"-sl, --signal <signal>[=<pid>]".padEnd(40)} Send a signal to a running natter (ldm, stop, quit, term, reopen, reload); <pid> is a pid or a pid file`);
  lines.push(`    ${"-h, --help".padEnd(40)} Show this message`);
  lines.push(`    ${"-v, --version".padEnd(40)} Show version (and the platform the binary was built for)`);
  lines.push(`    ${"--healthcheck [URL]".padEnd(40)} Exit 0 if URL answers HTTP 200 (default: ${DEFAULT_HEALTHCHECK_URL})`);
  lines.push("", "A flag given twice: the later one wins (npm start -- --ws_port 9090 moves npm start's WebSocket port).");
  lines.push("Sizes take KB/MB/GB suffixes (1024-based); durations take ms/s/m/h (a bare number is seconds).");
  lines.push("In a config file (-c) values follow nats-server: 1K = 1000, 1KB = 1024; durations are strings (\"2m\").");
  return lines.join("\n");
}

/**
 * One or more of 0-9 (what /^\d+$/ matches). Flags are read without regular expressions: the first one
 * run pages in JavaScriptCore's regular expression compiler, ~2 MiB of RSS for the life of the process
 * (issue 20: a plain start runs none; test/core/start-imports.test.ts).
 */
function isDigits(value: string): boolean {
  if (value.length === 0) return false;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return false;
  }
  return true;
}

function parsePort(value: string, flag: string, allowRandom: boolean): number {
  const n = Number(value);
  if (!isDigits(value.startsWith("-") ? value.slice(1) : value) || n > 65535 || n < (allowRandom ? -1 : 0)) {
    throw new OptionsError(`invalid value "${value}" for flag -${flag}: not a port number`);
  }
  return n;
}

/** --procs / procs: a whole number from 1 to 1024, or "auto" (one per CPU). */
export function parseProcs(value: string, flag: string): number {
  if (value === "auto") return nodeOs().availableParallelism();
  const n = Number(value);
  if (!isDigits(value) || n < 1 || n > 1024) throw new OptionsError(`invalid value "${value}" for flag -${flag}: not a number of processes (1 to 1024, or auto)`);
  return n;
}

function parseCount(value: string, flag: string): number {
  if (!isDigits(value)) throw new OptionsError(`invalid value "${value}" for flag -${flag}: not a whole number`);
  return Number(value);
}

const sizeUnits: Record<string, number> = { "": 1, b: 1, k: 1024, kb: 1024, kib: 1024, m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3, gib: 1024 ** 3 };

export function parseSize(value: string, flag: string): number {
  const m = /^(\d+)\s*([a-zA-Z]*)$/.exec(value.trim());
  const unit = m ? sizeUnits[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new OptionsError(`invalid value "${value}" for flag -${flag}: not a size (e.g. 1048576, 1MB)`);
  return Number(m[1]) * unit;
}

const durationUnits: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** `nats://host:port` (also nats-route://, or a bare host:port) → host and port (-1: random). */
export function parseRouteUrl(value: string, flag: string): { host: string; port: number } {
  const m = /^(?:(?:nats|nats-route|route|tcp):\/\/)?(?:[^@/]*@)?(\[[^\]]*\]|[^:/]*):(-?\d+)\/?$/.exec(value.trim());
  const port = m ? Number(m[2]) : NaN;
  if (!m || m[1] === "" || port < -1 || port > 65535) {
    throw new OptionsError(`invalid value "${value}" for flag -${flag}: not a route URL (e.g. nats://127.0.0.1:6222)`);
  }
  return { host: m[1]!.replace(/^\[|\]$/g, ""), port };
}

export function parseDuration(value: string, flag: string): number {
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Number(trimmed) * 1000;
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy;
  let total = 0;
  let matched = 0;
  for (let m = re.exec(trimmed); m; m = re.exec(trimmed)) {
    total += Number(m[1]) * durationUnits[m[2]!]!;
    matched = re.lastIndex;
  }
  if (matched === 0 || matched !== trimmed.length) {
    throw new OptionsError(`invalid value "${value}" for flag -${flag}: not a duration (e.g. 2m, 10s, 500ms)`);
  }
  return total;
}

/**
 * `client_advertise` as nats-server's parseHostPort: "host:port", or "host" (then `defaultPort`, the
 * client port); port 0 or -1 also means the client port. Throws OptionsError on anything else.
 */
export function parseAdvertise(value: string, defaultPort: number, what = "client_advertise"): { host: string; port: number } {
  const m = /^(?:\[([^\]]*)\]|([^:]*))(?::(-?\d+))?$/.exec(value.trim());
  if (value.trim() === "" || m === null) throw new OptionsError(`${what}: invalid address ${JSON.stringify(value)}`);
  const port = m[3] === undefined ? defaultPort : Number(m[3]);
  if (port < -1 || port > 65535) throw new OptionsError(`${what}: invalid port in ${JSON.stringify(value)}`);
  return { host: (m[1] ?? m[2]!).trim(), port: port === 0 || port === -1 ? defaultPort : port };
}

/** nats-server's validateMQTTOptions, for what natter implements of it. */
function validateMqttOptions(o: Options): void {
  const m = o.mqtt;
  if (m.port === 0) return;
  if (m.port > 0 && (m.port === o.port || m.port === o.wsPort || m.port === o.httpPort)) throw new OptionsError(`mqtt port ${m.port} is already used by another listener`);
  // With --procs the workers are the nodes of a cluster: sessions live in their one JetStream (src/workers/).
  if (o.procs > 1 && !o.jetstream) throw new OptionsError("mqtt with --procs greater than 1 needs JetStream (-js): the workers keep MQTT sessions in it");
  const hasUsers = (o.authorization?.users?.length ?? 0) > 0 || o.accounts.some((a) => a.users.length > 0);
  if (hasUsers && m.auth?.user) throw new OptionsError("mqtt authentication username not compatible with presence of users/nkeys");
  if (hasUsers && m.auth?.token) throw new OptionsError("mqtt authentication token not compatible with presence of users/nkeys");
  // Sessions, retained messages and QoS 1/2 live in the stream layer: a standalone server needs it.
  if (!o.jetstream && o.clusterPort === 0 && effectiveLeafnodeOptions(o) === null) {
    throw new OptionsError(MQTT_NEEDS_JETSTREAM);
  }
}
