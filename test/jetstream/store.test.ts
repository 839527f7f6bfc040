// One conformance test for both message stores (memory and file), then what only the file store does:
// survive a reopen, cut a torn or corrupt tail, rotate and remove segments.
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, test } from "vitest";
import { FileStore } from "../../src/jetstream/store/file.ts";
import { MemoryStore } from "../../src/jetstream/store/memory.ts";
import { NO_LIMITS, StoreLimitError, type MessageStore, type StoreLimits } from "../../src/jetstream/store/store.ts";

const dirs: string[] = [];
const open: MessageStore[] = [];
afterEach(() => {
  for (const s of open.splice(0)) s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), "natter-store-"));
  dirs.push(d);
  return d;
}

const b = (s: string) => Buffer.from(s);

type Factory = (limits?: Partial<StoreLimits>) => MessageStore;
const factories: [string, Factory][] = [
  ["memory", (limits) => track(new MemoryStore({ ...NO_LIMITS, ...limits }))],
  ["file", (limits) => track(new FileStore({ dir: tempDir(), segmentBytes: 4096 }, { ...NO_LIMITS, ...limits }))],
  ["file (sync always)", (limits) => track(new FileStore({ dir: tempDir(), segmentBytes: 4096, sync: "always" }, { ...NO_LIMITS, ...limits }))],
  ["file (compressed)", (limits) => track(new FileStore({ dir: tempDir(), segmentBytes: 4096, compress: true }, { ...NO_LIMITS, ...limits }))],
];

function track<S extends MessageStore>(s: S): S {
  open.push(s);
  return s;
}

