// What /connz?state=closed reports: a snapshot of each client at the moment it closed, kept in a
// bounded ring (nats-server keeps the last 10000, MaxClosedClients).
import type { Connection } from "../connection.ts";
import { type ConnRecord, connRecord } from "./connz.ts";

export const DEFAULT_MAX_CLOSED = 10_000;

export class ClosedConnections {
  private readonly ring: (ConnRecord | undefined)[];
  /** Connections ever appended (the ring holds the last `max` of them). */
  private total = 0;

  constructor(readonly max: number = DEFAULT_MAX_CLOSED) {
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`max must be a positive integer, got ${max}`);
    this.ring = new Array<ConnRecord | undefined>(max);
  }

  get size(): number {
    return Math.min(this.total, this.max);
  }

  /** Snapshots a closing connection (its counters, subscriptions still held, close reason). */
  add(conn: Connection, stopMs: number = Date.now()): void {
    this.append(connRecord(conn, stopMs, conn.closeReason || "Client Closed"));
  }

  append(record: ConnRecord): void {
    this.ring[this.total % this.max] = record;
    this.total++;
  }

  /** Oldest first. */
  list(): ConnRecord[] {
    const n = this.size;
    const out = new Array<ConnRecord>(n);
    const head = this.total > this.max ? this.total % this.max : 0;
    for (let k = 0; k < n; k++) out[k] = this.ring[(head + k) % this.max]!;
    return out;
  }
}
