// Direct get (`$JS.API.DIRECT.GET.<stream>[.<subject>]`, streams with allow_direct): messages answered as
// they are stored, with Nats-Stream / -Subject / -Sequence / -Time-Stamp headers, or a status.
//
// nats-server 2.10's single get (by `seq`, `last_by_subj`, `next_by_subj`), and 2.11's batch get:
// - `batch: n` (with `seq`, `next_by_subj` or `start_time`): up to n messages, each with Nats-Num-Pending (what
//   matches after it) and Nats-Last-Sequence (the one sent before it, 0 first), then `204 EOB` with both;
// - `multi_last: [filters]`: the last message of every subject the filters match (at most 1024 subjects, else
//   `413 Too Many Results`), optionally as of `up_to_seq` / `up_to_time`, in sequence order, ended by `204 EOB`
//   with Nats-UpTo-Sequence as well;
// - `max_bytes` stops a batch once that much (subject + headers + payload) was sent (default: max_pending);
// - `no_hdr`: payloads only.
// The last-by-subject endpoint takes no body (2.10's rule: a body is `408 Bad Request`).
import type { MessageStore, StoredMessage } from "./store/store.ts";
import { buildHeaders, parseRfc3339, rfc3339 } from "./wire.ts";

/** Where the answers go: a header block (status or message headers, or null) and a payload. */
export type DirectSend = (headers: Buffer | null, payload: Buffer) => void;

const EMPTY = Buffer.alloc(0);
const MAX_MULTI_LAST = 1024;

interface DirectRequest {
  seq: number;
  last_by_subj: string;
  next_by_subj: string;
  batch: number;
  max_bytes: number;
  start_time: string | null;
  multi_last: string[];
  up_to_seq: number;
  up_to_time: string | null;
  no_hdr: boolean;
}

/** Parses a request as Go's json.Unmarshal would into JSApiMsgGetRequest: null when it would fail. */
function parseRequest(text: string): DirectRequest | null {
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch {
    return null;
  }
  if (j === null || typeof j !== "object" || Array.isArray(j)) return null;
  const r = j as Record<string, unknown>;
  const uint = (k: string): number | null => {
    const v = r[k];
    if (v === undefined || v === null) return 0;
    return typeof v === "number" && Number.isInteger(v) && v >= 0 ? v : null;
  };
  const int = (k: string): number | null => {
    const v = r[k];
    if (v === undefined || v === null) return 0;
    return typeof v === "number" && Number.isInteger(v) ? v : null;
  };
  const str = (k: string): string | null => {
    const v = r[k];
    if (v === undefined || v === null) return "";
    return typeof v === "string" ? v : null;
  };
  const time = (k: string): string | null | undefined => {
    const v = r[k];
    if (v === undefined || v === null) return null;
    return typeof v === "string" && !Number.isNaN(parseRfc3339(v)) ? v : undefined; // undefined: malformed
  };
  const seq = uint("seq");
  const upToSeq = uint("up_to_seq");
  const batch = int("batch");
  const maxBytes = int("max_bytes");
  const last = str("last_by_subj");
  const next = str("next_by_subj");
  const startTime = time("start_time");
  const upToTime = time("up_to_time");
  const multi = r.multi_last;
  const noHdr = r.no_hdr;
  if (seq === null || upToSeq === null || batch === null || maxBytes === null || last === null || next === null) return null;
  if (startTime === undefined || upToTime === undefined) return null;
  if (multi !== undefined && multi !== null && !(Array.isArray(multi) && multi.every((s) => typeof s === "string"))) return null;
  if (noHdr !== undefined && noHdr !== null && typeof noHdr !== "boolean") return null;
  return {
    seq, last_by_subj: last, next_by_subj: next, batch, max_bytes: maxBytes, start_time: startTime,
    multi_last: (multi as string[] | undefined | null) ?? [], up_to_seq: upToSeq, up_to_time: upToTime, no_hdr: noHdr === true,
  };
}

