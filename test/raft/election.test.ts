// Elections: one leader per term (checked by SimCluster after every step), failover time, pre-vote and
// the leader lease keeping a healthy leader in place, and a node's vote rules seen message by message.
import { describe, expect, it } from "vitest";
import { DEFAULT_TIMING, LEADER_LOST_DELAY_MS, RaftNode } from "../../src/jetstream/cluster/raft.ts";
import { MemoryRaftStorage } from "../../src/jetstream/cluster/raft-memory-storage.ts";
import { EntryType, type RaftMessage, type VoteResponse } from "../../src/jetstream/cluster/raft-types.ts";
import { CALM, SimClock, SimCluster, seeds, withSeed } from "./sim.ts";

/**
 * Kill → a new leader has committed in its term (it can take publishes), in simulated ms, over 40 seeds from
 * `firstSeed`, sorted; `afterCrash` runs right after the leader dies.
 */
function failoverTimes(firstSeed: number, afterCrash: (c: SimCluster, dead: string) => void = () => {}): number[] {
  const failovers: number[] = [];
  for (const seed of seeds(firstSeed, 40)) {
    withSeed(seed, () => {
      const c = new SimCluster({ seed, size: 3, faults: { ...CALM, maxDelayMs: 2 } });
      const old = c.waitForLeader();
      c.run(c.rng.int(1000));
      const killedAt = c.clock.now();
      c.crash(old.id);
      afterCrash(c, old.id);
      const ok = c.runUntil(() => {
        const l = c.leader();
        return !!l && l.id !== old.id && l.termAt(l.commitIndex) === l.term;
      }, 20_000);
      expect(ok).toBe(true);
      failovers.push(c.clock.now() - killedAt);
    });
  }
  return failovers.sort((a, b) => a - b);
}

