// The client protocol parser: bytes in, calls on a ProtocolHandler out.
//
// It works a whole control line at a time: one byte loop finds the line end and splits the
// arguments (a JS loop beats indexOf for 20–40 byte lines). A PUB's payload is never scanned:
// the parser jumps over it and hands the handler offsets into the read buffer, so the payload
// is copied exactly once, by the handler, into outbound buffers.
//
// An op split across reads is carried over in `carry`, which holds only that op's bytes: the
// partial control line, or the control line plus the payload it announced (nothing more).
// A PUB that reaches no one is not carried at all: once its control line is complete the handler
// may take it unread (`takePubUnread`), and the parser then only counts its payload bytes past
// as they arrive and checks the CRLF after them (a pub-only client's payloads are never copied).
// A PUB that reached no one also makes the PUBs right after it with the very same control line cheap:
// while they follow in the same read, each is recognised by comparing its line with that one and
// counted (`onRepeatedPubs`), without its subject being looked at again.
// The control-line limit is enforced while a line is still incomplete, so a client that never
// sends a newline cannot grow the carry past max_control_line.
//
// Errors follow nats-server: some ops get `-ERR 'Unknown Protocol Operation'` and a close,
// others (bad PUB arguments, malformed CONNECT) are closed without an -ERR. After any error
// the parser stops; the handler closes the connection.

export interface ProtocolHandler {
  /**
   * A PUB (headerSize < 0) or HPUB. All positions index `buf`, which is only valid during the call.
   * `tailStart` is where `[reply] [hdr] size\r\npayload\r\n` begins when the control line is in
   * canonical form (single spaces, CRLF): that tail is byte-identical to the tail of the MSG/HMSG
   * frame, so delivery can copy it whole. -1 when the line is not canonical.
   * Returns true when the message reached no one and nothing but its control line mattered (as for
   * takePubUnread): a PUB with the same control line right after it would be handled alike, so the
   * parser may hand such repeats to onRepeatedPubs instead.
   */
  onPub(
    buf: Buffer,
    subjectStart: number,
    subjectEnd: number,
    replyStart: number,
    replyEnd: number,
    headerSize: number,
    payloadStart: number,
    payloadEnd: number,
    tailStart: number,
  ): boolean;
  /**
   * `count` PUBs in a row whose control line is byte for byte that of the PUB just before them, for which
   * onPub returned true, with nothing else handled in between, each with its payload (`size` bytes) and
   * CRLF in the same read. Optional: without it every PUB goes to onPub.
   */
  onRepeatedPubs?(count: number, size: number): void;
  /**
   * A PUB/HPUB whose control line is complete but whose payload has not all arrived (positions as in
   * onPub; the payload is `size` bytes from the line's end). Returns true when the handler took the
   * message now, unread: nothing it would do needs the payload (no one is interested). The parser
   * then skips the payload as it arrives instead of carrying it, and onPub does not follow. Optional:
   * without it every split op is carried.
   */
  takePubUnread?(
    buf: Buffer,
    subjectStart: number,
    subjectEnd: number,
    replyStart: number,
    replyEnd: number,
    headerSize: number,
    size: number,
  ): boolean;
  onSub(subject: string, queue: string | null, sid: string): void;
  onUnsub(sid: string, max: number): void;
  onConnect(json: string): void;
  onPing(): void;
  onPong(): void;
  /** An INFO from a client: nats-server parses and ignores it. */
  onInfo(json: string): void;
  /** A `-ERR` from the client: nats-server logs it and closes. */
  onClientError(text: string): void;
  /** A protocol error. `errText` is the -ERR to send first (null: close silently). */
  onParseError(errText: string | null, closeReason: string, detail: string): void;
}

/** What the protocol trace (-V) is told of each op read (src/protocol/trace.ts formats it). */
export interface ProtocolTracer {
  /** An op read: its name as nats-server spells it, its arguments buf[argStart, argEnd) as sent (argStart < 0: none). */
  traceInOp(op: string, buf: Buffer, argStart: number, argEnd: number): void;
  /** The payload of the PUB/HPUB just traced (headers included). */
  traceInPayload(buf: Buffer, start: number, end: number): void;
}

const enum Byte {
  TAB = 9,
  LF = 10,
  CR = 13,
  SPACE = 32,
  PLUS = 43,
  MINUS = 45,
}

