// The in-memory index both stores share: sequence → entry, subject → its sequences, state counters,
// and the limits (max_msgs, max_bytes, max_age, max_msgs_per_subject, discard old/new). Subclasses
// keep the bodies (memory) or their place on disk (file) and persist changes.
import { subjectIsLiteral, subjectMatches } from "../../subjects/subject.ts";
import {
  NO_LIMITS, StoreLimitError,
  type MessageStore, type PurgeRequest, type RemoveReason, type StoreLimits, type StoreState, type StoredMessage,
  type StoreWriteFailure,
} from "./store.ts";

export interface IndexEntry {
  readonly seq: number;
  readonly subject: string;
  readonly ts: number;
  readonly size: number;
}

/**
 * The sequences of one subject, ascending; [head, length) of `seqs` are live. Front removals just move head.
 * A store loaded from saved indexes hands over each segment's sequences of the subject as one view
 * (addSaved): they become part of `seqs` when it is first needed, so that a load makes no per-message
 * list; count, first and last are known without it.
 */
export class SubjectSeqs {
  private list: number[] = [];
  head = 0;
  /**
   * Saved sequences, ascending, all below those in `list` (null: none, or made part of it): views of
   * sequence − base, and each one's base.
   */
  private saved: Uint32Array[] | null = null;
  private savedBases: number[] = [];
  private savedCount = 0;

  /** The sequences (the saved ones made part of them first). */
  get seqs(): number[] {
    if (this.saved !== null) this.unpack();
    return this.list;
  }
  get count(): number {
    return this.savedCount + this.list.length - this.head;
  }
  first(): number {
    return this.saved !== null ? this.savedBases[0]! + this.saved[0]![0]! : this.list[this.head]!;
  }
  last(): number {
    if (this.list.length > this.head || this.saved === null) return this.list[this.list.length - 1]!;
    const k = this.saved.length - 1;
    const chunk = this.saved[k]!;
    return this.savedBases[k]! + chunk[chunk.length - 1]!;
  }
  /** A sequence above every one of the subject's. */
  add(seq: number): void {
    this.list.push(seq);
  }
  /** Sequences base + chunk[i] (ascending, above every one of the subject's) kept as the view they are until needed. */
  addSaved(chunk: Uint32Array, base: number): void {
    if (this.list.length > this.head) {
      for (let i = 0; i < chunk.length; i++) this.list.push(base + chunk[i]!);
      return;
    }
    if (this.head > 0) {
      this.list = [];
      this.head = 0;
    }
    (this.saved ??= []).push(chunk);
    this.savedBases.push(base);
    this.savedCount += chunk.length;
  }
  remove(seq: number): void {
    const s = this.seqs;
    if (s[this.head] === seq) {
      this.head++;
      if (this.head > 64 && this.head * 2 > s.length) {
        this.list = s.slice(this.head);
        this.head = 0;
      }
    } else if (s[s.length - 1] === seq) {
      s.pop();
    } else {
      const i = this.lowerBound(seq);
      if (s[i] === seq) s.splice(i, 1);
    }
  }
  /** Removes every sequence below `floor`: the saved ones by cutting their views (they stay unmade). */
  removeBelow(floor: number): void {
    const saved = this.saved;
    if (saved !== null) {
      while (saved.length > 0) {
        const chunk = saved[0]!;
        const below = floor - this.savedBases[0]!;
        let lo = 0;
        for (let hi = chunk.length; lo < hi; ) {
          const mid = (lo + hi) >>> 1;
          if (chunk[mid]! < below) lo = mid + 1;
          else hi = mid;
        }
        this.savedCount -= lo;
        if (lo < chunk.length) {
          saved[0] = chunk.subarray(lo);
          return; // the rest, and the list, are above
        }
        saved.shift();
        this.savedBases.shift();
      }
      this.saved = null;
      this.savedBases = [];
    }
    this.head = this.lowerBound(floor);
    if (this.head > 64 && this.head * 2 > this.list.length) {
      this.list = this.list.slice(this.head);
      this.head = 0;
    }
  }
  /** Index of the first sequence ≥ seq. */
  lowerBound(seq: number): number {
    const s = this.seqs;
    let lo = this.head;
    let hi = s.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (s[mid]! < seq) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
  private unpack(): void {
    const all: number[] = [];
    const saved = this.saved!;
    for (let k = 0; k < saved.length; k++) {
      const chunk = saved[k]!;
      const base = this.savedBases[k]!;
      for (let i = 0; i < chunk.length; i++) all.push(base + chunk[i]!);
    }
    for (let i = this.head; i < this.list.length; i++) all.push(this.list[i]!);
    this.list = all;
    this.head = 0;
    this.saved = null;
    this.savedBases = [];
    this.savedCount = 0;
  }
}

/**
 * Consecutive sequences a store loaded in one step (indexAddRun), below the slots: `present[i]` says
 * whether first + i is still there; its entry is made by materialize(slot, seq) each time it is used.
 */
interface SlotRun {
  readonly first: number;
  readonly slot: number;
  readonly present: Uint8Array;
  /** The first index still present. */
  head: number;
  live: number;
}

/** Linear scans beyond this many sequences switch to per-subject lookups when there are fewer subjects. */
const SUBJECT_SCAN_LIMIT = 256;

export abstract class IndexedStore<E extends IndexEntry> implements MessageStore {
  abstract readonly kind: "memory" | "file";
  onRemove: ((seq: number, subject: string, reason: RemoveReason) => void) | null = null;
  writeFailure: StoreWriteFailure | null = null;
  protected limits: StoreLimits = { ...NO_LIMITS };

