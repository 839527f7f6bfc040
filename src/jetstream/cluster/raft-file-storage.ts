// RaftStorage in files, for servers. The files, in the node's directory:
//   state     term and vote: one record, replaced atomically (write state.tmp, fsync, rename, fsync dir)
//   snapshot  the latest snapshot: one record, replaced the same way
//   log       the entries after the snapshot, appended: a run of records
// A record is  u32 LE body length | u32 LE CRC-32 of the body | body (msgpack, raft-codec.ts).
//
// Invariants:
// - Every call has reached the disk (fsync) before it returns, so what a node voted or acknowledged
//   survives kill -9 and power loss. (A later step batches appends into one fsync.) With `syncAppends:
//   false` log appends only reach the OS (kill -9 safe, not power-loss safe); the vote still is fsync'd.
// - A torn or corrupt tail of `log` (a crash mid-append) is cut off at start: the last whole record wins.
//   Nothing beyond it was ever acknowledged, because the append it belonged to had not returned.
// - After a snapshot at (index, term), the log keeps only entries after it, and only if it held that
//   same entry (then what follows it agrees with the snapshot); otherwise it is emptied. The same rule
//   runs at start, so a crash between writing the snapshot and rewriting the log changes nothing.
import {
  closeSync, existsSync, fsyncSync, ftruncateSync, mkdirSync, openSync, readFileSync, readSync, renameSync,
  writeSync,
} from "node:fs";
import path from "node:path";
import { decode, encode } from "@msgpack/msgpack";
import { decodeEntry, decodeSnapshot, encodeEntry, encodeSnapshot } from "./raft-codec.ts";
import { entriesAfterSnapshot } from "./raft-log.ts";
import type { HardState, LogEntry, RaftStorage, Snapshot, StoredRaftState } from "./raft-types.ts";

const RECORD_HEADER = 8;

function record(body: Uint8Array): Buffer {
  const rec = Buffer.allocUnsafe(RECORD_HEADER + body.length);
  rec.writeUInt32LE(body.length, 0);
  rec.writeUInt32LE(Bun.hash.crc32(body) >>> 0, 4);
  rec.set(body, RECORD_HEADER);
  return rec;
}

/** The body of the record at `offset`, or undefined if it is short or fails its checksum. */
function readRecord(buf: Buffer, offset: number): Uint8Array | undefined {
  if (offset + RECORD_HEADER > buf.length) return undefined;
  const length = buf.readUInt32LE(offset);
  const end = offset + RECORD_HEADER + length;
  if (end > buf.length) return undefined;
  const body = buf.subarray(offset + RECORD_HEADER, end);
  if ((Bun.hash.crc32(body) >>> 0) !== buf.readUInt32LE(offset + 4)) return undefined;
  return body;
}

export interface FileRaftStorageOptions {
  /** Where a cut tail is reported. */
  warn?: (line: string) => void;
  /**
   * Whether log appends are fsync'd (default true). False: they reach the OS before append returns (they
   * survive kill -9, not a power loss), the durability a stream's store gives with its interval sync; the
   * vote and term are fsync'd regardless.
   */
  syncAppends?: boolean;
}

export class FileRaftStorage implements RaftStorage {
  private readonly dir: string;
  private readonly warn: (line: string) => void;
  private readonly syncAppends: boolean;
  private fd = -1;
  /** Byte offset of each stored entry's record, and the log file's size. */
  private offsets: number[] = [];
  private firstIndex = 1;
  private size = 0;
  private snapshot: Snapshot | undefined;

  constructor(dir: string, options: FileRaftStorageOptions = {}) {
    this.dir = dir;
    this.warn = options.warn ?? (() => {});
    this.syncAppends = options.syncAppends ?? true;
    if (!existsSync(dir)) {
      mkdirSync(dir, { recursive: true });
      // The new directory's entry must be on disk too, or a power loss could forget a vote with it.
      syncDirectory(path.dirname(dir));
    }
  }

  private file(name: string): string {
    return path.join(this.dir, name);
  }

