// Reading a scheduler trace (`perf sched timehist`): which task ran on a CPU while a thread waited for it.
// bench/sched-tail.ts records the trace and prints what this finds.

/** One line of `perf sched timehist`: a task's stretch on a CPU, ending at `end` (ms). */
export interface Stretch {
  end: number;
  cpu: number;
  name: string;
  tid: number;
  pid: number;
  /** How long it had been runnable before this stretch began (ms). */
  delay: number;
  run: number;
}

/** Parses `perf sched timehist`: "time [cpu] name[tid/pid] wait delay run" (times in s, durations in ms). */
export function parseTimehist(text: string): Stretch[] {
  const out: Stretch[] = [];
  for (const line of text.split("\n")) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 6 || !fields[1]!.startsWith("[")) continue;
    const end = Number(fields[0]) * 1000;
    const cpu = Number(fields[1]!.slice(1, -1));
    // The task may hold spaces in its name: it is everything between the CPU and the last three numbers.
    const task = fields.slice(2, fields.length - 3).join(" ");
    const [delay, run] = [Number(fields[fields.length - 2]), Number(fields[fields.length - 1])];
    if (!Number.isFinite(end) || !Number.isFinite(cpu) || !Number.isFinite(run)) continue;
    const open = task.lastIndexOf("[");
    const ids = open < 0 ? "" : task.slice(open + 1, -1);
    const [tid, pid] = ids.includes("/") ? ids.split("/").map(Number) : [Number(ids), Number(ids)];
    out.push({ end, cpu, name: open < 0 ? task : task.slice(0, open), tid: tid!, pid: pid!, delay: delay ?? 0, run });
  }
  return out;
}

const KERNEL_THREADS = ["kworker", "ksoftirqd", "rcu", "migration", "kdamond", "kcompactd", "khugepaged", "kswapd", "watchdog", "cpuhp", "irq/", "jbd2", "kthreadd"];

export type Occupant = "server event loop" | "server, other threads" | "load generator" | "kernel threads" | "perf (the trace)" | "idle" | "other processes";
export const OCCUPANTS: Occupant[] = ["server event loop", "server, other threads", "load generator", "kernel threads", "perf (the trace)", "idle", "other processes"];

function occupantOf(s: Stretch, serverPid: number, loadgenPid: number): Occupant {
  if (s.pid === serverPid) return s.tid === serverPid ? "server event loop" : "server, other threads";
  if (s.pid === loadgenPid) return "load generator";
  if (s.name === "<idle>") return "idle";
  if (s.name === "perf") return "perf (the trace)";
  if (KERNEL_THREADS.some((k) => s.name.startsWith(k))) return "kernel threads";
  return "other processes";
}

/** The waits of one group of threads, and what they waited behind (ms in all, and by task name). */
export interface Waits {
  count: number;
  ms: number;
  longest: number;
  behind: Record<Occupant, number>;
  names: Record<Occupant, Map<string, number>>;
}

function newWaits(): Waits {
  const each = <T>(make: () => T) => Object.fromEntries(OCCUPANTS.map((o) => [o, make()])) as Record<Occupant, T>;
  return { count: 0, ms: 0, longest: 0, behind: each(() => 0), names: each(() => new Map<string, number>()) };
}

/**
 * Charges every wait of at least thresholdMs in [from, to] of the load generator's threads, and of the server's
 * threads that carry messages (natter: its event loop; nats-server: any of its threads, which all run goroutines),
 * to what ran on the CPU where the waiting thread then ran.
 */
export function chargeWaits(
  stretches: Stretch[],
  serverPid: number,
  loopOnly: boolean,
  loadgenPid: number,
  from: number,
  to: number,
  thresholdMs: number,
): { loadgen: Waits; server: Waits } {
  const byCpu = new Map<number, Stretch[]>();
  for (const s of stretches) {
    let list = byCpu.get(s.cpu);
    if (list === undefined) byCpu.set(s.cpu, (list = []));
    list.push(s);
  }
  const result = { loadgen: newWaits(), server: newWaits() };
  for (const s of stretches) {
    const carriesMessages = s.pid === serverPid && (!loopOnly || s.tid === serverPid);
    const waiting = s.pid === loadgenPid ? result.loadgen : carriesMessages ? result.server : null;
    if (waiting === null || s.delay < thresholdMs) continue;
    const start = s.end - s.run;
    const waitFrom = start - s.delay;
    if (start < from || start > to) continue;
    waiting.count++;
    waiting.ms += s.delay;
    if (s.delay > waiting.longest) waiting.longest = s.delay;
    for (const o of byCpu.get(s.cpu)!) {
      if (o === s) continue;
      const overlap = Math.min(o.end, start) - Math.max(o.end - o.run, waitFrom);
      if (overlap <= 0) continue;
      const who = occupantOf(o, serverPid, loadgenPid);
      waiting.behind[who] += overlap;
      waiting.names[who].set(o.name, (waiting.names[who].get(o.name) ?? 0) + overlap);
    }
  }
  return result;
}
