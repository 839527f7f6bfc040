/** An outbound buffer starts this small (most connections are quiet) and doubles as needed. */
const INITIAL_SIZE = 4096;
const EMPTY = Buffer.allocUnsafe(0);
/**
 * A buffer this big that was outgrown is returned to the system at once (a full garbage collection, a few
 * ms), not whenever the collector gets to it: only a client with a backlog of this size gets here (at most
 * a few times, the buffer doubles), and its old buffers would otherwise add up to as much as the new one.
 */
const GC_AFTER_OUTGROWING = 16 * 1024 * 1024;

/**
 * Spare INITIAL_SIZE buffers, shared by every OutboundBuffer (issue 20: memory per idle connection). A
 * connection whose queue drains completely from a buffer of that size gives it back here and takes one
 * again with its next frame: an idle connection (most are, after their INFO and PONG) holds no buffer,
 * and a busy one swaps one per flush instead of allocating one. Bigger buffers stay with their connection
 * (see `trim`). A spare is never referenced by anyone else: its owner set `buf` to EMPTY when giving it
 * back, and every transport copies or writes what it is given before returning.
 */
const spares: Buffer[] = [];
/** At most this many spares are kept (256 KiB); more, after a burst to many connections, are garbage. */
const MAX_SPARES = 64;

function takeSpare(): Buffer {
  return spares.pop() ?? Buffer.allocUnsafe(INITIAL_SIZE);
}

function giveBack(buf: Buffer): void {
  if (buf.length === INITIAL_SIZE && spares.length < MAX_SPARES) spares.push(buf);
}

/**
 * The bytes queued for one peer (a client, a route, a leaf connection): one growable buffer,
 * written once per tick. Queued bytes are `buf[head, end)`; a short write advances `head`, and
 * space is compacted or grown only when a frame does not fit. Bytes leave in the order queued.
 *
 * Hot path: `reserve` is the only call per frame; read `buf` after it (it may replace it).
 *
 * Size: a busy connection keeps the buffer it grew to across drains (dropping it on every drain made a
 * fast subscriber regrow it from 4 KiB, megabytes of garbage per drain); `trim`, called by the owner's
 * periodic sweep, shrinks it back to what the last interval needed, and gives an idle connection's away.
 * A buffer of the initial size goes back to the shared spares at every complete drain (see `spares`).
 */
export class OutboundBuffer {
  buf: Buffer = EMPTY;
  head = 0;
  end = 0;
  /**
   * The most it may hold (a client's max_pending). The buffer never grows past it: a frame that would
   * take it further drops what is queued and sets `overLimit` (the owner then closes the connection as a
   * slow consumer, as nats-server does without queueing the frame). Doubling stops at the limit too, so
   * one slow client costs at most about the limit, not twice it plus the buffer it outgrew.
   */
  limit = Infinity;
  overLimit = false;
  /** The most bytes queued at one flush since the last `trim` (what the connection needed lately). */
  private peak = 0;

  get pending(): number {
    return this.end - this.head;
  }

  /** Makes room for `length` more bytes at the end and returns where they go in `buf`. */
  reserve(length: number): number {
    let end = this.end;
    if (end + length > this.buf.length) {
      const pending = end - this.head;
      const needed = pending + length;
      if (needed > this.limit) {
        // Past the limit: the connection is cut, so its backlog is not copied into a bigger buffer.
        this.overLimit = true;
        this.head = 0;
        this.end = length;
        if (length > this.buf.length) this.buf = Buffer.allocUnsafe(length);
        return 0;
      }
      if (this.head > 0 && needed <= this.buf.length) {
        this.buf.copy(this.buf, 0, this.head, end); // compact in place
      } else {
        const size = Math.max(needed, Math.min(this.buf.length * 2, this.limit), INITIAL_SIZE);
        const grown = size === INITIAL_SIZE ? takeSpare() : Buffer.allocUnsafe(size);
        if (pending > 0) this.buf.copy(grown, 0, this.head, end);
        const outgrown = this.buf.length;
        giveBack(this.buf);
        this.buf = grown;
        if (outgrown >= GC_AFTER_OUTGROWING) Bun.gc(true);
      }
      this.head = 0;
      end = pending;
    }
    this.end = end + length;
    return end;
  }

  append(bytes: Buffer): void {
    const at = this.reserve(bytes.length); // may replace buf: reserve before reading it
    bytes.copy(this.buf, at);
  }

  /** `count` bytes from `head` were written. Returns true when nothing is left queued. */
  consumed(count: number): boolean {
    const pending = this.end - this.head;
    if (pending > this.peak) this.peak = pending;
    if (count >= pending) {
      this.head = 0;
      this.end = 0;
      if (this.buf.length === INITIAL_SIZE) {
        giveBack(this.buf);
        this.buf = EMPTY;
      }
      return true;
    }
    if (count > 0) this.head += count;
    return false;
  }

  /**
   * The sweep's size check: a buffer with nothing queued shrinks to twice what the busiest flush since the
   * last check needed (from INITIAL_SIZE up; nothing at all when nothing was written: an idle connection
   * holds no buffer). A buffer with bytes queued keeps its size (its peer is busy or slow).
   */
  trim(): void {
    const peak = this.peak;
    this.peak = 0;
    if (this.end !== this.head) return;
    if (peak === 0) {
      giveBack(this.buf);
      this.buf = EMPTY;
      this.head = 0;
      this.end = 0;
      return;
    }
    let size = INITIAL_SIZE;
    while (size < peak * 2) size *= 2;
    if (size < this.buf.length) {
      this.buf = size === INITIAL_SIZE ? takeSpare() : Buffer.allocUnsafe(size);
      this.head = 0;
      this.end = 0;
    }
  }

  /** Drops everything queued and the memory (the peer is gone). */
  release(): void {
    giveBack(this.buf);
    this.buf = EMPTY;
    this.head = 0;
    this.end = 0;
  }
}
