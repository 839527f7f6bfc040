// `bun bench/ws-compression.ts [--rounds N] [--size BYTES]`: how long a large message takes from a TCP publisher
// to a WebSocket subscriber that negotiated permessage-deflate, natter (--ws_compression) against nats-server
// (websocket { compression: true }), for an incompressible payload (random bytes) and a compressible one (text).
// The subscriber is a plain client of its own (node:net + zlib, as a browser: it inflates what comes with RSV1).
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import zlib from "node:zlib";

const ROOT = path.resolve(import.meta.dirname, "..");
const HOST = "127.0.0.1";
const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const ROUNDS = arg("rounds", 30);
const SIZE = arg("size", 1024 * 1024);

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, HOST, () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

async function startServer(kind: "natter" | "nats-server"): Promise<{ port: number; wsPort: number; child: ChildProcess }> {
  const port = await freePort();
  const wsPort = await freePort();
  let child: ChildProcess;
  if (kind === "natter") {
    child = spawn(path.join(ROOT, "node_modules/.bin/bun"), [path.join(ROOT, "src/main.ts"), "-a", HOST, "-p", String(port), "--ws_host", HOST, "--ws_port", String(wsPort), "--ws_compression", "--max_payload", "8MB"], { stdio: "ignore" });
  } else {
    const dir = mkdtempSync(path.join(os.tmpdir(), "ws-compression-"));
    const conf = path.join(dir, "nats.conf");
    writeFileSync(conf, `max_payload: 8MB\nwebsocket { host: "${HOST}", port: ${wsPort}, no_tls: true, compression: true }\n`);
    child = spawn("nats-server", ["-a", HOST, "-p", String(port), "-c", conf], { stdio: "ignore" });
  }
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: HOST, port: wsPort }, () => {
        s.destroy();
        resolve(true);
      });
      s.on("error", () => resolve(false));
    });
    if (ok) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return { port, wsPort, child };
}

