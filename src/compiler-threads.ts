// A lower scheduling priority for JavaScriptCore's compiler threads (issue 20: paced one-way p99).
//
// JavaScriptCore compiles hot functions on its own threads ("JITWorker"). Most of natter's compiles come in
// the hot-path warm-up (src/warm-up.ts), but some come later, under clients' traffic: a function whose
// optimized code met a case it had not seen is compiled again (parseOps, deliver and onPub, 16–82 ms of a
// core each, 1–2 s into a paced load). On a 2-core machine such a compile takes a core from natter's event
// loop and the clients it serves: measured under the bench's paced publisher (20k msgs/s), the event loop
// then waited 15–27 ms of every 100 ms for a CPU, and the load's p99 rose from ~0.1 ms to 1–4 ms in the
// quarter-seconds the compiles ran in (bench/runtime-floor.ts: 5 of 6 rounds above 1 ms, the least Bun
// server's at 0.09–0.28 ms). At nice 10 a compiler thread gets a tenth of a busy core's share and a free core
// all to itself: the compile waits for the event loop, not the other way round.
//
// Linux gives each thread its own nice value, set through setpriority(PRIO_PROCESS, tid). JavaScriptCore's
// own options for it leave the nice value as it is here (BUN_JSC_priorityDeltaOfDFGCompilerThreads and
// ...FTLCompilerThreads at 10: the threads stayed at nice 0). Compiler threads exit after ~10 s without work
// and new ones start at the event loop's priority, so the threads are looked for again every few seconds.
// Where there is no /proc/self/task or no libc to call, nothing happens; NATTER_COMPILER_NICE=0 turns it off.
import { loadLibc, type Libc } from "./libc.ts";
import type { Logger } from "./log.ts";

/** The nice value given to compiler threads (the event loop runs at the process's, normally 0). */
const COMPILER_NICE = Number(process.env.NATTER_COMPILER_NICE ?? 10);
/** How often new compiler threads are looked for. */
const RESCAN_MS = 2000;
const PRIO_PROCESS = 0;

/** Threads whose name was read (thread ids; pruned when a scan no longer finds them), and the compiler threads among them. */
const checked = new Set<number>();
const lowered = new Set<number>();
let libc: Libc | null = null;
let timer: ReturnType<typeof setInterval> | null = null;

/** Gives the compiler threads that run now the lower priority; returns how many were newly lowered. */
async function lowerNow(): Promise<number> {
  if (libc === null) return 0;
  const seen = new Set<number>();
  let newly = 0;
  for (const tid of libc.threadIds() ?? []) {
    seen.add(tid);
    if (checked.has(tid)) continue;
    checked.add(tid);
    let name: string;
    try {
      name = await Bun.file(`/proc/self/task/${tid}/comm`).text();
    } catch {
      continue; // the thread ended meanwhile
    }
    if (name.trimEnd() !== "JITWorker") continue;
    if (libc.setpriority(PRIO_PROCESS, tid, COMPILER_NICE) === 0) newly++;
    lowered.add(tid);
  }
  for (const tid of checked) {
    if (seen.has(tid)) continue;
    checked.delete(tid);
    lowered.delete(tid);
  }
  return newly;
}

/**
 * Lowers the compiler threads' priority now and every few seconds from now on (the timer does not keep the
 * process alive). Called once the hot-path warm-up has compiled its code: its compiles should run at full speed.
 */
export async function lowerCompilerThreadPriority(log?: Logger): Promise<void> {
  if (!(COMPILER_NICE > 0) || timer !== null) return;
  libc = await loadLibc();
  if (libc === null) return;
  const report = (newly: number) => {
    if (newly > 0) log?.debug(`Compiler threads at nice ${COMPILER_NICE}: ${newly} more (${lowered.size} running; new ones are looked for every ${RESCAN_MS / 1000} s)`);
  };
  report(await lowerNow().catch(() => 0));
  timer = setInterval(() => void lowerNow().then(report, () => {}), RESCAN_MS);
  timer.unref();
}
