// The audit log (audit_log / --audit_log, natter's own): one JSON object per line, appended to a file, for
// connects, disconnects, authentication failures, permission violations and admin operations (config
// reload, lame duck mode, shutdown). src/accounts/events.ts decides what is recorded; this file only writes.
//
// - Never blocks the event loop per line: lines are buffered and written with one async write per flush
//   (a short timer), one write in flight at a time; what is left is written synchronously at close.
// - Bounded memory: past MAX_BUFFERED_BYTES waiting, lines are dropped and counted; the next flush writes an
//   `audit_dropped` line with the count, and the server log says so too.
// - Never written from the publish hot path, and never holds credentials: callers pass no password, token,
//   signature or JWT (a token user is recorded as "[REDACTED]", as nats-server's events name it).
import { nodeFs } from "./node-builtins.ts";
import type { Logger } from "./log.ts";
import { nowNs, rfc3339Ns } from "./monitor/format.ts";

/** How long a line may wait before it is written. */
const FLUSH_INTERVAL_MS = 100;
/** Lines waiting for the disk beyond this are dropped (and counted). */
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;

/** The `type` of each audit line. */
export const AuditType = {
  Connect: "connect",
  Disconnect: "disconnect",
  AuthError: "auth_error",
  PermissionViolation: "permission_violation",
  ConfigReload: "config_reload",
  LameDuck: "lame_duck",
  Shutdown: "shutdown",
  /** A console sign-in, accepted or refused (src/console/). */
  ConsoleLogin: "console_login",
  /** An admin action taken in the console (src/console/), with the console user who took it. */
  ConsoleAction: "console_action",
  Dropped: "audit_dropped",
} as const;
export type AuditType = (typeof AuditType)[keyof typeof AuditType];

export class AuditLog {
  private lines: string[] = [];
  private bufferedBytes = 0;
  private dropped = 0;
  private writing = false;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private closed = false;
  private idle: (() => void)[] = [];
  private lastErrorLogged = 0;

  private constructor(
    readonly path: string,
    private readonly fd: number,
    private readonly log: Logger,
  ) {}

  /** Opens `path` for appending (created 0600); null (logged) when it cannot be opened. */
  static open(path: string, log: Logger): AuditLog | null {
    try {
      return new AuditLog(path, nodeFs().openSync(path, "a", 0o600), log);
    } catch (error) {
      log.error(`Cannot open audit log ${path}: ${(error as Error).message}`);
      return null;
    }
  }

  /** Appends one line: `{"timestamp": …, "type": …, …fields}`. */
  record(type: AuditType, fields: Record<string, unknown> = {}): void {
    if (this.closed) return;
    const line = `${JSON.stringify({ timestamp: rfc3339Ns(nowNs()), type, ...fields })}\n`;
    if (this.bufferedBytes + line.length > MAX_BUFFERED_BYTES) {
      this.dropped++;
      return;
    }
    this.lines.push(line);
    this.bufferedBytes += line.length;
    if (this.timer === null && !this.writing) {
      this.timer = setTimeout(() => this.flush(), FLUSH_INTERVAL_MS);
      this.timer.unref?.();
    }
  }

  /** Lines dropped so far because the disk did not keep up. */
  get droppedTotal(): number {
    return this.dropped;
  }

  private takeChunk(): Buffer | null {
    if (this.dropped > 0) {
      this.log.warn(`Audit log ${this.path}: ${this.dropped} records dropped (the disk is not keeping up)`);
      this.lines.push(`${JSON.stringify({ timestamp: rfc3339Ns(nowNs()), type: AuditType.Dropped, dropped: this.dropped })}\n`);
      this.dropped = 0;
    }
    if (this.lines.length === 0) return null;
    const chunk = Buffer.from(this.lines.join(""));
    this.lines = [];
    this.bufferedBytes = 0;
    return chunk;
  }

  private flush(): void {
    this.timer = null;
    if (this.writing || this.closed) return;
    const chunk = this.takeChunk();
    if (chunk === null) return this.settle();
    this.writing = true;
    this.writeChunk(chunk, 0);
  }

  private writeChunk(chunk: Buffer, offset: number): void {
    nodeFs().write(this.fd, chunk, offset, chunk.length - offset, null, (error, written) => {
      if (error === null && offset + written < chunk.length) return this.writeChunk(chunk, offset + written);
      this.writing = false;
      if (error !== null) this.failed(error);
      if (this.lines.length > 0 || this.dropped > 0) this.flush();
      else this.settle();
    });
  }

  private failed(error: Error): void {
    const now = Date.now();
    if (now - this.lastErrorLogged < 10_000) return;
    this.lastErrorLogged = now;
    this.log.error(`Audit log ${this.path}: write failed: ${error.message}`);
  }

  private settle(): void {
    const waiters = this.idle;
    this.idle = [];
    for (const w of waiters) w();
  }

  /** Waits for the write in flight, writes what is left (synchronously: the process is about to exit), closes the file. */
  async close(): Promise<void> {
    if (this.closed) return;
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.writing) await new Promise<void>((resolve) => this.idle.push(resolve));
    this.closed = true;
    const chunk = this.takeChunk();
    try {
      if (chunk !== null) nodeFs().writeSync(this.fd, chunk);
    } catch (error) {
      this.failed(error as Error);
    }
    try {
      nodeFs().closeSync(this.fd);
    } catch {
      // already gone
    }
  }
}
