// One conformance suite for both RaftStorage implementations, then what only files can suffer: a torn
// or corrupt log tail, and a crash between writing a snapshot and rewriting the log.
import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { FileRaftStorage } from "../../src/jetstream/cluster/raft-file-storage.ts";
import { MemoryRaftStorage } from "../../src/jetstream/cluster/raft-memory-storage.ts";
import { EntryType, type LogEntry, type RaftStorage } from "../../src/jetstream/cluster/raft-types.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const d = mkdtempSync(path.join(tmpdir(), "raft-storage-"));
  dirs.push(d);
  return d;
}

const cmd = (index: number, term: number, text = `c${index}`): LogEntry => ({
  index,
  term,
  type: EntryType.Command,
  data: new TextEncoder().encode(text),
});
const cfg = (index: number, term: number, peers: string[]): LogEntry => ({ index, term, type: EntryType.Config, peers });
const indexes = (s: RaftStorage) => s.load().entries.map((e) => `${e.index}@${e.term}`);

interface Kind {
  name: string;
  /** A fresh store, and a way to "restart" it (reopen what is durable). */
  open(): { store: RaftStorage; reopen(): RaftStorage };
}

const kinds: Kind[] = [
  {
    name: "memory",
    open() {
      const store = new MemoryRaftStorage();
      return { store, reopen: () => store };
    },
  },
  {
    name: "file",
    open() {
      const dir = tempDir();
      const store = new FileRaftStorage(dir);
      store.load();
      return {
        store,
        reopen() {
          store.close();
          const again = new FileRaftStorage(dir);
          return again;
        },
      };
    },
  },
];

for (const kind of kinds) {
  describe(`raft storage conformance: ${kind.name}`, () => {
    it("keeps term and vote", () => {
      const { store, reopen } = kind.open();
      store.saveHardState({ term: 4, votedFor: "n2" });
      store.saveHardState({ term: 5, votedFor: "" });
      expect(reopen().load().hard).toEqual({ term: 5, votedFor: "" });
    });

    it("keeps appended entries, command bytes and config peers", () => {
      const { store, reopen } = kind.open();
      store.append([cmd(1, 1), cfg(2, 1, ["a", "b"])]);
      store.append([cmd(3, 2, "three")]);
      const loaded = reopen().load().entries;
      expect(loaded.map((e) => e.index)).toEqual([1, 2, 3]);
      expect(new TextDecoder().decode(loaded[2]!.data)).toBe("three");
      expect(loaded[1]!.peers).toEqual(["a", "b"]);
    });

    it("refuses an append that does not follow the log", () => {
      const { store } = kind.open();
      store.append([cmd(1, 1)]);
      expect(() => store.append([cmd(3, 1)])).toThrow();
    });

    it("truncates from an index, then appends after it", () => {
      const { store, reopen } = kind.open();
      store.append([cmd(1, 1), cmd(2, 1), cmd(3, 1), cmd(4, 1)]);
      store.truncateFrom(3);
      store.append([cmd(3, 2)]);
      expect(indexes(reopen())).toEqual(["1@1", "2@1", "3@2"]);
    });

    it("a snapshot drops the entries it covers and keeps those after its own entry", () => {
      const { store, reopen } = kind.open();
      store.append([cmd(1, 1), cmd(2, 1), cmd(3, 2), cmd(4, 2), cmd(5, 2)]);
      store.saveSnapshot({ index: 3, term: 2, peers: ["a"], data: new Uint8Array([9]) });
      store.append([cmd(6, 3)]);
      const again = reopen();
      const loaded = again.load();
      expect(loaded.snapshot).toMatchObject({ index: 3, term: 2, peers: ["a"] });
      expect([...loaded.snapshot!.data]).toEqual([9]);
      expect(loaded.entries.map((e) => `${e.index}@${e.term}`)).toEqual(["4@2", "5@2", "6@3"]);
      expect(again.loadSnapshot()?.index).toBe(3);
    });

    it("a snapshot whose entry differs from the log's empties the log", () => {
      const { store, reopen } = kind.open();
      store.append([cmd(1, 1), cmd(2, 1), cmd(3, 1)]);
      store.saveSnapshot({ index: 2, term: 5, peers: ["a"], data: new Uint8Array() });
      expect(indexes(reopen())).toEqual([]);
    });

    it("a snapshot beyond the log empties it; appends continue after the snapshot", () => {
      const { store, reopen } = kind.open();
      store.append([cmd(1, 1)]);
      store.saveSnapshot({ index: 10, term: 3, peers: ["a"], data: new Uint8Array() });
      store.append([cmd(11, 3)]);
      expect(indexes(reopen())).toEqual(["11@3"]);
    });
  });
}

