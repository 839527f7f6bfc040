// /accountz: nats-server's Accountz and AccountInfo (server/monitor.go), the fields that apply without
// JWTs: the list of account names, or with `acc=NAME` that account's details (connections,
// subscriptions, exports and imports as configured, its Sublist's stats).
import type { Server } from "../server.ts";
import type { SublistStats } from "../subjects/sublist.ts";
import { nowNs, rfc3339Ns } from "./format.ts";
import { BadRequest } from "./query.ts";

/** jwt.Export plus ExtExport's approved_accounts. */
export interface ExtExport {
  subject: string;
  type: "stream" | "service";
  response_type?: string;
  /** Go's time.Duration in JSON: nanoseconds. */
  response_threshold?: number;
  approved_accounts: string[];
}

/** jwt.Import plus ExtImport's flags. */
export interface ExtImport {
  subject: string;
  account: string;
  to?: string;
  local_subject?: string;
  type: "stream" | "service";
  invalid: boolean;
  share: boolean;
  tracking: boolean;
}

export interface AccountInfo {
  account_name: string;
  update_time: string;
  is_system?: boolean;
  expired: boolean;
  complete: boolean;
  jetstream_enabled: boolean;
  leafnode_connections: number;
  client_connections: number;
  subscriptions: number;
  exports?: ExtExport[];
  imports?: ExtImport[];
  sublist_stats?: SublistStats;
}

export interface Accountz {
  server_id: string;
  now: string;
  system_account?: string;
  accounts?: string[];
  account_detail?: AccountInfo;
}

/** nats-server's ServiceRespType.String(). */
const RESPONSE_TYPES = { singleton: "Singleton", stream: "Stream", chunked: "Chunked" } as const;

export function accountz(server: Server, acc: string): Accountz {
  const z: Accountz = { server_id: server.serverId, now: rfc3339Ns(nowNs()), system_account: server.accounts.system?.name };
  if (acc === "") {
    z.accounts = [...server.accounts.all()].map((a) => a.name);
    return z;
  }
  const account = server.accounts.get(acc);
  if (account === undefined) throw new BadRequest(`Account ${acc} does not exist`);
  const configured = server.options.accounts.find((a) => a.name === acc);
  const exports: ExtExport[] = (configured?.exports ?? []).map((x) => ({
    subject: x.subject,
    type: x.kind,
    response_type: x.kind === "service" ? RESPONSE_TYPES[x.responseType ?? "singleton"] : undefined,
    response_threshold: x.kind === "service" && x.responseThresholdMs !== undefined ? x.responseThresholdMs * 1e6 : undefined,
    approved_accounts: [...(x.accounts ?? [])],
  }));
  const imports: ExtImport[] = (configured?.imports ?? []).map((x) => {
    const local = x.kind === "stream" && x.prefix ? `${x.prefix.replace(/\.$/, "")}.${x.subject}` : (x.to ?? x.subject);
    return {
      subject: x.subject,
      account: x.account,
      to: x.kind === "service" ? local : undefined,
      local_subject: local,
      type: x.kind,
      invalid: false,
      share: false,
      tracking: false,
    };
  });
  z.account_detail = {
    account_name: account.name,
    update_time: rfc3339Ns(BigInt(server.startedAt.getTime()) * 1_000_000n),
    is_system: account.isSystem || undefined,
    expired: false,
    complete: true,
    jetstream_enabled: account.jetstream !== null,
    leafnode_connections: account.leafnodes,
    client_connections: account.connections,
    subscriptions: account.sublist.count,
    exports,
    imports,
    sublist_stats: account.sublist.stats(),
  };
  return z;
}
