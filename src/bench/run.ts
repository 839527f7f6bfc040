// One benchmark run: connect every client (subscribers and responders first, so the interest exists
// before the first message), start publishers or requesters together, wait for them and then for the
// subscribers to receive everything, and gather per-client samples.

import { Board } from "./board.ts";
import { LocalRunner, WorkerRunner, type Job, type JobResult, type Runner, type Shared } from "./clients.ts";
import { BenchError, NatsConn, type ConnectSettings, type ServerInfo } from "./conn.ts";
import type { BenchOptions } from "./flags.ts";
import { Progress, type ProgressSource } from "./progress.ts";
import { PubFrames, type PublishPlan } from "./publisher.ts";
import type { RequestPlan } from "./requester.ts";
import { Responder } from "./responder.ts";
import type { ClientSample } from "./stats.ts";
import { Subscriber } from "./subscriber.ts";
import type { ServerUrl } from "./url.ts";

export interface ServerSeen {
  url: string;
  info: ServerInfo;
}

export interface BenchResult {
  options: BenchOptions;
  runId: string;
  startedAt: string;
  servers: ServerSeen[];
  pubs: ClientSample[];
  subs: ClientSample[];
  reqs: ClientSample[];
  reps: ClientSample[];
  /** Messages the publishers sent (pub, pub/sub) or requests sent (request). */
  sent: number;
  /** Messages the subscribers should have received and did not (sub, pub/sub). */
  lost: number;
  /** Requests that got no reply within --timeout. */
  timeouts: number;
  interrupted: boolean;
  /** Latency measured: publish → delivery (pub/sub, sub) or round trip (request). */
  latencyKind: "delivery" | "round-trip" | null;
  warnings: string[];
  elapsedSec: number;
  /** This process's CPU time while the clients ran (not start-up), as a share of one core (100 = one core busy). */
  cpuPercent: number;
}

/** Rejects the run once any client fails. */
class Failure {
  readonly promise: Promise<never>;
  private reject!: (e: Error) => void;
  failed = false;

  constructor() {
    this.promise = new Promise<never>((_, reject) => (this.reject = reject));
    this.promise.catch(() => {});
  }

  fail = (message: string): void => {
    if (this.failed) return;
    this.failed = true;
    this.reject(new BenchError(message));
  };

  /** `work`, or the first failure. */
  race<T>(work: Promise<T>): Promise<T> {
    return Promise.race([work, this.promise]);
  }
}

function runId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(11));
  return Array.from(bytes, (b) => "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"[b % 36]).join("");
}

/** Splits `total` over `n` clients as evenly as whole numbers allow (the first ones get the remainder). */
export function split(total: number, n: number): number[] {
  const base = Math.floor(total / n);
  const extra = total % n;
  return Array.from({ length: n }, (_, i) => base + (i < extra ? 1 : 0));
}

export interface RunHooks {
  /** A line for stderr (ready messages of sub and reply modes). */
  notice(line: string): void;
  progress: boolean;
}

