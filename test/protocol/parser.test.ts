import { describe, expect, test } from "vitest";
import { Parser, type ProtocolHandler } from "../../src/protocol/parser.ts";

/** Records every callback as a line, so two parses can be compared exactly. */
class Recorder implements ProtocolHandler {
  events: string[] = [];
  errors: { errText: string | null; reason: string }[] = [];
  onPub(buf: Buffer, ss: number, se: number, rs: number, re: number, hs: number, ps: number, pe: number, tail: number): boolean {
    const subject = buf.latin1Slice(ss, se);
    const reply = rs >= 0 ? buf.latin1Slice(rs, re) : "-";
    const payload = buf.subarray(ps, pe).toString("hex");
    // The tail, when offered, must be exactly "[reply ][hdr ]size\r\npayload\r\n".
    if (tail >= 0) {
      const size = pe - ps;
      const expected = `${rs >= 0 ? `${reply} ` : ""}${hs >= 0 ? `${hs} ` : ""}${size}\r\n`;
      const got = buf.subarray(tail, pe + 2);
      expect(got.subarray(0, expected.length).toString("latin1")).toBe(expected);
      expect(got.subarray(expected.length, expected.length + size).toString("hex")).toBe(payload);
      expect(got.subarray(got.length - 2).toString("latin1")).toBe("\r\n");
    }
    this.events.push(`PUB ${subject} ${reply} ${hs} ${payload}`);
    return false;
  }
  onSub(subject: string, queue: string | null, sid: string): void {
    this.events.push(`SUB ${subject} ${queue ?? "-"} ${sid}`);
  }
  onUnsub(sid: string, max: number): void {
    this.events.push(`UNSUB ${sid} ${max}`);
  }
  onConnect(json: string): void {
    this.events.push(`CONNECT ${json}`);
  }
  onPing(): void {
    this.events.push("PING");
  }
  onPong(): void {
    this.events.push("PONG");
  }
  onInfo(json: string): void {
    this.events.push(`INFO ${json}`);
  }
  onClientError(text: string): void {
    this.events.push(`ERR ${text}`);
  }
  onParseError(errText: string | null, reason: string): void {
    this.errors.push({ errText, reason });
  }
}

const MAX_PAYLOAD = 1024 * 1024;
const MAX_CONTROL_LINE = 4096;

function newParser(headers = true): { parser: Parser; recorder: Recorder } {
  const recorder = new Recorder();
  const parser = new Parser(recorder, MAX_PAYLOAD, MAX_CONTROL_LINE);
  parser.headersAllowed = headers;
  return { parser, recorder };
}

function parseChunks(chunks: Buffer[]): Recorder {
  const { parser, recorder } = newParser();
  for (const chunk of chunks) parser.feed(chunk);
  return recorder;
}

const binary = Buffer.from([0, 13, 10, 255, 80, 85, 66, 32, 13, 10]);
const mixedStream = Buffer.concat([
  Buffer.from('CONNECT {"verbose":false,"headers":true}\r\n'),
  Buffer.from("PING\r\nPONG\r\nping\r\n"),
  Buffer.from("SUB foo.bar 1\r\nSUB foo.* workers 2\r\nsub\tfoo.>\t\t3\r\n"),
  Buffer.from("PUB foo.bar 5\r\nhello\r\n"),
  Buffer.from("PUB foo.bar _INBOX.abc 0\r\n\r\n"),
  Buffer.from("pub foo.bar   reply  3\nabc\r\n"),
  Buffer.from("PUB foo.bin 10\r\n"), binary, Buffer.from("\r\n"),
  Buffer.from("HPUB foo.h 24 29\r\nNATS/1.0\r\nA: b\r\nA: c\r\n\r\nhello\r\n"),
  Buffer.from("HPUB foo.h r.1 12 12\r\nNATS/1.0\r\n\r\n\r\n"),
  Buffer.from("UNSUB 1\r\nUNSUB 2 10\r\n+OK\r\nINFO {}\r\n"),
  Buffer.from(`PUB big ${3000}\r\n${"x".repeat(3000)}\r\n`),
  Buffer.from("CONNECT{\"name\":\"n\"}\r\n-ERR 'bye'\r\n"),
]);

