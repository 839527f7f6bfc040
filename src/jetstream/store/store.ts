// The message store of one stream: one interface, two implementations (memory.ts, file.ts) that pass
// one conformance test (test/jetstream/store.test.ts). The shared index and the limits live in
// indexed.ts; an implementation only decides where message bodies live and how changes persist.

/** A stored message. `ts` is milliseconds since the epoch with a fraction (microsecond precision). */
export interface StoredMessage {
  readonly seq: number;
  readonly subject: string;
  /** The raw header block (`NATS/1.0\r\n…\r\n\r\n`), or null. */
  readonly headers: Buffer | null;
  readonly data: Buffer;
  readonly ts: number;
}

/** What STREAM.INFO reports as `state`, in our casing. */
export interface StoreState {
  messages: number;
  bytes: number;
  /** Sequence of the first message, or lastSeq + 1 when empty (0 when nothing was ever stored). */
  firstSeq: number;
  firstTs: number;
  lastSeq: number;
  lastTs: number;
  numSubjects: number;
  /** Sequences between first and last that are gone (interior deletes). */
  numDeleted: number;
  /** Messages found damaged when the store was loaded (nats-server's `lost`): never served, gone as deleted. */
  lost?: { msgs: number[]; bytes: number };
}

export type DiscardPolicy = "old" | "new";

/** Limits a store enforces on append; 0 or less means unlimited (nats-server writes -1). */
export interface StoreLimits {
  maxMsgs: number;
  maxBytes: number;
  /** Milliseconds; 0 = no age limit. */
  maxAgeMs: number;
  maxMsgsPerSubject: number;
  discard: DiscardPolicy;
  /** With discard new: refuse a message over max_msgs_per_subject instead of dropping the subject's oldest. */
  discardNewPerSubject: boolean;
}

export const NO_LIMITS: Readonly<StoreLimits> = {
  maxMsgs: -1, maxBytes: -1, maxAgeMs: 0, maxMsgsPerSubject: -1, discard: "old", discardNewPerSubject: false,
};

/** An append refused by a limit under discard new. */
export class StoreLimitError extends Error {
  constructor(readonly limit: "msgs" | "bytes" | "per_subject") {
    super(limit === "msgs" ? "maximum messages exceeded" : limit === "bytes" ? "maximum bytes exceeded" : "maximum messages per subject exceeded");
  }
}

/** Why a store cannot write (disk full, I/O error); it stays until a write succeeds again. */
export interface StoreWriteFailure {
  /** The system's error code (ENOSPC, EIO, …) or "EUNKNOWN". */
  readonly code: string;
  /** What failed, as logged: "write <file>: ENOSPC: no space left on device". */
  readonly message: string;
  /** When writes started failing (ms since the epoch). */
  readonly since: number;
}

/** A write the store could not make: the stream answers 10023 insufficient resources. */
export class StoreWriteError extends Error {
  constructor(readonly failure: StoreWriteFailure) {
    super(failure.message);
  }
}

/** Which messages a purge removes: all, those matching `filter`, keeping the newest `keep`, or below `seq`. */
export interface PurgeRequest {
  filter?: string;
  keep?: number;
  seq?: number;
}

/** Why a message left the store (consumers of interest/workqueue streams care; others ignore it). */
export type RemoveReason = "limit" | "age" | "delete" | "purge";

/**
 * The store of one stream. Sequences start at 1 and only grow; a removed sequence never comes back.
 * Filters are subscription subjects (wildcards allowed); `null` means every subject.
 *
 * Invariant: when `append` returns, the message is in the store's write path; it is on disk (for the
 * file store) after the next `flush()` that leaves `writeFailure` null, which the stream layer checks
 * before it sends the PubAck.
 */
export interface MessageStore {
  readonly kind: "memory" | "file";
  /**
   * Set while the store cannot write (the file store on a full disk): appends throw StoreWriteError,
   * flush() keeps what it could not write and retries it (at most every few hundred ms, and on a timer)
   * until it succeeds, which clears this. Never set for the memory store.
   */
  readonly writeFailure: StoreWriteFailure | null;
  state(): StoreState;
  setLimits(limits: StoreLimits): void;
  /** The stream's `compression`: the file store compresses what it writes from now on; the memory store keeps bodies as they are (as nats-server's). */
  setCompression(compress: boolean): void;
  /** Appends and applies the limits (dropping old messages, or throwing StoreLimitError under discard new). */
  append(subject: string, headers: Buffer | null, data: Buffer, ts?: number): StoredMessage;
  get(seq: number): StoredMessage | null;
  /** The first message with sequence ≥ seq matching one of the filters. */
  next(seq: number, filters: readonly string[] | null): StoredMessage | null;
  /** The last message on a subject (a filter with wildcards: the highest sequence among matching). */
  last(filter: string): StoredMessage | null;
  /** Messages with sequence ≥ seq matching the filters. */
  count(seq: number, filters: readonly string[] | null): number;
  /** For deliver last_per_subject: the sequences of each matching subject's last message, ascending. */
  lastPerSubject(filters: readonly string[] | null): number[];
  /** The sequences between first and last that are gone, ascending (STREAM.INFO's deleted_details). */
  deletedSeqs(): number[];
  /** Subject → message count, for subjects matching the filter. */
  subjects(filter: string | null): Map<string, number>;
  /** Removes one message; `reason` is what consumers hear ("delete" by default, "age" for a per-message TTL). */
  remove(seq: number, reason?: RemoveReason): boolean;
  purge(request: PurgeRequest): number;
  /** Removes messages older than max_age; returns when the next one will be due (ms epoch), or 0. */
  expire(now: number): number;
  /** Called with each message removed by limits, age, purge or delete. */
  onRemove: ((seq: number, subject: string, reason: RemoveReason) => void) | null;
  /** The subject of a stored message, from the index alone (no read), or null. */
  subjectOf(seq: number): string | null;
  /** Makes appended messages and removals durable per the sync policy (file store: writes them out). */
  flush(): void;
  close(): void;
  /** Closes and deletes everything stored. */
  destroy(): void;
}

/** Bytes a message counts for in `state.bytes` and max_bytes: nats-server's filestore formula. */
export function fileMsgSize(subject: string, headers: Buffer | null, data: Buffer): number {
  const hl = headers === null ? 0 : headers.length;
  return hl === 0 ? 22 + subject.length + data.length + 8 : 22 + subject.length + 4 + hl + data.length + 8;
}

/** nats-server's memstore formula. */
export function memoryMsgSize(subject: string, headers: Buffer | null, data: Buffer): number {
  return subject.length + (headers === null ? 0 : headers.length) + data.length + 16;
}
