// Runs fuzz cases against a live natter process and checks, throughout:
// - the process never dies (a crash stops the run at once and writes the cases in flight to a file);
// - a canary client keeps answering PING and a request-reply round trip within a bound;
// - every case's connection ends the way its expectation says (an -ERR from nats-server's table and a
//   close, a clean close, or normal answers; hostile input must never leave a connection stuck), and
//   everything the server sends parses strictly;
// - every JetStream API request that the API handles is answered, with valid JSON;
// - the server's RSS shows no growth trend across rounds beyond a limit;
// - the server's log shows no escaped exception (stack traces, Bun's uncaught-error report).
// Cases run `concurrency` at a time (so their bytes interleave at the server), in rounds; between rounds
// the health checks run and the JetStream state made by the cases is cleaned up.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { FAMILIES, serializeCase, type Family, type FuzzCase, type JsRequest } from "./cases.ts";
import { genConnect } from "./gen-connect.ts";
import { ANCHOR_CONSUMER, ANCHORS, anchorConfig, anchorConsumerConfig, genJetStream } from "./gen-jetstream.ts";
import { genProtocol, genScenario, type GenContext } from "./gen-protocol.ts";
import { genWebSocket } from "./gen-websocket.ts";
import { endKeptSessions, genMqtt, MqttFuzzConn, mqttFiller, PINGREQ } from "./gen-mqtt.ts";
import { PacketType } from "../../src/mqtt/packets.ts";
import { Rng } from "./prng.ts";
import { FuzzServer, type LogFinding } from "./server-process.ts";
import { errorCloses, NatsClient, type FuzzConn, TcpConn, WsConn, type ServerFrame } from "./wire.ts";

export interface EngineOptions {
  seed: string;
  /** Stop after this many cases (CI), … */
  cases?: number;
  /** … or after this long (the long run). */
  durationMs?: number;
  concurrency: number;
  /** Relative weights of the families (absent = default). */
  weights?: Partial<Record<Family, number>>;
  /** Cases between health checks. */
  roundSize: number;
  canaryIntervalMs: number;
  /** A canary PING or request-reply round trip slower than this fails the run. */
  canaryBoundMs: number;
  /** RSS growth (median of the last third of rounds over the first third) allowed, MiB. */
  rssGrowthMiB: number;
  /** RSS never above this, MiB. */
  rssMaxMiB: number;
  /** Stop after this many failures. */
  maxFailures: number;
  /** Where failure reports go. */
  outDir: string;
  maxPayload: number;
  /** Run these cases instead of generated ones (replay). */
  replay?: FuzzCase[];
  /** Only this case index (regenerated from the seed). */
  onlyIndex?: number;
  log: (line: string) => void;
}

export const DEFAULT_WEIGHTS: Record<Family, number> = { protocol: 30, scenario: 10, connect: 15, jetstream: 25, websocket: 20, mqtt: 15 };

export interface Failure {
  kind: "crash" | "case" | "canary" | "rss" | "log" | "setup";
  message: string;
  /** Cases that may have caused it (the failing one first). */
  suspects: FuzzCase[];
  file?: string;
  /** How often the same failure was seen. */
  repeats?: number;
}

export interface EngineResult {
  ok: boolean;
  seed: string;
  cases: number;
  byFamily: Record<string, number>;
  outcomes: Record<string, number>;
  failures: Failure[];
  rssKiB: number[];
  canary: CanaryStats;
  slowCases: { ms: number; what: string }[];
  durationMs: number;
}

export interface CanaryStats {
  rounds: number;
  maxMs: number;
  p50Ms: number;
  /** The cases in flight during the slowest round trip. */
  slowestDuring: string[];
}

interface CaseResult {
  problem: string | null;
  outcome: string;
}

// Deadlines. Generous: CI machines are shared, and the server runs under other tests' load.
const READY_MS = 10_000;
/** How long a hostile case's probe waits before the filler is sent. */
const ANY_PROBE_MS = 400;
/** How long an answer that must come may take. */
const ANSWER_MS = 10_000;
const CASE_HARD_MS = 60_000;
const HOSTILE_UPGRADE_MS = 1_000;
/** After a filler the server does not see as NATS bytes (broken WebSocket framing), a close is not required. */
const LENIENT_CLOSE_MS = 300;

const CONTROL_LINE = 4096;

export function generateCase(seed: string, index: number, ctx: GenContext, weights: Record<Family, number>): FuzzCase {
  const family = new Rng(`${seed}/family/${index}`).weighted(FAMILIES.map((f) => [weights[f] ?? 0, f] as const));
  const rng = Rng.forCase(seed, family, index);
  switch (family) {
    case "protocol": return genProtocol(rng, index, ctx);
    case "scenario": return genScenario(rng, index, ctx);
    case "connect": return genConnect(rng, index, ctx);
    case "jetstream": return genJetStream(rng, index, ctx);
    case "websocket": return genWebSocket(rng, index, ctx);
    case "mqtt": return genMqtt(rng, index, ctx);
  }
}

// ---- answers of JetStream requests --------------------------------------------------------------

