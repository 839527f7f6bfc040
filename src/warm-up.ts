// Warming the hot path.
//
// JavaScriptCore runs new code in its interpreter and compiles a function only after it ran often
// (baseline JIT, then the optimizing DFG and FTL, on compiler threads). A just-started natter would do
// all of that on its first clients' messages: with the bench's default 0.5 s warm-up, the per-interval
// p99 of paced one-way latency was 2.9 ms in the first half-second of the timed phase and 57–75 µs after
// it (README, Benchmarks). nats-server, compiled ahead of time, has no such phase.
//
// So, when a client first subscribes (main.ts; a server nobody subscribes to, idle or only probed by
// connections that come and go, keeps its idle memory: the compiled code and the compilers' own pages are
// ~11 MiB of RSS), synthetic traffic goes through the real
// code: the parser, the subject memo, the sublist, the router, delivery into outbound buffers, the flush
// and the write, on connections of a private Server, over TCP transports whose sockets take the bytes and
// send them nowhere (and, in its first rounds, request-reply over two loopback TCP connections to that
// Server, so that the code also meets Bun's own sockets and read Buffers: src/warm-up-loopback.ts). Optimized code keeps only the paths it saw run (a branch never
// taken is an exit back to slower code, and a recompilation later), so the traffic takes the paths
// clients' traffic takes, also the less frequent ones: PUB and HPUB to literal, wildcard, fan-out and
// queue subscribers, request-reply with a new inbox subject per request (and the old style: a SUB with
// UNSUB 1 per request), no-responders, messages nobody wants, reads that split ops, 16 B to 1 KiB
// payloads, outbound buffers trimmed by the sweep and grown again, short writes and drains. Nothing of it
// reaches the real server: its stats, connections, client ids and sublists stay untouched.
//
// It runs one step (a read fed, a client connected) at a time, 2 ms of steps per turn of the event loop,
// so the clients' own CONNECTs, SUBs and messages are served between steps; 160–250 ms of CPU in all
// (the compilers' threads included) on this machine. Clients whose traffic is heavy enough to compile its own
// path end it early (CLIENT_MESSAGES_ENOUGH). The rig is kept afterwards (its connections closed:
// no RSS we could measure): optimized code refers to the shapes it saw, and code whose objects were all collected would be thrown away and
// compiled again, under clients' traffic.
import { Server } from "./server.ts";
import type { Connection } from "./connection.ts";
import { defaultOptions } from "./options.ts";
import { CloseReason } from "./protocol/errors.ts";
import { Logger } from "./log.ts";
import { discardingTcpTransport, type DiscardingSocket } from "./transport/tcp.ts";
import { LoopbackExchange } from "./warm-up-loopback.ts";

/** Rounds of synthetic traffic (WarmUpRig.round); NATTER_WARM_UP=N sets another number (0: no warm-up), for measuring it. */
const WARM_UP_ROUNDS = Number(process.env.NATTER_WARM_UP || 60);
/** The longest one slice holds the event loop. */
const SLICE_MS = 2;
/** A heap up to this size is collected near the warm-up's end (an idle natter's is 2–3 MiB). */
const FULL_COLLECTION_MAX_HEAP = 16 * 1024 * 1024;
/**
 * Rounds run after that collection. Right at the end, it cost the code compiled last (the parser's and the
 * delivery's top-tier code, compiled during the warm-up since it has 160 requests a round) its validity:
 * under a paced publisher they were compiled again ~1.3 s after the first SUB, 4–6 compilations in the
 * bench's timed phase instead of 0–3 (bench/jit-timeline.ts --scenario latency-20k). The rounds after it
 * compile again what it invalidated, still within the warm-up; their garbage (1–1.5 MiB of RSS) stays.
 */
const ROUNDS_AFTER_COLLECTION = 8;

/**
 * The warm-up's garbage goes in one full collection of a small heap (a few ms), not in collections under
 * clients' traffic, and the allocator gives back what it freed (2–3 MiB of RSS). Not on a large heap
 * (streams loaded at start): a full collection of it would stall the first clients.
 */
function collectGarbage(): void {
  if (process.memoryUsage().heapUsed < FULL_COLLECTION_MAX_HEAP) Bun.gc(true);
}

/**
 * Clients' messages (received from them while the warm-up runs) after which it ends early. Under a saturating
 * load the warm-up's slices come one per turn of a busy event loop: beside a publisher at 10M msgs/s it lasted
 * 2.5 s (the bench's whole run), took ~7% of the load's throughput and held back the give-back of the
 * executable's pages (RSS 45.5–48.2 MiB at the end of the timed phase against 39.8–47.8 without a warm-up, 4
 * runs each). Traffic that heavy compiles its own path within milliseconds, as clients' messages did before
 * the warm-up existed; what the warm-up is for, the first messages of a light load (a request-reply service, a
 * paced publisher: 3–6 thousand messages while it runs), stays below this: it still warms the path for those.
 */
