// System events: what nats-server publishes in the system account (server/events.go), in its JSON, and
// the audit log (src/audit.ts) fed from the same hooks.
//
// Published through an InternalClient of the system account, so only that account's clients see them
// (its own subject space):
// - `$SYS.ACCOUNT.<acc>.CONNECT`: a client finished CONNECT (authenticated and bound to its account), or
//   was admitted as the no_auth_user without one (nats-server's accountConnectEvent).
// - `$SYS.ACCOUNT.<acc>.DISCONNECT`: such a client closed, with its counts and the close reason
//   (accountDisconnectEvent). A client that never connected gets none.
// - `$SYS.SERVER.<id>.CLIENT.AUTH.ERR`: authentication failed (sendAuthErrorEvent, 2.9+: a
//   client_disconnect message, in the account the client was in: `$G`).
// - `$SYS.ACCOUNT.<acc>.PERMISSION.VIOLATION`: natter's own (nats-server has no such event): type
//   io.natter.advisory.v1.permission_violation, the client block, op, subject and queue.
// - Requests: `$SYS.REQ.SERVER.PING` (and `.PING.STATSZ`) answer with a ServerStatsMsg;
//   `$SYS.REQ.SERVER.<id>.<VARZ|CONNZ|SUBSZ|HEALTHZ|STATSZ>` and `$SYS.REQ.SERVER.PING.<same>` with the
//   monitoring endpoint's JSON wrapped as nats-server's ServerAPIResponse ({"server": …, "data": …}),
//   so `nats server list` / `nats server info` work.
//
// Costs: nothing is built unless the system account has a subscriber for the subject (checked first:
// a sublist count, then a match); the audit log builds its own small record. Nothing here is on the
// publish path: the hooks are CONNECT, close, auth refusal and permission violations. Messages are sent
// from a microtask, never from inside the caller (a close can happen in the middle of a delivery loop).
import { randomBytes } from "../random.ts";
import type { Transport } from "../transport/transport.ts";

/**
 * What events say about a client: a NATS client connection (src/connection.ts), or an MQTT client
 * (src/mqtt/connection.ts, with its MQTT client id).
 */
export interface EventClient {
  readonly cid: number;
  readonly startedAt: number;
  readonly transport: Transport;
  readonly account: Account;
  readonly authUser: string;
  readonly name: string;
  readonly lang: string;
  readonly version: string;
  readonly rttMs: number;
  readonly closeReason: string;
  readonly inMsgs: number;
  readonly inBytes: number;
  readonly outMsgs: number;
  readonly outBytes: number;
  /** An MQTT client's client id (nats-server's `client_id`); absent for NATS clients. */
  readonly mqttClientId?: string;
}
import type { Server } from "../server.ts";
import { COMPATIBLE_NATS_VERSION } from "../server.ts";
import { InternalClient, type InternalMessage } from "../internal-client.ts";
import type { Credentials } from "../auth/authenticator.ts";
import { REDACTED } from "../auth/redact.ts";
import { AuditLog, AuditType } from "../audit.ts";
import { goJson, msToDuration, nowNs, rfc3339Ms, rfc3339Ns } from "../monitor/format.ts";
import { cores, cpuPercent, residentMemory, varz } from "../monitor/varz.ts";
import { connz, connzOptions } from "../monitor/connz.ts";
import { subsz } from "../monitor/subsz.ts";
import { BadRequest } from "../monitor/query.ts";
import type { ProtocolErrorKind } from "../protocol/errors.ts";
import type { Account } from "./account.ts";

/** The `type` of each event, as nats-server spells its own (and natter's one of its own). */
export const EventType = {
  ClientConnect: "io.nats.server.advisory.v1.client_connect",
  ClientDisconnect: "io.nats.server.advisory.v1.client_disconnect",
  /** natter's own: nats-server sends no event for a permission violation. */
  PermissionViolation: "io.natter.advisory.v1.permission_violation",
} as const;

/** nats-server's ServerInfo: who sent an event; seq and time are stamped when it is sent. */
export interface EventServerInfo {
  name: string;
  host: string;
  id: string;
  cluster?: string;
  ver: string;
  jetstream: boolean;
  seq: number;
  /** RFC 3339, nanoseconds. */
  time: string;
}

