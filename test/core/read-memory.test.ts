import { describe, expect, test } from "vitest";
import { holdsCollectorHeadroom, releaseRead } from "../../src/transport/read-memory.ts";

describe("read memory (src/transport/read-memory.ts)", () => {
  test("a large read's memory is freed after its callback, and the collector's headroom is held", () => {
    const read = Buffer.from(new Uint8Array(64 * 1024).fill(7));
    releaseRead(read);
    expect(read.buffer.byteLength).toBe(0); // detached: its memory is back with the allocator
    expect(read.byteLength).toBe(0);
    expect(holdsCollectorHeadroom()).toBe(true);
  });

  test("a small read is left to the collector", () => {
    const read = Buffer.from(new Uint8Array(1024).fill(7));
    releaseRead(read);
    expect(read.byteLength).toBe(1024);
  });

  test("a Buffer that is a view into a larger ArrayBuffer is left alone", () => {
    const memory = new ArrayBuffer(128 * 1024);
    const view = Buffer.from(memory, 1024, 64 * 1024);
    releaseRead(view);
    expect(memory.byteLength).toBe(128 * 1024);
    expect(view.byteLength).toBe(64 * 1024);
  });
});