const CLIENT_MESSAGES_ENOUGH = 100_000;

/** The last warm-up's rig, kept (see above). */
let keptRig: WarmUpRig | null = null;

/** Starts the warm-up on the next turn of the event loop; `done` (tests, the log) gets what it did. */
export function warmUpHotPath(server: Server, done?: (report: WarmUpReport) => void): void {
  if (!(WARM_UP_ROUNDS > 0)) return;
  const started = performance.now();
  const cpuBefore = process.cpuUsage(); // the whole process: the compiler threads work for the warm-up too
  const clientMessagesBefore = server.stats.inMsgs;
  let endedEarly = false;
  let rig: WarmUpRig | null = null;
  let steps: Generator<Promise<void> | void, void, void> | null = null;
  let longestStep = 0;
  const slice = () => {
    if (server.isShuttingDown) {
      rig?.close();
      return;
    }
    const until = performance.now() + SLICE_MS;
    // Checked between slices only: a slice never starts while a loopback exchange is awaited.
    if (server.stats.inMsgs - clientMessagesBefore >= CLIENT_MESSAGES_ENOUGH) {
      endedEarly = true;
      rig?.close();
    }
    while (!endedEarly) {
      const before = performance.now();
      if (steps === null) steps = (rig = new WarmUpRig()).steps(WARM_UP_ROUNDS);
      const step = steps.next();
      if (step.done === true) break;
      const after = performance.now();
      if (after - before > longestStep) longestStep = after - before;
      if (step.value !== undefined) {
        // Waiting for the loopback's replies (src/warm-up-loopback.ts): the event loop is free meanwhile.
        void step.value.then(() => setImmediate(slice));
        return;
      }
      if (after >= until) {
        setImmediate(slice);
        return;
      }
    }
    keptRig = rig;
    const cpu = process.cpuUsage(cpuBefore);
    const report: WarmUpReport = {
      messages: rig?.messages ?? 0,
      loopbackMessages: rig?.loopbackMessages ?? 0,
      ms: performance.now() - started,
      cpuMs: (cpu.user + cpu.system) / 1000,
      longestStepMs: longestStep,
      clientMessages: server.stats.inMsgs - clientMessagesBefore,
      endedEarly,
    };
    server.log.debug(
      `Hot path warmed up: ${report.messages} synthetic messages in ${report.ms.toFixed(0)} ms (${report.cpuMs.toFixed(0)} ms of CPU, the longest step ${report.longestStepMs.toFixed(1)} ms, ${report.loopbackMessages} of the messages over loopback TCP)` +
        (endedEarly ? `; ended early: clients sent ${report.clientMessages} messages meanwhile, which compile their own path` : ""),
    );
    done?.(report);
  };
  setImmediate(slice);
}

/** What a warm-up did. */
export interface WarmUpReport {
  messages: number;
  /** Of those, the ones over the loopback connections (src/warm-up-loopback.ts); 0 without them. */
  loopbackMessages: number;
  /** From its start to its end, wall clock. */
  ms: number;
  /** The process's CPU meanwhile (the compilers' threads too). */
  cpuMs: number;
  /** The longest the event loop waited for one step (a read fed, a client connected). */
  longestStepMs: number;
  /** Messages clients sent while it ran. */
  clientMessages: number;
  /** Whether it ended before its last round: clients sent CLIENT_MESSAGES_ENOUGH meanwhile. */
  endedEarly: boolean;
}

/** Payload sizes of the warm-up's messages (the bench's). */
const SIZES = [16, 128, 1024];
/**
 * Bytes of one read of the bulk publisher. Below read-memory.ts's large reads, so that the same Buffers can be
 * fed again (a large one would be freed after its read) and the warm-up leaves the collector as it found it.
 */
const READ_BYTES = 16 * 1024;
/**
 * Request-reply exchanges per round: in all, more inbox subjects than the sublist caches (its evictions too),
 * and enough of request-reply's one-message reads for the code of a read (the TCP read handler, onRead, the
 * parser, the sublist's cache miss, the flush and the write) to reach JavaScriptCore's top tier (FTL) here
 * and not under the first clients' traffic: with 24 (1,440 exchanges), 8–10 compilations still came in the
 * bench's timed phase (from 0.5 s after the first SUB), with 160 (9,600) 2–5 (bench/jit-timeline.ts).
 */
