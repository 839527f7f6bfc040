// The cluster: membership (gossip.ts, UDP on the cluster port, on its own thread: membership.ts), a full mesh of routes that follows it
// (route.ts, TCP on the same port), local interest sent to every route (interest.ts), and the client
// URLs of the other members for INFO connect_urls.
//
// - Member id = the cluster address other members reach this node at (host:port). It is stable across
//   restarts, which is what lets a restarted node rejoin as itself (gossip.ts: incarnations).
// - One route per pair of members. The member with the lower id dials; the other one dials too if no
//   route appeared within ROUTE_FALLBACK_MS. Two routes to one member: the one dialed by the lower id
//   stays (both sides decide alike), unless the other node restarted (new server_id): the new one stays.
// - A route closes when its member is declared dead, and is dialed again (with backoff) while the
//   member is up. A closing route takes the other node's interest out of the Sublist at once.
// - Every account's Sublist is observed (the accounts are fixed at start); interest and messages
//   travel with their account, named by its index in the HELLO (route.ts: accountTable).
import type { TCPSocketListener } from "bun";
import os from "node:os";
import type { Server } from "../server.ts";
import { parseAdvertise } from "../options.ts";
import { MemberState, type Member, type MemberMeta } from "./gossip.ts";
import { startMembership, type Membership } from "./membership.ts";
import { LocalInterest } from "./interest.ts";
import { HANDSHAKE_TIMEOUT_MS } from "./handshake.ts";
import { PROTOCOL_VERSION, hasAccounts, helloFrame, interestFrameLength, raftFrame, writeInterestFrame, type Hello } from "./protocol.ts";
import { Route, RouteState, accountTable, type RouteOwner, type RouteSocketData } from "./route.ts";

const TICK_MS = 100;
const ROUTE_FALLBACK_MS = 2000;
const ROUTE_PING_MS = 1000;
/** A route's round trip (for /routez) is measured at least this often, busy or not. */
const ROUTE_RTT_MS = 5000;
const ROUTE_STALE_MS = 6000;
const DIAL_BACKOFF_MIN_MS = 100;
const DIAL_BACKOFF_MAX_MS = 2000;
/**
 * A node this young dials every member it learns of at once, whichever id is lower: after a restart the
 * others learn it is back only a gossip round or two later (or are waiting out a dial backoff), and the
 * route is what makes it whole again. onHello keeps the lower id's route if both dial.
 */
const JOINING_MS = 5000;
/** Every this often, a debug line with the gossip traffic so far (what the README's table is measured from). */
const STATS_LOG_MS = 5000;

/** What clustered JetStream (src/jetstream/cluster) listens to: RAFT frames, and routes opening and closing. */
export interface RaftListener {
  onRaft(from: string, type: number, group: string, payload: Uint8Array): void;
  routeOpened(id: string, hello: Hello): void;
  routeClosed(id: string): void;
}

interface DialState {
  inProgress: boolean;
  nextAt: number;
  backoff: number;
}

export class Cluster implements RouteOwner {
  /** This member's id: its advertised cluster address. */
  id = "";
  port = 0;
  gossip: Membership | null = null;
  /** Local interest per account, by the account's index in this node's HELLO ($G first). */
  readonly interests: readonly LocalInterest[];
  /** Open routes by member id. */
  readonly routes = new Map<string, Route>();
  /** Routes still in their handshake. */
  private readonly handshaking = new Set<Route>();
  private readonly dials = new Map<string, DialState>();
  private listener: TCPSocketListener<RouteSocketData> | null = null;
  private timer: ReturnType<typeof setInterval> | null = null;
  private scratch = Buffer.allocUnsafe(1024);
  private stopped = false;
  /** When start() ran: members learned in the first JOINING_MS are dialed at once (memberUp). */
  private startedAt = 0;
  private lameDuck = false;
  private lastStatsLog = Date.now();
  /** connect_urls / ws_connect_urls as clients get them (this node's first), and when they last changed. */
  clientUrls: string[] = [];
  wsUrls: string[] = [];
  /** Routes cut for falling behind (max_pending queued): /varz slow_consumer_stats.routes. */
  slowRoutes = 0;
  urlsChangedAt = 0;
  /** Clustered JetStream, when this node runs it. */
  raftListener: RaftListener | null = null;