/** nats-server's ClientInfo (omitempty fields left out when empty). */
export interface EventClientInfo {
  /** RFC 3339: when the connection was accepted. */
  start?: string;
  /** The client's IP. */
  host?: string;
  /** The connection id (cid). */
  id?: number;
  acc?: string;
  /** The user or nkey; "[REDACTED]" for a token. */
  user?: string;
  name?: string;
  lang?: string;
  ver?: string;
  /** Round-trip time, integer nanoseconds (Go's time.Duration). */
  rtt?: number;
  server?: string;
  /** The cluster of `server` (a JetStream API request's requester). */
  cluster?: string;
  /** RFC 3339: when it closed. */
  stop?: string;
  /** "Client". */
  kind?: string;
  /** "nats", "websocket" or "mqtt". */
  client_type?: string;
  /** An MQTT client's client id. */
  client_id?: string;
}

/** nats-server's DataStats (the MsgBytes part). */
export interface EventDataStats {
  msgs: number;
  bytes: number;
}

/** nats-server's TypedEvent header. */
interface TypedEvent {
  type: string;
  /** A unique id (a NUID in nats-server). */
  id: string;
  /** RFC 3339, nanoseconds. */
  timestamp: string;
}

export interface ConnectEventMsg extends TypedEvent {
  server: EventServerInfo;
  client: EventClientInfo;
}

export interface DisconnectEventMsg extends TypedEvent {
  server: EventServerInfo;
  client: EventClientInfo;
  /** What the client sent (its messages in). */
  sent: EventDataStats;
  /** What the client received (its messages out). */
  received: EventDataStats;
  reason: string;
}

/** natter's own. */
export interface PermissionViolationEventMsg extends TypedEvent {
  server: EventServerInfo;
  client: EventClientInfo;
  /** "publish", "subscribe" or "reply" (a reserved reply subject). */
  op: "publish" | "subscribe" | "reply";
  subject: string;
  queue?: string;
}

/** nats-server's ServerStats, as far as natter has them. */
export interface EventServerStats {
  start: string;
  mem: number;
  cores: number;
  cpu: number;
  connections: number;
  total_connections: number;
  active_accounts: number;
  subscriptions: number;
  sent: EventDataStats;
  received: EventDataStats;
  slow_consumers: number;
  active_servers: number;
}

export const EventSubject = {
  connect: (account: string) => `$SYS.ACCOUNT.${account}.CONNECT`,
  disconnect: (account: string) => `$SYS.ACCOUNT.${account}.DISCONNECT`,
  authError: (serverId: string) => `$SYS.SERVER.${serverId}.CLIENT.AUTH.ERR`,
  permissionViolation: (account: string) => `$SYS.ACCOUNT.${account}.PERMISSION.VIOLATION`,
  ping: "$SYS.REQ.SERVER.PING",
} as const;

type ServerStamped = { server: EventServerInfo };

/** A NUID-like event id: 12 random base62 characters, then a 10-character sequence. */
class EventIds {
  private static readonly DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  private readonly prefix: string;
  private seq = Math.floor(Math.random() * 1e12);

  constructor() {
    let p = "";
    for (const b of randomBytes(12)) p += EventIds.DIGITS[b % 62];
    this.prefix = p;
  }

  next(): string {
    let n = this.seq++;
    let tail = "";
    for (let i = 0; i < 10; i++) {
      tail = EventIds.DIGITS[n % 62] + tail;
      n = Math.floor(n / 62);
    }
    return this.prefix + tail;
  }
}

/**
 * The server's event source: `server.events`, null only when there is neither a system account nor an
 * audit log. Each hook is one call from the core (Connection, AuthGate, Lifecycle, Server).
 */
export class ServerEvents {
  /** Publishes in the system account; null with no_system_account (then only the audit log is fed). */
  private readonly client: InternalClient | null;
  private readonly system: Account | null;
  private readonly audit: AuditLog | null;
  /** Subscriptions of our own in the system account: a sublist holding no more than these has no listener. */
  private ownSubscriptions = 0;
  /** Clients whose connect was announced: only those get a disconnect. */
  private readonly connected = new WeakSet<EventClient>();
  private readonly ids = new EventIds();
  private seq = 0;
  private outbox: { subject: string; message: ServerStamped; reply?: boolean }[] = [];
  private sendScheduled = false;

