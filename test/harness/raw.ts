// A raw NATS protocol client for wire tests: it sends exact bytes and parses what the server sends into
// frames (INFO, MSG, HMSG, PING, PONG, +OK, -ERR), each keeping its exact bytes. Every wait has a deadline.
//
// Server PINGs are answered and hidden by default, so a test reading frames is not disturbed by the
// server's first PING (about 2 s after CONNECT); pass { autoPong: false } to see and answer them yourself.
import net from "node:net";
import { afterAll, onTestFinished } from "vitest";

export type Op = "INFO" | "MSG" | "HMSG" | "PING" | "PONG" | "+OK" | "-ERR" | "?";

export interface Frame {
  op: Op;
  /** The control line without its CRLF. */
  line: string;
  /** The exact bytes of the frame (control line, payload, CRLFs) as a latin1 string. */
  raw: string;
  /** Whitespace-separated arguments after the op. */
  args: string[];
  /** MSG/HMSG: subject, sid, reply (undefined when absent). */
  subject?: string;
  sid?: string;
  reply?: string;
  /** HMSG: the header block (including its final blank line). */
  headers?: Buffer;
  /** MSG/HMSG: the payload (without headers). */
  payload?: Buffer;
  /** INFO: the parsed JSON. */
  info?: Record<string, unknown>;
}

export interface RawOptions {
  /** Answer server PINGs with PONG and keep them out of the frame queue (default true). */
  autoPong?: boolean;
  host?: string;
}

