// The bounded fuzz run of the CI (part of `npm test`): a fixed number of cases from every family against
// a live natter (JetStream and WebSocket on), with the seed printed. FUZZ_SEED repeats a run, FUZZ_CASES
// changes its size; a failure writes its input to a file (printed) that `bun test/fuzz/run.ts --replay`
// runs again. The long run is `npm run fuzz` (test/fuzz/run.ts).
import os from "node:os";
import path from "node:path";
import { expect, onTestFinished, test } from "vitest";
import { Engine } from "./engine.ts";
import { newSeed } from "./prng.ts";

const CASES = Number(process.env.FUZZ_CASES ?? 2000);
// CI uses one fixed seed so a landing never depends on luck; elsewhere each run explores a new one
// (printed in the test name; rerun with FUZZ_SEED). `npm run fuzz` is the long, random run.
const seed = process.env.FUZZ_SEED ?? (process.env.CI ? "5eed00c1a7733201" : newSeed());

test(`fuzz: ${CASES} cases against a live server (seed ${seed})`, { timeout: 60_000 }, async () => {
  const lines: string[] = [];
  const log = (line: string) => {
    lines.push(line);
    if (line.startsWith("FAILURE")) process.stderr.write(`${line}\n`);
  };
  process.stdout.write(`natter fuzz (CI): seed ${seed}, ${CASES} cases — repeat with FUZZ_SEED=${seed}\n`);
  const engine = new Engine({
    seed,
    cases: CASES,
    concurrency: 8,
    roundSize: 175,
    canaryIntervalMs: 100,
    // Generous: the CI runs other test files beside this one.
    canaryBoundMs: 3_000,
    rssGrowthMiB: 200,
    rssMaxMiB: 1_500,
    maxFailures: 10,
    outDir: path.join(os.tmpdir(), "natter-fuzz-failures"),
    maxPayload: 65_536,
    log,
  });
  // Whatever happens (a timeout too), the server and the canary are killed and the store removed.
  onTestFinished(() => engine.abort());
  const result = await engine.run();
  const summary = [
    `seed ${seed}: ${result.cases} cases in ${(result.durationMs / 1000).toFixed(1)} s; ${Object.entries(result.byFamily).map(([k, v]) => `${k} ${v}`).join(", ")}`,
    `canary: ${result.canary.rounds} round trips, max ${result.canary.maxMs.toFixed(0)} ms; RSS per round (MiB): ${result.rssKiB.map((k) => Math.round(k / 1024)).join(",")}`,
    ...result.failures.map((f) => `[${f.kind}]${f.repeats ? ` ×${f.repeats}` : ""} ${f.message.split("\n")[0]}${f.file ? `\n  input: ${f.file}\n  replay: bun test/fuzz/run.ts --replay ${f.file}` : ""}`),
  ].join("\n");
  process.stdout.write(`${summary}\n`);
  expect(result.failures, summary).toEqual([]);
  expect(result.cases).toBe(CASES);
});
