// The long version of the chaos tests: many seeds, as a script (not part of the suite).
//   npx bun test/raft/sweep.ts [--seeds N] [--from SEED] [--profile NAME]
// Prints each failing seed (replay it with RAFT_SEED=<seed> and the test named in the output).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { chaos, type ChaosOptions } from "./chaos.ts";
import { withSeed } from "./sim.ts";

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const count = arg("seeds", 500);
const from = arg("from", 100_000);

const profiles: [string, ChaosOptions][] = [
  ["3 nodes", { size: 3, durationMs: 60_000, paceMs: 200 }],
  ["5 nodes", { size: 5, durationMs: 60_000, paceMs: 200 }],
  ["3 nodes, fast faults", { size: 3, durationMs: 30_000, paceMs: 40 }],
  ["membership", { size: 3, durationMs: 60_000, paceMs: 150, membership: true }],
];
const dir = mkdtempSync(path.join(tmpdir(), "raft-sweep-"));
profiles.push(["files", { size: 3, durationMs: 30_000, paceMs: 150, dir }]);
const only = process.argv.indexOf("--profile");
if (only >= 0) profiles.splice(0, profiles.length, ...profiles.filter(([name]) => name === process.argv[only + 1]));

let failures = 0;
const started = performance.now();
for (const [name, options] of profiles) {
  for (let seed = from; seed < from + count; seed++) {
    try {
      withSeed(seed, () => chaos(seed, options));
    } catch (error) {
      failures++;
      console.log(`FAIL ${name} ${JSON.stringify(options)}\n${(error as Error).message.split("\n").slice(0, 40).join("\n")}\n`);
    }
  }
  console.log(`${name}: ${count} seeds from ${from} done (${((performance.now() - started) / 1000).toFixed(1)} s)`);
}
rmSync(dir, { recursive: true, force: true });
console.log(failures === 0 ? "all seeds passed" : `${failures} failures`);
process.exit(failures === 0 ? 0 : 1);