describe("Parser", () => {
  const whole = parseChunks([mixedStream]);

  test("parses a mixed stream of every client op", () => {
    expect(whole.errors).toEqual([]);
    expect(whole.events).toEqual([
      'CONNECT {"verbose":false,"headers":true}',
      "PING",
      "PONG",
      "PING",
      "SUB foo.bar - 1",
      "SUB foo.* workers 2",
      "SUB foo.> - 3",
      `PUB foo.bar - -1 ${Buffer.from("hello").toString("hex")}`,
      "PUB foo.bar _INBOX.abc -1 ",
      `PUB foo.bar reply -1 ${Buffer.from("abc").toString("hex")}`,
      `PUB foo.bin - -1 ${binary.toString("hex")}`,
      `PUB foo.h - 24 ${Buffer.from("NATS/1.0\r\nA: b\r\nA: c\r\n\r\nhello").toString("hex")}`,
      `PUB foo.h r.1 12 ${Buffer.from("NATS/1.0\r\n\r\n").toString("hex")}`,
      "UNSUB 1 -1",
      "UNSUB 2 10",
      "INFO {}",
      `PUB big - -1 ${Buffer.from("x".repeat(3000)).toString("hex")}`,
      'CONNECT {"name":"n"}',
      "ERR 'bye'",
    ]);
  });

  test("gives the same result when the input is split at every byte", () => {
    for (let at = 1; at < mixedStream.length; at++) {
      const split = parseChunks([mixedStream.subarray(0, at), mixedStream.subarray(at)]);
      expect(split.errors, `split at ${at}`).toEqual([]);
      expect(split.events, `split at ${at}`).toEqual(whole.events);
    }
  });

  test("gives the same result when fed one byte at a time and in random chunks", () => {
    const bytes: Buffer[] = [];
    for (let i = 0; i < mixedStream.length; i++) bytes.push(mixedStream.subarray(i, i + 1));
    expect(parseChunks(bytes).events).toEqual(whole.events);
    let seed = 12345;
    const random = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    for (let round = 0; round < 300; round++) {
      const chunks: Buffer[] = [];
      for (let i = 0; i < mixedStream.length; ) {
        const n = 1 + Math.floor(random() * 200);
        chunks.push(Buffer.from(mixedStream.subarray(i, i + n))); // copies: like Bun's fresh buffer per read
        i += n;
      }
      expect(parseChunks(chunks).events, `round ${round}`).toEqual(whole.events);
    }
  });

  test("refuses a payload over max_payload on the control line, before the payload arrives", () => {
    const { parser, recorder } = newParser();
    parser.feed(Buffer.from(`PUB foo ${MAX_PAYLOAD + 1}\r\n`));
    expect(recorder.errors).toEqual([{ errText: "Maximum Payload Violation", reason: "Maximum Payload Exceeded" }]);
  });

  test("accepts a payload of exactly max_payload, split across reads, carrying only its bytes", () => {
    const { parser, recorder } = newParser();
    const line = Buffer.from(`PUB foo ${MAX_PAYLOAD}\r\n`);
    parser.feed(Buffer.concat([line, Buffer.alloc(1000, 97)]));
    expect(parser.carriedBytes).toBe(line.length + 1000);
    for (let sent = 1000; sent < MAX_PAYLOAD; sent += 65536) parser.feed(Buffer.alloc(Math.min(65536, MAX_PAYLOAD - sent), 97));
    expect(recorder.events).toEqual([]);
    parser.feed(Buffer.from("\r\nPING\r\n"));
    expect(recorder.errors).toEqual([]);
    expect(recorder.events.length).toBe(2);
    expect(recorder.events[1]).toBe("PING");
    expect(parser.carriedBytes).toBe(0);
  });

  test("enforces the control line limit while the line is still incomplete", () => {
    const { parser, recorder } = newParser();
    for (let i = 0; i < 10 && recorder.errors.length === 0; i++) parser.feed(Buffer.from(i === 0 ? "PUB " : "a".repeat(1000)));
    expect(recorder.errors).toEqual([{ errText: "maximum control line exceeded", reason: "Maximum Control Line Exceeded" }]);
    expect(parser.carriedBytes).toBe(0);
  });

  test("enforces the control line limit on a complete line", () => {
    const { parser, recorder } = newParser();
    parser.feed(Buffer.from(`SUB ${"a".repeat(MAX_CONTROL_LINE)} 1\r\n`));
    expect(recorder.errors[0]?.errText).toBe("maximum control line exceeded");
  });

  test.each([
    ["garbage", "FOO bar\r\n", "Unknown Protocol Operation"],
    ["an empty line", "\r\n", "Unknown Protocol Operation"],
    ["a client MSG", "MSG foo 1 2\r\nhi\r\n", "Unknown Protocol Operation"],
    ["a payload without its CRLF", "PUB foo 2\r\nhiXX", "Unknown Protocol Operation"],
    ["garbage before its newline", "XYZ", "Unknown Protocol Operation"],
    ["PUB without size", "PUB foo\r\n", null],
    ["PUB with a negative size", "PUB foo -1\r\n", null],
    ["SUB without sid", "SUB foo\r\n", null],
    ["HPUB header larger than total", "HPUB foo 10 5\r\n", null],
  ])("reports %s", (_name, input, errText) => {
    const { parser, recorder } = newParser();
    parser.feed(Buffer.from(input));
    expect(recorder.errors.length).toBe(1);
    expect(recorder.errors[0]!.errText).toBe(errText);
    parser.feed(Buffer.from("PING\r\n"));
    expect(recorder.events).toEqual([]); // nothing is parsed after an error
  });

  test("refuses HPUB from a client that did not ask for headers", () => {
    const { parser, recorder } = newParser(false);
    parser.feed(Buffer.from("HPUB foo 12 12\r\nNATS/1.0\r\n\r\n\r\n"));
    expect(recorder.errors).toEqual([{ errText: null, reason: "Protocol Violation" }]);
  });

  test("fuzz: random and mutated input only ever yields events or a protocol error", () => {
    let seed = 987654321;
    const random = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    const alphabet = Buffer.from("PUBSUBHPINGONCTQ \t\r\n0123456789.*>{}\"abc-+");
    for (let round = 0; round < 3000; round++) {
      let input: Buffer;
      if (round % 2 === 0) {
        input = Buffer.from(mixedStream);
        const mutations = 1 + Math.floor(random() * 8);
        for (let m = 0; m < mutations; m++) input[Math.floor(random() * input.length)] = alphabet[Math.floor(random() * alphabet.length)]!;
      } else {
        input = Buffer.alloc(1 + Math.floor(random() * 300));
        for (let k = 0; k < input.length; k++) input[k] = random() < 0.7 ? alphabet[Math.floor(random() * alphabet.length)]! : Math.floor(random() * 256);
      }
      const { parser, recorder } = newParser();
      for (let i = 0; i < input.length; ) {
        const n = 1 + Math.floor(random() * 64);
        expect(() => parser.feed(input.subarray(i, i + n))).not.toThrow();
        i += n;
        expect(parser.carriedBytes).toBeLessThanOrEqual(MAX_CONTROL_LINE + 64 + MAX_PAYLOAD);
      }
      expect(recorder.errors.length).toBeLessThanOrEqual(1);
    }
  });
});

