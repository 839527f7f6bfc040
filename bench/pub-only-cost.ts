// The JavaScript cost of a PUB no one wants: a stream of canonical PUBs (`PUB bench.tp <size>`, the load
// generator's), cut into 300 KiB reads as the kernel hands them to Bun, fed straight to a real Connection of
// a private Server (no socket, no kernel, no Bun read copy). Prints this process's CPU time per message,
// median of 7 timed passes [min–max], after a warm-up: what parsing, the subject match and the counting cost.
// With subscribers (their connections' writes go nowhere), the same for delivery: the other core rows.
// `bun bench/pub-only-cost.ts [size] [checkout] [subscribers] [queue]` (checkout: another worktree's root, "" for this one, to
// compare two builds; queue: the subscribers form one queue group)
import { join } from "node:path";

const size = Number(process.argv[2] ?? 128);
const root = process.argv[3] || join(import.meta.dir, ".."); // "" too: this checkout
const subscribers = Number(process.argv[4] ?? 0);
const queue = process.argv[5] === "queue";
const { Server } = await import(join(root, "src/server.ts"));
const { defaultOptions } = await import(join(root, "src/options.ts"));
const { Logger } = await import(join(root, "src/log.ts"));
const { discardingTcpTransport } = await import(join(root, "src/transport/tcp.ts"));

const server = new Server({ ...defaultOptions, noSystemAccount: true }, new Logger(false, false, () => {}));
const { transport, socket } = discardingTcpTransport();
const conn = server.accept(transport);
socket.data = { connection: conn };
const CONNECT = `CONNECT {"verbose":false,"pedantic":false,"headers":true,"protocol":1}\r\n`;
conn.onRead(Buffer.from(`${CONNECT}PING\r\n`, "latin1"));
for (let n = 0; n < subscribers; n++) {
  const subscriber = discardingTcpTransport();
  const sub = server.accept(subscriber.transport);
  subscriber.socket.data = { connection: sub };
  sub.onRead(Buffer.from(`${CONNECT}SUB bench.tp ${queue ? "q " : ""}1\r\nPING\r\n`, "latin1"));
}

const READ_BYTES = 300 * 1024;
const frame = `PUB bench.tp ${size}\r\n${"x".repeat(size)}\r\n`;
// Whole frames, so that the stream can be fed again and again; the reads cut frames where they fall.
const stream = Buffer.from(frame.repeat(Math.ceil((8 * READ_BYTES) / frame.length)), "latin1");
const reads: Buffer[] = [];
for (let at = 0; at < stream.length; at += READ_BYTES) reads.push(Buffer.from(stream.subarray(at, Math.min(at + READ_BYTES, stream.length))));
const perPass = stream.length / frame.length;

function pass(): void {
  for (const read of reads) conn.onRead(read); // onRead, not the socket's read: these Buffers are fed again
}

for (let i = 0; i < 300; i++) pass();
const nsPerMessage: number[] = [];
const passes = Math.ceil((subscribers > 0 ? 3e6 : 3e7) / perPass);
for (let t = 0; t < 7; t++) {
  const before = process.cpuUsage();
  for (let i = 0; i < passes; i++) pass();
  const cpu = process.cpuUsage(before);
  nsPerMessage.push(((cpu.user + cpu.system) * 1000) / (passes * perPass));
}
if (conn.closed) throw new Error(`the connection closed: ${conn.closeReason}`);
nsPerMessage.sort((a, b) => a - b);
console.log(`${size} B, ${subscribers} ${queue ? "queue " : ""}subscribers: ${nsPerMessage[3]!.toFixed(1)} ns of CPU per message [${nsPerMessage[0]!.toFixed(1)}–${nsPerMessage[6]!.toFixed(1)}] (${root})`);
process.exit(0);
