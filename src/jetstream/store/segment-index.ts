// The saved index of one file-store segment: <n>.idx beside <n>.seg, everything loading the segment takes
// from its records except the bodies, so that a restart reads rows of ~16 bytes instead of every record
// (and computes one CRC over the segment instead of one per record).
//
// File:  u32 LE magic "NIX1" | f64 LE segment bytes | u32 LE CRC-32 of those segment bytes |
//        u32 LE subject count | (u16 LE length | latin1 subject) × count | rows | u32 LE CRC-32 of all before
// Rows, one per record of the segment, in its order (v = a varint: 7 bits a byte, low first):
//   message: u8 1 | v subject index | v seq − the seq of the row's previous message (the first: seq) |
//            f64 LE ts | v offset of the record | v record length | v size (as state.bytes counts it)
//   deletes: u8 2 | v count | f64 LE seq × count
//   marker:  u8 3 | f64 LE floor | f64 LE last seq | f64 LE last ts
//
// Trust: FileStore uses an index only if its own CRC verifies and the segment is, byte for byte, the one
// it was written for (same length, same CRC-32 of every byte); anything else and the segment is read
// record by record, as without an index, and a new index is saved. So a damaged, stale or foreign
// index can cost time, never a message.
export const ROW_MESSAGE = 1;
export const ROW_DELETES = 2;
export const ROW_MARKER = 3;

const MAGIC = 0x3158494e; // "NIX1"
/** Bytes before the subjects: magic, segment bytes, segment CRC, subject count. */
const HEAD = 4 + 8 + 4 + 4;

/** A saved index read back whose own CRC verifies; its rows are [rowsStart, rowsEnd) of `buf`. */
export interface SavedIndex {
  readonly segmentBytes: number;
  readonly segmentCrc: number;
  readonly subjects: string[];
  readonly buf: Buffer;
  readonly view: DataView;
  readonly rowsStart: number;
  readonly rowsEnd: number;
}

/** Reads a saved index; null when it is short, not one, or fails its CRC. */
export function parseSegmentIndex(buf: Buffer): SavedIndex | null {
  if (buf.length < HEAD + 4) return null;
  const view = new DataView(buf.buffer, buf.byteOffset, buf.length);
  const end = buf.length - 4;
  if (view.getUint32(0, true) !== MAGIC) return null;
  if ((Bun.hash.crc32(buf.subarray(0, end)) >>> 0) !== view.getUint32(end, true)) return null;
  const count = view.getUint32(16, true);
  const subjects: string[] = new Array(count);
  let at = HEAD;
  for (let i = 0; i < count; i++) {
    if (at + 2 > end) return null;
    const length = view.getUint16(at, true);
    if (at + 2 + length > end) return null;
    subjects[i] = buf.latin1Slice(at + 2, at + 2 + length);
    at += 2 + length;
  }
  return { segmentBytes: view.getFloat64(4, true), segmentCrc: view.getUint32(12, true), subjects, buf, view, rowsStart: at, rowsEnd: end };
}

/** Reads rows: a position in a saved index (or a builder's bytes) and its fields in order. */
export class RowReader {
  pos: number;
  constructor(readonly buf: Uint8Array, readonly view: DataView, pos: number) {
    this.pos = pos;
  }

  /** The varint at `at` (its first byte already seen by the caller); `pos` moves past it. */
  varintFrom(at: number): number {
    this.pos = at;
    return this.varint();
  }

  varint(): number {
    const buf = this.buf;
    let b = buf[this.pos++]!;
    if (b < 128) return b;
    let value = b & 127;
    let scale = 128;
    for (;;) {
      b = buf[this.pos++]!;
      value += (b & 127) * scale; // not shifts: sequences go past 2^31
      if (b < 128) return value;
      scale *= 128;
    }
  }

  f64(): number {
    const v = this.view.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }
}

/**
 * The rows of a segment being written (or read record by record), kept while it is the active segment
 * and saved when it is sealed or the store closes. `end` is where the last record it covers ends: an
 * index is saved only when that is where the segment ends.
 */
