// The saved index of one file-store segment: <n>.idx beside <n>.seg, everything loading the segment takes
// from its records except the bodies, laid out as columns that a load uses in place (one typed-array view
// each, no loop over the messages): a restart reads ~28 bytes a message instead of every record, computes
// one CRC over the segment instead of one per record, and adds the segment's messages to the store in one
// step (IndexedStore.indexAddRun), each subject's sequences as one view (SubjectSeqs.addSaved).
//
// File (little-endian; every column starts at a multiple of 8 bytes, so that it can be viewed in place):
//   header, 56 bytes:
//     u32 magic "NIX2" | u32 message count n | f64 segment bytes | u32 CRC-32 of those segment bytes |
//     u32 subject count s | u32 other-row numbers m | u32 subject-name bytes | f64 bytes (as state.bytes
//     counts the n messages) | u32 flags (1: the messages' sequences are first, first + 1, …) | u32 0 |
//     f64 first (the first message's sequence; 0 without messages)
//   columns, each padded to 8 bytes:
//     f64 seq × n (only when not consecutive) | f64 ts × n |
//     u32 seq − first × n, grouped by subject (subject 0's ascending, then subject 1's…) |
//     u32 record offset × n | u32 record length × n | u32 size × n | u32 subject × n |
//     u32 messages of the subject × s | u16 name length × s | the names, latin1
//   other rows: f64 × m, in the segment's order, `at` = the number of messages before the row:
//     deletes: 2 | at | count | seq × count
//     marker:  3 | at | floor | last seq | last ts
//   u32 CRC-32 of all before
// (NIX1, the row-by-row format before this one, is not read: such a segment is read record by record
// once and its index saved in this format.)
//
// Trust: FileStore uses an index only if its own CRC verifies and the segment is, byte for byte, the one
// it was written for (same length, same CRC-32 of every byte); anything else and the segment is read
// record by record, as without an index, and a new index is saved. So a damaged, stale or foreign
// index can cost time, never a message.
export const ROW_DELETES = 2;
export const ROW_MARKER = 3;

const MAGIC = 0x3258494e; // "NIX2"
const MAGIC_NIX1 = 0x3158494e; // "NIX1"
const HEAD = 56;
/** The header's flag: the messages' sequences are first, first + 1, … (what a load adds in one step). */
const FLAG_CONSECUTIVE = 1;
/** Typed arrays are the host's byte order: the format is little-endian, as every host natter runs on. */
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

const pad8 = (n: number) => (n + 7) & ~7;

/** The file's size for n messages, s subjects, its names' bytes and m other-row numbers (without its CRC). */
const sizeOf = (n: number, consecutive: boolean, s: number, nameBytes: number, m: number) =>
  HEAD + (consecutive ? 0 : 8 * n) + 8 * n + 5 * pad8(4 * n) + pad8(4 * s) + pad8(2 * s) + pad8(nameBytes) + 8 * m;

/** A saved index read back whose own CRC verifies: views of its file's columns. */
export interface SavedIndex {
  readonly segmentBytes: number;
  readonly segmentCrc: number;
  readonly subjects: string[];
  /** Sum of the messages' sizes (as state.bytes counts them). */
  readonly bytes: number;
  /** The first message's sequence; with `consecutive`, message i's is first + i. */
  readonly first: number;
  readonly consecutive: boolean;
  /** Each message's sequence: null when consecutive. */
  readonly seqs: Float64Array | null;
  readonly ts: Float64Array;
  /** Each subject's sequences − first, ascending, subject after subject (subjectCounts[i] of subject i). */
  readonly bySubject: Uint32Array;
  readonly offsets: Uint32Array;
  readonly lengths: Uint32Array;
  readonly sizes: Uint32Array;
  readonly subjectOf: Uint32Array;
  readonly subjectCounts: Uint32Array;
  /** Deletes and markers, as the header comment lays them out. */
  readonly others: Float64Array;
}

/** Message i's sequence. */
export function seqAt(saved: SavedIndex, i: number): number {
  return saved.seqs === null ? saved.first + i : saved.seqs[i]!;
}

/** Whether a file is an index of the old (NIX1) format: not read, its segment is indexed again. */
export function isOldSegmentIndex(buf: Buffer): boolean {
  return buf.length >= 4 && buf.readUInt32LE(0) === MAGIC_NIX1;
}

