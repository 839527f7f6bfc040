// A durable's state as a replicated stream's log carries it (src/jetstream/cluster/carried-state.ts): the
// pending list as differences round-trips (times to the millisecond), is several times smaller as JSON, and
// a state written before (pending as triples) reads as it was.
import { describe, expect, test } from "vitest";
import { carryState, uncarryState } from "../../src/jetstream/cluster/carried-state.ts";
import type { ConsumerState } from "../../src/jetstream/consumer.ts";

const T = 1_765_000_000_000.25;

function stateWith(pending: [number, number, number][]): ConsumerState {
  return { sseq: 5001, dseq: 4001, ack_floor: { stream_seq: 1000, consumer_seq: 3 }, pending, redelivered: [[1003, 2]] };
}

describe("carried consumer state", () => {
  test("round-trips in order, out-of-order sequences (a redelivery, last per subject) too; times to the ms", () => {
    const pending: [number, number, number][] = [[1001, 4, T], [1003, 5, T + 0.4], [1002, 7, T + 12.7], [5000, 4000, T - 3]];
    const back = uncarryState(JSON.parse(JSON.stringify(carryState(stateWith(pending)))));
    expect(back).toEqual(stateWith(pending.map(([s, d, ts]) => [s, d, Math.round(ts)])));
    expect(uncarryState(carryState(stateWith([])))).toEqual(stateWith([]));
  });

  test("a thousand messages delivered in order: under a fifth of the JSON", () => {
    const pending = Array.from({ length: 1000 }, (_, i): [number, number, number] => [100_000 + i, 90_000 + i, T + i * 0.013]);
    const before = JSON.stringify(stateWith(pending)).length;
    const carried = JSON.stringify(carryState(stateWith(pending))).length;
    expect(carried * 5).toBeLessThan(before);
  });

  test("a state written before (pending as triples) reads as it was", () => {
    const old = stateWith([[1001, 4, T], [1002, 5, T + 1]]);
    expect(uncarryState(JSON.parse(JSON.stringify(old)))).toEqual(old);
  });
});