/** `$JS.API.DIRECT.GET.<stream>` with a JSON body. */
export function directGet(stream: string, store: MessageStore, maxPending: number, body: Buffer, send: DirectSend): void {
  const status = (s: string) => send(buildHeaders(s, []), EMPTY);
  if (body.length === 0) return status("408 Empty Request");
  const req = parseRequest(body.toString());
  if (req === null) return status("408 Malformed Request");
  if (req.seq === 0 && req.last_by_subj === "" && req.next_by_subj === "" && req.multi_last.length === 0 && req.start_time === null) {
    return status("408 Empty Request");
  }
  // Options that do not go together (batches are not for last_by_subj).
  if (
    (req.seq > 0 && req.last_by_subj !== "") || (req.seq > 0 && req.start_time !== null) || (req.start_time !== null && req.last_by_subj !== "") ||
    (req.last_by_subj !== "" && req.next_by_subj !== "") || (req.last_by_subj !== "" && req.batch > 0) ||
    (req.last_by_subj !== "" && req.multi_last.length > 0) || (req.next_by_subj !== "" && req.multi_last.length > 0) ||
    (req.up_to_seq > 0 && req.up_to_time !== null)
  ) {
    return status("408 Bad Request");
  }
  const maxBytes = req.max_bytes > 0 ? req.max_bytes : maxPending;
  if (req.multi_last.length > 0) return multiLast(stream, store, req, maxBytes, send);
  let seq = req.start_time !== null ? firstAtOrAfter(store, parseRfc3339(req.start_time)) : req.seq;
  const isBatch = req.batch > 0;
  const batch = isBatch ? req.batch : 1;
  const filters = req.next_by_subj !== "" ? [req.next_by_subj] : null;
  let pending = isBatch ? store.count(seq, filters) : 0;
  let lastSent = 0;
  let sentBytes = 0;
  for (let i = 0; i < batch; i++) {
    let m: StoredMessage | null;
    if (seq > 0 && req.next_by_subj === "") {
      m = i === 0 && !isBatch ? store.get(seq) : store.next(seq, null);
    } else if (req.next_by_subj !== "") {
      m = store.next(seq, filters);
    } else {
      m = store.last(req.last_by_subj);
    }
    if (m === null) {
      if (batch > 1 && i > 0) break; // a batch that ran out ends with its EOB
      return status("404 Message Not Found");
    }
    seq = m.seq + 1;
    let headers: Buffer | null = null;
    if (!req.no_hdr) {
      if (isBatch) {
        if (pending > 0) pending--;
        headers = withHeaders(m, [["Nats-Stream", stream], ["Nats-Subject", m.subject], ["Nats-Sequence", String(m.seq)], ["Nats-Time-Stamp", rfc3339(m.ts)], ["Nats-Num-Pending", String(pending)], ["Nats-Last-Sequence", String(lastSent)]]);
      } else {
        headers = directHeaders(stream, m);
      }
    }
    lastSent = m.seq;
    send(headers, m.data);
    sentBytes += m.subject.length + (m.headers?.length ?? 0) + m.data.length;
    if (sentBytes >= maxBytes) break;
  }
  if (isBatch) send(buildHeaders("204 EOB", [["Nats-Num-Pending", String(pending)], ["Nats-Last-Sequence", String(lastSent)]]), EMPTY);
}

