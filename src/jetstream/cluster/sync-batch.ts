// What a stream's leader sends a replica that copies messages from its store (stream-replica.ts, "catching
// up"): a run of stored messages with their sequences and times, and the leader's last sequence.
//
// The answer crosses a route, whose frames hold max_payload + 256 KiB. So an answer holds messages up to
// SYNC_BATCH_BYTES of them (at least one: a message alone is at most max_payload), never a fixed count: 500
// messages of 32 KiB in one answer were a 2 MiB frame, the route refused it and closed, and the replica
// never caught up. Binary, since base64 in JSON made every message a third larger and cost a parse.
//
// Layout (numbers big-endian): u8 SYNC_BATCH_BINARY, f64 last_seq, then per message: f64 seq, f64 ts,
// short subject (UTF-8), long headers, long data.
import type { StoredMessage } from "../store/store.ts";
import { EntryReader, EntryWriter } from "./entry-codec.ts";

/** The first byte of a binary answer (a JSON answer, from a node of before, starts with "{"). */
export const SYNC_BATCH_BINARY = 1;
/** Message bytes (subject, headers, data) in one answer, past which no further message is added. */
export const SYNC_BATCH_BYTES = 256 * 1024;
/** Messages in one answer at most, whatever their size. */
export const SYNC_BATCH_MESSAGES = 4096;

/** What the replica asks for: messages `from`..`to`; `binary` from nodes that read this layout. */
export interface SyncRequest {
  from: number;
  to: number;
  binary?: boolean;
}

export interface SyncBatch {
  msgs: StoredMessage[];
  lastSeq: number;
}

/** Takes messages from `next(seq)` (the store's next stored message at or after seq) up to the limits. */
export function collectSyncBatch(from: number, to: number, next: (seq: number) => StoredMessage | null, maxBytes = SYNC_BATCH_BYTES): StoredMessage[] {
  const msgs: StoredMessage[] = [];
  let bytes = 0;
  for (let m = next(Math.max(1, from)); m !== null && m.seq <= to; m = next(m.seq + 1)) {
    msgs.push(m);
    bytes += m.subject.length + (m.headers?.length ?? 0) + m.data.length;
    if (bytes >= maxBytes || msgs.length >= SYNC_BATCH_MESSAGES) break;
  }
  return msgs;
}

export function encodeSyncBatch(batch: SyncBatch): Buffer {
  const subjects = batch.msgs.map((m) => Buffer.from(m.subject, "utf8"));
  let size = 1 + 8;
  for (let i = 0; i < batch.msgs.length; i++) {
    const m = batch.msgs[i]!;
    size += 16 + EntryWriter.short(subjects[i]!) + EntryWriter.long(m.headers) + EntryWriter.long(m.data);
  }
  const w = new EntryWriter(size);
  w.u8(SYNC_BATCH_BINARY);
  w.f64(batch.lastSeq);
  for (let i = 0; i < batch.msgs.length; i++) {
    const m = batch.msgs[i]!;
    w.f64(m.seq);
    w.f64(m.ts);
    w.short(subjects[i]!);
    w.long(m.headers);
    w.long(m.data);
  }
  return w.out;
}

/** The batch, or null for anything that is not one (a truncated or foreign answer). */
export function decodeSyncBatch(bytes: Buffer): SyncBatch | null {
  if (bytes.length < 9 || bytes[0] !== SYNC_BATCH_BINARY) return null;
  try {
    const r = new EntryReader(bytes);
    const lastSeq = r.f64();
    const msgs: StoredMessage[] = [];
    while (!r.done) {
      const seq = r.f64();
      const ts = r.f64();
      const subject = r.shortUtf8();
      const headers = r.long();
      const data = r.long() ?? Buffer.alloc(0);
      msgs.push({ seq, ts, subject, headers, data });
    }
    return r.overran ? null : { msgs, lastSeq };
  } catch {
    return null; // read past the end: not a whole batch
  }
}
