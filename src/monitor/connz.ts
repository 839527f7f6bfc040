// /connz: nats-server's Connz and ConnInfo (server/monitor.go), field for field, in its order.
import { Connection } from "../connection.ts";
import type { Server } from "../server.ts";
import type { MqttConnection } from "../mqtt/connection.ts";
import { mqttRecord } from "../mqtt/monitor.ts";
import { goDuration, nowNs, rfc3339Ms, rfc3339Ns, uptime } from "./format.ts";
import { BadRequest, queryBool, queryInt, querySubs, queryUint } from "./query.ts";

import { GLOBAL_ACCOUNT } from "../accounts/options.ts";

export { GLOBAL_ACCOUNT };

/** nats-server's DefaultConnListSize. */
export const DEFAULT_CONN_LIST_SIZE = 1024;

/** nats-server's SubDetail. */
export interface SubDetail {
  account?: string;
  subject: string;
  qgroup?: string;
  sid: string;
  msgs: number;
  max?: number;
  cid: number;
}

/** nats-server's ConnInfo as JSON (omitempty fields are optional; TLS, auth, JWT and MQTT fields never apply). */
export interface ConnInfo {
  cid: number;
  kind?: string;
  type?: string;
  ip: string;
  port: number;
  start: string;
  last_activity: string;
  stop?: string;
  reason?: string;
  rtt?: string;
  uptime: string;
  idle: string;
  pending_bytes: number;
  in_msgs: number;
  out_msgs: number;
  in_bytes: number;
  out_bytes: number;
  subscriptions: number;
  name?: string;
  lang?: string;
  version?: string;
  /** With `auth=true`: the user the client authenticated as. */
  authorized_user?: string;
  /** With `auth=true`: the client's account, unless it is the global one (`$G`). */
  account?: string;
  subscriptions_list?: string[];
  subscriptions_list_detail?: SubDetail[];
  /** An MQTT client's client id (src/mqtt). */
  mqtt_client?: string;
}

export interface Connz {
  server_id: string;
  now: string;
  num_connections: number;
  total: number;
  offset: number;
  limit: number;
  /** null when `acc` names no account (nats-server answers before filling anything in). */
  connections: ConnInfo[] | null;
}

/**
 * One connection as /connz sees it: raw values, formatted only when a request shows them (closing a
 * connection takes this snapshot, so it stays cheap: no strings built).
 */
export interface ConnRecord {
  readonly cid: number;
  readonly type: "nats" | "websocket" | "mqtt";
  readonly ip: string;
  readonly port: number;
  readonly startMs: number;
  readonly lastMs: number;
  /** null while open. */
  readonly stopMs: number | null;
  readonly reason: string | undefined;
  readonly rttNs: number;
  readonly pending: number;
  readonly inMsgs: number;
  readonly outMsgs: number;
  readonly inBytes: number;
  readonly outBytes: number;
  readonly numSubs: number;
  readonly name: string;
  readonly lang: string;
  readonly version: string;
  /** The authenticated user ("" for none, a token or the single user). */
  readonly user: string;
  /** The account's name (`$G` when none is configured). */
  readonly account: string;
  readonly subs: readonly SubDetail[];
  /** An MQTT client's client id; "" for NATS clients. */
  readonly mqttClient?: string;
}

const NO_SUBS: readonly SubDetail[] = Object.freeze([]);

/** nats-server's getRTT: between 1µs and 1ms truncated to whole microseconds. */
function rttNanos(conn: Connection): number {
  const ns = Math.round(conn.rttMs * 1e6);
  return ns > 1e3 && ns < 1e6 ? Math.trunc(ns / 1e3) * 1e3 : ns;
}

/**
 * A connection's values now (open), or its snapshot as it closes (`stopMs` and `reason` given).
 * As in nats-server, a closed connection's subscription details carry the account.
 */