  constructor(readonly server: Server) {
    this.interests = accountTable(server).list.map(
      (_, index) => new LocalInterest((subject, queue, weight) => this.broadcastInterest(index, subject, queue, weight)),
    );
  }

  /** The global account's ($G) local interest. */
  get interest(): LocalInterest {
    return this.interests[0]!;
  }

  get name(): string {
    return this.gossip?.clusterName ?? this.server.options.clusterName;
  }

  /** Opens the route listener (TCP) now and the gossip socket (UDP, same port) right after. */
  start(): void {
    const o = this.server.options;
    const cluster = this;
    this.listener = Bun.listen<RouteSocketData>({
      hostname: o.clusterHost,
      port: o.clusterPort === -1 ? 0 : o.clusterPort,
      data: { route: null },
      socket: {
        open(socket) {
          socket.setNoDelay(true);
          const route = new Route(cluster, socket, false, socket.remoteAddress, socket.remotePort);
          socket.data = { route };
          cluster.handshaking.add(route);
          cluster.server.log.debug(`${route.logPrefix} - Route connection accepted`);
        },
        data: (socket, data) => socket.data.route?.onRead(data),
        drain: (socket) => socket.data.route?.onDrain(),
        close: (socket) => socket.data.route?.onSocketClosed(),
        error: (socket, error) => {
          cluster.server.log.debug(`${socket.remoteAddress}:${socket.remotePort} - route socket error: ${error.message}`);
          socket.data.route?.onSocketClosed();
        },
      },
    });
    this.port = this.listener.port;
    this.id = o.clusterAdvertise || `${advertiseHost(o.clusterHost)}:${this.port}`;
    accountTable(this.server).list.forEach((account, index) => {
      const interest = this.interests[index]!;
      account.sublist.observer = interest;
      // Subscriptions made before the cluster started (the stream layer subscribes before the listeners
      // open) are interest too.
      for (const sub of account.sublist.all()) interest.added(sub);
    });
    this.server.log.info(`Cluster name is ${o.clusterName || "(unnamed: joins the cluster its routes lead to)"}`);
    this.server.log.info(`Listening for route connections on ${o.clusterHost}:${this.port}`);
    this.updateUrls();
    void this.startGossip();
    this.timer = setInterval(() => this.tick(), TICK_MS);
    this.startedAt = Date.now();
  }

  private async startGossip(): Promise<void> {
    const o = this.server.options;
    let membership: Membership;
    try {
      membership = await startMembership(
        {
          selfId: this.id,
          meta: this.selfMeta(),
          clusterName: o.clusterName,
          seeds: o.routes.map((r) => r.replace(/^localhost:/, "127.0.0.1:")),
          host: o.clusterHost,
          port: this.port,
          debug: this.server.log.debugEnabled,
        },
        {
          up: (m) => this.memberUp(m),
          down: (m) => this.memberDown(m),
          changed: (m) => this.memberChanged(m),
        },
        this.server.log,
      );
    } catch (error) {
      this.server.log.error(`Cluster: cannot open the gossip socket (UDP ${o.clusterHost}:${this.port}): ${(error as Error).message}`);
      return;
    }
    if (this.stopped) {
      membership.stop();
      return;
    }
    this.gossip = membership;
    this.server.log.debug(`Cluster: gossip runs ${membership.threaded ? "on its own thread" : "on the event loop"}`);
  }

