// The file store: the shared index in memory, message bodies in append-only segment files.
//
// On disk: <dir>/<n>.seg, n ascending. A segment is a run of records:
//   u32 LE length of the body | u32 LE CRC-32 of the body | body
// and a body is one of
//   1 message:  u8 1 | f64 seq | f64 ts (ms) | u16 subject length | subject | u32 header length | headers | data
//   2 deletes:  u8 2 | u32 count | f64 seq × count          (interior removals: files are never rewritten)
//   3 marker:   u8 3 | f64 floor | f64 last seq | f64 last ts (every sequence below floor is gone)
//   4 message, compressed (stream `compression: s2`): u8 4 | f64 seq | f64 ts | u16 subject length | subject |
//               u32 header length | u32 headers+data length | raw deflate of headers + data
//               (written only when it is smaller; natter has no S2 codec, so it compresses with deflate)
// Every segment starts with a marker, so the sequence survives even when every message is gone.
//
// Invariants:
// - A record is written whole or not at all as far as a reader can tell: at start every segment is read
//   record by record and the first one that is short or fails its CRC is cut off (the file is truncated
//   there), so a torn tail is never served.
// - Writes go out in one write per flush(); the stream layer flushes before it sends PubAcks, so what was
//   acknowledged has reached the OS (it survives kill -9). With sync "always" each flush also fsyncs;
//   with "interval" (the default, every second) a power failure can lose up to the last interval.
// - Segments are removed from the front only, once nothing in them (message or delete) is at or above the
//   first sequence; the active (last) segment is never removed.
import {
  closeSync, existsSync, fsyncSync, ftruncateSync, mkdirSync, openSync, readdirSync, readFileSync, readSync,
  rmSync, unlinkSync, writeSync,
} from "node:fs";
import path from "node:path";
import { deflateRawSync, inflateRawSync } from "node:zlib";
import { IndexedStore, type IndexEntry } from "./indexed.ts";
import { fileMsgSize, type RemoveReason, type StoreLimits, type StoredMessage } from "./store.ts";

export type SyncPolicy = "always" | "interval";

export interface FileStoreOptions {
  /** The directory of this stream's segments (created if missing). */
  dir: string;
  /** A segment is closed and a new one started past this size (default 8 MiB). */
  segmentBytes?: number;
  /** "always": fsync on every flush; "interval" (default): fsync every syncIntervalMs. */
  sync?: SyncPolicy;
  syncIntervalMs?: number;
  /** Where warnings go (a cut tail). */
  warn?: (line: string) => void;
  /** Compress message bodies (the stream's `compression: s2`). */
  compress?: boolean;
}

export const DEFAULT_SEGMENT_BYTES = 8 * 1024 * 1024;
export const DEFAULT_SYNC_INTERVAL_MS = 1000;

const KIND_MSG = 1;
const KIND_DELETES = 2;
const KIND_MARKER = 3;
const KIND_MSG_DEFLATED = 4;
/** Bodies shorter than this are stored as they are: compressing them seldom saves anything. */
const COMPRESS_MIN = 64;
const RECORD_HEADER = 8;
const READ_AHEAD = 256 * 1024;

interface Segment {
  readonly index: number;
  readonly file: string;
  fd: number;
  /** Bytes on disk (records after this are in the write buffer). */
  written: number;
  /** Highest sequence a record in this segment names (a message or a delete). */
  maxRef: number;
}

interface FileEntry extends IndexEntry {
  readonly segment: Segment;
  /** Offset of the record in its segment, and its whole length. */
  readonly offset: number;
  readonly length: number;
}

