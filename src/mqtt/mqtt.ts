// The MQTT subsystem of a server: its listener, the sessions by client id (takeover, kept sessions,
// wills) and the timers (keepalive, QoS 1/2 redelivery after ack_wait). MQTT clients publish into the
// account's subject space the way a NATS client's PUB does, so NATS subscribers, routes and leaf links
// get MQTT messages with no change to the NATS path.
import type { Server } from "../server.ts";
import type { Account } from "../accounts/account.ts";
import type { Transport } from "../transport/transport.ts";
import { deliverToMatches } from "../router.ts";
import { isValidPublishSubject } from "../subjects/subject.ts";
import type { MqttOptions } from "./options.ts";
import { MqttConnection } from "./connection.ts";
import { MqttSession } from "./session.ts";
import { MQTT_5, PacketType, ReasonCode, type Will } from "./packets.ts";
import { propertiesToHeaders } from "./headers.ts";
import { topicToSubject } from "./topics.ts";
import { listenMqtt, type MqttListener } from "./listener.ts";

/** How often keepalives and ack_wait are checked. */
const SWEEP_MS = 250;

export class Mqtt {
  readonly sessions = new Map<string, MqttSession>();
  readonly connections = new Map<number, MqttConnection>();
  /** MQTT clients accepted since start (for /varz). */
  totalConnections = 0;
  private listener: MqttListener | null = null;
  private timer: ReturnType<typeof setInterval> | null = null;

  constructor(
    readonly server: Server,
    readonly options: MqttOptions,
  ) {}

  /** The largest packet accepted (and announced as MQTT 5 maximum packet size): max_payload plus room for topic and properties. */
  get maxPacketSize(): number {
    return this.server.options.maxPayload + 65_536;
  }

  get port(): number {
    return this.listener?.port ?? this.options.port;
  }

  /** Binds the MQTT port (throws as Bun.listen does when it cannot). */
  listen(): void {
    const o = this.options;
    this.listener = listenMqtt(this, o.host, o.port === -1 ? 0 : o.port);
    this.timer = setInterval(() => this.sweep(), SWEEP_MS);
  }

  /** A transport connected (TCP, TLS, or WebSocket at /mqtt). */
  accept(transport: Transport): MqttConnection {
    const conn = new MqttConnection(this, this.server, transport, this.server.allocateClientId());
    this.totalConnections++;
    this.server.stats.totalConnections++;
    if (this.server.isShuttingDown || this.server.connections.size + this.connections.size >= this.server.options.maxConnections) {
      conn.close("Maximum Connections Exceeded");
      return conn;
    }
    this.connections.set(conn.cid, conn);
    return conn;
  }

  remove(conn: MqttConnection): void {
    this.connections.delete(conn.cid);
  }

  /**
   * CONNECT accepted: the client's session, new or kept. A client id already connected is taken over:
   * the older connection is closed (MQTT 5: DISCONNECT 0x8E) [MQTT-3.1.4-2].
   */
  attach(conn: MqttConnection, cleanStart: boolean, account: Account): { session: MqttSession; present: boolean } {
    let session = this.sessions.get(conn.clientId);
    if (session !== undefined) {
      const previous = session.connection;
      if (previous !== null && previous !== conn) {
        previous.closeWith(ReasonCode.SessionTakenOver, "session taken over");
      }
      if (session.willTimer !== null) {
        clearTimeout(session.willTimer); // the client is back before its will delay ended: no will
        session.willTimer = null;
      }
      if (session.expiryTimer !== null) {
        clearTimeout(session.expiryTimer);
        session.expiryTimer = null;
      }
      if (cleanStart || session.account !== account) {
        session.close();
        this.sessions.delete(conn.clientId);
        session = undefined;
      }
    }
    const present = session !== undefined;
    if (session === undefined) {
      session = new MqttSession(conn.clientId, account, this.options.maxAckPending);
      this.sessions.set(conn.clientId, session);
    }
    session.connection = conn;
    return { session, present };
  }

  /** The session's connection closed: its will is published (after the will delay), the session kept or ended. */
  detach(conn: MqttConnection, will: Will | null): void {
    const session = conn.session!;
    if (session.connection !== conn) return; // taken over: the session lives on with the new connection
    session.connection = null;
    if (will !== null) {
      const delay = conn.level === MQTT_5 ? Math.min(will.properties.willDelayInterval ?? 0, session.expirySeconds) : 0;
      if (delay > 0) {
        session.willTimer = setTimeout(() => {
          session.willTimer = null;
          this.publishWill(session, will);
        }, delay * 1000);
      } else {
        this.publishWill(session, will);
      }
    }
    if (session.expirySeconds === 0) {
      session.close();
      this.sessions.delete(session.clientId);
    } else if (session.expirySeconds !== 0xffffffff) {
      session.expiryTimer = setTimeout(() => {
        if (session.connection !== null) return;
        if (session.willTimer !== null) {
          clearTimeout(session.willTimer); // the session ends first: its will goes now ([MQTT-3.1.3-9])
          session.willTimer = null;
          if (will !== null) this.publishWill(session, will);
        }
        session.close();
        if (this.sessions.get(session.clientId) === session) this.sessions.delete(session.clientId);
      }, session.expirySeconds * 1000);
    }
  }