export async function runBench(o: BenchOptions, hooks: RunHooks): Promise<BenchResult> {
  const failure = new Failure();
  const warnings: string[] = [];
  const startedAt = new Date().toISOString();
  const t0 = performance.now();
  let runCpu0 = process.cpuUsage();
  let runT0 = t0;
  let runSec = 0;
  let runCpuSec = 0;
  const seen = new Map<string, ServerInfo>();
  const conns: NatsConn[] = [];
  let runner: Runner | null = null;
  let progress: Progress | null = null;
  let interrupted = false;

  // Clients take the URLs in turn, in the order they connect (subscribers first).
  let nextServer = 0;
  const pickServer = (): ServerUrl => o.servers[nextServer++ % o.servers.length]!;
  const settings: ConnectSettings = {
    name: "natter-bench",
    user: o.user,
    password: o.password,
    token: o.token,
    tls: o.tls,
    timeoutMs: o.connectTimeoutMs,
  };
  const check = (url: ServerUrl, info: ServerInfo) => {
    seen.set(url.display, info);
    const headerBytes = o.headers.length > 0 ? new TextEncoder().encode(`NATS/1.0\r\n${o.headers.map(([k, v]) => `${k}: ${v}\r\n`).join("")}\r\n`).length : 0;
    if (info.max_payload !== undefined && o.size + headerBytes > info.max_payload && o.mode !== "sub" && o.mode !== "reply") {
      throw new BenchError(`--size ${o.size}${headerBytes ? ` plus ${headerBytes} header bytes` : ""} is more than ${url.display}'s max_payload (${info.max_payload})`);
    }
    if (o.headers.length > 0 && info.headers === false) throw new BenchError(`${url.display} does not support headers (-H)`);
  };
  const connect = async (name: string): Promise<NatsConn> => {
    const url = pickServer();
    const conn = await NatsConn.connect(url, { ...settings, name });
    conns.push(conn);
    // A subscriber the server hangs up on has usually fallen too far behind.
    const hint = name.includes("-sub-") ? " (a slow consumer? try a smaller --window or a --rate)" : "";
    conn.onFailure = (m) => failure.fail(`${name}: ${m}${m.includes("closed by the server") ? hint : ""}`);
    check(url, conn.info);
    return conn;
  };

  const board = new Board(o.mode === "request" || o.mode === "pub" || o.mode === "pubsub" ? o.pubs : 0, o.mode === "sub" || o.mode === "pubsub" ? o.subs : 0);
  const onSigint = () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    board.stop();
    wakeWaiters();
  };
  process.on("SIGINT", onSigint);

  // Someone waiting for subscribers or responders to make progress.
  let waiters: Array<() => void> = [];
  const wakeWaiters = () => {
    const w = waiters;
    waiters = [];
    for (const f of w) f();
  };

  const startProgress = (source: ProgressSource) => {
    if (!hooks.progress) return;
    progress = new Progress(source);
    progress.start();
  };

  const result: BenchResult = {
    options: o,
    runId: runId(),
    startedAt,
    servers: [],
    pubs: [],
    subs: [],
    reqs: [],
    reps: [],
    sent: 0,
    lost: 0,
    timeouts: 0,
    interrupted: false,
    latencyKind: null,
    warnings,
    elapsedSec: 0,
    cpuPercent: 0,
  };

  try {
    // ---- subscribers (sub, pub/sub) -----------------------------------------------------------------
    const subscribers: Subscriber[] = [];
    const subServers: string[] = [];
    const stamp = o.latency && o.size >= 8;
    const subscribeTo = o.multiSubject ? `${o.subject}.*` : o.subject;
    let localRunner: LocalRunner | null = null;
    if (o.mode === "sub" || o.mode === "pubsub") {
      const onProgress = (s: Subscriber) => {
        board.setReceived(s.id - 1, s.received);
        localRunner?.wake();
        if (o.workers > 0) board.notify();
        wakeWaiters();
      };
      const list = await failure.race(
        Promise.all(
          Array.from({ length: o.subs }, async (_, i) => {
            const conn = await connect(`natter-bench-sub-${i + 1}`);
            subServers[i] = conn.url.display;
            return new Subscriber(conn, i + 1, stamp || o.mode === "sub", onProgress);
          }),
        ),
      );
      subscribers.push(...list);
      await failure.race(Promise.all(subscribers.map((s) => s.subscribe(subscribeTo, o.queue, 1))));
      if (o.latency && (o.mode === "sub" || stamp)) result.latencyKind = "delivery";
      if (o.mode === "pubsub" && o.latency && !stamp) warnings.push(`no latency: --size ${o.size} leaves no room for the 8-byte timestamp`);
    }

    // ---- responders (request, reply) ----------------------------------------------------------------
    const responders: Responder[] = [];
    const repServers: string[] = [];
    if (o.mode === "request" || o.mode === "reply") {
      const onProgress = () => wakeWaiters();
      const list = await failure.race(
        Promise.all(
          Array.from({ length: o.responders }, async (_, i) => {
            const conn = await connect(`natter-bench-responder-${i + 1}`);
            repServers[i] = conn.url.display;
            return new Responder(conn, i + 1, o.mode === "reply" ? o.sleepMs : 0, onProgress);
          }),
        ),
      );
      responders.push(...list);
      await failure.race(Promise.all(responders.map((r) => r.subscribe(o.subject, o.queue || "natter-bench", 1))));
    }

    // ---- publishers / requesters ----------------------------------------------------------------------
    let jobs: Job[] = [];
    if (o.mode === "pub" || o.mode === "pubsub" || o.mode === "request") {
      const clients = o.durationMs > 0 ? o.pubs : Math.min(o.pubs, o.msgs);
      const counts = o.durationMs > 0 ? new Array<number>(clients).fill(Number.MAX_SAFE_INTEGER) : split(o.msgs, clients);
      let rate = o.rate > 0 ? o.rate / clients : 0;
      if (o.sleepMs > 0) rate = rate > 0 ? Math.min(rate, 1000 / o.sleepMs) : 1000 / o.sleepMs;
      let offset = 0;
      jobs = counts.map((count, slot) => {
        const server = pickServer();
        const job: Job = { slot, name: `natter-bench-${o.mode === "request" ? "requester" : "pub"}-${slot + 1}`, server };
        if (o.mode === "request") {
          job.req = { subject: o.subject, size: o.size, payload: o.payload, headers: o.headers, count, durationMs: o.durationMs, rate, inflight: o.inflight, timeoutMs: o.timeoutMs } satisfies RequestPlan;
        } else {
          job.pub = {
            subject: o.subject, size: o.size, payload: o.payload, headers: o.headers, stamp, count, durationMs: o.durationMs, rate,
            multiSubject: o.multiSubject, multiSubjectMax: o.multiSubjectMax, multiSubjectRandom: o.multiSubjectRandom, seqOffset: offset,
          } satisfies PublishPlan;
        }
        offset += count === Number.MAX_SAFE_INTEGER ? 0 : count;
        return job;
      });
      const frameBytes = jobs[0]?.pub ? new PubFrames({ ...jobs[0].pub, stamp: false }).frameLen : o.size + 64;
      const shared: Shared = { settings, board, queue: o.queue !== "", frameBytes, windowBytes: o.windowBytes };
      if (o.workers > 0) runner = new WorkerRunner(jobs, shared, o.workers, failure.fail);
      else runner = localRunner = new LocalRunner(jobs, shared, failure.fail);
      const infos = await failure.race(runner.connect());
      infos.forEach((info, i) => check(jobs[i]!.server, info));
    }

    const serverOrder = [...seen.keys()];
    result.servers = serverOrder.map((url) => ({ url, info: seen.get(url)! }));

    // ---- run -----------------------------------------------------------------------------------------
    // CPU use is measured over the run itself, not the start-up and connecting.
    runCpu0 = process.cpuUsage();
    runT0 = performance.now();
    if (o.mode === "pub" || o.mode === "pubsub" || o.mode === "request") {
      const expectedTotal = o.durationMs > 0 ? 0 : o.msgs;
      startProgress({
        unit: o.mode === "request" ? "requests" : "msgs",
        durationMs: o.durationMs,
        total: () => expectedTotal,
        done: () => board.published(),
      });
      const results: JobResult[] = await failure.race(runner!.run());
      const isReq = o.mode === "request";
      for (const r of results) {
        const sample: ClientSample = {
          role: isReq ? "req" : "pub",
          id: r.slot + 1,
          msgs: r.msgs,
          bytes: r.bytes,
          startUs: r.startUs,
          endUs: r.endUs,
          server: jobs[r.slot]!.server.display,
        };
        if (isReq) {
          sample.expected = r.sent;
          sample.timeouts = r.timeouts;
          sample.latency = r.latency ?? undefined;
        }
        (isReq ? result.reqs : result.pubs).push(sample);
        result.sent += r.sent;
        result.timeouts += r.timeouts;
      }
      if (isReq) result.latencyKind = "round-trip";
    }

    if (o.mode === "pubsub" && subscribers.length > 0) {
      // Every subscriber (or the queue group as a whole) must get every message published.
      const published = result.sent;
      if (o.queue === "") for (const s of subscribers) s.expected = published;
      const complete = () =>
        o.queue === "" ? subscribers.every((s) => s.received >= published) : subscribers.reduce((a, s) => a + s.received, 0) >= published;
      // Even after Ctrl-C: what was published is on its way (a second Ctrl-C exits at once).
      await failure.race(waitFor(complete, () => board.received(), o.timeoutMs, () => false, (f) => waiters.push(f)));
      const got = subscribers.reduce((a, s) => a + s.received, 0);
      const want = o.queue === "" ? published * subscribers.length : published;
      result.lost = Math.max(0, want - got);
    }

    if (o.mode === "sub") {
      const perSub = o.durationMs > 0 ? 0 : o.msgs;
      if (o.queue === "") for (const s of subscribers) s.expected = perSub;
      hooks.notice(
        `natter bench: ${o.subs} subscriber${o.subs === 1 ? "" : "s"} on "${subscribeTo}"${o.queue ? ` (queue ${o.queue})` : ""} at ${[...new Set(subServers)].join(", ")}, ` +
          (o.durationMs > 0 ? `receiving for ${o.durationMs / 1000}s` : `waiting for ${o.msgs.toLocaleString("en-US")} messages${o.queue ? " in all" : " each"}`),
      );
      const total = o.queue === "" ? perSub * o.subs : perSub;
      startProgress({ unit: "msgs", durationMs: o.durationMs, total: () => total, done: () => board.received() });
      const complete = () =>
        o.durationMs > 0 ? false : o.queue === "" ? subscribers.every((s) => s.received >= perSub) : subscribers.reduce((a, s) => a + s.received, 0) >= perSub;
      const started = () => subscribers.some((s) => s.received > 0);
      await failure.race(
        waitFor(complete, () => board.received(), o.timeoutMs, () => interrupted, (f) => waiters.push(f), o.durationMs, started),
      );
      if (perSub > 0) {
        const got = subscribers.reduce((a, s) => a + s.received, 0);
        result.lost = Math.max(0, total - got);
      }
    }

    if (o.mode === "reply") {
      hooks.notice(
        `natter bench: ${o.responders} responder${o.responders === 1 ? "" : "s"} on "${o.subject}" (queue ${o.queue || "natter-bench"}) at ${[...new Set(repServers)].join(", ")}, ` +
          (o.durationMs > 0 ? `serving for ${o.durationMs / 1000}s` : o.msgs > 0 ? `serving ${o.msgs.toLocaleString("en-US")} requests` : "serving until Ctrl-C"),
      );
      const served = () => responders.reduce((a, r) => a + r.served, 0);
      startProgress({ unit: "requests", durationMs: o.durationMs, total: () => o.msgs, done: served });
      const complete = () => o.msgs > 0 && served() >= o.msgs;
      await failure.race(waitFor(complete, served, 0, () => interrupted, (f) => waiters.push(f), o.durationMs));
      // Let the last replies go out (delayed ones too).
      await failure.race(Promise.all(responders.map((r) => r.allReplied())));
      await failure.race(Promise.all(responders.map((r) => (r.conn.isOpen ? r.conn.ping() : undefined))));
    }

    runSec = (performance.now() - runT0) / 1000;
    const cpu = process.cpuUsage(runCpu0);
    runCpuSec = (cpu.user + cpu.system) / 1e6;
    result.subs = subscribers.map((s, i) => s.sample(subServers[i]!));
    result.reps = responders.map((r, i) => r.sample(repServers[i]!));
    if (o.mode === "request" && responders.length === 0) result.reps = [];
  } finally {
    process.off("SIGINT", onSigint);
    (progress as Progress | null)?.stop();
    for (const c of conns) c.close();
    (runner as Runner | null)?.close();
  }

  result.interrupted = interrupted;
  result.elapsedSec = (performance.now() - t0) / 1000;
  result.cpuPercent = runSec > 0 ? (runCpuSec / runSec) * 100 : 0;
  if (result.lost > 0) warnings.push(`${result.lost.toLocaleString("en-US")} message${result.lost === 1 ? "" : "s"} not received${interrupted ? " (interrupted)" : ` within --timeout ${o.timeoutMs / 1000}s of the last one`}`);
  if (result.timeouts > 0) warnings.push(`${result.timeouts.toLocaleString("en-US")} request${result.timeouts === 1 ? "" : "s"} timed out (--timeout ${o.timeoutMs / 1000}s)`);
  if (interrupted && o.mode !== "reply") warnings.push("interrupted: partial results");
  return result;
}

