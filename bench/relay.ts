// The runtime's ceiling: a minimal Bun TCP relay. It speaks just enough NATS for the load generator
// to connect (INFO, PONG to PING, a SUB marks the subscriber) and then forwards the publisher's bytes
// — already MSG frames — to the subscriber as they arrive, without parsing them. natter's 1:1
// throughput is reported as a fraction of this.
//
//   bun bench/relay.ts --port P
//
// One publisher and one subscriber at a time. Backpressure as in natter: Bun's write() keeps nothing,
// so what the subscriber's socket did not take is kept in one growable buffer, the publisher is paused
// while it is large, and the rest goes out on drain.
import type { Socket } from "bun";

const INFO = Buffer.from('INFO {"server_id":"relay","server_name":"relay","version":"0.0.0","proto":1,"max_payload":1048576,"headers":false}\r\n');
const PONG = Buffer.from("PONG\r\n");
const PAUSE_ABOVE = 8 * 1024 * 1024;

interface State {
  role: "handshake" | "publisher" | "subscriber";
  line: string; // handshake bytes not yet ending in a newline
}

let subscriber: Socket<State> | null = null;
let publisher: Socket<State> | null = null;
let pending = Buffer.allocUnsafe(1 << 20);
let pendingLength = 0;

function forward(data: Buffer, start: number): void {
  const sub = subscriber;
  if (sub === null) return; // nobody listens: dropped, as a server without interest would
  if (pendingLength === 0) {
    const length = data.length - start;
    const written = sub.write(data, start, length);
    if (written >= length) return;
    keep(data, start + Math.max(0, written));
  } else {
    keep(data, start);
  }
  if (pendingLength > PAUSE_ABOVE && publisher !== null) (publisher as unknown as { pause(): void }).pause();
}

function keep(data: Buffer, start: number): void {
  const length = data.length - start;
  if (pendingLength + length > pending.length) {
    const grown = Buffer.allocUnsafe(Math.max(pending.length * 2, pendingLength + length));
    pending.copy(grown, 0, 0, pendingLength);
    pending = grown;
  }
  data.copy(pending, pendingLength, start);
  pendingLength += length;
}

function onDrain(): void {
  const sub = subscriber;
  if (sub === null || pendingLength === 0) return;
  const written = Math.max(0, sub.write(pending, 0, pendingLength));
  if (written > 0) {
    pending.copy(pending, 0, written, pendingLength);
    pendingLength -= written;
  }
  if (pendingLength <= PAUSE_ABOVE / 2 && publisher !== null) (publisher as unknown as { resume(): void }).resume();
}

// Handshake: lines until the client's first MSG frame (publisher) or its SUB (subscriber).
function handshake(socket: Socket<State>, data: Buffer): void {
  const state = socket.data;
  let at = 0;
  while (at < data.length) {
    const nl = data.indexOf(10, at);
    if (nl < 0) {
      state.line += data.latin1Slice(at, data.length);
      return;
    }
    const carried = state.line;
    const line = carried + data.latin1Slice(at, nl);
    state.line = "";
    if (line.startsWith("MSG ")) {
      state.role = "publisher";
      publisher = socket;
      // Everything from this line on is data: the first frame starts where the line did.
      if (carried.length > 0) forward(Buffer.from(carried, "latin1"), 0);
      forward(data, at);
      return;
    }
    at = nl + 1;
    if (line.startsWith("PING")) socket.write(PONG);
    else if (line.startsWith("SUB ")) {
      state.role = "subscriber";
      subscriber = socket;
    }
  }
}

function main(): void {
  const args = process.argv.slice(2);
  const portAt = args.indexOf("--port");
  const port = portAt >= 0 ? Number(args[portAt + 1]) : 4333;
  const hostAt = args.indexOf("--host");
  const hostname = hostAt >= 0 ? args[hostAt + 1]! : "127.0.0.1";
  const listener = Bun.listen<State>({
    hostname,
    port,
    socket: {
      open(socket) {
        socket.setNoDelay(true);
        socket.data = { role: "handshake", line: "" };
        socket.write(INFO);
      },
      data(socket, data) {
        const role = socket.data.role;
        if (role === "publisher") forward(data, 0);
        else if (role === "handshake") handshake(socket, data);
        // The subscriber's own bytes after its SUB (PONGs, PINGs) are not relayed.
      },
      drain(socket) {
        if (socket === subscriber) onDrain();
      },
      close(socket) {
        if (socket === subscriber) {
          subscriber = null;
          pendingLength = 0;
        }
        if (socket === publisher) publisher = null;
      },
      error() {},
    },
  });
  console.log(`relay listening on ${hostname}:${listener.port}`);
}

main();
