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
import type { Options } from "../options.ts";
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
}

const duration = (v: unknown) => formatGoDuration(v as number);

/** Every option, by its config key; an option missing here (added later) needs a restart. */
const SETTINGS: Partial<Record<keyof Options, Setting>> = {
  host: { name: "host", reloadable: false },
  port: { name: "port", reloadable: false },
  serverName: { name: "server_name", reloadable: false },
  wsPort: { name: "websocket port", reloadable: false },
  wsHost: { name: "websocket host", reloadable: false },
  wsAllowedOrigins: { name: "websocket allowed_origins", reloadable: false, show: (v) => `[${(v as string[]).join(" ")}]` },
  wsSameOrigin: { name: "websocket same_origin", reloadable: false },
  wsCompression: { name: "websocket compression", reloadable: false },
  httpPort: { name: "http_port", reloadable: false },
  httpHost: { name: "http_host", reloadable: false },
  configFile: { name: "config file", reloadable: false },
  auditLog: { name: "audit_log", reloadable: false },
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
    if (!setting?.reloadable) {
      const show = setting?.show ?? String;
      log.error(
        `Failed to reload server configuration: config reload not supported for ${setting?.name ?? key}: old=${show(current[key])}, new=${show(next[key])}`,
      );
      return false;
    }
    changed.push(key);
  }
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
    log.info(`Reloaded: ${setting.name} = ${(setting.show ?? String)(current[key])}`);
  }
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
