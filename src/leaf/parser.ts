// The leafnode protocol parser: bytes in, calls on a LeafProtocolHandler out. The same design as the
// client parser (src/protocol/parser.ts): a whole control line per pass of one byte loop that finds the
// line end and the token boundaries; a message payload is jumped over, never scanned, and handed to the
// handler as offsets into the read buffer. An op split across reads is carried over with only its own
// bytes (its control line, then the payload it announced).
//
// Errors follow nats-server: an unknown op gets `-ERR 'Unknown Protocol Operation'` (errText set) and
// a close; malformed LS+/LMSG arguments close the connection without an -ERR. The parser stops at the
// first error; the handler closes.

import type { ProtocolTracer } from "../protocol/parser.ts";

export interface LeafProtocolHandler {
  onInfo(json: string): void;
  onConnect(json: string): void;
  onPing(): void;
  onPong(): void;
  onErr(text: string): void;
  /** LS+: weight is the member count of a queue group (1 for a plain subscription). */
  onLeafSub(subject: string, queue: string | null, weight: number): void;
  onLeafUnsub(subject: string, queue: string | null): void;
  /**
   * LMSG (headerSize < 0) or HMSG. Positions index `buf`, valid only during the call. The queue
   * groups named are tokens [queuesFrom, queuesTo) of `parser.tokenStart/tokenEnd`. `tailStart` is
   * where `[reply ][hdr ]size\r\npayload\r\n` starts when that is byte for byte the tail of a client
   * MSG/HMSG (no queue names, single spaces, CRLF); else -1.
   */
  onLeafMsg(
    buf: Buffer,
    subjectStart: number,
    subjectEnd: number,
    replyStart: number,
    replyEnd: number,
    queuesFrom: number,
    queuesTo: number,
    headerSize: number,
    payloadStart: number,
    payloadEnd: number,
    tailStart: number,
  ): void;
  /** errText: the -ERR to send before closing (null: close without one). */
  onParseError(errText: string | null, detail: string): void;
}

const enum Byte {
  TAB = 9,
  LF = 10,
  CR = 13,
  SPACE = 32,
  PLUS = 43,
  MINUS = 45,
  PIPE = 124,
}

/** Tokens of one control line: `LMSG subject + reply` and up to ~250 queue names. More is refused. */
const MAX_TOKENS = 256;

const ERR_UNKNOWN = "Unknown Protocol Operation";

const enum Op {
  UNKNOWN,
  LMSG,
  HMSG,
  LSPLUS,
  LSMINUS,
  PING,
  PONG,
  INFO,
  CONNECT,
  OK,
  ERR,
}

export class LeafParser {
  stopped = false;
  /** Set by the connection while tracing (-V): each complete op is traced before it is handled. */
  tracer: ProtocolTracer | null = null;
  /** Token boundaries of the current control line (the queue names of an LMSG are read from here). */
  readonly tokenStart = new Int32Array(MAX_TOKENS);
  readonly tokenEnd = new Int32Array(MAX_TOKENS);

  private carry: Buffer | null = null;
  private carryLength = 0;
  private pendingOpLength = 0;
  private lastIncompleteOpLength = 0;

  constructor(
    private readonly handler: LeafProtocolHandler,
    /** The largest message accepted (a leaf message has passed the origin's max_payload already). */
    public maxMessage: number,
    public maxControlLine: number,
  ) {}

  /** Input held while paused (copies, in order); see pause(). */
  private pausedInput: Buffer[] | null = null;
  private pausedBytes = 0;

  /** Bytes held while paused. */
  get heldBytes(): number {
    return this.pausedBytes;
  }

  /**
   * Stops after the current op (a handler calls it from inside an op): the rest of this read and
   * every later read are held, in order, until resume().
   */
  pause(): void {
    if (this.pausedInput === null) this.pausedInput = [];
  }

  /** Parses what was held since pause(), then goes on as usual. */
  resume(): void {
    const held = this.pausedInput;
    if (held === null) return;
    this.pausedInput = null;
    this.pausedBytes = 0;
    for (let k = 0; k < held.length; k++) {
      if (this.stopped) return;
      if (this.pausedInput !== null) {
        // Paused again while replaying: keep the rest for the next resume().
        for (; k < held.length; k++) this.hold(held[k]!, 0);
        return;
      }
      this.feed(held[k]!);
    }
  }

  private hold(data: Buffer, from: number): void {
    if (from >= data.length) return;
    this.pausedInput!.push(Buffer.from(data.subarray(from)));
    this.pausedBytes += data.length - from;
  }