  private selfMeta(): MemberMeta {
    const o = this.server.options;
    const advertise = !o.clusterNoAdvertise && !this.lameDuck;
    return {
      sid: this.server.serverId,
      name: this.server.serverName,
      urls: !advertise ? [] : o.clientAdvertise !== "" ? [hostPort(this.server.advertisedClientAddress())] : ownUrls(o.host, this.server.port),
      ws: !advertise || this.server.wsPort <= 0 ? [] : o.wsAdvertise !== "" ? [hostPort(parseAdvertise(o.wsAdvertise, this.server.wsPort))] : ownUrls(o.wsHost, this.server.wsPort),
    };
  }

  /**
   * Lame duck mode (as nats-server): the other members stop advertising this node's URLs, and this
   * node's own clients are pointed at the others only (the lame duck INFO that follows carries them).
   */
  enterLameDuckMode(): void {
    if (this.lameDuck) return;
    this.lameDuck = true;
    this.gossip?.setMeta(this.selfMeta());
    this.updateUrls(false);
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.gossip?.stop();
    for (const route of [...this.routes.values(), ...this.handshaking]) route.close("server shutdown", null);
    this.listener?.stop(true);
  }

  // ---- membership → routes -----------------------------------------------------------------

  private memberUp(m: Member): void {
    this.server.log.info(`Cluster member ${m.id} (${m.meta?.name ?? "?"}) is up`);
    const now = Date.now();
    const dialer = this.id < m.id || now - this.startedAt < JOINING_MS;
    const d: DialState = { inProgress: false, nextAt: dialer ? 0 : now + ROUTE_FALLBACK_MS, backoff: DIAL_BACKOFF_MIN_MS };
    this.dials.set(m.id, d);
    this.updateUrls();
    this.dialIfDue(m.id, d);
  }

  /** Dials now rather than at the next tick (up to TICK_MS later): a route is what makes a member whole. */
  private dialIfDue(id: string, d: DialState): void {
    if (!this.stopped && !d.inProgress && !this.routes.has(id) && Date.now() >= d.nextAt) this.dial(id, d);
  }

  private memberDown(m: Member): void {
    this.server.log.info(`Cluster member ${m.id} (${m.meta?.name ?? "?"}) is gone`);
    this.dials.delete(m.id);
    const route = this.routes.get(m.id);
    if (route !== undefined) route.close("member gone", null);
    this.updateUrls();
  }

  private memberChanged(m: Member): void {
    const route = this.routes.get(m.id);
    if (route !== undefined && m.meta !== null && route.remote !== null && route.remote.server_id !== m.meta.sid) {
      route.close("member restarted", null);
    }
    this.updateUrls();
    // A member back from a restart is dialed at once, not after the backoff its absence built up.
    const d = this.dials.get(m.id);
    if (d !== undefined && !this.routes.has(m.id) && !d.inProgress) {
      d.backoff = DIAL_BACKOFF_MIN_MS;
      d.nextAt = this.id < m.id ? 0 : Date.now() + ROUTE_FALLBACK_MS;
      this.dialIfDue(m.id, d);
    }
  }

  private tick(): void {
    const now = Date.now();
    const gossip = this.gossip;
    if (gossip !== null) {
      for (const m of gossip.members.values()) {
        if (m.state === MemberState.DEAD || this.routes.has(m.id)) continue;
        let d = this.dials.get(m.id);
        if (d === undefined) {
          d = { inProgress: false, nextAt: this.id < m.id ? 0 : now + ROUTE_FALLBACK_MS, backoff: DIAL_BACKOFF_MIN_MS };
          this.dials.set(m.id, d);
        }
        if (!d.inProgress && now >= d.nextAt) this.dial(m.id, d);
      }
    }
    if (gossip !== null && now - this.lastStatsLog >= STATS_LOG_MS) {
      this.lastStatsLog = now;
      const s = gossip.stats;
      this.server.log.debug(
        `Gossip stats: members_up=${gossip.upMembers().length} routes=${this.routes.size} sent_msgs=${s.sentMessages} sent_bytes=${s.sentBytes} received_msgs=${s.receivedMessages} received_bytes=${s.receivedBytes}`,
      );
    }
    for (const route of this.handshaking) {
      if (now - route.startedAt > HANDSHAKE_TIMEOUT_MS) route.close("handshake timeout", "handshake timeout");
    }
    for (const route of this.routes.values()) {
      route.trimOutbound();
      if (now - route.lastReadAt > ROUTE_STALE_MS) {
        this.server.log.info(`${route.logPrefix} - Stale route connection, closing`);
        route.close("stale connection", null);
      } else if (now - route.lastWriteAt >= ROUTE_PING_MS || performance.now() - route.rttProbeAt >= ROUTE_RTT_MS) {
        route.sendRttProbe(); // a PING that also measures the round trip
      }
    }
  }

