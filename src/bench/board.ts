// Counters shared by the main thread and the Workers (a SharedArrayBuffer of float64): a stop flag, what
// each publisher (requester) has done and what each subscriber has received. Each slot has one writer;
// readers only need a recent value (progress bar, flow control), so plain loads and stores suffice.

export class Board {
  readonly cells: Float64Array;

  constructor(
    readonly pubs: number,
    readonly subs: number,
    readonly shared: SharedArrayBuffer = new SharedArrayBuffer(8 * (1 + pubs + subs)),
  ) {
    this.cells = new Float64Array(shared);
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
 * How far publishers may run ahead of the subscribers of the same process: a few MiB of frames. Without it a
 * publisher, which costs less per message than a subscriber, fills the server's buffer for the subscriber
 * until the server cuts it as a slow consumer. It never binds when the subscribers keep up.
 */
export function maxLag(frameBytes: number): number {
  return Math.max(64, Math.floor((8 * 1024 * 1024) / Math.max(frameBytes, 1)));
}