/** Reads a saved index; null when it is short, not one, or fails its CRC. */
export function parseSegmentIndex(file: Buffer): SavedIndex | null {
  if (!LITTLE_ENDIAN || file.length < HEAD + 4 || file.readUInt32LE(0) !== MAGIC) return null;
  const end = file.length - 4;
  if ((Bun.hash.crc32(file.subarray(0, end)) >>> 0) !== file.readUInt32LE(end)) return null;
  // The views need the file at a multiple of 8 in its memory (a read file's own buffer is).
  const buf = file.byteOffset % 8 === 0 ? file : Buffer.from(new Uint8Array(file).buffer);
  const n = buf.readUInt32LE(4);
  const s = buf.readUInt32LE(20);
  const m = buf.readUInt32LE(24);
  const nameBytes = buf.readUInt32LE(28);
  const consecutive = (buf.readUInt32LE(40) & FLAG_CONSECUTIVE) !== 0;
  if (end !== sizeOf(n, consecutive, s, nameBytes, m)) return null;
  let at = buf.byteOffset + HEAD;
  const f64 = (count: number) => {
    const v = new Float64Array(buf.buffer, at, count);
    at += 8 * count;
    return v;
  };
  const u32 = (count: number) => {
    const v = new Uint32Array(buf.buffer, at, count);
    at += pad8(4 * count);
    return v;
  };
  const seqs = consecutive ? null : f64(n);
  const ts = f64(n);
  const bySubject = u32(n);
  const offsets = u32(n);
  const lengths = u32(n);
  const sizes = u32(n);
  const subjectOf = u32(n);
  const subjectCounts = u32(s);
  const nameLengths = new Uint16Array(buf.buffer, at, s);
  at += pad8(2 * s);
  const subjects: string[] = new Array(s);
  let name = at - buf.byteOffset;
  for (let i = 0; i < s; i++) {
    if (name + nameLengths[i]! > end) return null;
    subjects[i] = buf.latin1Slice(name, name + nameLengths[i]!);
    name += nameLengths[i]!;
  }
  at += pad8(nameBytes);
  const others = f64(m);
  return {
    segmentBytes: buf.readDoubleLE(8), segmentCrc: buf.readUInt32LE(16), subjects, bytes: buf.readDoubleLE(32),
    first: buf.readDoubleLE(48), consecutive, seqs, ts, bySubject, offsets, lengths, sizes, subjectOf, subjectCounts, others,
  };
}

/**
 * The rows of a segment being written (or read record by record), kept while it is the active segment
 * and saved when it is sealed or the store closes. `end` is where the last record it covers ends: an
 * index is saved only when that is where the segment ends.
 */
export class SegmentIndexBuilder {
  // Small at first: a server may have many streams, most of them small.
  /** Each message's sequence, kept only once they are not consecutive (until then: first + i). */
  private seqs = new Float64Array(64);
  private ts = new Float64Array(64);
  private offsets = new Uint32Array(64);
  private lengths = new Uint32Array(64);
  private sizes = new Uint32Array(64);
  private subjectOf = new Uint32Array(64);
  private n = 0;
  private bytes = 0;
  private first = 0;
  /** Whether the sequences so far are first, first + 1, … (kept as they come: encode makes no pass for it). */
  private consecutive = true;
  private readonly ids = new Map<string, number>();
  private readonly subjects: string[] = [];
  /** Messages per subject (by subject number). */
  private readonly counts: number[] = [];
  private readonly others: number[] = [];
  end = 0;

  /** Goes on from a saved index (the active segment of a store that was closed cleanly). */
  static continueFrom(saved: SavedIndex): SegmentIndexBuilder {
    const b = new SegmentIndexBuilder();
    const n = saved.ts.length;
    b.grow(n);
    if (saved.seqs !== null) b.seqs.set(saved.seqs);
    b.ts.set(saved.ts);
    b.offsets.set(saved.offsets);
    b.lengths.set(saved.lengths);
    b.sizes.set(saved.sizes);
    b.subjectOf.set(saved.subjectOf);
    b.n = n;
    b.bytes = saved.bytes;
    b.first = saved.first;
    b.consecutive = saved.consecutive;
    for (const s of saved.subjects) b.subjectId(s);
    for (let k = 0; k < saved.subjectCounts.length; k++) b.counts[k] = saved.subjectCounts[k]!;
    for (let i = 0; i < saved.others.length; i++) b.others.push(saved.others[i]!);
    b.end = saved.segmentBytes;
    return b;
  }

  message(subject: string, seq: number, ts: number, offset: number, length: number, size: number): void {
    const i = this.n;
    if (i === this.ts.length) this.grow(2 * i);
    if (i === 0) this.first = seq;
    else if (this.consecutive && seq !== this.first + i) {
      // From now on each sequence is kept (a lost tail was skipped inside this segment: rare).
      this.consecutive = false;
      for (let k = 0; k < i; k++) this.seqs[k] = this.first + k;
    }
    if (!this.consecutive) this.seqs[i] = seq;
    this.ts[i] = ts;
    this.offsets[i] = offset;
    this.lengths[i] = length;
    this.sizes[i] = size;
    const id = this.subjectId(subject);
    this.subjectOf[i] = id;
    this.counts[id]!++;
    this.n = i + 1;
    this.bytes += size;
    this.end = offset + length;
  }