export class FileStore extends IndexedStore<FileEntry> {
  readonly kind = "file";
  private readonly dir: string;
  private readonly segmentBytes: number;
  private readonly syncPolicy: SyncPolicy;
  private readonly warn: (line: string) => void;
  private segments: Segment[] = [];
  private active!: Segment;
  // Records not yet written, all for the active segment.
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private pendingDeletes: number[] = [];
  private floorWritten = 0;
  private unsynced = false;
  private syncTimer: ReturnType<typeof setInterval> | null = null;
  private closed = false;
  private compress: boolean;
  // One window of a segment's bytes: what was last written or read ahead. Consumers mostly read what
  // was just written, or read on in order, so most loads are served from here without a read call.
  private window: { segment: Segment; start: number; buf: Buffer } | null = null;
  /** What load found wrong (cut tails), for tests and logs. */
  readonly recovery: string[] = [];

  constructor(options: FileStoreOptions, limits?: StoreLimits) {
    super();
    this.dir = options.dir;
    this.segmentBytes = options.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
    this.syncPolicy = options.sync ?? "interval";
    this.warn = options.warn ?? (() => {});
    this.compress = options.compress ?? false;
    mkdirSync(this.dir, { recursive: true });
    this.loadSegments();
    if (limits) this.setLimits(limits);
    this.flush();
    if (this.syncPolicy === "interval") {
      this.syncTimer = setInterval(() => this.sync(), options.syncIntervalMs ?? DEFAULT_SYNC_INTERVAL_MS);
      this.syncTimer.unref?.();
    }
  }

  protected msgSize(subject: string, headers: Buffer | null, data: Buffer): number {
    return fileMsgSize(subject, headers, data);
  }

  // ---- writing ------------------------------------------------------------------------------

  /** New messages are written compressed (or not) from now on; what is stored stays as it is. */
  setCompression(compress: boolean): void {
    this.compress = compress;
  }

  protected store(seq: number, subject: string, headers: Buffer | null, data: Buffer, ts: number, size: number): FileEntry {
    const sl = Buffer.byteLength(subject, "latin1");
    const hl = headers === null ? 0 : headers.length;
    if (this.compress && hl + data.length >= COMPRESS_MIN) {
      const packed = deflateRawSync(headers === null ? data : Buffer.concat([headers, data]));
      if (packed.length < hl + data.length) return this.storeDeflated(seq, subject, sl, hl, hl + data.length, packed, ts, size);
    }
    const bodyLength = 1 + 8 + 8 + 2 + sl + 4 + hl + data.length;
    const length = RECORD_HEADER + bodyLength;
    if (this.active.written + this.pendingBytes + length > this.segmentBytes && this.active.maxRef > 0) this.rotate();
    const rec = Buffer.allocUnsafe(length);
    let at = RECORD_HEADER;
    rec[at++] = KIND_MSG;
    at = rec.writeDoubleLE(seq, at);
    at = rec.writeDoubleLE(ts, at);
    at = rec.writeUInt16LE(sl, at);
    at += rec.write(subject, at, sl, "latin1");
    at = rec.writeUInt32LE(hl, at);
    if (headers !== null) at += headers.copy(rec, at);
    data.copy(rec, at);
    const offset = this.queue(rec);
    this.active.maxRef = seq;
    return { seq, subject, ts, size, segment: this.active, offset, length };
  }

  private storeDeflated(seq: number, subject: string, sl: number, hl: number, rawLength: number, packed: Buffer, ts: number, size: number): FileEntry {
    const length = RECORD_HEADER + 1 + 8 + 8 + 2 + sl + 4 + 4 + packed.length;
    if (this.active.written + this.pendingBytes + length > this.segmentBytes && this.active.maxRef > 0) this.rotate();
    const rec = Buffer.allocUnsafe(length);
    let at = RECORD_HEADER;
    rec[at++] = KIND_MSG_DEFLATED;
    at = rec.writeDoubleLE(seq, at);
    at = rec.writeDoubleLE(ts, at);
    at = rec.writeUInt16LE(sl, at);
    at += rec.write(subject, at, sl, "latin1");
    at = rec.writeUInt32LE(hl, at);
    at = rec.writeUInt32LE(rawLength, at);
    packed.copy(rec, at);
    const offset = this.queue(rec);
    this.active.maxRef = seq;
    return { seq, subject, ts, size, segment: this.active, offset, length };
  }