  private constructor(
    private readonly server: Server,
    system: Account | null,
    audit: AuditLog | null,
  ) {
    this.system = system;
    this.audit = audit;
    this.client = system === null ? null : new InternalClient(server, "system events", system);
    if (this.client !== null) this.subscribeRequests(this.client);
  }

  /** null when there is nothing to do: no system account and no audit log. */
  static create(server: Server): ServerEvents | null {
    const system = server.accounts.system;
    const path = server.options.auditLog;
    const audit = path ? AuditLog.open(path, server.log) : null;
    if (system === null && audit === null) return null;
    return new ServerEvents(server, system, audit);
  }

  // ---- hooks ---------------------------------------------------------------------------------

  /** A client finished CONNECT (authenticated, bound to its account) or was admitted as the no_auth_user. */
  clientConnected(conn: EventClient): void {
    if (this.connected.has(conn)) return; // a second CONNECT is not a second connection
    this.connected.add(conn);
    const account = conn.account.name;
    this.audit?.record(AuditType.Connect, { ...this.auditClient(conn), name: conn.name || undefined, lang: conn.lang || undefined, version: conn.version || undefined });
    const subject = EventSubject.connect(account);
    if (!this.hasListener(subject)) return;
    const m: ConnectEventMsg = { ...this.typed(EventType.ClientConnect), server: PENDING_SERVER, client: this.clientInfo(conn, null) };
    this.send(subject, m);
  }

  /** A connection closed (Connection.close); only clients that connected are announced. */
  clientDisconnected(conn: EventClient): void {
    if (!this.connected.has(conn)) return;
    this.connected.delete(conn);
    const reason = conn.closeReason;
    this.audit?.record(AuditType.Disconnect, {
      ...this.auditClient(conn), reason, in_msgs: conn.inMsgs, in_bytes: conn.inBytes, out_msgs: conn.outMsgs, out_bytes: conn.outBytes,
    });
    const subject = EventSubject.disconnect(conn.account.name);
    if (!this.hasListener(subject)) return;
    const m: DisconnectEventMsg = {
      ...this.typed(EventType.ClientDisconnect),
      server: PENDING_SERVER,
      client: this.clientInfo(conn, Date.now()),
      sent: { msgs: conn.inMsgs, bytes: conn.inBytes },
      received: { msgs: conn.outMsgs, bytes: conn.outBytes },
      reason,
    };
    this.send(subject, m);
  }

  /** Credentials were refused (AuthGate.refuse); `connect` is null when the client sent no CONNECT. */
  authFailed(conn: EventClient, connect: Credentials | null): void {
    const reason = "Authentication Failure"; // nats-server's AuthenticationViolation close state
    const user = rawAuthUser(connect);
    this.audit?.record(AuditType.AuthError, { ...this.auditClient(conn), user: user || undefined, reason });
    const subject = EventSubject.authError(this.server.serverId);
    if (!this.hasListener(subject)) return;
    const client = this.clientInfo(conn, Date.now());
    client.user = user || undefined;
    const m: DisconnectEventMsg = {
      ...this.typed(EventType.ClientDisconnect),
      server: PENDING_SERVER,
      client,
      sent: { msgs: conn.inMsgs, bytes: conn.inBytes },
      received: { msgs: conn.outMsgs, bytes: conn.outBytes },
      reason,
    };
    this.send(subject, m);
  }

  /** A 'Permissions Violation' was sent to the client (Connection.permissionViolation). */
  permissionViolation(conn: EventClient, kind: ProtocolErrorKind, subject: string, queue?: string): void {
    const op = kind === "PublishViolation" ? "publish" : kind === "ReplyViolation" ? "reply" : "subscribe";
    this.audit?.record(AuditType.PermissionViolation, { ...this.auditClient(conn), op, subject, queue });
    const eventSubject = EventSubject.permissionViolation(conn.account.name);
    if (!this.hasListener(eventSubject)) return;
    const m: PermissionViolationEventMsg = {
      ...this.typed(EventType.PermissionViolation),
      server: PENDING_SERVER,
      client: this.clientInfo(conn, null),
      op,
      subject,
      queue,
    };
    this.send(eventSubject, m);
  }

