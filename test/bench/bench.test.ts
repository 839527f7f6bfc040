// `natter bench` run as a process against a natter and a nats-server started here: every message counted,
// latency percentiles present and ordered, the JSON and CSV outputs, and errors as one line with exit 1.
// No timing assertions beyond generous bounds: the machine may be busy.
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { HAVE_NATS_SERVER, NATS_SERVER, bench, benchJson, freePort, startBench, startServer, type TestServer } from "./helpers.ts";

if (!HAVE_NATS_SERVER) console.warn(`natter bench tests: ${NATS_SERVER} is missing, the nats-server half is skipped`);

const kinds = [
  { kind: "natter" as const, skip: false },
  { kind: "nats-server" as const, skip: !HAVE_NATS_SERVER },
];

function expectOrdered(l: Record<string, number>): void {
  const order = ["min", "p50", "p75", "p90", "p99", "p99_9", "p99_99", "max"];
  for (const k of order) {
    expect(typeof l[k], k).toBe("number");
    expect(l[k]!, k).toBeGreaterThan(0);
  }
  for (let i = 1; i < order.length; i++) expect(l[order[i]!]!, `${order[i - 1]} <= ${order[i]}`).toBeGreaterThanOrEqual(l[order[i - 1]!]!);
  expect(l.mean!).toBeGreaterThanOrEqual(l.min!);
  expect(l.mean!).toBeLessThanOrEqual(l.max!);
}

