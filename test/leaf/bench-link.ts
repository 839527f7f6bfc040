#!/usr/bin/env bun
// Throughput and request-reply latency through a leafnode link, side by side:
//   nats-server leaf → nats-server hub   natter leaf → natter hub   natter leaf → nats-server hub   nats-server leaf → natter hub
// Publisher (and requester) on the leaf, subscriber (and responder) on the hub: every message crosses
// the link. Raw sockets, no client library: the publisher writes batches of PUB frames and stays at most
// WINDOW messages ahead of what the subscriber has counted; the requester sends one request at a time.
//
//   bun test/leaf/bench-link.ts [--seconds 3] [--size 128] [--rounds 1]
// Not a test (vitest only runs *.test.ts); both servers are started fresh per pairing on free ports.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";

const REPO = path.resolve(import.meta.dirname, "../..");
const HOST = "127.0.0.1";
const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const SECONDS = arg("seconds", 3);
const SIZE = arg("size", 128);
const ROUNDS = arg("rounds", 1);
const WINDOW = 50_000;
const LAT_SAMPLES = 5_000;

type Kind = "natter" | "nats-server";
const children = new Set<ChildProcess>();
process.on("exit", () => children.forEach((c) => c.kill("SIGKILL")));

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, HOST, () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

async function start(kind: Kind, config: string, dir: string, name: string): Promise<{ port: number; stop(): void }> {
  const port = await freePort();
  const conf = path.join(dir, `${name}.conf`);
  writeFileSync(conf, config);
  const [cmd, args] = kind === "natter"
    ? [path.join(REPO, "node_modules/.bin/bun"), [path.join(REPO, "src/main.ts"), "-c", conf, "-a", HOST, "-p", String(port)]]
    : ["nats-server", ["-c", conf, "-a", HOST, "-p", String(port)]];
  const child = spawn(cmd, args, { stdio: "ignore" });
  children.add(child);
  for (let i = 0; i < 300; i++) {
    if (await new Promise<boolean>((r) => {
      const s = net.connect(port, HOST, () => { s.destroy(); r(true); });
      s.on("error", () => r(false));
    })) break;
    await Bun.sleep(50);
  }
  return { port, stop: () => { child.kill("SIGKILL"); children.delete(child); } };
}

/** A raw client: CONNECT, then everything received goes to onData. */
async function rawClient(port: number, onData: (b: Buffer) => void): Promise<{ write(b: Buffer | string): void; close(): void }> {
  const socket = await Bun.connect({ hostname: HOST, port, socket: { data: (_s, d) => onData(d) } });
  socket.setNoDelay(true);
  const pending: (Buffer | string)[] = [];
  const write = (b: Buffer | string) => {
    if (pending.length > 0) return void pending.push(b);
    const buf = typeof b === "string" ? Buffer.from(b) : b;
    const n = socket.write(buf);
    if (n < buf.length) pending.push(buf.subarray(Math.max(0, n)));
  };
  const flush = () => {
    while (pending.length > 0) {
      const b = pending[0]!;
      const buf = typeof b === "string" ? Buffer.from(b) : b;
      const n = socket.write(buf);
      if (n < buf.length) { pending[0] = buf.subarray(Math.max(0, n)); return; }
      pending.shift();
    }
  };
  const timer = setInterval(flush, 1);
  write('CONNECT {"verbose":false,"pedantic":false,"headers":true}\r\n');
  return { write, close: () => { clearInterval(timer); socket.end(); } };
}

