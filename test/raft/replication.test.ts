// Replication: a diverged follower is made to match the leader in a few round trips (fast
// backtracking), and a follower far behind catches up through the flow-controlled pipeline.
import { describe, expect, it } from "vitest";
import { RaftNode, systemClock } from "../../src/jetstream/cluster/raft.ts";
import { MemoryRaftStorage } from "../../src/jetstream/cluster/raft-memory-storage.ts";
import { EntryType, type AppendResponse } from "../../src/jetstream/cluster/raft-types.ts";
import { SimClock, SimCluster, encodeText, seeds, withSeed } from "./sim.ts";

describe("raft: log matching", () => {
  it("a follower with a long conflicting tail is made to match in a few round trips", () => {
    for (const seed of seeds(2100, 5)) {
      withSeed(seed, () => {
        const c = new SimCluster({ seed, size: 3 });
        const old = c.waitForLeader();
        c.commit("common");
        const others = [...c.members.keys()].filter((id) => id !== old.id);
        // The old leader, alone, appends 60 entries of its term that nobody else gets.
        c.net.partition([old.id], others);
        for (let i = 0; i < 60; i++) old.propose(encodeText(`doomed${i}`));
        expect(c.runUntil(() => others.some((id) => c.node(id).isLeader))).toBe(true);
        // The majority writes 40 entries of a later term, then elects again (two terms to skip).
        for (let i = 0; i < 40; i++) c.commit(`kept${i}`);
        c.leader()!.stepDown();
        expect(c.runUntil(() => others.some((id) => c.node(id).isLeader && c.node(id).termAt(c.node(id).commitIndex) === c.node(id).term))).toBe(true);
        const rejections: AppendResponse[] = [];
        c.net.filter = (from, _to, m) => {
          if (from === old.id && m.type === "appendResp" && !m.success && m.term === c.leader()!.term) rejections.push(m);
          return true;
        };
        c.net.heal();
        c.waitConverged();
        // One step per conflicting term at most (and one more for an append in flight), not one per entry.
        expect(rejections.length).toBeLessThanOrEqual(4);
        const leader = c.leader()!;
        for (let i = 1; i <= leader.lastIndex; i++) expect(old.entryAt(i)).toEqual(leader.entryAt(i));
        expect(c.member(old.id).machine.values()).toEqual(["common", ...Array.from({ length: 40 }, (_, i) => `kept${i}`)]);
      });
    }
  });

  it("a follower far behind catches up through a small pipeline", () => {
    withSeed(2200, (seed) => {
      const c = new SimCluster({ seed, size: 3, maxEntriesPerAppend: 4 });
      const leader = c.waitForLeader();
      const behind = [...c.members.keys()].find((id) => id !== leader.id)!;
      c.crash(behind);
      for (let i = 0; i < 400; i++) leader.propose(encodeText(`v${i}`));
      c.run(5_000);
      c.restart(behind);
      c.waitConverged();
      expect(c.member(behind).machine.values()).toHaveLength(400);
    });
  });
});