  deletes(seqs: readonly number[], offset: number, length: number): void {
    this.others.push(ROW_DELETES, this.n, seqs.length);
    for (const seq of seqs) this.others.push(seq);
    this.end = offset + length;
  }

  marker(floor: number, lastSeq: number, lastTs: number, offset: number, length: number): void {
    this.others.push(ROW_MARKER, this.n, floor, lastSeq, lastTs);
    this.end = offset + length;
  }

  /**
   * The file for a segment of `segmentBytes` bytes whose CRC-32 is `segmentCrc`; null if its sequences
   * span 2^32 or more (a gap that large inside one segment: such a segment is read record by record).
   */
  encode(segmentBytes: number, segmentCrc: number): Buffer | null {
    const n = this.n;
    const consecutive = this.consecutive;
    const seqs = consecutive ? null : this.seqs.subarray(0, n);
    if (seqs !== null && seqs[n - 1]! - this.first >= 2 ** 32) return null;
    const s = this.subjects.length;
    const names = this.subjects.map((name) => Buffer.from(name, "latin1"));
    const nameBytes = names.reduce((sum, b) => sum + b.length, 0);
    const m = this.others.length;
    // Its own memory (at a multiple of 8, for the column written in place); padding stays zero, so that an
    // index rebuilt from the records is byte for byte the one saved before.
    const out = Buffer.from(new ArrayBuffer(sizeOf(n, consecutive, s, nameBytes, m) + 4));
    out.writeUInt32LE(MAGIC, 0);
    out.writeUInt32LE(n, 4);
    out.writeDoubleLE(segmentBytes, 8);
    out.writeUInt32LE(segmentCrc >>> 0, 16);
    out.writeUInt32LE(s, 20);
    out.writeUInt32LE(m, 24);
    out.writeUInt32LE(nameBytes, 28);
    out.writeDoubleLE(this.bytes, 32);
    out.writeUInt32LE(consecutive ? FLAG_CONSECUTIVE : 0, 40);
    out.writeDoubleLE(n === 0 ? 0 : this.first, 48);
    let at = HEAD;
    const put = (column: Float64Array | Uint32Array | Uint16Array | Buffer) => {
      new Uint8Array(out.buffer, out.byteOffset + at, column.byteLength).set(new Uint8Array(column.buffer, column.byteOffset, column.byteLength));
      at = pad8(at + column.byteLength);
    };
    if (seqs !== null) put(seqs);
    put(this.ts.subarray(0, n));
    // Each subject's sequences together (a counting sort by subject, written in place): what
    // SubjectSeqs.addSaved takes. Consecutive, a message's sequence − first is its number.
    const counts = Uint32Array.from(this.counts);
    const next = new Uint32Array(s);
    for (let k = 1; k < s; k++) next[k] = next[k - 1]! + counts[k - 1]!;
    const bySubject = new Uint32Array(out.buffer, out.byteOffset + at, n);
    const subjectOf = this.subjectOf.subarray(0, n);
    if (seqs === null) for (let i = 0; i < n; i++) bySubject[next[subjectOf[i]!]!++] = i;
    else for (let i = 0; i < n; i++) bySubject[next[subjectOf[i]!]!++] = seqs[i]! - this.first;
    at = pad8(at + 4 * n);
    put(this.offsets.subarray(0, n));
    put(this.lengths.subarray(0, n));
    put(this.sizes.subarray(0, n));
    put(subjectOf);
    put(counts);
    put(Uint16Array.from(names, (b) => b.length));
    put(names.length === 0 ? Buffer.alloc(0) : Buffer.concat(names, nameBytes));
    put(Float64Array.from(this.others));
    out.writeUInt32LE(Bun.hash.crc32(out.subarray(0, at)) >>> 0, at);
    return out;
  }

  private subjectId(subject: string): number {
    let id = this.ids.get(subject);
    if (id === undefined) {
      id = this.subjects.length;
      this.subjects.push(subject);
      this.counts.push(0);
      this.ids.set(subject, id);
    }
    return id;
  }

  private grow(capacity: number): void {
    if (capacity <= this.ts.length) return;
    const more = <T extends Float64Array | Uint32Array>(old: T, make: (n: number) => T): T => {
      const grown = make(capacity);
      grown.set(old.subarray(0, this.n));
      return grown;
    };
    this.seqs = more(this.seqs, (c) => new Float64Array(c));
    this.ts = more(this.ts, (c) => new Float64Array(c));
    this.offsets = more(this.offsets, (c) => new Uint32Array(c));
    this.lengths = more(this.lengths, (c) => new Uint32Array(c));
    this.sizes = more(this.sizes, (c) => new Uint32Array(c));
    this.subjectOf = more(this.subjectOf, (c) => new Uint32Array(c));
  }
}
