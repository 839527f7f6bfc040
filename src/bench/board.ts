// Counters shared by the main thread and the Workers (a SharedArrayBuffer of float64): a stop flag, what
// each publisher (requester) has done and what each subscriber has received. Each slot has one writer;
// readers only need a recent value (progress bar, flow control), so plain loads and stores suffice.

export class Board {
  readonly cells: Float64Array;
  /** Bumped after subscribers read: publishers in Workers held back wait on it (Atomics.waitAsync). */
  private readonly signal: Int32Array;

  constructor(
    readonly pubs: number,
    readonly subs: number,
    readonly shared: SharedArrayBuffer = new SharedArrayBuffer(8 * (2 + pubs + subs)),
  ) {
    this.cells = new Float64Array(shared, 8, 1 + pubs + subs);
    this.signal = new Int32Array(shared, 0, 1);
  }

  /** Subscribers moved on: wake publishers waiting in other threads. */
  notify(): void {
    Atomics.add(this.signal, 0, 1);
    Atomics.notify(this.signal, 0);
  }

  /** Resolves at the next notify() (or after `ms`), from any thread. */
  async waitForNotify(ms: number): Promise<void> {
    const seen = Atomics.load(this.signal, 0);
    const r = Atomics.waitAsync(this.signal, 0, seen, ms);
    if (r.async) await r.value;
  }

  get stopped(): boolean {
    return this.cells[0] !== 0;
  }

  stop(): void {
    this.cells[0] = 1;
  }

  setPublished(pub: number, value: number): void {
    this.cells[1 + pub] = value;
  }

  setReceived(sub: number, value: number): void {
    this.cells[1 + this.pubs + sub] = value;
  }

  published(): number {
    let sum = 0;
    for (let i = 1; i <= this.pubs; i++) sum += this.cells[i]!;
    return sum;
  }

  received(): number {
    let sum = 0;
    for (let i = 1 + this.pubs; i < this.cells.length; i++) sum += this.cells[i]!;
    return sum;
  }

  /**
   * How many messages the publishers are ahead of the subscribers: of the slowest subscriber, or of the
   * queue group as a whole (each message goes to one member).
   */
  lag(queue: boolean): number {
    if (this.subs === 0) return 0;
    const published = this.published();
    if (queue) return published - this.received();
    let slowest = Infinity;
    for (let i = 1 + this.pubs; i < this.cells.length; i++) slowest = Math.min(slowest, this.cells[i]!);
    return published - slowest;
  }
}

/**
 * Flow control: how many messages publishers may run ahead of the subscribers of the same process, for a
 * window of `windowBytes` (--window) and frames of `frameBytes`; 0 = no limit. Without it a publisher, which
 * costs less per message than a subscriber, fills the server's buffer for the subscriber until the server
 * cuts it as a slow consumer, and delivery latency measures that queue. On this 2-core machine a 256 KiB
 * window cost no throughput against natter and kept p50 latency under a millisecond (8 MiB: ~25 ms).
 */
export function maxLag(windowBytes: number, frameBytes: number): number {
  if (windowBytes <= 0) return Infinity;
  return Math.max(16, Math.floor(windowBytes / Math.max(frameBytes, 1)));
}
