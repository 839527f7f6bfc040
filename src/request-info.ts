// Who sent a JetStream API request, as nats-server tells its API handlers: the ClientInfo that its
// service import of `$JS.API.>` puts in a `Nats-Request-Info` header where the client is connected
// (client.go processServiceImport: getClientInfo(false) plus the server and cluster), and which travels
// with the request across routes. The API's audit advisory names it (src/jetstream/api-audit.ts).
//
// natter's JetStream API subscribes in the account itself (no service import), so the node where the
// client is connected knows the publisher of the request it delivers, and a route frame of such a request
// carries this JSON to the other nodes (src/cluster/protocol.ts, REQUEST_INFO): the node that answers
// has it whichever node the client is on. Requests the audit never names (pull requests, direct gets)
// carry nothing.
import { Connection } from "./connection.ts";
import { InternalClient } from "./internal-client.ts";
import type { EventClientInfo } from "./accounts/events.ts";
import type { Server } from "./server.ts";
import type { Subscriber } from "./subscriber.ts";
import { msToDuration } from "./monitor/format.ts";

const API_PREFIX = Buffer.from("$JS.API.", "latin1");
const UNAUDITED = [Buffer.from("$JS.API.CONSUMER.MSG.", "latin1"), Buffer.from("$JS.API.DIRECT.", "latin1")];

/** buf[start, end) is a JetStream API subject whose answer is audited (not a pull request, not a direct get). */
export function isAuditedApiSubject(buf: Buffer, start: number, end: number): boolean {
  if (buf[start] !== 36 /* $ */ || !startsWith(buf, start, end, API_PREFIX)) return false;
  for (const prefix of UNAUDITED) if (startsWith(buf, start, end, prefix)) return false;
  return true;
}

function startsWith(buf: Buffer, start: number, end: number, prefix: Buffer): boolean {
  if (end - start < prefix.length) return false;
  for (let k = 0; k < prefix.length; k++) if (buf[start + k] !== prefix[k]) return false;
  return true;
}

/**
 * The ClientInfo of a request published here by `publisher` (nats-server's fields for a request through
 * the system account's service import: acc, rtt, server, cluster); null for a publisher that is not a
 * client or internal client of this server (a route, a leaf link: what they carry is theirs to say).
 */
export function requestClientInfo(publisher: Subscriber | null | undefined, server: Server): EventClientInfo | null {
  if (publisher instanceof Connection) {
    const rtt = msToDuration(publisher.rttMs);
    return withServer({ acc: publisher.account.name, ...(rtt > 0 ? { rtt } : {}) }, server);
  }
  if (publisher instanceof InternalClient) return withServer({ acc: publisher.account.name }, server);
  return null;
}

function withServer(info: EventClientInfo, server: Server): EventClientInfo {
  info.server = server.serverName;
  const cluster = server.cluster?.name;
  if (cluster) info.cluster = cluster;
  return info;
}

/** The same as JSON, for a route frame; null where requestClientInfo has none. */
export function requestClientInfoJson(publisher: Subscriber | null | undefined, server: Server): string | null {
  const info = requestClientInfo(publisher, server);
  return info === null ? null : JSON.stringify(info);
}
