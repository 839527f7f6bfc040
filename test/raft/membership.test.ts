// Single-server membership changes through the log (Raft thesis §4.1): add a voter, remove one, the
// leader itself included; one change at a time.
import { describe, expect, it } from "vitest";
import type { ProposalOutcome } from "../../src/jetstream/cluster/raft-types.ts";
import { SimCluster, STORMY, seeds, withSeed } from "./sim.ts";

const values = (n: number) => Array.from({ length: n }, (_, i) => `v${i}`);

describe("raft: membership", () => {
  it("adds a node: it catches up (by snapshot when the log is compacted) and then counts as a voter", () => {
    for (const seed of seeds(1500, 5)) {
      withSeed(seed, () => {
        const c = new SimCluster({ seed, size: 3 });
        const leader = c.waitForLeader();
        for (let i = 0; i < 20; i++) c.commit(`v${i}`);
        if (seed % 2 === 0) leader.snapshot(leader.lastApplied, c.member(leader.id).machine.snapshotData());
        c.add("n4");
        const outcome: ProposalOutcome[] = [];
        expect(leader.addPeer("n4", (o) => outcome.push(o)).ok).toBe(true);
        expect(c.runUntil(() => outcome.length > 0)).toBe(true);
        expect(outcome).toEqual(["committed"]);
        c.commit("after");
        c.waitConverged();
        for (const m of c.members.values()) expect([...m.node.peers].sort()).toEqual(["n1", "n2", "n3", "n4"]);
        expect(c.member("n4").machine.values()).toEqual([...values(20), "after"]);
        // Four voters: the majority is three, so two down stop commits and one down does not.
        const others = ["n1", "n2", "n3", "n4"].filter((id) => id !== leader.id);
        c.crash(others[0]!);
        c.commit("one-down");
        c.crash(others[1]!);
        const before = leader.commitIndex;
        leader.propose(new TextEncoder().encode("two-down"));
        c.run(1_000);
        expect(leader.commitIndex).toBe(before);
      });
    }
  });

  it("removes a follower: the rest go on with a smaller majority, and the removed node stays quiet", () => {
    for (const seed of seeds(1600, 5)) {
      withSeed(seed, () => {
        const c = new SimCluster({ seed, size: 5 });
        const leader = c.waitForLeader();
        const gone = [...c.members.keys()].find((id) => id !== leader.id)!;
        const outcome: ProposalOutcome[] = [];
        expect(leader.removePeer(gone, (o) => outcome.push(o)).ok).toBe(true);
        expect(c.runUntil(() => outcome.length > 0)).toBe(true);
        expect(outcome).toEqual(["committed"]);
        expect(leader.peers).not.toContain(gone);
        // With the removed node and one more down, three of four voters remain: still a majority.
        const another = [...c.members.keys()].find((id) => id !== leader.id && id !== gone)!;
        c.crash(another);
        const goneTerm = c.node(gone).term;
        c.commit("after-removal");
        c.run(20_000);
        expect(leader.isLeader).toBe(true);
        expect(c.node(gone).term, "a removed node does not campaign").toBe(goneTerm);
      });
    }
  });

  it("removes the leader itself: it steps down once the change commits and another leads at once", () => {
    for (const seed of seeds(1700, 5)) {
      withSeed(seed, () => {
        const c = new SimCluster({ seed, size: 3 });
        const leader = c.waitForLeader();
        c.commit("before");
        const outcome: ProposalOutcome[] = [];
        expect(leader.removePeer(leader.id, (o) => outcome.push(o)).ok).toBe(true);
        const start = c.clock.now();
        expect(c.runUntil(() => outcome.length > 0 && c.leader() !== undefined && c.leader()!.id !== leader.id, 10_000)).toBe(true);
        expect(outcome).toEqual(["committed"]);
        expect(leader.isLeader).toBe(false);
        expect(c.clock.now() - start).toBeLessThan(1000); // handed over, no election timeout waited
        c.commit("after");
        const rest = [...c.members.keys()].filter((id) => id !== leader.id);
        for (const id of rest) expect([...c.node(id).peers].sort()).toEqual(rest.sort());
        c.run(10_000);
        expect(c.member(rest[0]!).machine.values()).toEqual(["before", "after"]);
      });
    }
  });

  it("one change at a time, and not before the leader committed in its term", () => {
    withSeed(1800, (seed) => {
      const c = new SimCluster({ seed, size: 3 });
      const leader = c.waitForLeader();
      c.add("n4");
      c.add("n5");
      expect(leader.addPeer("n4").ok).toBe(true);
      expect(leader.addPeer("n5")).toEqual({ ok: false, error: "membership change in progress" });
      expect(leader.addPeer("n4")).toEqual({ ok: false, error: "already a peer" });
      expect(leader.removePeer("n9")).toEqual({ ok: false, error: "not a peer" });
      c.run(2_000);
      expect(leader.addPeer("n5").ok).toBe(true);
      c.run(2_000);
      expect([...leader.peers].sort()).toEqual(["n1", "n2", "n3", "n4", "n5"]);
      c.waitConverged();
    });
  });

  it("random adds and removes under faults keep every safety check and converge", () => {
    for (const seed of seeds(1900, 10)) {
      withSeed(seed, () => {
        const c = new SimCluster({ seed, size: 3, faults: STORMY });
        const pool = ["n1", "n2", "n3", "n4", "n5"];
        c.add("n4");
        c.add("n5");
        c.waitForLeader();
        let n = 0;
        for (let round = 0; round < 60; round++) {
          c.run(100 + c.rng.int(400));
          const l = c.leader();
          if (!l) continue;
          c.propose(`v${n++}`);
          if (c.rng.chance(0.25)) {
            const id = c.rng.pick(pool);
            if (l.peers.includes(id)) {
              if (l.peers.length > 2) l.removePeer(id);
            } else {
              l.addPeer(id);
            }
          }
          if (c.rng.chance(0.1)) {
            const m = c.rng.pick(c.up());
            if (m.node.lastApplied > m.node.snapshotIndex) m.node.snapshot(m.node.lastApplied, m.machine.snapshotData());
          }
        }
        c.net.faults = { ...STORMY, dropRate: 0, duplicateRate: 0 };
        c.commit("final", 60_000);
        // Converged among the voters (a removed node may stop hearing from the leader: nobody sends to it).
        // The leader that committed "final" may have removed itself meanwhile: wait for the group's leader.
        const l = c.waitForLeader();
        expect(c.runUntil(() => l.peers.every((id) => c.node(id).lastApplied === l.lastIndex), 30_000)).toBe(true);
        c.checkLogs();
        const state = c.member(l.id).machine.values();
        for (const id of l.peers) expect(c.member(id).machine.values()).toEqual(state);
      });
    }
  });
});
