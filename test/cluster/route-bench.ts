// Micro-benchmark of the route path in one process: framing a local message for a route
// (deliverToMatches → Route.deliver) and reading a route's MSG frames into a local subscriber
// (Route.onRead → deliverRouted), over fake sockets. Run it against two copies of src/ to see what a
// protocol change costs: `bun test/cluster/route-bench.ts [path/to/src]`.
// With accounts (protocol 3 and later) the same again in a configured account.
import path from "node:path";
import type { Socket } from "bun";

const root = path.resolve(process.argv[2] ?? path.join(import.meta.dirname, "../../src"));
const { Server } = (await import(`${root}/server.ts`)) as typeof import("../../src/server.ts");
const { Logger } = (await import(`${root}/log.ts`)) as typeof import("../../src/log.ts");
const { defaultOptions } = (await import(`${root}/options.ts`)) as typeof import("../../src/options.ts");
const P = (await import(`${root}/cluster/protocol.ts`)) as typeof import("../../src/cluster/protocol.ts");
const R = (await import(`${root}/cluster/route.ts`)) as typeof import("../../src/cluster/route.ts");
const { deliverToMatches } = (await import(`${root}/router.ts`)) as typeof import("../../src/router.ts");
const { Subscription } = (await import(`${root}/subscription.ts`)) as typeof import("../../src/subscription.ts");
type Server = import("../../src/server.ts").Server;
type Route = import("../../src/cluster/route.ts").Route;
type Subscriber = import("../../src/subscriber.ts").Subscriber;
type Sub = import("../../src/subscription.ts").Subscription;

const withAccounts = typeof (R as { accountTable?: unknown }).accountTable === "function";

function server(accounts: string[]): Server {
  const configured = accounts.map((name) => ({ name, users: [], exports: [], imports: [], limits: { maxConnections: -1, maxSubscriptions: -1, maxPayload: -1, maxLeafnodes: -1 }, jetstream: null }));
  return new Server({ ...defaultOptions, wsAllowedOrigins: [], routes: [], host: "127.0.0.1", port: -1, accounts: configured } as never, new Logger(false, false));
}

let capture: Buffer[] | null = null;
function route(s: Server, peer: Server): Route {
  const socket = {
    write(buf: Buffer, start: number, length: number) {
      capture?.push(Buffer.from(buf.subarray(start, start + length)));
      return length;
    },
    end() {},
  } as unknown as Socket<import("../../src/cluster/route.ts").RouteSocketData>;
  const owner = {
    server: s,
    onHello(r: Route) {
      r.state = R.RouteState.OPEN;
      return null;
    },
    onClosed() {},
  };
  const r = new R.Route(owner, socket, false, "127.0.0.1", 1);
  const accounts = withAccounts ? [...R.accountTable(peer).names] : undefined;
  r.onRead(P.helloFrame({ v: P.PROTOCOL_VERSION, cluster: "b", id: "x:1", inc: 1, server_id: "x", server_name: "x", accounts } as never));
  return r;
}

function interest(subject: string, account: number): Buffer {
  const frame = Buffer.alloc(P.interestFrameLength(subject, null, 1));
  const write = P.writeInterestFrame as (...args: unknown[]) => number;
  if (write.length >= 6) write(frame, 0, account, subject, null, 1);
  else write(frame, 0, subject, null, 1);
  return frame;
}

class Sink implements Subscriber {
  readonly isRoute = false;
  readonly headers = true;
  closed = false;
  out = Buffer.allocUnsafe(1 << 20);
  at = 0;
  deliver(sub: Sub, buf: Buffer, _s: number, _e: number, _rs: number, _re: number, _h: number, _ps: number, payloadEnd: number, tailStart: number): void {
    if (this.at > this.out.length - 4096) this.at = 0;
    this.at += sub.msgPrefix!.copy(this.out, this.at);
    this.at += buf.copy(this.out, this.at, tailStart, payloadEnd + 2);
  }
}

const payload = Buffer.alloc(128, 120);
const pub = Buffer.concat([Buffer.from("PUB bench.x 128\r\n"), payload, Buffer.from("\r\n")]);
const [subjectStart, subjectEnd, tailStart, payloadStart] = [4, 11, 12, 17];
const payloadEnd = payloadStart + 128;
const BATCH = 1000;

/** One setup: node 1 frames for its route to node 2; node 2 reads the frames. In account `name` ($G or a configured one). */
function setup(name: string) {
  const s1 = server(name === "$G" ? [] : [name]);
  const s2 = server(name === "$G" ? [] : [name]);
  const acc = (s: Server) => (name === "$G" ? s.sublist : s.accounts.get(name)!.sublist);
  const index = (s: Server) => (withAccounts ? R.accountTable(s).names.indexOf(name) : 0);
  const toB = route(s1, s2);
  toB.onRead(interest("bench.x", index(s2)));
  const result = acc(s1).match("bench.x");
  const fromA = route(s2, s1);
  acc(s2).insert(new Subscription(new Sink(), "bench.x", null, "1", true));
  // BATCH frames as node 1 writes them, for node 2 to read.
  capture = [];
  for (let i = 0; i < BATCH; i++) deliverToMatches(result, null, false, pub, subjectStart, subjectEnd, -1, -1, -1, payloadStart, payloadEnd, tailStart);
  s1.flushDirty();
  const frames = Buffer.concat(capture);
  capture = null;
  return {
    send(n: number): number {
      const t0 = performance.now();
      for (let i = 0; i < n; i += BATCH) {
        for (let k = 0; k < BATCH; k++) deliverToMatches(result, null, false, pub, subjectStart, subjectEnd, -1, -1, -1, payloadStart, payloadEnd, tailStart);
        s1.flushDirty();
      }
      return ((performance.now() - t0) * 1e6) / n;
    },
    receive(n: number): number {
      const t0 = performance.now();
      for (let i = 0; i < n; i += BATCH) fromA.onRead(frames);
      return ((performance.now() - t0) * 1e6) / n;
    },
    frameBytes: frames.length / BATCH,
  };
}

const median = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1]!;
for (const name of withAccounts ? ["$G", "A"] : ["$G"]) {
  const b = setup(name);
  const send: number[] = [];
  const receive: number[] = [];
  for (let r = 0; r < 9; r++) {
    send.push(b.send(1_000_000));
    receive.push(b.receive(1_000_000));
  }
  console.log(
    `${name.padEnd(3)} frame ${b.frameBytes} B  send ${median(send).toFixed(1)} ns/msg (min ${Math.min(...send).toFixed(1)})  ` +
      `receive ${median(receive).toFixed(1)} ns/msg (min ${Math.min(...receive).toFixed(1)})`,
  );
}
