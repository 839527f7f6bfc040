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
// Beside them, <dir>/hwm (the high-water mark): f64 LE | u32 LE CRC-32 of those 8 bytes, the last sequence
// written, rewritten in place after
// each flush's records and before its PubAcks. If the segments end below it (their tail was lost), the
// store goes on after it: an acknowledged sequence is never handed out again, and the range is reported lost.
//
// Invariants:
// - A record is served only if it verifies: at start every segment is read record by record; one that is
//   short or fails its CRC is skipped and reading resumes at the next record that verifies (the sequences
//   in between are lost, logged, gaps in the index); with nothing valid after it the segment is cut there
//   (a torn tail). Records read back from disk later are checked again.
// - Writes go out in one write per flush(); the stream layer flushes before it sends PubAcks, so what was
//   acknowledged has reached the OS (it survives kill -9). With sync "always" each flush also fsyncs;
//   with "interval" (the default, every second) a power failure can lose up to the last interval.
// - Segments are removed from the front only, once nothing in them (message or delete) is at or above the
//   first sequence; the active (last) segment is never removed.
// - Every filesystem write goes through io(): an error (a full disk, EIO) becomes `writeFailure` (logged
//   once) and leaves the store as it was before that write. What could not be written stays queued in
//   memory (reads are served from there) and is written by the next flush, at most every RETRY_MS and
//   on a RETRY_TIMER_MS timer, which clears `writeFailure` and logs that writes resumed. While it is set,
//   append throws StoreWriteError: nothing new is taken in that could not be acknowledged.
import {
  closeSync, existsSync, fsyncSync, ftruncateSync, mkdirSync, openSync, readdirSync, readFileSync, readSync,
  rmSync, unlinkSync, writeSync,
} from "node:fs";
import path from "node:path";
import { IndexedStore, type IndexEntry } from "./indexed.ts";
import {
  fileMsgSize, StoreWriteError, type RemoveReason, type StoreLimits, type StoredMessage, type StoreWriteFailure,
} from "./store.ts";

/** node:zlib, loaded at the first compressed record (compression: s2 streams): ~2.5 MiB of RSS otherwise. */
function zlib(): typeof import("node:zlib") {
  return process.getBuiltinModule("node:zlib");
}

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
  /** Where a failing write is reported (once, when writes start failing); default: warn. */
  error?: (line: string) => void;
  /** Where "writes resumed" is reported; default: warn. */
  info?: (line: string) => void;
  /** Compress message bodies (the stream's `compression: s2`). */
  compress?: boolean;
}

/** FileStore.open reads the segments in slices of this many ms, the event loop serving clients in between. */
const LOAD_SLICE_MS = 5;
/** Records read between two looks at the clock while loading. */
const LOAD_CHECK_EVERY = 2048;

export const DEFAULT_SEGMENT_BYTES = 8 * 1024 * 1024;
export const DEFAULT_SYNC_INTERVAL_MS = 1000;

const KIND_MSG = 1;
const KIND_DELETES = 2;
const KIND_MARKER = 3;
const KIND_MSG_DEFLATED = 4;
/** Bodies shorter than this are stored as they are: compressing them seldom saves anything. */
const COMPRESS_MIN = 64;
const RECORD_HEADER = 8;
/** A message record's bytes before its subject's end: record header, kind, seq, ts, subject length (+ subject), header length. */
const MESSAGE_HEAD = RECORD_HEADER + 1 + 8 + 8 + 2 + 4;
const READ_AHEAD = 256 * 1024;
/** At most this many lost sequences are listed in `lost` (the log names every range). */
const MAX_LOST_LISTED = 100_000;
/** While writes fail: a flush (or an append) tries again at most this often… */
const RETRY_MS = 250;
/** …and a timer tries this often, so writes resume even when nothing is published. */
const RETRY_TIMER_MS = 1000;

interface Segment {
  readonly index: number;
  readonly file: string;
  fd: number;
  /** Bytes on disk (records after this are in the write buffer). */
  written: number;
  /** Highest sequence a record in this segment names (a message or a delete). */
  maxRef: number;
}

