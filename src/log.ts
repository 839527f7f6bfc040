// Log lines shaped like nats-server's: `[pid] 2006/01/02 15:04:05.000000 [INF] text`.
// Debug (-D) and trace (-V) lines are skipped before any formatting work when they are off.

export class Logger {
  constructor(
    readonly debugEnabled: boolean,
    readonly traceEnabled: boolean,
  ) {}

  info(text: string): void { this.write("INF", text); }
  warn(text: string): void { this.write("WRN", text); }
  error(text: string): void { this.write("ERR", text); }
  fatal(text: string): void { this.write("FTL", text); }
  debug(text: string): void { if (this.debugEnabled) this.write("DBG", text); }
  trace(text: string): void { if (this.traceEnabled) this.write("TRC", text); }

  private write(level: string, text: string): void {
    process.stderr.write(`[${process.pid}] ${timestamp()} [${level}] ${text}\n`);
  }
}

function timestamp(): string {
  const d = new Date();
  const p2 = (n: number) => String(n).padStart(2, "0");
  const micros = String(d.getMilliseconds() * 1000).padStart(6, "0");
  return `${d.getFullYear()}/${p2(d.getMonth() + 1)}/${p2(d.getDate())} ${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())}.${micros}`;
}
