import { randomBytes } from "./random.ts";
import { Connection } from "./connection.ts";
import { CloseReason, ProtocolError } from "./protocol/errors.ts";
import { infoFrame, type ServerInfo } from "./protocol/frames.ts";
import type { Sublist } from "./subjects/sublist.ts";
import type { Subscription } from "./subscription.ts";
import { Accounts } from "./accounts/accounts.ts";
import { parseAdvertise, type Options } from "./options.ts";
import type { Logger } from "./log.ts";
import type { Transport } from "./transport/transport.ts";
import { listenTcp, type TcpListener } from "./transport/tcp.ts";
import { listenWebSocket, type WebSocketListener } from "./transport/websocket.ts";
import type { MonitorListener } from "./monitor/http.ts";
import { bindListener, checkPortFree } from "./transport/listen-error.ts";
import { ClosedConnections } from "./monitor/closed.ts";
import type { Cluster } from "./cluster/cluster.ts";
import type { Leafnodes } from "./leaf/leafnodes.ts";
import { effectiveLeafnodeOptions } from "./leaf/options.ts";
import { Authenticator } from "./auth/authenticator.ts";
import { securityInfo } from "./auth/info.ts";
import type { ServerTls } from "./auth/tls.ts";
import { ConnectionRateLimiter } from "./auth/ratelimit.ts";
import { LatencyTracker } from "./monitor/latency.ts";
import type { TopSubjects } from "./console/top-subjects.ts";
import { ServerEvents } from "./accounts/events.ts";
import type { Imports } from "./accounts/imports.ts";
import type { Mqtt } from "./mqtt/mqtt.ts";
import { optionalModule } from "./optional-modules.ts";

/**
 * The nats-server version whose client-visible features natter implements (clients gate features on it:
 * nats.js switches batch direct get and priority groups on at 2.11.0; src/jetstream/README.md has the list).
 */
export const COMPATIBLE_NATS_VERSION = "2.11.0";
export const NATTER_VERSION = "0.1.0";

export interface ServerStats {
  inMsgs: number;
  inBytes: number;
  outMsgs: number;
  outBytes: number;
  slowConsumers: number;
  staleConnections: number;
  /** Messages that reached no subscriber. */
  noInterestMsgs: number;
  /** Times a fast publisher was paused for a slow subscriber. */
  stalls: number;
  totalConnections: number;
  /** Clients refused with 'Authorization Violation' (bad or missing credentials). */
  authFailures: number;
  /** 'Permissions Violation' errors sent (publish, subscribe, reply). */
  permissionViolations: number;
  /** Times a publisher's reads were paused for its user's publish rate limit. */
  rateLimitPauses: number;
  /** Connections refused by connection_rate_per_ip. */
  connectionsThrottled: number;
}

/** Anything with an outbound buffer written once per tick: client connections, routes. */
export interface Flushable {
  flush(): void;
}

/**
 * The server: listeners, the connection registry, the subscription index, timers and lifecycle.
 * Routing itself happens in Connection.onPub, against its account's Sublist, in the read handler's tick.
 */
export class Server {
  readonly serverId = newServerId();
  readonly serverName: string;
  /** `$G`, the configured accounts and the system account (src/accounts); each has its own Sublist. */
  readonly accounts: Accounts;
  /** Routes, membership, connect_urls (src/cluster); null unless --cluster / cluster {} is set. */
  cluster: Cluster | null = null;
  /** MQTT clients and sessions (src/mqtt); null unless mqtt { port } or --mqtt_port is set. */
  mqtt: Mqtt | null = null;
  /** Leaf node connections to hubs and from leaf nodes (src/leaf); null unless leafnodes {} or --leafnode_remote is set. */
  leafnodes: Leafnodes | null = null;
  readonly connections = new Map<number, Connection>();
  readonly stats: ServerStats = {
    inMsgs: 0, inBytes: 0, outMsgs: 0, outBytes: 0, slowConsumers: 0, staleConnections: 0,
    noInterestMsgs: 0, stalls: 0, totalConnections: 0, authFailures: 0, permissionViolations: 0, rateLimitPauses: 0, connectionsThrottled: 0,
  };
  readonly startedAt = new Date();
  /** Snapshots of the last 10000 closed clients, for /connz?state=closed (as nats-server keeps them). */
  readonly closedConnections = new ClosedConnections();
  /** Protocol tracing on (-V); a config reload may change it. */
  tracing: boolean;
  /** Delivery and request-reply latency histograms (/latz, /metrics); nothing is sampled without a monitoring port. */
  readonly latency: LatencyTracker;
  /** True while a read is being parsed: flushes wait for its end. */
  inRead = false;
  /** Called once, when a client makes the first subscription (src/warm-up.ts starts then), and cleared. */
  onFirstSubscription: (() => void) | null = null;

