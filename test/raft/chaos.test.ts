// The random-fault scenarios of chaos.ts over fixed seeds (a longer sweep: bun test/raft/sweep.ts).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, it } from "vitest";
import { chaos } from "./chaos.ts";
import { seeds, withSeed } from "./sim.ts";

describe("raft: random faults (seeded; RAFT_SEED=<n> replays one)", () => {
  it("3 nodes: safety after every step, progress after healing", () => {
    for (const seed of seeds(1000, 40)) withSeed(seed, () => chaos(seed, { size: 3, durationMs: 60_000, paceMs: 200 }));
  });

  it("5 nodes: safety after every step, progress after healing", () => {
    for (const seed of seeds(2000, 25)) withSeed(seed, () => chaos(seed, { size: 5, durationMs: 60_000, paceMs: 200 }));
  });

  it("3 nodes, faults every few tens of milliseconds (elections rarely finish in peace)", () => {
    for (const seed of seeds(3000, 30)) withSeed(seed, () => chaos(seed, { size: 3, durationMs: 30_000, paceMs: 40 }));
  });

  it("3 nodes keeping their state in files (truncations, snapshots and restarts on disk)", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "raft-chaos-"));
    try {
      for (const seed of seeds(5000, 4)) withSeed(seed, () => chaos(seed, { size: 3, durationMs: 30_000, paceMs: 150, dir }));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("3 to 5 voters out of 5 nodes, added and removed at random, with all the faults", () => {
    for (const seed of seeds(4000, 30)) {
      withSeed(seed, () => chaos(seed, { size: 3, durationMs: 60_000, paceMs: 150, membership: true }));
    }
  });
});