  /** Seals the record (length, CRC) and queues it; returns its offset in the active segment. */
  private queue(rec: Buffer): number {
    rec.writeUInt32LE(rec.length - RECORD_HEADER, 0);
    rec.writeUInt32LE(Bun.hash.crc32(rec.subarray(RECORD_HEADER)) >>> 0, 4);
    const offset = this.active.written + this.pendingBytes;
    this.pending.push(rec);
    this.pendingBytes += rec.length;
    if (this.pendingBytes > 4 * 1024 * 1024) this.writePending();
    return offset;
  }

  private marker(): Buffer {
    const rec = Buffer.allocUnsafe(RECORD_HEADER + 25);
    rec[RECORD_HEADER] = KIND_MARKER;
    rec.writeDoubleLE(this.firstSeq(), RECORD_HEADER + 1);
    rec.writeDoubleLE(this.lastSeq, RECORD_HEADER + 9);
    rec.writeDoubleLE(this.lastTs, RECORD_HEADER + 17);
    this.floorWritten = this.firstSeq();
    return rec;
  }

  private writePending(): void {
    if (this.pendingBytes === 0) return;
    const buf = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
    let done = 0;
    while (done < buf.length) done += writeSync(this.active.fd, buf, done, buf.length - done, this.active.written + done);
    this.window = { segment: this.active, start: this.active.written, buf };
    this.active.written += buf.length;
    this.pending = [];
    this.pendingBytes = 0;
    this.unsynced = true;
  }

  private rotate(): void {
    this.flushDeletes();
    this.writePending();
    // The interval sync only ever fsyncs the active segment: the one being closed is synced now.
    if (this.unsynced) {
      fsyncSync(this.active.fd);
      this.unsynced = false;
    }
    this.openSegment((this.active?.index ?? 0) + 1);
  }

  private openSegment(index: number): void {
    const file = path.join(this.dir, `${index}.seg`);
    const seg: Segment = { index, file, fd: openSync(file, "w+"), written: 0, maxRef: 0 };
    this.segments.push(seg);
    this.active = seg;
    this.queue(this.marker());
    this.writePending();
    // The new file's directory entry must be durable before anything relies on it.
    if (this.syncPolicy === "always") fsyncSync(seg.fd);
  }

  protected removed(entry: FileEntry): void {
    this.pendingDeletes.push(entry.seq);
  }

  /** Turns removals into records: a marker when only the front moved, delete records for interior gaps. */
  private flushDeletes(): void {
    if (this.pendingDeletes.length === 0) return;
    const floor = this.firstSeq();
    const interior = this.pendingDeletes.filter((s) => s >= floor);
    this.pendingDeletes = [];
    if (floor > this.floorWritten) this.queue(this.marker());
    for (let i = 0; i < interior.length; i += 65536) {
      const chunk = interior.slice(i, i + 65536);
      const rec = Buffer.allocUnsafe(RECORD_HEADER + 5 + chunk.length * 8);
      rec[RECORD_HEADER] = KIND_DELETES;
      rec.writeUInt32LE(chunk.length, RECORD_HEADER + 1);
      let at = RECORD_HEADER + 5;
      for (const s of chunk) at = rec.writeDoubleLE(s, at);
      this.queue(rec);
      const max = chunk[chunk.length - 1]!;
      if (max > this.active.maxRef) this.active.maxRef = max;
    }
  }

  protected cleared(): void {
    // Purge of everything: a new segment whose marker says so, then the old files go.
    this.pending = [];
    this.pendingBytes = 0;
    this.pendingDeletes = [];
    const old = this.segments;
    this.segments = [];
    this.openSegment(old[old.length - 1]!.index + 1);
    if (this.syncPolicy === "always") fsyncSync(this.active.fd);
    for (const seg of old) this.dropSegment(seg);
  }

