// `bun bench/ws-broadcast.ts [--conns 200] [--pages 4] [--msgs 100] [--size 128] [--rounds 10] [--nats-server PATH]`:
// a broadcast to browser WebSocket connections (issue 20). Headless Chromium (Debian's `chromium`, driven by
// playwright-core) opens `--conns` WebSocket connections spread over `--pages` tabs, each a minimal NATS
// client written in the page (CONNECT, SUB bcast, answers PING, parses MSG). A TCP publisher sends a burst of
// `--msgs` messages of `--size` bytes to `bcast`; every connection acknowledges the burst's last message
// (PUB to its reply subject) and the time from the publish to the last acknowledgement is one sample.
// natter and nats-server alternate (A B B A ...) in one run; the server's RSS is read with the connections
// open and idle, and at its peak during the bursts.
import { readFileSync } from "node:fs";
import net from "node:net";
import { track, untrack } from "./children.ts";
import { rssKb, startServer, type RunningServer, type ServerKind } from "./servers.ts";

const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const CONNS = arg("conns", 200);
const PAGES = Math.max(1, Math.min(CONNS, arg("pages", 4)));
const MSGS = arg("msgs", 100);
const SIZE = Math.max(8, arg("size", 128));
const ROUNDS = arg("rounds", 10);
const WARMUP_BURSTS = 3;
const BURSTS = arg("bursts", 10);
const natsBinAt = process.argv.indexOf("--nats-server");
const NATS_BIN = natsBinAt >= 0 ? process.argv[natsBinAt + 1] : undefined;

/** The page's NATS client: `count` WebSockets, each acking the last message of every burst. Runs in the browser. */
function pageClient(args: { url: string; count: number; msgs: number }): Promise<number> {
  const { url, count, msgs } = args;
  const enc = new TextEncoder();
  const dec = new TextDecoder("latin1");
  const open = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      ws.binaryType = "arraybuffer";
      let buf = new Uint8Array(0);
      let ready = false;
      ws.onerror = () => reject(new Error("websocket error"));
      ws.onmessage = (ev: MessageEvent) => {
        const chunk = new Uint8Array(ev.data as ArrayBuffer);
        const joined = new Uint8Array(buf.length + chunk.length);
        joined.set(buf);
        joined.set(chunk, buf.length);
        buf = joined;
        let at = 0;
        for (;;) {
          let eol = -1;
          for (let i = at; i + 1 < buf.length; i++) {
            if (buf[i] === 13 && buf[i + 1] === 10) {
              eol = i;
              break;
            }
          }
          if (eol < 0) break;
          const line = dec.decode(buf.subarray(at, eol));
          if (line.startsWith("MSG ")) {
            const parts = line.split(" ");
            const size = Number(parts[parts.length - 1]);
            if (buf.length < eol + 2 + size + 2) break; // the payload is not all here yet
            const payload = dec.decode(buf.subarray(eol + 2, eol + 2 + size));
            const seq = Number(payload.slice(0, payload.indexOf(" ")));
            if (seq === msgs - 1 && parts.length === 5) ws.send(enc.encode(`PUB ${parts[3]} 0\r\n\r\n`));
            at = eol + 2 + size + 2;
            continue;
          }
          at = eol + 2;
          if (line.startsWith("INFO ")) ws.send(enc.encode('CONNECT {"verbose":false,"pedantic":false,"protocol":1}\r\nSUB bcast 1\r\nPING\r\n'));
          else if (line === "PING") ws.send(enc.encode("PONG\r\n"));
          else if (line === "PONG" && !ready) {
            ready = true;
            resolve();
          }
        }
        buf = buf.subarray(at);
      };
    });
  const all: Promise<void>[] = [];
  for (let i = 0; i < count; i++) all.push(open());
  return Promise.all(all).then(() => count);
}

/** The TCP publisher: bursts to `bcast` with reply `ack`, and counts the acknowledgements. */
class Publisher {
  private socket!: net.Socket;
  private text = "";
  private acks = 0;
  private wake: (() => void) | null = null;

  async connect(port: number): Promise<void> {
    this.socket = net.connect({ host: "127.0.0.1", port });
    await new Promise((r) => this.socket.once("connect", r));
    this.socket.setNoDelay(true);
    this.socket.on("data", (chunk: Buffer) => {
      this.text += chunk.toString("latin1");
      let eol: number;
      while ((eol = this.text.indexOf("\r\n")) >= 0) {
        const line = this.text.slice(0, eol);
        if (line.startsWith("MSG ")) {
          if (this.text.length < eol + 4) break; // "MSG ack 1 0\r\n\r\n"
          this.text = this.text.slice(eol + 4);
          this.acks++;
          if (this.wake !== null) this.wake();
          continue;
        }
        this.text = this.text.slice(eol + 2);
        if (line === "PING") this.socket.write("PONG\r\n");
        else if (line === "PONG" && this.wake !== null) this.wake();
      }
    });
    this.socket.write('CONNECT {"verbose":false,"pedantic":false,"protocol":1}\r\nSUB ack 1\r\nPING\r\n');
    await new Promise<void>((r) => (this.wake = r));
  }