  private publishWill(session: MqttSession, will: Will): void {
    let subject: string;
    try {
      subject = topicToSubject(will.topic);
    } catch {
      return;
    }
    const reply = will.properties.responseTopic !== undefined ? safeSubject(will.properties.responseTopic) : null;
    this.publish(session, subject, reply, propertiesToHeaders(will.properties), will.payload, will.qos);
    this.server.flushDirty();
  }

  /**
   * Publishes like a NATS client's PUB/HPUB from `session` (its QoS read by MQTT subscribers' sessions).
   * Returns whether anyone received it.
   */
  publish(session: MqttSession, subject: string, reply: string | null, headers: Buffer | null, payload: Buffer, qos: 0 | 1 | 2): boolean {
    if (!isValidPublishSubject(subject)) return false;
    const headerSize = headers === null ? -1 : headers.length;
    const total = payload.length + (headers === null ? 0 : headers.length);
    const sizes = headers === null ? `${total}` : `${headerSize} ${total}`;
    const line = `${headers === null ? "PUB" : "HPUB"} ${subject} ${reply === null ? "" : `${reply} `}${sizes}\r\n`;
    const lineLength = Buffer.byteLength(line, "utf8");
    const frame = Buffer.allocUnsafe(lineLength + total + 2);
    frame.write(line, 0, "utf8");
    let at = lineLength;
    if (headers !== null) at += headers.copy(frame, at);
    at += payload.copy(frame, at);
    frame[at] = 13;
    frame[at + 1] = 10;
    const subjectStart = headers === null ? 4 : 5;
    const subjectEnd = subjectStart + Buffer.byteLength(subject, "utf8");
    const replyStart = reply === null ? -1 : subjectEnd + 1;
    const replyEnd = reply === null ? -1 : replyStart + Buffer.byteLength(reply, "utf8");
    const stats = this.server.stats;
    stats.inMsgs++;
    stats.inBytes += total;
    session.publishingQos = qos;
    const delivered = deliverToMatches(session.account.sublist.match(subject), session, false, frame, subjectStart, subjectEnd, replyStart, replyEnd, headerSize, lineLength, lineLength + total, subjectEnd + 1);
    session.publishingQos = 0;
    if (!delivered) stats.noInterestMsgs++;
    return delivered;
  }

  /** Keepalive ([MQTT-3.1.2-24]: 1.5 × keep alive without a packet closes) and QoS 1/2 redelivery after ack_wait. */
  private sweep(): void {
    const now = Date.now();
    for (const conn of this.connections.values()) {
      if (conn.closed) continue;
      if (conn.level === 0 || conn.session === null) {
        if (now - conn.startedAt > this.authTimeoutMs) conn.close("Authentication Timeout");
        continue;
      }
      if (conn.keepAlive > 0 && now - conn.lastActivity > conn.keepAlive * 1500) {
        this.server.log.debug(`${conn.logPrefix} - Keep alive timeout`);
        conn.closeWith(ReasonCode.KeepAliveTimeout, "keep alive timeout");
        continue;
      }
      if (this.options.ackWaitMs > 0) conn.session.redeliver(now, this.options.ackWaitMs);
    }
    this.server.flushDirty();
  }

  /** How long a client has to send CONNECT (nats-server's auth timeout; 2 s without authentication). */
  private get authTimeoutMs(): number {
    return this.server.auth?.mqttAuthTimeoutMs ?? 2000;
  }

  /** Lame duck mode: no new MQTT clients; the connected ones stay. */
  stopAccepting(): void {
    this.listener?.stop();
    this.listener = null;
  }

  /** Server shutdown: MQTT 5 clients are told (DISCONNECT 0x8B), then every connection is closed. */
  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.listener?.stop();
    this.listener = null;
    for (const conn of [...this.connections.values()]) conn.closeWith(ReasonCode.ServerShuttingDown, "server shutting down");
    for (const session of this.sessions.values()) session.close();
    this.sessions.clear();
  }
}

function safeSubject(topic: string): string | null {
  try {
    return topicToSubject(topic);
  } catch {
    return null;
  }
}

export { PacketType };
