// A node's log in memory: the entries after its latest snapshot. Storage (raft-file-storage.ts) keeps the
// durable copy; the node changes both together.
//
// Indexes start at 1. Index `snapshotIndex` is known only by its term (its entry is compacted away);
// index 0 has term 0, so an empty log matches any leader's log at 0.
import { EntryType, type LogEntry, type Snapshot } from "./raft-types.ts";

export class RaftLog {
  snapshotIndex = 0;
  snapshotTerm = 0;
  /** entries[i] is the entry at index snapshotIndex + 1 + i. */
  private entries: LogEntry[] = [];

  lastIndex(): number {
    return this.snapshotIndex + this.entries.length;
  }

  lastTerm(): number {
    return this.entries.length > 0 ? this.entries[this.entries.length - 1]!.term : this.snapshotTerm;
  }

  firstIndex(): number {
    return this.snapshotIndex + 1;
  }

  /** The term at `index`, or undefined when it is compacted away or beyond the end. */
  term(index: number): number | undefined {
    if (index === this.snapshotIndex) return this.snapshotTerm;
    if (index < this.snapshotIndex || index > this.lastIndex()) return undefined;
    return this.entries[index - this.snapshotIndex - 1]!.term;
  }

  entry(index: number): LogEntry | undefined {
    if (index <= this.snapshotIndex) return undefined;
    return this.entries[index - this.snapshotIndex - 1];
  }

  /** Entries from `from` (> snapshotIndex) on, at most `max` of them. */
  slice(from: number, max: number): LogEntry[] {
    const start = from - this.snapshotIndex - 1;
    return this.entries.slice(start, start + max);
  }

  append(entries: LogEntry[]): void {
    for (const e of entries) {
      if (e.index !== this.lastIndex() + 1) {
        throw new Error(`raft log: append of index ${e.index} after ${this.lastIndex()}`);
      }
      this.entries.push(e);
    }
  }

  /** Removes every entry at or after `index`. */
  truncateFrom(index: number): void {
    if (index <= this.snapshotIndex) throw new Error(`raft log: truncate at ${index} inside the snapshot`);
    this.entries.length = Math.max(0, index - this.snapshotIndex - 1);
  }

  /**
   * The log now starts after a snapshot at (index, term). Entries after it are kept when the log holds
   * that same entry (log matching says they follow it); otherwise the log is emptied.
   */
  compactTo(index: number, term: number): void {
    if (index <= this.snapshotIndex) return;
    if (this.term(index) === term) {
      this.entries = this.entries.slice(index - this.snapshotIndex);
    } else {
      this.entries = [];
    }
    this.snapshotIndex = index;
    this.snapshotTerm = term;
  }

  /** The last index whose entry has this term, or 0 when the log holds none. */
  lastIndexOfTerm(term: number): number {
    for (let i = this.entries.length - 1; i >= 0; i--) {
      const t = this.entries[i]!.term;
      if (t === term) return this.snapshotIndex + 1 + i;
      if (t < term) break;
    }
    return 0;
  }

  /** The first index (after the snapshot) holding the same term as `index`. */
  firstIndexOfTermAt(index: number): number {
    const term = this.term(index);
    let i = index;
    while (i - 1 > this.snapshotIndex && this.term(i - 1) === term) i--;
    return i;
  }

  /** The newest Config entry at or before `index`, if the log (after the snapshot) holds one. */
  lastConfigAtOrBefore(index: number): LogEntry | undefined {
    for (let i = Math.min(index, this.lastIndex()); i > this.snapshotIndex; i--) {
      const e = this.entry(i)!;
      if (e.type === EntryType.Config) return e;
    }
    return undefined;
  }
}

/**
 * The entries a stored log keeps after a snapshot at (index, term): those after it, if the log holds that
 * same entry (log matching: what follows it agrees with the snapshot) or already starts right after it;
 * otherwise none. Both storages apply it when a snapshot is saved, and the file storage again at start.
 */
export function entriesAfterSnapshot(entries: LogEntry[], snapshot: Snapshot): LogEntry[] {
  if (entries.length === 0) return entries;
  const first = entries[0]!.index;
  if (first === snapshot.index + 1) return entries;
  const at = snapshot.index - first;
  if (at < 0 || at >= entries.length || entries[at]!.term !== snapshot.term) return [];
  return entries.slice(at + 1);
}

