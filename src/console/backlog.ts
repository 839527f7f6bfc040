// Each consumer's backlog over time, for the Streams page's chart: once a second (the console's timer)
// num_pending and num_ack_pending of every consumer, kept for the last 15 minutes. Bounded: at most
// MAX_CONSUMERS consumers are followed (the first ones seen; a consumer that goes away frees its place),
// two Float64Arrays of CAPACITY each (~14 KiB per consumer).
import type { Server } from "../server.ts";
import { jsz } from "../jetstream/jsz.ts";
import { CAPACITY } from "./history.ts";

export const MAX_CONSUMERS = 64;

interface Track {
  t: Float64Array;
  pending: Float64Array;
  ackPending: Float64Array;
  next: number;
  count: number;
}

export class Backlog {
  private readonly tracks = new Map<string, Track>();

  constructor(private readonly server: Server) {}

  static key(account: string, stream: string, consumer: string): string {
    return `${account}\0${stream}\0${consumer}`;
  }

  sample(nowMs = Date.now()): void {
    const z = jsz(this.server, { accounts: false, streams: true, consumers: true, config: false, account: "" }) as {
      disabled?: boolean;
      account_details?: { name: string; stream_detail?: { name: string; consumer_detail?: { name: string; num_pending: number; num_ack_pending: number }[] }[] }[];
    };
    if (z.disabled) return;
    const seen = new Set<string>();
    for (const a of z.account_details ?? []) {
      for (const s of a.stream_detail ?? []) {
        for (const c of s.consumer_detail ?? []) {
          const key = Backlog.key(a.name, s.name, c.name);
          seen.add(key);
          let track = this.tracks.get(key);
          if (track === undefined) {
            if (this.tracks.size >= MAX_CONSUMERS) continue;
            track = { t: new Float64Array(CAPACITY), pending: new Float64Array(CAPACITY), ackPending: new Float64Array(CAPACITY), next: 0, count: 0 };
            this.tracks.set(key, track);
          }
          track.t[track.next] = Math.round(nowMs / 1000);
          track.pending[track.next] = c.num_pending;
          track.ackPending[track.next] = c.num_ack_pending;
          track.next = (track.next + 1) % CAPACITY;
          if (track.count < CAPACITY) track.count++;
        }
      }
    }
    for (const key of this.tracks.keys()) if (!seen.has(key)) this.tracks.delete(key);
  }

  /** One consumer's samples, oldest first; null when it is not followed. */
  series(account: string, stream: string, consumer: string): { t: number[]; num_pending: number[]; num_ack_pending: number[] } | null {
    const track = this.tracks.get(Backlog.key(account, stream, consumer));
    if (track === undefined) return null;
    const out = { t: [] as number[], num_pending: [] as number[], num_ack_pending: [] as number[] };
    for (let k = 0; k < track.count; k++) {
      const i = (track.next - track.count + k + CAPACITY) % CAPACITY;
      out.t.push(track.t[i]!);
      out.num_pending.push(track.pending[i]!);
      out.num_ack_pending.push(track.ackPending[i]!);
    }
    return out;
  }
}
