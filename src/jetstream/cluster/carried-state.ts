// A durable's state as a replicated stream's log carries it (stream-replica.ts, CONSUMER_STATE entries and
// snapshots). The leader proposes the whole state at most every 20 ms, pending list included: under a pull
// consumer a thousand messages in flight, 34 KB of `[stream seq, consumer seq, delivered at]` triples per
// entry, written to the log and sent to every follower (a tenth of the leader's time during pull consume +
// ack went to those socket writes). Carried, the pending list is one flat array of differences from the
// entry before (delivery order: mostly `1,1,0`), times in whole milliseconds (what an ack wait needs after
// a failover), about six times smaller. nats-server encodes its consumer state the same way (differences
// from the ack floor, varints). States written before (`pending` as triples) are read as they are.
import type { ConsumerState } from "../consumer.ts";

export interface CarriedState {
  sseq: number;
  dseq: number;
  ack_floor: { stream_seq: number; consumer_seq: number };
  /** Logs written before: [stream seq, consumer seq, delivered at (ms)]. */
  pending?: [number, number, number][];
  /** Per pending message in order: stream seq, consumer seq and delivered at (whole ms), each less the previous one's (the first: less 0). */
  pending_deltas?: number[];
  redelivered: [number, number][];
}

export function carryState(s: ConsumerState): CarriedState {
  const deltas: number[] = new Array(s.pending.length * 3);
  let sseq = 0;
  let dseq = 0;
  let ts = 0;
  let k = 0;
  for (const [ps, pd, pts] of s.pending) {
    const ms = Math.round(pts);
    deltas[k++] = ps - sseq;
    deltas[k++] = pd - dseq;
    deltas[k++] = ms - ts;
    sseq = ps;
    dseq = pd;
    ts = ms;
  }
  return { sseq: s.sseq, dseq: s.dseq, ack_floor: s.ack_floor, pending_deltas: deltas, redelivered: s.redelivered };
}

export function uncarryState(s: CarriedState): ConsumerState {
  let pending = s.pending ?? [];
  if (s.pending_deltas !== undefined) {
    const d = s.pending_deltas;
    pending = new Array(Math.floor(d.length / 3));
    let sseq = 0;
    let dseq = 0;
    let ts = 0;
    for (let i = 0; i + 2 < d.length; i += 3) {
      sseq += d[i]!;
      dseq += d[i + 1]!;
      ts += d[i + 2]!;
      pending[i / 3] = [sseq, dseq, ts];
    }
  }
  return { sseq: s.sseq, dseq: s.dseq, ack_floor: s.ack_floor, pending, redelivered: s.redelivered };
}
