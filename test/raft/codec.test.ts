// Every Raft message survives the wire unchanged; what is not a Raft message is refused.
import { encode } from "@msgpack/msgpack";
import { describe, expect, it } from "vitest";
import {
  RaftCodecError, decodeEntry, decodeMessage, decodeSnapshot, encodeEntry, encodeMessage, encodeSnapshot,
} from "../../src/jetstream/cluster/raft-codec.ts";
import { EntryType, type LogEntry, type RaftMessage } from "../../src/jetstream/cluster/raft-types.ts";

const entries: LogEntry[] = [
  { index: 7, term: 3, type: EntryType.Command, data: new Uint8Array([1, 2, 3, 0, 255]) },
  { index: 8, term: 3, type: EntryType.Noop },
  { index: 9, term: 4, type: EntryType.Config, peers: ["a", "b", "c"] },
  { index: 10, term: 4, type: EntryType.Command, data: new Uint8Array(0) },
];

const messages: RaftMessage[] = [
  { type: "vote", from: "a", term: 5, lastLogIndex: 10, lastLogTerm: 4, preVote: true, transfer: false },
  { type: "vote", from: "a", term: 5, lastLogIndex: 0, lastLogTerm: 0, preVote: false, transfer: true },
  { type: "voteResp", from: "b", term: 5, preVote: false, granted: true },
  { type: "append", from: "a", term: 5, prevLogIndex: 6, prevLogTerm: 3, entries, commit: 6, round: 12 },
  { type: "append", from: "a", term: 5, prevLogIndex: 10, prevLogTerm: 4, entries: [], commit: 10, round: 13 },
  { type: "appendResp", from: "b", term: 5, success: false, matchIndex: 0, rejectedIndex: 6, conflictTerm: 2, conflictIndex: 4, round: 12 },
  { type: "snapshot", from: "a", term: 5, round: 3, snapshot: { index: 100, term: 4, peers: ["a", "b"], data: new Uint8Array(70_000).fill(9) } },
  { type: "snapshotResp", from: "b", term: 5, matchIndex: 100, round: 3 },
  { type: "timeoutNow", from: "a", term: 5 },
];

describe("raft codec", () => {
  it("round-trips every message type", () => {
    for (const m of messages) expect(decodeMessage(encodeMessage(m))).toEqual(m);
  });

  it("round-trips log entries and snapshots (the storage records)", () => {
    for (const e of entries) expect(decodeEntry(encodeEntry(e))).toEqual(e);
    const snap = { index: 3, term: 1, peers: ["x"], data: new Uint8Array([5]) };
    expect(decodeSnapshot(encodeSnapshot(snap))).toEqual(snap);
  });

  it("refuses what is not a Raft message", () => {
    const bad: unknown[] = [
      [1, 2],
      "vote",
      { type: "nope", from: "a", term: 1 },
      { type: "vote", from: "a", term: -1, lastLogIndex: 0, lastLogTerm: 0, preVote: false, transfer: false },
      { type: "vote", from: "a", term: 1.5, lastLogIndex: 0, lastLogTerm: 0, preVote: false, transfer: false },
      { type: "voteResp", from: 3, term: 1, preVote: false, granted: true },
      { type: "append", from: "a", term: 1, prevLogIndex: 0, prevLogTerm: 0, entries: {}, commit: 0, round: 0 },
      { type: "append", from: "a", term: 1, prevLogIndex: 0, prevLogTerm: 0, entries: [{ index: 1, term: 1, type: 0 }], commit: 0, round: 0 },
      { type: "append", from: "a", term: 1, prevLogIndex: 0, prevLogTerm: 0, entries: [{ index: 1, term: 1, type: 9 }], commit: 0, round: 0 },
      { type: "snapshot", from: "a", term: 1, round: 0, snapshot: { index: 1, term: 1, peers: [1], data: new Uint8Array() } },
    ];
    for (const b of bad) expect(() => decodeMessage(encode(b)), JSON.stringify(b)).toThrow(RaftCodecError);
  });
});
