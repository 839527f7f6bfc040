// RaftStorage in memory, for tests: a simulated crash keeps the object and builds a new node on it, so
// what the node "persisted" is exactly what a call stored here. Entries are copied in and out, so a node
// never shares objects with its storage.
import { entriesAfterSnapshot } from "./raft-log.ts";
import type { HardState, LogEntry, RaftStorage, Snapshot, StoredRaftState } from "./raft-types.ts";

function copyEntry(e: LogEntry): LogEntry {
  return e.peers ? { ...e, peers: [...e.peers] } : { ...e };
}

export class MemoryRaftStorage implements RaftStorage {
  private hard: HardState = { term: 0, votedFor: "" };
  private snapshot: Snapshot | undefined;
  private entries: LogEntry[] = [];

  load(): StoredRaftState {
    return { hard: { ...this.hard }, snapshot: this.snapshot, entries: this.entries.map(copyEntry) };
  }

  saveHardState(state: HardState): void {
    this.hard = { ...state };
  }

  append(entries: LogEntry[]): void {
    for (const e of entries) {
      const expected = (this.entries.at(-1)?.index ?? this.snapshot?.index ?? 0) + 1;
      if (e.index !== expected) throw new Error(`raft storage: append of ${e.index}, expected ${expected}`);
      this.entries.push(copyEntry(e));
    }
  }

  truncateFrom(index: number): void {
    this.entries = this.entries.filter((e) => e.index < index);
  }

  saveSnapshot(snapshot: Snapshot): void {
    this.entries = entriesAfterSnapshot(this.entries, snapshot);
    this.snapshot = { ...snapshot, peers: [...snapshot.peers] };
  }

  loadSnapshot(): Snapshot | undefined {
    return this.snapshot;
  }

  close(): void {}
}