describe.each(kinds)("natter bench against $kind", ({ kind, skip }) => {
  let server: TestServer;
  let s: string[];

  beforeAll(async () => {
    if (skip) return;
    server = await startServer(kind);
    s = ["-s", server.url];
  });
  afterAll(async () => {
    await server?.stop();
  });

  test.skipIf(skip)("pub/sub: every subscriber gets every message", async () => {
    const { run, json } = await benchJson(["pubsub", "bench.exact", ...s, "--msgs", "30000", "--pub", "2", "--sub", "3", "--size", "64"]);
    expect(run.code, run.stderr).toBe(0);
    expect(json.complete).toBe(true);
    expect(json.lost).toBe(0);
    expect(json.sent).toBe(30000);
    expect(json.publishers.msgs).toBe(30000);
    expect(json.publishers.per_client.map((c: any) => c.msgs)).toEqual([15000, 15000]);
    expect(json.subscribers.per_client.map((c: any) => c.msgs)).toEqual([30000, 30000, 30000]);
    expect(json.subscribers.msgs).toBe(90000);
    expect(json.subscribers.bytes).toBe(90000 * 64);
    expect(json.latency.kind).toBe("delivery");
    expect(json.latency.count).toBe(90000);
    expectOrdered(json.latency);
  });

  test.skipIf(skip)("pub/sub with a queue group: each message reaches one member", async () => {
    const { run, json } = await benchJson(["pubsub", "bench.queue", ...s, "--msgs", "20000", "--sub", "3", "--queue", "workers"]);
    expect(run.code, run.stderr).toBe(0);
    const got = json.subscribers.per_client.reduce((a: number, c: any) => a + c.msgs, 0);
    expect(got).toBe(20000);
    expect(json.lost).toBe(0);
  });

  test.skipIf(skip)("pub/sub with publishers in Workers, many subjects and headers", async () => {
    const { run, json } = await benchJson([
      "pubsub", "bench.multi", ...s, "--msgs", "20000", "--pub", "2", "--sub", "2", "--workers", "2",
      "--multisubject", "--multisubjectmax", "50", "-H", "K:V", "-H", "Trace:on",
    ]);
    expect(run.code, run.stderr).toBe(0);
    expect(json.config.workers).toBe(2);
    expect(json.subscribers.per_client.map((c: any) => c.msgs)).toEqual([20000, 20000]);
    expect(json.latency.count).toBe(40000);
  });

  test.skipIf(skip)("a timed, paced run publishes about rate × duration and loses nothing", async () => {
    const { run, json } = await benchJson(["pubsub", "bench.timed", ...s, "--duration", "1s", "--rate", "5000", "--pub", "2"]);
    expect(run.code, run.stderr).toBe(0);
    expect(json.sent).toBeGreaterThan(2000);
    expect(json.sent).toBeLessThanOrEqual(5200);
    expect(json.subscribers.msgs).toBe(json.sent);
    expect(json.config.duration_sec).toBe(1);
  });

  test.skipIf(skip)("pub: the publishers' counts, rates and the text report", async () => {
    const run = await bench(["pub", "bench.pub", ...s, "--msgs", "50000", "--pub", "3"]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^natter bench pub: subject "bench\.pub", 50,000 msgs, 128 B payload, 3 publishers, flat out$/m);
    expect(run.stdout).toMatch(kind === "natter" ? /: natter \(nats-server [\d.]+ compatible/ : /: nats-server \d+\.\d+\.\d+/);
    expect(run.stdout).toMatch(/^Pub stats: [\d,]+ msgs\/s ~ [\d.]+ MB\/s$/m);
    expect(run.stdout).toMatch(/^ \[3\] [\d,]+ msgs\/s ~ [\d.]+ MB\/s \(16,666 msgs\)$/m);
    expect(run.stdout).toMatch(/^ min [\d,]+ \| avg [\d,]+ \| max [\d,]+ \| stddev [\d,]+ msgs\/s$/m);
    expect(run.stderr).toBe("");
  });

  test.skipIf(skip)("request-reply: percentiles present and ordered, a histogram in the text report", async () => {
    const { run, json } = await benchJson(["request", "bench.svc", ...s, "--msgs", "3000", "--clients", "2", "--inflight", "4"]);
    expect(run.code, run.stderr).toBe(0);
    expect(json.mode).toBe("request");
    expect(json.timeouts).toBe(0);
    expect(json.requesters.msgs).toBe(3000);
    expect(json.responders.msgs).toBe(3000);
    expect(json.latency.kind).toBe("round-trip");
    expect(json.latency.count).toBe(3000);
    expectOrdered(json.latency);
    // Generous: a round trip on this machine is well under a second.
    expect(json.latency.p50).toBeLessThan(1_000_000);
    const bins = json.latency.histogram as Array<{ from_us: number; to_us: number; count: number }>;
    expect(bins.reduce((a, b) => a + b.count, 0)).toBe(3000);
    for (const b of bins) expect(b.to_us).toBeGreaterThan(b.from_us);
    for (const c of json.requesters.per_client) expectOrdered(c.latency_us);

    const text = await bench(["request", "bench.svc", ...s, "--msgs", "500"]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^Latency, round trip \(500 samples, µs\):$/m);
    expect(text.stdout).toMatch(/min [\d.,]+ \| avg [\d.,]+ \| stddev [\d.,]+ \| p50 [\d.,]+ \| p90 [\d.,]+ \| p99 [\d.,]+ \| p99\.9 [\d.,]+ \| p99\.99 [\d.,]+ \| max [\d.,]+/);
    expect(text.stdout).toMatch(/µs – .*│.*│ +[\d,]+ +[\d.]+%/);
  });

  test.skipIf(skip)("--json has the run, the servers, the config and each group", async () => {
    const { run, json } = await benchJson(["pubsub", "bench.json", ...s, "--msgs", "5000"]);
    expect(run.code, run.stderr).toBe(0);
    expect(json).toMatchObject({
      mode: "pubsub",
      subject: "bench.json",
      complete: true,
      interrupted: false,
      sent: 5000,
      lost: 0,
      timeouts: 0,
      warnings: [],
      config: { msgs: 5000, size: 128, publishers: 1, subscribers: 1, duration_sec: null },
    });
    expect(json.run_id).toMatch(/^[A-Z0-9]{11}$/);
    expect(Number.isNaN(Date.parse(json.started))).toBe(false);
    expect(json.servers).toHaveLength(1);
    expect(json.servers[0].url).toBe(server.url);
    expect(json.servers[0].version).toMatch(/^\d+\.\d+\.\d+/);
    for (const g of [json.aggregate, json.publishers, json.subscribers]) {
      expect(g.msgs_per_sec).toBeGreaterThan(0);
      expect(g.mb_per_sec).toBeGreaterThan(0);
      expect(g.seconds).toBeGreaterThan(0);
    }
    for (const k of ["rate_min", "rate_avg", "rate_max", "rate_stddev", "per_client"]) expect(json.publishers).toHaveProperty(k);
    expect(json.requesters).toBeNull();
    expect(json.elapsed_sec).toBeGreaterThan(0);
    expect(json.elapsed_sec).toBeLessThan(60);
  });

  test.skipIf(skip)("--csv has nats bench's header and one row per client", async () => {
    const run = await bench(["pubsub", "bench.csv", ...s, "--msgs", "4000", "--pub", "2", "--sub", "2", "--csv"]);
    expect(run.code, run.stderr).toBe(0);
    const lines = run.stdout.trim().split("\n");
    expect(lines[0]).toBe(
      "#RunID,ClientID,MsgCount,MsgBytes,MsgsPerSec,BytesPerSec,DurationSecs,MinLatencyMicroSecs,AvgLatencyMicroSecs,MaxLatencyMicroSecs,P50LatencyMicroSecs,P90LatencyMicroSecs,P99LatencyMicroSecs,P99.9LatencyMicroSecs,StdDevLatencyMicroSecs",
    );
    expect(lines.slice(1).map((l) => l.split(",")[1])).toEqual(["P0", "P1", "S0", "S1"]);
    expect(lines.slice(1).map((l) => l.split(",")[2])).toEqual(["2000", "2000", "4000", "4000"]);

    const pub = await bench(["pub", "bench.csv", ...s, "--msgs", "1000", "--csv"]);
    expect(pub.stdout.split("\n")[0]).toBe("#RunID,ClientID,MsgCount,MsgBytes,MsgsPerSec,BytesPerSec,DurationSecs");
  });

  test.skipIf(skip)("sub mode gets what a separate pub run sends; reply mode serves a separate request run", async () => {
    const sub = startBench(["sub", "bench.split", ...s, "--msgs", "20000", "--sub", "2", "--json"]);
    await sub.stderrLine(/waiting for 20,000 messages each/);
    const pub = await bench(["pub", "bench.split", ...s, "--msgs", "20000"]);
    expect(pub.code, pub.stderr).toBe(0);
    const subRun = await sub.done;
    expect(subRun.code, subRun.stderr).toBe(0);
    const subJson = JSON.parse(subRun.stdout);
    expect(subJson.subscribers.per_client.map((c: any) => c.msgs)).toEqual([20000, 20000]);
    expect(subJson.latency.count).toBe(40000); // the pub run stamps its payloads too

    const reply = startBench(["reply", "bench.split.svc", ...s, "--msgs", "2000", "--json"]);
    await reply.stderrLine(/serving 2,000 requests/);
    const { run, json } = await benchJson(["request", "bench.split.svc", ...s, "--msgs", "2000", "--responders", "0"]);
    expect(run.code, run.stderr).toBe(0);
    expect(json.requesters.msgs).toBe(2000);
    expect(json.responders).toBeNull();
    const replyRun = await reply.done;
    expect(replyRun.code, replyRun.stderr).toBe(0);
    expect(JSON.parse(replyRun.stdout).responders.msgs).toBe(2000);
  });

  test.skipIf(skip)("requests to nobody: one line, exit 1", async () => {
    const run = await bench(["request", "bench.nobody", ...s, "--responders", "0", "--msgs", "10"]);
    expect(run.code).toBe(1);
    expect(run.stderr).toBe('natter bench: no responders on subject "bench.nobody" (start one: natter bench reply bench.nobody, or drop --responders 0)\n');
    expect(run.stdout).toBe("");
  });
});

describe("natter bench errors", () => {
  test.each([
    [["pub", "-s", "bogus://127.0.0.1:4222"], /^natter bench: invalid server URL "bogus:\/\/127\.0\.0\.1:4222": unsupported scheme/],
    [["pub", "-s", "nats://127.0.0.1:99999"], /^natter bench: invalid server URL .*: bad port$/],
    [["pub", "-s", "nats://"], /^natter bench: invalid server URL "nats:\/\/": no host$/],
    [["pub", "--bogus"], /^natter bench: unknown flag --bogus \(see natter bench --help\)$/],
    [["pub", "--msgs", "lots"], /^natter bench: invalid value "lots" for --msgs: not a whole number$/],
    [["pub", "--size", "big"], /not a size/],
    [["pub", "--duration", "soon"], /not a duration/],
    [["pub", "--msgs"], /^natter bench: flag --msgs needs a value$/],
    [["frob"], /^natter bench: unknown mode "frob"/],
    [[], /^natter bench: give a mode/],
    [["pub", "a", "b"], /^natter bench: unexpected argument "b"/],
    [["sub", "--rate", "10"], /^natter bench: --rate does not apply to sub mode$/],
    [["pubsub", "--json", "--csv"], /pick one/],
  ])("%j: one line, exit 1", async (args, message) => {
    const run = await bench(args as string[]);
    expect(run.code).toBe(1);
    const lines = run.stderr.trimEnd().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(message);
    expect(run.stdout).toBe("");
  });

  test("a server that is not there: one line, exit 1", async () => {
    const port = await freePort();
    const run = await bench(["pubsub", "-s", `nats://127.0.0.1:${port}`]);
    expect(run.code).toBe(1);
    expect(run.stderr).toBe(`natter bench: cannot connect to nats://127.0.0.1:${port}: connection refused\n`);
  });

  test("--help lists the modes and nats bench's flags, exit 0", async () => {
    const run = await bench(["--help"]);
    expect(run.code).toBe(0);
    for (const word of ["pub ", "sub ", "pubsub", "request", "reply", "--msgs", "--size", "--clients", "--pub", "--sub", "--rate", "--duration", "--json", "--csv", "--server", "--inflight", "--workers"]) {
      expect(run.stdout).toContain(word);
    }
    const sub = await bench(["pub", "-h"]);
    expect(sub.code).toBe(0);
    expect(sub.stdout).toBe(run.stdout);
  });
});
