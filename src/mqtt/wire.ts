// MQTT's data representations (spec 1.5): big-endian integers, variable byte integers, UTF-8
// strings and binary data with a 2-byte length. A reader over one packet's body, a growable writer.
import { malformed } from "./packets.ts";

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Reads one packet body; every overrun or bad encoding throws a malformed-packet error. */
export class ByteReader {
  at: number;

  constructor(
    readonly buf: Buffer,
    start: number,
    readonly end: number,
  ) {
    this.at = start;
  }

  get remaining(): number {
    return this.end - this.at;
  }

  private need(n: number, what: string): void {
    if (this.at + n > this.end) throw malformed(`${what}: packet too short`);
  }

  u8(what: string): number {
    this.need(1, what);
    return this.buf[this.at++]!;
  }

  u16(what: string): number {
    this.need(2, what);
    const v = (this.buf[this.at]! << 8) | this.buf[this.at + 1]!;
    this.at += 2;
    return v;
  }

  u32(what: string): number {
    this.need(4, what);
    const v = this.buf.readUInt32BE(this.at);
    this.at += 4;
    return v;
  }

  varint(what: string): number {
    let value = 0;
    let multiplier = 1;
    for (let n = 0; n < 4; n++) {
      const b = this.u8(what);
      value += (b & 0x7f) * multiplier;
      if ((b & 0x80) === 0) return value;
      multiplier *= 128;
    }
    throw malformed(`${what}: malformed variable int`);
  }

  binary(what: string): Buffer {
    const length = this.u16(what);
    this.need(length, what);
    const bytes = Buffer.from(this.buf.subarray(this.at, this.at + length));
    this.at += length;
    return bytes;
  }

  /** A UTF-8 string: invalid UTF-8 and U+0000 are malformed ([MQTT-1.5.4-1], [MQTT-1.5.4-2]). */
  string(what: string): string {
    const length = this.u16(what);
    this.need(length, what);
    // ASCII without NUL (most topics and ids): read as is, no decoder.
    const buf = this.buf;
    const start = this.at;
    let k = 0;
    while (k < length) {
      const b = buf[start + k]!;
      if (b === 0 || b >= 0x80) break;
      k++;
    }
    if (k === length) {
      this.at += length;
      return buf.latin1Slice(start, start + length);
    }
    let text: string;
    try {
      text = utf8.decode(this.buf.subarray(this.at, this.at + length));
    } catch {
      throw malformed(`${what}: invalid UTF-8`);
    }
    if (text.includes("\u0000")) throw malformed(`${what}: contains U+0000`);
    this.at += length;
    return text;
  }
}

/** Builds one packet; `bytes()` is the result. */
export class ByteWriter {
  private buf = Buffer.allocUnsafe(64);
  length = 0;

  private room(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.length + n));
    this.buf.copy(grown, 0, 0, this.length);
    this.buf = grown;
  }

  u8(v: number): this {
    this.room(1);
    this.buf[this.length++] = v;
    return this;
  }

  u16(v: number): this {
    this.room(2);
    this.buf[this.length++] = (v >> 8) & 0xff;
    this.buf[this.length++] = v & 0xff;
    return this;
  }

  u32(v: number): this {
    this.room(4);
    this.buf.writeUInt32BE(v >>> 0, this.length);
    this.length += 4;
    return this;
  }

  varint(v: number): this {
    do {
      let b = v % 128;
      v = Math.floor(v / 128);
      if (v > 0) b |= 0x80;
      this.u8(b);
    } while (v > 0);
    return this;
  }

  raw(bytes: Uint8Array): this {
    this.room(bytes.length);
    this.buf.set(bytes, this.length);
    this.length += bytes.length;
    return this;
  }

  binary(bytes: Uint8Array): this {
    return this.u16(bytes.length).raw(bytes);
  }

  string(text: string): this {
    return this.binary(Buffer.from(text, "utf8"));
  }

  bytes(): Buffer {
    return this.buf.subarray(0, this.length);
  }
}

/** The size of `v` as a variable byte integer. */
export function varintSize(v: number): number {
  return v < 128 ? 1 : v < 16384 ? 2 : v < 2097152 ? 3 : 4;
}

/** Writes `v` as a variable byte integer at `out[at]` (the caller made room: varintSize); returns where it ends. */
export function writeVarint(out: Uint8Array, at: number, v: number): number {
  do {
    let b = v & 0x7f;
    v = Math.floor(v / 128);
    if (v > 0) b |= 0x80;
    out[at++] = b;
  } while (v > 0);
  return at;
}

/** The largest value a variable byte integer holds (and so the largest remaining length). */
export const MAX_VARINT = 268_435_455;
