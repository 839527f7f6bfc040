// The config file syntax (nats-server's): every form a key and a value can take, includes, variables, and
// errors that name file, line and column.
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { ConfigError, parseConfig, parseConfigFile, type ConfMap, type ConfNode } from "../../src/config/parser.ts";
import { lex } from "../../src/config/lexer.ts";

/** The tree as plain JS values (maps → objects), for comparisons. */
function plain(node: ConfNode): unknown {
  switch (node.kind) {
    case "map":
      return toObject(node.value);
    case "array":
      return node.value.map(plain);
    default:
      return node.value;
  }
}
function toObject(map: ConfMap): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, e] of map) out[k] = plain(e.node);
  return out;
}
const parse = (text: string) => toObject(parseConfig(text, "test.conf"));

function errorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error("expected a ConfigError");
}

describe("key/value forms", () => {
  test("colon, equals and blank separate a key from its value", () => {
    expect(parse("a: 1\nb = 2\nc 3\nd:4\ne=5\nf\t6\n")).toEqual({ a: 1, b: 2, c: 3, d: 4, e: 5, f: 6 });
  });

  test("quoted keys, semicolons and commas end top-level values", () => {
    expect(parse(`"my key": 1; 'other': 2, last: 3`)).toEqual({ "my key": 1, other: 2, last: 3 });
  });

  test("a JSON-style document (top-level braces, quoted keys, commas)", () => {
    expect(parse(`{ "port": 4222, "debug": true, "ws": { "port": 8080 } }`)).toEqual({ port: 4222, debug: true, ws: { port: 8080 } });
  });

  test("comments with # and //, whole-line and trailing", () => {
    const text = "# header\n// another\nport: 4222 # trailing\nhost: h // trailing\n  # indented\n";
    expect(parse(text)).toEqual({ port: 4222, host: "h" });
  });

  test("a later key replaces an earlier one", () => {
    expect(parse("port: 1\nport: 2\n")).toEqual({ port: 2 });
  });

  test("CRLF line endings", () => {
    expect(parse("a: 1\r\nb: two\r\n")).toEqual({ a: 1, b: "two" });
  });
});

describe("values", () => {
  test("booleans: true/false, yes/no, on/off, any case", () => {
    expect(parse("a: true\nb: FALSE\nc: yes\nd: No\ne: on\nf: off\n")).toEqual({ a: true, b: false, c: true, d: false, e: true, f: false });
  });

  test("quoted strings stay strings; double quotes take escapes, single quotes are raw", () => {
    const parsed = parse(`a: "true"\nb: 'x\\ty'\nc: "tab\\there \\"q\\" \\\\ \\x41"\nd: "multi word"\n`);
    expect(parsed).toEqual({ a: "true", b: "x\\ty", c: 'tab\there "q" \\ A', d: "multi word" });
  });

  test("unquoted strings: words, URLs, paths; host:port and IP addresses", () => {
    expect(parse("a: hello\nb: nats://h:4222\nc: /var/run/x.pid\nd: localhost:4222\ne: 127.0.0.1:4222\nf: 10.0.0.1\n")).toEqual({
      a: "hello",
      b: "nats://h:4222",
      c: "/var/run/x.pid",
      d: "localhost:4222",
      e: "127.0.0.1:4222",
      f: "10.0.0.1",
    });
  });

  test("integers, negatives and floats", () => {
    expect(parse("a: 42\nb: -1\nc: 1.5\nd: -0.25\n")).toEqual({ a: 42, b: -1, c: 1.5, d: -0.25 });
  });

  test("sizes as nats-server reads them: k/m/g are 1000s, kb/mb/gb and ki/mi/gi 1024s", () => {
    expect(parse("a: 1K\nb: 1KB\nc: 2MB\nd: 1mb\ne: 1M\nf: 1GB\ng: 1Gi\nh: 1GiB\ni: 3kb\n")).toEqual({
      a: 1000,
      b: 1024,
      c: 2 * 1024 * 1024,
      d: 1024 * 1024,
      e: 1_000_000,
      f: 1024 ** 3,
      g: 1024 ** 3,
      h: 1024 ** 3,
      i: 3072,
    });
  });

  test("durations are strings (quoted or not); an unquoted 2m is the size 2 million, as in nats-server", () => {
    expect(parse(`a: "2m"\nb: 10s\nc: 500ms\nd: 1h30m\ne: 2m\n`)).toEqual({ a: "2m", b: "10s", c: "500ms", d: "1h30m", e: 2_000_000 });
  });

  test("arrays: commas or new lines, nested, with comments", () => {
    const text = `a: [1, 2, 3]\nb: [\n  "x" # first\n  y\n  [true, no]\n]\nc: []\n`;
    expect(parse(text)).toEqual({ a: [1, 2, 3], b: ["x", "y", [true, false]], c: [] });
  });

  test("blocks: nested maps, with or without a separator, entries split by new lines, commas or semicolons", () => {
    const text = `websocket {\n  port: 8080\n  no_tls = true\n  inner { a: 1, b: 2; c 3 }\n}\nother: { x: "y" }\n`;
    expect(parse(text)).toEqual({ websocket: { port: 8080, no_tls: true, inner: { a: 1, b: 2, c: 3 } }, other: { x: "y" } });
  });

  test("an ISO 8601 datetime", () => {
    expect(parse("t: 2024-01-02T03:04:05Z\n").t).toEqual(new Date("2024-01-02T03:04:05Z"));
  });

  test("a ( … ) block holds raw text up to a line with only ) (the new line after ( included, as nats-server)", () => {
    expect(parse("text: (\nline one\n  line two\n)\nnext: 1\n")).toEqual({ text: "\nline one\n  line two", next: 1 });
  });
});