export function connRecord(conn: Connection, stopMs: number | null = null, reason?: string): ConnRecord {
  const closed = stopMs !== null;
  const account = conn.account.name;
  let subs: readonly SubDetail[] = NO_SUBS;
  if (conn.subscriptions.size > 0) {
    const list: SubDetail[] = [];
    subs = list;
    for (const sub of conn.subscriptions.values()) {
      list.push({
        account: closed ? account : undefined,
        subject: sub.subject,
        qgroup: sub.queue ?? undefined,
        sid: sub.sid,
        msgs: sub.delivered,
        max: sub.max > 0 ? sub.max : undefined,
        cid: conn.cid,
      });
    }
  }
  return {
    cid: conn.cid,
    type: conn.transport.kind === "websocket" ? "websocket" : "nats",
    ip: conn.transport.remoteAddress,
    port: conn.transport.remotePort,
    startMs: conn.startedAt,
    lastMs: conn.lastActivity,
    stopMs,
    reason,
    rttNs: rttNanos(conn),
    pending: closed ? 0 : conn.pendingBytes,
    inMsgs: conn.inMsgs,
    outMsgs: conn.outMsgs,
    inBytes: conn.inBytes,
    outBytes: conn.outBytes,
    numSubs: conn.subscriptions.size,
    name: conn.name,
    lang: conn.lang,
    version: conn.version,
    user: conn.authUser,
    account,
    subs,
  };
}

/** nats-server's ConnInfo.fill: a closed connection's uptime and idle are frozen at its stop time. */
export function connInfo(r: ConnRecord, nowMs: number, subs: "none" | "list" | "detail" = "none", auth = false): ConnInfo {
  const at = r.stopMs ?? nowMs;
  return {
    cid: r.cid,
    kind: "Client",
    type: r.type,
    ip: r.port !== 0 ? r.ip : "",
    port: r.port,
    start: rfc3339Ms(r.startMs),
    last_activity: rfc3339Ms(r.lastMs),
    stop: r.stopMs !== null ? rfc3339Ms(r.stopMs) : undefined,
    reason: r.reason,
    rtt: goDuration(r.rttNs),
    uptime: uptime(at - r.startMs),
    idle: uptime(at - r.lastMs),
    pending_bytes: r.pending,
    in_msgs: r.inMsgs,
    out_msgs: r.outMsgs,
    in_bytes: r.inBytes,
    out_bytes: r.outBytes,
    subscriptions: r.numSubs,
    name: r.name || undefined,
    lang: r.lang || undefined,
    version: r.version || undefined,
    authorized_user: auth && r.user !== "" ? r.user : undefined,
    account: auth && r.account !== GLOBAL_ACCOUNT ? r.account : undefined,
    subscriptions_list: subs === "list" && r.subs.length > 0 ? r.subs.map((s) => s.subject) : undefined,
    subscriptions_list_detail: subs === "detail" && r.subs.length > 0 ? [...r.subs] : undefined,
    mqtt_client: r.mqttClient || undefined,
  };
}

/** nats-server's SortOpt values. Only cid/start and reason (and, as nats-server does, uptime) ascend. */
export const SORT_OPTIONS = [
  "cid", "start", "subs", "pending", "msgs_to", "msgs_from", "bytes_to", "bytes_from",
  "last", "idle", "uptime", "stop", "reason", "rtt",
] as const;
export type SortOption = (typeof SORT_OPTIONS)[number];

type ConnState = "open" | "closed" | "all";

export interface ConnzOptions {
  sort: SortOption;
  subs: boolean;
  subsDetail: boolean;
  offset: number;
  limit: number;
  cid: number;
  state: ConnState;
  /** `auth=true`: show authorized_user and account. */
  auth: boolean;
  /** `acc=NAME`: only the connections of this account. */
  account: string;
  /** `user=NAME`: only the connections of this user. */
  user: string;
}

/** Reads /connz's query as HandleConnz + Connz() do; throws BadRequest with nats-server's texts. */
export function connzOptions(q: URLSearchParams): ConnzOptions {
  const sortText = q.get("sort") ?? "";
  const auth = queryBool(q, "auth");
  const { subs, detail } = querySubs(q);
  let offset = queryInt(q, "offset");
  let limit = queryInt(q, "limit");
  const cid = queryUint(q, "cid");
  const stateText = (q.get("state") ?? "").toLowerCase();
  let state: ConnState;
  if (stateText === "" || stateText === "open") state = "open";
  else if (stateText === "closed") state = "closed";
  else if (stateText === "any" || stateText === "all") state = "all";
  else throw new BadRequest(`Error decoding state for ${q.get("state")}`);

  const sort: SortOption = sortText === "" ? "cid" : (sortText as SortOption);
  if (!SORT_OPTIONS.includes(sort)) throw new BadRequest(`invalid sorting option: ${sortText}`);
  if (offset < 0) offset = 0;
  if (limit <= 0) limit = DEFAULT_CONN_LIST_SIZE;
  if (sort === "stop" && state !== "closed") throw new BadRequest("sort by stop only valid on closed connections");
  if (sort === "reason" && state !== "closed") throw new BadRequest("sort by reason only valid on closed connections");
  if (cid > 0) limit = 1;
  return { sort, subs, subsDetail: detail, offset, limit, cid, state, auth, account: q.get("acc") ?? "", user: q.get("user") ?? "" };
}

