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