describe("raft file storage: crashes", () => {
  it("cuts a torn last record (a crash mid-append) and keeps every whole one", () => {
    const dir = tempDir();
    const store = new FileRaftStorage(dir);
    store.load();
    store.append([cmd(1, 1), cmd(2, 1), cmd(3, 1)]);
    store.close();
    const log = path.join(dir, "log");
    const size = statSync(log).size;
    truncateSync(log, size - 3);
    const warnings: string[] = [];
    const again = new FileRaftStorage(dir, { warn: (l) => warnings.push(l) });
    expect(again.load().entries.map((e) => e.index)).toEqual([1, 2]);
    expect(warnings.join()).toMatch(/torn/);
    // The cut is on disk, and appends continue where the whole records end.
    again.append([cmd(3, 2)]);
    again.close();
    expect(indexes(new FileRaftStorage(dir))).toEqual(["1@1", "2@1", "3@2"]);
  });

  it("cuts a record that fails its checksum and everything after it", () => {
    const dir = tempDir();
    const store = new FileRaftStorage(dir);
    store.load();
    store.append([cmd(1, 1), cmd(2, 1, "second"), cmd(3, 1)]);
    store.close();
    const log = path.join(dir, "log");
    const bytes = readFileSync(log);
    const at = bytes.indexOf(Buffer.from("second"));
    bytes[at] = bytes[at]! ^ 0xff;
    writeFileSync(log, bytes);
    expect(indexes(new FileRaftStorage(dir))).toEqual(["1@1"]);
  });

  it("garbage appended after the last record is cut", () => {
    const dir = tempDir();
    const store = new FileRaftStorage(dir);
    store.load();
    store.append([cmd(1, 1)]);
    store.close();
    appendFileSync(path.join(dir, "log"), Buffer.from([200, 0, 0, 0, 1, 2]));
    expect(indexes(new FileRaftStorage(dir))).toEqual(["1@1"]);
  });

  it("a crash after the snapshot is written but before the log is rewritten loses nothing", () => {
    const dir = tempDir();
    const store = new FileRaftStorage(dir);
    store.load();
    store.append([cmd(1, 1), cmd(2, 1), cmd(3, 1), cmd(4, 1)]);
    const logBefore = readFileSync(path.join(dir, "log"));
    store.saveSnapshot({ index: 2, term: 1, peers: ["a"], data: new Uint8Array() });
    store.close();
    writeFileSync(path.join(dir, "log"), logBefore); // as if the rewrite never happened
    const again = new FileRaftStorage(dir);
    expect(again.load().entries.map((e) => e.index)).toEqual([3, 4]);
    again.append([cmd(5, 1)]);
    again.close();
    expect(indexes(new FileRaftStorage(dir))).toEqual(["3@1", "4@1", "5@1"]);
  });

  it("a corrupt state file is an error, not a silent term 0", () => {
    const dir = tempDir();
    const store = new FileRaftStorage(dir);
    store.load();
    store.saveHardState({ term: 3, votedFor: "b" });
    store.close();
    const file = path.join(dir, "state");
    const bytes = readFileSync(file);
    bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 0xff;
    writeFileSync(file, bytes);
    expect(() => new FileRaftStorage(dir).load()).toThrow(/corrupt/);
  });
});
