// Atomic batch publish (nats-server 2.12, `allow_atomic`): messages with `Nats-Batch-Id`, `Nats-Batch-Sequence`
// (1, 2, …) and, on the last, `Nats-Batch-Commit: 1` are stored all together or not at all.
//
// Until the commit a batch is staged here, in memory, per stream: nothing of it is in the store, so no
// consumer can see part of it, and a crash before the commit leaves none of it (the client got no commit
// PubAck and publishes it again). The commit runs every message's checks first and then appends the whole
// batch in one synchronous run, which the stream flushes together before any delivery; a kill -9 while that
// flush is on its way can leave only a batch without its commit message at the end of the store, which the
// stream removes when it starts (Stream.dropUncommittedBatch).
//
// nats-server's limits: by default at most 1000 messages a batch, 50 open batches a stream, 1000 in the server,
// and a batch that hears nothing for 10 s is abandoned (advisory `$JS.EVENT.ADVISORY.STREAM.BATCH_ABANDONED.<stream>`);
// `jetstream { limits { batch { max_msgs, max_inflight_per_stream, max_inflight_total, timeout } } }` changes them
// (nats-server 2.12's JetStreamLimits; 0 keeps the default).
import { apiError, type ApiErrorJson } from "./errors.ts";

/** The batch limits in force (jetstream { limits { batch {} } }). */
export interface BatchLimits {
  maxMsgs: number;
  maxInflightPerStream: number;
  maxInflightTotal: number;
  timeoutMs: number;
}

export const DEFAULT_BATCH_LIMITS: Readonly<BatchLimits> = { maxMsgs: 1000, maxInflightPerStream: 50, maxInflightTotal: 1000, timeoutMs: 10_000 };
/** The largest batch any configuration allows: how far back a restart looks for an uncommitted batch. */
export const MAX_BATCH_SIZE = DEFAULT_BATCH_LIMITS.maxMsgs;
export const MAX_BATCH_ID_LENGTH = 64;
/**
 * natter's own cap: nats-server stages open batches on disk, natter in memory, so the bytes held by open
 * batches in the process are bounded; past it a batch is abandoned ("large") with 10023 insufficient resources.
 */
export const MAX_STAGED_BYTES_TOTAL = 256 * 1024 * 1024;

/** Open batches in this process, over every stream and account (nats-server's global inflight count). */
let openTotal = 0;
/** Bytes staged by the open batches of this process. */
let stagedBytesTotal = 0;

export interface StagedMessage {
  readonly subject: string;
  readonly headers: Buffer | null;
  readonly data: Buffer;
}

/** Why a batch was given up (the advisory's `reason`). */
export type AbandonReason = "timeout" | "large" | "incomplete";

/** What became of one batch message: refused, staged (answered with an empty reply), or the commit. */
export type BatchStep =
  | { kind: "error"; error: ApiErrorJson }
  | { kind: "staged" }
  | { kind: "commit"; messages: StagedMessage[] };

interface OpenBatch {
  messages: StagedMessage[];
  /** Sequences seen (the commit's too, also an `eob` commit that is not stored). */
  seen: number;
  bytes: number;
  timer: ReturnType<typeof setTimeout> | null;
}

/** The open batches of one stream. */
export class AtomicBatches {
  private readonly open = new Map<string, OpenBatch>();

  constructor(
    private readonly abandoned: (id: string, reason: AbandonReason) => void,
    private readonly limits: Readonly<BatchLimits> = DEFAULT_BATCH_LIMITS,
  ) {}

  /**
   * One message of batch `id` (nats-server's checks in its order). `sequence` and `commit` are the header
   * values (undefined when absent). A commit hands back the whole batch; the caller checks and stores it.
   */
  add(id: string, sequence: string | undefined, commit: string | undefined, message: StagedMessage): BatchStep {
    const error = (name: Parameters<typeof apiError>[0], args: Record<string, string | number> = {}): BatchStep => ({ kind: "error", error: apiError(name, args).json });
    if (id.length > MAX_BATCH_ID_LENGTH) return error("AtomicPublishInvalidBatchID");
    if (sequence === undefined || sequence === "" || !/^\d+$/.test(sequence)) return error("AtomicPublishMissingSeq");
    const seq = Number(sequence);
    const isCommit = commit !== undefined;
    // `eob`: the commit message only ends the batch and is not stored itself (nor counted).
    const endOfBatch = commit === "eob";
    const size = endOfBatch ? seq - 1 : seq;
    const { maxMsgs, maxInflightPerStream, maxInflightTotal } = this.limits;
    let b = this.open.get(id);
    if (b === undefined) {
      if (seq !== 1) return size > maxMsgs ? error("AtomicPublishTooLargeBatch", { size: maxMsgs }) : error("AtomicPublishIncompleteBatch");
      if (this.open.size + 1 > maxInflightPerStream || openTotal + 1 > maxInflightTotal) return error("AtomicPublishTooManyInflight");
      b = { messages: [], seen: 0, bytes: 0, timer: null };
      this.open.set(id, b);
      openTotal++;
    }
    if (isCommit && commit !== "1" && !endOfBatch) {
      this.close(id);
      return error("AtomicPublishInvalidBatchCommit");
    }
    b.seen++;
    if (b.seen !== seq || (seq === 1 && endOfBatch)) {
      this.close(id);
      this.abandoned(id, "incomplete");
      return error("AtomicPublishIncompleteBatch");
    }
    if (size > maxMsgs) {
      this.close(id);
      this.abandoned(id, "large");
      return error("AtomicPublishTooLargeBatch", { size: maxMsgs });
    }
    const bytes = message.data.length + (message.headers?.length ?? 0);
    if (stagedBytesTotal + bytes > MAX_STAGED_BYTES_TOTAL) {
      this.close(id);
      this.abandoned(id, "large");
      return error("InsufficientResources");
    }
    if (!endOfBatch) {
      b.messages.push(message);
      b.bytes += bytes;
      stagedBytesTotal += bytes;
    }
    if (isCommit) {
      this.close(id);
      return { kind: "commit", messages: b.messages };
    }
    this.restartTimer(id, b);
    return { kind: "staged" };
  }

  /** Every open batch goes (the stream is deleted or stops allowing batches). */
  clear(): void {
    for (const id of [...this.open.keys()]) this.close(id);
  }

  private restartTimer(id: string, b: OpenBatch): void {
    if (b.timer !== null) clearTimeout(b.timer);
    b.timer = setTimeout(() => {
      if (this.open.get(id) !== b) return;
      this.close(id);
      this.abandoned(id, "timeout");
    }, this.limits.timeoutMs);
    b.timer.unref?.();
  }

  private close(id: string): void {
    const b = this.open.get(id);
    if (b === undefined) return;
    if (b.timer !== null) clearTimeout(b.timer);
    this.open.delete(id);
    openTotal--;
    stagedBytesTotal -= b.bytes;
  }
}