  private nextCid = 1;
  private dirtyConnections: Flushable[] = [];
  private spareDirtyList: Flushable[] = [];
  private flushScheduled = false;
  private tcp: TcpListener | null = null;
  private ws: WebSocketListener | null = null;
  private monitor: MonitorListener | null = null;
  private sweepTimer: ReturnType<typeof setInterval> | null = null;
  private shuttingDown = false;

  constructor(
    readonly options: Options,
    readonly log: Logger,
  ) {
    this.serverName = options.serverName || this.serverId;
    this.tracing = options.trace;
    this.latency = new LatencyTracker(options.httpPort !== 0);
    this.accounts = new Accounts(options);
    this.auth = Authenticator.fromOptions(options, this.accounts);
    this.connectionRate = options.connectionRatePerIp > 0 ? new ConnectionRateLimiter(options.connectionRatePerIp) : null;
    this.events = ServerEvents.create(this);
  }

  /** Stream and service imports between accounts (src/accounts/imports.ts); null without configured accounts. */
  imports: Imports | null = null;
  /** System events and the audit log (src/accounts/events.ts); null without a system account and audit log. */
  readonly events: ServerEvents | null;
  /** The console's sampled busiest subjects (src/console/top-subjects.ts); null unless the console is on. */
  topSubjects: TopSubjects | null = null;

  /** Authentication (src/auth); null when none is configured. A config reload replaces it (src/auth/reload.ts). */
  auth: Authenticator | null;
  /** connection_rate_per_ip (src/auth/ratelimit.ts); null when off. */
  private readonly connectionRate: ConnectionRateLimiter | null;

  /** The global account's subscriptions (`$G`: every client when no accounts are configured). */
  get sublist(): Sublist<Subscription> {
    return this.accounts.global.sublist;
  }

  /** The port clients connect to (resolved when -p -1 asked for a random one). */
  get port(): number {
    return this.tcp?.port ?? this.options.port;
  }

  /** The client port's TLS as loaded (certificate, key, CA); null without TLS. */
  get clientTls(): ServerTls | null {
    return this.tcp?.tls ?? null;
  }

  /** A config reload: new client-port connections use this certificate, key and CA; connected ones keep theirs. */
  setClientTls(tls: ServerTls): void {
    this.tcp?.setTls(tls);
  }

  /** The WebSocket port's TLS as loaded at start (Bun.serve cannot change it while running); null without wss. */
  get wsTls(): ServerTls | null {
    return this.ws?.tls ?? null;
  }

  get wsPort(): number {
    return this.ws?.port ?? 0;
  }

  /** The monitoring HTTP port (resolved when -m -1 asked for a random one); 0 when off or on HTTPS. */
  get httpPort(): number {
    return this.options.httpsPort !== 0 ? 0 : (this.monitor?.port ?? this.options.httpPort);
  }

  /** The monitoring port when it is HTTPS (https_port; resolved when -1 asked for a random one); 0 otherwise. */
  get httpsPort(): number {
    return this.options.httpsPort === 0 ? 0 : (this.monitor?.port ?? this.options.httpsPort);
  }

