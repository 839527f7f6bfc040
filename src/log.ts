// Log lines shaped like nats-server's: `[pid] 2006/01/02 15:04:05.000000 [INF] text` (`[pid] [INF] text`
// with -T=false), on stderr or appended to a file (-l). Debug (-D) and trace (-V) lines are skipped before
// any formatting work when they are off. Levels, timestamps and the file can change on a config reload.
import type { Options } from "./options.ts";
import { logTimestamp } from "./local-time.ts";
import { nodeFs } from "./node-builtins.ts";

/**
 * `ip:port - cid:N` as nats-server prefixes a connection's log lines (`rid:` a route, `lid:` a leaf node,
 * `wid:` a WebSocket client); an IPv6 address in brackets. A socket that closed before its address was
 * read has none: then the prefix is `" - cid:N"`, as nats-server's is for a connection without an address.
 */
export function connectionLogPrefix(address: string | undefined, port: number | undefined, tag: string, id: number): string {
  if (!address) return ` - ${tag}:${id}`;
  return `${address.includes(":") ? `[${address}]` : address}:${port ?? 0} - ${tag}:${id}`;
}

/** natter's way out for a bad start (flag, config, port): one line on stderr and exit code 1. */
export function failStart(message: string): never {
  process.stderr.write(`natter: ${message}\n`);
  process.exit(1);
}

/** The logger the options ask for (-D, -V, -T, -l); an unopenable log file ends the start. */
export function loggerFor(options: Options): Logger {
  const log = new Logger(options.debug || options.trace, options.trace);
  log.logtime = options.logtime;
  if (options.logFile) {
    try {
      log.setFile(options.logFile);
    } catch (error) {
      failStart(`cannot open log file: ${(error as Error).message}`);
    }
  }
  return log;
}

export class Logger {
  /** Timestamps on lines (nats-server's -T/logtime, on by default). */
  logtime = true;
  /** The log file (-l/log_file), or "" for stderr. */
  private file = "";
  private fd: number | null = null;

  /**
   * `sink`: where lines go instead of stderr or the log file (tests keep an in-process server's lines
   * and show them only when the test fails); null = stderr / the file.
   */
  constructor(
    public debugEnabled: boolean,
    public traceEnabled: boolean,
    private readonly sink: ((line: string) => void) | null = null,
  ) {}

  get logFile(): string {
    return this.file;
  }

  /** Appends to `file` from now on ("" = stderr). Throws if it cannot be opened; the old target stays then. */
  setFile(file: string): void {
    const fd = file ? nodeFs().openSync(file, "a", 0o660) : null;
    if (this.fd !== null) nodeFs().closeSync(this.fd);
    this.fd = fd;
    this.file = file;
  }

  /** Reopens the log file (SIGUSR1, after log rotation moved it away). */
  reopen(): void {
    if (this.file) this.setFile(this.file);
  }

  info(text: string): void { this.write("INF", text); }
  warn(text: string): void { this.write("WRN", text); }
  error(text: string): void { this.write("ERR", text); }
  fatal(text: string): void { this.write("FTL", text); }
  debug(text: string): void { if (this.debugEnabled) this.write("DBG", text); }
  trace(text: string): void { if (this.traceEnabled) this.write("TRC", text); }

  /**
   * To stderr by console.error: one write(2) per line (a line from another process on the same pipe never
   * lands inside it), waiting while the pipe is full (no line lost or reordered), and no RSS of its own:
   * node:fs's writeSync costs 3.6 MiB once imported, process.stderr's stream machinery ~3 MiB
   * (src/node-builtins.ts). A single string argument is written as is (no %-formatting).
   */
  private write(level: string, text: string): void {
    const line = this.logtime ? `[${process.pid}] ${logTimestamp()} [${level}] ${text}` : `[${process.pid}] [${level}] ${text}`;
    if (this.sink !== null) this.sink(`${line}\n`);
    else if (this.fd === null) console.error(line);
    else nodeFs().writeSync(this.fd, `${line}\n`);
  }
}