  feed(data: Buffer): void {
    if (this.stopped) return;
    if (this.pausedInput !== null) return this.hold(data, 0);
    let position = 0;
    if (this.carryLength > 0) {
      position = this.completeCarriedOp(data);
      if (position < 0 || this.stopped) return;
      if (this.pausedInput !== null) return this.hold(data, position);
    }
    const consumed = this.parseOps(data, position, data.length);
    if (this.stopped || consumed === data.length) return;
    if (this.pausedInput !== null) return this.hold(data, consumed);
    this.carryLength = 0;
    const pendingTotal = this.lastIncompleteOpLength;
    this.pendingOpLength = pendingTotal;
    this.appendCarry(data, consumed, data.length, pendingTotal > 0 ? pendingTotal : data.length - consumed);
  }

  stop(): void {
    this.stopped = true;
    this.pausedInput = null;
    this.pausedBytes = 0;
    this.carry = null;
    this.carryLength = 0;
    this.pendingOpLength = 0;
  }

  private completeCarriedOp(data: Buffer): number {
    let position = 0;
    for (;;) {
      if (this.pendingOpLength > 0) {
        const take = Math.min(this.pendingOpLength - this.carryLength, data.length - position);
        this.appendCarry(data, position, position + take, this.pendingOpLength);
        position += take;
        if (this.carryLength < this.pendingOpLength) return -1;
      } else {
        let lineEnd = -1;
        for (let i = position; i < data.length; i++) {
          if (data[i] === Byte.LF) {
            lineEnd = i;
            break;
          }
        }
        if (lineEnd < 0) {
          this.appendCarry(data, position, data.length, 0);
          this.checkIncompleteLine(this.carryLength);
          return -1;
        }
        this.appendCarry(data, position, lineEnd + 1, 0);
        position = lineEnd + 1;
      }
      const carry = this.carry!;
      const consumed = this.parseOps(carry, 0, this.carryLength);
      if (this.stopped) return -1;
      if (consumed === this.carryLength) {
        this.carryLength = 0;
        this.pendingOpLength = 0;
        if (carry.length > 64 * 1024) this.carry = null;
        return position;
      }
      this.pendingOpLength = this.lastIncompleteOpLength;
    }
  }

  private appendCarry(src: Buffer, start: number, end: number, capacityHint: number): void {
    const needed = this.carryLength + (end - start);
    let carry = this.carry;
    if (carry === null || carry.length < needed) {
      const grown = Buffer.allocUnsafe(Math.max(needed, capacityHint, carry === null ? 256 : carry.length * 2));
      if (carry !== null && this.carryLength > 0) carry.copy(grown, 0, 0, this.carryLength);
      this.carry = carry = grown;
    }
    src.copy(carry, this.carryLength, start, end);
    this.carryLength = needed;
  }

  private checkIncompleteLine(length: number): void {
    if (length > this.maxControlLine + 16) this.fail("maximum control line exceeded", `incomplete line of ${length} bytes`);
  }

