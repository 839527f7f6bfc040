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
// Beside a segment, <dir>/<n>.idx: its saved index (segment-index.ts), its records without the bodies as
// columns a load uses in place (no work per message: see replay), saved when the segment is sealed (rotated) or the store closes, when a load had to read a
// sealed segment record by record, and for the active segment every sync interval in which it grew by
// ACTIVE_INDEX_BYTES (so that after kill -9 a load reads only what came after). A load uses it only if
// the segment begins byte for byte with what it was saved for (length and CRC-32 of those bytes: segments
// only grow); the records after that are read one by one, and a segment without a usable index is read
// whole that way, as without one.
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
  closeSync, existsSync, fstatSync, fsyncSync, ftruncateSync, mkdirSync, openSync, readdirSync, readFileSync,
  readSync, renameSync, rmSync, unlinkSync, writeFileSync, writeSync,
} from "node:fs";
import path from "node:path";
import type * as Zlib from "node:zlib";
import { IndexedStore, type IndexEntry, type SubjectSeqs } from "./indexed.ts";
import {
  isOldSegmentIndex, parseSegmentIndex, ROW_DELETES, ROW_MARKER, SegmentIndexBuilder, seqAt, type SavedIndex,
} from "./segment-index.ts";
import {
  fileMsgSize, StoreWriteError, type RemoveReason, type StoreLimits, type StoredMessage, type StoreWriteFailure,
} from "./store.ts";

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
/** The active segment's index is saved again by the interval sync once the segment grew this much. */
const ACTIVE_INDEX_BYTES = 1024 * 1024;
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
  /** CRC-32 of its `written` bytes (what its saved index is checked against), kept while `rows` is not null. */
  crc: number;
  /** Its rows while it is active (saved as its index when sealed); null once saved, or when not known (it was read record by record). */
  rows: SegmentIndexBuilder | null;
  /** Bytes its saved index covers (0: none saved by this process). */
  indexed: number;
}

/** A saved index loaded: its messages' entries are made from its columns when first used (materialize). */
interface LoadedIndex {
  readonly segment: Segment;
  readonly saved: SavedIndex;
}

/**
 * What parseRecord found in a record that verifies (one object, reused): its kind, where the next record
 * starts; a message's sequence, time, subject bytes and size (as state.bytes counts it); a delete
 * record's count and where its sequences start; a marker's floor, last sequence and time. `seq` and
 * `floor` are 0 for the kinds that have none.
 */
interface RecordFields {
  kind: number;
  next: number;
  seq: number;
  ts: number;
  subjectStart: number;
  subjectEnd: number;
  size: number;
  deletes: number;
  deletesAt: number;
  floor: number;
  lastSeq: number;
  lastTs: number;
}

const NO_FIELDS: RecordFields = {
  kind: 0, next: 0, seq: 0, ts: 0, subjectStart: 0, subjectEnd: 0, size: 0, deletes: 0, deletesAt: 0, floor: 0, lastSeq: 0, lastTs: 0,
};