  // slots[i] is the entry of sequence base + i, or undefined once removed. A number stands for an entry
  // not made yet (where the file store's saved segment index has its row, see FileStore): loading a store
  // makes no object per message, the entry is made from its row when it is first used.
  private slots: (E | number | undefined)[] = [];
  private head = 0;
  private base = 1;
  // Below base: the runs a loader added in one step each (indexAddRun), ascending. While there are any,
  // the store's first sequence is the first run's.
  private runs: SlotRun[] = [];
  private readonly bySubject = new Map<string, SubjectSeqs>();
  protected msgs = 0;
  protected bytes = 0;
  protected lastSeq = 0;
  protected lastTs = 0;
  /** Sequences found damaged when the store was loaded (never served), and their bytes. */
  protected lostSeqs: number[] = [];
  protected lostBytes = 0;

  // ---- what a subclass provides ------------------------------------------------------------

  protected abstract msgSize(subject: string, headers: Buffer | null, data: Buffer): number;
  /** Persists a new message and returns its index entry. */
  protected abstract store(seq: number, subject: string, headers: Buffer | null, data: Buffer, ts: number, size: number): E;
  /** The message of an entry, or null when it cannot be read back intact (it is then dropped as deleted). */
  protected abstract load(entry: E): StoredMessage | null;
  /** A message left the index (persist the removal). */
  protected abstract removed(entry: E, reason: RemoveReason): void;
  /** Everything up to lastSeq is gone (a purge of all): a subclass may drop its files at once. */
  protected abstract cleared(): void;
  abstract setCompression(compress: boolean): void;
  abstract flush(): void;
  abstract close(): void;
  abstract destroy(): void;

  // ---- index maintenance (also used by a subclass while it loads) ----------------------------

  /** Adds an entry loaded or stored; sequences must ascend. */
  protected indexAdd(entry: E): void {
    this.indexAddRow(entry.seq, this.subjectSeqs(entry.subject), entry.ts, entry.size, entry);
  }

  /** The sequences of `subject`, made (and kept) if it has none. */
  protected subjectSeqs(subject: string): SubjectSeqs {
    let ss = this.bySubject.get(subject);
    if (ss === undefined) {
      ss = new SubjectSeqs();
      this.bySubject.set(subject, ss);
    }
    return ss;
  }

  /**
   * Adds sequence `seq` as `slot`: its entry, or a number (a row) whose entry `materialize(row, seq)` makes
   * when it is first needed; sequences must ascend. `ss` is what subjectSeqs(its subject) returned (a
   * loader looks each subject up once, not once a message) and must not have been emptied since
   * (indexRemove drops an emptied one from the index).
   */
  protected indexAddRow(seq: number, ss: SubjectSeqs, ts: number, size: number, slot: E | number): void {
    let slots = this.slots;
    if (this.msgs === 0 && slots.length - this.head === 0) {
      slots = this.slots = [];
      this.head = 0;
      this.base = seq;
    }
    const at = seq - this.base;
    while (slots.length < at) slots.push(undefined); // a gap (sequences lost with a cut tail)
    slots.push(slot);
    this.msgs++;
    this.bytes += size;
    if (seq > this.lastSeq) {
      this.lastSeq = seq;
      this.lastTs = ts;
    }
    ss.add(seq);
  }