const REQUESTS = 160;
/**
 * Request-reply exchanges per round over the loopback connections (src/warm-up-loopback.ts), in the first
 * rounds only, while the code runs in its first tiers, whose profiles the optimizing tiers compile from: then
 * its optimized code expects Bun's sockets and read Buffers as well as the rig's. The rig waits for each
 * batch's replies (event-loop turns: on a busy machine, every batch lengthens the warm-up: in all 60 rounds
 * it lasted up to 0.9 s). With 8 rounds of 8, as with all 60, no exit of the read handler or the write under
 * clients' traffic (3 runs each, bench/jit-timeline.ts --settle 1500); 10 for a margin.
 */
const LOOPBACK_EXCHANGES = 8;
const LOOPBACK_ROUNDS = 10;

interface Client {
  conn: Connection;
  socket: DiscardingSocket;
}

/** A private server with a publisher and the subscribers of the bench's scenarios, and the reads to feed them. */
class WarmUpRig {
  private readonly server: Server;
  private readonly clients: Client[] = [];
  private publisher: Client | null = null;
  private requester: Client | null = null;
  private responder: Client | null = null;
  private loopback: LoopbackExchange | null = null;
  /** Reads of PUBs in canonical form to the subscribed subjects, one per payload size. */
  private readonly bulk: Read[];
  /** HPUBs to subscribers with and without headers. */
  private readonly headered: Read;
  /** PUBs no one subscribed to. */
  private readonly unwanted: Read;
  private readonly payload = "r".repeat(128);
  messages = 0;
  loopbackMessages = 0;

  constructor() {
    // The default limits (the traffic below must fit whatever max_payload the real server has), none of its
    // accounts, auth, system account, monitoring or logging.
    this.server = new Server({ ...defaultOptions, noSystemAccount: true }, new Logger(false, false, () => {}));
    this.bulk = SIZES.map((size) => fill(["warm.one", "warm.fan", "warm.queue", "warm.other"].map((s) => pub(s, size))));
    this.headered = fill(["warm.h.one", "warm.h.fan"].map((s) => hpub(s, 128)));
    this.unwanted = fill([pub("nobody.listens", 128)]);
  }

  private client(headers: boolean, ...ops: string[]): Client {
    const { transport, socket } = discardingTcpTransport();
    const conn = this.server.accept(transport);
    socket.data = { connection: conn };
    socket.read(Buffer.from(`CONNECT {"verbose":false,"pedantic":false,"headers":${headers},"no_responders":${headers},"protocol":1}\r\n${ops.join("")}PING\r\n`, "latin1"));
    const client = { conn, socket };
    this.clients.push(client);
    return client;
  }

  /**
   * The warm-up, one step at a time (the caller runs steps until its slice is used up): the clients connect
   * and subscribe, one per step, then `rounds` rounds of traffic, one read per step.
   */
  *steps(rounds: number): Generator<Promise<void> | void, void, void> {
    yield LoopbackExchange.open(this.server, 128).then((loopback) => {
      this.loopback = loopback;
    });
    this.publisher = this.client(true);
    yield;
    const subscribers: [boolean, string[]][] = [
      [true, ["SUB warm.one 1\r\n", "SUB warm.h.one 2\r\n"]],
      [false, ["SUB warm.h.one 1\r\n"]], // a subscriber without headers gets HPUBs as MSG
      [true, ["SUB warm.* 1\r\n", "SUB warm.> 2\r\n", "SUB *.fan 3\r\n"]],
      ...Array.from({ length: 10 }, (): [boolean, string[]] => [true, ["SUB warm.fan 1\r\n", "SUB warm.h.fan 2\r\n"]]),
      ...Array.from({ length: 3 }, (): [boolean, string[]] => [true, ["SUB warm.queue workers 1\r\n"]]),
    ];
    for (const [headers, subs] of subscribers) {
      this.client(headers, ...subs);
      yield;
    }
    this.requester = this.client(true, "SUB _INBOX.warm.* 1\r\n");
    this.responder = this.client(true, "SUB warm.service 1\r\n");
    yield;
    for (let n = 0; n < rounds; n++) {
      if (n === Math.max(0, rounds - ROUNDS_AFTER_COLLECTION)) collectGarbage();
      yield* this.round(n);
    }
    this.close();
  }