function headerBlockProblem(h: Buffer): string | null {
  const text = h.toString("latin1");
  if (!/^NATS\/1\.0( \d{3}( [^\r\n]*)?)?\r\n/.test(text)) return `bad header status line ${JSON.stringify(text.slice(0, 80))}`;
  if (!text.endsWith("\r\n\r\n")) return `header block not ended by a blank line ${JSON.stringify(text.slice(-80))}`;
  const lines = text.slice(0, -4).split("\r\n").slice(1);
  for (const l of lines) if (!/^[^:\r\n]+:[^\r\n]*$/.test(l)) return `bad header line ${JSON.stringify(l)}`;
  return null;
}

function answerProblem(kind: string, f: ServerFrame, inbox: string): string | null {
  if (kind === "any" || kind === "status-or-msg") {
    // Messages carry the headers their publisher gave (anything: like nats-server, natter stores a header block
    // unchecked, and a direct get appends its own to it); a status the server writes itself must be well-formed.
    const h = f.headers?.toString("latin1") ?? "";
    const isStatus = f.subject === inbox && f.payload!.length === 0 && /^NATS\/1\.0 \d{3}/.test(h) && !/Nats-Stream:|Nats-Sequence:/.test(h);
    return isStatus ? headerBlockProblem(f.headers!) : null;
  }
  if (f.headers && f.headers.length > 0) return `a ${kind} answer with headers ${JSON.stringify(f.headers.latin1Slice(0, 80))}`;
  let v: unknown;
  try {
    v = JSON.parse(f.payload!.toString("utf8"));
  } catch {
    return `answer is not JSON: ${JSON.stringify(f.payload!.latin1Slice(0, 200))}`;
  }
  if (v === null || typeof v !== "object" || Array.isArray(v)) return `answer is not a JSON object: ${JSON.stringify(f.payload!.latin1Slice(0, 200))}`;
  const o = v as Record<string, unknown>;
  if (o.error !== undefined) {
    const e = o.error as Record<string, unknown>;
    if (e === null || typeof e !== "object" || typeof e.code !== "number" || typeof e.err_code !== "number" || typeof e.description !== "string") {
      return `malformed error object: ${JSON.stringify(o.error)}`;
    }
  }
  if (kind === "api" && (typeof o.type !== "string" || !o.type.startsWith("io.nats.jetstream.api.v1."))) return `API answer without its type: ${JSON.stringify(f.payload!.latin1Slice(0, 200))}`;
  if (kind === "puback" && o.error === undefined && (typeof o.stream !== "string" || typeof o.seq !== "number")) return `malformed PubAck: ${JSON.stringify(f.payload!.latin1Slice(0, 200))}`;
  return null;
}

// ---- the engine ---------------------------------------------------------------------------------

export class Engine {
  readonly server: FuzzServer;
  private readonly ctx: GenContext;
  private readonly weights: Record<Family, number>;
  private readonly failures: Failure[] = [];
  private crashed = false;
  private stopping = false;
  /** Failure signatures already reported (the same bug is reported once, then counted). */
  private readonly seen = new Map<string, Failure>();
  private readonly inFlight = new Set<FuzzCase>();
  private readonly recent: FuzzCase[] = [];
  /** cid / local port → case, for attributing log lines. */
  private readonly byCid = new Map<number, FuzzCase>();
  private readonly byPort = new Map<number, FuzzCase>();
  private canary: Canary | null = null;
  private admin: NatsClient | null = null;
  private readonly rss: number[] = [];
  private readonly outcomes: Record<string, number> = {};
  private readonly byFamily: Record<string, number> = {};
  private reportedFindings = 0;
  /** The slowest cases (over 1 s): where a run's time goes. */
  private readonly slow: { ms: number; what: string }[] = [];
  private fileCounter = 0;

  constructor(private readonly o: EngineOptions) {
    this.server = new FuzzServer({ maxPayload: o.maxPayload });
    this.ctx = { maxPayload: o.maxPayload, maxControlLine: CONTROL_LINE };
    this.weights = { ...DEFAULT_WEIGHTS, ...o.weights };
  }

  async run(): Promise<EngineResult> {
    const began = Date.now();
    let count = 0;
    try {
      await this.server.start();
      this.o.log(`natter pid ${this.server.pid} on ${this.server.port} (ws ${this.server.wsPort}), store ${this.server.storeDir}`);
      this.server.onExit((info) => {
        if (this.stopping) return;
        this.crashed = true;
        this.fail("crash", `the server process died: ${info}`, [...this.inFlight, ...this.recent.slice(-20).reverse()]);
      });
      await this.setupJetStream();
      this.canary = new Canary(this.server.port, this.o.canaryIntervalMs, this.o.canaryBoundMs, (msg) => this.fail("canary", msg, [...this.inFlight]), () => [...this.inFlight].map((c) => `${c.index} ${c.note}`));
      await this.canary.start();
      this.rss.push(this.server.rssKiB());

      const cases = this.caseSource();
      for (let round = 0; ; round++) {
        const batch: FuzzCase[] = [];
        while (batch.length < this.o.roundSize) {
          const next = cases(count + batch.length, began);
          if (next === null) break;
          batch.push(next);
        }
        if (batch.length === 0) break;
        await this.runBatch(batch);
        count += batch.length;
        await this.healthCheck(round);
        if (this.stopNow()) break;
      }
      this.checkRssTrend();
    } catch (error) {
      if (!this.crashed) this.fail("setup", `fuzz engine error: ${(error as Error).stack ?? error}`, [...this.inFlight]);
    } finally {
      this.canary?.stop();
      this.admin?.close();
      this.server.scan();
      this.checkLog();
      this.stopping = true;
      await this.server.stop();
    }
    const c = this.canary?.stats() ?? { rounds: 0, maxMs: 0, p50Ms: 0, slowestDuring: [] };
    return {
      ok: this.failures.length === 0,
      seed: this.o.seed,
      cases: count,
      byFamily: this.byFamily,
      outcomes: this.outcomes,
      failures: this.failures,
      rssKiB: this.rss,
      canary: c,
      slowCases: this.slow,
      durationMs: Date.now() - began,
    };
  }