function byCid(a: ConnRecord, b: ConnRecord): number {
  return a.cid - b.cid;
}

/** Descending by a number, ties by cid. */
function desc(key: (r: ConnRecord) => number): (a: ConnRecord, b: ConnRecord) => number {
  return (a, b) => key(b) - key(a) || byCid(a, b);
}

function comparator(sort: SortOption, nowMs: number): (a: ConnRecord, b: ConnRecord) => number {
  switch (sort) {
    case "cid":
    case "start":
      return byCid;
    case "subs":
      return desc((r) => r.numSubs);
    case "pending":
      return desc((r) => r.pending);
    case "msgs_to":
      return desc((r) => r.outMsgs);
    case "msgs_from":
      return desc((r) => r.inMsgs);
    case "bytes_to":
      return desc((r) => r.outBytes);
    case "bytes_from":
      return desc((r) => r.inBytes);
    case "last":
      return desc((r) => r.lastMs);
    case "idle":
      return desc((r) => nowMs - r.lastMs);
    case "uptime": {
      // nats-server sorts uptime ascending (sort.Sort(byUptime), no Reverse); a closed one's ends at its stop.
      const up = (r: ConnRecord) => (r.stopMs ?? nowMs) - r.startMs;
      return (a, b) => up(a) - up(b) || byCid(a, b);
    }
    case "stop":
      return desc((r) => r.stopMs ?? 0);
    case "reason":
      return (a, b) => {
        const ra = a.reason ?? "";
        const rb = b.reason ?? "";
        return ra < rb ? -1 : ra > rb ? 1 : byCid(a, b); // byte order, as Go compares strings
      };
    case "rtt":
      return desc((r) => r.rttNs);
  }
}

/** nats-server's Connz(). */
function anyRecord(conn: Connection | MqttConnection): ConnRecord {
  // Connection, not MqttConnection, is tested: the MQTT module is loaded only when MQTT is configured.
  return conn instanceof Connection ? connRecord(conn) : mqttRecord(conn);
}

export function connz(server: Server, o: ConnzOptions): Connz {
  const now = nowNs();
  const nowMs = Number(now / 1_000_000n);
  const account = o.account === "" ? undefined : server.accounts.get(o.account);
  if (account === undefined && o.account !== "") {
    // nats-server's Connz returns as soon as the account lookup fails: no server id, no connections.
    return { server_id: "", now: rfc3339Ns(now), num_connections: 0, total: 0, offset: o.offset, limit: o.limit, connections: null };
  }
  let closedList = o.state === "open" ? [] : server.closedConnections.list();
  if (account !== undefined) closedList = closedList.filter((r) => r.account === account.name);
  let open: (Connection | MqttConnection)[] = [];
  if (o.state !== "closed") {
    for (const conn of server.connections.values()) if (account === undefined || conn.account === account) open.push(conn);
    // MQTT clients once their CONNECT is accepted (nats-server registers them then).
    for (const conn of server.mqtt?.connections.values() ?? []) if (conn.session !== null && (account === undefined || conn.account === account)) open.push(conn);
  }
  const total = open.length + closedList.length;

  let records: ConnRecord[] = [];
  if (o.cid > 0) {
    const found = open.find((c) => c.cid === o.cid);
    if (found !== undefined) records.push(anyRecord(found));
    else {
      const closed = closedList.find((r) => r.cid === o.cid);
      if (closed !== undefined) records.push(closed);
    }
  } else {
    // As nats-server, the user filter applies after the total is counted.
    if (o.user !== "") open = open.filter((c) => c.authUser === o.user);
    for (const conn of open) records.push(anyRecord(conn));
    records = records.concat(o.user === "" ? closedList : closedList.filter((r) => r.user === o.user));
  }
  records.sort(comparator(o.sort, nowMs));
  const page = records.slice(Math.min(o.offset, records.length), Math.min(o.offset + o.limit, records.length));
  return {
    server_id: server.serverId,
    now: rfc3339Ns(now),
    num_connections: page.length,
    total,
    offset: o.offset,
    limit: o.limit,
    connections: page.map((r) => connInfo(r, nowMs, o.subsDetail ? "detail" : o.subs ? "list" : "none", o.auth)),
  };
}