async function throughput(leafPort: number, hubPort: number): Promise<number> {
  const frameLen = `MSG bench.link 1 ${SIZE}\r\n`.length + SIZE + 2;
  let bytes = 0;
  let probeSeen = false;
  let sent = 0;
  let wake: (() => void) | null = null;
  const sub = await rawClient(hubPort, (d) => {
    if (!probeSeen) {
      if (d.includes("bench.probe")) probeSeen = true;
      return;
    }
    bytes += d.length;
    if (wake !== null && sent - bytes / frameLen < WINDOW / 2) {
      const w = wake;
      wake = null;
      w();
    }
  });
  sub.write("SUB bench.link 1\r\nSUB bench.probe 2\r\n");
  // The publisher writes straight to the socket: a short write waits for drain; the window waits for the subscriber.
  let drained: (() => void) | null = null;
  const pubSocket = await Bun.connect({ hostname: HOST, port: leafPort, socket: { data() {}, drain() { const d = drained; drained = null; d?.(); } } });
  pubSocket.setNoDelay(true);
  const writeAll = async (buf: Buffer) => {
    let at = 0;
    while (at < buf.length) {
      const n = pubSocket.write(buf.subarray(at));
      at += Math.max(0, n);
      if (at < buf.length) await new Promise<void>((r) => (drained = r));
    }
  };
  await writeAll(Buffer.from('CONNECT {"verbose":false,"pedantic":false}\r\n'));
  while (!probeSeen) {
    await writeAll(Buffer.from("PUB bench.probe 0\r\n\r\n"));
    await Bun.sleep(20);
  }
  await Bun.sleep(100);
  bytes = 0;
  const frame = Buffer.from(`PUB bench.link ${SIZE}\r\n${"x".repeat(SIZE)}\r\n`);
  const PER_BATCH = 1000;
  const batch = Buffer.concat(Array.from({ length: PER_BATCH }, () => frame));
  const started = performance.now();
  const end = started + SECONDS * 1000;
  while (performance.now() < end) {
    if (sent - bytes / frameLen >= WINDOW) {
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(() => { if (wake === r) { wake = null; r(); } }, 50);
      });
      continue;
    }
    await writeAll(batch);
    sent += PER_BATCH;
  }
  const elapsed = (performance.now() - started) / 1000;
  const rate = bytes / frameLen / elapsed;
  pubSocket.end();
  sub.close();
  return rate;
}

async function latency(leafPort: number, hubPort: number): Promise<{ p50: number; p99: number }> {
  let respCarry = "";
  const responder = await rawClient(hubPort, (d) => {
    respCarry += d.toString("latin1");
    let m: RegExpExecArray | null;
    const re = /MSG bench\.req 1 (\S+) 5\r\nhello\r\n/g;
    let last = 0;
    while ((m = re.exec(respCarry)) !== null) { responder.write(`PUB ${m[1]} 5\r\nhello\r\n`); last = re.lastIndex; }
    respCarry = respCarry.slice(last);
  });
  responder.write("SUB bench.req 1\r\nPING\r\n");
  let waiting: (() => void) | null = null;
  let reqCarry = "";
  const requester = await rawClient(leafPort, (d) => {
    reqCarry += d.toString("latin1");
    if (reqCarry.includes("hello\r\n")) { reqCarry = ""; waiting?.(); }
  });
  requester.write("SUB _INBOX.bench 9\r\n");
  const once = (timeoutMs: number) => new Promise<boolean>((resolve) => {
    const t = setTimeout(() => { waiting = null; resolve(false); }, timeoutMs);
    waiting = () => { clearTimeout(t); waiting = null; resolve(true); };
    requester.write("PUB bench.req _INBOX.bench 5\r\nhello\r\n");
  });
  while (!(await once(200))); // until interest crossed both ways
  for (let i = 0; i < 200; i++) await once(2000); // warm-up
  const samples: number[] = [];
  for (let i = 0; i < LAT_SAMPLES; i++) {
    const t0 = performance.now();
    await once(2000);
    samples.push((performance.now() - t0) * 1000);
  }
  samples.sort((a, b) => a - b);
  responder.close();
  requester.close();
  return { p50: samples[Math.floor(samples.length * 0.5)]!, p99: samples[Math.floor(samples.length * 0.99)]! };
}

const PAIRINGS: [Kind, Kind][] = [["nats-server", "nats-server"], ["natter", "natter"], ["natter", "nats-server"], ["nats-server", "natter"]];
console.log(`leaf → hub, ${SIZE} B payloads, ${SECONDS} s throughput runs, ${LAT_SAMPLES} request-reply round trips, ${ROUNDS} round(s)`);
console.log("leaf → hub                    msgs/s      req-reply p50 µs   p99 µs");
for (let round = 0; round < ROUNDS; round++) {
  for (const [leafKind, hubKind] of PAIRINGS) {
    const dir = mkdtempSync(path.join(os.tmpdir(), "natter-bench-link-"));
    const leafPort = await freePort();
    const hub = await start(hubKind, `leafnodes { listen: "${HOST}:${leafPort}" }\n`, dir, "hub");
    const leaf = await start(leafKind, `leafnodes { remotes [ { url: "nats-leaf://${HOST}:${leafPort}" } ] }\n`, dir, "leaf");
    try {
      const rate = await throughput(leaf.port, hub.port);
      const lat = await latency(leaf.port, hub.port);
      console.log(`${`${leafKind} → ${hubKind}`.padEnd(28)} ${(rate / 1e6).toFixed(3).padStart(7)}M   ${lat.p50.toFixed(0).padStart(12)}   ${lat.p99.toFixed(0).padStart(8)}`);
    } finally {
      leaf.stop();
      hub.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }
}
process.exit(0);
