import { describe, expect, it } from "vitest";
import { SimCluster, STORMY, seeds, withSeed } from "./sim.ts";

describe("raft: basics", () => {
  it("three nodes elect one leader and replicate commands to all", () => {
    for (const seed of seeds(1, 5)) {
      withSeed(seed, () => {
        const c = new SimCluster({ seed, size: 3 });
        const leader = c.waitForLeader();
        for (let i = 0; i < 20; i++) c.commit(`v${i}`);
        c.waitConverged();
        expect(c.node("n1").lastApplied).toBeGreaterThanOrEqual(21);
        expect(c.member("n2").machine.values()).toEqual(Array.from({ length: 20 }, (_, i) => `v${i}`));
        expect(leader.isLeader).toBe(true);
      });
    }
  });

  it("a single node is its own majority", () => {
    withSeed(7, (seed) => {
      const c = new SimCluster({ seed, size: 1 });
      c.waitForLeader();
      c.commit("only");
      expect(c.member("n1").machine.values()).toEqual(["only"]);
    });
  });

  it("replicates over a lossy, reordering, duplicating network", () => {
    for (const seed of seeds(100, 5)) {
      withSeed(seed, () => {
        const c = new SimCluster({ seed, size: 5, faults: STORMY });
        c.waitForLeader();
        for (let i = 0; i < 50; i++) c.commit(`v${i}`);
        c.waitConverged();
        expect(c.member("n3").machine.values()).toEqual(Array.from({ length: 50 }, (_, i) => `v${i}`));
      });
    }
  });
});
