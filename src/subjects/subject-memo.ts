import type { Sublist, SublistEntry, SublistResult } from "./sublist.ts";

/**
 * A one-entry memo of the last subject a peer published and what it matched. Publishers mostly
 * repeat their subject, so comparing the subject's bytes with the previous ones beats decoding
 * it and hashing it for the sublist's cache. Valid while the sublist's generation is unchanged.
 */
export class SubjectMemo<S extends SublistEntry> {
  /** The subject of the last match, as text (decoded once per memo miss). */
  text = "";
  private bytes: Buffer = Buffer.allocUnsafe(64);
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
    if (length <= last.length) {
      buf.copy(last, 0, start, end);
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