  flush(): void {
    if (this.closed) return;
    this.flushDeletes();
    this.writePending();
    if (this.syncPolicy === "always" && this.unsynced) this.sync();
    // Drop segments at the front that nothing live refers to any more.
    const floor = this.firstSeq();
    while (this.segments.length > 1 && this.segments[0]!.maxRef < floor) this.dropSegment(this.segments.shift()!);
  }

  private dropSegment(seg: Segment): void {
    if (this.window?.segment === seg) this.window = null;
    try {
      closeSync(seg.fd);
    } catch {}
    try {
      unlinkSync(seg.file);
    } catch {}
  }

  private sync(): void {
    if (!this.unsynced || this.closed) return;
    this.unsynced = false;
    fsyncSync(this.active.fd);
  }

  // ---- reading ------------------------------------------------------------------------------

  protected load(e: FileEntry): StoredMessage {
    const seg = e.segment;
    if (e.offset + e.length > seg.written) this.writePending();
    const w = this.window;
    let rec: Buffer;
    if (w !== null && w.segment === seg && e.offset >= w.start && e.offset + e.length <= w.start + w.buf.length) {
      rec = w.buf.subarray(e.offset - w.start, e.offset - w.start + e.length);
    } else {
      // Read ahead: the record and what follows it, up to READ_AHEAD bytes.
      const want = Math.max(e.length, Math.min(READ_AHEAD, seg.written - e.offset));
      const chunk = Buffer.allocUnsafe(want);
      let got = 0;
      while (got < want) {
        const n = readSync(seg.fd, chunk, got, want - got, e.offset + got);
        if (n <= 0) break;
        got += n;
      }
      if (got < e.length) throw new Error(`segment ${seg.file}: short read at ${e.offset}`);
      this.window = { segment: seg, start: e.offset, buf: chunk.subarray(0, got) };
      rec = chunk.subarray(0, e.length);
    }
    let at = RECORD_HEADER + 1 + 16;
    const sl = rec.readUInt16LE(at);
    at += 2 + sl;
    const hl = rec.readUInt32LE(at);
    at += 4;
    if (rec[RECORD_HEADER] === KIND_MSG_DEFLATED) {
      const raw = inflateRawSync(rec.subarray(at + 4));
      return { seq: e.seq, subject: e.subject, ts: e.ts, headers: hl === 0 ? null : raw.subarray(0, hl), data: raw.subarray(hl) };
    }
    const headers = hl === 0 ? null : rec.subarray(at, at + hl);
    return { seq: e.seq, subject: e.subject, ts: e.ts, headers, data: rec.subarray(at + hl) };
  }