  /** Whether indexAddRun may be used now: nothing has been added with indexAddRow (or all of it is gone). */
  protected canAddRun(): boolean {
    return this.slots.length === this.head;
  }

  /**
   * Adds sequences first … first + count − 1 in one step (a loader's: no work per message), each to be
   * made by `materialize(slot, seq)` when used; `bytes` is their sizes' sum, `lastTs` the last one's
   * time. Their subjects' sequences are the loader's to add (SubjectSeqs.addSaved). Only when
   * canAddRun() and first is above lastSeq.
   */
  protected indexAddRun(first: number, count: number, slot: number, bytes: number, lastTs: number): void {
    if (count === 0) return;
    this.runs.push({ first, slot, present: new Uint8Array(count).fill(1), head: 0, live: count });
    this.slots = [];
    this.head = 0;
    this.base = first + count;
    this.msgs += count;
    this.bytes += bytes;
    this.lastSeq = first + count - 1;
    this.lastTs = lastTs;
  }

  /** The index in `runs` of the run holding `seq`, or -1. */
  private runOf(seq: number): number {
    const runs = this.runs;
    let lo = 0;
    let hi = runs.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (runs[mid]!.first <= seq) lo = mid;
      else hi = mid - 1;
    }
    const r = runs[lo];
    return r !== undefined && seq >= r.first && seq - r.first < r.present.length && r.present[seq - r.first] === 1 ? lo : -1;
  }

  /**
   * Removes every sequence below `floor` that is in a run (what indexRemove of each would do, at a
   * loader's moved front: no work per message beyond summing the sizes of those still there).
   * `sizes(slot)` is the size of each message of the run added as `slot`, by its place in the run.
   * Sequences below floor after the runs (added with indexAddRow) are the caller's to remove.
   */
  protected indexRemoveRunsBelow(floor: number, sizes: (slot: number) => ArrayLike<number>): void {
    if (this.runs.length === 0) return;
    let emptied = 0;
    for (const r of this.runs) {
      if (r.first >= floor) break;
      const end = Math.min(floor - r.first, r.present.length);
      const size = sizes(r.slot);
      let gone = 0;
      let bytes = 0;
      for (let i = r.head; i < end; i++) {
        if (r.present[i] === 1) {
          gone++;
          bytes += size[i]!;
        }
      }
      this.msgs -= gone;
      this.bytes -= bytes;
      r.live -= gone;
      if (r.live === 0) {
        emptied++;
        continue;
      }
      r.present.fill(0, 0, end);
      r.head = r.present.indexOf(1, r.head);
      break;
    }
    // Each subject's sequences below floor, up to the slots (the caller removes those one by one).
    const cut = Math.min(floor, this.base);
    for (const [subject, ss] of this.bySubject) {
      ss.removeBelow(cut);
      if (ss.count === 0) this.bySubject.delete(subject);
    }
    if (emptied > 0) {
      this.runs.splice(0, emptied);
      if (this.runs.length === 0) this.advanceHead();
    }
  }

  /** Removes `seq` (present) from its run; a run left empty goes. */
  private runRemove(seq: number): void {
    const k = this.runOf(seq);
    const r = this.runs[k]!;
    const i = seq - r.first;
    r.present[i] = 0;
    if (--r.live === 0) {
      this.runs.splice(k, 1);
      // With no run left the slots' head is the store's first sequence: past any gap.
      if (this.runs.length === 0) this.advanceHead();
    } else if (i === r.head) r.head = r.present.indexOf(1, i);
  }

  /** The entry of sequence `seq` added with indexAddRow as `row` (only a store that adds rows makes them). */
  protected materialize(row: number, seq: number): E {
    throw new Error(`no entry for row ${row} (sequence ${seq})`);
  }

  protected entry(seq: number): E | undefined {
    const i = seq - this.base;
    if (i >= this.head && i < this.slots.length) {
      const e = this.slots[i];
      return typeof e === "number" ? (this.slots[i] = this.materialize(e, seq)) : e;
    }
    if (i >= 0 || this.runs.length === 0) return undefined;
    const k = this.runOf(seq);
    return k < 0 ? undefined : this.materialize(this.runs[k]!.slot, seq);
  }

