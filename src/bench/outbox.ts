// Frames collected during one socket read (replies, follow-up requests) and written together.

import type { NatsConn } from "./conn.ts";
import { writeDecimal } from "./publisher.ts";

export class Outbox {
  private buf = new Uint8Array(64 * 1024);
  length = 0;

  constructor(private readonly conn: NatsConn) {}

  private reserve(extra: number): void {
    if (this.length + extra <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + extra) size *= 2;
    const bigger = new Uint8Array(size);
    bigger.set(this.buf.subarray(0, this.length));
    this.buf = bigger;
  }

  bytes(src: Uint8Array, start = 0, end = src.length): void {
    const n = end - start;
    this.reserve(n);
    this.buf.set(src.subarray(start, end), this.length);
    this.length += n;
  }

  decimal(value: number): void {
    this.reserve(20);
    this.length = writeDecimal(this.buf, this.length, value);
  }

  crlf(): void {
    this.reserve(2);
    this.buf[this.length++] = 13;
    this.buf[this.length++] = 10;
  }

  space(): void {
    this.reserve(1);
    this.buf[this.length++] = 32;
  }

  /** Writes what was collected (the connection keeps a copy of what the socket does not take at once). */
  flush(): void {
    if (this.length === 0) return;
    this.conn.write(this.buf, 0, this.length);
    this.length = 0;
    // A burst may have grown the buffer a lot; do not keep it.
    if (this.buf.length > 4 * 1024 * 1024) this.buf = new Uint8Array(64 * 1024);
  }
}