/** Most tokens any client op has: `HPUB subject reply hdr total`. */
const MAX_TOKENS = 5;

/**
 * Token boundaries of the control line being parsed, one pair for all parsers rather than per
 * connection (two typed arrays are ~200 B of RSS per idle connection, issue 20). Safe to share: a
 * line's tokens are filled and then read with no call in between but pure helpers and the -V tracer
 * (which only logs), and the handler is called only after they were read, so a handler that reaches
 * another parser never sees or spoils them.
 */
const TOKEN_START = new Int32Array(MAX_TOKENS);
const TOKEN_END = new Int32Array(MAX_TOKENS);

const ERR_UNKNOWN = "Unknown Protocol Operation";

export class Parser {
  /** Set by the connection: the largest payload a PUB may announce. */
  maxPayload: number;
  /** Set by the connection: the longest control line (arguments) allowed. */
  maxControlLine: number;
  /** Set by the connection after CONNECT {"headers":true}: HPUB is refused before that. */
  headersAllowed = false;
  /** True once an error was reported: nothing more is parsed. */
  stopped = false;
  /** Set by the connection while tracing (-V): each complete op is traced before it is handled. */
  tracer: ProtocolTracer | null = null;

  private carry: Buffer | null = null;
  private carryLength = 0;
  /** Total length of the pending op in `carry` once known (its control line is complete), else 0. */
  private pendingOpLength = 0;
  /** Bytes still to come of a PUB taken unread: the rest of its payload, then its CRLF (the last two). */
  private skipRemaining = 0;

  constructor(
    private readonly handler: ProtocolHandler,
    maxPayload: number,
    maxControlLine: number,
  ) {
    this.maxPayload = maxPayload;
    this.maxControlLine = maxControlLine;
  }

  /** Bytes currently held for an op split across reads (bounded by the limits). */
  get carriedBytes(): number {
    return this.carryLength;
  }

  /** Feeds one read. `data` is only used during the call. */
  feed(data: Buffer): void {
    if (this.stopped) return;
    let position = 0;
    if (this.carryLength > 0) {
      position = this.completeCarriedOp(data);
      if (position < 0 || this.stopped) return;
    }
    if (this.skipRemaining > 0) {
      position = this.skipUnreadPayload(data, position);
      if (position < 0) return;
    }
    const consumed = this.parseOps(data, position, data.length);
    if (this.stopped || consumed === data.length) return;
    // An incomplete op remains: keep just its bytes.
    this.pendingOpLength = 0;
    this.carryLength = 0;
    const remainder = data.length - consumed;
    const pendingTotal = this.lastIncompleteOpLength;
    this.pendingOpLength = pendingTotal;
    this.appendCarry(data, consumed, data.length, pendingTotal > 0 ? pendingTotal : remainder);
  }

  /** Stops parsing for good (the connection is closing). */
  stop(): void {
    this.stopped = true;
    this.reset();
  }

  private reset(): void {
    this.carry = null;
    this.carryLength = 0;
    this.pendingOpLength = 0;
    this.skipRemaining = 0;
  }

  /**
   * Passes over the next bytes of a payload taken unread, checking that the op's last two bytes are
   * CRLF. Returns where parsing goes on, or -1 when all of `data` was taken (or it was not CRLF).
   */
  private skipUnreadPayload(data: Buffer, from: number): number {
    const remaining = this.skipRemaining;
    const available = data.length - from;
    const taken = remaining < available ? remaining : available;
    const crAt = from + remaining - 2;
    const lfAt = crAt + 1;
    if ((crAt >= from && crAt < from + taken && data[crAt] !== Byte.CR) || (lfAt >= from && lfAt < from + taken && data[lfAt] !== Byte.LF)) {
      this.fail(ERR_UNKNOWN, "Parse Error", "payload not followed by CRLF");
      return -1;
    }
    this.skipRemaining = remaining - taken;
    return this.skipRemaining > 0 ? -1 : from + taken;
  }

  /**
   * Moves bytes of `data` into the carry until it holds the whole pending op, then parses it.
   * Returns where parsing of `data` goes on, or -1 when all of `data` was taken.
   */
  private completeCarriedOp(data: Buffer): number {
    let position = 0;
    for (;;) {
      if (this.pendingOpLength > 0) {
        const wanted = this.pendingOpLength - this.carryLength;
        const take = Math.min(wanted, data.length - position);
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
          this.checkIncompleteLine(this.carry!, 0, this.carryLength);
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
        if (carry.length > 64 * 1024) this.carry = null; // do not keep a large buffer for an idle client
        return position;
      }
      // The carried control line announced a payload that is still to come.
      this.pendingOpLength = this.lastIncompleteOpLength;
    }
  }

