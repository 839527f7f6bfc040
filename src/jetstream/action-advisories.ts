// nats-server's action advisories: `$JS.EVENT.ADVISORY.STREAM.CREATED|UPDATED|DELETED.<stream>`
// (io.nats.jetstream.advisory.v1.stream_action) and `$JS.EVENT.ADVISORY.CONSUMER.CREATED|DELETED.<stream>.<consumer>`
// (…consumer_action), in the stream's account. An API handler attaches them to its answer's body (under a
// symbol, so they never reach the JSON); they go out with the answer, just before it (jetstream/api.ts). In a
// cluster every replica runs the handler but one node answers, so each advisory goes out once.
import { nuid } from "./nuid.ts";
import { rfc3339 } from "./wire.ts";

export type Advisory = readonly [subject: string, body: object];

const ADVISORIES: unique symbol = Symbol("advisories");

type Action = "create" | "modify" | "delete";
const SUFFIX: Record<Action, string> = { create: "CREATED", modify: "UPDATED", delete: "DELETED" };

export function streamAction(stream: string, action: Action, domain: string): Advisory {
  return [`$JS.EVENT.ADVISORY.STREAM.${SUFFIX[action]}.${stream}`, {
    type: "io.nats.jetstream.advisory.v1.stream_action", id: nuid(), timestamp: rfc3339(Date.now()),
    stream, action, ...(domain !== "" ? { domain } : {}),
  }];
}

export function consumerAction(stream: string, consumer: string, action: "create" | "delete", domain: string): Advisory {
  return [`$JS.EVENT.ADVISORY.CONSUMER.${SUFFIX[action]}.${stream}.${consumer}`, {
    type: "io.nats.jetstream.advisory.v1.consumer_action", id: nuid(), timestamp: rfc3339(Date.now()),
    stream, consumer, action, ...(domain !== "" ? { domain } : {}),
  }];
}

/** `body` with advisories to send along with it. */
export function withAdvisories<T extends object>(body: T, advisories: Advisory[]): T {
  (body as { [ADVISORIES]?: Advisory[] })[ADVISORIES] = advisories;
  return body;
}

/** The advisories attached to `body` (none: an empty list). */
export function advisoriesOf(body: object): Advisory[] {
  return (body as { [ADVISORIES]?: Advisory[] })[ADVISORIES] ?? [];
}