describe("raft: with the system clock", () => {
  it("a single node on real timers elects itself and commits", async () => {
    const applied: string[] = [];
    const node = new RaftNode({
      id: "solo",
      peers: ["solo"],
      storage: new MemoryRaftStorage(),
      transport: { send() {} },
      clock: systemClock,
      random: Math.random,
      timing: { heartbeatMs: 5, electionTimeoutMinMs: 10, electionTimeoutMaxMs: 20, quorumLostMs: 20 },
      stateMachine: { apply: (_i, d) => applied.push(new TextDecoder().decode(d)), restore() {} },
    });
    node.start();
    try {
      const deadline = Date.now() + 5_000;
      while (!node.isLeader && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      expect(node.isLeader).toBe(true);
      expect(node.propose(encodeText("hello")).ok).toBe(true);
      expect(applied).toEqual(["hello"]);
    } finally {
      node.stop();
    }
  });
});

describe("raft: batches", () => {
  it("a batch of proposals is one storage write and one message per follower, and each gets its outcome", () => {
    withSeed(2300, (seed) => {
      const c = new SimCluster({ seed, size: 3 });
      const leader = c.waitForLeader();
      const storage = c.member(leader.id).storage;
      let writes = 0;
      const append = storage.append.bind(storage);
      storage.append = (entries) => {
        writes++;
        append(entries);
      };
      let appends = 0;
      c.net.filter = (from, _to, m) => {
        if (from === leader.id && m.type === "append" && m.entries.length > 0) appends++;
        return true;
      };
      const outcomes: [string, number][] = [];
      const r = leader.proposeBatch([encodeText("a"), encodeText("b"), encodeText("c")], (o, i) => outcomes.push([o, i]));
      expect(r).toEqual({ ok: true, index: leader.lastIndex - 2, term: leader.term });
      expect(writes).toBe(1);
      expect(appends).toBe(2);
      expect(c.runUntil(() => outcomes.length === 3)).toBe(true);
      const first = (r as { index: number }).index;
      expect(outcomes).toEqual([["committed", first], ["committed", first + 1], ["committed", first + 2]]);
      c.waitConverged();
      expect(c.member("n1").machine.values()).toEqual(["a", "b", "c"]);
    });
  });
});

describe("raft: appends of bounded size", () => {
  it("a follower catching up is sent at most maxAppendBytes of commands per append (a larger entry alone)", () => {
    withSeed(2400, (seed) => {
      const c = new SimCluster({ seed, size: 3, maxAppendBytes: 1000 });
      const leader = c.waitForLeader();
      const behind = [...c.members.keys()].find((id) => id !== leader.id)!;
      const others = [...c.members.keys()].filter((id) => id !== behind);
      c.net.partition(others, [behind]);
      // 40 commands of 100 bytes and one of 3000 while it is away.
      for (let i = 0; i < 40; i++) c.commit(`${String(i).padStart(2, "0")}${"x".repeat(98)}`);
      c.commit("y".repeat(3000));
      let largest = 0;
      let carried = 0;
      c.net.filter = (from, to, m) => {
        if (from === leader.id && to === behind && m.type === "append" && m.entries.length > 0) {
          const bytes = m.entries.reduce((n, e) => n + (e.data?.length ?? 0), 0);
          if (m.entries.length > 1) largest = Math.max(largest, bytes);
          carried += m.entries.length;
        }
        return true;
      };
      c.net.heal();
      c.waitConverged();
      expect(carried).toBeGreaterThanOrEqual(41);
      expect(largest).toBeGreaterThan(0);
      expect(largest).toBeLessThanOrEqual(1000);
      expect(c.member(behind).machine.values().length).toBe(c.member(leader.id).machine.values().length);
    });
  });
});

describe("raft: a follower's answer before its applies", () => {
  it("with applyLater, a follower answers an append before it applies what the append committed", () => {
    const sent: string[] = [];
    const applied: string[] = [];
    const later: (() => void)[] = [];
    const node = new RaftNode({
      id: "n2",
      peers: ["n1", "n2", "n3"],
      storage: new MemoryRaftStorage(),
      transport: { send: (_to, m) => void sent.push(m.type) },
      clock: new SimClock(),
      random: () => 0.5,
      applyLater: (run) => void later.push(run),
      stateMachine: { apply: (_i, d) => void applied.push(new TextDecoder().decode(d)), restore() {} },
    });
    node.start();
    const entries = ["a", "b"].map((v, k) => ({ index: k + 1, term: 1, type: EntryType.Command, data: encodeText(v) }));
    node.receive({ type: "append", from: "n1", term: 1, prevLogIndex: 0, prevLogTerm: 0, entries, commit: 2, round: 1 });
    expect(sent).toEqual(["appendResp"]);
    expect(applied).toEqual([]);
    expect(node.commitIndex).toBe(2);
    // A second append before the queued apply ran: one apply run covers both.
    node.receive({ type: "append", from: "n1", term: 1, prevLogIndex: 2, prevLogTerm: 1, entries: [{ index: 3, term: 1, type: EntryType.Command, data: encodeText("c") }], commit: 3, round: 2 });
    expect(later.length).toBe(1);
    later.shift()!();
    expect(applied).toEqual(["a", "b", "c"]);
    expect(node.lastApplied).toBe(3);
    node.stop();
  });
});