  private appendCarry(src: Buffer, start: number, end: number, capacityHint: number): void {
    const needed = this.carryLength + (end - start);
    let carry = this.carry;
    if (carry === null || carry.length < needed) {
      const size = Math.max(needed, capacityHint, carry === null ? 256 : carry.length * 2);
      const grown = Buffer.allocUnsafe(size);
      if (carry !== null && this.carryLength > 0) carry.copy(grown, 0, 0, this.carryLength);
      this.carry = carry = grown;
    }
    src.copy(carry, this.carryLength, start, end);
    this.carryLength = needed;
  }

  /** Length of the op at which parseOps last stopped, when its control line was complete. */
  private lastIncompleteOpLength = 0;

  /**
   * Parses every complete op in buf[from, to). Returns the offset of the first byte not
   * consumed: the start of an incomplete op (then lastIncompleteOpLength is its full length
   * when known, or 0 when its control line is incomplete), or `to`.
   */
  private parseOps(buf: Buffer, from: number, to: number): number {
    const tokenStart = TOKEN_START;
    const tokenEnd = TOKEN_END;
    // The last PUB onPub said reached no one (its control line buf[repeatStart, +repeatLength) and its
    // size), while only repeats of it followed: an op with the same line is counted as one more.
    let repeatStart = 0;
    let repeatLength = 0;
    let repeatSize = 0;
    /** buf's bytes, read four at a time to compare lines (made at the first repeat: one per buffer parsed at most). */
    let words: DataView | null = null;
    let i = from;
    while (i < to) {
      if (repeatLength > 0) {
        // Repeats are counted in a run, then handed over in one call.
        const frameLength = repeatLength + repeatSize + 2;
        const view = (words ??= new DataView(buf.buffer, buf.byteOffset, buf.byteLength));
        let repeats = 0;
        while (i + frameLength <= to && buf[i + frameLength - 2] === Byte.CR && buf[i + frameLength - 1] === Byte.LF && sameBytes(view, i, repeatStart, repeatLength)) {
          repeats++;
          i += frameLength;
        }
        if (repeats > 0) this.handler.onRepeatedPubs!(repeats, repeatSize);
        repeatLength = 0;
        if (i === to) break;
      }
      const opStart = i;
      // Fast path for the shape publishers send: `PUB <subject> <size>\r\n<payload>\r\n`, upper case,
      // single spaces, no reply, complete in this buffer. Anything else (or any limit hit) takes the
      // general path below, which then decides exactly as before.
      if (buf[i] === 80 && buf[i + 1] === 85 && buf[i + 2] === 66 && buf[i + 3] === Byte.SPACE) {
        const subjectStart = i + 4;
        let j = subjectStart;
        while (j < to && buf[j]! > Byte.SPACE) j++;
        if (j > subjectStart && j < to && buf[j] === Byte.SPACE) {
          const subjectEnd = j;
          const sizeStart = ++j;
          let size = 0;
          for (; j < to; j++) {
            const d = buf[j]! - 48;
            if (d < 0 || d > 9) break;
            size = size * 10 + d;
          }
          const payloadStart = j + 2;
          const payloadEnd = payloadStart + size;
          if (
            j > sizeStart && j - sizeStart <= 15 && buf[j] === Byte.CR && buf[j + 1] === Byte.LF &&
            j - subjectStart <= this.maxControlLine && size <= this.maxPayload &&
            payloadEnd + 2 <= to && buf[payloadEnd] === Byte.CR && buf[payloadEnd + 1] === Byte.LF
          ) {
            if (this.tracer !== null) this.tracePub("PUB", buf, subjectStart, j, payloadStart, payloadEnd);
            const reachedNoOne = this.handler.onPub(buf, subjectStart, subjectEnd, -1, -1, -1, payloadStart, payloadEnd, sizeStart);
            i = payloadEnd + 2;
            if (this.stopped) return to;
            if (reachedNoOne && this.tracer === null && this.handler.onRepeatedPubs !== undefined) {
              repeatStart = opStart;
              repeatLength = payloadStart - opStart;
              repeatSize = size;
            }
            continue;
          }
        }
      }
      // One pass: find the line end and split tokens on space, tab and CR.
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
        this.checkIncompleteLine(buf, opStart, to);
        return opStart;
      }
      if (inToken && count <= MAX_TOKENS) tokenEnd[count - 1] = j;
      const lineEnd = j; // index of LF
      if (count === 0 || buf[opStart] === Byte.SPACE || buf[opStart] === Byte.TAB || buf[opStart] === Byte.CR) {
        return this.fail(ERR_UNKNOWN, "Parse Error", "empty line or leading whitespace");
      }
      const op = classifyOp(buf, tokenStart[0]!, tokenEnd[0]!);
      // The arguments as sent (nats-server traces them so): from the first one to the line end, without CR.
      const argsEnd = buf[lineEnd - 1] === Byte.CR ? lineEnd - 1 : lineEnd;
      const argsStart = count > 1 ? tokenStart[1]! : -1;
      if (count > 1 && op !== Op.PING && op !== Op.PONG && op !== Op.OK) {
        // As nats-server measures it: the arguments, without the op name and the line ending.
        const argumentsLength = lineEnd - (buf[lineEnd - 1] === Byte.CR ? 1 : 0) - tokenStart[1]!;
        if (argumentsLength > this.maxControlLine) {
          return this.fail("maximum control line exceeded", "Maximum Control Line Exceeded", `arguments of ${argumentsLength} bytes`);
        }
      }
      switch (op) {
        case Op.PUB:
        case Op.HPUB: {
          const isHeaderPub = op === Op.HPUB;
          if (isHeaderPub && !this.headersAllowed) {
            return this.fail(null, "Protocol Violation", "HPUB without headers support");
          }
          const argCount = count - 1;
          const minArgs = isHeaderPub ? 3 : 2;
          if (argCount < minArgs || argCount > minArgs + 1) {
            return this.fail(null, "Protocol Violation", `${isHeaderPub ? "HPUB" : "PUB"} with ${argCount} arguments`);
          }
          const hasReply = argCount === minArgs + 1;
          const sizeToken = count - 1;
          const size = parseSize(buf, tokenStart[sizeToken]!, tokenEnd[sizeToken]!);
          if (size < 0) return this.fail(null, "Protocol Violation", "bad or missing size");
          let headerSize = -1;
          if (isHeaderPub) {
            headerSize = parseSize(buf, tokenStart[sizeToken - 1]!, tokenEnd[sizeToken - 1]!);
            if (headerSize < 0) return this.fail(null, "Protocol Violation", "bad or missing header size");
            if (headerSize > size) return this.fail(null, "Protocol Violation", "header size larger than total size");
          }
          if (size > this.maxPayload) {
            return this.fail("Maximum Payload Violation", "Maximum Payload Exceeded", `${size} vs ${this.maxPayload}`);
          }
          const payloadStart = lineEnd + 1;
          const payloadEnd = payloadStart + size;
          if (payloadEnd + 2 > to) {
            if (
              this.tracer === null &&
              this.handler.takePubUnread !== undefined &&
              this.handler.takePubUnread(buf, tokenStart[1]!, tokenEnd[1]!, hasReply ? tokenStart[2]! : -1, hasReply ? tokenEnd[2]! : -1, headerSize, size)
            ) {
              // Taken unread: what of its payload is here is passed over now, the rest as it arrives.
              if (payloadEnd < to && buf[payloadEnd] !== Byte.CR) return this.fail(ERR_UNKNOWN, "Parse Error", "payload not followed by CRLF");
              this.skipRemaining = payloadEnd + 2 - to;
              return to;
            }
            this.lastIncompleteOpLength = payloadEnd + 2 - opStart;
            return opStart;
          }
          if (this.tracer !== null) this.tracePub(isHeaderPub ? "HPUB" : "PUB", buf, argsStart, argsEnd, payloadStart, payloadEnd);
          if (buf[payloadEnd] !== Byte.CR || buf[payloadEnd + 1] !== Byte.LF) {
            return this.fail(ERR_UNKNOWN, "Parse Error", "payload not followed by CRLF");
          }
          // Canonical control line: tokens after the subject joined by single spaces, then CRLF.
          let tailStart = tokenStart[2]!;
          if (buf[lineEnd - 1] !== Byte.CR || tokenEnd[count - 1] !== lineEnd - 1) tailStart = -1;
          else {
            for (let t = 2; t < count; t++) {
              if (tokenStart[t] !== tokenEnd[t - 1]! + 1 || buf[tokenEnd[t - 1]!] !== Byte.SPACE) {
                tailStart = -1;
                break;
              }
            }
          }
          this.handler.onPub(
            buf,
            tokenStart[1]!,
            tokenEnd[1]!,
            hasReply ? tokenStart[2]! : -1,
            hasReply ? tokenEnd[2]! : -1,
            headerSize,
            payloadStart,
            payloadEnd,
            tailStart,
          );
          i = payloadEnd + 2;
          break;
        }
        case Op.SUB: {
          if (count !== 3 && count !== 4) return this.fail(null, "Protocol Violation", `SUB with ${count - 1} arguments`);
          const subject = buf.latin1Slice(tokenStart[1]!, tokenEnd[1]!);
          const queue = count === 4 ? buf.latin1Slice(tokenStart[2]!, tokenEnd[2]!) : null;
          const sid = buf.latin1Slice(tokenStart[count - 1]!, tokenEnd[count - 1]!);
          this.tracer?.traceInOp("SUB", buf, argsStart, argsEnd);
          this.handler.onSub(subject, queue, sid);
          i = lineEnd + 1;
          break;
        }
        case Op.UNSUB: {
          if (count !== 2 && count !== 3) return this.fail(null, "Protocol Violation", `UNSUB with ${count - 1} arguments`);
          const sid = buf.latin1Slice(tokenStart[1]!, tokenEnd[1]!);
          const max = count === 3 ? parseSize(buf, tokenStart[2]!, tokenEnd[2]!) : -1;
          this.tracer?.traceInOp("UNSUB", buf, argsStart, argsEnd);
          this.handler.onUnsub(sid, max);
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
        case Op.CONNECT:
        case Op.INFO:
        case Op.ERR: {
          const nameEnd = tokenStart[0]! + (op === Op.CONNECT ? 7 : 4);
          const argStart = nameEnd < tokenEnd[0]! ? nameEnd : count > 1 ? tokenStart[1]! : lineEnd;
          let argEnd = lineEnd;
          if (argEnd > argStart && buf[argEnd - 1] === Byte.CR) argEnd--;
          const arg = buf.toString("utf8", argStart, argEnd);
          if (op === Op.CONNECT) this.tracer?.traceInOp("CONNECT", buf, argStart, argEnd); // nats-server traces neither INFO nor -ERR
          if (op === Op.CONNECT) this.handler.onConnect(arg);
          else if (op === Op.INFO) this.handler.onInfo(arg);
          else this.handler.onClientError(arg);
          i = lineEnd + 1;
          break;
        }
        case Op.OK:
          i = lineEnd + 1;
          break;
        default:
          return this.fail(ERR_UNKNOWN, "Parse Error", `unknown operation ${JSON.stringify(buf.latin1Slice(opStart, Math.min(lineEnd, opStart + 32)))}`);
      }
      if (this.stopped) return to;
    }
    return i;
  }

