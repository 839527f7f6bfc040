// The outbound buffer's size over a connection's life (src/outbound.ts): it grows to what a burst needs,
// keeps that size while the connection is busy (no regrowth from 4 KiB after every drain), and the sweep's
// trim shrinks it back to twice what the last interval needed, or to nothing for an idle connection.
// And how a connection writes it (src/connection.ts WRITE_EARLY_BYTES): a fast publisher's read fanned out
// goes to each subscriber in a few large writes, within the buffer it has.
import { expect, test } from "vitest";
import { defaultOptions } from "../../src/options.ts";
import { OutboundBuffer } from "../../src/outbound.ts";
import { Server } from "../../src/server.ts";
import type { Transport } from "../../src/transport/transport.ts";
import { testLogger } from "../harness/failure-log.ts";

const KiB = 1024;

function queue(out: OutboundBuffer, bytes: number): void {
  const at = out.reserve(bytes);
  out.buf.fill(120, at, at + bytes);
}

test("a drained buffer keeps its size until the sweep's trim", () => {
  const out = new OutboundBuffer();
  queue(out, 300 * KiB);
  expect(out.buf.length).toBe(300 * KiB); // an empty buffer grows to what the burst needs
  const grown = out.buf;
  expect(out.consumed(300 * KiB)).toBe(true);
  queue(out, 300 * KiB);
  expect(out.buf).toBe(grown); // the next burst reuses it: no new buffer, no garbage
  expect(out.consumed(100 * KiB)).toBe(false);
  out.trim();
  expect(out.buf).toBe(grown); // bytes still queued: the size stays
  expect(out.consumed(200 * KiB)).toBe(true);
});

test("trim shrinks to twice the busiest flush since the last trim, and an idle buffer to nothing", () => {
  const out = new OutboundBuffer();
  queue(out, 900 * KiB);
  out.consumed(900 * KiB);
  expect(out.buf.length).toBe(900 * KiB);
  out.trim(); // the interval needed 900 KiB: twice that is more than it has, so it keeps its size
  expect(out.buf.length).toBe(900 * KiB);
  queue(out, 10 * KiB);
  out.consumed(10 * KiB);
  out.trim(); // this interval needed 10 KiB
  expect(out.buf.length).toBe(32 * KiB);
  out.trim(); // nothing written since
  expect(out.buf.length).toBe(0);
  queue(out, 100); // an idle connection that gets a message again starts small
  expect(out.buf.length).toBe(4 * KiB);
  expect(out.buf.subarray(out.head, out.end).toString("latin1")).toBe("x".repeat(100));
});

test("a 4 KiB buffer goes back to the shared spares at a complete drain: an idle connection holds none, the next frame takes a spare", () => {
  const out = new OutboundBuffer();
  queue(out, 200); // INFO and PONG: the initial 4 KiB
  const small = out.buf;
  expect(small.length).toBe(4 * KiB);
  expect(out.consumed(100)).toBe(false);
  expect(out.buf).toBe(small); // bytes still queued: kept
  expect(out.consumed(100)).toBe(true);
  expect(out.buf.length).toBe(0); // drained: given back at once, not at the sweep's second trim
  const other = new OutboundBuffer();
  queue(other, 50);
  expect(other.buf).toBe(small); // another connection's next frame reuses it: no new buffer
  queue(out, 50);
  expect(out.buf).not.toBe(small); // never shared while in use
  expect(out.buf.length).toBe(4 * KiB);
  other.buf.fill(111, other.head, other.end);
  expect(out.buf.subarray(out.head, out.end).toString("latin1")).toBe("x".repeat(50));
  other.release();
  out.release();
  queue(out, 10);
  queue(other, 10);
  expect(out.buf).not.toBe(other.buf);
});

test("a buffer that grew past 4 KiB is not given back at a drain (a busy connection keeps it)", () => {
  const out = new OutboundBuffer();
  queue(out, 10 * KiB);
  const grown = out.buf;
  expect(out.consumed(10 * KiB)).toBe(true);
  expect(out.buf).toBe(grown);
});

/** A transport that takes every write whole and notes its size. */
class RecordingTransport implements Transport {
  readonly kind = "tcp";
  readonly remoteAddress = "127.0.0.1";
  readonly remotePort = 1;
  blocked = false;
  readonly writes: number[] = [];
  write(_buf: Buffer, start: number, end: number): number {
    this.writes.push(end - start);
    return end - start;
  }
  pauseReading(): void {}
  resumeReading(): void {}
  close(): void {}
}

/**
 * One read of 500 PUBs of 1 KiB (about Bun's largest read, 512 KiB) fanned out to `count` subscribers of an
 * in-process server (not started: no listener, no timers); returns each subscriber's write sizes and the
 * size its outbound buffer reached.
 */
function fanOutOneRead(count: number): { writes: number[]; bufferBytes: number }[] {
  const server = new Server({ ...defaultOptions, wsAllowedOrigins: [], host: "127.0.0.1", port: -1 }, testLogger());
  const connect = (transport: RecordingTransport, subs: string) => {
    const conn = server.accept(transport);
    conn.onRead(Buffer.from(`CONNECT {"verbose":false,"pedantic":false}\r\n${subs}PING\r\n`, "latin1"));
    return conn;
  };
  const subscribers = Array.from({ length: count }, () => {
    const transport = new RecordingTransport();
    return { transport, conn: connect(transport, "SUB fan.out 1\r\n") };
  });
  const publisher = connect(new RecordingTransport(), "");
  for (const { transport } of subscribers) transport.writes.length = 0; // INFO and PONG
  const payload = "x".repeat(KiB);
  publisher.onRead(Buffer.from(`PUB fan.out ${KiB}\r\n${payload}\r\n`.repeat(500), "latin1"));
  return subscribers.map(({ transport, conn }) => ({
    writes: transport.writes,
    bufferBytes: (conn as unknown as { outbound: OutboundBuffer }).outbound.buf.length,
  }));
}

const FRAME_BYTES = `MSG fan.out 1 ${KiB}\r\n${"x".repeat(KiB)}\r\n`.length;

test("a publisher's 512 KiB read fanned out to 10 subscribers reaches each in 3 writes, no buffer growing past 256 KiB", () => {
  for (const { writes, bufferBytes } of fanOutOneRead(10)) {
    expect(writes.reduce((a, b) => a + b, 0)).toBe(500 * FRAME_BYTES);
    // 2 early writes of just under 256 KiB and the rest at the end of the read (at 128 KiB: 3 and the rest).
    expect(writes.length).toBe(3);
    expect(writes[0]).toBeGreaterThan(200 * KiB);
    expect(bufferBytes).toBeLessThanOrEqual(256 * KiB);
  }
});

test("fanned out to 100 subscribers, the same read is written at 60 KiB: 9 writes each, no buffer growing past 64 KiB", () => {
  for (const { writes, bufferBytes } of fanOutOneRead(100)) {
    expect(writes.reduce((a, b) => a + b, 0)).toBe(500 * FRAME_BYTES);
    // 8 early writes of just over 60 KiB and the rest at the end of the read.
    expect(writes.length).toBe(9);
    expect(writes[0]).toBeLessThan(62 * KiB);
    expect(bufferBytes).toBeLessThanOrEqual(64 * KiB);
  }
});
