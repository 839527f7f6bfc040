// /subsz (alias /subscriptionsz): nats-server's Subsz and SublistStats. (/routez: routez.ts.)
import type { Server } from "../server.ts";
import { InternalClient } from "../internal-client.ts";
import type { SublistStats } from "../subjects/sublist.ts";
import { isValidPublishSubject, subjectMatches } from "../subjects/subject.ts";
import { GLOBAL_ACCOUNT, type SubDetail } from "./connz.ts";
import { nowNs, rfc3339Ns } from "./format.ts";
import { BadRequest, queryBool, queryInt } from "./query.ts";

/** nats-server's DefaultSubListSize. */
export const DEFAULT_SUB_LIST_SIZE = 1024;

export interface Subsz extends SublistStats {
  server_id: string;
  now: string;
  total: number;
  offset: number;
  limit: number;
  subscriptions_list?: SubDetail[];
}

/**
 * nats-server's HandleSubsz: the sublist statistics alone, or (subs=1, and something to list) the
 * Subsz wrapper with the page of subscriptions. `test=<subject>` keeps the subscriptions a message
 * on that literal subject would reach. As in nats-server, `total` is the size of the page.
 */
export function subsz(server: Server, q: URLSearchParams): SublistStats | Subsz {
  const detail = queryBool(q, "subs");
  let offset = queryInt(q, "offset");
  let limit = queryInt(q, "limit");
  const test = q.get("test") ?? "";
  if (offset < 0) offset = 0;
  if (limit <= 0) limit = DEFAULT_SUB_LIST_SIZE;
  if (test !== "" && !isValidPublishSubject(test)) {
    throw new BadRequest(`invalid test subject, must be valid publish subject: ${test}`);
  }
  const now = nowNs();
  const stats = server.sublist.stats();
  if (!detail) return stats;
  const account = q.get("acc") ?? "";
  const list: SubDetail[] = [];
  if (account === "" || account === GLOBAL_ACCOUNT) {
    for (const conn of server.connections.values()) {
      for (const sub of conn.subscriptions.values()) {
        if (test !== "" && !subjectMatches(sub.subject, test)) continue;
        list.push({
          account: GLOBAL_ACCOUNT,
          subject: sub.subject,
          qgroup: sub.queue ?? undefined,
          sid: sub.sid,
          msgs: sub.delivered,
          max: sub.max > 0 ? sub.max : undefined,
          cid: conn.cid,
        });
      }
    }
  }
  // The server's own subscriptions (JetStream's direct gets, API, system services), as nats-server lists its
  // internal clients': in their account, with what they received.
  for (const acc of server.accounts.all()) {
    if (account !== "" && account !== acc.name) continue;
    for (const sub of acc.sublist.all()) {
      if (!(sub.client instanceof InternalClient)) continue;
      if (test !== "" && !subjectMatches(sub.subject, test)) continue;
      list.push({ account: acc.name, subject: sub.subject, qgroup: sub.queue ?? undefined, sid: sub.sid, msgs: sub.delivered, max: sub.max > 0 ? sub.max : undefined, cid: 0 });
    }
  }
  const page = list.slice(Math.min(offset, list.length), Math.min(offset + limit, list.length));
  if (page.length === 0) return stats;
  return { server_id: server.serverId, now: rfc3339Ns(now), ...stats, total: page.length, offset, limit, subscriptions_list: page };
}
