// The runtime's floor for memory: the least NATS server Bun can run, for bench/runtime-floor.ts. It speaks
// what the load generator sends (CONNECT, PING, SUB with a queue group or not, literal subjects and a last
// `*` token, PUB with a reply or not, UNSUB ignored) and nothing else: no accounts, limits, monitoring,
// headers, verbose mode or validation. What natter holds beyond this under the same load is natter's; what
// this holds, any server on Bun holds.
//
//   bun bench/floor-server.ts --port P
//
// Written lean on purpose, so that its memory is the runtime's and not this file's: each connection has
// one growable outbound buffer written once per read (as natter does), a subscription's `MSG <subject>
// <sid> ` is made once, a publish allocates nothing but a new subject's string (a one-subject memo per
// publisher) and its reply's, a large read's memory is freed when its callback ends, and nothing else is
// cached or kept. Like natter, it gives back the pages of Bun's executable that only start-up ran.
import type { Socket } from "bun";
import { numberArg } from "./args.ts";
import { giveBackStartUpPages } from "../src/start-up-pages.ts";

const INFO = Buffer.from(
  'INFO {"server_id":"floor","server_name":"floor","version":"2.9.0","proto":1,"headers":false,"max_payload":1048576}\r\n',
);
const PONG = Buffer.from("PONG\r\n");
const CRLF = 0x0d0a;
/** A connection whose unsent bytes pass this is closed: the load generator's window keeps far below it. */
const MAX_PENDING = 64 * 1024 * 1024;

interface Subscription {
  conn: Conn;
  /** `MSG <subject> <sid> ` for a literal subject; null for a `*` one (its subject is the published one). */
  prefix: Buffer | null;
  sid: string;
}

interface Group {
  members: Subscription[];
  next: number;
}

interface Interest {
  plain: Subscription[];
  groups: Map<string, Group>;
}

class Conn {
  out = Buffer.allocUnsafe(64 * 1024);
  length = 0;
  /** Bytes of a read not yet parsed (an op split across reads), copied. */
  rest: Buffer | null = null;
  /** The last published subject's bytes and string: a publisher mostly repeats its subject. */
  private lastSubject = Buffer.allocUnsafe(64);
  private lastLength = -1;
  private lastText = "";
  constructor(readonly socket: Socket<Conn>) {}

  subjectOf(data: Buffer, start: number, end: number): string {
    const length = end - start;
    if (length === this.lastLength && data.compare(this.lastSubject, 0, length, start, end) === 0) return this.lastText;
    this.lastText = data.latin1Slice(start, end);
    if (length <= this.lastSubject.length) {
      data.copy(this.lastSubject, 0, start, end);
      this.lastLength = length;
    }
    return this.lastText;
  }

  reserve(bytes: number): void {
    if (this.length + bytes <= this.out.length) return;
    let size = this.out.length * 2;
    while (size < this.length + bytes) size *= 2;
    const bigger = Buffer.allocUnsafe(size);
    this.out.copy(bigger, 0, 0, this.length);
    this.out = bigger;
  }

  flush(): void {
    if (this.length === 0) return;
    const written = this.socket.write(this.out, 0, this.length);
    const sent = written > 0 ? written : 0;
    if (sent < this.length) this.out.copy(this.out, 0, sent, this.length);
    this.length -= sent;
    if (this.length > MAX_PENDING) this.socket.end();
  }
}

/** Literal subjects; a subject ending in `*` is kept under its prefix (`_INBOX.x.` for `_INBOX.x.*`). */
const literal = new Map<string, Interest>();
const lastTokenWildcard = new Map<string, Interest>();
const touched = new Set<Conn>();
let subscribed = false;

function interestFor(map: Map<string, Interest>, key: string): Interest {
  let interest = map.get(key);
  if (interest === undefined) map.set(key, (interest = { plain: [], groups: new Map() }));
  return interest;
}

function subscribe(conn: Conn, fields: string[]): void {
  if (!subscribed) {
    // natter gives back the executable's start-up pages again once its warm-up (at the first SUB) is over.
    subscribed = true;
    setTimeout(() => void giveBackStartUpPages(), 300);
  }
  const subject = fields[1]!;
  const sid = fields[fields.length - 1]!;
  const queue = fields.length === 4 ? fields[2]! : null;
  const wildcard = subject.endsWith(".*");
  const sub: Subscription = { conn, sid, prefix: wildcard ? null : Buffer.from(`MSG ${subject} ${sid} `) };
  const interest = wildcard ? interestFor(lastTokenWildcard, subject.slice(0, -1)) : interestFor(literal, subject);
  if (queue === null) {
    interest.plain.push(sub);
  } else {
    let group = interest.groups.get(queue);
    if (group === undefined) interest.groups.set(queue, (group = { members: [], next: 0 }));
    group.members.push(sub);
  }
}

/** Writes a non-negative integer's digits at the end of conn's outbound buffer (no string). */
function writeDigits(conn: Conn, n: number): void {
  let digits = 1;
  for (let rest = n; rest >= 10; rest = Math.floor(rest / 10)) digits++;
  for (let i = digits - 1, rest = n; i >= 0; i--, rest = Math.floor(rest / 10)) conn.out[conn.length + i] = 0x30 + (rest % 10);
  conn.length += digits;
}