/** `multi_last`: the last message of each matching subject, as of up_to_seq / up_to_time. */
function multiLast(stream: string, store: MessageStore, req: DirectRequest, maxBytes: number, send: DirectSend): void {
  const status = (s: string) => send(buildHeaders(s, []), EMPTY);
  const st = store.state();
  let upTo = req.up_to_seq;
  if (req.up_to_time !== null) {
    upTo = firstAtOrAfter(store, parseRfc3339(req.up_to_time));
    // Nothing stored before that time: no results (nats-server's check on the first sequence).
    if (upTo <= st.firstSeq) return status("404 No Results");
    upTo--;
  }
  if (upTo === 0) upTo = st.lastSeq;
  const seqs = new Set<number>();
  for (const filter of req.multi_last) {
    for (const subject of store.subjects(filter === ">" ? null : filter).keys()) {
      const seq = lastAtOrBelow(store, subject, upTo);
      if (seq > 0) seqs.add(seq);
    }
    if (seqs.size > MAX_MULTI_LAST) return status("413 Too Many Results");
  }
  if (seqs.size === 0) return status("404 No Results");
  const ordered = [...seqs].sort((a, b) => a - b);
  let pending = ordered.length;
  let lastSent = 0;
  let sentBytes = 0;
  let sent = 0;
  for (const seq of ordered) {
    if (pending > 0) pending--;
    if (seq < req.seq) continue;
    const m = store.get(seq);
    if (m === null) return status("404 Message Not Found");
    const headers = req.no_hdr ? null : withHeaders(m, [["Nats-Stream", stream], ["Nats-Subject", m.subject], ["Nats-Sequence", String(m.seq)], ["Nats-Time-Stamp", rfc3339(m.ts)], ["Nats-Num-Pending", String(pending)], ["Nats-Last-Sequence", String(lastSent)]]);
    lastSent = m.seq;
    send(headers, m.data);
    sentBytes += m.subject.length + (m.headers?.length ?? 0) + m.data.length;
    if (sentBytes >= maxBytes) break;
    sent++;
    if (req.batch > 0 && sent >= req.batch) break;
  }
  send(buildHeaders("204 EOB", [["Nats-Num-Pending", String(pending)], ["Nats-Last-Sequence", String(lastSent)], ["Nats-UpTo-Sequence", String(upTo)]]), EMPTY);
}

/** `$JS.API.DIRECT.GET.<stream>.<subject>`: the subject's last message; a body is refused (2.10). */
export function directGetLast(stream: string, store: MessageStore, subject: string, body: Buffer, send: DirectSend): void {
  if (body.length > 0 || subject === "") return send(buildHeaders("408 Bad Request", []), EMPTY);
  const m = store.last(subject);
  if (m === null) return send(buildHeaders("404 Message Not Found", []), EMPTY);
  send(directHeaders(stream, m), m.data);
}

/** The sequence of the subject's last message at or below `upTo`, or 0. */
function lastAtOrBelow(store: MessageStore, subject: string, upTo: number): number {
  const last = store.last(subject);
  if (last === null) return 0;
  if (last.seq <= upTo) return last.seq;
  let found = 0;
  for (let m = store.next(0, [subject]); m !== null && m.seq <= upTo; m = store.next(m.seq + 1, [subject])) found = m.seq;
  return found;
}

/** The first sequence stored at or after `ms` (lastSeq + 1 when none): timestamps ascend with sequences. */
function firstAtOrAfter(store: MessageStore, ms: number): number {
  const st = store.state();
  let lo = st.firstSeq;
  let hi = st.lastSeq + 1;
  while (lo < hi) {
    const mid = Math.floor((lo + hi) / 2);
    const m = store.next(mid, null);
    if (m === null || m.ts >= ms) hi = mid;
    else lo = m.seq + 1;
  }
  return lo;
}

/** A stored message's own headers followed by these. */
function withHeaders(m: StoredMessage, entries: [string, string][]): Buffer {
  let block = m.headers === null ? "NATS/1.0\r\n" : m.headers.toString("latin1").replace(/\r\n\r\n$/, "\r\n");
  for (const [k, v] of entries) block += `${k}: ${v}\r\n`;
  return Buffer.from(`${block}\r\n`, "latin1");
}

/** The headers of a single direct get answer: the message's own headers, then Nats-Stream/-Subject/-Sequence/-Time-Stamp. */
export function directHeaders(stream: string, m: StoredMessage): Buffer {
  return withHeaders(m, [["Nats-Stream", stream], ["Nats-Subject", m.subject], ["Nats-Sequence", String(m.seq)], ["Nats-Time-Stamp", rfc3339(m.ts)]]);
}
