// The mqtt block, in nats-server's syntax (server/opts.go parseMQTT):
//   mqtt { listen: "host:port" | port, host, port, tls { … }, authorization { user, password, token, timeout },
//          no_auth_user, ack_wait: "30s", max_ack_pending: 1024,
//          stream_replicas, consumer_replicas, consumer_memory_storage }
// plus natter's max_keep_alive (as Mosquitto's max_keepalive; MQTT 5's server keep alive).
// and the --mqtt_port flag. Keys nats-server knows that natter does not implement are refused by name.
import type { TlsOptions, WebSocketAuthOptions } from "../auth/options.ts";
import { parseSimpleAuth, parseTls } from "../auth/config.ts";
import { parseGoDuration } from "../config/duration.ts";
import { ConfigError, type ConfEntry, type ConfNode } from "../config/parser.ts";

export interface MqttOptions {
  host: string;
  /** 0 = no MQTT listener; -1 = a random port. */
  port: number;
  tls: TlsOptions | null;
  /** The block's own user/password/token (an override of the top level's, as for websocket), timeout, no_auth_user. */
  auth: WebSocketAuthOptions | null;
  /** How long a QoS 1/2 message waits for its PUBACK/PUBREC/PUBCOMP before it is sent again (DUP). */
  ackWaitMs: number;
  /** QoS 1/2 messages in flight to one subscriber at most (nats-server's per-subscription consumer limit). */
  maxAckPending: number;
  /**
   * natter's (as Mosquitto's max_keepalive): the longest keep alive accepted, in seconds. An MQTT 5 client
   * asking for none (0) or a longer one is told this one in CONNACK (server keep alive); 0 = no limit.
   */
  maxKeepAlive: number;
  /**
   * Replicas of the `$MQTT_*` streams; 0 = nats-server's default (1 alone, in a cluster as many as the
   * cluster has JetStream nodes, at most 3). An existing stream keeps the replicas it has.
   */
  streamReplicas: number;
  /**
   * nats-server's consumer_replicas (which 2.10 ignores) and consumer_memory_storage: its MQTT
   * subscriptions are JetStream consumers. natter's are not (a session's QoS 1/2 messages are records in
   * `$MQTT_qos`, replicated with the stream), so these are accepted and have nothing to set.
   */
  consumerReplicas: number;
  consumerMemoryStorage: boolean;
}

/** nats-server's mqttDefaultAckWait and mqttDefaultMaxAckPending. */
export const DEFAULT_ACK_WAIT_MS = 30_000;
export const DEFAULT_MAX_ACK_PENDING = 1024;
/** nats-server's mqttMaxAckTotalLimit: packet identifiers are 16 bits. */
export const MAX_ACK_PENDING_LIMIT = 0xffff;
/** Mosquitto 2.0's max_keepalive default: the largest keep alive MQTT can express. */
export const DEFAULT_MAX_KEEP_ALIVE = 65_535;

export function defaultMqttOptions(): MqttOptions {
  return { host: "0.0.0.0", port: 0, tls: null, auth: null, ackWaitMs: DEFAULT_ACK_WAIT_MS, maxAckPending: DEFAULT_MAX_ACK_PENDING, maxKeepAlive: DEFAULT_MAX_KEEP_ALIVE, streamReplicas: 0, consumerReplicas: 0, consumerMemoryStorage: false };
}

/** Keys of nats-server 2.10's mqtt block natter does not implement yet (JS domains, OCSP). */
const UNSUPPORTED_MQTT_KEYS: ReadonlySet<string> = new Set([
  "js_domain", "consumer_inactive_threshold",
  "js_api_timeout", "reject_qos2_publish", "downgrade_qos2_subscribe", "tls_ocsp_peer",
]);

function fail(e: ConfEntry | ConfNode, reason: string): never {
  throw new ConfigError(reason, e.pos);
}

