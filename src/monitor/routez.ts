// /routez: nats-server's Routez and RouteInfo (server/monitor.go, v2.10.0), field for field, in its
// order, from the cluster's open routes (Cluster.routeSummaries, src/cluster/cluster.ts).
//
// What the fields mean for natter's routes (one TCP connection per pair of members, our own protocol):
// - rid: the route's number on this node (its own counter, as client ids are).
// - remote_id / remote_name: the other node's server_id and server_name (from its HELLO).
// - did_solicit: this node dialed the route; is_configured: the other node is one of this node's
//   --routes seeds (nats-server: an explicit route).
// - ip / port: the other end of the TCP connection (the other node's cluster port when dialed).
// - rtt: measured by PINGs that carry a timestamp, on open and every few seconds; "0s" before the first.
// - last_activity / idle: the last read from the route (idle routes exchange a PING every second).
// - subscriptions: the other node's interest held here (one per subject and per subject + queue
//   group); subs=1 lists their subjects, subs=detail their SubDetail.
// - in_* / out_*: messages and payload bytes received from / sent to the other node.
import type { Server } from "../server.ts";
import type { SubDetail } from "./connz.ts";
import { goDuration, nowNs, rfc3339Ms, rfc3339Ns, uptime } from "./format.ts";

/** nats-server's RouteInfo (import/export, account and compression never apply: omitted, as omitempty leaves them). */
export interface RouteInfo {
  rid: number;
  remote_id: string;
  remote_name: string;
  did_solicit: boolean;
  is_configured: boolean;
  ip: string;
  port: number;
  start: string;
  last_activity: string;
  rtt?: string;
  uptime: string;
  idle: string;
  pending_size: number;
  in_msgs: number;
  out_msgs: number;
  in_bytes: number;
  out_bytes: number;
  subscriptions: number;
  subscriptions_list?: string[];
  subscriptions_list_detail?: SubDetail[];
}

export interface Routez {
  server_id: string;
  server_name: string;
  now: string;
  num_routes: number;
  routes: RouteInfo[];
}

/** server_name is the configured name, "" if none (as nats-server: opts.ServerName). */
export function routez(server: Server, opts: { subs: boolean; detail: boolean } = { subs: false, detail: false }): Routez {
  const now = nowNs();
  const nowMs = Number(now / 1_000_000n);
  const routes: RouteInfo[] = [];
  for (const r of server.cluster?.routeSummaries(opts.subs || opts.detail) ?? []) {
    const info: RouteInfo = {
      rid: r.rid,
      remote_id: r.remoteId,
      remote_name: r.name,
      did_solicit: r.solicited,
      is_configured: r.configured,
      ip: r.ip,
      port: r.port,
      start: rfc3339Ms(r.startedAt),
      last_activity: rfc3339Ms(r.lastActivity),
      // nats-server always writes it (Duration.String() of 0 is "0s").
      rtt: goDuration(r.rttMs < 0 ? 0 : Math.round(r.rttMs * 1e6)),
      uptime: uptime(nowMs - r.startedAt),
      idle: uptime(nowMs - r.lastActivity),
      pending_size: r.pending,
      in_msgs: r.inMsgs,
      out_msgs: r.outMsgs,
      in_bytes: r.inBytes,
      out_bytes: r.outBytes,
      subscriptions: r.subscriptions,
    };
    if (r.subs.length > 0) {
      if (opts.detail) {
        // nats-server's newClientSubDetail: no account field.
        info.subscriptions_list_detail = r.subs.map((s) => ({
          subject: s.subject,
          qgroup: s.queue ?? undefined,
          sid: s.sid,
          msgs: s.msgs,
          max: s.max > 0 ? s.max : undefined,
          cid: r.rid,
        }));
      } else {
        info.subscriptions_list = r.subs.map((s) => s.subject);
      }
    }
    routes.push(info);
  }
  return {
    server_id: server.serverId,
    server_name: server.options.serverName,
    now: rfc3339Ns(now),
    num_routes: routes.length,
    routes,
  };
}