export class SegmentIndexBuilder {
  // Small at first: a server may have many streams, most of them small.
  private buf = Buffer.allocUnsafe(1024);
  private view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.length);
  private at = 0;
  private readonly ids = new Map<string, number>();
  private readonly subjects: string[] = [];
  private lastMessageSeq = 0;
  end = 0;

  /** Goes on from a saved index (the active segment of a store that was closed cleanly). */
  static continueFrom(saved: SavedIndex, lastMessageSeq: number): SegmentIndexBuilder {
    const b = new SegmentIndexBuilder();
    const rows = saved.buf.subarray(saved.rowsStart, saved.rowsEnd);
    b.reserve(rows.length);
    rows.copy(b.buf, 0);
    b.at = rows.length;
    for (const s of saved.subjects) b.subjectId(s);
    b.lastMessageSeq = lastMessageSeq;
    b.end = saved.segmentBytes;
    return b;
  }

  message(subject: string, seq: number, ts: number, offset: number, length: number, size: number): void {
    if (this.at + 48 > this.buf.length) this.reserve(48); // the longest row: 1 + 5 + 8 + 8 + 3 × 8
    this.buf[this.at++] = ROW_MESSAGE;
    this.varint(this.subjectId(subject));
    this.varint(seq - this.lastMessageSeq);
    this.lastMessageSeq = seq;
    this.f64(ts);
    this.varint(offset);
    this.varint(length);
    this.varint(size);
    this.end = offset + length;
  }

  deletes(seqs: readonly number[], offset: number, length: number): void {
    this.reserve(1 + 5 + 8 * seqs.length);
    this.buf[this.at++] = ROW_DELETES;
    this.varint(seqs.length);
    for (const seq of seqs) this.f64(seq);
    this.end = offset + length;
  }

  marker(floor: number, lastSeq: number, lastTs: number, offset: number, length: number): void {
    this.reserve(1 + 24);
    this.buf[this.at++] = ROW_MARKER;
    this.f64(floor);
    this.f64(lastSeq);
    this.f64(lastTs);
    this.end = offset + length;
  }

  /** The file for a segment of `segmentBytes` bytes whose CRC-32 is `segmentCrc`. */
  encode(segmentBytes: number, segmentCrc: number): Buffer {
    const names = this.subjects.map((s) => Buffer.from(s, "latin1"));
    const size = HEAD + names.reduce((n, b) => n + 2 + b.length, 0) + this.at + 4;
    const out = Buffer.allocUnsafe(size);
    out.writeUInt32LE(MAGIC, 0);
    out.writeDoubleLE(segmentBytes, 4);
    out.writeUInt32LE(segmentCrc >>> 0, 12);
    out.writeUInt32LE(names.length, 16);
    let at = HEAD;
    for (const name of names) {
      at = out.writeUInt16LE(name.length, at);
      at += name.copy(out, at);
    }
    at += this.buf.copy(out, at, 0, this.at);
    out.writeUInt32LE(Bun.hash.crc32(out.subarray(0, at)) >>> 0, at);
    return out;
  }

  private subjectId(subject: string): number {
    let id = this.ids.get(subject);
    if (id === undefined) {
      id = this.subjects.length;
      this.subjects.push(subject);
      this.ids.set(subject, id);
    }
    return id;
  }

  private f64(v: number): void {
    this.view.setFloat64(this.at, v, true);
    this.at += 8;
  }

  private varint(v: number): void {
    const buf = this.buf;
    let at = this.at;
    if (v < 0x80000000) {
      for (; v >= 128; v >>>= 7) buf[at++] = (v & 127) | 128;
    } else {
      // Past 31 bits (a sequence's first delta), without shifts.
      for (; v >= 128; v = Math.floor(v / 128)) buf[at++] = (v % 128) | 128;
    }
    buf[at++] = v;
    this.at = at;
  }

  private reserve(n: number): void {
    if (this.at + n <= this.buf.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.at + n));
    this.buf.copy(grown, 0, 0, this.at);
    this.buf = grown;
    this.view = new DataView(grown.buffer, grown.byteOffset, grown.length);
  }
}