describe.each(factories)("%s store conformance", (_kind, make) => {
  test("appends get ascending sequences and come back as stored", () => {
    const s = make();
    expect(s.state()).toMatchObject({ messages: 0, bytes: 0, firstSeq: 1, lastSeq: 0 });
    const h = b("NATS/1.0\r\nA: 1\r\n\r\n");
    const m1 = s.append("a.1", null, b("one"));
    const m2 = s.append("a.2", h, b("two"));
    s.flush();
    expect([m1.seq, m2.seq]).toEqual([1, 2]);
    expect(m2.ts).toBeGreaterThan(m1.ts);
    const got = s.get(2)!;
    expect(got.subject).toBe("a.2");
    expect(got.headers!.toString()).toBe(h.toString());
    expect(got.data.toString()).toBe("two");
    expect(s.get(1)!.headers).toBeNull();
    expect(s.get(3)).toBeNull();
    expect(s.state()).toMatchObject({ messages: 2, firstSeq: 1, lastSeq: 2, numSubjects: 2 });
  });

  test("bytes follow nats-server's accounting", () => {
    const s = make();
    s.append("s.a", null, b("hello"));
    s.append("s.a", b("NATS/1.0\r\nNats-Msg-Id: 1\r\n\r\n"), b("hello"));
    // file: 38 + 70 = 108 (what nats-server reports for these two); memory: 24 + 52
    expect(s.state().bytes).toBe(s.kind === "file" ? 108 : 76);
  });

  test("next, last, count honour filters with wildcards", () => {
    const s = make();
    for (let i = 1; i <= 20; i++) s.append(`k.${i % 3}`, null, b(String(i)));
    expect(s.next(1, ["k.2"])!.seq).toBe(2);
    expect(s.next(3, ["k.2"])!.seq).toBe(5);
    expect(s.next(1, ["k.*"])!.seq).toBe(1);
    expect(s.next(19, ["k.0", "k.2"])!.seq).toBe(20);
    expect(s.next(21, null)).toBeNull();
    expect(s.last("k.1")!.seq).toBe(19);
    expect(s.last("k.>")!.seq).toBe(20);
    expect(s.last("x")).toBeNull();
    expect(s.count(1, null)).toBe(20);
    expect(s.count(11, null)).toBe(10);
    expect(s.count(1, ["k.0"])).toBe(6);
    expect(s.count(10, ["k.*"])).toBe(11);
    expect(s.lastPerSubject(null)).toEqual([18, 19, 20]);
    expect(s.lastPerSubject(["k.0", "k.1"])).toEqual([18, 19]);
    expect(Object.fromEntries(s.subjects("k.*"))).toEqual({ "k.0": 6, "k.1": 7, "k.2": 7 });
  });

  test("remove leaves a gap; first moves past front removals", () => {
    const s = make();
    for (let i = 0; i < 5; i++) s.append("x", null, b("v"));
    const removed: number[] = [];
    s.onRemove = (seq) => removed.push(seq);
    expect(s.remove(3)).toBe(true);
    expect(s.remove(3)).toBe(false);
    expect(s.state()).toMatchObject({ messages: 4, firstSeq: 1, lastSeq: 5, numDeleted: 1 });
    expect(s.next(3, null)!.seq).toBe(4);
    s.remove(1);
    s.remove(2);
    expect(s.state()).toMatchObject({ messages: 2, firstSeq: 4, lastSeq: 5, numDeleted: 0 });
    expect(removed).toEqual([3, 1, 2]);
  });

  test("max_msgs and max_bytes drop the oldest (discard old)", () => {
    const s = make({ maxMsgs: 3 });
    for (let i = 0; i < 5; i++) s.append("x", null, b("v"));
    expect(s.state()).toMatchObject({ messages: 3, firstSeq: 3, lastSeq: 5 });
    const t = make({ maxBytes: 200 });
    for (let i = 0; i < 10; i++) t.append("x", null, Buffer.alloc(50));
    expect(t.state().bytes).toBeLessThanOrEqual(200);
    expect(t.state().lastSeq).toBe(10);
  });

  test("discard new refuses past max_msgs, max_bytes and (when asked) per subject", () => {
    const s = make({ maxMsgs: 2, discard: "new" });
    s.append("x", null, b("1"));
    s.append("x", null, b("2"));
    expect(() => s.append("x", null, b("3"))).toThrow(StoreLimitError);
    expect(() => s.append("x", null, b("3"))).toThrow("maximum messages exceeded");
    expect(s.state()).toMatchObject({ messages: 2, lastSeq: 2 });
    const t = make({ maxBytes: 100, discard: "new" });
    t.append("x", null, Buffer.alloc(20));
    expect(() => t.append("x", null, Buffer.alloc(60))).toThrow("maximum bytes exceeded");
    const u = make({ maxMsgsPerSubject: 1, discard: "new", discardNewPerSubject: true });
    u.append("a", null, b("1"));
    expect(() => u.append("a", null, b("2"))).toThrow("maximum messages per subject exceeded");
    u.append("b", null, b("1"));
  });

  test("max_msgs_per_subject keeps the newest per subject", () => {
    const s = make({ maxMsgsPerSubject: 2 });
    for (let i = 1; i <= 6; i++) s.append(`k.${i % 2}`, null, b(String(i)));
    expect(s.state().messages).toBe(4);
    expect(s.get(1)).toBeNull();
    expect(s.get(2)).toBeNull();
    expect(s.next(1, ["k.1"])!.data.toString()).toBe("3");
  });

  test("max_age expires from the front and says when the next is due", () => {
    const s = make({ maxAgeMs: 1000 });
    s.append("x", null, b("old"), 10_000);
    s.append("x", null, b("new"), 10_600);
    expect(s.expire(10_500)).toBeCloseTo(11_000, 0);
    expect(s.state().messages).toBe(2);
    expect(s.expire(11_100)).toBeCloseTo(11_600, 0);
    expect(s.state()).toMatchObject({ messages: 1, firstSeq: 2 });
    expect(s.expire(12_000)).toBe(0);
    expect(s.state()).toMatchObject({ messages: 0, firstSeq: 3, lastSeq: 2 });
  });

  test("purge: all, by filter, keep, up to seq; the sequence goes on", () => {
    const s = make();
    for (let i = 1; i <= 10; i++) s.append(`p.${i % 2}`, null, b(String(i)));
    expect(s.purge({ filter: "p.0", keep: 2 })).toBe(3);
    expect(s.count(1, ["p.0"])).toBe(2);
    // left: 1 3 5 7 8 9 10
    expect(s.purge({ seq: 5 })).toBe(2);
    expect(s.state().firstSeq).toBe(5);
    expect(s.purge({ keep: 2 })).toBe(3);
    expect(s.state()).toMatchObject({ messages: 2, firstSeq: 9 });
    expect(s.purge({})).toBe(2);
    expect(s.state()).toMatchObject({ messages: 0, firstSeq: 11, lastSeq: 10 });
    expect(s.append("p.1", null, b("after")).seq).toBe(11);
  });

  test("purge up to a sequence past the end empties it and the next message gets that sequence", () => {
    const s = make();
    for (let i = 1; i <= 3; i++) s.append("p", null, b(String(i)));
    expect(s.purge({ seq: 50 })).toBe(3);
    expect(s.state()).toMatchObject({ messages: 0, firstSeq: 50, lastSeq: 49 });
    expect(s.append("p", null, b("after")).seq).toBe(50);
    expect(s.purge({ seq: 51 })).toBe(1); // just past the end: no jump needed
    expect(s.state()).toMatchObject({ messages: 0, firstSeq: 51, lastSeq: 50 });
  });

  test("long bodies come back as stored and count at their stored size (compressed or not)", () => {
    const s = make();
    const h = b(`NATS/1.0\r\nK: ${"k".repeat(100)}\r\n\r\n`);
    const body = b("abcdefgh".repeat(500));
    s.append("l.1", null, body);
    s.append("l.2", h, body);
    s.setCompression(false);
    s.append("l.3", h, body);
    s.flush();
    expect(s.get(1)!.data.equals(body)).toBe(true);
    expect(s.get(1)!.headers).toBeNull();
    expect(s.get(2)!.headers!.equals(h)).toBe(true);
    expect(s.get(2)!.data.equals(body)).toBe(true);
    expect(s.get(3)!.data.equals(body)).toBe(true);
    const st = s.state();
    expect(st.bytes).toBe(s.kind === "file" ? 3 * (22 + 3 + 8) + 2 * (4 + h.length) + 3 * body.length : 3 * (3 + 16) + 2 * h.length + 3 * body.length);
  });
});

