// The fault schedule: a seeded list of episodes, each one fault that starts at `atMs` and is undone
// `forMs` later (kill -9 then restart; partition then heal; SIGSTOP then SIGCONT), one episode at a time,
// each hitting a minority of the nodes so that the cluster can make progress while it lasts. A target is
// a node index chosen here, or "leader": the stream's leader at the moment the fault starts (faults on
// the leader are the ones that test failover; they are chosen more often).
import { Rng } from "./random.ts";

export type FaultKind = "kill" | "partition" | "pause";
export type Target = "leader" | number;

export interface Episode {
  atMs: number;
  forMs: number;
  kind: FaultKind;
  /** The nodes killed, paused, or cut off from the rest (the minority side of a partition). */
  targets: Target[];
}

export interface ScheduleOptions {
  seed: number;
  nodes: number;
  durationMs: number;
  /** Partitions need network namespaces; without them only kills and pauses are scheduled. */
  partitions: boolean;
  /**
   * The kinds to draw from. Default: kill and partition; without namespaces a partition becomes a pause
   * (SIGSTOP/SIGCONT: a node cut off). Pauses with namespaces are opt-in.
   */
  faults?: FaultKind[];
  /** Chance that an episode's first target is the stream leader. */
  leaderBias?: number;
}

const WEIGHT: Record<FaultKind, number> = { kill: 0.5, partition: 0.4, pause: 0.3 };

const DURATION_MS: Record<FaultKind, [number, number]> = {
  kill: [1000, 5000],
  partition: [2000, 6000],
  pause: [1000, 4000],
};

export function generateSchedule(opts: ScheduleOptions): Episode[] {
  const rng = new Rng(opts.seed);
  const leaderBias = opts.leaderBias ?? 0.6;
  const minority = Math.max(1, Math.floor((opts.nodes - 1) / 2));
  // Without namespaces a pause stands in for a partition (a node nobody hears from for a while).
  const asked = opts.faults ?? ["kill", "partition"];
  const kinds = [...new Set(asked.map((k): FaultKind => (k === "partition" && !opts.partitions ? "pause" : k)))];
  if (kinds.length === 0) throw new Error("no fault kind to schedule");
  const total = kinds.reduce((sum, k) => sum + WEIGHT[k], 0);
  const weights: [FaultKind, number][] = kinds.map((k) => [k, WEIGHT[k] / total]);
  const episodes: Episode[] = [];
  let t = Math.round(rng.between(1000, 2500));
  while (t < opts.durationMs) {
    let r = rng.next();
    let kind: FaultKind = weights[0]![0];
    for (const [k, w] of weights) {
      if (r < w) {
        kind = k;
        break;
      }
      r -= w;
    }
    const count = rng.int(1, minority);
    const targets: Target[] = [];
    if (rng.chance(leaderBias)) targets.push("leader");
    while (targets.length < count) {
      const i = rng.int(0, opts.nodes - 1);
      if (!targets.includes(i)) targets.push(i);
    }
    const [lo, hi] = DURATION_MS[kind];
    const forMs = Math.round(rng.between(lo, hi));
    episodes.push({ atMs: t, forMs, kind, targets });
    t += forMs + Math.round(rng.between(1000, 3000));
  }
  return episodes;
}

export function formatSchedule(episodes: Episode[]): string {
  return episodes
    .map((e) => `  +${(e.atMs / 1000).toFixed(1)}s ${e.kind} [${e.targets.map((x) => (x === "leader" ? "leader" : `n${x}`)).join(", ")}] for ${(e.forMs / 1000).toFixed(1)}s`)
    .join("\n");
}