  /** One burst; resolves with the milliseconds until `expected` acknowledgements arrived. */
  async burst(expected: number): Promise<number> {
    const pad = "x".repeat(SIZE);
    let frames = "";
    for (let seq = 0; seq < MSGS; seq++) {
      const body = `${seq} ${pad}`.slice(0, SIZE);
      frames += `PUB bcast ack ${SIZE}\r\n${body}\r\n`;
    }
    this.acks = 0;
    const done = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.acks} of ${expected} acknowledgements within 30 s`)), 30_000);
      this.wake = () => {
        if (this.acks < expected) return;
        clearTimeout(timer);
        resolve();
      };
    });
    const started = performance.now();
    this.socket.write(frames);
    await done;
    return performance.now() - started;
  }

  close(): void {
    this.socket.destroy();
  }
}

/** A process's CPU time (user + system) in ms, from /proc (clock ticks of 10 ms). */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

interface Sample {
  server: ServerKind;
  ms: number[];
  /** The server's CPU time per burst (ms), over the measured bursts. */
  cpuPerBurst: number;
  idleRssKb: number;
  peakRssKb: number;
}

async function runRound(browser: import("playwright-core").Browser, kind: ServerKind): Promise<Sample> {
  const server: RunningServer = await startServer(kind, true, { natsBin: NATS_BIN, fdLimit: CONNS + 100 });
  const context = await browser.newContext();
  const publisher = new Publisher();
  try {
    const url = `ws://127.0.0.1:${server.wsPort}`;
    const perPage = Math.ceil(CONNS / PAGES);
    const opened: Promise<number>[] = [];
    for (let p = 0; p < PAGES; p++) {
      const count = Math.min(perPage, CONNS - p * perPage);
      if (count <= 0) break;
      const page = await context.newPage();
      opened.push(page.evaluate(pageClient, { url, count, msgs: MSGS }));
    }
    const total = (await Promise.all(opened)).reduce((a, b) => a + b, 0);
    await publisher.connect(server.port);
    const idleRssKb = rssKb(server.pid) ?? 0;
    let peakRssKb = idleRssKb;
    const sampler = setInterval(() => (peakRssKb = Math.max(peakRssKb, rssKb(server.pid) ?? 0)), 10);
    const ms: number[] = [];
    let cpuStart = 0;
    try {
      for (let b = 0; b < WARMUP_BURSTS + BURSTS; b++) {
        if (b === WARMUP_BURSTS) cpuStart = cpuMs(server.pid);
        const t = await publisher.burst(total);
        if (b >= WARMUP_BURSTS) ms.push(t);
      }
    } finally {
      clearInterval(sampler);
    }
    return { server: kind, ms, cpuPerBurst: (cpuMs(server.pid) - cpuStart) / BURSTS, idleRssKb, peakRssKb };
  } finally {
    publisher.close();
    await context.close();
    await server.stop();
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const range = (xs: number[], digits = 0): string => `${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)}`;

const { chromium } = await import("playwright-core");
const browser = await chromium.launch({ executablePath: CHROMIUM, args: process.getuid?.() === 0 ? ["--no-sandbox"] : [] });
track({ kill: () => void browser.close() });
const samples: Sample[] = [];
const load = () => (require("node:os") as typeof import("node:os")).loadavg().map((l) => l.toFixed(2)).join(", ");
console.log(`WebSocket broadcast: ${CONNS} browser connections over ${PAGES} tab(s), bursts of ${MSGS} × ${SIZE} B, ${BURSTS} bursts per round (+${WARMUP_BURSTS} warm-up), ${ROUNDS} round(s) per server; load average ${load()}`);
try {
  for (let r = 0; r < ROUNDS; r++) {
    const order: ServerKind[] = r % 2 === 0 ? ["natter", "nats"] : ["nats", "natter"];
    for (const kind of order) {
      const s = await runRound(browser, kind);
      samples.push(s);
      console.log(`  round ${r + 1} ${kind.padEnd(6)} burst acknowledged in median ${median(s.ms).toFixed(1)} ms [${range(s.ms, 1)}], server CPU ${s.cpuPerBurst.toFixed(1)} ms per burst, RSS idle ${(s.idleRssKb / 1024).toFixed(1)} MiB, peak ${(s.peakRssKb / 1024).toFixed(1)} MiB`);
    }
  }
} finally {
  await browser.close();
  untrack(browser as never);
}

console.log("\nserver        acknowledged (median of rounds' medians)  server CPU per burst  RSS idle, MiB         RSS peak, MiB");
const summary: Record<string, { ms: number; cpu: number; idle: number; peak: number }> = {};
for (const kind of ["natter", "nats"] as ServerKind[]) {
  const mine = samples.filter((s) => s.server === kind);
  const medians = mine.map((s) => median(s.ms));
  const cpu = mine.map((s) => s.cpuPerBurst);
  const idle = mine.map((s) => s.idleRssKb / 1024);
  const peak = mine.map((s) => s.peakRssKb / 1024);
  summary[kind] = { ms: median(medians), cpu: median(cpu), idle: median(idle), peak: median(peak) };
  console.log(`${(kind === "nats" ? "nats-server" : kind).padEnd(12)}  ${median(medians).toFixed(1).padStart(7)} ms [${range(medians, 1)}]`.padEnd(56) + `${median(cpu).toFixed(1)} ms [${range(cpu, 1)}]`.padEnd(22) + `${median(idle).toFixed(1)} [${range(idle, 1)}]`.padEnd(22) + `${median(peak).toFixed(1)} [${range(peak, 1)}]`);
}
const a = summary.natter!;
const b = summary.nats!;
console.log(`natter / nats-server: acknowledged ${(a.ms / b.ms).toFixed(2)}×, server CPU ${(a.cpu / b.cpu).toFixed(2)}×, RSS idle ${(a.idle / b.idle).toFixed(2)}×, peak ${(a.peak / b.peak).toFixed(2)}×; load average at the end ${load()}`);
