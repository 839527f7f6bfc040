// The bench's protocol parser: the same messages whatever the chunking, and the flag parser's mappings.
import { describe, expect, test } from "vitest";
import { Parser, ProtocolError, type ProtocolHandler } from "../../src/bench/parser.ts";
import { parseBenchArgs, parseCount, parseDuration, parseSize } from "../../src/bench/flags.ts";
import { parseServerUrl } from "../../src/bench/url.ts";
import { bins, newHistogram } from "../../src/bench/stats.ts";

const latin1 = new TextDecoder("latin1");
const stream = new TextEncoder().encode(
  'INFO {"server_id":"X","max_payload":1048576} \r\n' +
    "MSG foo 1 5\r\nhello\r\n" +
    "PING\r\n" +
    "MSG foo.bar 22 _INBOX.abc.17 0\r\n\r\n" +
    "HMSG svc 3 _INBOX.x.1 16 21\r\nNATS/1.0 503\r\n\r\nabcde\r\n" +
    "-ERR 'Slow Consumer'\r\n" +
    `MSG big 1 300\r\n${"z".repeat(300)}\r\n` +
    "PONG\r\n",
);

function events(chunks: Uint8Array[]): string[] {
  const out: string[] = [];
  const handler: ProtocolHandler = {
    onMsg(p, body, start) {
      const ctl = p.ctl;
      const subject = latin1.decode(ctl.subarray(p.subjectStart, p.subjectEnd));
      const reply = latin1.decode(ctl.subarray(p.replyStart, p.replyEnd));
      const headers = latin1.decode(body.subarray(start, start + p.headerSize));
      const payload = latin1.decode(body.subarray(start + p.headerSize, start + p.size));
      out.push(`MSG ${subject} ${p.sid} ${reply} [${headers}] ${payload.length > 20 ? `${payload.length}B` : payload}`);
    },
    onPing: () => out.push("PING"),
    onPong: () => out.push("PONG"),
    onInfo: (json) => out.push(`INFO ${JSON.parse(json).server_id}`),
    onErr: (m) => out.push(`ERR ${m}`),
  };
  const p = new Parser(handler);
  for (const c of chunks) p.feed(c);
  return out;
}

describe("bench parser", () => {
  const whole = events([stream]);

  test("reads every op", () => {
    expect(whole).toEqual([
      "INFO X",
      "MSG foo 1  [] hello",
      "PING",
      "MSG foo.bar 22 _INBOX.abc.17 [] ",
      "MSG svc 3 _INBOX.x.1 [NATS/1.0 503\r\n\r\n] abcde",
      "ERR Slow Consumer",
      "MSG big 1  [] 300B",
      "PONG",
    ]);
  });

  test("the same events split at every position, and byte by byte", () => {
    for (let cut = 1; cut < stream.length; cut++) {
      expect(events([stream.slice(0, cut), stream.slice(cut)]), `cut at ${cut}`).toEqual(whole);
    }
    expect(events(Array.from(stream, (b) => Uint8Array.of(b)))).toEqual(whole);
  });

  test("garbage is a protocol error", () => {
    expect(() => events([new TextEncoder().encode("HTTP/1.1 400 Bad Request\r\n")])).toThrow(ProtocolError);
    expect(() => events([new TextEncoder().encode("MSG foo x 5\r\nhello\r\n")])).toThrow(ProtocolError);
  });
});

describe("bench flags", () => {
  const run = (argv: string[]) => {
    const parsed = parseBenchArgs(argv, {});
    if (parsed.kind !== "run") throw new Error("help");
    return parsed.options;
  };

  test("nats bench spellings", () => {
    expect(run(["pub", "foo", "--clients", "4"])).toMatchObject({ mode: "pub", subject: "foo", pubs: 4 });
    expect(run(["sub", "foo", "--clients", "3"])).toMatchObject({ mode: "sub", subs: 3 });
    expect(run(["service", "request", "svc", "--clients", "2"])).toMatchObject({ mode: "request", pubs: 2, responders: 1 });
    expect(run(["service", "serve", "svc", "--clients", "2"])).toMatchObject({ mode: "reply", responders: 2 });
    expect(run(["foo", "--pub", "2", "--sub", "3"])).toMatchObject({ mode: "pubsub", subject: "foo", pubs: 2, subs: 3 });
    expect(run(["foo", "--pub", "2", "--request"])).toMatchObject({ mode: "request", pubs: 2 });
    expect(run(["pub", "foo", "--throughput", "50000", "--no-progress"])).toMatchObject({ rate: 50000, progress: false });
    expect(run(["pub", "foo", "--csv", "--progress=false"])).toMatchObject({ csv: true, progress: false });
    expect(run(["pub", "foo", "--csv=out.csv"])).toMatchObject({ csv: false, csvFile: "out.csv" });
    expect(run(["pub", "foo", "--size", "1KB", "--msgs", "1M", "--sleep", "100us"])).toMatchObject({ size: 1024, msgs: 1_000_000, sleepMs: 0.1 });
  });

  test("defaults", () => {
    expect(run(["pubsub"])).toMatchObject({ subject: "natter.bench", msgs: 100_000, size: 128, pubs: 1, subs: 1, rate: 0, durationMs: 0, servers: [{ host: "127.0.0.1", port: 4222 }] });
    expect(parseBenchArgs(["pub"], { NATS_URL: "nats://10.1.2.3:4333" })).toMatchObject({ options: { servers: [{ host: "10.1.2.3", port: 4333 }] } });
  });

  test("values", () => {
    expect(parseCount("50k", "x", 0)).toBe(50_000);
    expect(parseCount("1_000", "x", 0)).toBe(1000);
    expect(parseSize("128B", "x")).toBe(128);
    expect(parseSize("2MiB", "x")).toBe(2 * 1024 * 1024);
    expect(parseDuration("1m30s", "x")).toBe(90_000);
    expect(parseDuration("250ms", "x")).toBe(250);
    expect(parseDuration("2", "x")).toBe(2000);
    expect(parseServerUrl("nats://u:p%40ss@host:1234")).toMatchObject({ host: "host", port: 1234, user: "u", password: "p@ss", tls: false });
    expect(parseServerUrl("tls://tok@[::1]")).toMatchObject({ host: "::1", port: 4222, token: "tok", tls: true, display: "tls://[::1]:4222" });
    expect(parseServerUrl("localhost")).toMatchObject({ host: "localhost", port: 4222 });
  });
});

describe("bench histogram bins", () => {
  test("cover every sample, with round log-spaced edges", () => {
    const h = newHistogram();
    for (let i = 0; i < 1000; i++) h.recordValue(20_000 + i * 50); // 20–70 µs
    h.recordValue(5_000_000); // 5 ms
    const list = bins(h);
    expect(list.reduce((a, b) => a + b.count, 0)).toBe(1001);
    expect(list[0]!.from).toBeLessThanOrEqual(20);
    expect(list.at(-1)!.to).toBeGreaterThan(5000);
    for (let i = 1; i < list.length; i++) expect(list[i]!.from).toBe(list[i - 1]!.to);
  });
});
