// A one-line progress bar on stderr, redrawn a few times a second; only when stderr is a terminal, and only
// once a run has lasted a second (short runs stay quiet).

export interface ProgressSource {
  /** Units done so far (messages, requests). */
  done(): number;
  /** Units expected in all; 0 when the run is timed (the bar follows the clock) or open-ended. */
  total(): number;
  /** A timed run: its length in ms (0: not timed). */
  durationMs: number;
  unit: string;
}

const WIDTH = 30;
const SHOW_AFTER_MS = 1000;
const EVERY_MS = 200;

export class Progress {
  private timer: ReturnType<typeof setInterval> | null = null;
  private shown = false;
  private readonly startMs = performance.now();
  private lastDone = 0;
  private lastMs = performance.now();
  private rate = 0;

  constructor(
    private readonly source: ProgressSource,
    private readonly out: NodeJS.WriteStream = process.stderr,
  ) {}

  static enabled(wanted: boolean, out: NodeJS.WriteStream = process.stderr): boolean {
    return wanted && out.isTTY === true && process.env.TERM !== "dumb";
  }

  start(): void {
    this.timer = setInterval(() => this.draw(), EVERY_MS);
    this.timer.unref?.();
  }

  private draw(): void {
    const now = performance.now();
    const elapsed = now - this.startMs;
    if (elapsed < SHOW_AFTER_MS) return;
    const done = this.source.done();
    const total = this.source.total();
    const instant = ((done - this.lastDone) * 1000) / Math.max(now - this.lastMs, 1);
    this.rate = this.rate === 0 ? instant : this.rate * 0.6 + instant * 0.4;
    this.lastDone = done;
    this.lastMs = now;
    let fraction: number | null = null;
    if (this.source.durationMs > 0) fraction = Math.min(1, elapsed / this.source.durationMs);
    else if (total > 0) fraction = Math.min(1, done / total);
    const bar = fraction === null ? "" : `[${"█".repeat(Math.round(fraction * WIDTH)).padEnd(WIDTH, "░")}] ${String(Math.floor(fraction * 100)).padStart(3)}%  `;
    const count = total > 0 && this.source.durationMs === 0 ? `${fmt(done)}/${fmt(total)}` : fmt(done);
    const line = `${bar}${count} ${this.source.unit}  ${fmt(Math.round(this.rate))}/s  ${clock(elapsed)}`;
    const columns = this.out.columns || 100;
    this.out.write(`\r${line.slice(0, columns - 1)}\x1b[K`);
    this.shown = true;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (this.shown) this.out.write("\r\x1b[K");
    this.shown = false;
  }
}

function fmt(n: number): string {
  return n.toLocaleString("en-US");
}

function clock(ms: number): string {
  const s = Math.floor(ms / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}
