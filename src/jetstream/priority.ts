// Priority groups of pull consumers (nats-server 2.11): what a pull request asks for, and the pin of a
// `pinned_client` consumer.
//
// - overflow: a request with `min_pending` / `min_ack_pending` is served only while the consumer has at least
//   that many messages pending / awaiting acks (a standby that helps when the main workers fall behind).
// - pinned_client: one client (the pin, a nuid given to the first request served) gets the messages; its
//   deliveries carry `Nats-Pin-Id`; requests without the id wait, requests with another id get 423. The pin
//   goes after `priority_timeout` without a request carrying it, or on `$JS.API.CONSUMER.UNPIN`.
import type { ConsumerConfig } from "./config.ts";

/** A pull request's priority fields (JSON requests only; a plain batch number has none). */
export interface PullPriority {
  group: string;
  id: string;
  minPending: number;
  minAckPending: number;
  priority: number;
}

export function pullPriorityOf(req: Record<string, unknown>): PullPriority {
  const str = (k: string) => (typeof req[k] === "string" ? (req[k] as string) : "");
  const num = (k: string) => (typeof req[k] === "number" ? (req[k] as number) : 0);
  return { group: str("group"), id: str("id"), minPending: num("min_pending"), minAckPending: num("min_ack_pending"), priority: num("priority") };
}

/**
 * nats-server's checks of a request's priority fields, in its order: the status line to answer with
 * (the request then ends), or null. `pinId` is the consumer's current pin ("" for none).
 */
export function pullPriorityError(pg: PullPriority, c: ConsumerConfig, pinId: string): string | null {
  const policy = c.priority_policy;
  if ((pg.minPending !== 0 || pg.minAckPending !== 0) && policy !== "overflow") return "400 Bad Request - Not a Overflow Priority consumer";
  if (pg.id !== "" && policy !== "pinned_client") return "400 Bad Request - Not a Pinned Client Priority consumer";
  if (pg.priority < 0 || pg.priority > 9) return "400 Bad Request - Priority must be between 0 and 9";
  if (policy === undefined) return null;
  if (pg.group === "") return "400 Bad Request - Priority Group missing";
  if (!(c.priority_groups ?? []).includes(pg.group)) return "400 Bad Request - Invalid Priority Group";
  if (pinId !== "" && pg.id !== "" && pg.id !== pinId) return "423 Nats-Pin-Id mismatch";
  return null;
}

/** overflow: may this request be served now (it asked for no minimum, or one of them is reached)? */
export function overflowAllows(pg: PullPriority | null, numPending: number, numAckPending: number): boolean {
  if (pg === null || (pg.minPending <= 0 && pg.minAckPending <= 0)) return true;
  return (pg.minPending > 0 && pg.minPending <= numPending) || (pg.minAckPending > 0 && pg.minAckPending <= numAckPending);
}

/** The pin of a pinned_client consumer (one group). */
export class Pin {
  id = "";
  /** When it was given (ms), 0 when none. */
  at = 0;
  /** When it goes unless a request carrying it comes first (ms). */
  deadline = 0;

  assign(id: string, now: number, ttlMs: number): void {
    this.id = id;
    this.at = now;
    this.deadline = now + ttlMs;
  }

  /** A request carrying the pin: it stays another priority_timeout. */
  touch(now: number, ttlMs: number): void {
    this.deadline = now + ttlMs;
  }

  clear(): void {
    this.id = "";
    this.at = 0;
    this.deadline = 0;
  }
}
