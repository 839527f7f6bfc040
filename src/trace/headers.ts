// The trace headers (nats-server's msgtrace.go): which of them a message carries, read without
// decoding on the publish path, and the header edits a trace makes (the hop, disabling a stored copy).

export const TRACE_DEST = "Nats-Trace-Dest";
export const TRACE_HOP = "Nats-Trace-Hop";
export const TRACE_ONLY = "Nats-Trace-Only";
export const TRACE_ORIGIN_ACCOUNT = "Nats-Trace-Origin-Account";
/** The W3C trace context header; matched in any case, as nats-server does. */
export const TRACE_PARENT = "traceparent";
/** nats-server's MsgTraceDestDisabled: not a valid subject, so a copy carrying it never starts a trace. */
export const TRACE_DEST_DISABLED = "trace disabled";

const DEST = Buffer.from(`${TRACE_DEST}:`, "latin1");
const PARENT = Buffer.from(`${TRACE_PARENT}:`, "latin1");

/**
 * Whether the header block buf[start, end) (`NATS/1.0…\r\n\r\n`) has a line starting with
 * `Nats-Trace-Dest:` or (any case) `traceparent:`. This is the only cost tracing adds to a message
 * with headers: one pass over the header bytes, looking at the first byte of each line.
 */
export function hasTraceHeader(buf: Buffer, start: number, end: number): boolean {
  for (let at = start; at < end; at++) {
    if (buf[at] !== 10) continue;
    const first = buf[at + 1];
    if (first === 78 /* N */) {
      if (startsWith(buf, at + 1, end, DEST)) return true;
    } else if (first === 116 /* t */ || first === 84 /* T */) {
      if (startsWithFolded(buf, at + 1, end, PARENT)) return true;
    }
  }
  return false;
}

function startsWith(buf: Buffer, at: number, end: number, word: Buffer): boolean {
  if (at + word.length > end) return false;
  for (let k = 0; k < word.length; k++) if (buf[at + k] !== word[k]) return false;
  return true;
}

function startsWithFolded(buf: Buffer, at: number, end: number, word: Buffer): boolean {
  if (at + word.length > end) return false;
  for (let k = 0; k < word.length; k++) if ((buf[at + k]! | 0x20) !== (word[k]! | 0x20)) return false;
  return true;
}

/** The headers of a message that starts a trace, as nats-server's genHeaderMapIfTraceHeadersPresent reads them. */
export interface TraceHeaders {
  /** Every header, names in the case they were sent, values in order (the event's `request.header`). */
  readonly map: Record<string, string[]>;
  /** Only a sampled `traceparent` (no Nats-Trace-Dest): the account's msg_trace decides. */
  readonly external: boolean;
}

/**
 * Reads the header block as nats-server does for tracing: null when it has neither a `Nats-Trace-Dest`
 * nor a sampled `traceparent` (flags `01`), or when Nats-Trace-Dest says the trace was disabled.
 */
export function readTraceHeaders(block: string): TraceHeaders | null {
  if (!block.startsWith("NATS/1.0")) return null;
  const map: Record<string, string[]> = Object.create(null);
  let dest = false;
  let parent = false;
  const lines = block.split("\r\n");
  for (let k = 1; k < lines.length; k++) {
    const line = lines[k]!;
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const name = line.slice(0, colon);
    const value = line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, "");
    if (value === "") continue;
    if (!parent && name.toLowerCase() === TRACE_PARENT) {
      const parts = value.split("-");
      if (parts.length === 4 && /^[0-9a-fA-F]{2}$/.test(parts[3]!) && (parseInt(parts[3]!, 16) & 1) === 1) parent = true;
    } else if (!dest && name === TRACE_DEST) {
      if (value === TRACE_DEST_DISABLED) return null;
      dest = true;
    }
    (map[name] ??= []).push(value);
  }
  if (!dest && !parent) return null;
  return { map, external: !dest && parent };
}

/** The header block with `name: value`: in place of the first line of that name (others dropped), else added at the end (as nats-server's setHeader). */
export function setHeader(block: Buffer, name: string, value: string): Buffer {
  const lines = block.toString("latin1").split("\r\n");
  // lines: status line, header lines, "", "" (the block ends with \r\n\r\n)
  const out: string[] = [lines[0]!];
  let placed = false;
  for (let k = 1; k < lines.length - 2; k++) {
    const line = lines[k]!;
    if (line.slice(0, line.indexOf(":")) !== name) out.push(line);
    else if (!placed) {
      out.push(`${name}: ${value}`);
      placed = true;
    }
  }
  if (!placed) out.push(`${name}: ${value}`);
  return Buffer.from(`${out.join("\r\n")}\r\n\r\n`, "latin1");
}

/** The header block with the trace disabled (a stream's stored copy, a sampled-out message): no later trace starts from it. */
export function disabledHeaders(headers: Buffer): Buffer {
  return setHeader(headers, TRACE_DEST, TRACE_DEST_DISABLED);
}