  /** Whether sequence `seq` is in the store (without making its entry). */
  private present(seq: number): boolean {
    const i = seq - this.base;
    if (i >= 0) return i >= this.head && i < this.slots.length && this.slots[i] !== undefined;
    return this.runs.length > 0 && this.runOf(seq) >= 0;
  }

  /** Removes from the index only; returns the entry. */
  protected indexRemove(seq: number): E | undefined {
    const i = seq - this.base;
    const e = this.entry(seq);
    if (e === undefined) return undefined;
    if (i < 0) this.runRemove(seq);
    else this.slots[i] = undefined;
    this.msgs--;
    this.bytes -= e.size;
    const ss = this.bySubject.get(e.subject)!;
    ss.remove(seq);
    if (ss.count === 0) this.bySubject.delete(e.subject);
    if (i === this.head && this.runs.length === 0) this.advanceHead();
    return e;
  }

  private advanceHead(): void {
    const s = this.slots;
    while (this.head < s.length && s[this.head] === undefined) this.head++;
    if (this.head === s.length) {
      this.slots = [];
      this.head = 0;
      this.base = this.lastSeq + 1;
    } else if (this.head > 1024 && this.head * 2 > s.length) {
      this.base += this.head;
      this.slots = s.slice(this.head);
      this.head = 0;
    }
  }

  /** Sets lastSeq (a store that was emptied remembers where it was). */
  protected setLast(seq: number, ts: number): void {
    if (seq > this.lastSeq) {
      this.lastSeq = seq;
      this.lastTs = ts;
      if (this.msgs === 0) {
        this.slots = [];
        this.head = 0;
        this.base = seq + 1;
      }
    }
  }

  protected firstSeq(): number {
    if (this.msgs === 0) return this.lastSeq + 1;
    const run = this.runs[0];
    return run === undefined ? this.base + this.head : run.first + run.head;
  }

  // ---- MessageStore ------------------------------------------------------------------------

  state(): StoreState {
    const first = this.msgs === 0 ? undefined : this.entry(this.firstSeq());
    const firstSeq = this.firstSeq();
    return {
      messages: this.msgs,
      bytes: this.bytes,
      firstSeq,
      firstTs: first?.ts ?? 0,
      lastSeq: this.lastSeq,
      lastTs: this.lastTs,
      numSubjects: this.bySubject.size,
      numDeleted: this.msgs === 0 ? 0 : this.lastSeq - firstSeq + 1 - this.msgs,
      ...(this.lostSeqs.length > 0 ? { lost: { msgs: this.lostSeqs, bytes: this.lostBytes } } : {}),
    };
  }

  deletedSeqs(): number[] {
    const out: number[] = [];
    if (this.msgs === 0) return out;
    // (Sequences past the slots were lost at the end.)
    for (let seq = this.firstSeq(); seq <= this.lastSeq; seq++) if (!this.present(seq)) out.push(seq);
    return out;
  }

  setLimits(limits: StoreLimits): void {
    this.limits = { ...limits };
    this.enforce();
  }

  append(subject: string, headers: Buffer | null, data: Buffer, ts = nowMs()): StoredMessage {
    const l = this.limits;
    const size = this.msgSize(subject, headers, data);
    if (l.discard === "new") {
      if (l.maxMsgs > 0 && this.msgs >= l.maxMsgs) throw new StoreLimitError("msgs");
      if (l.maxBytes > 0 && this.bytes + size > l.maxBytes) throw new StoreLimitError("bytes");
      if (l.discardNewPerSubject && l.maxMsgsPerSubject > 0 && (this.bySubject.get(subject)?.count ?? 0) >= l.maxMsgsPerSubject) {
        throw new StoreLimitError("per_subject");
      }
    }
    if (ts <= this.lastTs) ts = this.lastTs + 0.001; // timestamps ascend with sequences
    const seq = this.lastSeq + 1;
    const entry = this.store(seq, subject, headers, data, ts, size);
    this.indexAdd(entry);
    if (l.maxMsgsPerSubject > 0) {
      const ss = this.bySubject.get(subject)!;
      while (ss.count > l.maxMsgsPerSubject) this.removeEntry(ss.first(), "limit");
    }
    this.enforceTotals(); // only the appended subject can be past max_msgs_per_subject: done above
    return { seq, subject, headers, data, ts };
  }

