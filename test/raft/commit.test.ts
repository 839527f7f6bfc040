// Commitment: only a majority of the current term commits, and a minority never does.
import { describe, expect, it } from "vitest";
import type { ProposalOutcome } from "../../src/jetstream/cluster/raft-types.ts";
import { SimCluster, encodeText, seeds, withSeed } from "./sim.ts";

describe("raft: commitment", () => {
  it("a minority side of a partition commits nothing; after healing, its proposals are lost and the majority's kept", () => {
    for (const seed of seeds(300, 5)) {
      withSeed(seed, () => {
        const c = new SimCluster({ seed, size: 5 });
        const old = c.waitForLeader();
        c.commit("before");
        const others = [...c.members.keys()].filter((id) => id !== old.id);
        // The old leader and one follower on one side, three nodes on the other.
        c.net.partition([old.id, others[0]!], others.slice(1));
        const outcomes = new Map<string, ProposalOutcome>();
        const stale = old.propose(encodeText("minority"), (o) => outcomes.set("minority", o));
        expect(stale.ok).toBe(true);
        const commitBefore = old.commitIndex;
        expect(c.runUntil(() => others.slice(1).some((id) => c.node(id).isLeader))).toBe(true);
        c.commit("majority");
        c.run(5_000);
        expect(old.commitIndex, "the minority side's commit index").toBe(commitBefore);
        expect(c.node(others[0]!).commitIndex).toBe(commitBefore);
        // The old leader notices it lost its quorum and steps down.
        expect(old.isLeader).toBe(false);
        c.net.heal();
        c.waitConverged();
        expect(outcomes.get("minority")).toBe("lost");
        expect(c.member(old.id).machine.values()).toEqual(["before", "majority"]);
      });
    }
  });

  it("an entry of an earlier term is not committed by counting replicas (Raft paper, figure 8)", () => {
    for (const seed of seeds(400, 5)) {
      withSeed(seed, () => {
        const c = new SimCluster({ seed, size: 5, maxEntriesPerAppend: 1 });
        const s1 = c.waitForLeader();
        c.commit("base");
        const [a, b, cc, d] = [...c.members.keys()].filter((id) => id !== s1.id) as [string, string, string, string];
        const t1 = s1.term;

        // (a) X, of term t1, reaches only a (a minority).
        c.net.partition([s1.id, a], [b, cc, d]);
        expect(s1.propose(encodeText("X")).ok).toBe(true);
        const xIndex = s1.lastIndex;
        expect(c.runUntil(() => c.node(a).lastIndex === xIndex, 5_000)).toBe(true);

        // (b) s1 dies; b, c, d elect a leader (s5) whose entries reach nobody, and it dies too.
        c.crash(s1.id);
        c.net.partition([a], [b, cc, d]);
        c.net.filter = (_from, _to, m) => m.type !== "append";
        expect(c.runUntil(() => [b, cc, d].some((id) => c.node(id).isLeader), 30_000)).toBe(true);
        const s5 = [b, cc, d].find((id) => c.node(id).isLeader)!;
        const t2 = c.node(s5).term;
        expect(c.node(s5).termAt(xIndex)).toBe(t2);
        c.crash(s5);
        const [e, f] = [b, cc, d].filter((id) => id !== s5) as [string, string];

        // (c) s1 comes back and leads again (or a does: both hold X); X reaches e and f, a majority,
        // but none of the new leader's own entries get out.
        c.net.partition([s1.id, a, e, f], [s5]);
        c.restart(s1.id);
        let t3 = 0;
        c.net.filter = (from, _to, m) => !(m.type === "append" && m.from === from && m.entries.some((x) => x.term === t3 && t3 > 0));
        expect(c.runUntil(() => [s1.id, a].some((id) => c.node(id).isLeader), 30_000)).toBe(true);
        const leader3 = [s1.id, a].find((id) => c.node(id).isLeader)!;
        t3 = c.node(leader3).term;
        expect(t3).toBeGreaterThan(t2);
        expect(c.runUntil(() => c.node(e).termAt(xIndex) === t1 && c.node(f).termAt(xIndex) === t1, 10_000)).toBe(true);
        c.run(20);
        // X is on 4 of 5 nodes but of an earlier term: not committed.
        expect(c.node(leader3).commitIndex).toBeLessThan(xIndex);

        // (d) That leader dies; s5, whose log ends in a later term than X, can win and overwrite X. Had X
        // been committed, SimCluster's leader completeness check would throw here.
        c.crash(leader3);
        c.net.filter = undefined;
        const rest = [s1.id, a].find((id) => id !== leader3)!;
        c.crash(rest);
        c.net.heal();
        c.restart(s5);
        expect(c.runUntil(() => c.node(s5).isLeader, 30_000)).toBe(true);
        expect(c.node(s5).termAt(xIndex)).toBe(t2);

        c.restart(leader3);
        c.restart(rest);
        c.commit("after");
        c.waitConverged();
        expect(c.member(a).machine.values()).toEqual(["base", "after"]);
      });
    }
  });
});
