// /varz: nats-server's Varz (server/monitor.go, v2.10.0), field for field, in its order. Sections
// natter has no notion of yet (gateway, OCSP cache), or not configured (leaf, mqtt, jetstream), are written the way
// nats-server writes them when they are not configured: empty objects. `cluster` is filled when
// --cluster is on.
import { nodeOs } from "../node-builtins.ts";
import type { Server } from "../server.ts";
import { COMPATIBLE_NATS_VERSION } from "../server.ts";
import { HANDSHAKE_TIMEOUT_MS } from "../cluster/handshake.ts";
import { leafVarz, type LeafVarz } from "./leafz.ts";
import { jetStreamVarz, type JetStreamVarz } from "../jetstream/jsz.ts";
import { mqttVarz, type MqttVarz } from "../mqtt/monitor.ts";
import { msToDuration, nowNs, rfc3339Ms, rfc3339Ns, uptime } from "./format.ts";

/** nats-server's WebsocketOptsVarz (omitempty fields left out when unset). */
export interface WebsocketVarz {
  host?: string;
  port?: number;
  no_tls?: boolean;
  same_origin?: boolean;
  allowed_origins?: string[];
  compression?: boolean;
}

/** nats-server's ClusterOptsVarz (all omitempty: {} without a cluster). */
export interface ClusterVarz {
  name?: string;
  addr?: string;
  cluster_port?: number;
  /** Seconds (float64): the route handshake timeout. */
  auth_timeout?: number;
  /** The configured seed routes, host:port. */
  urls?: string[];
  /** Seconds (float64). */
  tls_timeout?: number;
}

function clusterVarz(server: Server): ClusterVarz {
  const cluster = server.cluster;
  if (cluster === null) return {};
  const o = server.options;
  const v: ClusterVarz = {
    name: cluster.name || undefined,
    addr: o.clusterHost || undefined,
    cluster_port: cluster.port || undefined,
    auth_timeout: HANDSHAKE_TIMEOUT_MS / 1000,
  };
  if (o.routes.length > 0) v.urls = [...o.routes];
  v.tls_timeout = TLS_TIMEOUT_SECONDS;
  return v;
}

export interface SlowConsumersStats {
  clients: number;
  routes: number;
  gateways: number;
  leafs: number;
}

export interface Varz {
  server_id: string;
  server_name: string;
  version: string;
  proto: number;
  go: string;
  host: string;
  port: number;
  auth_required?: boolean;
  tls_required?: boolean;
  tls_verify?: boolean;
  max_connections: number;
  max_subscriptions?: number;
  /** time.Duration: nanoseconds. */
  ping_interval: number;
  ping_max: number;
  http_host: string;
  http_port: number;
  http_base_path: string;
  https_port: number;
  /** Seconds (float64). */
  auth_timeout: number;
  max_control_line: number;
  max_payload: number;
  max_pending: number;
  cluster: ClusterVarz;
  gateway: Record<string, never>;
  leaf: LeafVarz;
  mqtt: MqttVarz;
  websocket: WebsocketVarz;
  jetstream: JetStreamVarz;
  /** Seconds (float64). */
  tls_timeout: number;
  /** time.Duration: nanoseconds. */
  write_deadline: number;
  start: string;
  now: string;
  uptime: string;
  mem: number;
  cores: number;
  gomaxprocs: number;
  cpu: number;
  connections: number;
  total_connections: number;
  routes: number;
  remotes: number;
  leafnodes: number;
  in_msgs: number;
  out_msgs: number;
  in_bytes: number;
  out_bytes: number;
  slow_consumers: number;
  subscriptions: number;
  http_req_stats: Record<string, number>;
  config_load_time: string;
  /** server_tags (lower case). */
  tags?: string[];
  ocsp_peer_cache: Record<string, never>;
  slow_consumer_stats: SlowConsumersStats;
}

/** nats-server's default TLS handshake timeout (seconds), shown when no tls block sets one. */
const TLS_TIMEOUT_SECONDS = 2;

// CPU percent as nats-server's pse computes it on Linux: process CPU time over a window of at least
// one second, one decimal. The window is sampled when /varz (or /metrics) asks, not by a timer; the
// first sample covers the time since the process started.
let lastCpuMicros = 0;
let lastSampleMs = performance.now() - process.uptime() * 1000;
let lastPercent = 0;