describe("raft: elections", () => {
  it("a new leader takes over within the election timeout after the leader dies (median ≤ 2 s)", () => {
    const failovers = failoverTimes(500);
    const median = failovers[Math.floor(failovers.length / 2)]!;
    if (process.env.RAFT_STATS) console.log(`failover (simulated ms): median ${median.toFixed(0)}, max ${failovers.at(-1)!.toFixed(0)}`);
    expect(median).toBeLessThanOrEqual(2000);
    expect(failovers.at(-1)!).toBeLessThan(DEFAULT_TIMING.electionTimeoutMaxMs * 3);
  });

  it("a follower told its leader's connection closed (peerUnreachable) campaigns at once: failover well under the election timeout", () => {
    // Each survivor's route to the dead node closes within a few ms (its own loop reads the close).
    const failovers = failoverTimes(560, (c, dead) => {
      for (const m of c.up()) c.clock.setTimer(c.rng.int(20), () => m.node.peerUnreachable(dead));
    });
    const median = failovers[Math.floor(failovers.length / 2)]!;
    if (process.env.RAFT_STATS) console.log(`failover on a closed route (simulated ms): median ${median.toFixed(0)}, max ${failovers.at(-1)!.toFixed(0)}`);
    expect(median).toBeLessThan(LEADER_LOST_DELAY_MS[1] + 100);
    expect(failovers.at(-1)!).toBeLessThan(DEFAULT_TIMING.electionTimeoutMaxMs * 3);
  });

  it("a follower that alone lost its link to a healthy leader (peerUnreachable) deposes nobody: the others still hear the leader", () => {
    for (const seed of seeds(580, 10)) {
      withSeed(seed, () => {
        const c = new SimCluster({ seed, size: 3 });
        const leader = c.waitForLeader();
        const term = leader.term;
        const lonely = [...c.members.keys()].find((id) => id !== leader.id)!;
        c.net.cutOneWay(leader.id, lonely);
        c.net.cutOneWay(lonely, leader.id);
        c.node(lonely).peerUnreachable(leader.id);
        c.run(5_000);
        expect(leader.isLeader).toBe(true);
        expect(leader.term).toBe(term);
        c.commit("while-cut");
        c.net.heal();
        c.run(3_000);
        expect(leader.isLeader).toBe(true);
        expect(leader.term).toBe(term);
        c.waitConverged();
      });
    }
  });

  it("pre-vote: a node cut off for a long time does not inflate its term or depose the leader when it returns", () => {
    for (const seed of seeds(600, 10)) {
      withSeed(seed, () => {
        const c = new SimCluster({ seed, size: 3 });
        const leader = c.waitForLeader();
        const term = leader.term;
        const lonely = [...c.members.keys()].find((id) => id !== leader.id)!;
        c.net.partition([lonely], [...c.members.keys()].filter((id) => id !== lonely));
        c.run(30_000); // fifteen or more election timeouts
        expect(c.node(lonely).term, "the cut-off node's term").toBe(term);
        expect(c.node(lonely).role).toBe("precandidate");
        c.commit("while-apart");
        c.net.heal();
        c.run(5_000);
        expect(leader.isLeader).toBe(true);
        expect(leader.term).toBe(term);
        expect(c.node(lonely).leader).toBe(leader.id);
        c.waitConverged();
      });
    }
  });

  it("stalls shorter than the election timeout (GC, a busy event loop) never cause an election", () => {
    for (const seed of seeds(630, 5)) {
      withSeed(seed, () => {
        const c = new SimCluster({ seed, size: 3 });
        const leader = c.waitForLeader();
        const term = leader.term;
        for (let i = 0; i < 30; i++) {
          // Anyone, the leader included, freezes for up to 700 ms (< 1 s minus a heartbeat).
          c.stall(c.rng.pick([...c.members.keys()]), c.rng.next() * 700);
          c.run(1_000 + c.rng.int(1_000));
        }
        expect(leader.isLeader).toBe(true);
        expect(Math.max(...c.up().map((m) => m.node.term))).toBe(term);
      });
    }
  });

  it("every node frozen at once for longer than the election timeout (a loaded machine) wakes without an election", () => {
    for (const seed of seeds(660, 5)) {
      withSeed(seed, () => {
        const c = new SimCluster({ seed, size: 3 });
        const leader = c.waitForLeader();
        const term = leader.term;
        for (let i = 0; i < 10; i++) {
          // One machine's processes: stalled together for 1–3 s, waking within 50 ms of each other. Each
          // wakes with its timers overdue and what the others sent still unread.
          const ms = 1_000 + c.rng.next() * 2_000;
          for (const id of c.members.keys()) c.stall(id, ms + c.rng.next() * 50);
          c.run(4_000 + c.rng.int(1_000));
        }
        expect(leader.isLeader).toBe(true);
        expect(Math.max(...c.up().map((m) => m.node.term))).toBe(term);
      });
    }
  });

  it("a follower frozen for longer than the election timeout wakes without deposing the leader", () => {
    for (const seed of seeds(640, 5)) {
      withSeed(seed, () => {
        const c = new SimCluster({ seed, size: 3 });
        const leader = c.waitForLeader();
        const follower = [...c.members.keys()].find((id) => id !== leader.id)!;
        c.stall(follower, 5_000);
        c.commit("meanwhile");
        c.run(10_000);
        expect(leader.isLeader).toBe(true);
        expect(Math.max(...c.up().map((m) => m.node.term))).toBe(leader.term);
        c.waitConverged();
      });
    }
  });

  it("a follower that still hears its leader ignores a vote request of a higher term (lease)", () => {
    for (const seed of seeds(650, 5)) {
      withSeed(seed, () => {
        const c = new SimCluster({ seed, size: 3 });
        const leader = c.waitForLeader();
        const [f1, f2] = [...c.members.keys()].filter((id) => id !== leader.id) as [string, string];
        const sent: RaftMessage[] = [];
        c.net.filter = (from, _to, m) => {
          if (from === f2) sent.push(m);
          return true;
        };
        // A real (not pre-) vote request, e.g. from a node that missed the election.
        c.node(f2).receive({ type: "vote", from: f1, term: leader.term + 5, lastLogIndex: 1000, lastLogTerm: 1000, preVote: false, transfer: false });
        expect(c.node(f2).term).toBe(leader.term);
        expect(sent.filter((m) => m.type === "voteResp")).toEqual([]);
        c.run(3_000);
        expect(leader.isLeader).toBe(true);
      });
    }
  });
});

/** One node with a hand-driven clock and a transport that records what it sends. */
function lonelyNode(id = "a", peers = ["a", "b", "c"], storage = new MemoryRaftStorage()) {
  const clock = new SimClock();
  const sent: { to: string; m: RaftMessage }[] = [];
  const node = new RaftNode({
    id,
    peers,
    storage,
    clock,
    random: () => 0.5,
    transport: { send: (to, m) => sent.push({ to, m }) },
    stateMachine: { apply() {}, restore() {} },
  });
  node.start();
  return { node, clock, sent, storage };
}

const vote = (from: string, term: number, lastLogIndex: number, lastLogTerm: number, preVote = false): RaftMessage => ({
  type: "vote",
  from,
  term,
  lastLogIndex,
  lastLogTerm,
  preVote,
  transfer: false,
});