  get isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  /**
   * Binds the client, WebSocket and monitoring ports and checks the route and leaf node ones. Throws a
   * ListenError (nats-server's line, naming the address) when a port cannot be bound; logs nothing, so a
   * server that cannot start does not announce itself (main.ts calls it before JetStream starts). Clients
   * are accepted from the next turn of the event loop, after start().
   */
  listen(): void {
    if (this.tcp !== null) return;
    const o = this.options;
    const httpHost = o.httpHost || o.host;
    if (o.httpPort !== 0) this.monitor = bindListener("monitor", httpHost, o.httpPort, () => optionalModule("monitor").listenMonitor(this, httpHost, o.httpPort === -1 ? 0 : o.httpPort));
    // https_port: the same endpoints over TLS with the client port's certificate (validated: never with http_port).
    else if (o.httpsPort !== 0) this.monitor = bindListener("monitor", httpHost, o.httpsPort, () => optionalModule("monitor").listenMonitor(this, httpHost, o.httpsPort === -1 ? 0 : o.httpsPort, o.tls));
    if (o.wsPort !== 0) this.ws = bindListener("websocket", o.wsHost, o.wsPort, () => listenWebSocket(this, o.wsHost, o.wsPort === -1 ? 0 : o.wsPort));
    this.tcp = bindListener("client", o.host, o.port, () => listenTcp(this, o.host, o.port === -1 ? 0 : o.port));
    if (o.mqtt.port !== 0) {
      const mqtt = new (optionalModule("mqtt").Mqtt)(this, o.mqtt);
      bindListener("mqtt", o.mqtt.host, o.mqtt.port, () => mqtt.listen());
      this.mqtt = mqtt;
    }
    // The route and leaf node listeners open further down, with their subsystems: check their ports now.
    if (o.clusterPort !== 0) checkPortFree("route", o.clusterHost, o.clusterPort);
    const leafListen = effectiveLeafnodeOptions(o);
    if (leafListen !== null) checkPortFree("leafnode", leafListen.host, leafListen.port);
  }

  /** Announces the server and starts the rest (cluster, leaf nodes, timers); binds first if listen() was not called. */
  start(): void {
    this.listen();
    const o = this.options;
    const httpHost = o.httpHost || o.host;
    const leafListen = effectiveLeafnodeOptions(o);
    this.log.info(`Starting natter (nats-server ${COMPATIBLE_NATS_VERSION} compatible)`);
    this.log.info(`  Version:  ${NATTER_VERSION}`);
    this.log.info(`  Name:     ${this.serverName}`);
    this.log.info(`  ID:       ${this.serverId}`);
    if (o.configFile) this.log.info(`Using configuration file: ${o.configFile}`); // where nats-server logs it
    if (this.monitor !== null) this.log.info(`Starting ${o.httpsPort !== 0 ? "https" : "http"} monitor on ${httpHost}:${this.monitor.port}`);
    if (this.ws !== null) this.log.info(`Listening for websocket clients on ${o.wsTls ? "wss" : "ws"}://${o.wsHost}:${this.ws.port}`);
    if (this.mqtt !== null) this.log.info(`Listening for MQTT clients on ${o.mqtt.tls ? "tls" : "mqtt"}://${o.mqtt.host}:${this.mqtt.port}`);
    this.log.info(`Listening for client connections on ${o.host}:${this.tcp!.port}`);
    if (o.tls) this.log.info("TLS required for client connections");
    if (o.accounts.length > 0) this.imports = new (optionalModule("imports").Imports)(this); // before the cluster: it announces the response subscriptions
    if (o.clusterPort !== 0) {
      this.cluster = new (optionalModule("cluster").Cluster)(this);
      bindListener("route", o.clusterHost, o.clusterPort, () => this.cluster!.start());
    }
    if (leafListen !== null) {
      this.leafnodes = new (optionalModule("leaf").Leafnodes)(this); // after the cluster: it chains its Sublist observer after the cluster's
      bindListener("leafnode", leafListen.host, leafListen.port, () => this.leafnodes!.start());
    }
    this.mqtt?.start(); // after the stream layer: it loads retained messages and kept sessions from it
    this.log.info("Server is ready");
    const sweepEvery = Math.max(50, Math.min(1000, Math.floor(o.pingIntervalMs / 4), Math.floor(o.connectTimeoutMs / 4)));
    this.sweepTimer = setInterval(() => this.sweep(), sweepEvery);
  }

