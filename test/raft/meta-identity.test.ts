// The meta group's identity (meta.ts, meta-group.ts): how STATUS frames carry it (old 1-byte bodies stay
// readable), which of two groups that meet dissolves, and the identity in the meta state's snapshot.
import { describe, expect, test } from "vitest";
import { decodeStatus, encodeStatus, mergeLoser } from "../../src/jetstream/cluster/meta-group.ts";
import { MetaState } from "../../src/jetstream/cluster/meta.ts";

const g = (founder: string, founded = 1000) => ({ founder, founded });

describe("meta group identity", () => {
  test("STATUS bodies: with the group, and the old 1-byte ones", () => {
    const status = { state: 2, group: g("127.0.0.1:4001"), voters: 3, streams: 2 };
    expect(decodeStatus(encodeStatus(status))).toEqual(status);
    expect(encodeStatus({ state: 0 })).toEqual(Uint8Array.of(0));
    for (const state of [0, 1, 2]) expect(decodeStatus(Uint8Array.of(state))).toEqual({ state });
    expect(decodeStatus(new Uint8Array())).toEqual({ state: 0 });
    expect(decodeStatus(Buffer.concat([Uint8Array.of(1), Buffer.from("{nope")]))).toEqual({ state: 1 });
  });

  test("which group dissolves when two meet", () => {
    const view = (founder: string, voters: number, streams: number, founded = 1000) => ({ group: g(founder, founded), voters, streams });
    expect(mergeLoser(view("a", 1, 0), view("b", 1, 0))).toBe("theirs"); // tie: the higher founder id
    expect(mergeLoser(view("b", 1, 0), view("a", 1, 0))).toBe("ours");
    expect(mergeLoser(view("b", 2, 0), view("a", 1, 0))).toBe("theirs"); // fewer voters
    expect(mergeLoser(view("a", 3, 0), view("b", 1, 4))).toBe("ours"); // the empty one, whatever its size
    expect(mergeLoser(view("a", 1, 1), view("b", 1, 1))).toBe("conflict");
    expect(mergeLoser(view("a", 1, 0, 5), view("a", 1, 0, 7))).toBe("theirs"); // same founder: the later founding
  });

  test("the identity is in the snapshot; snapshots from before it restore without one", () => {
    const state = new MetaState();
    expect(state.apply({ op: "group.found", group: g("n1", 42) })).toBe(true);
    expect(state.apply({ op: "group.found", group: g("n2", 43) })).toBe(false); // named once
    const copy = new MetaState();
    copy.restore(state.snapshot());
    expect(copy.group).toEqual(g("n1", 42));
    copy.restore(Buffer.from(JSON.stringify({ streams: [], removed: [] })));
    expect(copy.group).toBeUndefined();
    copy.restore(Buffer.from("[]"));
    expect(copy.group).toBeUndefined();
  });
});