/** Reads the top-level `mqtt` block into `mqtt`. */
export function applyMqttBlock(e: ConfEntry, mqtt: MqttOptions): void {
  const n = e.node;
  if (n.kind !== "map") fail(e, `Expected mqtt to be a map, got ${n.kind}`);
  for (const k of n.value.values()) {
    const key = k.key.toLowerCase();
    const v = k.node;
    switch (key) {
      case "listen": {
        if (v.kind === "integer") mqtt.port = port(k, v.value);
        else if (v.kind === "string") {
          const m = /^(?:\[([^\]]*)\]|([^:]*)):(-?\d+)$/.exec(v.value);
          if (!m) fail(k, `could not parse address string ${JSON.stringify(v.value)}`);
          mqtt.host = m[1] ?? m[2]!;
          mqtt.port = port(k, Number(m[3]));
        } else fail(k, `expected port or host:port, got ${v.kind}`);
        break;
      }
      case "port":
        if (v.kind !== "integer") fail(k, `port must be an integer, got ${v.kind}`);
        mqtt.port = port(k, v.value);
        break;
      case "host":
      case "net":
        if (v.kind !== "string") fail(k, `${k.key} must be a string, got ${v.kind}`);
        mqtt.host = v.value;
        break;
      case "tls":
        mqtt.tls = parseTls(k, "client");
        break;
      case "authorization":
      case "authentication": {
        const a = parseSimpleAuth(k);
        if ((a.user || a.password) && a.token) fail(k, "Cannot have a user/pass and token");
        mqtt.auth = { ...(mqtt.auth ?? {}), ...a };
        break;
      }
      case "no_auth_user":
        if (v.kind !== "string") fail(k, `no_auth_user must be a string, got ${v.kind}`);
        mqtt.auth = { ...(mqtt.auth ?? {}), noAuthUser: v.value };
        break;
      case "ack_wait":
      case "ackwait":
        if (v.kind !== "string") fail(k, `ack_wait must be a duration string (e.g. "30s"), got ${v.kind}`);
        try {
          mqtt.ackWaitMs = parseGoDuration(v.value);
        } catch (error) {
          fail(k, `error parsing ack_wait: ${(error as Error).message}`);
        }
        if (mqtt.ackWaitMs < 0) fail(k, "ack wait must be a positive value");
        break;
      case "max_ack_pending":
      case "max_pending":
      case "max_inflight":
        if (v.kind !== "integer") fail(k, `max_ack_pending must be an integer, got ${v.kind}`);
        if (v.value < 0 || v.value > MAX_ACK_PENDING_LIMIT) fail(k, `invalid value ${v.value}, should be in [0..${MAX_ACK_PENDING_LIMIT}] range`);
        mqtt.maxAckPending = v.value === 0 ? DEFAULT_MAX_ACK_PENDING : v.value;
        break;
      case "max_keep_alive":
      case "max_keepalive":
        if (v.kind !== "integer") fail(k, `max_keep_alive must be an integer (seconds), got ${v.kind}`);
        if (v.value < 0 || v.value > 65_535) fail(k, `invalid value ${v.value}, should be in [0..65535] range`);
        mqtt.maxKeepAlive = v.value;
        break;
      case "stream_replicas":
        if (v.kind !== "integer") fail(k, `stream_replicas must be an integer, got ${v.kind}`);
        mqtt.streamReplicas = Math.max(0, v.value);
        break;
      case "consumer_replicas":
        // nats-server 2.10 ignores it too ("consumer replicas setting ignored in this server version").
        if (v.kind !== "integer") fail(k, `consumer_replicas must be an integer, got ${v.kind}`);
        mqtt.consumerReplicas = Math.max(0, v.value);
        break;
      case "consumer_memory_storage":
        if (v.kind !== "bool") fail(k, `consumer_memory_storage must be a boolean, got ${v.kind}`);
        mqtt.consumerMemoryStorage = v.value;
        break;
      default:
        if (UNSUPPORTED_MQTT_KEYS.has(key)) fail(k, `"mqtt.${k.key}" is not supported yet`);
        if (!k.usedAsVariable) fail(k, `unknown field "${k.key}"`);
    }
  }
}

function port(e: ConfEntry, value: number): number {
  if (value < -1 || value > 65535) fail(e, `${e.key} must be a port number (0-65535, or -1 for a random port), got ${value}`);
  return value;
}

/** nats-server's error when MQTT is configured on a standalone server without JetStream. */
export const MQTT_NEEDS_JETSTREAM = "mqtt requires JetStream to be enabled if running in standalone mode";
