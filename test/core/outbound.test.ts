// The outbound buffer's size over a connection's life (src/outbound.ts): it grows to what a burst needs,
// keeps that size while the connection is busy (no regrowth from 4 KiB after every drain), and the sweep's
// trim shrinks it back to twice what the last interval needed, or to nothing for an idle connection.
import { expect, test } from "vitest";
import { OutboundBuffer } from "../../src/outbound.ts";

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