  private stopNow(): boolean {
    return this.aborted || this.crashed || this.failures.length >= this.o.maxFailures;
  }

  private aborted = false;

  /** Stops a run from outside (a test that timed out): no more cases, the processes are killed. */
  async abort(): Promise<void> {
    this.aborted = true;
    this.stopping = true;
    this.canary?.stop();
    this.admin?.close();
    await this.server.stop();
  }

  /** The next case (by index), or null when the run is over. */
  private caseSource(): (index: number, began: number) => FuzzCase | null {
    const o = this.o;
    if (o.replay) return (i) => o.replay![i] ?? null;
    if (o.onlyIndex !== undefined) return (i) => (i === 0 ? generateCase(o.seed, o.onlyIndex!, this.ctx, this.weights) : null);
    return (i, began) => {
      if (o.cases !== undefined && i >= o.cases) return null;
      if (o.durationMs !== undefined && Date.now() - began >= o.durationMs) return null;
      return generateCase(o.seed, i, this.ctx, this.weights);
    };
  }

  private async runBatch(batch: FuzzCase[]): Promise<void> {
    let next = 0;
    const worker = async () => {
      while (next < batch.length && !this.stopNow()) {
        const c = batch[next++]!;
        this.inFlight.add(c);
        this.byFamily[c.family] = (this.byFamily[c.family] ?? 0) + 1;
        let r: CaseResult;
        const t0 = Date.now();
        try {
          r = await withDeadline(this.runCase(c), CASE_HARD_MS, { problem: `the case did not finish within ${CASE_HARD_MS} ms`, outcome: "stuck" });
        } catch (error) {
          r = { problem: `fuzzer error: ${(error as Error).stack ?? error}`, outcome: "error" };
        }
        this.inFlight.delete(c);
        const ms = Date.now() - t0;
        if (ms > 1_000) {
          this.slow.push({ ms, what: `${c.index} ${c.note.slice(0, 100)} → ${r.outcome}` });
          this.slow.sort((a, b) => b.ms - a.ms);
          this.slow.length = Math.min(this.slow.length, 10);
        }
        this.recent.push(c);
        if (this.recent.length > 200) this.recent.shift();
        this.outcomes[`${c.family}:${r.outcome}`] = (this.outcomes[`${c.family}:${r.outcome}`] ?? 0) + 1;
        if (r.problem !== null && !this.crashed) this.fail("case", `case ${c.index} (${c.family}: ${c.note}): ${r.problem}`, [c]);
      }
    };
    await Promise.all(Array.from({ length: this.o.concurrency }, worker));
  }

  private async runCase(c: FuzzCase): Promise<CaseResult> {
    if (this.crashed) return { problem: null, outcome: "skipped" };
    if (c.transport === "mqtt") return this.runMqtt(c);
    return c.transport === "tcp" ? this.runTcp(c) : this.runWs(c);
  }

  private remember(c: FuzzCase, conn: FuzzConn): void {
    const info = conn.reader.frames.find((f) => f.op === "INFO")?.info;
    if (typeof info?.client_id === "number") {
      this.byCid.set(info.client_id, c);
      if (this.byCid.size > 5000) this.byCid.delete(this.byCid.keys().next().value!);
    }
    if (conn.socket.localPort) {
      this.byPort.set(conn.socket.localPort, c);
      if (this.byPort.size > 5000) this.byPort.delete(this.byPort.keys().next().value!);
    }
  }

  private async runTcp(c: FuzzCase): Promise<CaseResult> {
    const conn = new TcpConn(this.server.port);
    try {
      if (!(await conn.ready(READY_MS))) return this.crashed ? { problem: null, outcome: "crash" } : { problem: `no INFO within ${READY_MS} ms`, outcome: "no-info" };
      this.remember(c, conn);
      await sendChunks(conn, c.chunks, (b) => conn.writeRaw(b));
      return await this.judge(conn, c, () => conn.send("PING\r\n"), () => conn.writeRaw(filler(this.o.maxPayload)), true);
    } finally {
      conn.destroy();
    }
  }