function lastVote(sent: { m: RaftMessage }[]): VoteResponse {
  const r = sent.filter((s) => s.m.type === "voteResp").at(-1)?.m;
  if (!r) throw new Error("no vote response");
  return r as VoteResponse;
}

describe("raft: vote rules, message by message", () => {
  it("grants one vote per term, and remembers it across a restart", () => {
    const { node, sent, storage } = lonelyNode();
    node.receive(vote("b", 1, 0, 0));
    expect(lastVote(sent)).toMatchObject({ granted: true, term: 1 });
    node.receive(vote("c", 1, 0, 0));
    expect(lastVote(sent)).toMatchObject({ granted: false, term: 1 });
    node.receive(vote("b", 1, 0, 0)); // a duplicate of the granted one
    expect(lastVote(sent)).toMatchObject({ granted: true });
    node.stop();
    const again = lonelyNode("a", ["a", "b", "c"], storage);
    again.node.receive(vote("c", 1, 0, 0));
    expect(lastVote(again.sent)).toMatchObject({ granted: false, term: 1 });
  });

  it("refuses a candidate whose log is behind (last term lower, or same term and shorter)", () => {
    const storage = new MemoryRaftStorage();
    storage.saveHardState({ term: 3, votedFor: "" });
    storage.append([
      { index: 1, term: 1, type: EntryType.Noop },
      { index: 2, term: 3, type: EntryType.Noop },
      { index: 3, term: 3, type: EntryType.Noop },
    ]);
    const { node, sent } = lonelyNode("a", ["a", "b", "c"], storage);
    node.receive(vote("b", 4, 10, 2));
    expect(lastVote(sent)).toMatchObject({ granted: false, term: 4 });
    node.receive(vote("c", 5, 2, 3));
    expect(lastVote(sent)).toMatchObject({ granted: false, term: 5 });
    node.receive(vote("c", 5, 3, 3));
    expect(lastVote(sent)).toMatchObject({ granted: true, term: 5 });
  });

  it("a pre-vote changes no term and no vote", () => {
    const { node, sent, storage } = lonelyNode();
    node.receive(vote("b", 7, 0, 0, true));
    expect(lastVote(sent)).toMatchObject({ granted: true, preVote: true, term: 7 });
    expect(node.term).toBe(0);
    expect(storage.load().hard).toEqual({ term: 0, votedFor: "" });
    node.receive(vote("c", 7, 0, 0));
    expect(lastVote(sent)).toMatchObject({ granted: true, preVote: false, term: 7 });
  });

  it("a node not in its own voter set never campaigns", () => {
    const { node, clock, sent } = lonelyNode("d", []);
    while (clock.now() < 60_000 && clock.step());
    expect(sent.filter((s) => s.m.type === "vote")).toEqual([]);
    expect(node.term).toBe(0);
  });
});

describe("raft: counting votes, message by message", () => {
  /** Runs the lonely node's clock until its election timer fires (it turns pre-candidate). */
  function untilPreCandidate(clock: SimClock, node: RaftNode): void {
    while (node.role !== "precandidate" && clock.step());
  }
  const grant = (from: string, term: number, preVote: boolean): RaftMessage => ({ type: "voteResp", from, term, preVote, granted: true });

  it("only votes of voters count, pre-votes first, then votes", () => {
    const { node, clock, sent } = lonelyNode();
    untilPreCandidate(clock, node);
    expect(sent.filter((s) => s.m.type === "vote").map((s) => s.to).sort()).toEqual(["b", "c"]);
    node.receive(grant("x", 1, true));
    node.receive(grant("y", 1, true));
    expect(node.role).toBe("precandidate");
    node.receive(grant("b", 1, true));
    expect(node.role).toBe("candidate");
    expect(node.term).toBe(1);
    node.receive(grant("x", 1, false));
    node.receive(grant("y", 1, false));
    expect(node.role).toBe("candidate");
    node.receive(grant("c", 1, false));
    expect(node.role).toBe("leader");
  });

  it("a leader that learns of a higher term from a follower's answer steps down", () => {
    const { node, clock } = lonelyNode();
    untilPreCandidate(clock, node);
    node.receive(grant("b", 1, true));
    node.receive(grant("b", 1, false));
    expect(node.role).toBe("leader");
    node.receive({ type: "appendResp", from: "c", term: 9, success: false, matchIndex: 0, rejectedIndex: 0, conflictTerm: 0, conflictIndex: 0, round: 1 });
    expect(node.role).toBe("follower");
    expect(node.term).toBe(9);
  });
});
