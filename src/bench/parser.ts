// What a NATS server writes to a client (INFO, MSG, HMSG, PING, PONG, +OK, -ERR), parsed with a byte loop
// over each chunk the socket hands over. Nothing is decoded into strings on the message path: the handler
// gets the control line's bytes and the positions of the subject, reply and payload in them.

/** Thrown for bytes that are not the NATS protocol (wrong port, TLS, HTTP…). */
export class ProtocolError extends Error {}

export interface ProtocolHandler {
  /**
   * One MSG or HMSG. The fields are on `p` (ctl, subject/reply ranges, sid, header and total sizes); the
   * message body (headers then payload, `p.size` bytes) starts at `body[bodyStart]`.
   */
  onMsg(p: Parser, body: Uint8Array, bodyStart: number): void;
  onPing(): void;
  onPong(): void;
  onInfo(json: string): void;
  onErr(message: string): void;
}

const CR = 13;
const LF = 10;
const SPACE = 32;
const TAB = 9;
const MAX_CONTROL_LINE = 64 * 1024;
const latin1 = new TextDecoder("latin1");

export class Parser {
  /** The control line of the current message (the chunk itself, or a copy when it straddled two chunks). */
  ctl: Uint8Array = new Uint8Array(0);
  subjectStart = 0;
  subjectEnd = 0;
  /** Reply subject range in `ctl`; empty (start === end) when the message has none. */
  replyStart = 0;
  replyEnd = 0;
  sid = 0;
  /** Header bytes at the start of the body (HMSG); 0 for MSG. */
  headerSize = 0;
  /** Body bytes: headers and payload. */
  size = 0;

  /** Bytes of a control line that did not end in the last chunk. */
  private partialLine: Uint8Array | null = null;
  /** A body that did not end in the last chunk: filled up to `bodyFill`, then `bodyNeed` more bytes (body + CRLF). */
  private body: Uint8Array | null = null;
  private bodyFill = 0;
  private readonly tokens = new Int32Array(12);

  constructor(private readonly handler: ProtocolHandler) {}

  feed(chunk: Uint8Array): void {
    let i = 0;
    const n = chunk.length;
    if (this.body !== null) {
      i = this.continueBody(chunk);
      if (i < 0) return;
    }
    if (this.partialLine !== null) {
      const nl = chunk.indexOf(LF);
      if (nl < 0) {
        this.partialLine = concat(this.partialLine, chunk, 0, n);
        if (this.partialLine.length > MAX_CONTROL_LINE) throw new ProtocolError("control line too long");
        return;
      }
      const line = concat(this.partialLine, chunk, 0, nl + 1);
      this.partialLine = null;
      i = this.control(line, 0, line.length - 1, chunk, nl + 1);
      if (i < 0) return;
    }
    while (i < n) {
      const nl = chunk.indexOf(LF, i);
      if (nl < 0) {
        if (n - i > MAX_CONTROL_LINE) throw new ProtocolError("control line too long");
        this.partialLine = chunk.slice(i);
        return;
      }
      i = this.control(chunk, i, nl, chunk, nl + 1);
      if (i < 0) return;
    }
  }