  /** Reads every segment, rebuilding the index; cuts each at its first bad record. */
  private loadSegments(): void {
    const indexes = readdirSync(this.dir)
      .map((f) => /^(\d+)\.seg$/.exec(f))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b);
    let floor = 0;
    for (const index of indexes) {
      const file = path.join(this.dir, `${index}.seg`);
      const buf = readFileSync(file);
      const seg: Segment = { index, file, fd: openSync(file, "r+"), written: buf.length, maxRef: 0 };
      this.segments.push(seg);
      let off = 0;
      while (off < buf.length) {
        const bad = this.loadRecord(buf, off, seg);
        if (typeof bad === "string") {
          const why = `segment ${file}: ${bad} at offset ${off} of ${buf.length}, cut there`;
          this.recovery.push(why);
          this.warn(why);
          ftruncateSync(seg.fd, off);
          seg.written = off;
          break;
        }
        if (bad.floor > floor) floor = bad.floor;
        off = bad.next;
      }
    }
    while (this.msgs > 0 && this.firstSeq() < floor) this.indexRemove(this.firstSeq());
    if (this.segments.length === 0) this.openSegment(1);
    else this.active = this.segments[this.segments.length - 1]!;
    this.floorWritten = floor;
  }

  /** Parses one record: its end and any floor it sets, or why it is bad. */
  private loadRecord(buf: Buffer, off: number, seg: Segment): { next: number; floor: number } | string {
    if (buf.length - off < RECORD_HEADER) return "torn record header";
    const len = buf.readUInt32LE(off);
    const end = off + RECORD_HEADER + len;
    if (len < 1 || end > buf.length) return "torn record";
    const body = buf.subarray(off + RECORD_HEADER, end);
    if ((Bun.hash.crc32(body) >>> 0) !== buf.readUInt32LE(off + 4)) return "checksum mismatch";
    switch (body[0]) {
      case KIND_MSG: {
        if (len < 23) return "short message record";
        const seq = body.readDoubleLE(1);
        const ts = body.readDoubleLE(9);
        const sl = body.readUInt16LE(17);
        if (23 + sl > len) return "bad subject length";
        const subject = body.latin1Slice(19, 19 + sl);
        const hl = body.readUInt32LE(19 + sl);
        if (23 + sl + hl > len) return "bad header length";
        const dl = len - 23 - sl - hl;
        if (seq > this.lastSeq) {
          const size = hl === 0 ? 22 + sl + dl + 8 : 22 + sl + 4 + hl + dl + 8;
          this.indexAdd({ seq, subject, ts, size, segment: seg, offset: off, length: RECORD_HEADER + len });
        }
        if (seq > seg.maxRef) seg.maxRef = seq;
        return { next: end, floor: 0 };
      }
      case KIND_MSG_DEFLATED: {
        if (len < 27) return "short message record";
        const seq = body.readDoubleLE(1);
        const ts = body.readDoubleLE(9);
        const sl = body.readUInt16LE(17);
        if (27 + sl > len) return "bad subject length";
        const subject = body.latin1Slice(19, 19 + sl);
        const hl = body.readUInt32LE(19 + sl);
        const raw = body.readUInt32LE(23 + sl);
        if (hl > raw) return "bad header length";
        const dl = raw - hl;
        if (seq > this.lastSeq) {
          const size = hl === 0 ? 22 + sl + dl + 8 : 22 + sl + 4 + hl + dl + 8;
          this.indexAdd({ seq, subject, ts, size, segment: seg, offset: off, length: RECORD_HEADER + len });
        }
        if (seq > seg.maxRef) seg.maxRef = seq;
        return { next: end, floor: 0 };
      }
      case KIND_DELETES: {
        const count = body.readUInt32LE(1);
        if (5 + count * 8 !== len) return "bad delete record";
        for (let i = 0; i < count; i++) {
          const seq = body.readDoubleLE(5 + i * 8);
          this.indexRemove(seq);
          if (seq > seg.maxRef) seg.maxRef = seq;
        }
        return { next: end, floor: 0 };
      }
      case KIND_MARKER: {
        if (len !== 25) return "bad marker record";
        const floor = body.readDoubleLE(1);
        this.setLast(body.readDoubleLE(9), body.readDoubleLE(17));
        return { next: end, floor };
      }
      default:
        return `unknown record kind ${body[0]}`;
    }
  }

  // ---- lifecycle ----------------------------------------------------------------------------

  close(): void {
    if (this.closed) return;
    this.flush();
    this.sync();
    this.closed = true;
    if (this.syncTimer) clearInterval(this.syncTimer);
    for (const seg of this.segments) {
      try {
        closeSync(seg.fd);
      } catch {}
    }
  }

  destroy(): void {
    this.close();
    if (existsSync(this.dir)) rmSync(this.dir, { recursive: true, force: true });
  }

  /** Number of segment files (for tests of rotation and removal). */
  get segmentCount(): number {
    return this.segments.length;
  }
}

export type { RemoveReason };