  /** Parses the complete ops in buf[from, to); returns where the first incomplete one starts (or `to`). */
  private parseOps(buf: Buffer, from: number, to: number): number {
    const tokenStart = this.tokenStart;
    const tokenEnd = this.tokenEnd;
    let i = from;
    while (i < to) {
      const opStart = i;
      let count = 0;
      let inToken = false;
      let j = i;
      for (; j < to; j++) {
        const b = buf[j]!;
        if (b === Byte.LF) break;
        if (b === Byte.SPACE || b === Byte.TAB || b === Byte.CR) {
          if (inToken) {
            if (count <= MAX_TOKENS) tokenEnd[count - 1] = j;
            inToken = false;
          }
        } else if (!inToken) {
          if (count < MAX_TOKENS) tokenStart[count] = j;
          count++;
          inToken = true;
        }
      }
      if (j === to) {
        this.lastIncompleteOpLength = 0;
        if (to - opStart > this.maxControlLine + 16) return this.fail("maximum control line exceeded", `incomplete line of ${to - opStart} bytes`);
        return opStart;
      }
      if (inToken && count <= MAX_TOKENS) tokenEnd[count - 1] = j;
      const lineEnd = j;
      if (count === 0 || buf[opStart] === Byte.SPACE || buf[opStart] === Byte.TAB || buf[opStart] === Byte.CR) {
        return this.fail(ERR_UNKNOWN, "empty line or leading whitespace");
      }
      if (count > MAX_TOKENS) return this.fail(null, `control line with ${count} arguments`);
      const op = classify(buf, tokenStart[0]!, tokenEnd[0]!);
      // The arguments as sent (traced so, as nats-server does): from the first one to the line end, without CR.
      const argsEnd = buf[lineEnd - 1] === Byte.CR ? lineEnd - 1 : lineEnd;
      if (op !== Op.INFO && op !== Op.CONNECT && lineEnd - opStart > this.maxControlLine + 16) {
        return this.fail("maximum control line exceeded", `line of ${lineEnd - opStart} bytes`);
      }
      switch (op) {
        case Op.LMSG:
        case Op.HMSG: {
          const withHeaders = op === Op.HMSG;
          const sizeToken = count - 1;
          const args = count - 1;
          const minArgs = withHeaders ? 3 : 2;
          if (args < minArgs) return this.fail(null, `${withHeaders ? "HMSG" : "LMSG"} with ${args} arguments`);
          const size = parseSize(buf, tokenStart[sizeToken]!, tokenEnd[sizeToken]!);
          if (size < 0) return this.fail(null, "bad or missing size");
          let headerSize = -1;
          if (withHeaders) {
            headerSize = parseSize(buf, tokenStart[sizeToken - 1]!, tokenEnd[sizeToken - 1]!);
            if (headerSize < 0) return this.fail(null, "bad or missing header size");
            if (headerSize > size) return this.fail(null, "header size larger than total size");
          }
          if (size > this.maxMessage) return this.fail(null, `message of ${size} bytes (at most ${this.maxMessage})`);
          // The reply and queue names: tokens 2 .. (size token, or header size token) - 1.
          const lastArg = withHeaders ? sizeToken - 1 : sizeToken; // first token after reply/queues
          let replyStart = -1;
          let replyEnd = -1;
          let queuesFrom = 0;
          let queuesTo = 0;
          const middle = lastArg - 2; // tokens between the subject and the sizes
          if (middle === 1) {
            replyStart = tokenStart[2]!;
            replyEnd = tokenEnd[2]!;
          } else if (middle > 1) {
            const indicatorStart = tokenStart[2]!;
            if (tokenEnd[2]! - indicatorStart !== 1) return this.fail(null, "bad or missing reply indicator");
            const indicator = buf[indicatorStart];
            if (indicator === Byte.PLUS) {
              replyStart = tokenStart[3]!;
              replyEnd = tokenEnd[3]!;
              queuesFrom = 4;
            } else if (indicator === Byte.PIPE) {
              queuesFrom = 3;
            } else return this.fail(null, "bad or missing reply indicator");
            queuesTo = lastArg;
          }
          const payloadStart = lineEnd + 1;
          const payloadEnd = payloadStart + size;
          if (payloadEnd + 2 > to) {
            this.lastIncompleteOpLength = payloadEnd + 2 - opStart;
            return opStart;
          }
          if (buf[payloadEnd] !== Byte.CR || buf[payloadEnd + 1] !== Byte.LF) return this.fail(null, "payload not followed by CRLF");
          // Canonical (the tail of a client MSG/HMSG): no queues, tokens after the subject single-spaced, CRLF.
          let tailStart = queuesTo > queuesFrom ? -1 : tokenStart[2]!;
          if (tailStart >= 0) {
            if (buf[lineEnd - 1] !== Byte.CR || tokenEnd[count - 1] !== lineEnd - 1) tailStart = -1;
            else {
              for (let t = 2; t < count; t++) {
                if (tokenStart[t] !== tokenEnd[t - 1]! + 1 || buf[tokenEnd[t - 1]!] !== Byte.SPACE) {
                  tailStart = -1;
                  break;
                }
              }
            }
          }
          if (this.tracer !== null) {
            this.tracer.traceInOp(withHeaders ? "HMSG" : "LMSG", buf, tokenStart[1]!, argsEnd);
            this.tracer.traceInPayload(buf, payloadStart, payloadEnd);
          }
          this.handler.onLeafMsg(buf, tokenStart[1]!, tokenEnd[1]!, replyStart, replyEnd, queuesFrom, queuesTo, headerSize, payloadStart, payloadEnd, tailStart);
          i = payloadEnd + 2;
          break;
        }
        case Op.LSPLUS: {
          if (count !== 2 && count !== 4) return this.fail(null, `LS+ with ${count - 1} arguments`);
          const subject = buf.latin1Slice(tokenStart[1]!, tokenEnd[1]!);
          let queue: string | null = null;
          let weight = 1;
          if (count === 4) {
            queue = buf.latin1Slice(tokenStart[2]!, tokenEnd[2]!);
            weight = parseSize(buf, tokenStart[3]!, tokenEnd[3]!);
            if (weight < 0) return this.fail(null, "LS+ with a bad queue weight");
          }
          this.tracer?.traceInOp("LS+", buf, tokenStart[1]!, argsEnd);
          this.handler.onLeafSub(subject, queue, weight);
          i = lineEnd + 1;
          break;
        }
        case Op.LSMINUS: {
          if (count !== 2 && count !== 3) return this.fail(null, `LS- with ${count - 1} arguments`);
          const subject = buf.latin1Slice(tokenStart[1]!, tokenEnd[1]!);
          const queue = count === 3 ? buf.latin1Slice(tokenStart[2]!, tokenEnd[2]!) : null;
          this.tracer?.traceInOp("LS-", buf, tokenStart[1]!, argsEnd);
          this.handler.onLeafUnsub(subject, queue);
          i = lineEnd + 1;
          break;
        }
        case Op.PING:
          this.tracer?.traceInOp("PING", buf, -1, -1);
          this.handler.onPing();
          i = lineEnd + 1;
          break;
        case Op.PONG:
          this.tracer?.traceInOp("PONG", buf, -1, -1);
          this.handler.onPong();
          i = lineEnd + 1;
          break;
        case Op.OK:
          i = lineEnd + 1;
          break;
        case Op.INFO:
        case Op.CONNECT:
        case Op.ERR: {
          const nameEnd = tokenStart[0]! + (op === Op.CONNECT ? 7 : 4);
          const argStart = nameEnd < tokenEnd[0]! ? nameEnd : count > 1 ? tokenStart[1]! : lineEnd;
          let argEnd = lineEnd;
          if (argEnd > argStart && buf[argEnd - 1] === Byte.CR) argEnd--;
          const arg = buf.toString("utf8", argStart, argEnd).trim();
          if (op === Op.CONNECT) this.tracer?.traceInOp("CONNECT", buf, argStart, argEnd); // nats-server traces neither INFO nor -ERR
          if (op === Op.INFO) this.handler.onInfo(arg);
          else if (op === Op.CONNECT) this.handler.onConnect(arg);
          else this.handler.onErr(arg.replace(/^'|'$/g, ""));
          i = lineEnd + 1;
          break;
        }
        default:
          return this.fail(ERR_UNKNOWN, `unknown operation ${JSON.stringify(buf.latin1Slice(opStart, Math.min(lineEnd, opStart + 32)))}`);
      }
      if (this.stopped) return to;
      if (this.pausedInput !== null) return i;
    }
    return i;
  }