  /** An admin operation (config reload, lame duck mode, shutdown, the console's sign-ins and actions): audit log only. */
  adminOperation(type: typeof AuditType.ConfigReload | typeof AuditType.LameDuck | typeof AuditType.Shutdown | typeof AuditType.ConsoleLogin | typeof AuditType.ConsoleAction, fields: Record<string, unknown> = {}): void {
    this.audit?.record(type, fields);
  }

  /** At shutdown, after the clients are closed: stops answering requests and writes the audit log out. */
  async close(): Promise<void> {
    this.flushOutbox();
    this.client?.close();
    await this.audit?.close();
  }

  // ---- requests ------------------------------------------------------------------------------

  private subscribeRequests(client: InternalClient): void {
    const id = this.server.serverId;
    const own = (subject: string, handler: (m: InternalMessage, name: string) => void) => {
      client.subscribe(subject, (m) => handler(m, m.subject.slice(m.subject.lastIndexOf(".") + 1)));
      this.ownSubscriptions++;
    };
    own(EventSubject.ping, (m) => this.reply(m, "STATSZ"));
    own(`${EventSubject.ping}.*`, (m, name) => this.reply(m, name));
    own(`$SYS.REQ.SERVER.${id}.*`, (m, name) => this.reply(m, name));
  }

  private reply(request: InternalMessage, name: string): void {
    if (request.reply === null) return;
    let options: Record<string, unknown> = {};
    if (request.payload.length > 0) {
      try {
        const parsed: unknown = JSON.parse(request.payload.toString("utf8"));
        if (parsed !== null && typeof parsed === "object" && !Array.isArray(parsed)) options = parsed as Record<string, unknown>;
      } catch {
        // nats-server answers an unparsable filter with an error; an empty body is the common case
      }
    }
    let body: ServerStamped & Record<string, unknown>;
    try {
      if (name === "STATSZ") body = { server: PENDING_SERVER, statsz: this.statsz() };
      else {
        const data = this.endpoint(name, options);
        if (data === undefined) return; // not an endpoint natter answers
        body = { server: PENDING_SERVER, data };
      }
    } catch (error) {
      const code = error instanceof BadRequest ? 400 : 500;
      body = { server: PENDING_SERVER, error: { code, description: (error as Error).message } };
    }
    this.send(request.reply, body);
  }