/**
 * A handler that, like a connection, takes PUBs to `drop.*` unread while their payload is still arriving.
 * Such a PUB is recorded alike whether it was taken unread or came whole (onPub), so parses compare.
 */
class Dropper extends Recorder {
  takePubUnread(buf: Buffer, ss: number, se: number, rs: number, re: number, hs: number, size: number): boolean {
    const subject = buf.latin1Slice(ss, se);
    if (!subject.startsWith("drop.")) return false;
    this.events.push(`DROP ${subject} ${rs >= 0 ? buf.latin1Slice(rs, re) : "-"} ${hs} ${size}`);
    return true;
  }
  override onPub(buf: Buffer, ss: number, se: number, rs: number, re: number, hs: number, ps: number, pe: number, tail: number): boolean {
    const subject = buf.latin1Slice(ss, se);
    if (!subject.startsWith("drop.")) return super.onPub(buf, ss, se, rs, re, hs, ps, pe, tail);
    this.events.push(`DROP ${subject} ${rs >= 0 ? buf.latin1Slice(rs, re) : "-"} ${hs} ${pe - ps}`);
    return false;
  }
}

function newDropper(): { parser: Parser; dropper: Dropper } {
  const dropper = new Dropper();
  const parser = new Parser(dropper, MAX_PAYLOAD, MAX_CONTROL_LINE);
  parser.headersAllowed = true;
  return { parser, dropper };
}