  private async runWs(c: FuzzCase): Promise<CaseResult> {
    const rng = new Rng(`${this.o.seed}/ws-mask/${c.index}`);
    const conn = new WsConn(this.server.wsPort, rng);
    const ws = c.ws!;
    try {
      // A hostile upgrade request may be incomplete (the server then waits for the rest, rightly): wait briefly.
      const status = await conn.handshake({ raw: ws.raw, extensions: ws.extensions }, ws.raw !== undefined ? HOSTILE_UPGRADE_MS : READY_MS);
      if (ws.raw !== undefined) {
        // A hostile upgrade: an HTTP answer, a close, or (for a request that never ends) waiting is fine.
        if (conn.upgraded) {
          await conn.ready(READY_MS);
          this.remember(c, conn);
        }
        return { problem: null, outcome: conn.upgraded ? "upgraded" : conn.answered ? `http-${status}` : conn.closed ? "closed" : "waiting" };
      }
      if (status !== 101) return this.crashed ? { problem: null, outcome: "crash" } : { problem: `WebSocket upgrade answered ${status}`, outcome: "no-upgrade" };
      if (!(await conn.ready(READY_MS))) return this.crashed ? { problem: null, outcome: "crash" } : { problem: `no INFO over WebSocket within ${READY_MS} ms`, outcome: "no-info" };
      this.remember(c, conn);
      let expect = c.expect;
      // Compressed frames are only valid when the server took the extension: without it, closing is right.
      if (ws.compressed && !conn.negotiatedDeflate) expect = { kind: "any" };
      await sendChunks(conn, c.chunks, (b) => conn.writeRaw(b));
      const result = await this.judge(conn, { ...c, expect }, () => conn.send("PING\r\n"), () => conn.send(filler(this.o.maxPayload)), ws.wellFramed && !(ws.compressed && !conn.negotiatedDeflate));
      if (result.problem === null && conn.frameError !== null) return { problem: `bad frame from the server: ${conn.frameError}`, outcome: result.outcome };
      if (result.problem === null && conn.gotCloseFrame && !conn.closed && !(await conn.waitClosed(ANSWER_MS))) {
        return { problem: "the server sent a close frame but kept the connection open", outcome: result.outcome };
      }
      return result;
    } finally {
      conn.destroy();
    }
  }

  /**
   * MQTT: every packet the server sends decodes; a refusing CONNACK or a DISCONNECT is followed by the
   * close; "alive" cases answer the probe PINGREQ and stay; hostile ones end closed, or answer the probe,
   * or close after a filler longer than any packet (nothing stuck).
   */
  private async runMqtt(c: FuzzCase): Promise<CaseResult> {
    const conn = new MqttFuzzConn(this.server.mqttPort, c.mqtt!.level);
    const crashed = () => (this.crashed ? { problem: null, outcome: "crash" } : null);
    try {
      if (!(await conn.ready())) return crashed() ?? { problem: "could not connect to the MQTT port", outcome: "no-connect" };
      if (conn.socket.localPort) {
        this.byPort.set(conn.socket.localPort, c);
        if (this.byPort.size > 5000) this.byPort.delete(this.byPort.keys().next().value!);
      }
      for (let i = 0; i < c.chunks.length; i++) {
        if (conn.closed) break;
        await conn.writeRaw(c.chunks[i]!);
        if (i < c.chunks.length - 1 && c.chunks.length < 64) await new Promise((r) => setImmediate(r));
      }
      const malformed = () => (conn.malformed !== null ? { problem: `malformed output from the server: ${conn.malformed}`, outcome: "malformed" } : null);
      await conn.writeRaw(PINGREQ);
      const e = c.expect;
      if (e.kind === "alive") {
        const got = await conn.waitFor(() => (conn.count(PacketType.PINGRESP) >= e.pongs ? "pong" : conn.closed ? "closed" : conn.malformed !== null ? "malformed" : undefined), ANSWER_MS);
        if (crashed()) return crashed()!;
        if (malformed()) return malformed()!;
        if (conn.refused) return { problem: `a valid session was refused or disconnected: ${JSON.stringify(conn.packets.filter((p) => p.type === PacketType.DISCONNECT || p.type === PacketType.CONNACK))}`, outcome: "refused" };
        if (got === "closed") return { problem: "a valid session was closed", outcome: "closed" };
        if (got === undefined) return { problem: `no PINGRESP to the probe within ${ANSWER_MS} ms (${conn.count(PacketType.PINGRESP)}/${e.pongs})`, outcome: "no-pong" };
        return { problem: null, outcome: "alive" };
      }
      await conn.waitFor(() => (conn.count(PacketType.PINGRESP) > 0 || conn.closed || conn.refused ? true : undefined), ANY_PROBE_MS);
      if (crashed()) return crashed()!;
      if (malformed()) return malformed()!;
      if (conn.refused) {
        if (!(await conn.waitClosed(ANSWER_MS))) return { problem: "the server refused or disconnected the client but kept the connection open", outcome: "refused-open" };
        return { problem: malformed()?.problem ?? null, outcome: "refused" };
      }
      if (conn.closed) return { problem: null, outcome: "closed" };
      const answered = conn.count(PacketType.PINGRESP) > 0;
      await conn.writeRaw(mqttFiller(this.ctx));
      const closed = await conn.waitClosed(ANSWER_MS);
      if (crashed()) return crashed()!;
      if (!closed) return { problem: `still open after a filler of ${mqttFiller(this.ctx).length} zero bytes (received ${JSON.stringify(conn.packets.map((p) => p.type))})`, outcome: "stuck" };
      return { problem: malformed()?.problem ?? null, outcome: answered ? "answered" : "filled-closed" };
    } finally {
      conn.destroy();
    }
  }