/** Parses the record at `off` into `f`: null if it verifies (length, CRC, fields), else why not. */
function parseRecord(buf: Buffer, view: DataView, off: number, f: RecordFields): string | null {
  if (buf.length - off < RECORD_HEADER) return "torn record header";
  const len = view.getUint32(off, true);
  const b = off + RECORD_HEADER; // the body
  const end = b + len;
  if (len < 1 || end > buf.length) return "torn record";
  if ((Bun.hash.crc32(new Uint8Array(buf.buffer, buf.byteOffset + b, len)) >>> 0) !== view.getUint32(off + 4, true)) return "checksum mismatch";
  const kind = buf[b]!;
  f.kind = kind;
  f.next = end;
  f.seq = 0;
  f.floor = 0;
  switch (kind) {
    case KIND_MSG:
    case KIND_MSG_DEFLATED: {
      const fixed = kind === KIND_MSG ? 23 : 27;
      if (len < fixed) return "short message record";
      const sl = view.getUint16(b + 17, true);
      if (fixed + sl > len) return "bad subject length";
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
      f.seq = view.getFloat64(b + 1, true);
      f.ts = view.getFloat64(b + 9, true);
      f.subjectStart = b + 19;
      f.subjectEnd = b + 19 + sl;
      f.size = hl === 0 ? 22 + sl + dl + 8 : 22 + sl + 4 + hl + dl + 8;
      return null;
    }
    case KIND_DELETES: {
      const count = view.getUint32(b + 1, true);
      if (5 + count * 8 !== len) return "bad delete record";
      f.deletes = count;
      f.deletesAt = b + 5;
      return null;
    }
    case KIND_MARKER: {
      if (len !== 25) return "bad marker record";
      f.floor = view.getFloat64(b + 1, true);
      f.lastSeq = view.getFloat64(b + 9, true);
      f.lastTs = view.getFloat64(b + 17, true);
      return null;
    }
    default:
      return `unknown record kind ${kind}`;
  }
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
  private readonly parsed: RecordFields = { ...NO_FIELDS };
  /** Subjects read while loading, one string per distinct subject (dropped once loaded). */
  private subjectNames = new SubjectInterner();
  /** Saved indexes whose columns stand in the index for entries not made yet: slot number → its index (see materialize). */
  private loadedIndexes: (LoadedIndex | null)[] = [];
  /** Sealed segments whose index indexLater is to save, and the job saving them (null when none runs). */
  private unindexed: Segment[] = [];
  private indexing: Generator<void> | null = null;
  private destroying = false;
  /** The highest floor a marker set, while loading. */
  private loadFloor = 0;
  /**
   * How the segments were loaded: from their saved index (`tails` of them with records after what it
   * covers, read one by one), or record by record (for the log, tests and the bench).
   */
  readonly loadedFrom = { savedIndex: 0, tails: 0, records: 0 };

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
      this.syncTimer = setInterval(() => {
        this.quietly(() => this.sync());
        if (this.writeFailure === null && this.active.written - this.active.indexed >= ACTIVE_INDEX_BYTES) this.saveIndex(this.active);
      }, options.syncIntervalMs ?? DEFAULT_SYNC_INTERVAL_MS);
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
    this.active.rows?.message(subject, seq, ts, offset, rec.length, size);
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

  /** Queues a marker: the first sequence, the last and its time. */
  private queueMarker(): void {
    const rec = Buffer.allocUnsafe(RECORD_HEADER + 25);
    rec[RECORD_HEADER] = KIND_MARKER;
    rec.writeDoubleLE(this.firstSeq(), RECORD_HEADER + 1);
    rec.writeDoubleLE(this.lastSeq, RECORD_HEADER + 9);
    rec.writeDoubleLE(this.lastTs, RECORD_HEADER + 17);
    this.floorWritten = this.firstSeq();
    const offset = this.queue(rec);
    this.active.rows?.marker(this.firstSeq(), this.lastSeq, this.lastTs, offset, rec.length);
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
    seg.crc = Bun.hash.crc32(buf, seg.crc) >>> 0;
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
    const sealed = this.active;
    this.openSegment(sealed.index + 1);
    if (sealed.rows === null) this.indexLater(sealed);
    else this.saveIndex(sealed);
    sealed.rows = null;
  }

  /** Creates segment `index` with its marker; if the marker cannot be written it stays queued (and this throws). */
  private openSegment(index: number): void {
    const file = path.join(this.dir, `${index}.seg`);
    const fd = this.io(`create ${file}`, () => openSync(file, "w+"));
    const seg: Segment = { index, file, fd, written: 0, maxRef: 0, crc: 0, rows: new SegmentIndexBuilder(), indexed: 0 };
    this.segments.push(seg);
    this.active = seg;
    this.queueMarker();
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
    if (floor > this.floorWritten) this.queueMarker();
    for (let i = 0; i < interior.length; i += 65536) {
      const chunk = interior.slice(i, i + 65536);
      const rec = Buffer.allocUnsafe(RECORD_HEADER + 5 + chunk.length * 8);
      rec[RECORD_HEADER] = KIND_DELETES;
      rec.writeUInt32LE(chunk.length, RECORD_HEADER + 1);
      let at = RECORD_HEADER + 5;
      for (const s of chunk) at = rec.writeDoubleLE(s, at);
      const offset = this.queue(rec);
      this.active.rows?.deletes(chunk, offset, rec.length);
      const max = chunk[chunk.length - 1]!;
      if (max > this.active.maxRef) this.active.maxRef = max;
    }
  }

  protected cleared(): void {
    // Purge of everything: a new segment whose marker says so, then the old files go.
    this.pending = [];
    this.pendingBytes = 0;
    this.pendingDeletes = [];
    // Its rows include what was queued and is now dropped: they no longer describe the segment.
    this.active.rows = null;
    const old = this.segments;
    this.segments = [];
    if (this.quietly(() => this.openSegment(old[old.length - 1]!.index + 1))) {
      for (const seg of old) this.dropSegment(seg);
    } else if (this.segments.length === 0) {
      // Not even a file could be created: the marker waits in the old active segment.
      this.segments = old;
      this.queueMarker();
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
    // Nothing in it is live any more (the front moved past it), so no slot names one of its rows.
    const loaded = this.loadedIndexes;
    for (let i = 0; i < loaded.length; i++) if (loaded[i]?.segment === seg) loaded[i] = null;
    try {
      closeSync(seg.fd);
    } catch {}
    try {
      unlinkSync(seg.file);
    } catch {}
    for (const f of [indexFile(seg), `${indexFile(seg)}.tmp`]) {
      try {
        unlinkSync(f);
      } catch {}
    }
  }

  /**
   * Saves the index of a segment whose rows cover every byte of it (sealed, or the store closing). Best
   * effort, outside io(): an index that cannot be written (a full disk) only means the next load reads
   * that segment record by record, so it never fails the store; a partial file fails its CRC.
   */
  private saveIndex(seg: Segment, rows = seg.rows, crc = seg.crc): void {
    // (Its offsets are 32 bits: a segment past 4 GiB, if one were ever written, is read record by record.)
    if (rows === null || rows.end !== seg.written || seg.written >= 2 ** 32) return;
    const encoded = rows.encode(seg.written, crc);
    if (encoded === null) return;
    const file = indexFile(seg);
    // Written beside and renamed over: a kill -9 meanwhile leaves the index before, not half of one.
    const tmp = `${file}.tmp`;
    try {
      writeFileSync(tmp, encoded);
      renameSync(tmp, file);
      seg.indexed = seg.written;
    } catch {
      try {
        unlinkSync(tmp);
      } catch {}
    }
  }

  /**
   * Saves the index of a sealed segment whose rows are not known (it was read record by record at load)
   * from its records, in LOAD_SLICE_MS slices on later turns of the event loop; close() finishes what is left.
   */
  private indexLater(seg: Segment): void {
    this.unindexed.push(seg);
    if (this.indexing !== null) return;
    this.indexing = this.indexUnindexed();
    const slice = () => {
      if (this.indexing === null || this.closed) return;
      const began = performance.now();
      while (performance.now() - began < LOAD_SLICE_MS) {
        if (this.indexing.next().done) {
          this.indexing = null;
          return;
        }
      }
      setImmediate(slice);
    };
    setImmediate(slice);
  }

  private *indexUnindexed(): Generator<void> {
    for (let seg = this.unindexed.shift(); seg !== undefined; seg = this.unindexed.shift()) {
      if (!this.segments.includes(seg)) continue; // dropped meanwhile
      let buf: Buffer;
      try {
        buf = readFileSync(seg.file);
      } catch {
        continue;
      }
      if (buf.length !== seg.written) continue;
      const rows = yield* this.rowsOfRecords(buf);
      if (rows !== null && this.segments.includes(seg)) this.saveIndex(seg, rows, Bun.hash.crc32(buf) >>> 0);
    }
  }

  /** Saves what indexLater has not yet, and the active segment's index (the store is closing). */
  private saveIndexes(): void {
    if (this.destroying) {
      this.indexing = null;
      return;
    }
    if (this.indexing !== null) for (const _ of this.indexing);
    this.indexing = null;
    const seg = this.active;
    if (seg.rows !== null) {
      this.saveIndex(seg);
      return;
    }
    let buf: Buffer;
    try {
      buf = readFileSync(seg.file);
    } catch {
      return;
    }
    if (buf.length !== seg.written) return;
    const build = this.rowsOfRecords(buf);
    let step = build.next();
    while (!step.done) step = build.next();
    if (step.value !== null) this.saveIndex(seg, step.value, Bun.hash.crc32(buf) >>> 0);
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
    this.queueMarker();
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
    // The record is buf[at, at + e.length): read in place, no view of it made (only of what is returned).
    let buf: Buffer;
    let at: number;
    let fromDisk = false;
    if (e.offset + e.length > seg.written) {
      // Not written (the disk is full): served from the queue, which only ever holds the active segment's tail.
      buf = this.unwritten();
      at = e.offset - seg.written;
    } else if (w !== null && w.segment === seg && e.offset >= w.start && e.offset + e.length <= w.start + w.buf.length) {
      buf = w.buf;
      at = e.offset - w.start;
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
      buf = chunk.subarray(0, got);
      this.window = { segment: seg, start: e.offset, buf, fromDisk: true };
      at = 0;
      fromDisk = true;
    }
    const end = at + e.length;
    // What comes back from the disk is checked again: a record that no longer verifies is never served.
    if (fromDisk && (buf.readUInt32LE(at) !== e.length - RECORD_HEADER || (Bun.hash.crc32(buf.subarray(at + RECORD_HEADER, end)) >>> 0) !== buf.readUInt32LE(at + 4))) {
      this.warn(`segment ${seg.file}: record at offset ${e.offset} fails its checksum: lost sequence ${e.seq}`);
      return null;
    }
    const kind = buf[at + RECORD_HEADER];
    at += RECORD_HEADER + 1 + 16;
    const sl = buf.readUInt16LE(at);
    at += 2 + sl;
    const hl = buf.readUInt32LE(at);
    at += 4;
    if (kind === KIND_MSG_DEFLATED) {
      let raw: Buffer;
      try {
        raw = zlib().inflateRawSync(buf.subarray(at + 4, end));
      } catch {
        this.warn(`segment ${seg.file}: record at offset ${e.offset} does not inflate: lost sequence ${e.seq}`);
        return null;
      }
      return { seq: e.seq, subject: e.subject, ts: e.ts, headers: hl === 0 ? null : raw.subarray(0, hl), data: raw.subarray(hl) };
    }
    const headers = hl === 0 ? null : buf.subarray(at, at + hl);
    return { seq: e.seq, subject: e.subject, ts: e.ts, headers, data: buf.subarray(at + hl, end) };
  }

  /**
   * Reads every segment, rebuilding the index: from the segment's saved index when it has one that fits it
   * (replay), else record by record. A bad record (a flipped byte, a torn write) costs only
   * itself: reading resumes at the next record that verifies, and the sequences between the last message
   * before the damage and the first after it are lost (logged, kept in `lost`, gaps in the index). With
   * no record that verifies after it, the segment is cut there (a torn tail). Yields every
   * LOAD_CHECK_EVERY records and after each segment's check and load from its index, so a caller may
   * pause between them.
   */
  private *loadSegments(): Generator<void> {
    const indexes = readdirSync(this.dir)
      .map((f) => /^(\d+)\.seg$/.exec(f))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b);
    // Damage not yet closed by a message after it: what it was, and the last sequence before it.
    let damage: { what: string; bytes: number; before: number } | null = null;
    let records = 0;
    for (const index of indexes) {
      const file = path.join(this.dir, `${index}.seg`);
      const fd = openSync(file, "r+");
      const seg: Segment = { index, file, fd, written: fstatSync(fd).size, maxRef: 0, crc: 0, rows: null, indexed: 0 };
      this.segments.push(seg);
      const isLast = index === indexes[indexes.length - 1];
      // Open damage is closed (and reported) by the next message read record by record.
      const saved = damage === null ? this.savedIndexOf(seg) : null;
      // A pause after each segment's check (one CRC over it) and its load from an index (which has none
      // of its own): a caller slicing the load (FileStore.open) keeps serving its clients in between.
      yield;
      let off = 0;
      if (saved !== null) {
        yield* this.replay(seg, saved, isLast);
        yield;
        this.loadedFrom.savedIndex++;
        if (saved.segmentBytes === seg.written) continue;
        // The segment grew after its index was saved (kill -9): the records after it are read one by one.
        this.loadedFrom.tails++;
        off = saved.segmentBytes;
      } else this.loadedFrom.records++;
      const buf = readFileSync(file);
      seg.written = buf.length;
      const view = new DataView(buf.buffer, buf.byteOffset, buf.length);
      // The active segment's rows from its saved index go on with the records after it as they are read;
      // none once a record is bad, or without a saved index (it is then indexed at close, from its
      // records: what a load without an index does not pay for).
      let rows = isLast && saved !== null ? seg.rows : null;
      while (off < buf.length) {
        if (++records % LOAD_CHECK_EVERY === 0) yield;
        const rec = this.loadRecord(buf, view, off, seg, rows);
        if (typeof rec !== "string") {
          if (rec.floor > this.loadFloor) this.loadFloor = rec.floor;
          if (damage !== null && rec.seq > 0) {
            this.reportLost(damage.what, damage.bytes, damage.before + 1, rec.seq - 1);
            damage = null;
          }
          off = rec.next;
          continue;
        }
        rows = null;
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
      seg.rows = rows;
      if (rows !== null) seg.crc = Bun.hash.crc32(buf.subarray(saved!.segmentBytes), seg.crc) >>> 0;
      // A sealed segment read record by record gets its index saved after the load, off its path (the
      // active one when it is sealed or the store closes).
      if (!isLast) this.indexLater(seg);
    }
    // Damage after the last message: lost up to what a later marker remembers (if any).
    if (damage !== null) {
      if (this.lastSeq > damage.before) this.reportLost(damage.what, damage.bytes, damage.before + 1, this.lastSeq);
      else {
        this.recovery.push(damage.what);
        this.warn(damage.what);
      }
    }
    const floor = this.loadFloor;
    // Below the front a marker moved: the runs loaded from indexes in one step each, the rest one by one.
    this.indexRemoveRunsBelow(floor, (slot) => this.loadedIndexes[slot]!.saved.sizes);
    while (this.msgs > 0 && this.firstSeq() < floor) this.indexRemove(this.firstSeq());
    if (this.segments.length === 0) {
      // On a full disk the first marker stays queued; only a file that cannot be created ends the load.
      if (!this.quietly(() => this.openSegment(1)) && this.segments.length === 0) throw new StoreWriteError(this.writeFailure!);
    } else this.active = this.segments[this.segments.length - 1]!;
    this.floorWritten = floor;
  }

  /** The saved index of a segment if it has one that verifies and was saved for exactly these bytes; else null. */
  private savedIndexOf(seg: Segment): SavedIndex | null {
    const file = indexFile(seg);
    if (!existsSync(file)) return null;
    let buf: Buffer;
    try {
      buf = readFileSync(file);
    } catch {
      return null;
    }
    // An index of the format before (NIX1): the segment is read record by record and indexed again.
    if (isOldSegmentIndex(buf)) return null;
    const saved = parseSegmentIndex(buf);
    if (saved === null) {
      this.warn(`${file}: damaged, ignored (the segment is read record by record and its index saved again)`);
      return null;
    }
    // Stale (cut or replaced since) unless the segment begins with exactly the bytes it was saved for.
    if (saved.segmentBytes > seg.written || segmentCrc(seg.fd, saved.segmentBytes) !== saved.segmentCrc) return null;
    return saved;
  }

  /**
   * Loads a segment from its saved index: what reading its records would do (loadRecord), from its
   * columns. The usual segment (its messages' sequences consecutive, above everything before) goes in one
   * step: its messages as one run (indexAddRun), each subject's sequences as one view of the index,
   * then its deletes and markers; any other row by row. Entries are made when first used (materialize).
   */
  private *replay(seg: Segment, saved: SavedIndex, isActive: boolean): Generator<void> {
    const slot = this.loadedIndexes.length;
    this.loadedIndexes.push({ segment: seg, saved });
    if (this.inOneStep(saved)) this.replayRun(seg, saved, slot);
    else yield* this.replayRows(seg, saved, slot);
    seg.crc = saved.segmentCrc;
    seg.indexed = saved.segmentBytes;
    if (isActive) seg.rows = SegmentIndexBuilder.continueFrom(saved);
  }

  /**
   * Whether adding the messages of `saved` in one step, then its other rows, leaves what adding its rows
   * in order leaves: its sequences consecutive, above the last so far, nothing in the index added row by
   * row yet, and each delete or marker naming only sequences below the messages after it (as a writer
   * writes them: a marker's last sequence is the last so far).
   */
  private inOneStep(saved: SavedIndex): boolean {
    const n = saved.ts.length;
    if (n === 0 || !saved.consecutive || saved.first <= this.lastSeq || !this.canAddRun()) return false;
    const o = saved.others;
    for (let k = 0; k < o.length; ) {
      const at = o[k + 1]!;
      const below = at < n ? saved.first + at : Infinity;
      if (o[k] === ROW_DELETES) {
        const end = k + 3 + o[k + 2]!;
        for (let j = k + 3; j < end; j++) if (o[j]! >= below) return false;
        k = end;
      } else {
        if (o[k + 3]! >= below) return false;
        k += 5;
      }
    }
    return true;
  }

  /** A segment's messages in one step: no work per message. */
  private replayRun(seg: Segment, saved: SavedIndex, slot: number): void {
    const n = saved.ts.length;
    const first = saved.first;
    this.indexAddRun(first, n, slot, saved.bytes, saved.ts[n - 1]!);
    const counts = saved.subjectCounts;
    for (let s = 0, at = 0; s < counts.length; s++) {
      const count = counts[s]!;
      if (count > 0) this.subjectSeqs(saved.subjects[s]!).addSaved(saved.bySubject.subarray(at, at + count), first);
      at += count;
    }
    if (first + n - 1 > seg.maxRef) seg.maxRef = first + n - 1;
    for (let k = 0; k < saved.others.length; ) k = this.replayOther(seg, saved.others, k);
  }

  /** A segment's rows in their order (what inOneStep does not take); yields every LOAD_CHECK_EVERY messages. */
  private *replayRows(seg: Segment, saved: SavedIndex, slot: number): Generator<void> {
    const { ts, sizes, subjectOf, subjects, others } = saved;
    const n = ts.length;
    // Each subject's sequences looked up once (by subject number), not once per message.
    const seqsOf: (SubjectSeqs | undefined)[] = [];
    let k = 0;
    for (let i = 0; ; i++) {
      while (k < others.length && others[k + 1] === i) k = this.replayOther(seg, others, k);
      if (i === n) break;
      if (i % LOAD_CHECK_EVERY === LOAD_CHECK_EVERY - 1) yield;
      const seq = seqAt(saved, i);
      if (seq > this.lastSeq) {
        const id = subjectOf[i]!;
        let ss = seqsOf[id];
        // Emptied by a delete row: indexRemove dropped it from the index.
        if (ss === undefined || ss.count === 0) ss = seqsOf[id] = this.subjectSeqs(subjects[id]!);
        this.indexAddRow(seq, ss, ts[i]!, sizes[i]!, slot);
      }
      if (seq > seg.maxRef) seg.maxRef = seq;
    }
  }

  /** Replays the delete or marker row at `k` of `others`; returns where the next row starts. */
  private replayOther(seg: Segment, others: Float64Array, k: number): number {
    if (others[k] === ROW_DELETES) {
      const end = k + 3 + others[k + 2]!;
      for (let j = k + 3; j < end; j++) {
        const deleted = others[j]!;
        this.indexRemove(deleted);
        if (deleted > seg.maxRef) seg.maxRef = deleted;
      }
      return end;
    }
    if (others[k] !== ROW_MARKER) throw new Error(`${indexFile(seg)}: unknown row kind ${others[k]}`);
    const floor = others[k + 2]!;
    if (floor > this.loadFloor) this.loadFloor = floor;
    this.setLast(others[k + 3]!, others[k + 4]!);
    return k + 5;
  }

  /** The entry of a message loaded from a saved index (`slot`: which one), made from its columns when it is used. */
  protected override materialize(slot: number, seq: number): FileEntry {
    const { segment, saved } = this.loadedIndexes[slot]!;
    const seqs = saved.seqs;
    let row = seq - saved.first;
    if (seqs !== null) {
      let hi = seqs.length - 1;
      for (row = 0; row < hi; ) {
        const mid = (row + hi) >>> 1;
        if (seqs[mid]! < seq) row = mid + 1;
        else hi = mid;
      }
    }
    return {
      seq, subject: saved.subjects[saved.subjectOf[row]!]!, ts: saved.ts[row]!, size: saved.sizes[row]!,
      segment, offset: saved.offsets[row]!, length: saved.lengths[row]!,
    };
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
   * Loads one record into the index (parseRecord, then what it says), or says why it is bad; adds its row
   * to `rows` (the active segment's). Loading a store is this, once per record: it reads through a
   * DataView and makes no Buffer per record.
   */
  private loadRecord(buf: Buffer, view: DataView, off: number, seg: Segment, rows: SegmentIndexBuilder | null): RecordFields | string {
    const f = this.parsed;
    const bad = parseRecord(buf, view, off, f);
    if (bad !== null) return bad;
    switch (f.kind) {
      case KIND_MSG:
      case KIND_MSG_DEFLATED: {
        const seq = f.seq;
        if (seq > this.lastSeq || rows !== null) {
          const subject = this.subjectNames.read(buf, f.subjectStart, f.subjectEnd);
          if (seq > this.lastSeq) this.indexAdd({ seq, subject, ts: f.ts, size: f.size, segment: seg, offset: off, length: f.next - off });
          rows?.message(subject, seq, f.ts, off, f.next - off, f.size);
        }
        if (seq > seg.maxRef) seg.maxRef = seq;
        return f;
      }
      case KIND_DELETES: {
        const seqs: number[] = [];
        for (let i = 0, at = f.deletesAt; i < f.deletes; i++, at += 8) {
          const seq = view.getFloat64(at, true);
          this.indexRemove(seq);
          if (seq > seg.maxRef) seg.maxRef = seq;
          seqs.push(seq);
        }
        rows?.deletes(seqs, off, f.next - off);
        return f;
      }
      default: // KIND_MARKER
        this.setLast(f.lastSeq, f.lastTs);
        rows?.marker(f.floor, f.lastSeq, f.lastTs, off, f.next - off);
        return f;
    }
  }

  /**
   * The rows of a segment's records (for its saved index), or null if one of them does not verify: a
   * segment with damage gets no index (every load reads it and reports what the damage cost). Yields
   * every LOAD_CHECK_EVERY records.
   */
  private *rowsOfRecords(buf: Buffer, from = 0, rows = new SegmentIndexBuilder()): Generator<void, SegmentIndexBuilder | null> {
    const view = new DataView(buf.buffer, buf.byteOffset, buf.length);
    const names = new SubjectInterner();
    const f: RecordFields = { ...NO_FIELDS };
    let records = 0;
    for (let off = from; off < buf.length; off = f.next) {
      if (++records % LOAD_CHECK_EVERY === 0) yield;
      if (parseRecord(buf, view, off, f) !== null) return null;
      if (f.kind === KIND_MSG || f.kind === KIND_MSG_DEFLATED) {
        rows.message(names.read(buf, f.subjectStart, f.subjectEnd), f.seq, f.ts, off, f.next - off, f.size);
      } else if (f.kind === KIND_DELETES) {
        const seqs: number[] = [];
        for (let i = 0, at = f.deletesAt; i < f.deletes; i++, at += 8) seqs.push(view.getFloat64(at, true));
        rows.deletes(seqs, off, f.next - off);
      } else rows.marker(f.floor, f.lastSeq, f.lastTs, off, f.next - off);
    }
    return rows;
  }

  // ---- lifecycle ----------------------------------------------------------------------------

  close(): void {
    if (this.closed) return;
    this.lastAttempt = 0; // a last try, whenever the one before was
    this.flush();
    this.quietly(() => this.sync());
    if (this.writeFailure !== null) this.error(`${this.dir}: closed with ${this.pendingBytes} bytes unwritten (${this.writeFailure.code}); none was acknowledged`);
    else this.saveIndexes();
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
    this.destroying = true; // no index is saved for files about to go
    this.close();
    if (existsSync(this.dir)) rmSync(this.dir, { recursive: true, force: true });
  }

  /** Number of segment files (for tests of rotation and removal). */
  get segmentCount(): number {
    return this.segments.length;
  }
}

export type { RemoveReason };

let zlibModule: typeof Zlib | null = null;
/** node:zlib (with the node:stream it loads, ~5 ms of a start) is loaded at the first compressed record. */
function zlib(): typeof Zlib {
  return (zlibModule ??= process.getBuiltinModule("node:zlib") as typeof Zlib);
}

function indexFile(seg: Segment): string {
  return seg.file.slice(0, -".seg".length) + ".idx";
}

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

/** CRC-32 of a file's first `bytes` bytes, read in chunks. */
function segmentCrc(fd: number, bytes: number): number {
  const chunk = Buffer.allocUnsafe(Math.min(bytes, 1 << 20));
  let crc = 0;
  for (let at = 0; at < bytes; ) {
    const n = readSync(fd, chunk, 0, Math.min(chunk.length, bytes - at), at);
    if (n <= 0) return -1;
    crc = Bun.hash.crc32(chunk.subarray(0, n), crc) >>> 0;
    at += n;
  }
  return crc;
}

function sameLatin1(s: string, buf: Buffer, start: number, end: number): boolean {
  if (s.length !== end - start) return false;
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) !== buf[start + i]) return false;
  return true;
}
