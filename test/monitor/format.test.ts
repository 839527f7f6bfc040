// Unit tests of the spelling helpers (Go's time/duration/JSON forms), query parsing and the closed ring.
import { describe, expect, test } from "vitest";
import { ClosedConnections } from "../../src/monitor/closed.ts";
import type { ConnRecord } from "../../src/monitor/connz.ts";
import { goDuration, goJson, msToNs, nowNs, rfc3339Ms, rfc3339Ns, uptime } from "../../src/monitor/format.ts";
import { escapeLabelValue } from "../../src/monitor/metrics.ts";
import { BadRequest, queryBool, queryInt, querySubs, queryUint } from "../../src/monitor/query.ts";

describe("goDuration (Go's time.Duration.String)", () => {
  test.each([
    [0, "0s"],
    [1, "1ns"],
    [850, "850ns"],
    [1_000, "1µs"],
    [424_000, "424µs"],
    [1_500, "1.5µs"],
    [1_000_000, "1ms"],
    [1_234_000, "1.234ms"],
    [1_973_330, "1.97333ms"],
    [1_000_000_000, "1s"],
    [1_500_000_000, "1.5s"],
    [65_000_000_000, "1m5s"],
    [60_000_000_000, "1m0s"],
    [3_600_000_000_000, "1h0m0s"],
    [3_723_500_000_000, "1h2m3.5s"],
    [90_000_000_000_000, "25h0m0s"],
    [-1_500_000, "-1.5ms"],
  ])("%d ns → %s", (ns, text) => {
    expect(goDuration(ns)).toBe(text);
  });
});

describe("uptime (nats-server's myUptime)", () => {
  test.each([
    [0, "0s"],
    [999, "0s"],
    [5_000, "5s"],
    [65_000, "1m5s"],
    [3_600_000, "1h0m0s"],
    [93_784_000, "1d2h3m4s"],
    [366 * 86_400_000, "1y1d0h0m0s"],
    [-5, "0s"],
  ])("%d ms → %s", (ms, text) => {
    expect(uptime(ms)).toBe(text);
  });
});

describe("RFC 3339 times (Go's time.Time JSON)", () => {
  test("nanoseconds, trailing zeros trimmed", () => {
    expect(rfc3339Ns(1_795_321_566_123_456_789n)).toBe("2026-11-22T04:26:06.123456789Z");
    expect(rfc3339Ns(1_795_321_566_123_456_000n)).toBe("2026-11-22T04:26:06.123456Z");
    expect(rfc3339Ns(1_795_321_566_800_000_000n)).toBe("2026-11-22T04:26:06.8Z");
    expect(rfc3339Ns(1_795_321_566_000_000_000n)).toBe("2026-11-22T04:26:06Z");
    expect(rfc3339Ms(1_795_321_566_070)).toBe("2026-11-22T04:26:06.07Z");
    expect(msToNs(1.5)).toBe(1_500_000n);
  });

  test("nowNs follows the wall clock with sub-millisecond digits", () => {
    const a = nowNs();
    const wall = Date.now();
    expect(Math.abs(Number(a / 1_000_000n) - wall)).toBeLessThanOrEqual(3);
    const b = nowNs();
    expect(b).toBeGreaterThanOrEqual(a);
    expect(rfc3339Ns(b)).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$/);
  });
});

test("goJson indents like MarshalIndent and escapes <, >, & like Go", () => {
  expect(goJson({ subject: "foo.>", a: [], b: {}, c: undefined })).toBe('{\n  "subject": "foo.\\u003e",\n  "a": [],\n  "b": {}\n}');
  expect(goJson({ status: "ok" }, false)).toBe('{"status":"ok"}');
  expect(JSON.parse(goJson({ s: "<&>" }))).toEqual({ s: "<&>" });
});

describe("query parameters (Go's strconv)", () => {
  const q = (s: string) => new URLSearchParams(s);
  test("booleans", () => {
    for (const t of ["1", "t", "T", "TRUE", "true", "True"]) expect(queryBool(q(`x=${t}`), "x")).toBe(true);
    for (const f of ["", "0", "f", "F", "FALSE", "false", "False"]) expect(queryBool(q(`x=${f}`), "x")).toBe(false);
    expect(queryBool(q(""), "x")).toBe(false);
    expect(() => queryBool(q("x=yes"), "x")).toThrow(new BadRequest(`Error decoding boolean for 'x': strconv.ParseBool: parsing "yes": invalid syntax`));
  });
  test("integers", () => {
    expect(queryInt(q("n=-4"), "n")).toBe(-4);
    expect(queryInt(q("n=%2B4"), "n")).toBe(4); // a literal + in a query is a space, in Go too
    expect(() => queryInt(q("n=1.5"), "n")).toThrow(`Error decoding int for 'n': strconv.Atoi: parsing "1.5": invalid syntax`);
    expect(() => queryInt(q("n=99999999999999999999"), "n")).toThrow("value out of range");
    expect(queryUint(q("n=7"), "n")).toBe(7);
    expect(() => queryUint(q("n=-1"), "n")).toThrow(`Error decoding uint64 for 'n': strconv.ParseUint: parsing "-1": invalid syntax`);
  });
  test("subs=detail", () => {
    expect(querySubs(q("subs=detail"))).toEqual({ subs: false, detail: true });
    expect(querySubs(q("subs=DETAIL"))).toEqual({ subs: false, detail: true });
    expect(querySubs(q("subs=1"))).toEqual({ subs: true, detail: false });
    expect(querySubs(q(""))).toEqual({ subs: false, detail: false });
  });
});

test("the closed-connection ring keeps the newest `max`, oldest first", () => {
  const ring = new ClosedConnections(3);
  const rec = (cid: number) => ({ cid, subs: [], startMs: 0, lastMs: 0, stopMs: cid, rttNs: 0 }) as unknown as ConnRecord;
  expect(ring.list()).toEqual([]);
  ring.append(rec(1));
  ring.append(rec(2));
  expect(ring.list().map((r) => r.cid)).toEqual([1, 2]);
  for (let cid = 3; cid <= 7; cid++) ring.append(rec(cid));
  expect(ring.size).toBe(3);
  expect(ring.list().map((r) => r.cid)).toEqual([5, 6, 7]);
  expect(new ClosedConnections().max).toBe(10_000);
  expect(() => new ClosedConnections(0)).toThrow(RangeError);
});

test("Prometheus label values are escaped", () => {
  expect(escapeLabelValue('a"b\\c\nd')).toBe('a\\"b\\\\c\\nd');
});