describe("positions", () => {
  test("every key has its file, line and 1-based column", () => {
    const map = parseConfig("port: 1\n\n  nested {\n    inner: 2\n  }\n", "p.conf");
    expect(map.get("port")!.pos).toEqual({ file: "p.conf", line: 1, col: 1 });
    const nested = map.get("nested")!;
    expect(nested.pos).toEqual({ file: "p.conf", line: 3, col: 3 });
    if (nested.node.kind !== "map") throw new Error("map expected");
    expect(nested.node.value.get("inner")!.pos).toEqual({ file: "p.conf", line: 4, col: 5 });
  });

  test("the lexer reports tokens with line and column", () => {
    const tokens = lex("a: 1\n  b: [x]\n");
    expect(tokens.map((t) => [t.type, t.value, t.line, t.col])).toEqual([
      ["key", "a", 1, 1],
      ["integer", "1", 1, 4],
      ["key", "b", 2, 3],
      ["arrayStart", "", 2, 6],
      ["string", "x", 2, 7],
      ["arrayEnd", "", 2, 8],
      ["eof", "", 3, 1],
    ]);
  });
});

describe("variables", () => {
  test("a key defined earlier is a variable; inner blocks see outer ones", () => {
    const text = "size: 2MB\nmax_payload: $size\nws {\n  p: 8080\n  port: $p\n  outer: $size\n}\n";
    expect(parse(text)).toEqual({ size: 2 * 1024 * 1024, max_payload: 2 * 1024 * 1024, ws: { p: 8080, port: 8080, outer: 2 * 1024 * 1024 } });
  });

  test("a used variable is marked (so it is not an unknown field)", () => {
    const map = parseConfig("v: 1\nw: 2\nport: $v\n", "x.conf");
    expect(map.get("v")!.usedAsVariable).toBe(true);
    expect(map.get("w")!.usedAsVariable).toBe(false);
  });

  test("from the environment, read as a config value would be", () => {
    process.env.NATTER_TEST_SIZE = "1MB";
    process.env.NATTER_TEST_NAME = "from-env";
    try {
      expect(parse("a: $NATTER_TEST_SIZE\nb: $NATTER_TEST_NAME\n")).toEqual({ a: 1024 * 1024, b: "from-env" });
    } finally {
      delete process.env.NATTER_TEST_SIZE;
      delete process.env.NATTER_TEST_NAME;
    }
  });

  test("the file's own definition wins over the environment", () => {
    process.env.NATTER_TEST_V = "99";
    try {
      expect(parse("NATTER_TEST_V: 1\na: $NATTER_TEST_V\n")).toEqual({ NATTER_TEST_V: 1, a: 1 });
    } finally {
      delete process.env.NATTER_TEST_V;
    }
  });

  test("an unknown variable is an error naming it and its line", () => {
    const e = errorOf(() => parseConfig("a: 1\nb: $NATTER_SURELY_UNDEFINED\n", "v.conf"));
    expect(e.message).toBe("v.conf:2:4: variable reference for 'NATTER_SURELY_UNDEFINED' on line 2 can not be found");
  });

  test("inside an array of maps, a variable resolves from the enclosing blocks (nats-server's sample)", () => {
    const text = "authorization {\n  PASS: s3cr3t\n  users = [\n    {user: alice, password: $PASS}\n  ]\n}\n";
    expect(parse(text)).toEqual({ authorization: { PASS: "s3cr3t", users: [{ user: "alice", password: "s3cr3t" }] } });
  });

  test("an unquoted bcrypt hash is a string, not a variable", () => {
    expect(parse("p: $2a$11$abcdefghijklmnopqrstuv\n")).toEqual({ p: "$2a$11$abcdefghijklmnopqrstuv" });
  });
});