  /** max_msgs and max_bytes under discard old: drop from the front. */
  private enforceTotals(): void {
    const l = this.limits;
    if (l.maxMsgs > 0) while (this.msgs > l.maxMsgs) this.removeEntry(this.firstSeq(), "limit");
    if (l.maxBytes > 0) while (this.bytes > l.maxBytes && this.msgs > 0) this.removeEntry(this.firstSeq(), "limit");
  }

  /** Every limit, each subject's too (new limits): a walk over all subjects, so not per append. */
  private enforce(): void {
    const l = this.limits;
    this.enforceTotals();
    if (l.maxMsgsPerSubject > 0) {
      for (const ss of this.bySubject.values()) while (ss.count > l.maxMsgsPerSubject) this.removeEntry(ss.first(), "limit");
    }
  }

  private removeEntry(seq: number, reason: RemoveReason): boolean {
    const e = this.indexRemove(seq);
    if (e === undefined) return false;
    this.removed(e, reason);
    this.onRemove?.(seq, e.subject, reason);
    return true;
  }

  subjectOf(seq: number): string | null {
    return this.entry(seq)?.subject ?? null;
  }

  get(seq: number): StoredMessage | null {
    const e = this.entry(seq);
    return e === undefined ? null : this.loadOrDrop(e);
  }

  next(seq: number, filters: readonly string[] | null): StoredMessage | null {
    for (let from = seq; ; ) {
      const s = this.nextSeq(from, filters);
      if (s === 0) return null;
      const m = this.loadOrDrop(this.entry(s)!);
      if (m !== null) return m;
      from = s + 1;
    }
  }

  /** Loads an entry; one that cannot be read back intact leaves the store as deleted (consumers hear of it). */
  private loadOrDrop(e: E): StoredMessage | null {
    const m = this.load(e);
    if (m === null) this.removeEntry(e.seq, "delete");
    return m;
  }

  /** The sequence of the first match ≥ seq, or 0. */
  nextSeq(seq: number, filters: readonly string[] | null): number {
    if (this.msgs === 0) return 0;
    let from = Math.max(seq, this.firstSeq());
    if (from > this.lastSeq) return 0;
    if (filters === null || filters.some((f) => f === ">")) {
      for (; from <= this.lastSeq; from++) if (this.present(from)) return from;
      return 0;
    }
    // Literal filters, or few subjects against a long range: per-subject lookups.
    const literal = filters.every(subjectIsLiteral);
    if (literal || (this.lastSeq - from > SUBJECT_SCAN_LIMIT && this.bySubject.size < (this.lastSeq - from) / 4)) {
      let best = 0;
      for (const ss of this.matchingSubjects(filters, literal)) {
        const i = ss.lowerBound(from);
        if (i < ss.seqs.length && (best === 0 || ss.seqs[i]! < best)) best = ss.seqs[i]!;
      }
      return best;
    }
    for (; from <= this.lastSeq; from++) {
      const e = this.entry(from);
      if (e !== undefined && matchesAny(filters, e.subject)) return from;
    }
    return 0;
  }

  private *matchingSubjects(filters: readonly string[], literal = filters.every(subjectIsLiteral)): Iterable<SubjectSeqs> {
    if (literal) {
      for (const f of filters) {
        const ss = this.bySubject.get(f);
        if (ss !== undefined) yield ss;
      }
      return;
    }
    for (const [subject, ss] of this.bySubject) if (matchesAny(filters, subject)) yield ss;
  }

  last(filter: string): StoredMessage | null {
    for (;;) {
      let best = 0;
      for (const ss of this.matchingSubjects([filter])) if (ss.last() > best) best = ss.last();
      if (best === 0) return null;
      const m = this.loadOrDrop(this.entry(best)!);
      if (m !== null) return m;
    }
  }

  count(seq: number, filters: readonly string[] | null): number {
    if (this.msgs === 0) return 0;
    const from = Math.max(seq, this.firstSeq());
    if (from > this.lastSeq) return 0;
    if (filters === null || filters.some((f) => f === ">")) {
      if (from === this.firstSeq()) return this.msgs;
      // Fewer to count after `from` than before it: count forwards; else subtract those before.
      if (this.lastSeq - from < from - this.firstSeq()) {
        let n = 0;
        for (let s = from; s <= this.lastSeq; s++) if (this.present(s)) n++;
        return n;
      }
      let before = 0;
      for (let s = this.firstSeq(); s < from; s++) if (this.present(s)) before++;
      return this.msgs - before;
    }
    const literal = filters.every(subjectIsLiteral);
    if (literal || this.bySubject.size < this.lastSeq - from + 1) {
      let n = 0;
      for (const ss of this.matchingSubjects(filters, literal)) n += ss.seqs.length - ss.lowerBound(from);
      return n;
    }
    let n = 0;
    for (let s = from; s <= this.lastSeq; s++) {
      const e = this.entry(s);
      if (e !== undefined && matchesAny(filters, e.subject)) n++;
    }
    return n;
  }

