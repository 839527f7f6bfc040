// Raft payloads too large for one route frame go as parts (src/jetstream/cluster/raft-parts.ts).
import { describe, expect, test } from "vitest";
import { PartsAssembler, RAFT_MAX_PARTS, RAFT_PART_BYTES, splitIntoParts } from "../../src/jetstream/cluster/raft-parts.ts";

const payload = (length: number) => Buffer.from(Array.from({ length }, (_, i) => (i * 7) % 256));

describe("Raft payloads in parts", () => {
  test("split and put back together, each part inside a route frame's slack", () => {
    const whole = payload(RAFT_PART_BYTES * 2 + 123);
    const parts = splitIntoParts(1, whole)!;
    expect(parts.length).toBe(3);
    for (const part of parts) expect(part.length).toBeLessThan(256 * 1024);
    const assembler = new PartsAssembler();
    expect(assembler.add("n2", "S-A", parts[0]!)).toBeNull();
    expect(assembler.add("n2", "S-A", parts[1]!)).toBeNull();
    const done = assembler.add("n2", "S-A", parts[2]!);
    expect(done?.type).toBe(1);
    expect(done?.payload.equals(whole)).toBe(true);
  });

  test("a part out of place, of another group, or after the route closed is dropped with what came before", () => {
    const parts = splitIntoParts(2, payload(RAFT_PART_BYTES + 1))!;
    const assembler = new PartsAssembler();
    expect(assembler.add("n2", "S-A", parts[1]!)).toBeNull(); // its start never came
    assembler.add("n2", "S-A", parts[0]!);
    expect(assembler.add("n2", "S-B", parts[1]!)).toBeNull();
    assembler.add("n2", "S-A", parts[0]!);
    assembler.forget("n2");
    expect(assembler.add("n2", "S-A", parts[1]!)).toBeNull();
    // Senders are kept apart.
    assembler.add("n2", "S-A", parts[0]!);
    assembler.add("n3", "S-A", parts[0]!);
    expect(assembler.add("n2", "S-A", parts[1]!)?.type).toBe(2);
    expect(assembler.add("n3", "S-A", parts[1]!)?.type).toBe(2);
  });

  test("a payload of more than RAFT_MAX_PARTS parts is not sent", () => {
    expect(splitIntoParts(1, new Uint8Array(RAFT_PART_BYTES * RAFT_MAX_PARTS + 1))).toBeNull();
  });
});
