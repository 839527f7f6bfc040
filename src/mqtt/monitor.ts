// MQTT clients in monitoring: /connz records (type "mqtt", `mqtt_client` = the client id, as
// nats-server shows them) and the /varz `mqtt` block (nats-server's MQTTOptsVarz).
import type { ConnRecord, SubDetail } from "../monitor/connz.ts";
import type { Server } from "../server.ts";
import type { MqttConnection } from "./connection.ts";

/** A connection's values now (open), or its snapshot as it closes (`stopMs` and `reason` given). */
export function mqttRecord(conn: MqttConnection, stopMs: number | null = null, reason?: string): ConnRecord {
  const subs: SubDetail[] = [];
  for (const list of conn.session?.subscriptions.values() ?? []) {
    for (const sub of list) {
      subs.push({ account: stopMs !== null ? conn.account.name : undefined, subject: sub.subject, qgroup: sub.queue ?? undefined, sid: sub.sid, msgs: sub.delivered, cid: conn.cid });
    }
  }
  return {
    cid: conn.cid,
    type: "mqtt",
    ip: conn.transport.remoteAddress,
    port: conn.transport.remotePort,
    startMs: conn.startedAt,
    lastMs: conn.lastActivity,
    stopMs,
    reason,
    rttNs: 0,
    pending: stopMs !== null ? 0 : conn.pendingBytes,
    inMsgs: conn.inMsgs,
    outMsgs: conn.outMsgs,
    inBytes: conn.inBytes,
    outBytes: conn.outBytes,
    numSubs: subs.length,
    name: "",
    lang: "",
    version: "",
    user: conn.authUser,
    account: conn.account.name,
    subs,
    mqttClient: conn.clientId,
  };
}

/** nats-server's MQTTOptsVarz (omitempty fields left out when unset); ack_wait in nanoseconds. */
export interface MqttVarz {
  host?: string;
  port?: number;
  no_auth_user?: string;
  auth_timeout?: number;
  tls_timeout?: number;
  ack_wait?: number;
  max_ack_pending?: number;
}

export function mqttVarz(server: Server): MqttVarz {
  const mqtt = server.mqtt;
  if (mqtt === null) return {};
  const o = mqtt.options;
  return {
    host: o.host || undefined,
    port: mqtt.port,
    no_auth_user: o.auth?.noAuthUser || undefined,
    auth_timeout: o.auth?.timeoutMs ? o.auth.timeoutMs / 1000 : undefined,
    tls_timeout: o.tls !== null ? (o.tls.timeoutMs ?? 2000) / 1000 : undefined,
    ack_wait: o.ackWaitMs * 1_000_000,
    max_ack_pending: o.maxAckPending,
  };
}