/** A WebSocket subscriber: resolves `next()` with the arrival time of each complete MSG of `size` bytes. */
async function wsSubscriber(wsPort: number, subject: string, size: number): Promise<{ next(): Promise<number>; compressedFrames: () => number; close(): void }> {
  const socket = net.connect({ host: HOST, port: wsPort });
  await new Promise((r) => socket.once("connect", r));
  socket.setNoDelay(true);
  socket.write(
    `GET / HTTP/1.1\r\nHost: ${HOST}:${wsPort}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n` +
      `Sec-WebSocket-Key: ${randomBytes(16).toString("base64")}\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n`,
  );
  let buf: Buffer = Buffer.alloc(0);
  let upgraded = false;
  let stream = ""; // the NATS byte stream (latin1), after inflation
  let compressed = 0;
  let ponged = false;
  const arrivals: number[] = [];
  let wake: (() => void) | null = null;
  const fragments: Buffer[] = [];
  let fragmentCompressed = false;
  socket.on("data", (chunk: Buffer) => {
    buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
    if (!upgraded) {
      const end = buf.indexOf("\r\n\r\n");
      if (end < 0) return;
      upgraded = true;
      buf = buf.subarray(end + 4);
    }
    for (;;) {
      if (buf.length < 2) break;
      const fin = (buf[0]! & 0x80) !== 0;
      const rsv1 = (buf[0]! & 0x40) !== 0;
      const opcode = buf[0]! & 0x0f;
      let len = buf[1]! & 0x7f;
      let off = 2;
      if (len === 126) {
        if (buf.length < 4) break;
        len = buf.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (buf.length < 10) break;
        len = Number(buf.readBigUInt64BE(2));
        off = 10;
      }
      if (buf.length < off + len) break;
      const payload = buf.subarray(off, off + len);
      buf = buf.subarray(off + len);
      if (opcode >= 8) continue;
      if (opcode !== 0) fragmentCompressed = rsv1;
      fragments.push(Buffer.from(payload));
      if (!fin) continue;
      let message = Buffer.concat(fragments);
      fragments.length = 0;
      if (fragmentCompressed) {
        compressed++;
        message = zlib.inflateRawSync(Buffer.concat([message, Buffer.from([0, 0, 0xff, 0xff])]), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
      }
      stream += message.toString("latin1");
      if (stream.includes("PONG\r\n")) ponged = true;
      // Complete MSGs of our subject: take them off the stream.
      for (;;) {
        const at = stream.indexOf(`MSG ${subject} `);
        if (at < 0) break;
        const lineEnd = stream.indexOf("\r\n", at);
        if (lineEnd < 0) break;
        const total = Number(stream.slice(at, lineEnd).split(" ").at(-1));
        if (stream.length < lineEnd + 2 + total + 2) break;
        stream = stream.slice(lineEnd + 2 + total + 2);
        arrivals.push(performance.now());
        wake?.();
      }
      if (stream.length > 0 && !stream.includes("MSG")) stream = "";
    }
  });
  const send = (text: string) => {
    // Client frames are masked (a zero mask keeps the payload as is).
    const payload = Buffer.from(text);
    const head = payload.length < 126 ? Buffer.from([0x82, 0x80 | payload.length, 0, 0, 0, 0]) : Buffer.from([0x82, 0x80 | 126, payload.length >> 8, payload.length & 0xff, 0, 0, 0, 0]);
    socket.write(Buffer.concat([head, payload]));
  };
  // After the 101 (bytes sent before it may be lost with the HTTP request's buffer).
  while (!upgraded) await new Promise((r) => setTimeout(r, 5));
  send(`CONNECT {"verbose":false,"pedantic":false}\r\nSUB ${subject} 1\r\nPING\r\n`);
  // Wait for the PONG: the subscription is in place.
  await new Promise<void>((resolve) => {
    const check = setInterval(() => {
      if (ponged) {
        clearInterval(check);
        resolve();
      }
    }, 5);
  });
  return {
    next: () =>
      new Promise<number>((resolve) => {
        const take = () => {
          if (arrivals.length > 0) {
            wake = null;
            resolve(arrivals.shift()!);
          } else wake = take;
        };
        take();
      }),
    compressedFrames: () => compressed,
    close: () => socket.destroy(),
  };
}

async function measure(kind: "natter" | "nats-server", payload: Buffer): Promise<{ times: number[]; compressed: number }> {
  const server = await startServer(kind);
  try {
    const sub = await wsSubscriber(server.wsPort, "big", payload.length);
    const pub = net.connect({ host: HOST, port: server.port });
    await new Promise((r) => pub.once("connect", r));
    pub.setNoDelay(true);
    pub.write(`CONNECT {"verbose":false,"pedantic":false}\r\n`);
    const frame = Buffer.concat([Buffer.from(`PUB big ${payload.length}\r\n`), payload, Buffer.from("\r\n")]);
    const times: number[] = [];
    for (let i = 0; i < ROUNDS + 3; i++) {
      const sentAt = performance.now();
      pub.write(frame);
      const arrived = await sub.next();
      if (i >= 3) times.push(arrived - sentAt); // the first rounds warm both sides up
    }
    pub.destroy();
    const compressed = sub.compressedFrames();
    sub.close();
    return { times, compressed };
  } finally {
    server.child.kill("SIGKILL");
  }
}

function summary(times: number[]): string {
  const sorted = [...times].sort((a, b) => a - b);
  const q = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!.toFixed(1);
  return `min ${q(0)}  p50 ${q(0.5)}  p90 ${q(0.9)}  max ${sorted.at(-1)!.toFixed(1)} ms`;
}

const payloads: [string, Buffer][] = [
  ["incompressible (random)", randomBytes(SIZE)],
  ["compressible (text)", Buffer.from("natter speaks NATS over WebSocket; ".repeat(Math.ceil(SIZE / 35)).slice(0, SIZE))],
];
console.log(`${SIZE} B messages, TCP publisher → WebSocket subscriber with permessage-deflate, ${ROUNDS} rounds each`);
for (const [label, payload] of payloads) {
  for (const kind of ["natter", "nats-server"] as const) {
    const { times, compressed } = await measure(kind, payload);
    console.log(`${label.padEnd(26)} ${kind.padEnd(12)} ${summary(times)}   (${compressed} compressed frames)`);
  }
}
process.exit(0);
