// The leafnode protocol parser: every op, LMSG/HMSG argument forms, errors, and a stream split at every
// byte gives the same calls as the stream in one read.
import { describe, expect, test } from "vitest";
import { LeafParser, type LeafProtocolHandler } from "../../src/leaf/parser.ts";

type Call = (string | number | null)[];

function recorder(): { handler: LeafProtocolHandler; calls: Call[]; parser: () => LeafParser } {
  const calls: Call[] = [];
  let parser: LeafParser;
  const handler: LeafProtocolHandler = {
    onInfo: (j) => calls.push(["INFO", j]),
    onConnect: (j) => calls.push(["CONNECT", j]),
    onPing: () => calls.push(["PING"]),
    onPong: () => calls.push(["PONG"]),
    onErr: (t) => calls.push(["ERR", t]),
    onLeafSub: (s, q, w) => calls.push(["LS+", s, q, w]),
    onLeafUnsub: (s, q) => calls.push(["LS-", s, q]),
    onLeafMsg: (buf, ss, se, rs, re, qf, qt, hdr, ps, pe, tail) => {
      const queues: string[] = [];
      for (let t = qf; t < qt; t++) queues.push(buf.latin1Slice(parser.tokenStart[t]!, parser.tokenEnd[t]!));
      calls.push([
        "MSG", buf.latin1Slice(ss, se), rs >= 0 ? buf.latin1Slice(rs, re) : null, queues.join(","), hdr,
        buf.latin1Slice(ps, pe), tail >= 0 ? buf.latin1Slice(tail, pe + 2) : null,
      ]);
    },
    onParseError: (e, d) => calls.push(["ERROR", e, d]),
  };
  parser = new LeafParser(handler, 1 << 20, 4096);
  return { handler, calls, parser: () => parser };
}

const STREAM = [
  'INFO {"server_id":"X","leafnode_urls":["a:1"]} \r\n',
  'CONNECT {"name":"n"}\r\n',
  "LS+ foo\r\n",
  "LS+ foo.* workers 3\r\n",
  "LS- foo\r\n",
  "LS- foo.* workers\r\n",
  "LMSG foo 5\r\nhello\r\n",
  "LMSG foo reply.x 2\r\nhi\r\n",
  "LMSG foo + reply.y q1 q2 3\r\nabc\r\n",
  "LMSG foo | q1 0\r\n\r\n",
  "HMSG foo 12 17\r\nNATS/1.0\r\n\r\nworld\r\n",
  "HMSG foo r 12 12\r\nNATS/1.0\r\n\r\n\r\n",
  "HMSG foo + r q 12 14\r\nNATS/1.0\r\n\r\nxy\r\n",
  "lmsg  foo\t 2\r\nok\r\n",
  "PING\r\nPONG\r\n+OK\r\n",
  "-ERR 'Loop detected'\r\n",
].join("");

const EXPECTED: Call[] = [
  ["INFO", '{"server_id":"X","leafnode_urls":["a:1"]}'],
  ["CONNECT", '{"name":"n"}'],
  ["LS+", "foo", null, 1],
  ["LS+", "foo.*", "workers", 3],
  ["LS-", "foo", null],
  ["LS-", "foo.*", "workers"],
  ["MSG", "foo", null, "", -1, "hello", "5\r\nhello\r\n"],
  ["MSG", "foo", "reply.x", "", -1, "hi", "reply.x 2\r\nhi\r\n"],
  ["MSG", "foo", "reply.y", "q1,q2", -1, "abc", null],
  ["MSG", "foo", null, "q1", -1, "", null],
  ["MSG", "foo", null, "", 12, "NATS/1.0\r\n\r\nworld", "12 17\r\nNATS/1.0\r\n\r\nworld\r\n"],
  ["MSG", "foo", "r", "", 12, "NATS/1.0\r\n\r\n", "r 12 12\r\nNATS/1.0\r\n\r\n\r\n"],
  ["MSG", "foo", "r", "q", 12, "NATS/1.0\r\n\r\nxy", null],
  ["MSG", "foo", null, "", -1, "ok", null],
  ["PING"],
  ["PONG"],
  ["ERR", "Loop detected"],
];

describe("LeafParser", () => {
  test("every op in one read", () => {
    const r = recorder();
    r.parser().feed(Buffer.from(STREAM, "latin1"));
    expect(r.calls).toEqual(EXPECTED);
  });

  test("the stream split at every byte gives the same calls", () => {
    const bytes = Buffer.from(STREAM, "latin1");
    for (let cut = 1; cut < bytes.length; cut++) {
      const r = recorder();
      r.parser().feed(Buffer.from(bytes.subarray(0, cut)));
      r.parser().feed(Buffer.from(bytes.subarray(cut)));
      expect(r.calls, `cut at ${cut}`).toEqual(EXPECTED);
    }
  });

  test("one byte per read", () => {
    const r = recorder();
    for (const b of Buffer.from(STREAM, "latin1")) r.parser().feed(Buffer.from([b]));
    expect(r.calls).toEqual(EXPECTED);
  });

  test.each([
    ["garbage\r\n", "Unknown Protocol Operation"],
    ["PUB foo 1\r\nx\r\n", "Unknown Protocol Operation"],
    ["LMSG foo\r\n", null],
    ["LMSG foo x\r\n", null],
    ["LMSG foo ? r q 1\r\nx\r\n", null],
    ["LMSG foo 1\r\nxy\r\n", null],
    ["HMSG foo 5 3\r\nabc\r\n", null],
    ["LS+\r\n", null],
    ["LS+ a b\r\n", null],
    ["LS+ a q x\r\n", null],
    ["LS- a b c\r\n", null],
    [`LMSG ${"x".repeat(5000)}`, "maximum control line exceeded"],
  ])("%j is an error", (input, errText) => {
    const r = recorder();
    r.parser().feed(Buffer.from(input, "latin1"));
    expect(r.calls.length).toBe(1);
    expect(r.calls[0]![0]).toBe("ERROR");
    expect(r.calls[0]![1]).toBe(errText);
    // Stopped: nothing more is parsed.
    r.parser().feed(Buffer.from("PING\r\n"));
    expect(r.calls.length).toBe(1);
  });

  test("a message over the limit is refused from its control line", () => {
    const calls: Call[] = [];
    const p = new LeafParser({ ...recorder().handler, onParseError: (e, d) => calls.push(["ERROR", e, d]) }, 10, 4096);
    p.feed(Buffer.from("LMSG foo 11\r\n"));
    expect(calls[0]![0]).toBe("ERROR");
  });

  test("pause holds the rest of the read and later reads; resume replays them in order", () => {
    const r = recorder();
    const parser = r.parser();
    const handler = r.handler;
    const original = handler.onConnect;
    handler.onConnect = (j) => {
      original(j);
      parser.pause();
    };
    parser.feed(Buffer.from('CONNECT {}\r\nLS+ a\r\nLMSG a 1\r\nx'));
    parser.feed(Buffer.from("\r\nPING\r\n"));
    expect(r.calls).toEqual([["CONNECT", "{}"]]);
    expect(parser.heldBytes).toBeGreaterThan(0);
    parser.resume();
    expect(r.calls).toEqual([["CONNECT", "{}"], ["LS+", "a", null, 1], ["MSG", "a", null, "", -1, "x", "1\r\nx\r\n"], ["PING"]]);
  });
});
