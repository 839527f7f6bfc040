// Snapshots (compaction, a far-behind follower brought up by InstallSnapshot) and restarts from what a
// node persisted: in memory across a simulated crash, and in files in a temp dir.
import { mkdtempSync, rmSync, statSync, truncateSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { FileRaftStorage } from "../../src/jetstream/cluster/raft-file-storage.ts";
import type { RaftMessage } from "../../src/jetstream/cluster/raft-types.ts";
import { STORMY, SimCluster, seeds, withSeed } from "./sim.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe("raft: snapshots", () => {
  it("a follower far behind the leader's compacted log is sent the snapshot and catches up", () => {
    for (const seed of seeds(700, 5)) {
      withSeed(seed, () => {
        const c = new SimCluster({ seed, size: 3 });
        const leader = c.waitForLeader();
        const behind = [...c.members.keys()].find((id) => id !== leader.id)!;
        c.crash(behind);
        for (let i = 0; i < 100; i++) c.commit(`v${i}`);
        const lm = c.member(leader.id);
        leader.snapshot(leader.lastApplied, lm.machine.snapshotData());
        expect(leader.snapshotIndex).toBe(leader.lastApplied);
        for (let i = 100; i < 110; i++) c.commit(`v${i}`);

        const snapshotsSent: RaftMessage[] = [];
        c.net.filter = (_f, to, m) => {
          if (to === behind && m.type === "snapshot") snapshotsSent.push(m);
          return true;
        };
        c.restart(behind);
        c.waitConverged();
        expect(snapshotsSent.length).toBeGreaterThanOrEqual(1);
        expect(c.node(behind).snapshotIndex).toBe(leader.snapshotIndex);
        expect(c.member(behind).machine.values()).toEqual(Array.from({ length: 110 }, (_, i) => `v${i}`));
      });
    }
  });

  it("a follower with a conflicting uncommitted tail takes the snapshot and drops the tail", () => {
    for (const seed of seeds(750, 5)) {
      withSeed(seed, () => {
        const c = new SimCluster({ seed, size: 3 });
        const old = c.waitForLeader();
        c.commit("a");
        const others = [...c.members.keys()].filter((id) => id !== old.id);
        c.net.partition([old.id], others);
        for (let i = 0; i < 5; i++) old.propose(new TextEncoder().encode(`doomed${i}`));
        expect(c.runUntil(() => others.some((id) => c.node(id).isLeader))).toBe(true);
        for (let i = 0; i < 20; i++) c.commit(`b${i}`);
        const fresh = c.leader()!;
        fresh.snapshot(fresh.lastApplied, c.member(fresh.id).machine.snapshotData());
        let snapshotsToOld = 0;
        c.net.filter = (_f, to, m) => {
          if (to === old.id && m.type === "snapshot") snapshotsToOld++;
          return true;
        };
        c.net.heal();
        c.waitConverged();
        expect(snapshotsToOld).toBeGreaterThanOrEqual(1);
        expect(old.snapshotIndex).toBe(fresh.snapshotIndex);
        expect(c.member(old.id).machine.values()).toEqual(["a", ...Array.from({ length: 20 }, (_, i) => `b${i}`)]);
      });
    }
  });

  it("snapshots taken at random moments on lossy links keep every node's state equal", () => {
    for (const seed of seeds(780, 5)) {
      withSeed(seed, () => {
        const c = new SimCluster({ seed, size: 5, faults: STORMY, maxEntriesPerAppend: 4 });
        c.waitForLeader();
        for (let i = 0; i < 150; i++) {
          c.propose(`v${i}`);
          c.run(10 + c.rng.int(40));
          if (c.rng.chance(0.1)) {
            const m = c.rng.pick(c.up());
            if (m.node.lastApplied > m.node.snapshotIndex) m.node.snapshot(m.node.lastApplied, m.machine.snapshotData());
          }
          if (c.rng.chance(0.03)) {
            const m = c.rng.pick([...c.members.values()]);
            if (m.up) c.crash(m.id);
            else c.restart(m.id);
          }
        }
        for (const m of c.members.values()) if (!m.up) c.restart(m.id);
        c.commit("last");
        c.waitConverged();
      });
    }
  });
});

describe("raft: restart from persisted state", () => {
  it("memory storage: every node crashes and restarts; terms, votes, log and state come back", () => {
    for (const seed of seeds(800, 5)) {
      withSeed(seed, () => {
        const c = new SimCluster({ seed, size: 3 });
        c.waitForLeader();
        for (let i = 0; i < 30; i++) c.commit(`v${i}`);
        const one = c.member("n1");
        c.waitConverged();
        one.node.snapshot(one.node.lastApplied, one.machine.snapshotData());
        c.commit("v-after-snapshot");
        const before = new Map([...c.members.values()].map((m) => [m.id, { term: m.node.term, last: m.node.lastIndex }]));
        for (const id of c.members.keys()) c.crash(id);
        c.run(10_000);
        for (const id of c.members.keys()) c.restart(id);
        for (const [id, b] of before) {
          expect(c.node(id).term).toBe(b.term);
          expect(c.node(id).lastIndex).toBe(b.last);
        }
        c.commit("after");
        c.waitConverged();
        const expected = [...Array.from({ length: 30 }, (_, i) => `v${i}`), "v-after-snapshot", "after"];
        expect(c.member("n1").machine.values()).toEqual(expected);
        expect(c.member("n2").machine.values()).toEqual(expected);
      });
    }
  });

  it("file storage: a cluster on disk survives crashes of every node, and a torn log tail", () => {
    for (const seed of seeds(900, 2)) {
      withSeed(seed, () => {
        const root = mkdtempSync(path.join(tmpdir(), "raft-cluster-"));
        dirs.push(root);
        const c = new SimCluster({
          seed,
          size: 3,
          faults: STORMY,
          openStorage: (id) => new FileRaftStorage(path.join(root, id)),
        });
        c.waitForLeader();
        for (let i = 0; i < 40; i++) {
          c.commit(`v${i}`);
          if (i === 20) {
            const m = c.rng.pick(c.up());
            m.node.snapshot(m.node.lastApplied, m.machine.snapshotData());
          }
          if (c.rng.chance(0.1)) {
            const m = c.rng.pick(c.up());
            c.crash(m.id);
            c.run(c.rng.int(3000));
            c.restart(m.id);
          }
        }
        c.waitConverged();
        // Kill everybody; one node's log loses its last record halfway (a torn write).
        for (const id of c.members.keys()) c.crash(id);
        const log = path.join(root, "n1", "log");
        const size = statSync(log).size;
        if (size > 4) truncateSync(log, size - 4);
        for (const id of c.members.keys()) c.restart(id);
        c.commit("after");
        c.waitConverged();
        expect(c.member("n1").machine.values()).toEqual([...Array.from({ length: 40 }, (_, i) => `v${i}`), "after"]);
        for (const id of c.members.keys()) c.crash(id);
      });
    }
  });
});