/** What loadRecord found in a record that verifies: where the next one starts, a floor (marker), a message's sequence. */
interface LoadedRecord {
  next: number;
  floor: number;
  seq: number;
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
  private readonly error: (line: string) => void;
  private readonly info: (line: string) => void;
  private lastAttempt = 0;
  private retryTimer: ReturnType<typeof setInterval> | null = null;
  private segments: Segment[] = [];
  private active!: Segment;
  // Records not yet written, all for the active segment.
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private pendingDeletes: number[] = [];
  private floorWritten = 0;
  private unsynced = false;
  private hwmFd = -1;
  /** The high-water mark on disk (the last sequence written, as far as the hwm file knows). */
  private hwmWritten = 0;
  private hwmUnsynced = false;
  private syncTimer: ReturnType<typeof setInterval> | null = null;
  private closed = false;
  private compress: boolean;
  // One window of a segment's bytes: what was last written or read ahead. Consumers mostly read what
  // was just written, or read on in order, so most loads are served from here without a read call.
  private window: { segment: Segment; start: number; buf: Buffer; fromDisk: boolean } | null = null;
  /** What load found wrong (cut tails), for tests and logs. */
  readonly recovery: string[] = [];
  private readonly parsed: LoadedRecord = { next: 0, floor: 0, seq: 0 };
  /** Subjects read while loading, one string per distinct subject (dropped once loaded). */
  private subjectNames = new SubjectInterner();

  /** Opens the store, reading every segment before it returns (see FileStore.open for the sliced way). */
  constructor(options: FileStoreOptions, limits?: StoreLimits, deferLoad = false) {
    super();
    this.dir = options.dir;
    this.segmentBytes = options.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
    this.syncPolicy = options.sync ?? "interval";
    this.warn = options.warn ?? (() => {});
    this.error = options.error ?? this.warn;
    this.info = options.info ?? this.warn;
    this.compress = options.compress ?? false;
    mkdirSync(this.dir, { recursive: true });
    if (deferLoad) return; // FileStore.open reads the segments itself
    for (const _ of this.loadSegments());
    this.loaded(options, limits);
  }

  /**
   * Opens the store reading its segments in slices of LOAD_SLICE_MS, yielding to the event loop between
   * them: a server restoring a large stream keeps serving its clients meanwhile.
   */
  static async open(options: FileStoreOptions, limits?: StoreLimits): Promise<FileStore> {
    const store = new FileStore(options, limits, true);
    let sliceStart = performance.now();
    for (const _ of store.loadSegments()) {
      if (performance.now() - sliceStart < LOAD_SLICE_MS) continue;
      await new Promise((resolve) => setImmediate(resolve));
      sliceStart = performance.now();
    }
    store.loaded(options, limits);
    return store;
  }