  private tracePub(op: string, buf: Buffer, argsStart: number, argsEnd: number, payloadStart: number, payloadEnd: number): void {
    const tracer = this.tracer!;
    tracer.traceInOp(op, buf, argsStart, argsEnd);
    tracer.traceInPayload(buf, payloadStart, payloadEnd);
  }

  /** An incomplete control line: refuse it now if it is already too long or cannot become a valid op. */
  private checkIncompleteLine(buf: Buffer, start: number, end: number): void {
    if (end - start > this.maxControlLine + 16) {
      this.fail("maximum control line exceeded", "Maximum Control Line Exceeded", `incomplete line of ${end - start} bytes`);
      return;
    }
    if (!isPlausibleOpPrefix(buf, start, end)) {
      this.fail(ERR_UNKNOWN, "Parse Error", "unknown operation");
    }
  }

  private fail(errText: string | null, closeReason: string, detail: string): number {
    this.stop();
    this.handler.onParseError(errText, closeReason, detail);
    return 0;
  }
}

const enum Op {
  UNKNOWN,
  PUB,
  HPUB,
  SUB,
  UNSUB,
  PING,
  PONG,
  CONNECT,
  INFO,
  OK,
  ERR,
}

/** Ops a client may send, upper-case; PING/PONG/+OK may be followed by anything up to the line end. */
const OP_NAMES = ["PUB", "HPUB", "SUB", "UNSUB", "PING", "PONG", "CONNECT", "INFO", "+OK", "-ERR"];

