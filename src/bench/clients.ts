// Publishers and requesters ("jobs"), run in this thread or spread over Bun Workers. Both runners connect
// every job first and start them together; a Worker reports its jobs' results (histograms as value/count
// pairs) and any failure as one message.

import { Board, maxLag } from "./board.ts";
import { BenchError, NatsConn, type ConnectSettings, type ServerInfo } from "./conn.ts";
import { publish, type PublishPlan } from "./publisher.ts";
import { Requester, type RequestPlan } from "./requester.ts";
import { histogramFromPairs, histogramToPairs, type Histogram } from "./stats.ts";
import type { ServerUrl } from "./url.ts";

export interface Job {
  /** Slot on the board (0-based publisher / requester number). */
  slot: number;
  name: string;
  server: ServerUrl;
  pub?: PublishPlan;
  req?: RequestPlan;
}

export interface JobResult {
  slot: number;
  msgs: number;
  bytes: number;
  startUs: number;
  endUs: number;
  timeouts: number;
  sent: number;
  latency: Histogram | null;
}

export interface Shared {
  settings: ConnectSettings;
  board: Board;
  /** Subscribers of this process form a queue group (flow control counts the group). */
  queue: boolean;
  /** Frame size and window (--window, bytes; 0 = off) for flow control. */
  frameBytes: number;
  windowBytes: number;
}

export interface Runner {
  /** Connects every job; returns the INFO each one got. */
  connect(): Promise<ServerInfo[]>;
  run(): Promise<JobResult[]>;
  close(): void;
}

type Fail = (message: string) => void;

/** Runs one connected job. `wake` is how the publisher waits for subscribers to catch up. */
async function runJob(conn: NatsConn, job: Job, shared: Shared, yieldEachBatch: boolean, wait: () => Promise<void>, fail: Fail): Promise<JobResult> {
  const board = shared.board;
  if (job.pub) {
    const window = maxLag(shared.windowBytes, shared.frameBytes);
    const r = await publish(conn, job.pub, {
      stopped: () => board.stopped,
      progress: (sent) => board.setPublished(job.slot, sent),
      holdBack: () => (board.subs > 0 && board.lag(shared.queue) > window ? wait() : null),
      yieldEachBatch,
    });
    board.setPublished(job.slot, r.msgs);
    return { slot: job.slot, msgs: r.msgs, bytes: r.msgs * job.pub.size, startUs: r.startUs, endUs: r.endUs, timeouts: 0, sent: r.msgs, latency: null };
  }
  const plan = job.req!;
  const requester = new Requester(conn, plan, {
    stopped: () => board.stopped,
    progress: (done) => board.setPublished(job.slot, done),
    noResponders: () => fail(`no responders on subject "${plan.subject}" (start one: natter bench reply ${plan.subject}, or drop --responders 0)`),
  });
  const r = await requester.run();
  return { slot: job.slot, msgs: r.msgs, bytes: r.bytes, startUs: r.startUs, endUs: r.endUs, timeouts: r.timeouts, sent: r.sent, latency: r.latency };
}

/** All jobs in this thread, next to the subscribers; publishers yield after every batch so those can read. */
export class LocalRunner implements Runner {
  private conns: NatsConn[] = [];
  private waiters: Array<() => void> = [];

  constructor(
    private readonly jobs: Job[],
    private readonly shared: Shared,
    private readonly fail: Fail,
  ) {}

  /** Subscribers call this after each read: publishers held back look again. */
  wake(): void {
    if (this.waiters.length === 0) return;
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  private wait = (): Promise<void> =>
    new Promise<void>((resolve) => {
      this.waiters.push(resolve);
      // Also look again after a while: a subscriber may be gone (its failure ends the run anyway).
      setTimeout(resolve, 20);
    });

  async connect(): Promise<ServerInfo[]> {
    this.conns = await Promise.all(
      this.jobs.map(async (job) => {
        const conn = await NatsConn.connect(job.server, { ...this.shared.settings, name: job.name });
        conn.onFailure = (m) => this.fail(`${job.name}: ${m}`);
        return conn;
      }),
    );
    return this.conns.map((c) => c.info);
  }

  run(): Promise<JobResult[]> {
    const yieldEachBatch = this.shared.board.subs > 0;
    return Promise.all(this.jobs.map((job, i) => runJob(this.conns[i]!, job, this.shared, yieldEachBatch, this.wait, this.fail)));
  }

  close(): void {
    for (const c of this.conns) c.close();
  }
}

// ---- Workers ---------------------------------------------------------------------------------------------

type ToWorker =
  | { type: "init"; jobs: Job[]; settings: ConnectSettings; board: SharedArrayBuffer; pubs: number; subs: number; queue: boolean; frameBytes: number; windowBytes: number }
  | { type: "go" }
  | { type: "close" };

type FromWorker =
  | { type: "hello" }
  | { type: "ready"; infos: ServerInfo[] }
  | { type: "done"; results: Array<Omit<JobResult, "latency"> & { latency: number[] | null }> }
  | { type: "error"; message: string };

/** Jobs spread over `count` Workers, round-robin. */
export class WorkerRunner implements Runner {
  private workers: Worker[] = [];
  private parts: Job[][] = [];
  private pending = new Map<Worker, (m: FromWorker) => void>();