function deliver(sub: Subscription, subject: string, reply: string | null, data: Buffer, start: number, size: number): void {
  const conn = sub.conn;
  conn.reserve(sub.prefix === null || reply !== null ? subject.length + sub.sid.length + (reply?.length ?? 0) + 8 : sub.prefix.length);
  if (sub.prefix !== null) {
    conn.length += sub.prefix.copy(conn.out, conn.length);
  } else {
    conn.length += conn.out.latin1Write("MSG ", conn.length, 4);
    conn.length += conn.out.latin1Write(subject, conn.length, subject.length);
    conn.out[conn.length++] = 0x20;
    conn.length += conn.out.latin1Write(sub.sid, conn.length, sub.sid.length);
    conn.out[conn.length++] = 0x20;
  }
  conn.reserve((reply?.length ?? 0) + 1 + 12 + size + 2);
  if (reply !== null) {
    conn.length += conn.out.latin1Write(reply, conn.length, reply.length);
    conn.out[conn.length++] = 0x20;
  }
  writeDigits(conn, size);
  conn.out.writeUInt16BE(CRLF, conn.length);
  conn.length += 2;
  conn.length += data.copy(conn.out, conn.length, start, start + size + 2);
  touched.add(conn);
}

function publish(interest: Interest | undefined, subject: string, reply: string | null, data: Buffer, start: number, size: number): void {
  if (interest === undefined) return;
  for (const sub of interest.plain) deliver(sub, subject, reply, data, start, size);
  for (const group of interest.groups.values()) {
    if (group.members.length === 0) continue;
    const member = group.members[group.next++ % group.members.length]!;
    deliver(member, subject, reply, data, start, size);
  }
}

/** Where the next space is in data[from, to), or to. */
function spaceAt(data: Buffer, from: number, to: number): number {
  while (from < to && data[from] !== 0x20) from++;
  return from;
}

/** `PUB <subject> [reply] <size>`: the control line data[at, lineEnd) (without CRLF) published; returns where the next op starts, or -1 for more bytes. */
function onPub(conn: Conn, data: Buffer, at: number, lineEnd: number): number {
  const subjectStart = at + 4;
  const subjectEnd = spaceAt(data, subjectStart, lineEnd);
  const second = spaceAt(data, subjectEnd + 1, lineEnd);
  const hasReply = second < lineEnd;
  let size = 0;
  for (let i = (hasReply ? second : subjectEnd) + 1; i < lineEnd; i++) size = size * 10 + data[i]! - 0x30;
  const start = lineEnd + 2;
  if (start + size + 2 > data.length) return -1;
  const subject = conn.subjectOf(data, subjectStart, subjectEnd);
  const reply = hasReply ? data.latin1Slice(subjectEnd + 1, second) : null;
  publish(literal.get(subject), subject, reply, data, start, size);
  if (lastTokenWildcard.size > 0) {
    const dot = subject.lastIndexOf(".");
    if (dot > 0) publish(lastTokenWildcard.get(subject.slice(0, dot + 1)), subject, reply, data, start, size);
  }
  return start + size + 2;
}

/** Parses whole ops from `data`; returns where the unparsed rest starts. */
function parse(conn: Conn, data: Buffer): number {
  let at = 0;
  while (at < data.length) {
    const newline = data.indexOf(10, at);
    if (newline < 0) return at;
    const c = data[at]!;
    if (c === 0x50 /* P */ && data[at + 1] === 0x55 /* U */) {
      const next = onPub(conn, data, at, newline - 1);
      if (next < 0) return at;
      at = next;
      continue;
    }
    if (c === 0x53 /* S */) subscribe(conn, data.latin1Slice(at, newline - 1).split(" "));
    else if (c === 0x50 && data[at + 1] === 0x49 /* PING */) {
      conn.reserve(PONG.length);
      conn.length += PONG.copy(conn.out, conn.length);
      touched.add(conn);
    }
    at = newline + 1; // CONNECT, PONG, UNSUB: nothing to do
  }
  return at;
}

const port = numberArg("port", 4222);
Bun.listen<Conn>({
  hostname: "127.0.0.1",
  port,
  socket: {
    open(socket) {
      socket.data = new Conn(socket);
      socket.write(INFO);
    },
    data(socket, read) {
      const conn = socket.data;
      const data = conn.rest === null ? read : Buffer.concat([conn.rest, read]);
      const end = parse(conn, data);
      conn.rest = end < data.length ? Buffer.from(data.subarray(end)) : null;
      for (const c of touched) c.flush();
      touched.clear();
      // A large read's memory is freed now, not at the next collection (natter's src/transport/read-memory.ts).
      // (The length first: asking a small read for its .buffer makes JavaScriptCore create an ArrayBuffer object
      // for it, which young collections then visit: ~1 MiB marked per collection under request-reply.)
      if (read.byteLength >= 32 * 1024) {
        const memory = read.buffer;
        if (read.byteOffset === 0 && read.byteLength === memory.byteLength && memory instanceof ArrayBuffer) memory.transfer(0);
      }
    },
    drain(socket) {
      socket.data.flush();
    },
    close(socket) {
      const conn = socket.data;
      for (const map of [literal, lastTokenWildcard]) {
        for (const interest of map.values()) {
          interest.plain = interest.plain.filter((s) => s.conn !== conn);
          for (const group of interest.groups.values()) group.members = group.members.filter((s) => s.conn !== conn);
        }
      }
    },
    error() {},
  },
});
// As natter does once it is ready: the executable's pages that only start-up ran go back to the kernel.
await giveBackStartUpPages();
console.log(`floor server listening on 127.0.0.1:${port}`);