describe("include", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), "natter-conf-"));
    mkdirSync(path.join(dir, "sub"));
    writeFileSync(path.join(dir, "main.conf"), "port: 4222\ninclude 'sub/limits.conf'\nws {\n  include \"ws.conf\"\n}\n");
    // Relative to the including file: sub/limits.conf includes sub/more.conf.
    writeFileSync(path.join(dir, "sub", "limits.conf"), "max_payload: 64KB\ninclude more.conf\n");
    writeFileSync(path.join(dir, "sub", "more.conf"), "max_pending: 1MB\n");
    writeFileSync(path.join(dir, "ws.conf"), "port: 8080\n");
    writeFileSync(path.join(dir, "bad.conf"), "include 'sub/broken.conf'\n");
    writeFileSync(path.join(dir, "sub", "broken.conf"), "ok: 1\n\n  x: [1,\n");
    writeFileSync(path.join(dir, "missing.conf"), "a: 1\ninclude 'nope.conf'\n");
    writeFileSync(path.join(dir, "loop.conf"), "include 'loop.conf'\n");
    writeFileSync(path.join(dir, "empty.conf"), "");
    writeFileSync(path.join(dir, "with-empty.conf"), "a: 1\ninclude './sub/../empty.conf'\n");
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test("pulls keys in, at the top level or inside a block; paths are relative to the including file", () => {
    expect(toObject(parseConfigFile(path.join(dir, "main.conf")))).toEqual({
      port: 4222,
      max_payload: 64 * 1024,
      max_pending: 1024 * 1024,
      ws: { port: 8080 },
    });
  });

  test("keys keep the position in the file that defines them", () => {
    const map = parseConfigFile(path.join(dir, "main.conf"));
    expect(map.get("max_pending")!.pos).toEqual({ file: path.join(dir, "sub", "more.conf"), line: 1, col: 1 });
  });

  test("an error inside an included file names that file", () => {
    const e = errorOf(() => parseConfigFile(path.join(dir, "bad.conf")));
    expect(e.message).toMatch(new RegExp(`^${path.join(dir, "sub", "broken.conf").replace(/[.]/g, "\\.")}:\\d+:\\d+: Parse error: `));
  });

  test("a missing include is an error at the include", () => {
    const e = errorOf(() => parseConfigFile(path.join(dir, "missing.conf")));
    expect(e.message).toBe(
      `${path.join(dir, "missing.conf")}:2:10: error parsing include file 'nope.conf', open ${path.join(dir, "nope.conf")}: no such file or directory`,
    );
  });

  test("an include cycle is an error, not a stack overflow", () => {
    expect(errorOf(() => parseConfigFile(path.join(dir, "loop.conf"))).message).toMatch(/include cycle/);
  });

  test("an empty file, which cannot be mapped, is read as empty (src/config/config-file.ts); a directory is an error", () => {
    expect(toObject(parseConfigFile(path.join(dir, "empty.conf")))).toEqual({});
    expect(toObject(parseConfigFile(path.join(dir, "with-empty.conf")))).toEqual({ a: 1 });
    expect(errorOf(() => parseConfigFile(path.join(dir, "sub"))).message).toBe(`open ${path.join(dir, "sub")}: is a directory`);
  });

  test("a missing config file", () => {
    expect(errorOf(() => parseConfigFile(path.join(dir, "absent.conf"))).message).toBe(
      `open ${path.join(dir, "absent.conf")}: no such file or directory`,
    );
  });
});

describe("syntax errors carry file:line:col", () => {
  test.each([
    ["a: 1\nb: 2 3\n", /^e\.conf:2:6: Parse error: Expected a top-level value to end with a new line, comment or EOF, but got '3' instead\.$/],
    ["a: [1, 2\n", /^e\.conf:1:4: Parse error: Unexpected EOF processing array\.$/],
    ["a {\n  b: 1\n", /^e\.conf:1:3: Parse error: Unexpected EOF processing map\.$/],
    ['a: "open\n', /^e\.conf:1:4: Parse error: Unexpected EOF in double quoted string\.$/],
    ['a: "bad \\q"\n', /^e\.conf:1:11: Parse error: Invalid escape character 'q'/],
    ["a:\nb: 1\n", /^e\.conf:1:3: Parse error: Expected value but found new line$/],
    ["lonely\n", /^e\.conf:1:1: Parse error: config is invalid: key "lonely" has no value$/],
    [": 1\n", /^e\.conf:1:1: Parse error: Unexpected key separator ':'$/],
    ["a: [1,,2]\n", /^e\.conf:1:7: Parse error: Unexpected array value terminator ','\.$/],
    ["a: .5\n", /^e\.conf:1:4: Parse error: Floats must start with a digit$/],
    ["a: 12-01\n", /^e\.conf:1:6: Parse error: All ISO8601 dates must be in full Zulu form\.$/],
  ])("%j", (text, message) => {
    expect(errorOf(() => parseConfig(text, "e.conf")).message).toMatch(message);
  });

  test("integers past int64 (nats-server's range)", () => {
    expect(errorOf(() => parseConfig("a: 9223372036854775808\n", "e.conf")).message).toBe("e.conf:1:4: integer '9223372036854775808' is out of the range");
    expect(parse("a: 22PiB\n").a).toBe(22 * 1024 ** 5);
  });

  test("an unknown size suffix", () => {
    expect(errorOf(() => parseConfig("a: 1kbi\n", "e.conf")).message).toMatch(/^e\.conf:1:4: expected integer, but got '1kbi'/);
  });
});
