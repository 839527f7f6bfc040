// The answers a stream's leader sends a replica copying its store (src/jetstream/cluster/sync-batch.ts): they
// round-trip, and their size is bounded by bytes, so one always fits a route frame (max_payload + 256 KiB).
import { describe, expect, test } from "vitest";
import type { StoredMessage } from "../../src/jetstream/store/store.ts";
import { collectSyncBatch, decodeSyncBatch, encodeSyncBatch, SYNC_BATCH_BYTES } from "../../src/jetstream/cluster/sync-batch.ts";

const message = (seq: number, size: number, headers: string | null = null): StoredMessage => ({
  seq,
  subject: `s.${seq}.ü`,
  headers: headers === null ? null : Buffer.from(headers),
  data: Buffer.alloc(size, seq % 251),
  ts: 1_765_000_000_000 + seq + 0.5,
});

/** A store holding `msgs` (sequences may have gaps): the next message at or after `seq`. */
const storeOf = (msgs: StoredMessage[]) => (seq: number) => msgs.find((m) => m.seq >= seq) ?? null;

describe("sync batches", () => {
  test("round-trip: sequences, times, UTF-8 subjects, headers, empty bodies", () => {
    const msgs = [message(1, 0), message(3, 10, "NATS/1.0\r\nA: b\r\n\r\n"), message(7, 1000)];
    const decoded = decodeSyncBatch(encodeSyncBatch({ msgs, lastSeq: 9 }));
    expect(decoded?.lastSeq).toBe(9);
    expect(decoded?.msgs.map((m) => ({ ...m, headers: m.headers?.toString() ?? null, data: [...m.data] }))).toEqual(
      msgs.map((m) => ({ ...m, headers: m.headers?.toString() ?? null, data: [...m.data] })),
    );
    expect(decodeSyncBatch(encodeSyncBatch({ msgs: [], lastSeq: 0 }))).toEqual({ msgs: [], lastSeq: 0 });
  });

  test("an answer stops at its byte limit, and holds one message however large", () => {
    const big = Array.from({ length: 100 }, (_, i) => message(i + 1, 32 * 1024));
    const batch = collectSyncBatch(1, 100, storeOf(big));
    expect(batch.length).toBe(Math.ceil(SYNC_BATCH_BYTES / (32 * 1024 + 8)));
    expect(encodeSyncBatch({ msgs: batch, lastSeq: 100 }).length).toBeLessThan(SYNC_BATCH_BYTES + 64 * 1024);
    const huge = [message(5, 1024 * 1024)];
    expect(collectSyncBatch(1, 10, storeOf(huge)).map((m) => m.seq)).toEqual([5]);
    expect(collectSyncBatch(1, 4, storeOf(huge))).toEqual([]); // past `to`: not part of the answer
  });

  test("a truncated or foreign answer is not a batch", () => {
    const bytes = encodeSyncBatch({ msgs: [message(1, 100)], lastSeq: 1 });
    expect(decodeSyncBatch(bytes.subarray(0, bytes.length - 1))).toBeNull();
    expect(decodeSyncBatch(Buffer.from('{"msgs":[],"last_seq":1}'))).toBeNull();
    expect(decodeSyncBatch(Buffer.alloc(0))).toBeNull();
  });
});
