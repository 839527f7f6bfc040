// Random schedules of crashes, restarts, stalls, partitions (also one-way), snapshots and stepdowns over
// a lossy network, with clients proposing throughout. SimCluster checks election safety, leader
// completeness and state machine safety after every step and log matching every 200 steps; at the end
// every proposal reported committed is applied exactly once, on every node, in the same order, and none
// reported lost is.
import path from "node:path";
import { expect } from "vitest";
import { FileRaftStorage } from "../../src/jetstream/cluster/raft-file-storage.ts";
import type { ProposalOutcome } from "../../src/jetstream/cluster/raft-types.ts";
import { CALM, SimCluster, STORMY, encodeText } from "./sim.ts";

export interface ChaosOptions {
  size: number;
  durationMs: number;
  /** Mean pause between two random actions. */
  paceMs: number;
  /** Two more nodes exist, and voters are added and removed at random. */
  membership?: boolean;
  /** Nodes keep their state in files under this directory (FileRaftStorage) instead of memory. */
  dir?: string;
}

export function chaos(seed: number, { size, durationMs, paceMs, membership, dir }: ChaosOptions): void {
  const openStorage = dir ? (id: string) => new FileRaftStorage(path.join(dir, `${seed}`, id)) : undefined;
  const c = new SimCluster({ seed, size, faults: STORMY, maxEntriesPerAppend: 8, openStorage });
  const rng = c.rng;
  if (membership) {
    c.add(`n${size + 1}`);
    c.add(`n${size + 2}`);
  }
  const ids = [...c.members.keys()];
  const outcomes = new Map<string, ProposalOutcome>();
  let next = 0;
  const end = c.clock.now() + durationMs;
  while (c.clock.now() < end) {
    c.run(rng.int(2 * paceMs));
    const r = rng.next();
    if (r < 0.45) {
      // Every node that believes it leads gets a proposal: stale leaders' ones must end up lost.
      for (const m of c.up()) {
        if (!m.node.isLeader) continue;
        const values = Array.from({ length: 1 + rng.int(4) }, () => `s${seed}-${next++}`);
        if (rng.chance(0.5)) {
          const start = m.node.lastIndex + 1;
          m.node.proposeBatch(values.map(encodeText), (o, index) => outcomes.set(values[index - start]!, o));
        } else {
          for (const value of values) m.node.propose(encodeText(value), (o) => outcomes.set(value, o));
        }
      }
    } else if (r < 0.53) {
      const m = rng.pick(c.up());
      if (m) c.crash(m.id);
    } else if (r < 0.63) {
      const down = [...c.members.values()].filter((m) => !m.up);
      if (down.length > 0) c.restart(rng.pick(down).id);
    } else if (r < 0.69) {
      const shuffled = [...ids].sort(() => rng.next() - 0.5);
      const cut = 1 + rng.int(ids.length - 1);
      c.net.partition(shuffled.slice(0, cut), shuffled.slice(cut));
      c.note(`partition ${shuffled.slice(0, cut)} | ${shuffled.slice(cut)}`);
    } else if (r < 0.72) {
      const [from, to] = [rng.pick(ids), rng.pick(ids)];
      if (from !== to) {
        c.net.cutOneWay(from, to);
        c.note(`cut ${from} > ${to}`);
      }
    } else if (r < 0.76) {
      c.net.heal();
      c.note("heal");
    } else if (r < 0.84) {
      const m = rng.pick(c.up());
      if (m && m.node.lastApplied > m.node.snapshotIndex) {
        m.node.snapshot(m.node.lastApplied, m.machine.snapshotData());
        c.note(`${m.id} snapshot at ${m.node.lastApplied}`);
      }
    } else if (r < 0.87) {
      const l = c.leader();
      if (l?.stepDown()) c.note(`${l.id} steps down`);
    } else if (r < 0.9) {
      c.net.faults = rng.chance(0.5) ? CALM : STORMY;
    } else if (r < 0.93) {
      // A pause of the whole process (GC, an overloaded event loop), up to beyond an election timeout.
      const m = rng.pick(c.up());
      if (m) c.stall(m.id, rng.next() * 3000);
    } else if (r < 0.98 && membership) {
      const l = c.leader();
      const id = rng.pick(ids);
      if (l && !l.peers.includes(id)) l.addPeer(id);
      else if (l && l.peers.length > 2) l.removePeer(id);
    }
    c.checkLogs();
  }

  // Heal everything; the cluster must make progress and converge.
  c.net.heal();
  c.net.faults = CALM;
  for (const m of c.members.values()) if (!m.up) c.restart(m.id);
  c.waitForLeader(60_000);
  c.commit(`s${seed}-final`, 60_000);
  // (The commit may have carried a pending change that removes the leader: wait for the next one.)
  const leader = c.waitForLeader(60_000);
  const voters = [...leader.peers];
  // Every voter applies everything (a removed node may never hear of its removal: nobody sends to it).
  expect(c.runUntil(() => voters.every((id) => c.node(id).lastApplied === leader.lastIndex), 60_000)).toBe(true);
  c.checkLogs();
  const finalValues = c.member(leader.id).machine.values();
  for (const id of voters) expect(c.member(id).machine.values(), `${id} state`).toEqual(finalValues);

  const counts = new Map<string, number>();
  for (const v of finalValues) counts.set(v, (counts.get(v) ?? 0) + 1);
  for (const [v, n] of counts) expect(n, `${v} applied ${n} times`).toBe(1);
  for (const [v, o] of outcomes) {
    if (o === "committed") expect(counts.get(v), `${v} reported committed but not applied`).toBe(1);
    if (o === "lost") expect(counts.has(v), `${v} reported lost but applied`).toBe(false);
  }
  expect(finalValues.at(-1)).toBe(`s${seed}-final`);
  if (dir) for (const m of c.members.values()) if (m.up) c.crash(m.id); // closes the files
  if (process.env.RAFT_STATS) {
    const by = (o: ProposalOutcome) => [...outcomes.values()].filter((x) => x === o).length;
    console.log(
      `seed ${seed}: terms ${c.leadersByTerm.size}, applied ${finalValues.length}, committed ${by("committed")}, lost ${by("lost")}, unknown ${by("unknown")}, undecided ${next - outcomes.size}, steps ${c.steps}`,
    );
  }
}

