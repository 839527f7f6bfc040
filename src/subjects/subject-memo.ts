import type { Sublist, SublistEntry, SublistResult } from "./sublist.ts";

/**
 * A one-entry memo of the last subject a peer published and what it matched. Publishers mostly
 * repeat their subject, so comparing the subject's bytes with the previous ones beats decoding
 * it and hashing it for the sublist's cache. Valid while the sublist's generation is unchanged.
 */
/** Subjects up to this long are memoized (longer ones are rare, and matched every time). */
const MEMO_BYTES = 64;
const NO_BYTES = Buffer.alloc(0);

export class SubjectMemo<S extends SublistEntry> {
  /** The subject of the last match, as text (decoded once per memo miss). */
  text = "";
  /** The last subject's bytes; allocated at the first memo (a connection that never publishes never needs it). */
  private bytes: Buffer = NO_BYTES;
  private length = -1;
  private generation = -1;
  private result: SublistResult<S> | null = null;

  // Hot path: a hit is a byte compare; a miss decodes the subject once.
  match(sublist: Sublist<S>, buf: Buffer, start: number, end: number): SublistResult<S> {
    const length = end - start;
    const last = this.bytes;
    if (length === this.length && this.generation === sublist.generation) {
      let same = true;
      for (let k = 0; k < length; k++) {
        if (buf[start + k] !== last[k]) {
          same = false;
          break;
        }
      }
      if (same) return this.result!;
    }
    const subject = buf.latin1Slice(start, end);
    this.text = subject;
    const result = sublist.match(subject);
    if (length <= MEMO_BYTES) {
      buf.copy(last.length !== 0 ? last : (this.bytes = Buffer.allocUnsafe(MEMO_BYTES)), 0, start, end);
      this.length = length;
      this.generation = sublist.generation;
      this.result = result;
    } else {
      this.length = -1; // too long to memo: rare, and correct either way
    }
    return result;
  }

  clear(): void {
    this.length = -1;
    this.result = null;
  }
}
