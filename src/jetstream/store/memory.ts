// The memory store: the shared index with the bodies kept beside each entry. Nothing survives a restart.
import { IndexedStore, type IndexEntry } from "./indexed.ts";
import { memoryMsgSize, type StoreLimits, type StoredMessage } from "./store.ts";

interface MemoryEntry extends IndexEntry {
  readonly headers: Buffer | null;
  readonly data: Buffer;
}

export class MemoryStore extends IndexedStore<MemoryEntry> {
  readonly kind = "memory";

  constructor(limits?: StoreLimits) {
    super();
    if (limits) this.setLimits(limits);
  }

  protected msgSize(subject: string, headers: Buffer | null, data: Buffer): number {
    return memoryMsgSize(subject, headers, data);
  }

  protected store(seq: number, subject: string, headers: Buffer | null, data: Buffer, ts: number, size: number): MemoryEntry {
    return { seq, subject, headers, data, ts, size };
  }

  protected load(e: MemoryEntry): StoredMessage {
    return e;
  }

  /** Memory bodies are never compressed (nats-server's memory store ignores `compression` too). */
  setCompression(): void {}

  protected removed(): void {}
  protected cleared(): void {}
  flush(): void {}
  close(): void {}
  destroy(): void {
    this.purge({});
  }
}
