// Leafnodes: this server as a leaf node of NATS hubs (remotes it dials) and as a hub for leaf nodes
// (a listener they dial), with nats-server's leafnode protocol (./protocol.ts), so that natter joins
// real NATS systems in either role.
//
// - Interest: every open connection keeps an smap, what the other side knows of our interest. Each
//   account's Sublist observer tells this manager about every subscription that comes or goes there;
//   only the connections bound to that account hear of it, and `wants` decides, per connection,
//   whether the other side should know (see connection.ts for the spoke/hub rules).
// - Accounts: a remote's connections carry the remote's `account` (default $G); an accepted leaf the
//   account of the user it authenticated as (authorize below, nats-server's isLeafNodeAuthorized).
// - Loops: each server has one subject $LDS.<random> that it sends on every leaf connection. A server
//   that receives its own back (through a cycle of leaf connections) closes that connection with
//   `Loop detected…`, and its dialing side waits 30 s before dialing again.
// - Timers (one interval): handshake deadlines, PINGs every ping_interval, stale connections, and the
//   write deadline (a leaf connection that stays blocked is cut, as a slow client is).
import type { TCPSocketListener } from "bun";
import os from "node:os";
import { COMPATIBLE_NATS_VERSION, type Server } from "../server.ts";
import type { Subscription } from "../subscription.ts";
import type { SublistObserver } from "../cluster/interest.ts";
import { comparePassword } from "../auth/passwords.ts";
import { newNonce } from "../auth/nkeys.ts";
import { nuid } from "../jetstream/nuid.ts";
import { domainApiPrefix } from "../jetstream/domain.ts";
import { LeafConnection, LeafState, LeafSubscription, type LeafOwner, type LeafSocket, type LeafVerdict } from "./connection.ts";
import type { Account } from "../accounts/account.ts";
import { GLOBAL_ACCOUNT, LDS_PREFIX, LeafError, infoLine, isLeafDenied, type LeafConnect, type LeafInfo } from "./protocol.ts";
import { LeafRemote, TcpLeafSocket, type LeafTcpData, type RemoteOwner } from "./remote.ts";
import { effectiveLeafnodeOptions, type LeafUrl, type LeafnodeOptions } from "./options.ts";
import { signWithCredentials } from "./credentials.ts";
import { clientHandshakeRefusal, clientTls, loadLeafServerTls } from "./tls.ts";
import { handshakeRefusal, type ServerTls } from "../auth/tls.ts";

const TICK_MS = 250;
/** A dialed hub must send its INFO within this (nats-server's DEFAULT_LEAFNODE_INFO_WAIT is 1 s; a little more for busy machines). */
const INFO_WAIT_MS = 2_000;
/** After CONNECT, the hub's INFO with connect_info must follow within this (nats-server: 2 s). */
const CONNECT_INFO_WAIT_MS = 2_000;
/** An accepted leaf must send CONNECT within this unless authorization sets a timeout (nats-server: 2 s). */
const DEFAULT_AUTH_TIMEOUT_MS = 2_000;

/** A Sublist whose insert/remove are reported to an observer (src/cluster/interest.ts). */
interface Observable {
  observer: SublistObserver<Subscription> | null;
}

export class Leafnodes implements LeafOwner, RemoteOwner {
  readonly lds = LDS_PREFIX + nuid();
  readonly options: LeafnodeOptions;
  /** Every connection, handshaking or open. */
  readonly connections = new Set<LeafConnection>();
  /** Open connections: interest flows on these. */
  readonly open = new Set<LeafConnection>();
  /** The open connections of each account (an account's interest changes go to these only). */
  private readonly openIn = new Map<Account, Set<LeafConnection>>();
  readonly remotes: LeafRemote[] = [];
  private readonly remoteOf = new Map<LeafConnection, LeafRemote>();
  private listener: TCPSocketListener<LeafTcpData> | null = null;
  private timer: ReturnType<typeof setInterval> | null = null;
  stopped = false;
  /** The listener's port (resolved when -1 asked for a random one); 0 when not listening. */
  port = 0;
  /** TLS on the leafnode port (./tls.ts); null = plaintext. */
  private readonly serverTls: ServerTls | null;

  constructor(readonly server: Server) {
    const ln = effectiveLeafnodeOptions(server.options);
    if (ln === null) throw new Error("leafnodes are not configured");
    this.options = ln;
    this.serverTls = ln.tls !== null ? loadLeafServerTls(ln.tls) : null;
  }

