// One Options type for the whole server: defaults (nats-server's), command-line flags under
// nats-server's names, and validation that ends in one clear line instead of a stack trace.

import { formatGoDuration } from "./config/duration.ts";

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
  /** Monitoring HTTP port (/varz, /connz, …); 0 = off. */
  httpPort: number;
  httpHost: string;
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
}

export const defaultOptions: Readonly<Options> = {
  host: "0.0.0.0",
  port: 4222,
  serverName: "",
  wsPort: 0,
  wsHost: "0.0.0.0",
  wsAllowedOrigins: [],
  wsSameOrigin: false,
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
  httpPort: 0,
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
};

/** A bad flag or value: main prints the message on one line and exits 1. */
export class OptionsError extends Error {}

export type ParsedCommandLine =
  /** `flagged`: what the flags set, laid over the config file's values (at start and on reload). */
  | { kind: "run"; options: Options; flagged: Partial<Options>; checkConfig: boolean }
  /** --signal <command>[=<pid or pid file>]: send it to a running natter and exit. */
  | { kind: "signal"; signal: string }
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
  { names: ["ws_compression"], takesValue: false, help: "Offer permessage-deflate on WebSocket (default: off, as nats-server)",
    set: (o, v) => { o.wsCompression = v === "true"; } },
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
  { names: ["m", "http_port"], takesValue: true, help: "Use port for HTTP monitoring (default: off)",
    set: (o, v, f) => { o.httpPort = parsePort(v, f, true); } },
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
  { names: ["ports_file_dir"], takesValue: true, help: "Write <executable>_<pid>.ports, the listeners' URLs, into this directory",
    set: (o, v) => { o.portsFileDir = v; } },
  { names: ["lame_duck_duration"], takesValue: true, help: "Lame duck mode: spread closing clients over this time (default: 2m, at least 30s)",
    set: (o, v, f) => { o.lameDuckDurationMs = parseDuration(v, f); } },
  { names: ["lame_duck_grace_period"], takesValue: true, help: "Lame duck mode: wait this long before closing clients (default: 10s)",
    set: (o, v, f) => { o.lameDuckGracePeriodMs = parseDuration(v, f); } },
];

const flagByName = new Map<string, FlagSpec>();
for (const spec of flags) for (const name of spec.names) flagByName.set(name, spec);

/** Parses argv (without the runtime and script) the way Go's flag package does: -name or --name, value after `=` or as the next word. */
export function parseCommandLine(argv: readonly string[]): ParsedCommandLine {
  const options: Options = { ...defaultOptions, wsAllowedOrigins: [] };
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
    const body = word.replace(/^--?/, "");
    const eq = body.indexOf("=");
    const name = eq >= 0 ? body.slice(0, eq) : body;
    if (name === "h" || name === "help") return { kind: "help" };
    if (name === "v" || name === "version") return { kind: "version" };
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
  if (o.maxControlLine < 32) throw new OptionsError("max_control_line must be at least 32 bytes");
  if (o.maxPending < o.maxPayload) throw new OptionsError(`max_payload (${o.maxPayload}) cannot be higher than max_pending (${o.maxPending})`);
  if (o.wsPort > 0 && o.wsPort === o.port) throw new OptionsError(`ws_port ${o.wsPort} is the same as the client port`);
  if (o.httpPort > 0 && (o.httpPort === o.port || o.httpPort === o.wsPort)) throw new OptionsError(`http_port ${o.httpPort} is already used by another listener`);
  if (o.pingIntervalMs < 1) throw new OptionsError("ping_interval must be positive");
  if (o.lameDuckDurationMs < 30_000) throw new OptionsError(`invalid lame_duck_duration of ${formatGoDuration(o.lameDuckDurationMs)}, minimum is 30 seconds`);
  if (o.lameDuckGracePeriodMs < 0) throw new OptionsError("invalid lame_duck_grace_period, needs to be positive");
  if (o.lameDuckGracePeriodMs >= o.lameDuckDurationMs) {
    throw new OptionsError(`lame duck grace period (${formatGoDuration(o.lameDuckGracePeriodMs)}) should be strictly lower than lame duck duration (${formatGoDuration(o.lameDuckDurationMs)})`);
  }
}

export function usage(): string {
  const lines = ["Usage: natter [options]", "", "Server options:"];
  for (const spec of flags) {
    const names = spec.names.map((n) => (n.length <= 2 ? `-${n}` : `--${n}`)).join(", ");
    const left = spec.takesValue ? `${names} <value>` : names;
    lines.push(`    ${left.padEnd(40)} ${spec.help}`);
  }
  lines.push(`    ${"-t".padEnd(40)} Test the configuration file (-c) and exit`);
  lines.push(`    ${"-sl, --signal <signal>[=<pid>]".padEnd(40)} Send a signal to a running natter (ldm, stop, quit, term, reopen, reload); <pid> is a pid or a pid file`);
  lines.push(`    ${"-h, --help".padEnd(40)} Show this message`);
  lines.push(`    ${"-v, --version".padEnd(40)} Show version`);
  lines.push("", "Sizes take KB/MB/GB suffixes (1024-based); durations take ms/s/m/h (a bare number is seconds).");
  lines.push("In a config file (-c) values follow nats-server: 1K = 1000, 1KB = 1024; durations are strings (\"2m\").");
  return lines.join("\n");
}

function parsePort(value: string, flag: string, allowRandom: boolean): number {
  const n = Number(value);
  if (!/^-?\d+$/.test(value) || n > 65535 || n < (allowRandom ? -1 : 0)) {
    throw new OptionsError(`invalid value "${value}" for flag -${flag}: not a port number`);
  }
  return n;
}

function parseCount(value: string, flag: string): number {
  if (!/^\d+$/.test(value)) throw new OptionsError(`invalid value "${value}" for flag -${flag}: not a whole number`);
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