describe("Parser: a PUB taken unread", () => {
  test("is not carried: its payload is passed over as it arrives, then parsing goes on", () => {
    const { parser, dropper } = newDropper();
    parser.feed(Buffer.concat([Buffer.from(`PUB drop.big ${MAX_PAYLOAD}\r\n`), Buffer.alloc(1000, 97)]));
    expect(dropper.events).toEqual([`DROP drop.big - -1 ${MAX_PAYLOAD}`]);
    expect(parser.carriedBytes).toBe(0);
    for (let sent = 1000; sent < MAX_PAYLOAD; sent += 65536) {
      parser.feed(Buffer.alloc(Math.min(65536, MAX_PAYLOAD - sent), 97));
      expect(parser.carriedBytes).toBe(0);
    }
    parser.feed(Buffer.from("\r\nPUB keep 2\r\nhi\r\nPING\r\n"));
    expect(dropper.errors).toEqual([]);
    expect(dropper.events.slice(1)).toEqual([`PUB keep - -1 ${Buffer.from("hi").toString("hex")}`, "PING"]);
  });

  const stream = Buffer.concat([
    Buffer.from("PUB drop.a 5\r\nhello\r\nPUB keep 3\r\nabc\r\n"),
    Buffer.from("PUB drop.b reply 0\r\n\r\nHPUB drop.h 12 17\r\nNATS/1.0\r\n\r\nworld\r\n"),
    Buffer.from(`PUB drop.c ${3000}\r\n${"x".repeat(3000)}\r\nPING\r\n`),
  ]);

  test("gives the same result when the input is split at every byte, and one byte at a time", () => {
    const { parser: wholeParser, dropper: whole } = newDropper();
    wholeParser.feed(stream);
    expect(whole.errors).toEqual([]);
    expect(whole.events.length).toBe(6);
    for (let at = 1; at < stream.length; at++) {
      const { parser, dropper } = newDropper();
      parser.feed(stream.subarray(0, at));
      parser.feed(stream.subarray(at));
      expect(dropper.errors, `split at ${at}`).toEqual([]);
      expect(dropper.events, `split at ${at}`).toEqual(whole.events);
    }
    const { parser, dropper } = newDropper();
    for (let i = 0; i < stream.length; i++) parser.feed(stream.subarray(i, i + 1));
    expect(dropper.events).toEqual(whole.events);
  });

  test.each([
    ["in the next read", ["PUB drop.x 5\r\nhel", "loXY\r\n"]],
    ["split between CR and LF", ["PUB drop.x 5\r\nhello\r", "X"]],
    ["with its CR already read", ["PUB drop.x 5\r\nhelloX", "\r\n"]],
  ])("still needs its CRLF: a wrong one %s is a parse error", (_name, chunks) => {
    const { parser, dropper } = newDropper();
    for (const chunk of chunks) parser.feed(Buffer.from(chunk));
    expect(dropper.errors).toEqual([{ errText: "Unknown Protocol Operation", reason: "Parse Error" }]);
    parser.feed(Buffer.from("PING\r\n"));
    expect(dropper.events.filter((e) => e === "PING")).toEqual([]);
  });
});

/**
 * A handler that, like a connection, says a PUB to `none.*` reached no one (onPub returns true), and counts
 * the repeats the parser then hands it.
 */
class Repeater extends Recorder {
  override onPub(buf: Buffer, ss: number, se: number, rs: number, re: number, hs: number, ps: number, pe: number, tail: number): boolean {
    super.onPub(buf, ss, se, rs, re, hs, ps, pe, tail);
    return buf.latin1Slice(ss, se).startsWith("none.");
  }
  onRepeatedPubs(count: number, size: number): void {
    this.events.push(`REPEAT ${count} ${size}`);
  }
  /** The events with each run of repeats written out as the PUB it repeats (its payload aside): what onPub alone would have seen. */
  expanded(): string[] {
    const out: string[] = [];
    for (const e of this.events) {
      if (!e.startsWith("REPEAT ")) out.push(e.startsWith("PUB ") ? e.slice(0, e.lastIndexOf(" ")) : e);
      else for (let n = Number(e.split(" ")[1]); n > 0; n--) out.push(out[out.length - 1]!);
    }
    return out;
  }
}

function newRepeater(): { parser: Parser; repeater: Repeater } {
  const repeater = new Repeater();
  const parser = new Parser(repeater, MAX_PAYLOAD, MAX_CONTROL_LINE);
  parser.headersAllowed = true;
  return { parser, repeater };
}