  lastPerSubject(filters: readonly string[] | null): number[] {
    const out: number[] = [];
    if (filters === null) for (const ss of this.bySubject.values()) out.push(ss.last());
    else for (const ss of this.matchingSubjects(filters)) out.push(ss.last());
    return out.sort((a, b) => a - b);
  }

  subjects(filter: string | null): Map<string, number> {
    const out = new Map<string, number>();
    for (const [subject, ss] of this.bySubject) {
      if (filter === null || subjectMatches(filter, subject)) out.set(subject, ss.count);
    }
    return out;
  }

  remove(seq: number, reason: RemoveReason = "delete"): boolean {
    return this.removeEntry(seq, reason);
  }

  purge(request: PurgeRequest): number {
    const { filter, keep, seq } = request;
    // Past 2^53 − 1, seq + 1 === seq: the loops below would never end (the API refuses such requests).
    if (seq !== undefined && !Number.isSafeInteger(seq)) throw new RangeError(`purge up to sequence ${seq}: not an exact integer`);
    const before = this.msgs;
    const all = filter === undefined || filter === "" || filter === ">";
    // Up to a sequence past the end: everything goes and the next message gets that sequence (nats-server's
    // Compact in both stores; a stream's first_seq is this on an empty store).
    const pastEnd = all && seq !== undefined && seq > this.lastSeq + 1;
    if (all && (keep === undefined || keep === 0) && (seq === undefined || seq === 0 || pastEnd)) {
      // Everything: drop the index and let the subclass drop its files at once.
      const gone: E[] = [];
      if (this.onRemove) for (let s = this.firstSeq(); s <= this.lastSeq; s++) if (this.present(s)) gone.push(this.entry(s)!);
      this.runs = [];
      this.slots = [];
      this.head = 0;
      if (pastEnd) this.lastSeq = seq - 1;
      this.base = this.lastSeq + 1;
      this.msgs = 0;
      this.bytes = 0;
      this.bySubject.clear();
      this.cleared();
      if (this.onRemove) for (const e of gone) this.onRemove(e.seq, e.subject, "purge");
      return before;
    }
    if (all) {
      if (seq !== undefined && seq > 0) {
        // Up to (not including) seq.
        while (this.msgs > 0 && this.firstSeq() < seq) this.removeEntry(this.firstSeq(), "purge");
      } else if (keep !== undefined && keep > 0) {
        while (this.msgs > keep) this.removeEntry(this.firstSeq(), "purge");
      }
      return before - this.msgs;
    }
    // By subject filter: per subject, everything (or all but the newest `keep`, or below `seq`).
    const victims: number[] = [];
    for (const ss of this.matchingSubjects([filter!])) {
      const live = ss.seqs.slice(ss.head);
      if (seq !== undefined && seq > 0) victims.push(...live.filter((s) => s < seq));
      else if (keep !== undefined && keep > 0) victims.push(...live.slice(0, Math.max(0, live.length - keep)));
      else victims.push(...live);
    }
    victims.sort((a, b) => a - b);
    for (const s of victims) this.removeEntry(s, "purge");
    return before - this.msgs;
  }

  expire(now: number): number {
    const maxAge = this.limits.maxAgeMs;
    if (maxAge <= 0) return 0;
    const cutoff = now - maxAge;
    while (this.msgs > 0) {
      const first = this.entry(this.firstSeq())!;
      if (first.ts > cutoff) return first.ts + maxAge;
      this.removeEntry(first.seq, "age");
    }
    return 0;
  }
}

export function matchesAny(filters: readonly string[], subject: string): boolean {
  for (const f of filters) if (f === subject || subjectMatches(f, subject)) return true;
  return false;
}

/** Wall-clock milliseconds with microseconds (Date.now() alone has milliseconds only). */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}