  /** Time an accepted leaf has to send CONNECT: authorization's timeout, else 2 s (with TLS: its timeout + 1 s, as nats-server). */
  private authTimeoutMs(): number {
    const configured = this.options.authorization?.timeoutMs;
    if (configured) return configured;
    if (this.serverTls !== null) return Math.max(DEFAULT_AUTH_TIMEOUT_MS, this.serverTls.timeoutMs + 1000);
    return DEFAULT_AUTH_TIMEOUT_MS;
  }

  get reconnectIntervalMs(): number {
    return this.options.reconnectIntervalMs;
  }

  /** Opens the listener (hub side) and dials the remotes (leaf side). Throws when the port cannot be bound. */
  start(): void {
    // Every account's Sublist (accounts are fixed at start): a leaf node may bind to any of them.
    for (const account of this.server.accounts.all()) {
      const sublist = account.sublist as unknown as Partial<Observable>;
      if (!("observer" in sublist)) throw new Error("leafnodes need an observable Sublist");
      // Chain after the cluster's observer (set when the cluster started), keeping it informed first.
      const previous = sublist.observer ?? null;
      sublist.observer = {
        added: (sub) => {
          previous?.added(sub);
          this.interestChanged(account, sub, 1);
        },
        removed: (sub) => {
          previous?.removed(sub);
          this.interestChanged(account, sub, -1);
        },
      };
    }
    const o = this.options;
    if (o.port !== 0) this.listen(o.host, o.port === -1 ? 0 : o.port);
    for (const r of o.remotes) {
      const account = this.server.accounts.get(r.account || GLOBAL_ACCOUNT);
      if (account === undefined) throw new Error(`cannot find local account ${JSON.stringify(r.account)} specified in leafnode remote`);
      const remote = new LeafRemote(this, r, account);
      this.remotes.push(remote);
      this.server.log.info(`Leafnode remote: ${remote.display} (account ${account.name})`);
      remote.start();
    }
    this.timer = setInterval(() => this.tick(), TICK_MS);
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer !== null) clearInterval(this.timer);
    for (const remote of this.remotes) remote.stop();
    for (const conn of [...this.connections]) conn.close("Server Shutdown", null);
    this.listener?.stop(true);
  }

  /** Lame duck mode: refuse new leaf connections, keep the open ones. */
  stopListening(): void {
    this.listener?.stop(false);
  }

  private listen(host: string, port: number): void {
    const leafnodes = this;
    this.listener = Bun.listen<LeafTcpData>({
      hostname: host,
      port,
      data: { conn: null },
      socket: {
        open(socket) {
          socket.setNoDelay(true);
          // A new object per socket: the listener's `data` is one object shared by every socket it accepts.
          socket.data = { conn: leafnodes.accept(new TcpLeafSocket(socket)) };
        },
        data: (socket, data) => socket.data.conn?.onRead(data),
        drain: (socket) => socket.data.conn?.onDrain(),
        close: (socket) => socket.data.conn?.onSocketClosed(),
        error: (socket, error) => {
          leafnodes.server.log.debug(`${socket.remoteAddress} - leafnode socket error: ${error.message}`);
          socket.data.conn?.onSocketClosed();
        },
      },
    });
    this.port = this.listener.port;
    this.server.log.info(`Listening for leafnode connections on ${host}:${this.port}`);
  }

  /** A leaf node dialed our leafnode port: greet it with INFO and wait for its CONNECT. */
  accept(socket: LeafSocket): LeafConnection {
    const conn = new LeafConnection(this, socket, false);
    conn.nonce = newNonce();
    this.connections.add(conn);
    this.server.log.info(`${conn.logPrefix} - Leafnode connection created`);
    if (this.stopped || this.server.isShuttingDown) {
      conn.close("Server Shutdown", null);
      return conn;
    }
    conn.queueBytes(infoLine(this.infoFor(conn, false)));
    conn.flush();
    const tls = this.serverTls;
    if (tls !== null && socket instanceof TcpLeafSocket && !conn.closed) {
      // The INFO went out in plaintext; now the handshake, before anything else is read.
      conn.tlsPending = true;
      socket.startTls(conn, tls.bun, tls.timeoutMs, (success, error) => {
        conn.tlsPending = false;
        if (conn.closed) return;
        const refusal = handshakeRefusal(tls, success, error);
        if (refusal === null) return;
        this.server.log.error(`${conn.logPrefix} - TLS leafnode handshake error: ${refusal}`);
        conn.close("TLS Handshake Error", null);
      });
    }
    return conn;
  }

  /** LeafOwner: TLS to the hub when the remote has tls {} or the hub's INFO requires it (./tls.ts). */
  solicitTls(conn: LeafConnection, info: LeafInfo): boolean {
    const remote = this.remoteOf.get(conn);
    const socket = conn.socket;
    if (remote === undefined || !(socket instanceof TcpLeafSocket)) return false; // WebSocket: no TLS (ws://)
    if (remote.options.tls === undefined && info.tls_required !== true) return false;
    const url = remote.url!;
    let tls;
    try {
      tls = clientTls(remote.options.tls, url, remote.tlsName);
    } catch (error) {
      this.server.log.error(`${conn.logPrefix} - TLS leafnode setup error: ${(error as Error).message}`);
      conn.close("TLS Handshake Error", null);
      return true;
    }
    this.server.log.debug(`${conn.logPrefix} - Starting TLS leafnode client handshake`);
    socket.startTls(conn, tls.bun, tls.timeoutMs, (success, error) => {
      if (conn.closed) return;
      const refusal = clientHandshakeRefusal(tls, success, error);
      if (refusal !== null) {
        conn.tlsPending = false;
        this.server.log.error(`${conn.logPrefix} - TLS leafnode handshake error: ${refusal}`);
        conn.close("TLS Handshake Error", null);
        return;
      }
      conn.tlsEstablished();
    });
    return true;
  }

  /** RemoteOwner: a dial to a hub connected; the hub speaks first. */
  attach(remote: LeafRemote, socket: LeafSocket, url: LeafUrl): LeafConnection {
    const conn = new LeafConnection(this, socket, true, remote.options.hub === true, remote.account);
    this.connections.add(conn);
    this.remoteOf.set(conn, remote);
    this.server.log.debug(`${conn.logPrefix} - Leafnode connection to ${url.display} made, waiting for the hub's INFO`);
    return conn;
  }

  // ---- LeafOwner ---------------------------------------------------------------------------

  clusterName(): string {
    return this.server.cluster?.name ?? this.server.options.clusterName ?? "";
  }

  minVersion(): string {
    return this.options.minVersion;
  }

  infoFor(conn: LeafConnection, connectInfo: boolean): LeafInfo {
    const s = this.server;
    const info: LeafInfo = {
      server_id: s.serverId,
      server_name: s.serverName,
      version: COMPATIBLE_NATS_VERSION,
      proto: 1,
      go: `bun${Bun.version}`,
      host: this.options.host,
      port: this.port,
      headers: !this.server.options.noHeaderSupport,
      auth_required: true,
      max_payload: s.options.maxPayload,
      ...(this.serverTls !== null ? { tls_required: true, tls_verify: this.serverTls.verify } : {}),
      client_id: conn.lid,
    };
    if (!connectInfo) info.nonce = conn.nonce;
    const cluster = this.clusterName();
    if (cluster !== "") info.cluster = cluster;
    info.info_on_connect = true;
    if (connectInfo) info.connect_info = true;
    // Always present: a dialing leaf takes an INFO without leafnode_urls for a wrong port.
    info.leafnode_urls = [this.advertisedUrl()];
    if (connectInfo) info.remote_account = conn.account.name;
    const domain = this.jetStreamDomain();
    if (domain !== "") info.domain = domain;
    return info;
  }

  private advertisedUrl(): string {
    if (this.options.advertise !== "") return this.options.advertise;
    return `${advertiseHost(this.options.host)}:${this.port}`;
  }

  connectFor(conn: LeafConnection, _info: LeafInfo): LeafConnect {
    const remote = this.remoteOf.get(conn)!;
    const url = remote.url!;
    const s = this.server;
    const connect: LeafConnect = {
      version: COMPATIBLE_NATS_VERSION,
      server_id: s.serverId,
      name: s.serverName,
      headers: !this.server.options.noHeaderSupport,
    };
    if (remote.options.hub === true) connect.is_hub = true;
    const cluster = this.clusterName();
    if (cluster !== "") connect.cluster = cluster;
    // As nats-server: the URL's user info first, else the remote's user/password.
    if (url.user !== "") {
      connect.user = url.user;
      if (url.password !== "") connect.pass = url.password;
    } else if (remote.options.user !== undefined) {
      connect.user = remote.options.user;
      if (remote.options.password !== undefined) connect.pass = remote.options.password;
    }
    if (remote.options.token !== undefined) connect.auth_token = remote.options.token;
    if (remote.options.credentials !== undefined) {
      // As nats-server: a credentials file comes first; user/password above go along (auth callout).
      try {
        const signed = signWithCredentials(remote.options.credentials, conn.nonce);
        connect.jwt = signed.jwt;
        connect.sig = signed.sig;
      } catch (error) {
        this.server.log.error(`${conn.logPrefix} - Leafnode credentials ${JSON.stringify(remote.options.credentials)}: ${(error as Error).message}`);
      }
    }
    connect.remote_account = conn.account.name;
    const domain = this.jetStreamDomain();
    if (domain !== "") connect.domain = domain;
    return connect;
  }

  /**
   * nats-server's isLeafNodeAuthorized: leafnodes.authorization's single user (bound to its `account`)
   * or users list (each bound to its own), else the clients' authentication (bound to the user's account,
   * from the accounts block or $G), else anyone, bound to leafnodes.authorization's `account` or $G.
   */
  authorize(conn: LeafConnection, connect: LeafConnect): LeafVerdict | Promise<LeafVerdict> {
    const user = typeof connect.user === "string" ? connect.user : "";
    const pass = typeof connect.pass === "string" ? connect.pass : "";
    const la = this.options.authorization;
    const accounts = this.server.accounts;
    /** A grant of leafnodes.authorization (or an anonymous leaf): over max_leafnodes, an Authorization Violation. */
    const leafGrant = (name: string | undefined): LeafVerdict => {
      const account = accounts.get(name || GLOBAL_ACCOUNT);
      if (account === undefined) return `authentication of user ${JSON.stringify(user)} failed, unable to lookup account ${JSON.stringify(name)}`;
      return { account, fullError: LeafError.AuthorizationViolation };
    };
    if (la !== null && (la.user !== undefined || la.users !== undefined)) {
      // leafnodes { authorization {} }: only these (nats-server's isLeafNodeAuthorized).
      if (la.user !== undefined) {
        if (user !== la.user) return "authentication error";
        return settle(comparePassword(la.password ?? "", pass), "authentication error", leafGrant(la.account));
      }
      const entry = la.users!.find((u) => u.user === user);
      if (entry === undefined) return `authentication error - User ${JSON.stringify(user)}`;
      return settle(comparePassword(entry.password, pass), `authentication error - User ${JSON.stringify(user)}`, leafGrant(entry.account));
    }
    // Otherwise the clients' authentication (natter is stricter than nats-server here, which lets leaf
    // nodes in without credentials unless a users list or leafnodes authorization is configured).
    const auth = this.server.auth;
    if (auth === null) return leafGrant(la?.account);
    // A token in the URL (nats-leaf://TOKEN@hub) arrives as the user name.
    const token = typeof connect.auth_token === "string" && connect.auth_token !== "" ? connect.auth_token : pass === "" ? user : "";
    const nkey = typeof connect.nkey === "string" ? connect.nkey : undefined;
    const type = conn.socket.kind === "websocket" ? "LEAFNODE_WS" : "LEAFNODE"; // for users with allowed_connection_types
    const result = auth.authenticate("tcp", { user, pass, auth_token: token, nkey, sig: connect.sig }, conn.nonce, undefined, null, type);
    const failure = auth.describeFailure({ user, nkey });
    const grant = (u: { account?: Account | null } | null): LeafVerdict =>
      u === null ? failure : { account: u.account ?? accounts.global, fullError: LeafError.MaxAccountConnections };
    if (result instanceof Promise) return result.then(grant);
    return grant(result);
  }

  opened(conn: LeafConnection): void {
    this.open.add(conn);
    let peers = this.openIn.get(conn.account);
    if (peers === undefined) this.openIn.set(conn.account, (peers = new Set()));
    peers.add(conn);
    const remote = this.remoteOf.get(conn);
    remote?.connectionOpened();
    const who = `${conn.remoteServer}${conn.remoteCluster ? `/${conn.remoteCluster}` : ""}`;
    if (conn.solicited) this.server.log.info(`${conn.logPrefix} - Leafnode connection created for account: ${conn.account.name} (hub ${who} at ${remote?.url?.display ?? "?"})`);
    else this.server.log.info(`${conn.logPrefix} - Leafnode connection open from ${who} for account: ${conn.account.name}${conn.isSpoke ? " (it is the hub)" : ""}`);
    // Our interest, as it stands (later changes follow through the Sublist observer).
    const smap = new Map<string, number>();
    for (const sub of conn.account.sublist.all()) {
      if (!wants(conn, sub)) continue;
      const key = keyOf(sub);
      smap.set(key, (smap.get(key) ?? 0) + contribution(sub));
    }
    // As nats-server: the account's mapping sources are interest too (what arrives on them is mapped here),
    // which is how a JetStream domain's `$JS.<domain>.API.…` becomes reachable from the other side.
    for (const m of conn.account.mappings?.options ?? []) {
      if (isLeafDenied(m.source)) continue;
      smap.set(m.source, (smap.get(m.source) ?? 0) + 1);
    }
    this.applyDomainDenies(conn);
    conn.sendInitialInterest(smap);
  }

  /** Our JetStream domain, when JetStream is on and has one (src/jetstream/domain.ts); else "". */
  private jetStreamDomain(): string {
    const o = this.server.options;
    return o.jetstream ? o.jsDomain : "";
  }

  /**
   * nats-server's addLeafNodeConnection for a non-system account: the plain API, KV and object store never
   * cross (JS_DENY_PREFIXES, always); when the other side is another domain (or none), our own domain's API
   * requests do not leave through the link either, so they are answered here only.
   */
  private applyDomainDenies(conn: LeafConnection): void {
    const domain = this.jetStreamDomain();
    if (domain === "" || conn.account.isSystem || conn.account.jetstream === null) return;
    if (conn.remoteDomain === domain) {
      this.server.log.info(`${conn.logPrefix} - JetStream domain ${JSON.stringify(domain)} on both sides of the link for account ${JSON.stringify(conn.account.name)}`);
      return;
    }
    conn.denyOutgoingApi = Buffer.from(`${domainApiPrefix(domain)}.`, "latin1");
    this.server.log.info(`${conn.logPrefix} - JetStream Not Extended, adding deny ["$JS.API.>" "$KV.>" "$OBJ.>"] for account ${JSON.stringify(conn.account.name)}; deny "${domainApiPrefix(domain)}.>" for outgoing messages`);
  }

  closed(conn: LeafConnection, _reason: string): void {
    const wasOpen = this.open.delete(conn);
    this.openIn.get(conn.account)?.delete(conn);
    this.connections.delete(conn);
    const remote = this.remoteOf.get(conn);
    if (remote !== undefined) {
      this.remoteOf.delete(conn);
      remote.connectionClosed(conn, wasOpen);
    }
  }

  hubUrls(conn: LeafConnection, info: LeafInfo): void {
    const remote = this.remoteOf.get(conn);
    if (remote === undefined) return;
    const urls = remote.isWebSocket ? info.ws_connect_urls : info.leafnode_urls;
    if (Array.isArray(urls) && urls.length > 0) remote.learnUrls(urls.filter((u): u is string => typeof u === "string"));
  }

  delayReconnect(conn: LeafConnection, ms: number): void {
    const remote = this.remoteOf.get(conn);
    if (remote !== undefined) remote.delayOverrideMs = ms;
  }

  // ---- interest ----------------------------------------------------------------------------

  /** The account's Sublist gained (sign 1) or lost (-1) a subscription: tell every open connection of the account that should know. */
  private interestChanged(account: Account, sub: Subscription, sign: number): void {
    const peers = this.openIn.get(account);
    if (peers === undefined || peers.size === 0) return;
    const key = keyOf(sub);
    const amount = contribution(sub) * sign;
    for (const conn of peers) if (wants(conn, sub)) conn.updateInterest(key, sub.queue !== null, amount);
  }

  /** An accepted LS+ changed a queue group's weight: pass the difference on, then record it. */
  weightChanged(sub: LeafSubscription, weight: number): void {
    const delta = Math.max(1, weight) - sub.weight;
    sub.weight = Math.max(1, weight);
    if (delta === 0) return;
    const key = keyOf(sub);
    const peers = this.openIn.get((sub.client as LeafConnection).account);
    for (const conn of peers ?? []) if (wants(conn, sub)) conn.updateInterest(key, true, delta);
  }

  // ---- timers ------------------------------------------------------------------------------

  private tick(): void {
    const now = Date.now();
    const o = this.server.options;
    for (const conn of this.connections) {
      conn.trimOutbound();
      if (conn.state === LeafState.HANDSHAKE || conn.state === LeafState.CONNECTING) {
        const age = now - conn.startedAt;
        if (conn.solicited) {
          if (conn.tlsPending) continue; // the handshake has its own deadline
          if (conn.state === LeafState.HANDSHAKE && age > INFO_WAIT_MS) conn.close("no INFO from the hub", null);
          else if (conn.state === LeafState.CONNECTING && conn.connectSentAt > 0 && now - conn.connectSentAt > CONNECT_INFO_WAIT_MS + INFO_WAIT_MS) {
            this.server.log.error(`${conn.logPrefix} - Stale Leaf Node Connection - Closing`);
            conn.close("Stale Connection", null);
          }
        } else if (conn.state === LeafState.HANDSHAKE && age > this.authTimeoutMs()) {
          this.server.log.error(`${conn.logPrefix} - ${LeafError.AuthenticationTimeout}`);
          conn.close("Authentication Timeout", LeafError.AuthenticationTimeout);
        }
        continue;
      }
      if (conn.blockedSince > 0 && now - conn.blockedSince > o.writeDeadlineMs) {
        this.server.stats.slowConsumers++;
        this.server.log.error(`${conn.logPrefix} - Slow Consumer Detected: WriteDeadline of ${o.writeDeadlineMs}ms Exceeded`);
        conn.close("Slow Consumer (Write Deadline)", null);
        continue;
      }
      if (conn.state !== LeafState.OPEN || now < conn.nextPingAt) continue;
      conn.nextPingAt = now + o.pingIntervalMs;
      if (conn.pingsOut + 1 > o.pingMax) {
        this.server.stats.staleConnections++;
        this.server.log.error(`${conn.logPrefix} - Stale Leafnode Connection - Closing`);
        conn.close("Stale Connection", LeafError.StaleConnection);
        continue;
      }
      conn.sendPing();
    }
  }

  /** For monitoring and tests: one line per open connection. */
  summaries(): { lid: number; name: string; cluster: string; account: string; solicited: boolean; spoke: boolean; subscriptions: number; inMsgs: number; outMsgs: number }[] {
    return [...this.open].map((c) => ({
      lid: c.lid, name: c.remoteServer, cluster: c.remoteCluster, account: c.account.name, solicited: c.solicited, spoke: c.isSpoke,
      subscriptions: c.subs.size, inMsgs: c.inMsgs, outMsgs: c.outMsgs,
    }));
  }
}