  private dial(id: string, d: DialState): void {
    const colon = id.lastIndexOf(":");
    const host = id.slice(0, colon).replace(/^\[|\]$/g, "");
    const port = Number(id.slice(colon + 1));
    d.inProgress = true;
    const cluster = this;
    let settled = false;
    const failed = (why: string) => {
      if (settled) return; // connectError and the rejected promise both report one failure
      settled = true;
      d.inProgress = false;
      d.nextAt = Date.now() + d.backoff;
      d.backoff = Math.min(d.backoff * 2, DIAL_BACKOFF_MAX_MS);
      cluster.server.log.debug(`Cluster: route to ${id} failed: ${why}`);
    };
    Bun.connect<RouteSocketData>({
      hostname: host,
      port,
      data: { route: null },
      socket: {
        open(socket) {
          socket.setNoDelay(true);
          const route = new Route(cluster, socket, true, host, port);
          route.dialedId = id;
          socket.data = { route };
          cluster.handshaking.add(route);
          route.queueBytes(helloFrame(cluster.hello()));
          route.flush();
        },
        data: (socket, data) => socket.data.route?.onRead(data),
        drain: (socket) => socket.data.route?.onDrain(),
        close: (socket) => socket.data.route?.onSocketClosed(),
        error: (socket, error) => {
          cluster.server.log.debug(`${id} - route socket error: ${error.message}`);
          socket.data.route?.onSocketClosed();
        },
        connectError: (_socket, error) => failed(error.message),
      },
    }).catch((error: Error) => failed(error.message));
  }

  hello(): Hello {
    return {
      v: PROTOCOL_VERSION,
      cluster: this.name,
      id: this.id,
      inc: this.gossip?.inc ?? 0,
      server_id: this.server.serverId,
      server_name: this.server.serverName,
      accounts: [...accountTable(this.server).names],
      js: this.server.options.jetstream,
      tags: this.server.options.serverTags,
    };
  }

  /** Sends a RAFT frame to member `id`; false when no route to it is open. */
  sendRaft(id: string, type: number, group: string, payload: Uint8Array): boolean {
    const route = this.routes.get(id);
    if (route === undefined || route.state !== RouteState.OPEN) return false;
    route.queueBytes(raftFrame(type, group, payload));
    return true;
  }

  onRaft(route: Route, type: number, group: string, payload: Uint8Array): void {
    const id = route.remote?.id;
    if (id !== undefined && this.routes.get(id) === route) this.raftListener?.onRaft(id, type, group, payload);
  }

  // ---- RouteOwner --------------------------------------------------------------------------