  /** After the segments: the high-water mark, the limits, the first flush, the sync timer. */
  private loaded(options: FileStoreOptions, limits?: StoreLimits): void {
    this.subjectNames = new SubjectInterner();
    this.loadHighWaterMark();
    if (limits) this.setLimits(limits);
    this.flush();
    if (this.syncPolicy === "interval") {
      this.syncTimer = setInterval(() => this.quietly(() => this.sync()), options.syncIntervalMs ?? DEFAULT_SYNC_INTERVAL_MS);
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
    if (this.writeFailure !== null) {
      this.flush();
      if (this.writeFailure !== null) throw new StoreWriteError(this.writeFailure);
    }
    const sl = Buffer.byteLength(subject, "latin1");
    const hl = headers === null ? 0 : headers.length;
    if (this.compress && hl + data.length >= COMPRESS_MIN) {
      const packed = zlib().deflateRawSync(headers === null ? data : Buffer.concat([headers, data]));
      if (packed.length < hl + data.length) return this.storeDeflated(seq, subject, sl, hl, hl + data.length, packed, ts, size);
    }
    // kind 1: u8 1 | f64 seq | f64 ts | u16 subject length | subject | u32 header length | headers | data
    const rec = this.messageRecord(KIND_MSG, seq, ts, subject, sl, hl, hl + data.length);
    const at = MESSAGE_HEAD + sl;
    if (headers !== null) headers.copy(rec, at);
    data.copy(rec, at + hl);
    return this.queueMessage(rec, seq, subject, ts, size);
  }

  private storeDeflated(seq: number, subject: string, sl: number, hl: number, rawLength: number, packed: Buffer, ts: number, size: number): FileEntry {
    // kind 4: as kind 1 up to the header length, then u32 headers+data length | raw deflate of headers + data
    const rec = this.messageRecord(KIND_MSG_DEFLATED, seq, ts, subject, sl, hl, 4 + packed.length);
    const at = MESSAGE_HEAD + sl;
    rec.writeUInt32LE(rawLength, at);
    packed.copy(rec, at + 4);
    return this.queueMessage(rec, seq, subject, ts, size);
  }

  /**
   * A message record with its common head written (kind, seq, ts, subject, header length) and `rest` bytes
   * after it (from MESSAGE_HEAD + subject length); the active segment is rotated first when it would not fit.
   */
  private messageRecord(kind: number, seq: number, ts: number, subject: string, sl: number, hl: number, rest: number): Buffer {
    const length = MESSAGE_HEAD + sl + rest;
    if (this.active.written + this.pendingBytes + length > this.segmentBytes && this.active.maxRef > 0) this.rotate();
    const rec = Buffer.allocUnsafe(length);
    let at = RECORD_HEADER;
    rec[at++] = kind;
    at = rec.writeDoubleLE(seq, at);
    at = rec.writeDoubleLE(ts, at);
    at = rec.writeUInt16LE(sl, at);
    at += rec.write(subject, at, sl, "latin1");
    rec.writeUInt32LE(hl, at);
    return rec;
  }

  private queueMessage(rec: Buffer, seq: number, subject: string, ts: number, size: number): FileEntry {
    const offset = this.queue(rec);
    this.active.maxRef = seq;
    return { seq, subject, ts, size, segment: this.active, offset, length: rec.length };
  }

  /** Seals the record (length, CRC) and queues it; returns its offset in the active segment. */
  private queue(rec: Buffer): number {
    rec.writeUInt32LE(rec.length - RECORD_HEADER, 0);
    rec.writeUInt32LE(Bun.hash.crc32(rec.subarray(RECORD_HEADER)) >>> 0, 4);
    const offset = this.active.written + this.pendingBytes;
    this.pending.push(rec);
    this.pendingBytes += rec.length;
    if (this.pendingBytes > 4 * 1024 * 1024 && this.writeFailure === null) this.quietly(() => this.writePending());
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
    const buf = this.unwritten();
    const seg = this.active;
    const at = seg.written;
    this.io(`write ${seg.file}`, () => {
      let done = 0;
      try {
        while (done < buf.length) done += writeSync(seg.fd, buf, done, buf.length - done, at + done);
      } catch (error) {
        // Back to the last whole flush: what is on disk is what was written before, nothing half.
        if (done > 0) {
          try {
            ftruncateSync(seg.fd, at);
          } catch {}
        }
        throw error;
      }
    });
    this.window = { segment: seg, start: at, buf, fromDisk: false };
    seg.written += buf.length;
    this.pending = [];
    this.pendingBytes = 0;
    this.unsynced = true;
  }

  /** Closes the active segment and starts the next; throws StoreWriteError (the message is not taken). */
  private rotate(): void {
    this.flushDeletes();
    this.writePending();
    // The interval sync only ever fsyncs the active segment: the one being closed is synced now.
    this.sync();
    this.openSegment((this.active?.index ?? 0) + 1);
  }

  /** Creates segment `index` with its marker; if the marker cannot be written it stays queued (and this throws). */
  private openSegment(index: number): void {
    const file = path.join(this.dir, `${index}.seg`);
    const fd = this.io(`create ${file}`, () => openSync(file, "w+"));
    const seg: Segment = { index, file, fd, written: 0, maxRef: 0 };
    this.segments.push(seg);
    this.active = seg;
    this.queue(this.marker());
    this.writePending();
    // The new file's directory entry must be durable before anything relies on it.
    if (this.syncPolicy === "always") this.sync();
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
    if (this.quietly(() => this.openSegment(old[old.length - 1]!.index + 1))) {
      for (const seg of old) this.dropSegment(seg);
    } else if (this.segments.length === 0) {
      // Not even a file could be created: the marker waits in the old active segment.
      this.segments = old;
      this.queue(this.marker());
    } else {
      // The new marker is not on disk yet: the old files stay until it is (flush drops them then).
      this.segments = [...old, ...this.segments];
    }
  }

  /** Writes what is queued; never throws: a failure is `writeFailure`, retried by the next flush. */
  flush(): void {
    if (this.closed) return;
    if (this.writeFailure !== null && Date.now() - this.lastAttempt < RETRY_MS) return;
    const ok = this.quietly(() => {
      this.flushDeletes();
      this.writePending();
      this.writeHighWaterMark();
      // After a failure an interval-synced store syncs too: a failed fsync is a failure until one succeeds.
      // (With "always" the high-water mark is not fsynced per flush: the records it covers already are.)
      if (this.syncPolicy === "always" || this.writeFailure !== null) this.sync(this.syncPolicy !== "always");
    });
    if (!ok) return;
    if (this.writeFailure !== null) this.resumed();
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

  /** fsyncs the active segment (and the high-water mark) if they have unsynced writes; throws StoreWriteError. */
  private sync(withHighWaterMark = true): void {
    if (this.closed) return;
    if (this.unsynced) {
      const seg = this.active;
      this.io(`fsync ${seg.file}`, () => fsyncSync(seg.fd));
      this.unsynced = false;
    }
    if (withHighWaterMark && this.hwmUnsynced) {
      this.io(`fsync ${this.hwmFile}`, () => fsyncSync(this.hwmFd));
      this.hwmUnsynced = false;
    }
  }

  // ---- the high-water mark ------------------------------------------------------------------

  private get hwmFile(): string {
    return path.join(this.dir, "hwm");
  }

  /** Records the last sequence written (after the records, before the PubAcks); throws StoreWriteError. */
  private writeHighWaterMark(): void {
    if (this.lastSeq <= this.hwmWritten) return;
    if (this.hwmFd < 0) this.hwmFd = this.io(`create ${this.hwmFile}`, () => openSync(this.hwmFile, existsSync(this.hwmFile) ? "r+" : "w+"));
    const buf = Buffer.allocUnsafe(12);
    buf.writeDoubleLE(this.lastSeq, 0);
    buf.writeUInt32LE(Bun.hash.crc32(buf.subarray(0, 8)) >>> 0, 8);
    this.io(`write ${this.hwmFile}`, () => writeSync(this.hwmFd, buf, 0, 12, 0));
    this.hwmWritten = this.lastSeq;
    this.hwmUnsynced = true;
  }

  /** After the segments: if they end below the high-water mark, their tail was lost; go on after it. */
  private loadHighWaterMark(): void {
    if (!existsSync(this.hwmFile)) return;
    const buf = readFileSync(this.hwmFile);
    if (buf.length < 12 || (Bun.hash.crc32(buf.subarray(0, 8)) >>> 0) !== buf.readUInt32LE(8)) {
      this.warn(`${this.hwmFile}: damaged, ignored (a lost segment tail would not be detected this once)`);
      return;
    }
    const hwm = buf.readDoubleLE(0);
    this.hwmWritten = hwm;
    if (!Number.isSafeInteger(hwm) || hwm <= this.lastSeq) return;
    const what = `segment tail lost: the segments end at sequence ${this.lastSeq}, the high-water mark is ${hwm}; the store goes on after it`;
    this.reportLost(what, 0, this.lastSeq + 1, hwm);
    this.setLast(hwm, this.lastTs);
    // The segments remember it too (the marker is written by the first flush).
    this.queue(this.marker());
  }

  // ---- write failures -------------------------------------------------------------------------

  /**
   * Every filesystem write of the store runs here. An error becomes `writeFailure` (logged when writes
   * start failing, not per attempt) and is thrown as StoreWriteError; the caller has changed nothing yet.
   */
  private io<T>(what: string, op: () => T): T {
    try {
      return op();
    } catch (error) {
      throw new StoreWriteError(this.failed(what, error));
    }
  }

  private failed(what: string, error: unknown): StoreWriteFailure {
    this.lastAttempt = Date.now();
    if (this.writeFailure !== null) return this.writeFailure;
    const e = error as NodeJS.ErrnoException;
    const failure: StoreWriteFailure = { code: e.code ?? "EUNKNOWN", message: `${what}: ${e.message}`, since: Date.now() };
    this.writeFailure = failure;
    this.error(`${this.dir}: cannot write (${failure.message}); publishes are refused until a write succeeds (retried every ${RETRY_TIMER_MS} ms)`);
    this.retryTimer = setInterval(() => this.flush(), RETRY_TIMER_MS);
    this.retryTimer.unref?.();
    return failure;
  }

  private resumed(): void {
    const failure = this.writeFailure!;
    this.writeFailure = null;
    if (this.retryTimer !== null) clearInterval(this.retryTimer);
    this.retryTimer = null;
    this.info(`${this.dir}: writes resumed after ${((Date.now() - failure.since) / 1000).toFixed(1)} s of ${failure.code}`);
  }

  /** Runs `op`; a StoreWriteError (already recorded) becomes false. */
  private quietly(op: () => void): boolean {
    try {
      op();
      return true;
    } catch (error) {
      if (error instanceof StoreWriteError) return false;
      throw error;
    }
  }

  /** The queued records as one buffer (kept as one, should its write fail and be retried). */
  private unwritten(): Buffer {
    if (this.pending.length !== 1) this.pending = [Buffer.concat(this.pending, this.pendingBytes)];
    return this.pending[0]!;
  }

  // ---- reading ------------------------------------------------------------------------------

  /** The message of an entry; null when its record no longer verifies (logged; the index then drops it). */
  protected load(e: FileEntry): StoredMessage | null {
    const seg = e.segment;
    if (e.offset + e.length > seg.written && this.writeFailure === null) this.quietly(() => this.writePending());
    const w = this.window;
    let rec: Buffer;
    let fromDisk = false;
    if (e.offset + e.length > seg.written) {
      // Not written (the disk is full): served from the queue, which only ever holds the active segment's tail.
      const start = e.offset - seg.written;
      rec = this.unwritten().subarray(start, start + e.length);
    } else if (w !== null && w.segment === seg && e.offset >= w.start && e.offset + e.length <= w.start + w.buf.length) {
      rec = w.buf.subarray(e.offset - w.start, e.offset - w.start + e.length);
      fromDisk = w.fromDisk;
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
      if (got < e.length) {
        this.warn(`segment ${seg.file}: short read at offset ${e.offset}: lost sequence ${e.seq}`);
        return null;
      }
      this.window = { segment: seg, start: e.offset, buf: chunk.subarray(0, got), fromDisk: true };
      rec = chunk.subarray(0, e.length);
      fromDisk = true;
    }
    // What comes back from the disk is checked again: a record that no longer verifies is never served.
    if (fromDisk && (rec.readUInt32LE(0) !== e.length - RECORD_HEADER || (Bun.hash.crc32(rec.subarray(RECORD_HEADER)) >>> 0) !== rec.readUInt32LE(4))) {
      this.warn(`segment ${seg.file}: record at offset ${e.offset} fails its checksum: lost sequence ${e.seq}`);
      return null;
    }
    let at = RECORD_HEADER + 1 + 16;
    const sl = rec.readUInt16LE(at);
    at += 2 + sl;
    const hl = rec.readUInt32LE(at);
    at += 4;
    if (rec[RECORD_HEADER] === KIND_MSG_DEFLATED) {
      let raw: Buffer;
      try {
        raw = zlib().inflateRawSync(rec.subarray(at + 4));
      } catch {
        this.warn(`segment ${seg.file}: record at offset ${e.offset} does not inflate: lost sequence ${e.seq}`);
        return null;
      }
      return { seq: e.seq, subject: e.subject, ts: e.ts, headers: hl === 0 ? null : raw.subarray(0, hl), data: raw.subarray(hl) };
    }
    const headers = hl === 0 ? null : rec.subarray(at, at + hl);
    return { seq: e.seq, subject: e.subject, ts: e.ts, headers, data: rec.subarray(at + hl) };
  }

  /**
   * Reads every segment, rebuilding the index. A bad record (a flipped byte, a torn write) costs only
   * itself: reading resumes at the next record that verifies, and the sequences between the last message
   * before the damage and the first after it are lost (logged, kept in `lost`, gaps in the index). With
   * no record that verifies after it, the segment is cut there (a torn tail). Yields every
   * LOAD_CHECK_EVERY records, so a caller may pause between them.
   */
  private *loadSegments(): Generator<void> {
    const indexes = readdirSync(this.dir)
      .map((f) => /^(\d+)\.seg$/.exec(f))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b);
    let floor = 0;
    // Damage not yet closed by a message after it: what it was, and the last sequence before it.
    let damage: { what: string; bytes: number; before: number } | null = null;
    let records = 0;
    for (const index of indexes) {
      const file = path.join(this.dir, `${index}.seg`);
      const buf = readFileSync(file);
      const view = new DataView(buf.buffer, buf.byteOffset, buf.length);
      const seg: Segment = { index, file, fd: openSync(file, "r+"), written: buf.length, maxRef: 0 };
      this.segments.push(seg);
      let off = 0;
      while (off < buf.length) {
        if (++records % LOAD_CHECK_EVERY === 0) yield;
        const rec = this.loadRecord(buf, view, off, seg);
        if (typeof rec !== "string") {
          if (rec.floor > floor) floor = rec.floor;
          if (damage !== null && rec.seq > 0) {
            this.reportLost(damage.what, damage.bytes, damage.before + 1, rec.seq - 1);
            damage = null;
          }
          off = rec.next;
          continue;
        }
        const resume = this.resync(buf, off + 1);
        if (resume < 0) {
          const why = `segment ${file}: ${rec} at offset ${off} of ${buf.length}, cut there`;
          // Not cut (a read-only or failing disk): the next write goes at `off` anyway.
          this.quietly(() => this.io(`truncate ${file}`, () => ftruncateSync(seg.fd, off)));
          seg.written = off;
          if (damage === null) damage = { what: why, bytes: buf.length - off, before: this.lastSeq };
          else {
            damage.what += `; then ${rec} at offset ${off}, cut there`;
            damage.bytes += buf.length - off;
          }
          break;
        }
        const what = `segment ${file}: ${rec} at offset ${off}, ${resume - off} bytes skipped to the next record that verifies`;
        if (damage === null) damage = { what, bytes: resume - off, before: this.lastSeq };
        else damage.bytes += resume - off;
        off = resume;
      }
    }
    // Damage after the last message: lost up to what a later marker remembers (if any).
    if (damage !== null) {
      if (this.lastSeq > damage.before) this.reportLost(damage.what, damage.bytes, damage.before + 1, this.lastSeq);
      else {
        this.recovery.push(damage.what);
        this.warn(damage.what);
      }
    }
    while (this.msgs > 0 && this.firstSeq() < floor) this.indexRemove(this.firstSeq());
    if (this.segments.length === 0) {
      // On a full disk the first marker stays queued; only a file that cannot be created ends the load.
      if (!this.quietly(() => this.openSegment(1)) && this.segments.length === 0) throw new StoreWriteError(this.writeFailure!);
    } else this.active = this.segments[this.segments.length - 1]!;
    this.floorWritten = floor;
  }

  /** The offset of the first record at or after `from` whose length fits and whose CRC verifies, or -1. */
  private resync(buf: Buffer, from: number): number {
    for (let at = from; at + RECORD_HEADER < buf.length; at++) {
      const kind = buf[at + RECORD_HEADER];
      if (kind !== KIND_MSG && kind !== KIND_MSG_DEFLATED && kind !== KIND_DELETES && kind !== KIND_MARKER) continue;
      const len = buf.readUInt32LE(at);
      const end = at + RECORD_HEADER + len;
      if (len < 1 || end > buf.length) continue;
      if ((Bun.hash.crc32(buf.subarray(at + RECORD_HEADER, end)) >>> 0) === buf.readUInt32LE(at + 4)) return at;
    }
    return -1;
  }

  /** Sequences from..to were in damaged records: logged, kept in `lost`; they are gaps (deleted) in the index. */
  private reportLost(what: string, bytes: number, from: number, to: number): void {
    const line = to < from ? `${what}; no message lost` : `${what}; lost ${to === from ? `sequence ${from}` : `sequences ${from}..${to}`}`;
    this.recovery.push(line);
    this.warn(line);
    // The list is for STREAM.INFO's `lost`; past a bound only the log line has the whole range.
    for (let seq = from; seq <= to && this.lostSeqs.length < MAX_LOST_LISTED; seq++) this.lostSeqs.push(seq);
    this.lostBytes += bytes;
  }

  /**
   * Parses one record: its end and any floor it sets (in `parsed`, reused), or why it is bad. Loading a
   * store is this, once per record: it reads through a DataView and makes no Buffer per record.
   */
  private loadRecord(buf: Buffer, view: DataView, off: number, seg: Segment): LoadedRecord | string {
    if (buf.length - off < RECORD_HEADER) return "torn record header";
    const len = view.getUint32(off, true);
    const b = off + RECORD_HEADER; // the body
    const end = b + len;
    if (len < 1 || end > buf.length) return "torn record";
    if ((Bun.hash.crc32(new Uint8Array(buf.buffer, buf.byteOffset + b, len)) >>> 0) !== view.getUint32(off + 4, true)) return "checksum mismatch";
    const parsed = this.parsed;
    parsed.next = end;
    parsed.floor = 0;
    parsed.seq = 0;
    const kind = buf[b];
    switch (kind) {
      case KIND_MSG:
      case KIND_MSG_DEFLATED: {
        const fixed = kind === KIND_MSG ? 23 : 27;
        if (len < fixed) return "short message record";
        const seq = view.getFloat64(b + 1, true);
        const ts = view.getFloat64(b + 9, true);
        const sl = view.getUint16(b + 17, true);
        if (fixed + sl > len) return "bad subject length";
        const subject = this.subjectNames.read(buf, b + 19, b + 19 + sl);
        const hl = view.getUint32(b + 19 + sl, true);
        let dl: number;
        if (kind === KIND_MSG) {
          if (23 + sl + hl > len) return "bad header length";
          dl = len - 23 - sl - hl;
        } else {
          const raw = view.getUint32(b + 23 + sl, true);
          if (hl > raw) return "bad header length";
          dl = raw - hl;
        }
        if (seq > this.lastSeq) {
          const size = hl === 0 ? 22 + sl + dl + 8 : 22 + sl + 4 + hl + dl + 8;
          this.indexAdd({ seq, subject, ts, size, segment: seg, offset: off, length: RECORD_HEADER + len });
        }
        if (seq > seg.maxRef) seg.maxRef = seq;
        parsed.seq = seq;
        return parsed;
      }
      case KIND_DELETES: {
        const count = view.getUint32(b + 1, true);
        if (5 + count * 8 !== len) return "bad delete record";
        for (let i = 0; i < count; i++) {
          const seq = view.getFloat64(b + 5 + i * 8, true);
          this.indexRemove(seq);
          if (seq > seg.maxRef) seg.maxRef = seq;
        }
        return parsed;
      }
      case KIND_MARKER: {
        if (len !== 25) return "bad marker record";
        parsed.floor = view.getFloat64(b + 1, true);
        this.setLast(view.getFloat64(b + 9, true), view.getFloat64(b + 17, true));
        return parsed;
      }
      default:
        return `unknown record kind ${kind}`;
    }
  }

  // ---- lifecycle ----------------------------------------------------------------------------

  close(): void {
    if (this.closed) return;
    this.lastAttempt = 0; // a last try, whenever the one before was
    this.flush();
    this.quietly(() => this.sync());
    if (this.writeFailure !== null) this.error(`${this.dir}: closed with ${this.pendingBytes} bytes unwritten (${this.writeFailure.code}); none was acknowledged`);
    this.closed = true;
    if (this.syncTimer) clearInterval(this.syncTimer);
    if (this.retryTimer) clearInterval(this.retryTimer);
    if (this.hwmFd >= 0) {
      try {
        closeSync(this.hwmFd);
      } catch {}
    }
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

/**
 * The subjects of a store's records, read back as one string per distinct subject: most streams have
 * far fewer subjects than messages, and a string made once is also hashed once (by the index's maps).
 * Half of loading a store of small messages went into making and hashing a new string per record.
 */
class SubjectInterner {
  private readonly bySum = new Map<number, string[]>();

  read(buf: Buffer, start: number, end: number): string {
    // Past this many distinct subjects (keys of a large KV bucket), interning costs more than it saves.
    if (this.bySum.size > 16_384) return buf.latin1Slice(start, end);
    let h = end - start;
    for (let i = start; i < end; i++) h = (Math.imul(h, 31) + buf[i]!) | 0;
    let list = this.bySum.get(h);
    if (list !== undefined) {
      for (let k = 0; k < list.length; k++) if (sameLatin1(list[k]!, buf, start, end)) return list[k]!;
    } else {
      list = [];
      this.bySum.set(h, list);
    }
    const subject = buf.latin1Slice(start, end);
    if (list.length < 4) list.push(subject);
    return subject;
  }
}

function sameLatin1(s: string, buf: Buffer, start: number, end: number): boolean {
  if (s.length !== end - start) return false;
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) !== buf[start + i]) return false;
  return true;
}