  /** No MQTT connection outlives its case: after a round, /connz lists none (within a deadline). */
  private async checkMqttConnections(): Promise<void> {
    const deadline = Date.now() + ANSWER_MS;
    let open = -1;
    while (Date.now() < deadline) {
      try {
        const body = (await (await fetch(`http://127.0.0.1:${this.server.httpPort}/connz?limit=100000`)).json()) as { connections: { type?: string }[] };
        open = body.connections.filter((c) => c.type === "mqtt").length;
        if (open === 0) return;
      } catch {
        // the monitor did not answer: try again until the deadline
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    this.fail("case", `MQTT connections leaked: ${open} still in /connz after their cases ended`, this.recent.filter((c) => c.family === "mqtt").slice(-50));
  }

  /**
   * Checks a connection after the case's bytes went out. `probe` sends a PING, `fill` a filler of CRLFs
   * longer than any op can be; `mustCloseAfterFill`: the server sees the filler as NATS bytes (always on
   * TCP; on WebSocket only when all frames were valid).
   */
  private async judge(conn: FuzzConn, c: FuzzCase, probe: () => Promise<void>, fill: () => Promise<void>, mustCloseAfterFill: boolean): Promise<CaseResult> {
    const e = c.expect;
    const errs = () => conn.reader.frames.filter((f) => f.op === "-ERR").map((f) => f.text!);
    const malformed = () => (conn.reader.malformed !== null ? `malformed output from the server: ${conn.reader.malformed}` : null);
    const crashed = () => (this.crashed ? { problem: null, outcome: "crash" } : null);

    if (e.kind === "close") {
      const closed = await conn.waitClosed(ANSWER_MS);
      if (crashed()) return crashed()!;
      const m = malformed();
      if (m) return { problem: m, outcome: "malformed" };
      if (!closed) return { problem: `expected a close ${e.err === null ? "without -ERR" : `after -ERR '${e.err}'`}, but the connection stays open (errors: ${JSON.stringify(errs())})`, outcome: "open" };
      const got = errs();
      const want = e.err === null ? [] : [e.err];
      // A close while our later bytes were still arriving is a reset, which can drop the -ERR in flight (TCP).
      if (got.length === 0 && conn.resetByPeer) return { problem: null, outcome: "reset" };
      if (JSON.stringify(got) !== JSON.stringify(want)) return { problem: `expected -ERRs ${JSON.stringify(want)} before the close, got ${JSON.stringify(got)}`, outcome: "closed" };
      return { problem: null, outcome: e.err === null ? "closed" : "err-closed" };
    }

    await probe();
    if (e.kind === "alive" || e.kind === "error-stays") {
      const got = await conn.waitFor(() => (conn.reader.counts.PONG >= e.pongs ? "pong" : conn.closed ? "closed" : conn.reader.malformed !== null ? "malformed" : undefined), ANSWER_MS);
      if (crashed()) return crashed()!;
      const m = malformed();
      if (m) return { problem: m, outcome: "malformed" };
      if (got === "closed") return { problem: `expected the connection to stay, but it was closed (errors: ${JSON.stringify(errs())})`, outcome: "closed" };
      if (got === undefined) return { problem: `no PONG to the probe within ${ANSWER_MS} ms (${conn.reader.counts.PONG}/${e.pongs} PONGs, errors: ${JSON.stringify(errs())})`, outcome: "no-pong" };
      const allowed = e.kind === "error-stays" ? [e.err] : (e.allow ?? []);
      const unexpected = errs().filter((t) => !allowed.includes(t));
      if (unexpected.length > 0) return { problem: `unexpected -ERR ${JSON.stringify(unexpected)}`, outcome: "err" };
      if (e.kind === "error-stays" && !errs().includes(e.err)) return { problem: `expected -ERR '${e.err}', got none`, outcome: "no-err" };
      const jsProblem = await this.checkRequests(conn, c);
      if (jsProblem !== null) return { problem: jsProblem, outcome: "js" };
      const echoProblem = checkDeliveries(conn, c);
      if (echoProblem !== null) return { problem: echoProblem, outcome: "echo" };
    } else {
      await conn.waitFor(() => (conn.reader.counts.PONG > 0 || conn.closed ? true : undefined), ANY_PROBE_MS);
      if (c.requests) {
        const jsProblem = await this.checkRequests(conn, c);
        if (jsProblem !== null) return { problem: jsProblem, outcome: "js" };
      }
    }
    if (crashed()) return crashed()!;
    const m = malformed();
    if (m) return { problem: m, outcome: "malformed" };
    // An -ERR that closes must be followed by the close.
    const closing = errs().find((t) => errorCloses(t) === true);
    if (closing !== undefined) {
      if (!(await conn.waitClosed(ANSWER_MS))) return { problem: `-ERR '${closing}' but the connection stays open`, outcome: "err-open" };
      return { problem: null, outcome: "err-closed" };
    }
    if (conn.closed) return { problem: null, outcome: e.kind === "any" ? "closed" : "alive" };
    const answered = conn.reader.counts.PONG > 0;
    // Nothing may leave the connection stuck: after a filler longer than any pending op, it must close.
    await fill();
    const closed = await conn.waitClosed(mustCloseAfterFill ? ANSWER_MS : LENIENT_CLOSE_MS);
    if (crashed()) return crashed()!;
    if (!closed && mustCloseAfterFill) return { problem: `the connection neither closed nor stayed usable: still open after a filler of ${this.o.maxPayload + 64} bytes of CRLF (output ${JSON.stringify(conn.receivedHead.slice(-300))})`, outcome: "stuck" };
    return { problem: malformed(), outcome: e.kind === "any" ? (answered ? "answered" : closed ? "filled-closed" : "open") : "alive" };
  }

  /** Every required JetStream request answered; every answer well-formed. */
  private async checkRequests(conn: FuzzConn, c: FuzzCase): Promise<string | null> {
    const requests = c.requests ?? [];
    if (requests.length === 0) return null;
    const answerOf = (r: JsRequest) => conn.reader.frames.find((f) => (f.op === "MSG" || f.op === "HMSG") && f.sid === r.sid);
    const missing = () => requests.filter((r) => r.required && answerOf(r) === undefined);
    if (missing().length > 0) await conn.waitFor(() => (missing().length === 0 || conn.closed ? true : undefined), ANSWER_MS);
    const still = missing();
    if (still.length > 0 && !this.crashed) return `no answer within ${ANSWER_MS} ms to ${still.map((r) => r.subject).join(", ")}`;
    for (const r of requests) {
      const f = answerOf(r);
      if (f === undefined) continue;
      const p = answerProblem(r.answer, f, r.inbox);
      if (p !== null) return `${r.subject}: ${p}`;
    }
    return null;
  }

  // ---- JetStream state ---------------------------------------------------------------------------

  private async setupJetStream(): Promise<void> {
    this.admin = new NatsClient(this.server.port, "_INBOX.fzadmin");
    await this.admin.start(READY_MS);
    await this.ensureAnchors();
  }

  /** The anchor streams and their consumer exist, with some messages. */
  private async ensureAnchors(): Promise<void> {
    const admin = this.admin!;
    for (const a of ANCHORS) {
      const info = await admin.api(`$JS.API.STREAM.INFO.${a.name}`, undefined, ANSWER_MS);
      if (info === null) throw new Error(`no answer to STREAM.INFO ${a.name}`);
      if (info.error !== undefined) {
        const created = await admin.api(`$JS.API.STREAM.CREATE.${a.name}`, anchorConfig(a), ANSWER_MS);
        if (created === null || created.error !== undefined) throw new Error(`cannot create ${a.name}: ${JSON.stringify(created)}`);
      }
      const ci = await admin.api(`$JS.API.CONSUMER.INFO.${a.name}.${ANCHOR_CONSUMER}`, undefined, ANSWER_MS);
      if (ci === null) throw new Error(`no answer to CONSUMER.INFO ${a.name}`);
      if (ci.error !== undefined) {
        const created = await admin.api(`$JS.API.CONSUMER.DURABLE.CREATE.${a.name}.${ANCHOR_CONSUMER}`, anchorConsumerConfig(a), ANSWER_MS);
        if (created === null || created.error !== undefined) throw new Error(`cannot create ${a.name}>${ANCHOR_CONSUMER}: ${JSON.stringify(created)}`);
      }
      const state = (info.state ?? {}) as Record<string, number>;
      if ((state.messages ?? 0) < 5) {
        for (const s of ["a", "b", "c", "a", "d.e"]) {
          const ack = await admin.request(`${a.subject}.${s}`, `seed ${s}`, ANSWER_MS, Buffer.from(`NATS/1.0\r\nX-Seed: ${s}\r\n\r\n`));
          if (ack === null) throw new Error(`no PubAck from ${a.name}`);
        }
      }
    }
  }

  /** Deletes what the cases created (streams other than the anchors, consumers other than theirs). */
  private async cleanupJetStream(): Promise<void> {
    const admin = this.admin!;
    const names = await admin.api("$JS.API.STREAM.NAMES", {}, ANSWER_MS);
    if (names === null) throw new Error("no answer to STREAM.NAMES during cleanup");
    const anchors = new Set<string>(ANCHORS.map((a) => a.name));
    for (const s of (names.streams as string[] | null) ?? []) {
      if (anchors.has(s) || s.startsWith("$MQTT_")) continue; // the MQTT layer's own streams stay
      const r = await admin.api(`$JS.API.STREAM.DELETE.${s}`, undefined, ANSWER_MS);
      if (r === null) throw new Error(`no answer to STREAM.DELETE ${s} during cleanup`);
    }
    for (const a of ANCHORS) {
      const cn = await admin.api(`$JS.API.CONSUMER.NAMES.${a.name}`, {}, ANSWER_MS);
      if (cn === null) throw new Error(`no answer to CONSUMER.NAMES ${a.name} during cleanup`);
      for (const name of (cn.consumers as string[] | null) ?? []) {
        if (name === ANCHOR_CONSUMER) continue;
        await admin.api(`$JS.API.CONSUMER.DELETE.${a.name}.${name}`, undefined, ANSWER_MS);
      }
    }
    await this.ensureAnchors();
  }

  // ---- health ------------------------------------------------------------------------------------

  private async healthCheck(round: number): Promise<void> {
    if (this.crashed) return;
    try {
      await this.cleanupJetStream();
    } catch (error) {
      if (!this.crashed) this.fail("case", `JetStream cleanup: ${(error as Error).message}`, this.recent.slice(-this.o.roundSize));
    }
    if (this.recent.some((c) => c.family === "mqtt")) {
      await endKeptSessions(this.server.mqttPort, ANSWER_MS);
      await this.checkMqttConnections();
    }
    this.server.scan();
    this.checkLog();
    const rss = this.server.rssKiB();
    if (rss > 0) {
      this.rss.push(rss);
      if (rss > this.o.rssMaxMiB * 1024) this.fail("rss", `server RSS ${Math.round(rss / 1024)} MiB is over the limit of ${this.o.rssMaxMiB} MiB`, this.recent.slice(-this.o.roundSize));
    }
    const c = this.canary!.stats();
    // Part of the RSS: the closed-connection records /connz keeps (at most 10,000, as nats-server).
    const closed = await this.closedRecords();
    this.o.log(`round ${round}: ${this.rss.length > 0 ? `rss ${Math.round(rss / 1024)} MiB, ` : ""}${closed >= 0 ? `closed connections kept ${closed}, ` : ""}canary ${c.rounds} round trips, max ${c.maxMs.toFixed(1)} ms, failures ${this.failures.length}`);
  }

  /** How many closed connections the server keeps for /connz?state=closed; -1 when the monitor does not answer. */
  private async closedRecords(): Promise<number> {
    try {
      const res = await fetch(`http://127.0.0.1:${this.server.httpPort}/connz?state=closed&limit=1`, { signal: AbortSignal.timeout(ANSWER_MS) });
      return ((await res.json()) as { total: number }).total;
    } catch {
      return -1;
    }
  }

  private checkLog(): void {
    const findings = this.server.scan();
    for (const f of findings.slice(this.reportedFindings)) {
      this.fail("log", `the server logged an escaped exception: ${f.line}\n${f.context}`, this.suspectsFor(f));
    }
    this.reportedFindings = findings.length;
  }

  /** The cases a log line points at (its cid or client port), else the ones in flight and the latest. */
  private suspectsFor(f: LogFinding): FuzzCase[] {
    const out: FuzzCase[] = [];
    for (const m of f.context.matchAll(/cid:(\d+)/g)) {
      const c = this.byCid.get(Number(m[1]));
      if (c && !out.includes(c)) out.push(c);
    }
    for (const m of f.context.matchAll(/127\.0\.0\.1:(\d+) - /g)) {
      const c = this.byPort.get(Number(m[1]));
      if (c && !out.includes(c)) out.push(c);
    }
    for (const m of f.context.matchAll(/(\$JS\.API\.[^\s:]+)/g)) {
      for (const c of this.recent) if (c.requests?.some((r) => r.subject === m[1]) && !out.includes(c)) out.push(c);
    }
    return out.length > 0 ? out : [...this.inFlight, ...this.recent.slice(-20).reverse()];
  }

  private checkRssTrend(): void {
    const samples = this.rss.slice(Math.min(2, Math.floor(this.rss.length / 4))); // skip warm-up
    if (samples.length < 6) return;
    const third = Math.floor(samples.length / 3);
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const first = median(samples.slice(0, third));
    const last = median(samples.slice(-third));
    const growthMiB = (last - first) / 1024;
    this.o.log(`rss trend: ${Math.round(first / 1024)} MiB → ${Math.round(last / 1024)} MiB (limit +${this.o.rssGrowthMiB} MiB)`);
    if (growthMiB > this.o.rssGrowthMiB) {
      this.fail("rss", `server RSS grew by ${growthMiB.toFixed(0)} MiB across rounds (${Math.round(first / 1024)} → ${Math.round(last / 1024)} MiB; limit ${this.o.rssGrowthMiB} MiB): samples ${this.rss.map((k) => Math.round(k / 1024)).join(",")}`, this.recent.slice(-50));
    }
  }

  // ---- failures ----------------------------------------------------------------------------------

  private fail(kind: Failure["kind"], message: string, suspects: FuzzCase[]): void {
    // Same kind and text (numbers, names and timestamps aside): the same bug.
    const signature = `${kind}:${message.split("\n")[0]!.replace(/^\[\d+\] [\d/ :.]+/, "").replace(/case \d+ \([^)]*\)/, "case").replace(/"[^"]*"/g, '"…"').replace(/\d+/g, "N")}`;
    const known = this.seen.get(signature);
    if (known !== undefined) {
      known.repeats = (known.repeats ?? 1) + 1;
      return;
    }
    const failure: Failure = { kind, message, suspects };
    this.seen.set(signature, failure);
    this.failures.push(failure);
    try {
      mkdirSync(this.o.outDir, { recursive: true });
      const file = path.join(this.o.outDir, `natter-fuzz-${this.o.seed}-${++this.fileCounter}-${kind}.json`);
      writeFileSync(file, JSON.stringify({
        seed: this.o.seed, kind, message,
        replay: `bun test/fuzz/run.ts --replay ${file}`,
        cases: suspects.slice(0, 50).map(serializeCase),
        serverLog: this.server.logTail(20_000),
      }, null, 2));
      failure.file = file;
    } catch (error) {
      this.o.log(`could not write the failure file: ${(error as Error).message}`);
    }
    this.o.log(`FAILURE (${kind}): ${message.split("\n")[0]}${failure.file ? `\n  input written to ${failure.file}` : ""}`);
  }
}

/**
 * Echo cases: the messages received (all before the probe's PONG, which they precede on the wire) are exactly
 * the expected ones: the same multiset, and in publish order (payloads start with `#<publish number>#`).
 */
function checkDeliveries(conn: FuzzConn, c: FuzzCase): string | null {
  if (c.deliveries === undefined) return null;
  const got = conn.reader.frames
    .filter((f) => f.op === "MSG" || f.op === "HMSG")
    .map((f) => `${f.sid} ${f.subject} ${f.reply ?? "-"} ${f.op === "HMSG" ? f.headers!.toString("base64") : "-"} ${f.payload!.toString("base64")}`);
  const sorted = (xs: string[]) => [...xs].sort();
  if (JSON.stringify(sorted(got)) !== JSON.stringify(sorted(c.deliveries))) {
    const missing = c.deliveries.filter((d) => !got.includes(d));
    const extra = got.filter((d) => !c.deliveries!.includes(d));
    const show = (d: string) => {
      const [sid, subject, reply, h, p] = d.split(" ");
      return JSON.stringify(`${sid} ${subject} ${reply} ${h === "-" ? "" : Buffer.from(h!, "base64").toString("latin1")}${Buffer.from(p!, "base64").toString("latin1").slice(0, 60)}`);
    };
    return `deliveries differ from the model: ${missing.length} missing ${missing.slice(0, 3).map(show).join(", ")}; ${extra.length} unexpected ${extra.slice(0, 3).map(show).join(", ")}`;
  }
  const order = got.map((d) => Number(/^#(\d+)#/.exec(Buffer.from(d.split(" ")[4]!, "base64").toString("latin1"))?.[1] ?? -1));
  for (let i = 1; i < order.length; i++) if (order[i]! < order[i - 1]!) return `deliveries out of publish order: ${order.join(",")}`;
  return null;
}

/** Writes the chunks in order, letting the event loop turn between them so they arrive as separate reads. */
async function sendChunks(conn: FuzzConn, chunks: Buffer[], write: (b: Buffer) => Promise<void>): Promise<void> {
  for (let i = 0; i < chunks.length; i++) {
    if (conn.closed) return;
    await write(chunks[i]!);
    if (i < chunks.length - 1 && chunks.length < 64) await new Promise((r) => setImmediate(r));
  }
}

function filler(maxPayload: number): Buffer {
  return Buffer.alloc(maxPayload + 64, "\r\n");
}

function withDeadline<T>(p: Promise<T>, ms: number, fallback: T): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => resolve(fallback), ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });
}

// ---- the canary ---------------------------------------------------------------------------------

const REPO = path.resolve(import.meta.dirname, "../..");
const liveCanaries = new Set<ChildProcess>();
process.on("exit", () => {
  for (const c of liveCanaries) c.kill("SIGKILL");
});

/** Runs canary.ts in its own process and follows its reports (see there). */
class Canary {
  private child: ChildProcess | null = null;
  private stopped = false;
  private readonly rtts: number[] = [];
  private maxMs = 0;
  private n = 0;
  /** The cases in flight during the slowest round trip. */
  private slowest: string[] = [];
  /** Cases in flight at each of the last reports (a round covers the time since the previous one). */
  private previous: string[] = [];

