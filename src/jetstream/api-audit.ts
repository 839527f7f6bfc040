// The JetStream API audit advisory (nats-server's sendJetStreamAPIAuditAdvisory, jetstream_api.go): each
// answer to an API request is also published on `$JS.EVENT.ADVISORY.API` in the requester's account, as
// `io.nats.jetstream.advisory.v1.api_audit` with the answering server's name, the requester's ClientInfo
// (src/request-info.ts), the request's subject and body and the answer as sent. nats-server sends it from
// sendAPIResponse / sendAPIErrResponse, so every answer but a message got by STREAM.MSG.GET (answered
// without them); pull requests and direct gets are not API answers. In a cluster the node that answers
// sends it, once: a request that reached it over a route, or through a Raft log (CarriedRequest.client),
// names the client on the node where it was sent.
import type { InternalMessage } from "../internal-client.ts";
import type { EventClientInfo } from "../accounts/events.ts";
import { requestClientInfo } from "../request-info.ts";
import type { Server } from "../server.ts";
import { nuid } from "./nuid.ts";
import { nowMs } from "./store/indexed.ts";
import { rfc3339 } from "./wire.ts";

export const API_AUDIT_SUBJECT = "$JS.EVENT.ADVISORY.API";

/** nats-server's JSAPIAudit. */
export interface ApiAuditAdvisory {
  type: "io.nats.jetstream.advisory.v1.api_audit";
  id: string;
  timestamp: string;
  server: string;
  client: EventClientInfo | null;
  subject: string;
  request?: string;
  response: string;
  domain?: string;
}

/**
 * The inbox of the requests a meta leader sends the holders of streams to compose an answer (stream list,
 * account info: clustered-api.ts ask): the cluster's own plumbing (nats-server's are on internal
 * subjects), so their answers are not audited; the answer to the client is.
 */
export const GATHER_INBOX_PREFIX = "$JSC.GATHER.";

/** Whether the answer of `type` to request `m` is audited: all but a message STREAM.MSG.GET found, and the gathering. */
export function isAudited(m: InternalMessage, type: string, failed: boolean): boolean {
  if (m.reply !== null && m.reply.startsWith(GATHER_INBOX_PREFIX)) return false;
  return type !== "stream_msg_get_response" || failed;
}

/** Who sent the request: what the route or the log carried, else its publisher on this server (null: unknown). */
export function requesterOf(m: InternalMessage, server: Server): EventClientInfo | null {
  if (m.requestInfo != null) {
    try {
      return JSON.parse(m.requestInfo) as EventClientInfo;
    } catch {
      return null;
    }
  }
  return requestClientInfo(m.from, server);
}

export function apiAudit(server: Server, m: InternalMessage, response: string, domain: string): ApiAuditAdvisory {
  const request = m.payload.toString();
  return {
    type: "io.nats.jetstream.advisory.v1.api_audit",
    id: nuid(),
    timestamp: rfc3339(nowMs()),
    server: server.serverName,
    client: requesterOf(m, server),
    subject: m.subject,
    ...(request !== "" ? { request } : {}),
    response,
    ...(domain !== "" ? { domain } : {}),
  };
}