  /**
   * Handles the control line `line[start, lf)` (lf: the position of its LF); what follows it is `rest[from…]`.
   * Returns where parsing goes on in `rest`, or -1 when a body is incomplete (kept for the next chunk).
   */
  private control(line: Uint8Array, start: number, lf: number, rest: Uint8Array, from: number): number {
    let end = lf;
    if (end > start && line[end - 1] === CR) end--;
    const c0 = line[start]! | 0x20;
    if (c0 === 0x6d /* m */ || c0 === 0x68 /* h */) {
      const withHeaders = c0 === 0x68;
      this.parseMsgLine(line, start + (withHeaders ? 5 : 4), end, withHeaders);
      const need = this.size + 2;
      if (rest.length - from >= need) {
        this.handler.onMsg(this, rest, from);
        return from + need;
      }
      // The body runs into the next chunk: keep the control line and what arrived of the body.
      if (line === rest) this.ctl = line.slice(start, end);
      this.rebase(line === rest ? start : 0);
      const body = new Uint8Array(need);
      body.set(rest.subarray(from));
      this.body = body;
      this.bodyFill = rest.length - from;
      return -1;
    }
    if (c0 === 0x70 /* p */) {
      const c1 = line[start + 1]! | 0x20;
      if (c1 === 0x69 /* PING */) this.handler.onPing();
      else if (c1 === 0x6f /* PONG */) this.handler.onPong();
      else throw new ProtocolError(`unexpected "${text(line, start, end)}"`);
      return from;
    }
    if (c0 === 0x69 /* INFO */) {
      this.handler.onInfo(text(line, start + 4, end).trim());
      return from;
    }
    if (line[start] === 0x2b /* +OK */) return from;
    if (line[start] === 0x2d /* -ERR */) {
      this.handler.onErr(text(line, start + 4, end).trim().replace(/^'(.*)'$/, "$1"));
      return from;
    }
    if (end === start) return from; // an empty line: tolerated
    throw new ProtocolError(`unexpected "${text(line, start, Math.min(end, start + 40))}"`);
  }

  /** `MSG <subject> <sid> [reply] <size>` or `HMSG <subject> <sid> [reply] <hdr size> <total size>`. */
  private parseMsgLine(line: Uint8Array, start: number, end: number, withHeaders: boolean): void {
    const t = this.tokens;
    let count = 0;
    let i = start;
    while (i < end && count < 6) {
      while (i < end && (line[i] === SPACE || line[i] === TAB)) i++;
      if (i >= end) break;
      const s = i;
      while (i < end && line[i] !== SPACE && line[i] !== TAB) i++;
      t[count * 2] = s;
      t[count * 2 + 1] = i;
      count++;
    }
    const fixed = withHeaders ? 4 : 3;
    if (count !== fixed && count !== fixed + 1) throw new ProtocolError(`bad ${withHeaders ? "HMSG" : "MSG"} line "${text(line, start, end)}"`);
    this.ctl = line;
    this.subjectStart = t[0]!;
    this.subjectEnd = t[1]!;
    this.sid = number(line, t[2]!, t[3]!);
    if (count === fixed + 1) {
      this.replyStart = t[4]!;
      this.replyEnd = t[5]!;
    } else {
      this.replyStart = this.replyEnd = 0;
    }
    const last = (count - 1) * 2;
    this.size = number(line, t[last]!, t[last + 1]!);
    this.headerSize = withHeaders ? number(line, t[last - 2]!, t[last - 1]!) : 0;
    if (this.sid < 0 || this.size < 0 || this.headerSize < 0 || this.headerSize > this.size) {
      throw new ProtocolError(`bad ${withHeaders ? "HMSG" : "MSG"} line "${text(line, start, end)}"`);
    }
  }

  /** After `ctl` was copied from `offset` on, the ranges in it move by -offset. */
  private rebase(offset: number): void {
    this.subjectStart -= offset;
    this.subjectEnd -= offset;
    if (this.replyEnd !== 0) {
      this.replyStart -= offset;
      this.replyEnd -= offset;
    }
  }

  /** Fills the pending body from `chunk`; returns where parsing goes on, or -1 when the chunk was used up. */
  private continueBody(chunk: Uint8Array): number {
    const body = this.body!;
    const want = body.length - this.bodyFill;
    if (chunk.length < want) {
      body.set(chunk, this.bodyFill);
      this.bodyFill += chunk.length;
      return -1;
    }
    body.set(chunk.subarray(0, want), this.bodyFill);
    this.body = null;
    this.handler.onMsg(this, body, 0);
    return want;
  }
}

function number(buf: Uint8Array, start: number, end: number): number {
  if (end <= start || end - start > 15) return -1;
  let v = 0;
  for (let i = start; i < end; i++) {
    const d = buf[i]! - 48;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
  }
  return v;
}

function concat(a: Uint8Array, b: Uint8Array, start: number, end: number): Uint8Array {
  const out = new Uint8Array(a.length + end - start);
  out.set(a);
  out.set(b.subarray(start, end), a.length);
  return out;
}

function text(buf: Uint8Array, start: number, end: number): string {
  return latin1.decode(buf.subarray(start, end));
}