  constructor(
    private readonly port: number,
    private readonly intervalMs: number,
    private readonly boundMs: number,
    private readonly onFail: (msg: string) => void,
    private readonly inFlight: () => string[],
  ) {}

  start(): Promise<void> {
    const child = spawn(path.join(REPO, "node_modules/.bin/bun"), [path.join(import.meta.dirname, "canary.ts"), String(this.port), String(this.intervalMs), String(this.boundMs)], {
      cwd: REPO,
      stdio: ["pipe", "pipe", "pipe"],
    });
    this.child = child;
    liveCanaries.add(child);
    let buf = "";
    let stderr = "";
    let ready = false;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`canary not ready within ${READY_MS} ms: ${stderr}`)), READY_MS);
      const failed = (msg: string) => {
        clearTimeout(timer);
        if (!ready) reject(new Error(msg));
        else if (!this.stopped) this.onFail(`${msg}; cases in flight: ${[...new Set([...this.previous, ...this.inFlight()])].join(" | ")}`);
        this.stopped = true;
      };
      child.stderr!.on("data", (d: Buffer) => {
        stderr = (stderr + d.toString()).slice(-4000);
      });
      child.stdout!.on("data", (d: Buffer) => {
        buf += d.toString();
        for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (line === "ready") {
            ready = true;
            clearTimeout(timer);
            resolve();
          } else if (line.startsWith("rtt ")) this.record(Number(line.slice(4)));
          else if (line.startsWith("fail ")) failed(`canary: ${line.slice(5)}`);
        }
      });
      child.on("exit", (code) => {
        liveCanaries.delete(child);
        if (!this.stopped) failed(`canary process exited (code ${code}) ${stderr.slice(-500)}`);
      });
    });
  }

  private record(ms: number): void {
    this.n++;
    const now = this.inFlight();
    this.rtts.push(ms);
    if (this.rtts.length > 10_000) this.rtts.splice(0, 5_000);
    if (ms > this.maxMs) {
      this.maxMs = ms;
      this.slowest = [...new Set([...this.previous, ...now])];
    }
    this.previous = now;
  }

  stats(): CanaryStats {
    const sorted = [...this.rtts].sort((a, b) => a - b);
    return { rounds: this.n, maxMs: this.maxMs, p50Ms: sorted[Math.floor(sorted.length / 2)] ?? 0, slowestDuring: this.slowest };
  }

  stop(): void {
    this.stopped = true;
    this.child?.kill("SIGKILL");
  }
}