  /** Client connections open: NATS clients and MQTT clients (max_connections counts both, as nats-server). */
  get clientCount(): number {
    return this.connections.size + (this.mqtt?.connections.size ?? 0);
  }

  /** A new client id (cid), unique among all kinds of client connection. */
  allocateClientId(): number {
    return this.nextCid++;
  }

  /** A transport connected: register it and greet it with INFO (or refuse it past max_connections). */
  accept(transport: Transport): Connection {
    const cid = this.nextCid++;
    const conn = new Connection(this, transport, cid);
    this.stats.totalConnections++;
    if (this.auth !== null) this.auth.attach(conn); // before INFO: it carries the nonce
    conn.queueBytes(infoFrame(this.infoFor(conn)));
    if (this.clientCount >= this.options.maxConnections || this.shuttingDown) {
      this.log.error(`${conn.logPrefix} - ${ProtocolError.MaxConnections.text}`);
      conn.close(CloseReason.MaxConnectionsExceeded, ProtocolError.MaxConnections.text);
      return conn;
    }
    if (this.connectionRate !== null && !this.connectionRate.allow(transport.remoteAddress)) {
      this.stats.connectionsThrottled++;
      this.log.error(`${conn.logPrefix} - Connection throttled: more than ${this.options.connectionRatePerIp} new connections per second from ${transport.remoteAddress}`);
      conn.close(CloseReason.MaxConnectionsExceeded, ProtocolError.ConnectionThrottling.text);
      return conn;
    }
    this.connections.set(cid, conn);
    this.log.debug(`${conn.logPrefix} - Client connection created`);
    this.flushDirty();
    return conn;
  }

  /** INFO's host and port: client_advertise when set (nats-server's setInfoHostPort), else the listener's. */
  advertisedClientAddress(): { host: string; port: number } {
    const advertise = this.options.clientAdvertise;
    return advertise !== "" ? parseAdvertise(advertise, this.port) : { host: this.options.host, port: this.port };
  }

  infoFor(conn: Connection): ServerInfo {
    const info: ServerInfo = {
      server_id: this.serverId,
      server_name: this.serverName,
      version: COMPATIBLE_NATS_VERSION,
      proto: 1,
      go: `bun${Bun.version}`,
      ...this.advertisedClientAddress(),
      headers: !this.options.noHeaderSupport,
      ...(this.options.jetstream ? { jetstream: true } : {}),
      ...securityInfo(this, conn),
      max_payload: this.options.maxPayload,
      client_id: conn.cid,
      client_ip: conn.transport.remoteAddress,
    };
    // As nats-server: clients of a cluster learn every member's URLs (this node's first); a WebSocket
    // client gets the WebSocket URLs as its connect_urls.
    const cluster = this.cluster;
    if (cluster !== null && !this.options.clusterNoAdvertise) {
      const urls = conn.transport.kind === "websocket" ? cluster.wsUrls : cluster.clientUrls;
      if (urls.length > 0) info.connect_urls = urls;
    }
    return info;
  }

  /**
   * The cluster's client URLs changed: an INFO to every client that can take one (protocol 1, past
   * its first PONG), as nats-server sends it; the others get it at their first PING.
   */
  sendAsyncInfo(tcp: boolean, ws: boolean): void {
    if (this.shuttingDown) return;
    for (const conn of this.connections.values()) {
      const isWs = conn.transport.kind === "websocket";
      if (((tcp && !isWs) || (ws && isWs)) && conn.protocol >= 1 && conn.firstPongSent && !conn.closed) {
        conn.queueBytes(infoFrame(this.infoFor(conn)));
      }
    }
  }

  /** A client's first PING after CONNECT: as nats-server, an INFO goes first if the cluster changed since it connected. */
  firstPing(conn: Connection): void {
    conn.firstPongSent = true;
    const cluster = this.cluster;
    if (conn.protocol >= 1 && cluster !== null && cluster.urlsChangedAt >= conn.startedAt && !this.options.clusterNoAdvertise) {
      conn.queueBytes(infoFrame(this.infoFor(conn)));
    }
  }