  onHello(route: Route, hello: Hello): string | null {
    if (hello.v !== PROTOCOL_VERSION) {
      return `Rejecting route: protocol version ${hello.v}, this node speaks ${PROTOCOL_VERSION}`;
    }
    if (!hasAccounts(hello)) return "Rejecting route: HELLO lacks its accounts list";
    const name = this.name;
    if (hello.cluster !== name) {
      if (name !== "" && hello.cluster !== "") {
        return `Rejecting connection, cluster name "${hello.cluster}" does not match "${name}"`;
      }
      if (name === "" && this.gossip !== null) {
        this.server.log.info(`Adopting cluster name "${hello.cluster}" from ${hello.id}`);
        this.gossip.clusterName = hello.cluster;
      }
    }
    if (hello.id === this.id || hello.server_id === this.server.serverId) return ""; // a seed that is this node
    this.handshaking.delete(route);
    if (!route.solicited) {
      route.queueBytes(helloFrame(this.hello()));
    }
    const existing = this.routes.get(hello.id);
    if (existing !== undefined) {
      const restarted = existing.remote !== null && existing.remote.server_id !== hello.server_id;
      const lowerDialed = (r: Route) => (r.solicited ? this.id : hello.id) === (this.id < hello.id ? this.id : hello.id);
      if (!restarted && lowerDialed(existing) && !lowerDialed(route)) {
        this.server.log.debug(`${route.logPrefix} - Duplicate route to ${hello.id}, keeping the existing one`);
        return "";
      }
      existing.close("replaced by a newer route", null);
    }
    route.state = RouteState.OPEN;
    this.routes.set(hello.id, route);
    const d = this.dials.get(hello.id);
    if (d !== undefined) d.backoff = DIAL_BACKOFF_MIN_MS;
    this.server.log.info(`${route.logPrefix} - Route connection created to ${hello.id} (${hello.server_name})`);
    this.interests.forEach((interest, account) => interest.forEach((subject, queue, weight) => route.queueInterest(account, subject, queue, weight)));
    route.sendRttProbe();
    this.gossip?.heardFrom(hello.id, hello.inc);
    this.raftListener?.routeOpened(hello.id, hello);
    return null;
  }

  onSlow(): void {
    this.slowRoutes++;
  }

  onClosed(route: Route, reason: string): void {
    this.handshaking.delete(route);
    const now = Date.now();
    const id = route.remote?.id;
    const registered = id !== undefined && this.routes.get(id) === route;
    if (route.dialedId !== null) {
      // This dial is over: the next one after a backoff that grows while dials fail.
      const d = this.dials.get(route.dialedId);
      if (d !== undefined) {
        d.inProgress = false;
        d.nextAt = now + d.backoff;
        if (!registered) d.backoff = Math.min(d.backoff * 2, DIAL_BACKOFF_MAX_MS);
      }
    }
    if (!registered) return;
    this.routes.delete(id);
    this.server.log.info(`${route.logPrefix} - Route connection to ${id} closed: ${reason}`);
    this.raftListener?.routeClosed(id);
    if (this.stopped) return;
    const d = this.dials.get(id);
    // The lower id dials again; the other one only if that does not happen.
    if (d !== undefined && !d.inProgress && this.id > id) d.nextAt = now + ROUTE_FALLBACK_MS;
    this.gossip?.probeSoon(id);
  }

  /** Sends one interest change in the account of index `account` to every open route (encoded once). */
  private broadcastInterest(account: number, subject: string, queue: string | null, weight: number): void {
    if (this.routes.size === 0) return;
    const length = interestFrameLength(subject, queue, weight);
    if (this.scratch.length < length) this.scratch = Buffer.allocUnsafe(Math.max(length, this.scratch.length * 2));
    writeInterestFrame(this.scratch, 0, account, subject, queue, weight);
    const frame = this.scratch.subarray(0, length);
    for (const route of this.routes.values()) route.queueBytes(frame);
  }

  // ---- client URLs -------------------------------------------------------------------------

  /** Recomputes connect_urls (this node's first, then every up member's); on a change, clients get an async INFO. */
  private updateUrls(notifyClients = true): void {
    const own = this.selfMeta();
    const urls = [...own.urls];
    const ws = [...own.ws];
    if (!this.server.options.clusterNoAdvertise && this.gossip !== null) {
      for (const m of this.gossip.members.values()) {
        if (m.state === MemberState.DEAD || m.meta === null) continue;
        for (const u of m.meta.urls) if (!urls.includes(u)) urls.push(u);
        for (const u of m.meta.ws) if (!ws.includes(u)) ws.push(u);
      }
    }
    const changed = urls.join(",") !== this.clientUrls.join(",") || ws.join(",") !== this.wsUrls.join(",");
    if (!changed) return;
    const wsChanged = ws.join(",") !== this.wsUrls.join(",");
    const tcpChanged = urls.join(",") !== this.clientUrls.join(",");
    this.clientUrls = urls;
    this.wsUrls = ws;
    this.urlsChangedAt = Date.now();
    if (notifyClients && !this.server.options.clusterNoAdvertise) this.server.sendAsyncInfo(tcpChanged, wsChanged);
  }