  /** One round: a read of each kind, whole and split, request-reply exchanges, and now and then a sweep or short writes. */
  private *round(n: number): Generator<Promise<void> | void, void, void> {
    const publisher = this.publisher!;
    const bulk = this.bulk[n % this.bulk.length]!;
    // Every third round the sockets take only part of what is written: the connections block, then drain.
    const short = n % 3 === 2;
    if (short) for (const c of this.clients) c.socket.takeAtMost = 1500;
    publisher.socket.read(bulk.bytes);
    this.messages += bulk.frames;
    yield;
    publisher.socket.read(this.headered.bytes);
    this.messages += this.headered.frames;
    yield;
    // Split reads: ops across read boundaries go through the parser's carry (and, unwanted, are taken unread).
    const cut = 1000 + (n % 97);
    yield* split(publisher, this.unwanted, cut);
    this.messages += this.unwanted.frames;
    yield* split(publisher, bulk, cut * 7);
    this.messages += bulk.frames;
    for (let k = 0; k < REQUESTS; k++) {
      this.request(n * REQUESTS + k);
      yield;
    }
    if (this.loopback !== null && n < LOOPBACK_ROUNDS) {
      yield this.loopback.exchanges(LOOPBACK_EXCHANGES);
      if (!this.loopback.broken) {
        this.messages += 2 * LOOPBACK_EXCHANGES;
        this.loopbackMessages += 2 * LOOPBACK_EXCHANGES;
      }
      if (this.loopback.broken || n === LOOPBACK_ROUNDS - 1) {
        this.loopback.close();
        this.loopback = null;
      }
    }
    if (short) {
      for (const c of this.clients) {
        c.socket.takeAtMost = Infinity;
        c.conn.onDrain();
      }
    }
    // The server's sweep trims outbound buffers once a second; they grow again at the next delivery.
    if (n % 4 === 3) for (const c of this.clients) c.conn.trimOutbound();
  }

  /** A request and its reply, one read each, as clients send them: a new inbox subject every time. */
  private request(id: number): void {
    const requester = this.requester!.socket;
    const responder = this.responder!.socket;
    const inbox = `_INBOX.warm.${id}`;
    const payload = this.payload;
    if (id % 4 === 0) {
      // The old style: an inbox subscription per request, gone after one message; or a request no one answers.
      const old = `_INBOX.old.${id}`;
      requester.read(Buffer.from(`SUB ${old} ${id}\r\nUNSUB ${id} 1\r\nPUB warm.service ${old} 128\r\n${payload}\r\n`, "latin1"));
      responder.read(Buffer.from(`PUB ${old} 128\r\n${payload}\r\n`, "latin1"));
      requester.read(Buffer.from(`PUB warm.nobody ${inbox} 128\r\n${payload}\r\n`, "latin1"));
      this.messages += 3;
      return;
    }
    requester.read(Buffer.from(`PUB warm.service ${inbox} 128\r\n${payload}\r\n`, "latin1"));
    responder.read(Buffer.from(`PUB ${inbox} 128\r\n${payload}\r\n`, "latin1"));
    this.messages += 2;
  }

  /**
   * Closes the private server's connections (it held no port). Not by Server.shutdown(): run here, it cost the
   * code compiled after it a de-optimization. Every read of a global (`Date`, `Map`) in optimized code then
   * failed its check (BadConstantCache exits, 100 each) and onRead and the sublist's collect were compiled
   * again, under clients' traffic (bench/jit-timeline.ts). Why is not clear: the global object's shape changes
   * (reading the global `clearInterval`, which Bun creates on first use, before the warm-up avoided it too).
   */
  close(): void {
    for (const c of this.clients) c.conn.close(CloseReason.ServerShutdown, null);
    this.loopback?.close();
    this.loopback = null;
  }
}

/** Feeds a read to a client in pieces of `cut` bytes, one per step. */
function* split(client: Client, read: Read, cut: number): Generator<void, void, void> {
  const bytes = read.bytes;
  for (let at = 0; at < bytes.length; at += cut) {
    client.socket.read(bytes.subarray(at, Math.min(at + cut, bytes.length)));
    yield;
  }
}

function pub(subject: string, size: number): string {
  return `PUB ${subject} ${size}\r\n${"x".repeat(size)}\r\n`;
}

function hpub(subject: string, size: number): string {
  const head = "NATS/1.0\r\nWarm: up\r\n\r\n";
  return `HPUB ${subject} ${head.length} ${head.length + size}\r\n${head}${"x".repeat(size)}\r\n`;
}

/** A read the rig feeds, and how many messages it holds. */
interface Read {
  bytes: Buffer;
  frames: number;
}

/** Whole frames, repeated in turn, up to READ_BYTES. */
function fill(pieces: string[]): Read {
  let text = "";
  let frames = 0;
  for (; text.length + pieces[frames % pieces.length]!.length <= READ_BYTES; frames++) text += pieces[frames % pieces.length]!;
  return { bytes: Buffer.from(text, "latin1"), frames };
}