function lower(b: number): number {
  return b >= 65 && b <= 90 ? b | 0x20 : b;
}

/** Identifies the op from its first token, case-insensitively, without allocating. */
function classifyOp(buf: Buffer, start: number, end: number): Op {
  const length = end - start;
  // Clients send upper case: PUB without case folding first.
  if (length === 3 && buf[start] === 80 && buf[start + 1] === 85 && buf[start + 2] === 66) return Op.PUB;
  const c0 = lower(buf[start]!);
  if (c0 === 112 /* p */) {
    if (length === 3 && lower(buf[start + 1]!) === 117 && lower(buf[start + 2]!) === 98) return Op.PUB;
    // nats-server ignores whatever follows PING/PONG on the line.
    if (length >= 4 && lower(buf[start + 1]!) === 105 && lower(buf[start + 2]!) === 110 && lower(buf[start + 3]!) === 103) return Op.PING;
    if (length >= 4 && lower(buf[start + 1]!) === 111 && lower(buf[start + 2]!) === 110 && lower(buf[start + 3]!) === 103) return Op.PONG;
    return Op.UNKNOWN;
  }
  if (c0 === 104 /* h */) return matchesWord(buf, start, end, "hpub") ? Op.HPUB : Op.UNKNOWN;
  if (c0 === 115 /* s */) return matchesWord(buf, start, end, "sub") ? Op.SUB : Op.UNKNOWN;
  if (c0 === 117 /* u */) return matchesWord(buf, start, end, "unsub") ? Op.UNSUB : Op.UNKNOWN;
  // `CONNECT{...}` without a space is accepted by nats-server: the argument starts right after the name.
  if (c0 === 99 /* c */) return length >= 7 && matchesWord(buf, start, start + 7, "connect") ? Op.CONNECT : Op.UNKNOWN;
  if (c0 === 105 /* i */) return matchesWord(buf, start, end, "info") ? Op.INFO : Op.UNKNOWN;
  if (c0 === Byte.PLUS) return length >= 3 && lower(buf[start + 1]!) === 111 && lower(buf[start + 2]!) === 107 ? Op.OK : Op.UNKNOWN;
  if (c0 === Byte.MINUS) return length === 4 && matchesWord(buf, start + 1, end, "err") ? Op.ERR : Op.UNKNOWN;
  return Op.UNKNOWN;
}

