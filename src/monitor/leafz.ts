// /leafz: nats-server's Leafz and LeafInfo (server/monitor.go, v2.10.0), field for field, in its order,
// from the open leaf connections (src/leaf), both the hubs this server dialed and the leaf nodes that
// dialed it. Also the `leaf` block of /varz (nats-server's LeafNodeOptsVarz).
//
// - name: the other server's name (its server_name, or server_id when it has none).
// - is_spoke: this server plays the spoke on that connection (nats-server's isSpokeLeafNode): true on a
//   leaf for its link to the hub, false on the hub for a leaf that dialed it (LeafConnection.isSpoke).
// - ip / port: the other end of the connection; rtt: the last PING's round trip ("0s" before one).
// - in_* / out_*: messages and payload bytes received from / sent to the other side.
// - subscriptions: the other side's interest held here; subs=1 lists its subjects.
// - account: the account the link carries (a remote's `account`, or the leaf's user's account).
// `leafs` is null when there are none (nats-server leaves the slice nil).
import type { Server } from "../server.ts";
import { GLOBAL_ACCOUNT } from "../leaf/protocol.ts";
import { DEFAULT_LEAF_TLS_TIMEOUT_MS } from "../leaf/tls.ts";
import { parseLeafUrl } from "../leaf/options.ts";
import { goDuration, nowNs, rfc3339Ns } from "./format.ts";

/** nats-server's LeafInfo (compression: omitempty, natter negotiates none). */
export interface LeafInfo {
  name: string;
  is_spoke: boolean;
  account: string;
  ip: string;
  port: number;
  rtt?: string;
  in_msgs: number;
  out_msgs: number;
  in_bytes: number;
  out_bytes: number;
  subscriptions: number;
  subscriptions_list?: string[];
}

export interface Leafz {
  server_id: string;
  now: string;
  leafnodes: number;
  leafs: LeafInfo[] | null;
}

/** `subs`: list each connection's subscriptions; `account`: only connections bound to it ("" = all). */
export function leafz(server: Server, opts: { subs: boolean; account: string } = { subs: false, account: "" }): Leafz {
  const leafs: LeafInfo[] = [];
  for (const c of server.leafnodes?.open ?? []) {
    if (opts.account !== "" && opts.account !== c.account.name) continue;
    const info: LeafInfo = {
      name: c.remoteServer,
      is_spoke: c.isSpoke,
      account: c.account.name,
      ip: c.socket.remoteAddress,
      port: c.socket.remotePort,
      rtt: goDuration(c.rttMs < 0 ? 0 : Math.round(c.rttMs * 1e6)),
      in_msgs: c.inMsgs,
      out_msgs: c.outMsgs,
      in_bytes: c.inBytes,
      out_bytes: c.outBytes,
      subscriptions: c.subs.size,
    };
    if (opts.subs) info.subscriptions_list = [...c.subs.values()].map((s) => s.subject);
    leafs.push(info);
  }
  return { server_id: server.serverId, now: rfc3339Ns(nowNs()), leafnodes: leafs.length, leafs: leafs.length > 0 ? leafs : null };
}

/** nats-server's RemoteLeafOptsVarz. */
export interface RemoteLeafVarz {
  local_account?: string;
  /** Seconds (float64). */
  tls_timeout?: number;
  /** host:port of each configured URL. */
  urls?: string[];
}

/** nats-server's LeafNodeOptsVarz (all omitempty: {} without leafnodes). */
export interface LeafVarz {
  host?: string;
  port?: number;
  /** Seconds (float64). */
  auth_timeout?: number;
  tls_timeout?: number;
  tls_required?: boolean;
  tls_verify?: boolean;
  remotes?: RemoteLeafVarz[];
}

/** The `leaf` block of /varz. */
export function leafVarz(server: Server): LeafVarz {
  const ln = server.leafnodes;
  if (ln === null) return {};
  const o = ln.options;
  const v: LeafVarz = {};
  if (o.port !== 0) {
    const tls = o.tls;
    const tlsTimeoutMs = tls?.timeoutMs || DEFAULT_LEAF_TLS_TIMEOUT_MS;
    v.host = o.host;
    v.port = ln.port;
    v.auth_timeout = (o.authorization?.timeoutMs || (tls !== null ? tlsTimeoutMs + 1000 : 2000)) / 1000;
    v.tls_timeout = tlsTimeoutMs / 1000;
    if (tls !== null) v.tls_required = true;
    if (tls?.verify) v.tls_verify = true;
  }
  if (o.remotes.length > 0) {
    v.remotes = o.remotes.map((r) => ({
      local_account: r.account || GLOBAL_ACCOUNT,
      tls_timeout: r.tls !== undefined ? (r.tls.timeoutMs || DEFAULT_LEAF_TLS_TIMEOUT_MS) / 1000 : undefined,
      urls: r.urls.map((u) => {
        const p = parseLeafUrl(u);
        return `${p.host.includes(":") ? `[${p.host}]` : p.host}:${p.port}`;
      }),
    }));
  }
  return v;
}