  load(): StoredRaftState {
    let hard: HardState = { term: 0, votedFor: "" };
    const state = this.readWholeRecord("state");
    if (state) {
      const v = decode(state) as HardState;
      hard = { term: v.term, votedFor: v.votedFor };
    }
    const snap = this.readWholeRecord("snapshot");
    this.snapshot = snap ? decodeSnapshot(snap) : undefined;

    // Read the log record by record; the first short or corrupt record ends it.
    const logFile = this.file("log");
    const buf = existsSync(logFile) ? readFileSync(logFile) : Buffer.alloc(0);
    const entries: LogEntry[] = [];
    const offsets: number[] = [];
    let offset = 0;
    for (;;) {
      const body = readRecord(buf, offset);
      if (!body) break;
      let e: LogEntry;
      try {
        e = decodeEntry(body);
      } catch {
        break;
      }
      if (entries.length > 0 && e.index !== entries.at(-1)!.index + 1) break;
      entries.push(e);
      offsets.push(offset);
      offset += RECORD_HEADER + body.length;
    }
    if (offset < buf.length) this.warn(`raft storage ${this.dir}: cut ${buf.length - offset} bytes of torn log tail`);

    const expectedFirst = (this.snapshot?.index ?? 0) + 1;
    let kept = this.snapshot ? entriesAfterSnapshot(entries, this.snapshot) : entries;
    if (kept.length > 0 && kept[0]!.index !== expectedFirst) kept = [];
    const keptFrom = entries.length - kept.length; // entries before this are covered by the snapshot
    if (keptFrom === 0) {
      const created = !existsSync(logFile);
      this.fd = openSync(logFile, created ? "w+" : "r+");
      if (created) this.syncDir();
      if (offset < buf.length) {
        ftruncateSync(this.fd, offset);
        fsyncSync(this.fd);
      }
      this.offsets = offsets;
      this.size = offset;
    } else {
      // A crash between writing a snapshot and rewriting the log: finish the rewrite now.
      const start = offsets[keptFrom] ?? offset;
      this.rewriteLog(buf.subarray(start, offset), start, offsets.slice(keptFrom));
    }
    this.firstIndex = expectedFirst;
    return { hard, snapshot: this.snapshot, entries: kept };
  }

  saveHardState(state: HardState): void {
    this.writeAtomically("state", encode({ term: state.term, votedFor: state.votedFor }));
  }

  append(entries: LogEntry[]): void {
    if (entries.length === 0) return;
    const expected = this.firstIndex + this.offsets.length;
    if (entries[0]!.index !== expected) throw new Error(`raft storage: append of ${entries[0]!.index}, expected ${expected}`);
    const records = entries.map((e) => record(encodeEntry(e)));
    for (const r of records) {
      this.offsets.push(this.size);
      this.size += r.length;
    }
    const all = Buffer.concat(records);
    writeSync(this.fd, all, 0, all.length, this.size - all.length);
    if (this.syncAppends) fsyncSync(this.fd);
  }

  truncateFrom(index: number): void {
    const at = index - this.firstIndex;
    if (at >= this.offsets.length) return;
    if (at < 0) throw new Error(`raft storage: truncate at ${index} before the log start ${this.firstIndex}`);
    this.size = this.offsets[at]!;
    this.offsets.length = at;
    ftruncateSync(this.fd, this.size);
    fsyncSync(this.fd);
  }

  saveSnapshot(snapshot: Snapshot): void {
    this.writeAtomically("snapshot", encodeSnapshot(snapshot));
    this.snapshot = { ...snapshot, peers: [...snapshot.peers] };
    // Keep the entries after it if the log holds its own entry (read back that entry's term).
    const at = snapshot.index - this.firstIndex;
    let keepFrom = this.offsets.length; // index into offsets of the first kept entry
    if (at >= 0 && at < this.offsets.length) {
      const buf = Buffer.alloc((this.offsets[at + 1] ?? this.size) - this.offsets[at]!);
      readSyncAt(this.fd, buf, this.offsets[at]!);
      const body = readRecord(buf, 0);
      if (body && decodeEntry(body).term === snapshot.term) keepFrom = at + 1;
    }
    const start = this.offsets[keepFrom] ?? this.size;
    const tail = Buffer.alloc(this.size - start);
    readSyncAt(this.fd, tail, start);
    const keptOffsets = this.offsets.slice(keepFrom);
    closeSync(this.fd);
    this.rewriteLog(tail, start, keptOffsets);
    this.firstIndex = snapshot.index + 1;
  }

  loadSnapshot(): Snapshot | undefined {
    return this.snapshot;
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }

  /** Replaces the log file with `records` (which started at byte `base` of the old file). */
  private rewriteLog(records: Buffer, base: number, oldOffsets: number[]): void {
    const tmp = this.file("log.tmp");
    const fd = openSync(tmp, "w");
    writeSync(fd, records, 0, records.length, 0);
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, this.file("log"));
    this.syncDir();
    this.fd = openSync(this.file("log"), "r+");
    this.offsets = oldOffsets.map((o) => o - base);
    this.size = records.length;
  }

  private writeAtomically(name: string, body: Uint8Array): void {
    const tmp = this.file(`${name}.tmp`);
    const fd = openSync(tmp, "w");
    const rec = record(body);
    writeSync(fd, rec, 0, rec.length, 0);
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, this.file(name));
    this.syncDir();
  }

  private syncDir(): void {
    syncDirectory(this.dir);
  }

  /** A whole-file record (state, snapshot); replaced by rename, so a bad one is real corruption. */
  private readWholeRecord(name: string): Uint8Array | undefined {
    const file = this.file(name);
    if (!existsSync(file)) return undefined;
    const buf = readFileSync(file);
    const body = readRecord(buf, 0);
    if (!body) throw new Error(`raft storage ${this.dir}: ${name} is corrupt`);
    return body;
  }
}

function syncDirectory(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function readSyncAt(fd: number, buf: Buffer, position: number): void {
  let done = 0;
  while (done < buf.length) {
    const n = readSync(fd, buf, done, buf.length - done, position + done);
    if (n <= 0) throw new Error("raft storage: short read");
    done += n;
  }
}
