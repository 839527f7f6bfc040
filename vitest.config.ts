import { defineConfig } from "vitest/config";

// Tests run under Bun (`bun --bun vitest run`). Vitest's forks pool needs a Node IPC
// feature Bun lacks, so workers are threads. Integration tests start real server
// processes; two workers keep a 2-core machine from being oversubscribed.
export default defineConfig({
  test: {
    pool: "threads",
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 30_000,
    include: ["test/**/*.test.ts"],
    // The servers the tests start skip the hot path's warm-up at their first client (src/warm-up.ts): ~120 ms
    // of CPU per server, for speed the tests do not measure. test/core/warm-up.test.ts turns it on for itself.
    env: { NATTER_WARM_UP: "0" },
  },
});
