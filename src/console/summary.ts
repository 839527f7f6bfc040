// What the console shows of the server's identity and configuration. Built from a list of what may be
// shown (never by copying the options and removing secrets): no password, token, nkey seed, credentials
// file content or URL user info can reach a browser through here, whatever the config holds.
import type { Server } from "../server.ts";
import { COMPATIBLE_NATS_VERSION, NATTER_VERSION } from "../server.ts";
import { uptime } from "../monitor/format.ts";
import { formatGoDuration } from "../config/duration.ts";

/** host:port of a URL, without any user:password@ it may carry. */
function withoutUserInfo(url: string): string {
  return url.replace(/^([a-z+-]+:\/\/)?[^@/]*@/i, "$1");
}

export interface Identity {
  server_id: string;
  server_name: string;
  version: string;
  natter_version: string;
  start: string;
  uptime: string;
}

export function identity(server: Server): Identity {
  const startMs = server.startedAt.getTime();
  return {
    server_id: server.serverId,
    server_name: server.serverName,
    version: COMPATIBLE_NATS_VERSION,
    natter_version: NATTER_VERSION,
    start: server.startedAt.toISOString(),
    uptime: uptime(Date.now() - startMs),
  };
}

/** The configuration as [setting, value] pairs, secrets left out by construction. */
export function configSummary(server: Server): [string, string][] {
  const o = server.options;
  const auth = o.authorization;
  const authText = auth === null ? "none"
    : auth.token !== undefined ? "token"
    : auth.users?.length ? `${auth.users.length} users`
    : auth.user !== undefined ? "user and password" : "configured";
  const rows: [string, string | number | boolean][] = [
    ["client port", `${o.host}:${server.port}`],
    ["monitoring port", `${o.httpsPort !== 0 ? "https" : "http"}://${o.httpHost || o.host}:${server.httpPort || server.httpsPort}`],
    ["websocket port", o.wsPort === 0 ? "off" : `${o.wsHost || o.host}:${server.wsPort || o.wsPort}${o.wsTls ? " (TLS)" : ""}`],
    ["TLS", o.tls === null ? "off" : o.tls.verify ? "on, client certificates verified" : "on"],
    ["authorization", authText],
    ["accounts", o.accounts.length === 0 ? "none" : o.accounts.map((a) => a.name).join(", ")],
    ["max_payload", o.maxPayload],
    ["max_pending", o.maxPending],
    ["max_connections", o.maxConnections],
    ["ping_interval", formatGoDuration(o.pingIntervalMs)],
    ["write_deadline", formatGoDuration(o.writeDeadlineMs)],
    ["jetstream", o.jetstream ? `on (${o.storeDir || "default store dir"})` : "off"],
    ["cluster", o.clusterPort === 0 ? "off" : `${o.clusterName || "unnamed"} on ${o.clusterHost}:${server.cluster?.port || o.clusterPort}, routes: ${o.routes.map(withoutUserInfo).join(", ") || "none"}`],
    ["leafnodes", o.leafnodes === null ? "off" : `listen ${o.leafnodes.port === 0 ? "off" : `${o.leafnodes.host}:${server.leafnodes?.port || o.leafnodes.port}`}, ${o.leafnodes.remotes.length} remotes`],
    ["audit_log", o.auditLog || "off"],
    ["procs", o.procs],
    ["console users", o.console.users.map((u) => `${u.user} (${u.role})`).join(", ")],
    ["console alerts", Object.keys(o.console.alerts).join(", ") || "none"],
  ];
  return rows.map(([k, v]) => [k, String(v)]);
}