describe("Parser: PUBs repeating one that reached no one", () => {
  const hex = (text: string) => Buffer.from(text).toString("hex");

  test("are counted in one call while their control line is the same, byte for byte, whatever their payload", () => {
    const { parser, repeater } = newRepeater();
    parser.feed(Buffer.from(`${"PUB none.a 2\r\nhi\r\n".repeat(4)}PUB none.a 2\r\nho\r\nPUB none.a  2\r\nhi\r\nPUB none.b 2\r\nhi\r\nPUB none.a 2\r\nhi\r\n`));
    expect(repeater.errors).toEqual([]);
    expect(repeater.events).toEqual([
      `PUB none.a - -1 ${hex("hi")}`,
      "REPEAT 4 2",
      `PUB none.a - -1 ${hex("hi")}`, // the same message, but another line: onPub decides
      `PUB none.b - -1 ${hex("hi")}`,
      `PUB none.a - -1 ${hex("hi")}`,
    ]);
  });

  test("start over after any other op, and only after a PUB the handler said reached no one", () => {
    const { parser, repeater } = newRepeater();
    parser.feed(Buffer.from("PUB none.a 2\r\nhi\r\nSUB none.a 1\r\nPUB none.a 2\r\nhi\r\nPUB none.a 2\r\nhi\r\nPUB some.a 2\r\nhi\r\nPUB some.a 2\r\nhi\r\n"));
    expect(repeater.events).toEqual([
      `PUB none.a - -1 ${hex("hi")}`,
      "SUB none.a - 1",
      `PUB none.a - -1 ${hex("hi")}`,
      "REPEAT 1 2",
      `PUB some.a - -1 ${hex("hi")}`,
      `PUB some.a - -1 ${hex("hi")}`,
    ]);
  });

  test("still need their CRLF: a repeat without it is 'Unknown Protocol Operation', as any PUB", () => {
    const { parser, repeater } = newRepeater();
    parser.feed(Buffer.from("PUB none.a 2\r\nhi\r\nPUB none.a 2\r\nhi\r\nPUB none.a 2\r\nhiX\r\nPING\r\n"));
    expect(repeater.events).toEqual([`PUB none.a - -1 ${hex("hi")}`, "REPEAT 1 2"]);
    expect(repeater.errors).toEqual([{ errText: "Unknown Protocol Operation", reason: "Parse Error" }]);
  });

  test("random streams in random reads: the same as a parser whose handler takes no repeats", () => {
    let seed = 424242;
    const random = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    const ops = ["PUB none.a 5\r\nhello\r\n", "PUB none.a 5\r\nHELLO\r\n", "PUB none.b 0\r\n\r\n", "PUB none.a  5\r\nhello\r\n", "PUB none.a 2\r\nhi\r\n", "PUB none.b 5\r\nhello\r\n", "PUB keep 1\r\nx\r\n", "PING\r\n", "SUB none.a 1\r\n", "HPUB none.h 12 14\r\nNATS/1.0\r\n\r\nhi\r\n"];
    const withoutPayload = (events: string[]) => events.map((e) => (e.startsWith("PUB ") ? e.slice(0, e.lastIndexOf(" ")) : e));
    for (let round = 0; round < 300; round++) {
      let text = "";
      for (let n = 0; n < 40; n++) text += random() < 0.7 ? ops[0]! : ops[Math.floor(random() * ops.length)]!;
      const stream = Buffer.from(text);
      const { parser: plainParser, recorder: plain } = newParser();
      plainParser.feed(stream);
      const { parser, repeater } = newRepeater();
      for (let at = 0; at < stream.length; ) {
        const n = 1 + Math.floor(random() * 200);
        parser.feed(stream.subarray(at, at + n));
        at += n;
      }
      expect(repeater.errors, `round ${round}`).toEqual([]);
      expect(repeater.expanded(), `round ${round}`).toEqual(withoutPayload(plain.events));
    }
  });

  test("give what onPub alone would have seen, however the input is split", () => {
    const stream = Buffer.from(
      `${"PUB none.a 5\r\nhello\r\n".repeat(6)}PUB keep 1\r\nx\r\n${"PUB none.a 5\r\nhello\r\n".repeat(3)}PING\r\n${"PUB none.b 0\r\n\r\n".repeat(4)}`,
    );
    const { parser: wholeParser, repeater: whole } = newRepeater();
    wholeParser.feed(stream);
    const want = whole.expanded();
    expect(want.filter((e) => e.startsWith("PUB ")).length).toBe(14);
    for (let at = 1; at < stream.length; at++) {
      const { parser, repeater } = newRepeater();
      parser.feed(stream.subarray(0, at));
      parser.feed(stream.subarray(at));
      expect(repeater.errors, `split at ${at}`).toEqual([]);
      expect(repeater.expanded(), `split at ${at}`).toEqual(want);
    }
  });
});