  /** The monitoring endpoint's JSON for a `$SYS.REQ.SERVER.<id>.<NAME>` request; undefined for a name natter does not serve. */
  private endpoint(name: string, options: Record<string, unknown>): unknown {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(options)) {
      if (v === undefined || v === null || typeof v === "object") continue;
      if (k === "subscriptions") q.set("subs", String(v));
      else if (k === "subscriptions_detail" && v === true) q.set("subs", "detail");
      else q.set(k, String(v));
    }
    switch (name) {
      case "VARZ":
        return varz(this.server, {});
      case "CONNZ":
        return connz(this.server, connzOptions(q));
      case "SUBSZ":
        return subsz(this.server, q);
      case "HEALTHZ":
        return this.server.isShuttingDown ? { status: "unavailable", error: "server is shutting down" } : { status: "ok" };
      default:
        return undefined;
    }
  }

  private statsz(): EventServerStats {
    const s = this.server;
    let subscriptions = 0;
    let activeAccounts = 0;
    for (const account of s.accounts.all()) {
      subscriptions += account.sublist.count;
      if (account.connections > 0) activeAccounts++;
    }
    return {
      start: rfc3339Ms(s.startedAt.getTime()),
      mem: residentMemory(),
      cores: cores(),
      cpu: cpuPercent(),
      connections: s.connections.size,
      total_connections: s.stats.totalConnections,
      active_accounts: activeAccounts,
      subscriptions,
      sent: { msgs: s.stats.outMsgs, bytes: s.stats.outBytes },
      received: { msgs: s.stats.inMsgs, bytes: s.stats.inBytes },
      slow_consumers: s.stats.slowConsumers,
      active_servers: 1 + (s.cluster?.routes.size ?? 0),
    };
  }

  // ---- building and sending ------------------------------------------------------------------

  /** Whether any subscriber in the system account would get a message on `subject` (ours excluded). */
  private hasListener(subject: string): boolean {
    const system = this.system;
    if (system === null || this.client === null) return false;
    if (system.sublist.count <= this.ownSubscriptions) return false;
    const r = system.sublist.match(subject);
    for (const sub of r.plain) if (sub.client !== this.client) return true;
    return r.queues.length > 0;
  }

  private typed(type: string): TypedEvent {
    return { type, id: this.ids.next(), timestamp: rfc3339Ns(nowNs()) };
  }

  /** nats-server's ClientInfo for a client connection; `stopMs` for a disconnect (with the RTT). */
  private clientInfo(conn: EventClient, stopMs: number | null): EventClientInfo {
    const info: EventClientInfo = {
      start: rfc3339Ms(conn.startedAt),
      host: conn.transport.remoteAddress || undefined,
      id: conn.cid,
      acc: conn.account.name,
      user: conn.authUser || undefined,
      name: conn.name || undefined,
      lang: conn.lang || undefined,
      ver: conn.version || undefined,
    };
    if (stopMs !== null) {
      const rtt = msToDuration(conn.rttMs);
      if (rtt > 0) info.rtt = rtt;
      info.stop = rfc3339Ms(stopMs);
    }
    info.kind = "Client";
    info.client_type = clientType(conn);
    if (conn.mqttClientId !== undefined) info.client_id = conn.mqttClientId;
    return info;
  }

  /** What the audit log says about a client: never a credential. */
  private auditClient(conn: EventClient): Record<string, unknown> {
    return {
      cid: conn.cid,
      account: conn.account.name,
      user: conn.authUser || undefined,
      host: conn.transport.remoteAddress,
      port: conn.transport.remotePort,
      client_type: clientType(conn),
      client_id: conn.mqttClientId,
    };
  }

  /** Queues a message; the server block is stamped (seq, time) and the JSON built when it is sent. */
  private send(subject: string, message: ServerStamped): void {
    this.outbox.push({ subject, message });
    if (!this.sendScheduled) {
      this.sendScheduled = true;
      queueMicrotask(() => this.flushOutbox());
    }
  }

  private flushOutbox(): void {
    this.sendScheduled = false;
    const client = this.client;
    const outbox = this.outbox;
    if (outbox.length === 0) return;
    this.outbox = [];
    if (client === null) return;
    for (const { subject, message } of outbox) {
      message.server = this.serverInfo();
      client.publish(subject, Buffer.from(goJson(message, false)));
    }
  }

  private serverInfo(): EventServerInfo {
    const s = this.server;
    return {
      name: s.serverName,
      host: s.options.host,
      id: s.serverId,
      cluster: s.cluster?.name || undefined,
      ver: COMPATIBLE_NATS_VERSION,
      jetstream: s.options.jetstream,
      seq: ++this.seq,
      time: rfc3339Ns(nowNs()),
    };
  }
}

/** nats-server's client type names. */
function clientType(conn: EventClient): string {
  if (conn.mqttClientId !== undefined) return "mqtt";
  return conn.transport.kind === "websocket" ? "websocket" : "nats";
}

/** A placeholder, replaced when the message is sent (keeps `server` in nats-server's key order). */
const PENDING_SERVER = Object.freeze({}) as EventServerInfo;

/** nats-server's getRawAuthUser for the credentials a refused CONNECT carried. */
function rawAuthUser(connect: Credentials | null): string {
  if (connect === null) return "";
  if (typeof connect.nkey === "string" && connect.nkey !== "") return connect.nkey;
  if (typeof connect.user === "string" && connect.user !== "") return connect.user;
  if (typeof connect.auth_token === "string" && connect.auth_token !== "") return REDACTED;
  return "";
}