  /** For /routez and tests: the open routes, by rid; with `withSubs`, the other node's interest held here. */
  routeSummaries(withSubs = false): RouteSummary[] {
    const seeds = new Set(this.server.options.routes.map((r) => r.replace(/^localhost:/, "127.0.0.1:")));
    const out: RouteSummary[] = [];
    for (const [id, r] of this.routes) {
      out.push({
        id,
        rid: r.rid,
        remoteId: r.remote?.server_id ?? "",
        name: r.remote?.server_name ?? "",
        solicited: r.solicited,
        configured: seeds.has(id),
        ip: r.remoteAddress,
        port: r.remotePort,
        startedAt: r.startedAt,
        lastActivity: r.lastReadAt,
        rttMs: r.rttMs,
        subscriptions: r.subs.size,
        inMsgs: r.inMsgs,
        outMsgs: r.outMsgs,
        inBytes: r.inBytes,
        outBytes: r.outBytes,
        pending: r.pendingBytes,
        subs: withSubs
          ? [...r.subs.values()].map((sub) => ({
              subject: sub.subject,
              queue: sub.queue,
              // As nats-server names a route's subscriptions: account, subject, queue.
              sid: sub.queue === null ? `${sub.account.name} ${sub.subject}` : `${sub.account.name} ${sub.subject} ${sub.queue}`,
              msgs: sub.delivered,
              max: sub.max,
            }))
          : [],
      });
    }
    return out.sort((a, b) => a.rid - b.rid);
  }
}

/** One open route as /routez reports it (src/monitor/routez.ts). */
export interface RouteSummary {
  /** The other node's member id (its cluster address). */
  id: string;
  rid: number;
  /** The other node's server_id and server_name. */
  remoteId: string;
  name: string;
  /** This node dialed it. */
  solicited: boolean;
  /** The other node is one of this node's configured seeds (--routes). */
  configured: boolean;
  /** The other end of the TCP connection. */
  ip: string;
  port: number;
  /** Date.now() stamps. */
  startedAt: number;
  lastActivity: number;
  /** Last measured round trip, ms; -1 = not measured yet. */
  rttMs: number;
  /** The other node's interest keys held here. */
  subscriptions: number;
  inMsgs: number;
  outMsgs: number;
  inBytes: number;
  outBytes: number;
  /** Bytes queued for the other node, not yet written. */
  pending: number;
  /** The interest itself (routeSummaries(true) only). */
  subs: { subject: string; queue: string | null; sid: string; msgs: number; max: number }[];
}

/** The host other members and clients reach a listener at: its own, or for 0.0.0.0 / :: this machine's first non-loopback IPv4. */
function advertiseHost(host: string): string {
  if (host !== "0.0.0.0" && host !== "::" && host !== "") return host;
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) if (a.family === "IPv4" && !a.internal) return a.address;
  }
  return "127.0.0.1";
}

/** host:port URLs of a listener, as nats-server lists them in connect_urls. */
/** host:port, an IPv6 host in brackets. */
function hostPort(a: { host: string; port: number }): string {
  return a.host.includes(":") ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

function ownUrls(host: string, port: number): string[] {
  if (port <= 0) return [];
  if (host !== "0.0.0.0" && host !== "::" && host !== "") return [host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`];
  const urls: string[] = [];
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) if (a.family === "IPv4" && !a.internal) urls.push(`${a.address}:${port}`);
  }
  return urls.length > 0 ? urls : [`127.0.0.1:${port}`];
}