  private fail(errText: string | null, detail: string): number {
    this.stop();
    this.handler.onParseError(errText, detail);
    return 0;
  }
}

function lower(b: number): number {
  return b >= 65 && b <= 90 ? b | 0x20 : b;
}

function matchesWord(buf: Buffer, start: number, end: number, word: string): boolean {
  if (end - start !== word.length) return false;
  for (let k = 0; k < word.length; k++) if (lower(buf[start + k]!) !== word.charCodeAt(k)) return false;
  return true;
}

function classify(buf: Buffer, start: number, end: number): Op {
  const c0 = lower(buf[start]!);
  const length = end - start;
  if (c0 === 108 /* l */) {
    if (matchesWord(buf, start, end, "lmsg")) return Op.LMSG;
    if (length === 3 && lower(buf[start + 1]!) === 115 /* s */) {
      if (buf[start + 2] === Byte.PLUS) return Op.LSPLUS;
      if (buf[start + 2] === Byte.MINUS) return Op.LSMINUS;
    }
    return Op.UNKNOWN;
  }
  if (c0 === 104 /* h */) return matchesWord(buf, start, end, "hmsg") ? Op.HMSG : Op.UNKNOWN;
  if (c0 === 112 /* p */) {
    if (length >= 4 && lower(buf[start + 1]!) === 105 && lower(buf[start + 2]!) === 110 && lower(buf[start + 3]!) === 103) return Op.PING;
    if (length >= 4 && lower(buf[start + 1]!) === 111 && lower(buf[start + 2]!) === 110 && lower(buf[start + 3]!) === 103) return Op.PONG;
    return Op.UNKNOWN;
  }
  if (c0 === 105 /* i */) return length >= 4 && matchesWord(buf, start, start + 4, "info") ? Op.INFO : Op.UNKNOWN;
  if (c0 === 99 /* c */) return length >= 7 && matchesWord(buf, start, start + 7, "connect") ? Op.CONNECT : Op.UNKNOWN;
  if (c0 === Byte.PLUS) return length >= 3 && lower(buf[start + 1]!) === 111 && lower(buf[start + 2]!) === 107 ? Op.OK : Op.UNKNOWN;
  if (c0 === Byte.MINUS) return length >= 4 && matchesWord(buf, start + 1, start + 4, "err") ? Op.ERR : Op.UNKNOWN;
  return Op.UNKNOWN;
}

/** A non-negative decimal; -1 when empty, not digits, or too long. */
function parseSize(buf: Buffer, start: number, end: number): number {
  const length = end - start;
  if (length <= 0 || length > 15) return -1;
  let n = 0;
  for (let k = start; k < end; k++) {
    const d = buf[k]! - 48;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}
