// The binary entries of a replicated stream's Raft log (stream-replica.ts): a cursor that writes or reads
// fixed-width numbers and length-prefixed fields, so that each entry kind states its layout once, in order.
// Numbers are big-endian; a "short" field has a u16 length prefix, a "long" one a u32 prefix, and the
// "rest" of an entry has none (it runs to the end).

export class EntryWriter {
  readonly out: Buffer;
  private at = 0;

  /** `size`: the entry's exact length (EntryWriter.short / .long give a field's). */
  constructor(size: number) {
    this.out = Buffer.allocUnsafe(size);
  }

  static short(field: Uint8Array): number {
    return 2 + field.length;
  }

  /** A short field's length for latin1 text (subjects: one byte per character). */
  static shortText(text: string): number {
    return 2 + text.length;
  }

  static long(field: Uint8Array | null): number {
    return 4 + (field?.length ?? 0);
  }

  u8(value: number): void {
    this.out[this.at++] = value;
  }

  u32(value: number): void {
    this.out.writeUInt32BE(value, this.at);
    this.at += 4;
  }

  f64(value: number): void {
    this.out.writeDoubleBE(value, this.at);
    this.at += 8;
  }

  short(field: Uint8Array): void {
    this.out.writeUInt16BE(field.length, this.at);
    this.out.set(field, this.at + 2);
    this.at += 2 + field.length;
  }

  /** Latin1 text as a short field (what shortText reads), written in place: no Buffer made for it. */
  shortText(text: string): void {
    this.out.writeUInt16BE(text.length, this.at);
    this.out.latin1Write(text, this.at + 2, text.length);
    this.at += 2 + text.length;
  }

  /** A long field; null is written as an empty one. */
  long(field: Uint8Array | null): void {
    const length = field?.length ?? 0;
    this.out.writeUInt32BE(length, this.at);
    if (field !== null) this.out.set(field, this.at + 4);
    this.at += 4 + length;
  }

  rest(field: Uint8Array): void {
    this.out.set(field, this.at);
    this.at += field.length;
  }
}

export class EntryReader {
  private readonly b: Buffer;

  /** Reads `data` from `at` (1: past the kind byte). */
  constructor(data: Uint8Array, private at = 1) {
    // (A new Buffer over the same memory costs more than reading a small entry: only when it is not one.)
    this.b = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  }

  u32(): number {
    const value = this.b.readUInt32BE(this.at);
    this.at += 4;
    return value;
  }

  f64(): number {
    const value = this.b.readDoubleBE(this.at);
    this.at += 8;
    return value;
  }

  /** A short field as latin1 text ("" when empty). */
  shortText(): string {
    const length = this.b.readUInt16BE(this.at);
    const text = this.b.latin1Slice(this.at + 2, this.at + 2 + length);
    this.at += 2 + length;
    return text;
  }

  /** A short field as UTF-8 text (names that may hold any character). */
  shortUtf8(): string {
    const length = this.b.readUInt16BE(this.at);
    const text = this.b.toString("utf8", this.at + 2, this.at + 2 + length);
    this.at += 2 + length;
    return text;
  }

  /** The rest of the entry as UTF-8 text (a JSON body). */
  restUtf8(): string {
    const text = this.b.toString("utf8", this.at);
    this.at = this.b.length;
    return text;
  }

  /** A long field, copied out of the entry (the log may reuse its memory); null when empty. */
  long(): Buffer | null {
    const length = this.b.readUInt32BE(this.at);
    const field = length === 0 ? null : Buffer.from(this.b.subarray(this.at + 4, this.at + 4 + length));
    this.at += 4 + length;
    return field;
  }

  /** A long field as a view into the entry (an entry inside a GROUP entry: each is decoded, and copies what it keeps). */
  longView(): Uint8Array {
    const length = this.b.readUInt32BE(this.at);
    const field = this.b.subarray(this.at + 4, this.at + 4 + length);
    this.at += 4 + length;
    return field;
  }

  /** Whether the whole entry was read. */
  get done(): boolean {
    return this.at >= this.b.length;
  }

  /** Whether a field's length prefix ran past the end (a truncated entry: the last field read is short). */
  get overran(): boolean {
    return this.at > this.b.length;
  }

  /** The rest of the entry, copied. */
  rest(): Buffer {
    const field = Buffer.from(this.b.subarray(this.at));
    this.at = this.b.length;
    return field;
  }
}