describe("file store on disk", () => {
  test("a reopened store has every message, delete and the sequence", () => {
    const dir = tempDir();
    const a = new FileStore({ dir, segmentBytes: 1024 });
    for (let i = 1; i <= 50; i++) a.append(`d.${i % 5}`, i % 2 ? null : b(`NATS/1.0\r\nI: ${i}\r\n\r\n`), b(`payload-${i}`));
    a.remove(7);
    a.remove(1);
    a.close();
    const r = track(new FileStore({ dir, segmentBytes: 1024 }));
    expect(r.state()).toMatchObject({ messages: 48, firstSeq: 2, lastSeq: 50, numSubjects: 5 });
    expect(r.get(7)).toBeNull();
    expect(r.get(8)!.headers!.toString()).toContain("I: 8");
    expect(r.get(50)!.data.toString()).toBe("payload-50");
    expect(r.append("d.0", null, b("next")).seq).toBe(51);
  });

  test("compression: compressible bodies take less disk and read back across a reopen, mixed with plain ones", () => {
    const dir = tempDir();
    const body = b("the same words again and again ".repeat(100));
    const plainDir = tempDir();
    const plain = new FileStore({ dir: plainDir });
    for (let i = 0; i < 20; i++) plain.append("c", null, body);
    plain.flush();
    const a = new FileStore({ dir, compress: true });
    for (let i = 0; i < 20; i++) a.append("c", null, body);
    a.flush();
    const size = (d: string) => readdirSync(d).reduce((n, f) => n + statSync(path.join(d, f)).size, 0);
    expect(size(dir)).toBeLessThan(size(plainDir) / 5);
    plain.close();
    a.setCompression(false);
    a.append("c", b("NATS/1.0\r\nX: 1\r\n\r\n"), body);
    a.close();
    const r = track(new FileStore({ dir }));
    expect(r.state()).toMatchObject({ messages: 21, lastSeq: 21 });
    for (let seq = 1; seq <= 21; seq++) expect(r.get(seq)!.data.equals(body)).toBe(true);
    expect(r.get(21)!.headers!.toString()).toContain("X: 1");
  });

  test("purge past the end keeps the new sequence across a reopen", () => {
    const dir = tempDir();
    const a = new FileStore({ dir });
    a.append("x", null, b("v"));
    a.purge({ seq: 100 });
    a.close();
    const r = track(new FileStore({ dir }));
    expect(r.state()).toMatchObject({ messages: 0, firstSeq: 100, lastSeq: 99 });
    expect(r.append("x", null, b("v")).seq).toBe(100);
  });

  test("an emptied store keeps its last sequence across a reopen", () => {
    const dir = tempDir();
    const a = new FileStore({ dir });
    for (let i = 0; i < 5; i++) a.append("x", null, b("v"));
    a.purge({});
    a.close();
    const r = track(new FileStore({ dir }));
    expect(r.state()).toMatchObject({ messages: 0, firstSeq: 6, lastSeq: 5 });
  });

  test("segments rotate past their size and are removed once their messages are gone", () => {
    const dir = tempDir();
    const s = track(new FileStore({ dir, segmentBytes: 2048 }, { ...NO_LIMITS, maxMsgs: 10 }));
    for (let i = 0; i < 200; i++) s.append("r", null, Buffer.alloc(100));
    s.flush();
    const files = readdirSync(dir).filter((f) => f.endsWith(".seg"));
    expect(files.length).toBeLessThanOrEqual(3);
    expect(s.state()).toMatchObject({ messages: 10, firstSeq: 191, lastSeq: 200 });
    const total = files.reduce((n, f) => n + statSync(path.join(dir, f)).size, 0);
    expect(total).toBeLessThan(3 * 2048 + 200);
  });

  test("a torn tail is cut at the last whole record and never served", () => {
    const dir = tempDir();
    const a = new FileStore({ dir });
    for (let i = 1; i <= 3; i++) a.append("t", null, b(`m${i}`));
    a.close();
    const seg = path.join(dir, "1.seg");
    const whole = statSync(seg).size;
    // A fourth record half written: its header promises more than is there.
    const partial = Buffer.alloc(20);
    partial.writeUInt32LE(500, 0);
    appendFileSync(seg, partial);
    const r = new FileStore({ dir });
    expect(r.recovery.length).toBe(1);
    expect(r.state()).toMatchObject({ messages: 3, lastSeq: 3 });
    expect(statSync(seg).size).toBe(whole);
    expect(r.append("t", null, b("m4")).seq).toBe(4);
    r.close();
    const again = track(new FileStore({ dir }));
    expect(again.recovery).toEqual([]);
    expect(again.get(4)!.data.toString()).toBe("m4");
  });

  test("a corrupted record fails its checksum: only it is lost, the records after it are kept", () => {
    const dir = tempDir();
    const a = new FileStore({ dir });
    for (let i = 1; i <= 5; i++) a.append("c", null, b(`message-${i}`));
    a.close();
    const seg = path.join(dir, "1.seg");
    const bytes = readFileSync(seg);
    const at = bytes.indexOf("message-4");
    bytes[at] ^= 0xff;
    writeFileSync(seg, bytes);
    const r = track(new FileStore({ dir }));
    expect(r.recovery[0]).toMatch(/checksum mismatch.*lost sequence 4$/);
    expect(r.state()).toMatchObject({ messages: 4, lastSeq: 5, numDeleted: 1, lost: { msgs: [4] } });
    expect(r.deletedSeqs()).toEqual([4]);
    expect(r.get(4)).toBeNull();
    expect(r.get(5)!.data.toString()).toBe("message-5");
    expect(r.append("c", null, b("message-6")).seq).toBe(6);
  });

  test("a record damaged after loading is never served: it is dropped as deleted", () => {
    const dir = tempDir();
    const a = track(new FileStore({ dir }));
    for (let i = 1; i <= 3; i++) {
      a.append("c", null, b(`message-${i}`));
      a.flush(); // one write each: what the store keeps in memory is the last one only
    }
    const seg = path.join(dir, "1.seg");
    const bytes = readFileSync(seg);
    bytes[bytes.indexOf("message-1")] ^= 0xff;
    writeFileSync(seg, bytes); // same file, same inode: the open store reads the damage
    const removed: number[] = [];
    a.onRemove = (seq) => removed.push(seq);
    expect(a.get(1)).toBeNull();
    expect(removed).toEqual([1]);
    expect(a.state()).toMatchObject({ messages: 2, firstSeq: 2 });
    expect(a.next(1, null)!.data.toString()).toBe("message-2");
  });

  test("truncation at every byte of the last record loses only that record, and not its sequence", () => {
    const dir = tempDir();
    const a = new FileStore({ dir });
    a.append("t", null, b("first"));
    a.flush();
    const seg = path.join(dir, "1.seg");
    const before = statSync(seg).size;
    a.append("t", b("NATS/1.0\r\nK: v\r\n\r\n"), b("second"));
    a.close();
    const after = statSync(seg).size;
    const full = readFileSync(seg);
    for (let cut = before; cut < after; cut++) {
      writeFileSync(seg, full.subarray(0, cut));
      const r = new FileStore({ dir });
      // The high-water mark remembers that sequence 2 was written: it is lost, not handed out again.
      expect(r.state()).toMatchObject({ messages: 1, lastSeq: 2, numDeleted: 1 });
      r.close();
    }
    truncateSync(seg, after);
  });
});