function matchesWord(buf: Buffer, start: number, end: number, word: string): boolean {
  if (end - start !== word.length) return false;
  for (let k = 0; k < word.length; k++) if (lower(buf[start + k]!) !== word.charCodeAt(k)) return false;
  return true;
}

/** Could these first bytes of a line still become a valid op? Lets garbage be refused before its newline. */
function isPlausibleOpPrefix(buf: Buffer, start: number, end: number): boolean {
  if (start === end) return true;
  let wordEnd = start;
  while (wordEnd < end && buf[wordEnd] !== Byte.SPACE && buf[wordEnd] !== Byte.TAB && buf[wordEnd] !== Byte.CR) wordEnd++;
  const length = wordEnd - start;
  if (length === 0) return false; // leading whitespace or CR
  for (const name of OP_NAMES) {
    const n = Math.min(length, name.length);
    let same = true;
    for (let k = 0; k < n; k++) {
      if (lower(buf[start + k]!) !== name.toLowerCase().charCodeAt(k)) {
        same = false;
        break;
      }
    }
    if (!same) continue;
    if (length <= name.length) return true;
    // Longer than the op name: only PING/PONG/+OK tolerate trailing bytes, and CONNECT{.
    if (name === "PING" || name === "PONG" || name === "+OK" || name === "CONNECT") return true;
  }
  return false;
}

/** Whether view[a, a + length) and view[b, b + length) hold the same bytes (four at a time: a third of a byte loop's time). */
function sameBytes(view: DataView, a: number, b: number, length: number): boolean {
  let k = 0;
  for (; k + 4 <= length; k += 4) if (view.getUint32(a + k) !== view.getUint32(b + k)) return false;
  for (; k < length; k++) if (view.getUint8(a + k) !== view.getUint8(b + k)) return false;
  return true;
}

/** Parses a non-negative decimal size; -1 when empty, not digits, or absurdly long. */
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