  constructor(
    private readonly jobs: Job[],
    private readonly shared: Shared,
    private readonly count: number,
    private readonly fail: Fail,
  ) {}

  private next(worker: Worker): Promise<FromWorker> {
    return new Promise((resolve) => this.pending.set(worker, resolve));
  }

  async connect(): Promise<ServerInfo[]> {
    const n = Math.min(this.count, this.jobs.length);
    this.parts = Array.from({ length: n }, () => []);
    this.jobs.forEach((job, i) => this.parts[i % n]!.push(job));
    const hellos: Promise<FromWorker>[] = [];
    for (let i = 0; i < n; i++) {
      // The worker runs the same entry point (also inside the compiled binary); cli.ts sends it here. It says
      // hello once it listens: what is posted before that is lost (the entry point imports the bench lazily).
      const worker = new Worker(Bun.main, { argv: ["bench"] } as unknown as WorkerOptions);
      hellos.push(this.next(worker));
      worker.onmessage = (e: MessageEvent<FromWorker>) => {
        const m = e.data;
        if (m.type === "error") {
          this.fail(m.message);
          return;
        }
        const resolve = this.pending.get(worker);
        this.pending.delete(worker);
        resolve?.(m);
      };
      worker.onerror = (e) => this.fail(`worker failed: ${e.message}`);
      this.workers.push(worker);
    }
    await Promise.all(hellos);
    const board = this.shared.board;
    const replies = this.workers.map((w, i) => {
      const reply = this.next(w);
      const init: ToWorker = {
        type: "init",
        jobs: this.parts[i]!,
        settings: this.shared.settings,
        board: board.shared,
        pubs: board.pubs,
        subs: board.subs,
        queue: this.shared.queue,
        frameBytes: this.shared.frameBytes,
        windowBytes: this.shared.windowBytes,
      };
      w.postMessage(init);
      return reply;
    });
    const ready = await Promise.all(replies);
    // Back in job order.
    const infos: ServerInfo[] = new Array(this.jobs.length);
    ready.forEach((m, w) => {
      if (m.type !== "ready") return;
      m.infos.forEach((info, k) => (infos[this.parts[w]![k]!.slot] = info));
    });
    return infos;
  }

  async run(): Promise<JobResult[]> {
    const replies = this.workers.map((w) => this.next(w));
    for (const w of this.workers) w.postMessage({ type: "go" } satisfies ToWorker);
    const done = await Promise.all(replies);
    const results: JobResult[] = [];
    for (const m of done) {
      if (m.type !== "done") continue;
      for (const r of m.results) results.push({ ...r, latency: r.latency ? histogramFromPairs(r.latency) : null });
    }
    return results.sort((a, b) => a.slot - b.slot);
  }

  close(): void {
    for (const w of this.workers) w.terminate();
    this.workers = [];
  }
}

/** The Worker side: connect the jobs it is given, run them on "go", report. */
export function workerMain(): void {
  let conns: NatsConn[] = [];
  let jobs: Job[] = [];
  let shared: Shared | null = null;
  let failed = false;
  const post = (m: FromWorker) => postMessage(m);
  const fail = (message: string) => {
    if (failed) return;
    failed = true;
    post({ type: "error", message });
  };
  self.onmessage = async (e: MessageEvent<ToWorker>) => {
    const m = e.data;
    try {
      if (m.type === "init") {
        jobs = m.jobs;
        shared = { settings: m.settings, board: new Board(m.pubs, m.subs, m.board), queue: m.queue, frameBytes: m.frameBytes, windowBytes: m.windowBytes };
        conns = await Promise.all(
          jobs.map(async (job) => {
            const conn = await NatsConn.connect(job.server, { ...m.settings, name: job.name });
            conn.onFailure = (msg) => fail(`${job.name}: ${msg}`);
            return conn;
          }),
        );
        post({ type: "ready", infos: conns.map((c) => c.info) });
      } else if (m.type === "go") {
        const s = shared!;
        const results = await Promise.all(jobs.map((job, i) => runJob(conns[i]!, job, s, false, () => s.board.waitForNotify(20), fail)));
        post({ type: "done", results: results.map((r) => ({ ...r, latency: r.latency ? histogramToPairs(r.latency) : null })) });
      } else if (m.type === "close") {
        for (const c of conns) c.close();
      }
    } catch (error) {
      fail(error instanceof BenchError ? error.message : `worker: ${(error as Error).message}`);
    }
  };
  post({ type: "hello" });
}