/**
 * Resolves when `complete()` holds; or when nothing moved (`progressOf`) for `idleMs` (0: never), once
 * `started()`; or after `durationMs` (0: never); or when interrupted. `listen` registers a one-shot wake-up
 * called on progress.
 */
function waitFor(
  complete: () => boolean,
  progressOf: () => number,
  idleMs: number,
  interrupted: () => boolean,
  listen: (wake: () => void) => void,
  durationMs = 0,
  started: () => boolean = () => true,
): Promise<void> {
  return new Promise((resolve) => {
    const startMs = performance.now();
    let lastProgress = progressOf();
    let lastMoveMs = startMs;
    let finished = false;
    let listening = false;
    const done = () => {
      if (finished) return;
      finished = true;
      clearInterval(timer);
      resolve();
    };
    const look = () => {
      if (finished) return;
      const now = performance.now();
      const p = progressOf();
      if (p !== lastProgress) {
        lastProgress = p;
        lastMoveMs = now;
      }
      if (complete() || interrupted()) return done();
      if (durationMs > 0 && now - startMs >= durationMs) return done();
      if (idleMs > 0 && started() && now - lastMoveMs >= idleMs) return done();
      if (!listening) {
        listening = true;
        listen(() => {
          listening = false;
          look();
        });
      }
    };
    const timer = setInterval(look, 50);
    look();
  });
}