/** Polls `cond` until it returns a truthy value or the deadline passes (then throws). */
export async function waitFor<T>(
  cond: () => T | Promise<T>,
  timeoutMs = 5_000,
  what = "condition",
  intervalMs = 10,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await cond();
    if (v) return v as NonNullable<T>;
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** MSG/HMSG size arguments a frame can be cut by: non-negative integers, header size ≤ total. */
function sizesOk(args: string[], isH: boolean): boolean {
  const n = (s: string | undefined) => (s !== undefined && /^\d+$/.test(s) ? Number(s) : -1);
  const total = n(args[args.length - 1]);
  if (args.length < (isH ? 4 : 3) || total < 0) return false;
  if (!isH) return true;
  const hdr = n(args[args.length - 2]);
  return hdr >= 0 && hdr <= total;
}

/**
 * The protocol side of a raw client, independent of the transport: feed() it received bytes, it queues
 * frames; write() is how it sends. RawClient (TCP) and the raw WebSocket client both use it.
 */
export class RawConnection {
  /** Every byte received so far, latin1, PINGs included. */
  received = "";
  /** Frames received and not yet taken by next()/expect(). */
  readonly frames: Frame[] = [];
  /** All frames ever parsed (PINGs included, even when auto-answered). */
  readonly history: Frame[] = [];
  closed = false;
  /** The first INFO's JSON, once received. */
  info?: Record<string, unknown>;

  private pending: Buffer = Buffer.alloc(0);
  private waiters = new Set<() => void>();
  private readonly autoPong: boolean;

  constructor(
    protected writeFn: (b: Buffer) => void,
    opts: RawOptions = {},
  ) {
    this.autoPong = opts.autoPong ?? true;
  }

  /** Sends a string (encoded latin1, so "\xff" is one byte) or raw bytes. */
  send(data: string | Uint8Array): void {
    this.writeFn(typeof data === "string" ? Buffer.from(data, "latin1") : Buffer.from(data));
  }

  feed(chunk: Buffer): void {
    this.received += chunk.toString("latin1");
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    this.parse();
    this.wake();
  }

  markClosed(): void {
    this.closed = true;
    this.wake();
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }

  /** Resolves when `check` returns non-undefined, re-checking on every arrival or close; throws at the deadline. */
  private waitUntil<T>(check: () => T | undefined, timeoutMs: number, what: () => string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const tryNow = () => {
        let v: T | undefined;
        try {
          v = check();
        } catch (err) {
          cleanup();
          reject(err);
          return;
        }
        if (v !== undefined) {
          cleanup();
          resolve(v);
        }
      };
      const cleanup = () => {
        this.waiters.delete(tryNow);
        if (timer) clearTimeout(timer);
      };
      this.waiters.add(tryNow);
      timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what()}`));
      }, timeoutMs);
      tryNow();
    });
  }

  private parse(): void {
    for (;;) {
      const buf = this.pending;
      const nl = buf.indexOf(0x0a);
      if (nl < 0) return;
      const hasCR = nl > 0 && buf[nl - 1] === 0x0d;
      const line = buf.subarray(0, hasCR ? nl - 1 : nl).toString("latin1");
      const [word = "", ...args] = line.split(/[ \t]+/).filter((s, i) => i === 0 || s !== "");
      const op = word.toUpperCase();
      let frame: Frame;
      let used = nl + 1;
      if (!hasCR) {
        frame = { op: "?", line, raw: buf.subarray(0, used).toString("latin1"), args };
      } else if ((op === "MSG" || op === "HMSG") && sizesOk(args, op === "HMSG")) {
        const isH = op === "HMSG";
        const total = Number(args[args.length - 1]);
        const hdrLen = isH ? Number(args[args.length - 2]) : 0;
        const need = used + total + 2;
        if (buf.length < need) return; // wait for the payload
        const body = buf.subarray(used, used + total);
        const ok = buf[used + total] === 0x0d && buf[used + total + 1] === 0x0a;
        const nFixed = isH ? 3 : 2; // subject sid [reply] [hdrlen] total
        frame = {
          op: ok ? (op as Op) : "?",
          line,
          raw: buf.subarray(0, need).toString("latin1"),
          args,
          subject: args[0],
          sid: args[1],
          reply: args.length > nFixed + 1 ? args[2] : undefined,
          headers: isH ? Buffer.from(body.subarray(0, hdrLen)) : undefined,
          payload: Buffer.from(body.subarray(hdrLen)),
        };
        used = need;
      } else {
        frame = { op: (["INFO", "PING", "PONG", "+OK", "-ERR"].includes(op) ? op : "?") as Op, line, raw: buf.subarray(0, used).toString("latin1"), args };
        if (frame.op === "INFO") {
          try {
            frame.info = JSON.parse(line.slice(line.indexOf("{")));
            this.info ??= frame.info;
          } catch {
            frame.op = "?";
          }
        }
      }
      this.pending = buf.subarray(used);
      this.history.push(frame);
      if (frame.op === "PING" && this.autoPong) {
        this.send("PONG\r\n");
        continue;
      }
      this.frames.push(frame);
    }
  }

  /** The next frame; throws at the deadline or when the connection closes first. */
  next(timeoutMs = 5_000): Promise<Frame> {
    return this.waitUntil(
      () => {
        const f = this.frames.shift();
        if (f) return f;
        if (this.closed) throw new Error(`connection closed while waiting for a frame; received: ${JSON.stringify(this.received.slice(-500))}`);
        return undefined;
      },
      timeoutMs,
      () => `a frame; received so far: ${JSON.stringify(this.received.slice(-500))}`,
    );
  }

  /** The next frame, which must match: its raw bytes against a string (exactly), or its raw bytes against a RegExp. */
  async expect(want: string | RegExp, timeoutMs = 5_000): Promise<Frame> {
    const f = await this.next(timeoutMs);
    const ok = typeof want === "string" ? f.raw === want : want.test(f.raw);
    if (!ok) throw new Error(`expected ${typeof want === "string" ? JSON.stringify(want) : want}, got ${JSON.stringify(f.raw)}`);
    return f;
  }

  /** The next frame's control line (no CRLF) must match `re`. */
  async expectLine(re: RegExp, timeoutMs = 5_000): Promise<Frame> {
    const f = await this.next(timeoutMs);
    if (!re.test(f.line)) throw new Error(`expected a line matching ${re}, got ${JSON.stringify(f.raw)}`);
    return f;
  }

  /** Takes frames until `pred` accepts one (returned last in the list); throws at the deadline or on close. */
  readUntil(pred: (f: Frame) => boolean, timeoutMs = 5_000): Promise<Frame[]> {
    const taken: Frame[] = [];
    return this.waitUntil(
      () => {
        for (let f = this.frames.shift(); f; f = this.frames.shift()) {
          taken.push(f);
          if (pred(f)) return taken;
        }
        if (this.closed) throw new Error(`connection closed before the expected frame; took ${JSON.stringify(taken.map((t) => t.raw))}`);
        return undefined;
      },
      timeoutMs,
      () => `a matching frame; took ${JSON.stringify(taken.slice(-20).map((t) => t.raw))}`,
    );
  }

  /** Waits until `n` MSG/HMSG frames are queued and takes them (other frames are kept). */
  async messages(n: number, timeoutMs = 5_000): Promise<Frame[]> {
    const got: Frame[] = [];
    await this.waitUntil(
      () => {
        for (let i = 0; i < this.frames.length && got.length < n; ) {
          const f = this.frames[i]!;
          if (f.op === "MSG" || f.op === "HMSG") {
            got.push(f);
            this.frames.splice(i, 1);
          } else i++;
        }
        if (got.length >= n) return true;
        if (this.closed) throw new Error(`connection closed after ${got.length}/${n} messages`);
        return undefined;
      },
      timeoutMs,
      () => `${n} messages (got ${got.length})`,
    );
    return got;
  }

  /**
   * Round trip barrier: sends PING and waits for its PONG; returns the frames that came before it.
   * After it returns, the server has processed everything this connection sent before.
   */
  async flush(timeoutMs = 5_000): Promise<Frame[]> {
    this.send("PING\r\n");
    const frames = await this.readUntil((f) => f.op === "PONG", timeoutMs);
    return frames.slice(0, -1);
  }

  /** Resolves true once the connection is closed, false if still open at the deadline. */
  async waitClosed(timeoutMs = 5_000): Promise<boolean> {
    try {
      await this.waitUntil(() => (this.closed ? true : undefined), timeoutMs, () => "close");
      return true;
    } catch {
      return false;
    }
  }
}

type Closable = { close(): void } | { destroy(): void };
const closeIt = (s: Closable) => ("close" in s ? s.close() : s.destroy());
const openSockets = new Set<Closable>();
afterAll(() => {
  for (const s of openSockets) closeIt(s);
  openSockets.clear();
});

/**
 * Closes `s` (close(), or destroy() for a net.Socket) when the current test finishes, or, outside a test,
 * when the file is done. Raw clients register themselves; use it for other sockets a test opens.
 */
export function closeAfterTest<T extends Closable>(s: T): T {
  openSockets.add(s);
  try {
    onTestFinished(() => {
      closeIt(s);
      openSockets.delete(s);
    });
  } catch {
    // not inside a test: the afterAll above closes it
  }
  return s;
}

/** A raw NATS client over TCP. */
export class RawClient extends RawConnection {
  constructor(
    readonly socket: net.Socket,
    opts: RawOptions = {},
  ) {
    super((b) => {
      if (!socket.destroyed) socket.write(b);
    }, opts);
    socket.on("data", (d: Buffer) => this.feed(d));
    socket.on("close", () => this.markClosed());
    socket.on("error", () => this.markClosed());
  }

  /** Stop reading from the socket (the kernel buffers fill, then the server's). */
  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  close(): void {
    this.socket.destroy();
  }
}

/**
 * Connects and waits for the server's INFO (taken from the queue; see `info`).
 * Pass `connect` to send a CONNECT with that JSON right away (e.g. { verbose: false }).
 */
export async function connectRaw(
  port: number,
  opts: RawOptions & { connect?: Record<string, unknown>; timeoutMs?: number } = {},
): Promise<RawClient> {
  const socket = net.connect({ host: opts.host ?? "127.0.0.1", port });
  socket.setNoDelay(true);
  const c = closeAfterTest(new RawClient(socket, opts));
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", () => resolve());
    socket.once("error", reject);
  });
  await c.expectLine(/^INFO /, opts.timeoutMs ?? 5_000);
  if (opts.connect) c.send(`CONNECT ${JSON.stringify(opts.connect)}\r\n`);
  return c;
}

/** Connects, sends CONNECT {verbose:false, ...extra} and waits for the PONG of a PING: ready to use. */
export async function connectReady(port: number, extra: Record<string, unknown> = {}, opts: RawOptions = {}): Promise<RawClient> {
  const c = await connectRaw(port, { ...opts, connect: { verbose: false, pedantic: false, ...extra } });
  const before = await c.flush();
  if (before.length) throw new Error(`unexpected frames after CONNECT: ${JSON.stringify(before.map((f) => f.raw))}`);
  return c;
}
