// The protocol trace (-V, -DV) in nats-server's format (client.go traceInOp / traceOutOp / traceMsg), one
// line per op, so that logs read and parsed by people and tools that know nats-server's read the same:
//
//   127.0.0.1:5000 - cid:1 - <<- [SUB foo  1]                 an op read, with its arguments as sent
//   127.0.0.1:5000 - cid:1 - <<- MSG_PAYLOAD: ["hello"]       a PUB/HPUB payload, quoted as Go's %q
//   127.0.0.1:5000 - cid:1 - ->> [MSG foo 1 5]                an op sent (a MSG's control line only)
//   127.0.0.1:5000 - cid:1 - <-> [DELSUB 1]                   a subscription removed
//
// INFO is not traced (nats-server does not trace it). Leaf node links (src/leaf) trace their ops the same
// way (LS+, LS-, LMSG). Routes between natter nodes speak natter's own binary protocol and are not traced
// op by op. Nothing here runs unless tracing is on.

/** An op read, as nats-server traces it: `<<- [PUB foo 5]` (`<<- [PING]` without arguments). */
export function inOpTrace(op: string, args: string | null): string {
  return args === null ? `<<- [${op}]` : `<<- [${op} ${args}]`;
}

/** An op sent: `->> [OK]`, `->> [MSG foo 1 5]`, `->> [-ERR Unknown Protocol Operation]`. */
export function outOpTrace(op: string, args: string | null): string {
  return args === null ? `->> [${op}]` : `->> [${op} ${args}]`;
}

/** A payload read (headers included): `<<- MSG_PAYLOAD: ["hello"]`. */
export function payloadTrace(buf: Buffer, start: number, end: number): string {
  return `<<- MSG_PAYLOAD: [${goQuote(buf, start, end)}]`;
}

/**
 * The traces of the ops in bytes queued for a peer (+OK, PING, PONG, -ERR, MSG, HMSG, LMSG, LS+, LS-, …),
 * one per op; none for INFO and CONNECT (nats-server traces neither; a CONNECT carries credentials). A
 * message shows its control line, not its payload.
 */
export function outFrameTraces(bytes: Buffer): string[] {
  const traces: string[] = [];
  let at = 0;
  while (at < bytes.length) {
    let lineEnd = bytes.indexOf(10, at);
    if (lineEnd < 0) lineEnd = bytes.length;
    const line = bytes.latin1Slice(at, lineEnd > at && bytes[lineEnd - 1] === 13 ? lineEnd - 1 : lineEnd);
    at = lineEnd + 1;
    if (line.startsWith("INFO") || line.startsWith("CONNECT")) continue;
    if (line === "+OK") traces.push(outOpTrace("OK", null));
    else if (line.startsWith("-ERR ")) {
      // On the wire the text is quoted ('…'); nats-server traces the text itself.
      const text = line.slice(5);
      traces.push(outOpTrace("-ERR", text.length >= 2 && text.startsWith("'") && text.endsWith("'") ? text.slice(1, -1) : text));
    } else {
      traces.push(`->> [${line}]`);
      // A message: its payload (the last argument is its size) follows the line.
      if (/^[HLR]?MSG /.test(line)) at += Number(line.slice(line.lastIndexOf(" ") + 1)) + 2;
    }
  }
  return traces;
}

/** A subscription removed from a client: `<-> [DELSUB 1]`. */
export function delSubTrace(sid: string): string {
  return `<-> [DELSUB ${sid}]`;
}

const PRINTABLE = /[\p{L}\p{M}\p{N}\p{P}\p{S}]/u;
const SHORT_ESCAPES: Record<number, string> = { 7: "\\a", 8: "\\b", 12: "\\f", 10: "\\n", 13: "\\r", 9: "\\t", 11: "\\v", 34: '\\"', 92: "\\\\" };

function hex(n: number, width: number): string {
  return n.toString(16).padStart(width, "0");
}

/**
 * buf[start, end) quoted as Go's strconv.Quote (fmt's %q) writes it: printable UTF-8 as is, `\n`-style
 * escapes, `\xHH` for other control bytes and for bytes that are not UTF-8, `\uHHHH` for other runes.
 */
export function goQuote(buf: Buffer, start = 0, end = buf.length): string {
  let out = '"';
  let i = start;
  while (i < end) {
    const b = buf[i]!;
    if (b < 0x80) {
      const escape = SHORT_ESCAPES[b];
      if (escape !== undefined) out += escape;
      else if (b >= 0x20 && b < 0x7f) out += String.fromCharCode(b);
      else out += `\\x${hex(b, 2)}`;
      i++;
      continue;
    }
    const [rune, size] = decodeRune(buf, i, end);
    if (rune < 0) {
      out += `\\x${hex(b, 2)}`;
      i++;
      continue;
    }
    const text = String.fromCodePoint(rune);
    if (PRINTABLE.test(text)) out += text;
    else if (rune < 0x10000) out += `\\u${hex(rune, 4)}`;
    else out += `\\U${hex(rune, 8)}`;
    i += size;
  }
  return `${out}"`;
}

/** The UTF-8 rune starting at buf[i] (a lead byte ≥ 0x80) and its length; rune -1 when not valid UTF-8. */
function decodeRune(buf: Buffer, i: number, end: number): [number, number] {
  const b = buf[i]!;
  let size: number;
  let rune: number;
  let min: number;
  if (b >= 0xc2 && b <= 0xdf) [size, rune, min] = [2, b & 0x1f, 0x80];
  else if (b >= 0xe0 && b <= 0xef) [size, rune, min] = [3, b & 0x0f, 0x800];
  else if (b >= 0xf0 && b <= 0xf4) [size, rune, min] = [4, b & 0x07, 0x10000];
  else return [-1, 1];
  if (i + size > end) return [-1, 1];
  for (let k = 1; k < size; k++) {
    const c = buf[i + k]!;
    if ((c & 0xc0) !== 0x80) return [-1, 1];
    rune = (rune << 6) | (c & 0x3f);
  }
  if (rune < min || rune > 0x10ffff || (rune >= 0xd800 && rune <= 0xdfff)) return [-1, 1];
  return [rune, size];
}
