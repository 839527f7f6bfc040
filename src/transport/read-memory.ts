// The memory of socket reads.
//
// Bun hands every read to the data callback as a Buffer of its own (a copy of its receive buffer: up to
// 512 KiB, about 300 KiB each under a fast publisher), and nothing of it is used after the callback: the
// parser carries over only the bytes of an unfinished op, deliveries copy into outbound buffers, and
// whatever keeps input for later (the auth gate, the rate limiter) copies it (Parser.feed's contract).
// Left to the garbage collector, large reads pile up until the next collection (20 MiB of RSS under a
// fast publisher), and every read lands in memory that is no longer in the cache. So, for large reads:
//
// - releaseRead detaches the read's ArrayBuffer once the callback is done, which frees its memory at
//   once: the next read reuses it while it is still cached. The transports (tcp.ts, websocket.ts) call it
//   only when Connection.onRead said nothing of the read was kept (not for reads the auth gate or the
//   rate limiter took, though both copy what they hold): anything that keeps a read must say so there.
// - JavaScriptCore paces its collections by the bytes allocated since the last one, and reads count
//   though they are already freed: a publisher at 4 GB/s set off 300–500 young collections a second.
//   While large reads keep coming, a reserve allocated once and never written (so never resident)
//   makes the heap look 16 MiB larger to that pacing, and collections come 3–5× less often. It is let
//   go after a second without a large read: held always, it would also let other garbage (request-reply's
//   strings) wait longer and grow RSS by 10–25 MiB.
// Figures: README, Benchmarks ("Reads").

/** Smaller reads are left to the collector: little memory, and a detach costs an object of its own. */
const LARGE_READ_BYTES = 32 * 1024;
/** Enough to space collections out under a fast reader; costs address space, not RSS. */
const HEADROOM_BYTES = 16 * 1024 * 1024;
const IDLE_CHECK_MS = 1000;

let headroom: Buffer | null = null;
let idleCheck: ReturnType<typeof setInterval> | null = null;
let largeReads = 0;

/** After a read's callback: frees a large read's memory now (when the Buffer owns all of it, as Bun's do). */
export function releaseRead(data: Buffer): void {
  if (data.byteLength < LARGE_READ_BYTES) return;
  const memory = data.buffer;
  if (data.byteOffset !== 0 || data.byteLength !== memory.byteLength || !(memory instanceof ArrayBuffer)) return;
  memory.transfer(0);
  largeReads++;
  if (headroom === null) holdHeadroom();
}

function holdHeadroom(): void {
  headroom = Buffer.allocUnsafeSlow(HEADROOM_BYTES);
  idleCheck = setInterval(() => {
    if (largeReads === 0) letGoOfHeadroom();
    largeReads = 0;
  }, IDLE_CHECK_MS);
  idleCheck.unref();
}

function letGoOfHeadroom(): void {
  headroom = null;
  if (idleCheck !== null) clearInterval(idleCheck);
  idleCheck = null;
}

/** Whether the reserve is held now (tests). */
export function holdsCollectorHeadroom(): boolean {
  return headroom !== null;
}
