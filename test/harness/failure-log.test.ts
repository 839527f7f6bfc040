// A passing test prints none of its servers' output; a failing one prints all of it (spawned servers and
// in-process ones), under the test's name. Checked by running vitest on a fixture file with one of each.
import { spawnSync } from "node:child_process";
import path from "node:path";
import { expect, test } from "vitest";

const REPO = path.resolve(import.meta.dirname, "../..");

test("server output is shown for a failing test only", () => {
  const run = spawnSync(path.join(REPO, "node_modules/.bin/bun"), ["--bun", "vitest", "run", "--config", "test/harness/fixtures/vitest.config.ts", "--color=false"], {
    cwd: REPO,
    encoding: "utf8",
    timeout: 120_000,
    env: { ...process.env, NATTER_TEST_SERVER: "natter", FORCE_COLOR: "0" },
  });
  const output = run.stdout + run.stderr;
  expect(output).toMatch(/1 failed/);
  expect(output).toMatch(/1 passed/);
  expect(output).toContain("IN-PROCESS-LINE-OF-FAILING-TEST");
  expect(output).toContain("Name:     SPAWNED-IN-FAILING-TEST");
  expect(output).not.toContain("IN-PROCESS-LINE-OF-PASSING-TEST");
  expect(output).not.toContain("SPAWNED-IN-PASSING-TEST");
});
