// In-process A/B of the client delivery path, for a change to it (src/connection.ts, src/link.ts,
// src/router.ts): both checkouts' Connection, Subscription and deliverToMatches in one process, real
// Connection objects on a transport that takes every write, the dirty connections flushed every 256
// messages (a read's worth). Rounds alternate A B, B A; prints ns per published message, median
// [min–max] and the ratio of the medians. On a busy machine the minimum is the steadier figure.
//
//   bun bench/deliver-ab.ts <checkout A> <checkout B>     (ROUNDS=16 for more rounds; A/A for the noise)
//
// A micro-benchmark of one path, not of the server: what the socket, the parser and the match cost is
// out of it (bench/run.ts measures the whole).
import type { Server } from "../src/server.ts";
import type { SublistResult } from "../src/subjects/sublist.ts";
import type { Subscription } from "../src/subscription.ts";

const [dirA, dirB] = process.argv.slice(2);
if (dirA === undefined || dirB === undefined) {
  console.error("usage: bun bench/deliver-ab.ts <checkout A> <checkout B>");
  process.exit(2);
}

const SCENARIOS = { "pub-sub": 2_000_000, "fan-out-10": 300_000, "queue-10": 1_000_000, "wildcard-10": 300_000 } as const;
type Scenario = keyof typeof SCENARIOS;

/** A delivery loop over one checkout's code: returns ns per published message for `n` messages. */
async function load(dir: string): Promise<(scenario: Scenario, n: number) => number> {
  const { Connection } = (await import(`${dir}/src/connection.ts`)) as typeof import("../src/connection.ts");
  const { Subscription } = (await import(`${dir}/src/subscription.ts`)) as typeof import("../src/subscription.ts");
  const { deliverToMatches } = (await import(`${dir}/src/router.ts`)) as typeof import("../src/router.ts");
  const dirty: { flush(): void }[] = [];
  const stats = { inMsgs: 0, inBytes: 0, outMsgs: 0, outBytes: 0, slowConsumers: 0, stalls: 0, noInterestMsgs: 0 };
  const quiet = () => {};
  // What a Connection reads of its server on the delivery path.
  const server = {
    options: { maxPayload: 1 << 20, maxControlLine: 4096, maxPending: 64 << 20, pingIntervalMs: 120_000, noHeaderSupport: false },
    accounts: { global: { connections: 0, mappings: null } },
    tracing: false,
    stats,
    log: { info: quiet, error: quiet, debug: quiet, trace: quiet },
    markDirty: (conn: { flush(): void }) => dirty.push(conn),
  } as unknown as Server;
  let cid = 1;
  const connection = () => {
    const transport = { kind: "tcp" as const, remoteAddress: "127.0.0.1", remotePort: 1, blocked: false, write: (_b: Buffer, start: number, end: number) => end - start, pauseReading: quiet, resumeReading: quiet, close: quiet };
    const conn = new Connection(server, transport, cid++);
    conn.headers = true;
    return conn;
  };
  const subs = (subject: string, queue: string | null, literal: boolean) =>
    Array.from({ length: 10 }, (_, i) => new Subscription(connection(), subject, queue, String(i + 1), literal));
  const publisher = connection();
  const results: Record<Scenario, SublistResult<Subscription>> = {
    "pub-sub": { plain: [new Subscription(connection(), "foo.bar", null, "1", true)], queues: [] },
    "fan-out-10": { plain: subs("foo.bar", null, true), queues: [] },
    "queue-10": { plain: [], queues: [subs("foo.bar", "q", true)] },
    "wildcard-10": { plain: subs("foo.*", null, false), queues: [] },
  };
  const frame = Buffer.from(`PUB foo.bar 128\r\n${"x".repeat(128)}\r\n`);
  const payloadStart = frame.indexOf("\r\n") + 2;
  return (scenario, n) => {
    const result = results[scenario];
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      deliverToMatches(result, publisher, false, frame, 4, 11, -1, -1, -1, payloadStart, payloadStart + 128, 12);
      if ((i & 255) === 255) {
        for (const conn of dirty) conn.flush();
        dirty.length = 0;
      }
    }
    return ((performance.now() - t0) * 1e6) / n;
  };
}

const runA = await load(dirA);
const runB = await load(dirB);
const names = Object.keys(SCENARIOS) as Scenario[];
for (const name of names) {
  runA(name, SCENARIOS[name]); // warm-up: both sides compiled before the first timed round
  runB(name, SCENARIOS[name]);
}
const rounds = Number(process.env.ROUNDS ?? 8);
const a = new Map<Scenario, number[]>(names.map((n) => [n, []]));
const b = new Map<Scenario, number[]>(names.map((n) => [n, []]));
for (let r = 0; r < rounds; r++) {
  for (const name of names) {
    if (r % 2 === 0) {
      a.get(name)!.push(runA(name, SCENARIOS[name]));
      b.get(name)!.push(runB(name, SCENARIOS[name]));
    } else {
      b.get(name)!.push(runB(name, SCENARIOS[name]));
      a.get(name)!.push(runA(name, SCENARIOS[name]));
    }
  }
}
const median = (v: number[]) => [...v].sort((x, y) => x - y)[v.length >> 1]!;
const show = (v: number[]) => `${median(v).toFixed(1)} [${Math.min(...v).toFixed(1)}–${Math.max(...v).toFixed(1)}]`;
console.log(`ns per published message, median [min–max] of ${rounds} rounds; A = ${dirA}, B = ${dirB}`);
for (const name of names) {
  const va = a.get(name)!;
  const vb = b.get(name)!;
  console.log(`${name.padEnd(12)} A ${show(va).padEnd(24)} B ${show(vb).padEnd(24)} A/B median ${(median(va) / median(vb)).toFixed(2)}, min ${(Math.min(...va) / Math.min(...vb)).toFixed(2)}`);
}
