// Leadership: stepdown (transfer to a caught-up peer), quorum lost, linearizable reads (read index),
// and proposals' outcomes.
import { describe, expect, it } from "vitest";
import { DEFAULT_TIMING } from "../../src/jetstream/cluster/raft.ts";
import type { ProposalOutcome } from "../../src/jetstream/cluster/raft-types.ts";
import { SimCluster, STORMY, encodeText, seeds, withSeed } from "./sim.ts";

describe("raft: stepdown", () => {
  it("hands leadership to another node well before an election timeout, losing nothing", () => {
    for (const seed of seeds(1100, 10)) {
      withSeed(seed, () => {
        const c = new SimCluster({ seed, size: 3 });
        const old = c.waitForLeader();
        for (let i = 0; i < 10; i++) c.commit(`v${i}`);
        const term = old.term;
        const started = c.clock.now();
        expect(old.stepDown()).toBe(true);
        expect(old.propose(encodeText("during"))).toEqual({ ok: false, error: "leadership transfer in progress" });
        expect(c.runUntil(() => !old.isLeader && c.leader() !== undefined, 5_000)).toBe(true);
        expect(c.clock.now() - started).toBeLessThan(DEFAULT_TIMING.electionTimeoutMinMs);
        expect(c.leader()!.term).toBe(term + 1);
        expect(old.isLeader).toBe(false);
        c.commit("after");
        c.waitConverged();
        expect(c.member(old.id).machine.values()).toEqual([...Array.from({ length: 10 }, (_, i) => `v${i}`), "after"]);
      });
    }
  });

  it("to a preferred peer, first bringing it up to date", () => {
    for (const seed of seeds(1150, 5)) {
      withSeed(seed, () => {
        const c = new SimCluster({ seed, size: 5 });
        const old = c.waitForLeader();
        const target = [...c.members.keys()].find((id) => id !== old.id)!;
        // The target misses the last entries, so it must catch up before it can be handed over to.
        c.net.partition([target], [...c.members.keys()].filter((id) => id !== target));
        for (let i = 0; i < 5; i++) c.commit(`v${i}`);
        c.net.heal();
        expect(c.node(target).lastIndex).toBeLessThan(old.lastIndex);
        expect(old.stepDown(target)).toBe(true);
        expect(c.runUntil(() => c.node(target).isLeader, 5_000)).toBe(true);
        c.commit("after");
        c.waitConverged();
      });
    }
  });

  it("gives up and stays leader when the chosen peer never answers", () => {
    withSeed(1190, (seed) => {
      const c = new SimCluster({ seed, size: 3 });
      const old = c.waitForLeader();
      const [dead, alive] = [...c.members.keys()].filter((id) => id !== old.id) as [string, string];
      c.crash(dead);
      expect(old.stepDown(dead)).toBe(true);
      c.run(DEFAULT_TIMING.electionTimeoutMaxMs + 2 * DEFAULT_TIMING.heartbeatMs);
      expect(old.isLeader).toBe(true);
      expect(c.node(alive).leader).toBe(old.id);
      c.commit("still-leading");
    });
  });

  it("a single node has nobody to hand over to", () => {
    withSeed(1195, (seed) => {
      const c = new SimCluster({ seed, size: 1 });
      expect(c.waitForLeader().stepDown()).toBe(false);
    });
  });
});

describe("raft: quorum", () => {
  it("a leader cut off from the majority reports quorum lost and steps down; the majority elects another", () => {
    for (const seed of seeds(1200, 5)) {
      withSeed(seed, () => {
        const c = new SimCluster({ seed, size: 5 });
        const old = c.waitForLeader();
        expect(old.hasQuorum()).toBe(true);
        const others = [...c.members.keys()].filter((id) => id !== old.id);
        c.net.partition([old.id, others[0]!], others.slice(1));
        const cut = c.clock.now();
        expect(c.runUntil(() => !old.isLeader, 10_000)).toBe(true);
        const lostAfter = c.clock.now() - cut;
        expect(lostAfter).toBeGreaterThanOrEqual(DEFAULT_TIMING.quorumLostMs - DEFAULT_TIMING.heartbeatMs);
        expect(lostAfter).toBeLessThanOrEqual(DEFAULT_TIMING.quorumLostMs + 2 * DEFAULT_TIMING.heartbeatMs);
        expect(c.quorumLost.get(old.id)).toBe(1);
        expect(old.hasQuorum()).toBe(false);
        expect(c.runUntil(() => others.slice(1).some((id) => c.node(id).isLeader))).toBe(true);
      });
    }
  });
});

describe("raft: linearizable reads", () => {
  it("read index: a leader confirms it still leads before serving; a deposed one never does", () => {
    for (const seed of seeds(1300, 5)) {
      withSeed(seed, () => {
        const c = new SimCluster({ seed, size: 3, faults: STORMY });
        const leader = c.waitForLeader();
        c.commit("x=1");
        let read: number | undefined | null = null;
        leader.readIndex((i) => (read = i));
        expect(c.runUntil(() => read !== null, 5_000)).toBe(true);
        expect(read).toBeGreaterThanOrEqual(leader.commitIndex - 0);
        expect(leader.lastApplied).toBeGreaterThanOrEqual(read as unknown as number);

        // Cut the leader off; a read asked now must not be served by it (others may write meanwhile).
        const others = [...c.members.keys()].filter((id) => id !== leader.id);
        c.net.partition([leader.id], others);
        let stale: number | undefined | null = null;
        leader.readIndex((i) => (stale = i));
        c.run(10_000);
        expect(stale).toBeUndefined();
        expect(leader.isLeader).toBe(false);
      });
    }
  });

  it("a follower is told to ask the leader", () => {
    withSeed(1350, (seed) => {
      const c = new SimCluster({ seed, size: 3 });
      const leader = c.waitForLeader();
      const follower = c.node([...c.members.keys()].find((id) => id !== leader.id)!);
      let got: number | undefined | null = null;
      follower.readIndex((i) => (got = i));
      expect(got).toBeUndefined();
    });
  });
});

describe("raft: proposals", () => {
  it("a follower refuses proposals; the leader gives index and term, then the outcome", () => {
    withSeed(1400, (seed) => {
      const c = new SimCluster({ seed, size: 3 });
      const leader = c.waitForLeader();
      const follower = c.node([...c.members.keys()].find((id) => id !== leader.id)!);
      expect(follower.propose(encodeText("no"))).toEqual({ ok: false, error: "not leader" });
      const outcomes: ProposalOutcome[] = [];
      const r = leader.propose(encodeText("yes"), (o) => outcomes.push(o));
      expect(r).toEqual({ ok: true, index: leader.lastIndex, term: leader.term });
      expect(c.runUntil(() => outcomes.length > 0)).toBe(true);
      expect(outcomes).toEqual(["committed"]);
    });
  });
});

describe("raft: stepdown on a lossy network", () => {
  it("a lost TimeoutNow is sent again; leadership moves within the transfer deadline", () => {
    for (const seed of seeds(1250, 5)) {
      withSeed(seed, () => {
        const c = new SimCluster({ seed, size: 3, faults: STORMY });
        const old = c.waitForLeader();
        let dropped = 0;
        c.net.filter = (_f, _t, m) => !(m.type === "timeoutNow" && dropped++ === 0); // lose the first one
        expect(old.stepDown()).toBe(true);
        expect(c.runUntil(() => !old.isLeader && c.leader() !== undefined, DEFAULT_TIMING.electionTimeoutMaxMs)).toBe(true);
        expect(dropped).toBeGreaterThanOrEqual(2);
      });
    }
  });
});
