// Micro-benchmark of deliverToMatches on the local path (no routes): run it against two copies of
// router.ts to see what the cluster hooks cost. `bun test/cluster/deliver-bench.ts [path/to/router.ts]`
import { Subscription } from "../../src/subscription.ts";
import type { Subscriber } from "../../src/subscriber.ts";

const routerPath = process.argv[2] ?? "../../src/router.ts";
const { deliverToMatches } = (await import(routerPath)) as typeof import("../../src/router.ts");

class Sink implements Subscriber {
  readonly isRoute = false;
  readonly headers = true;
  closed = false;
  out = Buffer.allocUnsafe(1 << 20);
  at = 0;
  deliver(sub: Subscription, buf: Buffer, _s: number, _e: number, _rs: number, _re: number, _h: number, _ps: number, payloadEnd: number, tailStart: number): void {
    if (this.at > this.out.length - 4096) this.at = 0;
    this.at += sub.msgPrefix!.copy(this.out, this.at);
    this.at += buf.copy(this.out, this.at, tailStart, payloadEnd + 2);
  }
}

const frame = Buffer.from("PUB foo.bar 16\r\n0123456789abcdef\r\n");
const one = new Sink();
const plainResult = { plain: [new Subscription(one, "foo.bar", null, "1", true)], queues: [] };
const members = Array.from({ length: 10 }, (_, i) => new Subscription(new Sink(), "foo.bar", "q", String(i), true));
const queueResult = { plain: [], queues: [members] };
const fan = Array.from({ length: 10 }, (_, i) => new Subscription(new Sink(), "foo.bar", null, String(i), true));
const fanResult = { plain: fan, queues: [] };

function run(name: string, result: Parameters<typeof deliverToMatches>[0], n: number): number {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) deliverToMatches(result, null, false, frame, 4, 11, -1, -1, -1, 16, 32, 12);
  const ns = ((performance.now() - t0) * 1e6) / n;
  return ns;
}

const rounds: Record<string, number[]> = { "pub-sub": [], "queue-10": [], "fan-out-10": [] };
for (let r = 0; r < 7; r++) {
  rounds["pub-sub"]!.push(run("pub-sub", plainResult, 2_000_000));
  rounds["queue-10"]!.push(run("queue-10", queueResult, 2_000_000));
  rounds["fan-out-10"]!.push(run("fan-out-10", fanResult, 500_000));
}
const median = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1]!;
for (const [k, v] of Object.entries(rounds)) console.log(`${k.padEnd(11)} ${median(v).toFixed(1)} ns/msg (median of ${v.length}; min ${Math.min(...v).toFixed(1)})`);
