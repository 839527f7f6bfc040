import { describe, expect, test } from "vitest";
import {
  isValidPublishSubject,
  isValidQueueName,
  isValidSubscribeSubject,
  subjectIsLiteral,
  subjectMatches,
} from "../../src/subjects/subject.ts";

// Expectations follow nats-server's server/sublist_test.go (TestSublistValidSubjects,
// TestSublistValidLiteralSubjects, TestSubjectIsLiteral, TestSublistMatchLiterals).

describe("isValidSubscribeSubject", () => {
  const valid = [
    "foo",
    "foo.bar",
    "foo.bar.baz",
    "foo.>",
    ">",
    "*",
    "*.*",
    "*.>",
    "foo.*.bar",
    "foo.bar.*",
    "_INBOX.abc123.*",
    "$JS.API.>",
    // `*`/`>` inside a longer token are literal characters, not wildcards.
    "foo*",
    "foo**",
    "foo.**",
    "foo*bar",
    "foo.*bar",
    "foo*.bar",
    "*bar",
    "foo>",
    "foo.>>",
    "foo>bar",
    "foo.>bar",
    "foo>.bar",
    ">bar",
    ">>.bar",
    // latin1: any non-separator, non-whitespace byte is an ordinary character
    "caf\u00e9.\u00ff",
    "a\u0000b",
    "a\u00a0b", // NBSP is not whitespace to nats-server
    "a\u0085b",
    "-",
    "a-b_c~d",
  ];
  const invalid = [
    "",
    ".",
    "..",
    ".foo",
    "foo.",
    "foo..bar",
    "foo.>.bar",
    ">.bar",
    ">.>",
    "foo.>.",
    "foo bar",
    " foo",
    "foo ",
    "foo\tbar",
    "foo\rbar",
    "foo\nbar",
    "foo\fbar",
    "foo. ",
    " ",
    "\t",
    "foo.*.\r",
  ];
  test.each(valid)("valid: %j", (s) => {
    expect(isValidSubscribeSubject(s)).toBe(true);
  });
  test.each(invalid)("invalid: %j", (s) => {
    expect(isValidSubscribeSubject(s)).toBe(false);
  });
});

describe("isValidPublishSubject", () => {
  const valid = ["foo", "foo.bar", "_INBOX.x.y", "foo*", "foo.*bar", ">bar", "foo.>>", "a.b.c.d.e.f.g"];
  const invalid = [
    "",
    "*",
    ">",
    "foo.*",
    "foo.>",
    "*.foo",
    "foo.*.bar",
    "foo.bar.>",
    "foo..bar",
    ".foo",
    "foo.",
    "foo bar",
    "foo\tbar",
  ];
  test.each(valid)("valid: %j", (s) => {
    expect(isValidPublishSubject(s)).toBe(true);
  });
  test.each(invalid)("invalid: %j", (s) => {
    expect(isValidPublishSubject(s)).toBe(false);
  });
});

describe("subjectIsLiteral", () => {
  const cases: [string, boolean][] = [
    ["foo", true],
    ["foo.bar", true],
    ["foo*.bar", true],
    ["foo.>>", true],
    ["*", false],
    [">", false],
    ["foo.*", false],
    ["foo.>", false],
    ["foo.*.>", false],
    ["foo.*.bar", false],
    ["foo.bar.>", false],
    ["*.foo", false],
  ];
  test.each(cases)("%j -> %s", (s, want) => {
    expect(subjectIsLiteral(s)).toBe(want);
  });
});

describe("isValidQueueName", () => {
  const cases: [string, boolean][] = [
    ["workers", true],
    ["q.1", true], // nats-server does not restrict queue names beyond the protocol's whitespace split
    [">", true],
    ["caf\u00e9", true],
    ["", false],
    ["a b", false],
    ["a\tb", false],
    ["a\r", false],
    ["\nb", false],
    ["a\fb", false],
  ];
  test.each(cases)("%j -> %s", (q, want) => {
    expect(isValidQueueName(q)).toBe(want);
  });
});

describe("subjectMatches", () => {
  const cases: [pattern: string, subject: string, want: boolean][] = [
    ["foo", "foo", true],
    ["foo", "bar", false],
    ["foo", "foo.bar", false],
    ["foo.bar", "foo", false],
    ["foo", "fo", false],
    ["fo", "foo", false],
    ["*", "foo", true],
    ["*", "foo.bar", false],
    [">", "foo", true],
    [">", "foo.bar.baz", true],
    ["foo.*", "foo", false],
    ["foo.*", "foo.bar", true],
    ["foo.*", "foo.bar.baz", false],
    ["foo.>", "foo", false],
    ["foo.>", "foo.bar", true],
    ["foo.>", "foo.bar.baz", true],
    ["foo.>", "bar.baz", false],
    ["*.bar", "foo.bar", true],
    ["*.bar", "foo.baz", false],
    ["*.*", "a.b", true],
    ["*.*", "a", false],
    ["*.*", "a.b.c", false],
    ["*.>", "a", false],
    ["*.>", "a.b", true],
    ["stats.*.*", "stats.test.22", true],
    ["stats.*", "stats.test.foos", false],
    ["stats.*.*.foos", "stats.test.foos", false],
    ["stats.test.*", "stats.test", false],
    ["stats.test.foo", "stats.test.foos", false],
    // Wildcard characters inside tokens are literal.
    ["foo*", "foo*", true],
    ["foo*", "foox", false],
    ["*bar", "xbar", false],
    [">bar", ">bar", true],
    ["foo.>>", "foo.x", false],
    ["foo.>>", "foo.>>", true],
    // Subjects with an empty token match nothing (Sublist.match returns no result for them).
    [">", "", false],
    [">", "foo.", false],
    [">", "foo..bar", false],
    ["foo.>", "foo.bar.", false],
    ["*", ".", false],
    ["foo.*", "foo.", false],
    // `*`/`>` tokens in the published subject are matched only by wildcard patterns.
    ["foo.*", "foo.*", true],
    ["foo.>", "foo.>", true],
    ["foo.bar", "foo.*", false],
    ["*.*", "*.>", true],
    // latin1
    ["caf\u00e9.*", "caf\u00e9.x", true],
    ["caf\u00e9.*", "cafe.x", false],
  ];
  test.each(cases)("%j vs %j -> %s", (pattern, subject, want) => {
    expect(subjectMatches(pattern, subject)).toBe(want);
  });
});