  removeConnection(conn: Connection): void {
    this.connections.delete(conn.cid);
    this.closedConnections.add(conn);
  }

  /** How many connections (and routes) have bytes queued for this tick's flush. */
  get dirtyCount(): number {
    return this.dirtyConnections.length;
  }

  /** Called when a connection (or route) queued its first bytes of this tick. */
  markDirty(conn: Flushable): void {
    this.dirtyConnections.push(conn);
    if (!this.inRead && !this.flushScheduled) {
      // Output produced outside a read (timers, drain): flush once, at the end of this task.
      this.flushScheduled = true;
      queueMicrotask(() => this.flushDirty());
    }
  }

  /** One write per dirty connection: the end of every read handler. */
  flushDirty(): void {
    this.flushScheduled = false;
    const dirty = this.dirtyConnections;
    if (dirty.length === 0) return;
    // Swap lists: a flush that queues more (a drain, a close) lands on the other one.
    this.dirtyConnections = this.spareDirtyList;
    const latency = this.latency;
    for (let k = 0; k < dirty.length; k++) {
      dirty[k]!.flush();
      latency.recordFlush();
    }
    dirty.length = 0;
    this.spareDirtyList = dirty;
  }

  /** Periodic checks: outbound buffer sizes, connect timeout, PINGs and stale connections, write deadlines. */
  private sweep(): void {
    const now = Date.now();
    const o = this.options;
    this.latency.expire();
    for (const conn of this.connections.values()) {
      conn.trimOutbound();
      if (!conn.spoken && now - conn.startedAt > o.connectTimeoutMs) {
        this.log.debug(`${conn.logPrefix} - Connect timeout`);
        conn.closeWithError("AuthenticationTimeout", CloseReason.AuthenticationTimeout);
        continue;
      }
      if (conn.blockedSince > 0 && now - conn.blockedSince > o.writeDeadlineMs) {
        this.stats.slowConsumers++;
        this.log.info(`${conn.logPrefix} - Slow Consumer Detected: WriteDeadline of ${o.writeDeadlineMs}ms Exceeded`);
        conn.close(CloseReason.SlowConsumerWriteDeadline, null);
        continue;
      }
      if (now >= conn.nextPingAt) {
        conn.nextPingAt = now + o.pingIntervalMs;
        // The first PING always goes out (it measures the RTT); after that, a client heard
        // from within the interval needs none (nats-server delays it).
        if (conn.pingsSent > 0 && now - conn.lastActivity < o.pingIntervalMs) continue;
        if (conn.pingsOut + 1 > o.pingMax) {
          this.stats.staleConnections++;
          this.log.debug(`${conn.logPrefix} - Stale Client Connection - Closing`);
          conn.closeWithError("StaleConnection", CloseReason.StaleConnection);
          continue;
        }
        conn.sendPing();
      }
    }
  }

  /** Lame duck mode: refuses new clients (TCP and WebSocket listeners closed), keeps the connected ones. */
  stopListening(): void {
    this.cluster?.enterLameDuckMode();
    this.leafnodes?.stopListening();
    this.tcp?.stop();
    this.ws?.stopAccepting();
    this.mqtt?.stopAccepting();
  }

  /** Stops accepting, flushes and closes every client. */
  async shutdown(): Promise<void> {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    this.events?.adminOperation("shutdown");
    this.imports?.close();
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.tcp?.stop();
    this.ws?.stop();
    this.mqtt?.stop();
    this.cluster?.stop();
    this.leafnodes?.stop();
    this.flushDirty();
    for (const conn of [...this.connections.values()]) conn.close(CloseReason.ServerShutdown, null);
    this.monitor?.stop();
    await this.events?.close();
    this.log.info("Server Exiting..");
  }
}

/** A server id shaped like nats-server's (an nkey public key: 'N' and 55 base32 characters). */
function newServerId(): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  const bytes = randomBytes(55);
  let id = "N";
  for (const b of bytes) id += alphabet[b & 31];
  return id;
}