describe("file store: saved segment indexes", () => {
  /** Everything a load decides: the state, the subjects, what is deleted or lost, every message as stored. */
  function snapshot(s: FileStore) {
    const messages: string[] = [];
    for (let m = s.next(0, null); m !== null; m = s.next(m.seq + 1, null)) {
      messages.push(`${m.seq} ${m.subject} ${m.ts} ${m.headers?.toString() ?? "-"} ${m.data.toString()}`);
    }
    return { state: s.state(), subjects: [...s.subjects(null)].sort(), deleted: s.deletedSeqs(), messages, last: s.last("i.>")?.seq };
  }

  /** A store of several segments with what a segment can hold: headers, deletes, a moved front, compressed bodies. */
  function fill(dir: string): void {
    const a = new FileStore({ dir, segmentBytes: 2048 }, { ...NO_LIMITS, maxMsgsPerSubject: 30 });
    for (let i = 1; i <= 150; i++) {
      if (i === 100) a.setCompression(true);
      a.append(`i.${i % 7}`, i % 3 ? null : b(`NATS/1.0\r\nN: ${i}\r\n\r\n`), b(`body-${i} `.repeat(i % 11 === 0 ? 12 : 1)));
      if (i % 13 === 0) a.remove(i - 5);
    }
    a.purge({ seq: 20 });
    a.close();
  }

  const files = (dir: string, ext: string) => readdirSync(dir).filter((f) => f.endsWith(ext)).sort((x, y) => parseInt(x) - parseInt(y));
  /** What a load without any saved index finds (read record by record): the truth to compare with. */
  function truth(dir: string) {
    const copy = tempDir();
    for (const f of files(dir, ".seg").concat(readdirSync(dir).filter((f) => f === "hwm"))) writeFileSync(path.join(copy, f), readFileSync(path.join(dir, f)));
    const s = new FileStore({ dir: copy, segmentBytes: 2048 });
    expect(s.loadedFrom.savedIndex).toBe(0);
    const snap = snapshot(s);
    s.close();
    return snap;
  }

  test("a store closed cleanly loads from its saved indexes: the same messages, sequences and subjects", () => {
    const dir = tempDir();
    fill(dir);
    const segments = files(dir, ".seg").length;
    expect(segments).toBeGreaterThan(3);
    expect(files(dir, ".idx").length).toBe(segments);
    const expected = truth(dir);
    const r = track(new FileStore({ dir, segmentBytes: 2048 }));
    expect(r.loadedFrom).toEqual({ savedIndex: segments, tails: 0, records: 0 });
    expect(snapshot(r)).toEqual(expected);
    expect(expected.state).toMatchObject({ firstSeq: 20, lastSeq: 150 });
    // And it goes on: the active segment's index continues from the saved one.
    r.append("i.new", null, b("after"));
    r.close();
    const again = track(new FileStore({ dir, segmentBytes: 2048 }));
    expect(again.loadedFrom.records).toBe(0);
    expect(again.get(151)!.data.toString()).toBe("after");
  });

  test("sealed segments read record by record get their index saved after the load, while the store is open", async () => {
    const dir = tempDir();
    fill(dir);
    for (const f of files(dir, ".idx")) rmSync(path.join(dir, f));
    const sealed = files(dir, ".seg").slice(0, -1);
    const s = track(new FileStore({ dir, segmentBytes: 2048 }));
    expect(s.loadedFrom).toEqual({ savedIndex: 0, tails: 0, records: sealed.length + 1 });
    const deadline = Date.now() + 5_000;
    while (files(dir, ".idx").length < sealed.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    expect(files(dir, ".idx")).toEqual(sealed.map((f) => f.replace(".seg", ".idx")));
    // What a restart now finds (the open store is left as it is: a copy of its files).
    const copy = tempDir();
    for (const f of readdirSync(dir)) writeFileSync(path.join(copy, f), readFileSync(path.join(dir, f)));
    const r = track(new FileStore({ dir: copy, segmentBytes: 2048 }));
    expect(r.loadedFrom).toEqual({ savedIndex: sealed.length, tails: 0, records: 1 });
    expect(snapshot(r)).toEqual(snapshot(s));
  });

  test("the active segment's index is saved as it grows: after a kill -9 only the records after it are read", async () => {
    const dir = tempDir();
    const s = track(new FileStore({ dir, syncIntervalMs: 10 }));
    const body = Buffer.alloc(100, 120);
    for (let i = 0; i < 12_000; i++) s.append(`g.${i % 5}`, null, body); // past 1 MiB
    s.flush();
    const deadline = Date.now() + 5_000;
    while (files(dir, ".idx").length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    expect(files(dir, ".idx")).toEqual(["1.idx"]);
    s.remove(5);
    for (let i = 0; i < 100; i++) s.append("g.tail", null, b(`tail-${i}`));
    s.flush();
    // What kill -9 leaves: the files as they are (a copy; this store stays open, unclosed).
    const copy = tempDir();
    for (const f of readdirSync(dir)) writeFileSync(path.join(copy, f), readFileSync(path.join(dir, f)));
    const expected = truth(copy);
    expect(expected.state).toMatchObject({ messages: 12_099, lastSeq: 12_100, numSubjects: 6 });
    const r = track(new FileStore({ dir: copy }));
    expect(r.loadedFrom).toEqual({ savedIndex: 1, tails: 1, records: 0 });
    expect(snapshot(r)).toEqual(expected);
    // Its rows went on with those records: closed, the next load needs no record.
    r.close();
    const again = track(new FileStore({ dir: copy }));
    expect(again.loadedFrom).toEqual({ savedIndex: 1, tails: 0, records: 0 });
    expect(snapshot(again)).toEqual(expected);
  });

  test("a damaged, stale or foreign saved index is detected and rebuilt: messages, first/last sequence and subjects stay exact", () => {
    const dir = tempDir();
    fill(dir);
    const seg = files(dir, ".seg");
    const idx = (n: number) => path.join(dir, seg[n]!.replace(".seg", ".idx"));
    // Stale: the active segment grew after its index was saved (a kill -9 leaves this).
    const lastIdx = readFileSync(idx(seg.length - 1));
    const grown = track(new FileStore({ dir, segmentBytes: 2048 }));
    grown.append("i.late", null, b("late"));
    grown.flush();
    writeFileSync(idx(seg.length - 1), lastIdx);
    // Damaged: a byte flipped in the middle of one index. Foreign: another segment's index in the place of
    // one (that segment does not begin with the bytes it was saved for).
    const damaged = readFileSync(idx(1));
    damaged[damaged.length >> 1] ^= 0x40;
    writeFileSync(idx(1), damaged);
    writeFileSync(idx(2), readFileSync(idx(3)));
    const expected = truth(dir);
    expect(expected.state).toMatchObject({ firstSeq: 20, lastSeq: 151 });
    expect(expected.messages.at(-1)).toMatch(/^151 i\.late .* late$/);
    const r = track(new FileStore({ dir, segmentBytes: 2048 }));
    // The active segment's index is a stale one of its beginning: used, and the records after it read.
    expect(r.loadedFrom).toEqual({ savedIndex: seg.length - 2, tails: 1, records: 2 });
    expect(snapshot(r)).toEqual(expected);
    grown.close();
    r.close();
    // Rebuilt: every index fits again (the sealed ones were saved by that load, the active one by a close).
    const again = track(new FileStore({ dir, segmentBytes: 2048 }));
    expect(again.loadedFrom).toEqual({ savedIndex: seg.length, tails: 0, records: 0 });
    expect(snapshot(again)).toEqual(expected);
  });

  test("random appends, deletes, purges and limits across reopens: a load from saved indexes finds what a load without them finds", () => {
    let seed = 18;
    const rand = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return (seed >>> 8) % n;
    };
    let dir = tempDir();
    let fromIndex = 0;
    let tails = 0;
    for (let round = 0; round < 10; round++) {
      const limits = { ...NO_LIMITS, maxMsgs: rand(2) ? 400 : -1, maxMsgsPerSubject: rand(3) ? -1 : 40 };
      const s = new FileStore({ dir, segmentBytes: 1500, compress: rand(2) === 0 }, limits);
      // Some rounds only a few records: the active segment then stays the one the last round saved.
      for (let i = 0, n = rand(3) === 0 ? 1 + rand(6) : 50 + rand(300); i < n; i++) {
        const op = rand(20);
        const last = s.state().lastSeq;
        if (op === 0 && last > 0) s.remove(1 + rand(last));
        else if (op === 1) s.purge(rand(2) ? { filter: `r.${rand(9)}` } : { keep: 1 + rand(200) });
        else if (op === 2 && rand(10) === 0) s.purge({});
        else s.append(`r.${rand(9)}`, rand(4) ? null : b(`NATS/1.0\r\nR: ${i}\r\n\r\n`), b(`v${i} `.repeat(1 + rand(30))));
      }
      const live = snapshot(s);
      if (rand(2)) {
        // As kill -9 leaves it (a copy of the files unclosed): the active segment's index, if any, is
        // the one saved before this round's records.
        s.flush();
        const copy = tempDir();
        for (const f of readdirSync(dir)) writeFileSync(path.join(copy, f), readFileSync(path.join(dir, f)));
        s.close();
        dir = copy;
      } else s.close();
      // Sometimes another segment's index in the place of the active one's, sometimes one missing.
      const idx = files(dir, ".idx");
      if (idx.length > 0 && rand(2)) writeFileSync(path.join(dir, idx.at(-1)!), readFileSync(path.join(dir, idx[0]!)));
      if (idx.length > 1 && rand(2)) rmSync(path.join(dir, idx[rand(idx.length)]!));
      const expected = truth(dir);
      const r = new FileStore({ dir, segmentBytes: 1500 }, limits);
      expect(snapshot(r), `round ${round}`).toEqual(expected);
      expect(expected.state.lastSeq).toBe(live.state.lastSeq);
      fromIndex += r.loadedFrom.savedIndex;
      tails += r.loadedFrom.tails;
      r.close();
    }
    expect(fromIndex).toBeGreaterThan(8);
    expect(tails).toBeGreaterThan(0);
  });

  test("an index of the format before (NIX1) is not read: its segment is read record by record and indexed again", () => {
    // Written by the commit before this format (segments of 512 bytes, subjects old.0–2, a delete, a moved front).
    const dir = tempDir();
    const fixture = path.join(import.meta.dirname, "fixtures/store-nix1");
    for (const f of readdirSync(fixture)) writeFileSync(path.join(dir, f), readFileSync(path.join(fixture, f)));
    const magic = (f: string) => readFileSync(path.join(dir, f)).subarray(0, 4).toString();
    expect(files(dir, ".idx").map(magic)).toEqual(["NIX1", "NIX1", "NIX1"]);
    const expected = truth(dir);
    expect(expected.state).toMatchObject({ messages: 21, firstSeq: 3, lastSeq: 24, numSubjects: 3, numDeleted: 1 });
    const s = new FileStore({ dir, segmentBytes: 512 });
    expect(s.loadedFrom).toEqual({ savedIndex: 0, tails: 0, records: 3 });
    expect(snapshot(s)).toEqual(expected);
    s.close();
    expect(files(dir, ".idx").map(magic)).toEqual(["NIX2", "NIX2", "NIX2"]);
    const again = track(new FileStore({ dir, segmentBytes: 512 }));
    expect(again.loadedFrom).toEqual({ savedIndex: 3, tails: 0, records: 0 });
    expect(snapshot(again)).toEqual(expected);
  });

  test("a segment whose sequences have a gap (a tail lost, then more messages) loads from its index row by row", () => {
    const dir = tempDir();
    const a = new FileStore({ dir });
    for (let i = 1; i <= 10; i++) a.append(`g.${i % 3}`, null, b(`m${i}`));
    a.close();
    truncateSync(path.join(dir, "1.seg"), statSync(path.join(dir, "1.seg")).size - 3); // message 10 torn
    const cut = new FileStore({ dir });
    expect(cut.state()).toMatchObject({ messages: 9, lastSeq: 10 });
    cut.append("g.x", null, b("m11"));
    cut.remove(4);
    cut.close();
    // Its index says so (the header's flags at byte 40: not consecutive), so its sequences are in it.
    expect(readFileSync(path.join(dir, "1.idx")).readUInt32LE(40)).toBe(0);
    const expected = truth(dir);
    expect(expected.state).toMatchObject({ messages: 9, firstSeq: 1, lastSeq: 11, numDeleted: 2 });
    const r = track(new FileStore({ dir }));
    expect(r.loadedFrom).toEqual({ savedIndex: 1, tails: 0, records: 0 });
    expect(snapshot(r)).toEqual(expected);
    expect(r.get(11)!.data.toString()).toBe("m11");
    expect(r.nextSeq(5, ["g.x"])).toBe(11);
  });

  test("a front moved past whole segments and into one (max_msgs) is applied to what the indexes loaded: state, subjects and their lists exact", () => {
    const dir = tempDir();
    const a = new FileStore({ dir, segmentBytes: 2048 }, { ...NO_LIMITS, maxMsgs: 70 });
    for (let i = 1; i <= 200; i++) {
      a.append(`f.${i % 6}`, null, b(`m${i}`));
      if (i % 17 === 0) a.remove(i - 3); // deletes too, some below the front by the end
    }
    a.close();
    const expected = truth(dir);
    expect(expected.state).toMatchObject({ lastSeq: 200 });
    expect(expected.state.firstSeq).toBeGreaterThan(100);
    const r = track(new FileStore({ dir, segmentBytes: 2048 }));
    expect(r.loadedFrom.records).toBe(0);
    expect(snapshot(r)).toEqual(expected);
    // Each subject's list, cut at the front without being made, then made.
    for (let k = 0; k < 6; k++) {
      const seqs = expected.messages.filter((m) => m.split(" ")[1] === `f.${k}`).map((m) => Number(m.split(" ")[0]));
      expect(r.count(0, [`f.${k}`]), `f.${k}`).toBe(seqs.length);
      expect(r.nextSeq(0, [`f.${k}`]), `f.${k}`).toBe(seqs[0]);
    }
  });

  test("operations after a load from saved indexes (each subject's list made when first needed) give what they give after a load record by record", () => {
    let seed = 4;
    const rand = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return (seed >>> 8) % n;
    };
    const filters = ["i.3", "i.*", "i.>", ">", "i.new", "x"];
    /** What the queries answer, for one filter. */
    const answers = (s: FileStore, filter: string, from: number) => ({
      next: s.nextSeq(from, [filter]),
      count: s.count(from, [filter]),
      last: s.last(filter)?.seq,
      lastPer: s.lastPerSubject([filter]),
      subjects: [...s.subjects(filter)].sort(),
    });
    for (let round = 0; round < 4; round++) {
      const dir = tempDir();
      if (round % 2 === 0) fill(dir);
      else {
        // No deletes or limits: nothing at the load needs a subject's list, so every one is made later.
        const a = new FileStore({ dir, segmentBytes: 2048 });
        for (let i = 1; i <= 150; i++) a.append(`i.${i % 7}`, null, b(`body-${i}`));
        a.close();
      }
      const copy = tempDir();
      for (const f of files(dir, ".seg").concat(["hwm"])) writeFileSync(path.join(copy, f), readFileSync(path.join(dir, f)));
      const fromIndex = track(new FileStore({ dir, segmentBytes: 2048 }));
      const fromRecords = track(new FileStore({ dir: copy, segmentBytes: 2048 }));
      expect(fromIndex.loadedFrom.records).toBe(0);
      expect(fromRecords.loadedFrom.savedIndex).toBe(0);
      const both = <T>(op: (s: FileStore) => T, what: string) => {
        const got = op(fromIndex);
        expect(got, `round ${round}: ${what}`).toEqual(op(fromRecords));
      };
      for (let i = 0; i < 120; i++) {
        // Every random choice made once, for both stores.
        const [op, from, filter, n, m] = [rand(10), rand(170), filters[rand(filters.length)]!, rand(20), rand(60)];
        if (op === 0) both((s) => s.remove(from), `remove ${from}`);
        else if (op === 1) both((s) => s.purge({ filter, keep: n % 3 }), `purge ${filter}, keep ${n % 3}`);
        else if (op === 2) both((s) => s.purge(n % 2 ? { seq: from } : { filter, seq: from }), `purge ${n % 2 ? "" : filter} below ${from}`);
        else if (op === 3) both((s) => s.setLimits({ ...NO_LIMITS, maxMsgsPerSubject: 1 + n, maxMsgs: m % 2 ? -1 : 60 + m }), "limits");
        else if (op <= 6) both((s) => s.append(n % 4 ? `i.${n % 9}` : "i.new", null, b(`v${i}`), 2e12 + i).seq, "append");
        both((s) => answers(s, filter, from), `${filter} from ${from}`);
      }
      expect(snapshot(fromIndex)).toEqual(snapshot(fromRecords));
    }
  });

  test("a segment damaged in place behind a saved index is read record by record: only the damaged message is lost, never served", () => {
    const dir = tempDir();
    fill(dir);
    const seg = path.join(dir, files(dir, ".seg")[2]!);
    const bytes = readFileSync(seg);
    // A byte of a body: same length, so only the segment's checksum tells the index no longer fits.
    const at = bytes.lastIndexOf("body-");
    bytes[at] ^= 0x01;
    writeFileSync(seg, bytes);
    const expected = truth(dir);
    expect(expected.state.lost?.msgs.length).toBe(1);
    const r = track(new FileStore({ dir, segmentBytes: 2048 }));
    // That segment, and the next one if the damage was its last message (the next message closes the loss).
    expect(r.loadedFrom.records).toBeGreaterThanOrEqual(1);
    expect(r.loadedFrom.records).toBeLessThanOrEqual(2);
    expect(snapshot(r)).toEqual(expected);
    expect(r.get(expected.state.lost!.msgs[0]!)).toBeNull();
  });
});