/** Subject, or `subject queue`: the key of an interest line. */
function keyOf(sub: Subscription): string {
  return sub.queue === null ? sub.subject : `${sub.subject} ${sub.queue}`;
}

/** What a subscription adds to its key's count: 1, or a leaf queue group's member count. */
function contribution(sub: Subscription): number {
  if (sub.queue === null) return 1;
  return sub instanceof LeafSubscription ? sub.weight : 1;
}

/**
 * Whether the other side of `conn` should know about `sub` (nats-server's initLeafNodeSmapAndSendSubs,
 * updateLeafNodes and updateSmap):
 * - never its own interest, nor JetStream API, KV and object store subjects (JS_DENY_PREFIXES);
 * - a spoke tells its hub about local subscriptions (clients, internal clients) and those of leaf nodes
 *   attached to this server; not about routes' or other hubs' interest;
 * - a hub tells a leaf about everything but what came from the leaf's own cluster (except $LDS
 *   subjects, which must travel to find loops).
 */
function wants(conn: LeafConnection, sub: Subscription): boolean {
  const client = sub.client;
  if (client === conn) return false;
  if (isLeafDenied(sub.subject)) return false;
  const fromLeaf = sub instanceof LeafSubscription;
  if (conn.isSpoke) {
    if (client.isRoute !== true) return true;
    // --procs: the other workers' interest (routes) crosses worker 0's link, theirs too.
    if (conn.sharedHubLink && client.isLeaf !== true) return true;
    return fromLeaf && !(client as LeafConnection).isSpoke;
  }
  if (fromLeaf) {
    if (sub.subject.startsWith(LDS_PREFIX)) return true;
    const origin = sub.origin;
    if (origin !== "" && origin === conn.remoteCluster) return false;
  }
  return true;
}

function settle(match: boolean | Promise<boolean>, failure: string, grant: LeafVerdict): LeafVerdict | Promise<LeafVerdict> {
  if (typeof match === "boolean") return match ? grant : failure;
  return match.then((ok) => (ok ? grant : failure));
}

/** The host leaf nodes reach this one at: its own, or for 0.0.0.0 / :: this machine's first non-loopback IPv4. */
function advertiseHost(host: string): string {
  if (host !== "0.0.0.0" && host !== "::" && host !== "") return host.includes(":") ? `[${host}]` : host;
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) if (a.family === "IPv4" && !a.internal) return a.address;
  }
  return "127.0.0.1";
}
