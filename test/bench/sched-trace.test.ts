// bench/sched-trace.ts (used by bench/sched-tail.ts): the reading of a scheduler trace: which task ran while a thread waited for its CPU.
// Pure functions over `perf sched timehist` text: no perf, no server.
import { describe, expect, test } from "vitest";
import { chargeWaits, parseTimehist } from "../../bench/sched-trace.ts";

// time [cpu] task wait delay run: a line is printed when the task leaves the CPU (times s, durations ms).
const TRACE = `
           time    cpu  task name                       wait time  sch delay   run time
                        [tid/pid]                          (msec)     (msec)     (msec)
--------------- ------  ------------------------------  ---------  ---------  ---------
     100.000500 [0000]  bun[500]                            0.000      0.000      0.500
     100.002500 [0000]  JITWorker[501/500]                  0.000      0.000      2.000
     100.002600 [0000]  loadgen[700]                        2.100      2.000      0.100
     100.003000 [0001]  <idle>                              0.000      0.000      3.000
     100.003100 [0001]  loadgen[701/700]                    0.500      0.400      0.100
     100.003200 [0001]  kdamond.0[107]                      0.000      0.000      0.050
     100.003300 [0000]  bun[500]                            0.500      0.050      0.100
`;

describe("bench/sched-trace.ts", () => {
  test("reads timehist lines: threads, processes and the idle task", () => {
    const stretches = parseTimehist(TRACE);
    expect(stretches).toHaveLength(7);
    expect(stretches[1]).toEqual({ end: 100_002.5, cpu: 0, name: "JITWorker", tid: 501, pid: 500, delay: 0, run: 2 });
    expect(stretches[3]).toMatchObject({ name: "<idle>", cpu: 1 });
    expect(stretches[4]).toMatchObject({ name: "loadgen", tid: 701, pid: 700, delay: 0.4 });
  });

  test("charges a wait to what ran on that CPU meanwhile, and ignores short waits", () => {
    const waits = chargeWaits(parseTimehist(TRACE), 500, true, 700, 0, Infinity, 0.1);
    // The publisher waited 2 ms on CPU 0: 1.5 ms behind the server's compiler thread (the rest before the trace).
    expect(waits.loadgen.count).toBe(2);
    expect(waits.loadgen.behind["server, other threads"]).toBeCloseTo(2, 5);
    expect(waits.loadgen.names["server, other threads"].get("JITWorker")).toBeCloseTo(2, 5);
    // The subscriber waited 0.4 ms on CPU 1, which was idle: the machine's wait, not another task's.
    expect(waits.loadgen.behind.idle).toBeCloseTo(0.4, 5);
    // The server's event loop waited 0.05 ms: under the threshold.
    expect(waits.server.count).toBe(0);
  });
});
