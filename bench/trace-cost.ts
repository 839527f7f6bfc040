// What a traced message costs: the same stream of HPUBs (one publisher, one subscriber), once with an
// ordinary header and once with Nats-Trace-Dest (a tracer subscribed to the events), on a fresh natter
// each. Prints microseconds per message for both and the difference.
// `bun bench/trace-cost.ts [N] [rounds] [plain]` (plain: only the ordinary header, e.g. on a build without tracing)
import net from "node:net";
import { spawn } from "node:child_process";
import { join } from "node:path";

const ROOT = join(import.meta.dir, "..");
const N = Number(process.argv[2] ?? 20_000);
const ROUNDS = Number(process.argv[3] ?? 3);
const PLAIN_ONLY = process.argv[4] === "plain";

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** A raw client counting occurrences of `needle` in what it receives. */
async function client(port: number, setup: string, needle: string): Promise<{ socket: net.Socket; count: () => number; ready: Promise<void> }> {
  const socket = net.connect({ host: "127.0.0.1", port });
  let count = 0;
  let tail = "";
  let pong: () => void = () => {};
  const ready = new Promise<void>((r) => (pong = r));
  socket.on("data", (d: Buffer) => {
    const text = tail + d.toString("latin1");
    let at = text.indexOf(needle);
    while (at >= 0) {
      count++;
      at = text.indexOf(needle, at + needle.length);
    }
    if (text.includes("PONG")) pong();
    tail = text.slice(-needle.length + 1);
  });
  await new Promise<void>((r) => socket.once("connect", () => r()));
  socket.write(`CONNECT {"verbose":false,"pedantic":false,"headers":true}\r\n${setup}PING\r\n`);
  return { socket, count: () => count, ready };
}

function frame(headers: string): Buffer {
  const block = `NATS/1.0\r\n${headers}\r\n\r\n`;
  const payload = "x".repeat(128);
  return Buffer.from(`HPUB foo ${block.length} ${block.length + payload.length}\r\n${block}${payload}\r\n`, "latin1");
}

async function run(traced: boolean): Promise<number> {
  const port = await freePort();
  const child = spawn(process.execPath, [join(ROOT, "src/main.ts"), "-a", "127.0.0.1", "-p", String(port)], { stdio: "ignore" });
  try {
    for (let k = 0; ; k++) {
      const ok = await new Promise<boolean>((r) => net.connect({ host: "127.0.0.1", port }).once("connect", function (this: net.Socket) { this.destroy(); r(true); }).once("error", () => r(false)));
      if (ok) break;
      if (k > 200) throw new Error("natter did not start");
      await Bun.sleep(50);
    }
    const sub = await client(port, "SUB foo 1\r\n", "HMSG foo");
    const tracer = await client(port, "SUB trace.out 1\r\n", "MSG trace.out");
    const pub = await client(port, "", "\u0000");
    await Promise.all([sub.ready, tracer.ready, pub.ready]);
    const one = frame(traced ? "Nats-Trace-Dest: trace.out" : "X-Order: 12345678901");
    const batch = Buffer.concat(Array.from({ length: 100 }, () => one));
    const start = performance.now();
    for (let sent = 0; sent < N; sent += 100) {
      if (!pub.socket.write(batch)) await new Promise<void>((r) => pub.socket.once("drain", () => r()));
    }
    while (sub.count() < N || (traced && tracer.count() < N)) await Bun.sleep(1);
    const us = ((performance.now() - start) * 1000) / N;
    for (const c of [sub, tracer, pub]) c.socket.destroy();
    return us;
  } finally {
    child.kill("SIGKILL");
  }
}

const plain: number[] = [];
const traced: number[] = [];
for (let r = 0; r < ROUNDS; r++) {
  plain.push(await run(false));
  if (!PLAIN_ONLY) traced.push(await run(true));
}
const fmt = (xs: number[]) => xs.map((x) => x.toFixed(2)).join(" / ");
console.log(`${N} HPUBs of 128 B, one subscriber, ${ROUNDS} rounds (µs per message):`);
console.log(`  ordinary header:  ${fmt(plain)}`);
if (!PLAIN_ONLY) console.log(`  Nats-Trace-Dest:  ${fmt(traced)}  (plus one trace event per message to a tracer)`);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
if (!PLAIN_ONLY) console.log(`  median cost of tracing: ${(median(traced) - median(plain)).toFixed(2)} µs per message`);
