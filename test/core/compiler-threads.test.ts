// JavaScriptCore's compiler threads at a lower priority than the event loop (src/compiler-threads.ts, issue 20:
// paced one-way p99). natter only, Linux only: nats-server has no JIT, and the priority is set per thread
// through /proc and setpriority.
import { readFileSync, readdirSync } from "node:fs";
import { afterEach, describe, expect, test } from "vitest";
import { connectReady, waitFor } from "../harness/raw.ts";
import { serverKind, startServer } from "../harness/server.ts";

interface Thread {
  tid: number;
  name: string;
  nice: number;
}

/** The threads of a process: id, name and nice value (/proc/<pid>/task/<tid>/stat, field 19). */
function threads(pid: number): Thread[] {
  const found: Thread[] = [];
  for (const entry of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${entry}/stat`, "latin1");
      const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" "); // from field 3 (state) on
      found.push({ tid: Number(entry), name, nice: Number(fields[19 - 3]) });
    } catch {} // ended meanwhile
  }
  return found;
}

const compilers = (pid: number) => threads(pid).filter((t) => t.name === "JITWorker");
const WARMED = /Hot path warmed up/;

describe.skipIf(serverKind !== "natter" || process.platform !== "linux")("the compiler threads' priority", () => {
  const saved = { rounds: process.env.NATTER_WARM_UP, nice: process.env.NATTER_COMPILER_NICE };
  afterEach(() => {
    for (const [name, value] of [["NATTER_WARM_UP", saved.rounds], ["NATTER_COMPILER_NICE", saved.nice]] as const) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  });

  test("after the warm-up the compiler threads run at nice 10, the event loop as before; again for compiler threads started later", async () => {
    process.env.NATTER_WARM_UP = "60"; // the default (the suite's servers run without it: vitest.config.ts)
    delete process.env.NATTER_COMPILER_NICE;
    const server = await startServer({ debug: true });
    try {
      const pid = server.pid;
      const sub = await connectReady(server.port);
      sub.send("SUB prio.test 1\r\n"); // the first subscription starts the warm-up, whose compiles start the compiler threads
      await waitFor(() => WARMED.test(server.log()), 30_000, "the warm-up's log line");
      await waitFor(() => compilers(pid).length > 0 && compilers(pid).every((t) => t.nice === 10), 10_000, "compiler threads at nice 10");
      expect(threads(pid).find((t) => t.tid === pid)?.nice).toBe(0); // the event loop's thread
      expect(threads(pid).filter((t) => t.name !== "JITWorker").every((t) => t.nice === 0)).toBe(true);
      // The log line comes after the setpriority calls (and reaches the test through a pipe): waited for, not read at once.
      await waitFor(() => /Compiler threads at nice 10: \d+ more/.test(server.log()), 10_000, "the debug line");

      // Idle compiler threads end after a while (JavaScriptCore: ~10 s without work); the next compile starts new
      // ones at the event loop's priority, which the next look (every 2 s) lowers.
      const first = new Set(compilers(pid).map((t) => t.tid));
      await waitFor(() => compilers(pid).every((t) => !first.has(t.tid)), 40_000, "the idle compiler threads' end");
      const pub = await connectReady(server.port);
      let sent = 0;
      await waitFor(() => {
        // New code to compile: a new payload size and subject per round, until new compiler threads run.
        pub.send(`SUB prio.more.${sent} 9\r\n` + `PUB prio.more.${sent} 3\r\nabc\r\n`.repeat(2000));
        sent++;
        return compilers(pid).some((t) => !first.has(t.tid));
      }, 30_000, "new compiler threads", 200);
      await waitFor(() => compilers(pid).filter((t) => !first.has(t.tid)).every((t) => t.nice === 10), 10_000, "the new compiler threads at nice 10");
      pub.close();
      sub.close();
    } finally {
      await server.stop();
    }
  }, 120_000);

  test("NATTER_COMPILER_NICE=0 leaves them at the event loop's priority", async () => {
    process.env.NATTER_WARM_UP = "60";
    process.env.NATTER_COMPILER_NICE = "0";
    const server = await startServer({ debug: true });
    try {
      const pid = server.pid;
      const sub = await connectReady(server.port);
      sub.send("SUB prio.test 1\r\n");
      await waitFor(() => WARMED.test(server.log()), 30_000, "the warm-up's log line");
      await waitFor(() => compilers(pid).length > 0, 10_000, "compiler threads");
      // The lowering comes before the give-back of the executable's pages that follows the warm-up (src/main.ts):
      // once that is logged (the second time: the first is at start), it would have happened.
      await waitFor(() => server.log().split("Gave back the executable's resident pages").length > 2, 10_000, "the give-back after the warm-up");
      expect(compilers(pid).every((t) => t.nice === 0)).toBe(true);
      expect(server.log()).not.toMatch(/Compiler threads at nice/);
      sub.close();
    } finally {
      await server.stop();
    }
  }, 60_000);
});