/** Percent of one core used by this process over the last sampling window (100 = one full core). */
export function cpuPercent(): number {
  const now = performance.now();
  const elapsed = now - lastSampleMs;
  if (elapsed >= 1000) {
    const u = process.cpuUsage();
    const used = u.user + u.system;
    lastPercent = Math.floor(((used - lastCpuMicros) / 1000 / elapsed) * 1000) / 10;
    lastCpuMicros = used;
    lastSampleMs = now;
  }
  return lastPercent;
}

/** Resident set size, in bytes. */
export function residentMemory(): number {
  return process.memoryUsage.rss();
}

export function cores(): number {
  const os = nodeOs();
  return typeof os.availableParallelism === "function" ? os.availableParallelism() : os.cpus().length;
}

/** The `go` field: what natter runs on, as INFO reports it. */
export function runtimeVersion(): string {
  return `bun${Bun.version}`;
}

/** A copy with keys in sorted order, as Go writes a map. */
function sortedKeys(m: Readonly<Record<string, number>>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of Object.keys(m).sort()) out[k] = m[k]!;
  return out;
}

export function varz(server: Server, httpReqStats: Readonly<Record<string, number>>): Varz {
  const o = server.options;
  const now = nowNs();
  const nowMs = Number(now / 1_000_000n);
  const startMs = server.startedAt.getTime();
  const stats = server.stats;
  const websocket: WebsocketVarz = {};
  if (o.wsPort !== 0) {
    websocket.host = o.wsHost;
    websocket.port = server.wsPort || o.wsPort;
    websocket.no_tls = !o.wsTls;
    if (o.wsSameOrigin) websocket.same_origin = true;
    if (o.wsAllowedOrigins.length > 0) websocket.allowed_origins = [...o.wsAllowedOrigins];
    if (o.wsCompression) websocket.compression = true;
  }
  return {
    server_id: server.serverId,
    server_name: server.serverName,
    version: COMPATIBLE_NATS_VERSION,
    proto: 1,
    go: runtimeVersion(),
    host: o.host,
    port: server.port,
    auth_required: server.auth?.infoAuthRequired("tcp") || undefined,
    tls_required: o.tls && !o.allowNonTls ? true : undefined, // as INFO: with allow_non_tls TLS is only offered
    tls_verify: o.tls?.verify || undefined,
    max_connections: o.maxConnections,
    max_subscriptions: o.maxSubscriptions > 0 ? o.maxSubscriptions : undefined,
    ping_interval: msToDuration(o.pingIntervalMs),
    ping_max: o.pingMax,
    http_host: o.httpHost || o.host,
    http_port: server.httpPort,
    http_base_path: "",
    https_port: server.httpsPort,
    // With authentication, its timeout (src/auth). Without, natter's connect timeout plays that part:
    // a client silent that long is closed with "Authentication Timeout".
    auth_timeout: (server.auth?.timeoutFor("tcp") ?? o.connectTimeoutMs) / 1000,
    max_control_line: o.maxControlLine,
    max_payload: o.maxPayload,
    max_pending: o.maxPending,
    cluster: clusterVarz(server),
    gateway: {},
    leaf: leafVarz(server),
    mqtt: mqttVarz(server),
    websocket,
    jetstream: jetStreamVarz(server),
    tls_timeout: o.tls?.timeoutMs ? o.tls.timeoutMs / 1000 : TLS_TIMEOUT_SECONDS,
    write_deadline: msToDuration(o.writeDeadlineMs),
    start: rfc3339Ms(startMs),
    now: rfc3339Ns(now),
    uptime: uptime(nowMs - startMs),
    mem: residentMemory(),
    cores: cores(),
    // One JavaScript thread runs the server (Go's GOMAXPROCS counts threads running Go code).
    gomaxprocs: 1,
    cpu: cpuPercent(),
    connections: server.clientCount,
    total_connections: stats.totalConnections,
    routes: server.cluster?.routes.size ?? 0,
    remotes: server.cluster?.routes.size ?? 0,
    leafnodes: server.leafnodes?.open.size ?? 0,
    in_msgs: stats.inMsgs,
    out_msgs: stats.outMsgs,
    in_bytes: stats.inBytes,
    out_bytes: stats.outBytes,
    slow_consumers: stats.slowConsumers,
    subscriptions: server.sublist.count,
    http_req_stats: sortedKeys(httpReqStats),
    config_load_time: rfc3339Ms(startMs),
    tags: o.serverTags.length > 0 ? [...o.serverTags] : undefined,
    ocsp_peer_cache: {},
    slow_consumer_stats: { clients: stats.slowConsumers, routes: server.cluster?.slowRoutes ?? 0, gateways: 0, leafs: 0 },
  };
}
