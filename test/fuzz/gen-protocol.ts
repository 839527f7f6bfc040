// The client protocol: grammar-aware sequences of ops (valid ones, and ones with broken arguments,
// sizes, separators and op names), byte-level mutations of them, and scenarios whose answer is known
// exactly (nats-server's error table) delivered with random split points.
import type { FuzzCase } from "./cases.ts";
import { mutateBytes, splitChunks } from "./mutate.ts";
import type { Rng } from "./prng.ts";

export interface GenContext {
  maxPayload: number;
  maxControlLine: number;
}

/** Subjects both valid for SUB and PUB (shared by all cases, so concurrent cases deliver to each other). */
const PUB_SUBJECTS = ["fz.a", "fz.b", "fz.a.b", "fz.c.d.e", "fz.q", "fz.hdr", "fz.big", "fz.x1.y2.z3"];
const SUB_ONLY = ["fz.*", "fz.>", "fz.*.b", "fz.a.>", "fz.*.*.*"];
const BAD_SUBJECTS = ["fz..a", ".fz", "fz.", "fz.>.a", "fz.a>", "fz.*a", "fz.a*", "fz.\x00", "fz.\xff\xfe", ">.>", "**", "fz.\u00e9", "\x7f"];
const QUEUES = ["q1", "q2", "fz.q", "\xff"];

export function cleanOptions(rng: Rng): { verbose: boolean; pedantic: boolean; echo: boolean; headers: boolean; protocol: number; no_responders?: boolean } {
  const headers = rng.chance(0.7);
  return {
    verbose: rng.chance(0.3),
    pedantic: rng.chance(0.5),
    echo: rng.chance(0.8),
    headers,
    protocol: rng.pick([0, 1, 1]),
    ...(headers && rng.chance(0.5) ? { no_responders: true } : {}),
  };
}

function payload(rng: Rng, max: number): Buffer {
  const n = rng.weighted([[6, rng.small(64)], [3, rng.int(2048)], [1, rng.int(max + 1)]] as const);
  // Payloads may contain anything, CRLFs and protocol words included: they are size-delimited.
  return rng.chance(0.5) ? rng.bytes(n) : Buffer.from("PING\r\nPUB x 1\r\n".repeat(Math.ceil(n / 15)).slice(0, n), "latin1");
}

function headerBlock(rng: Rng): Buffer {
  const lines = [rng.pick(["NATS/1.0", "NATS/1.0", "NATS/1.0 503", "NATS/1.0 100 Idle Heartbeat"])];
  const n = rng.small(6);
  for (let i = 0; i < n; i++) lines.push(`${rng.pick(["Nats-Msg-Id", "X-Key", "k", "Nats-Expected-Stream"])}: ${rng.pick(["v", "", "a b c", "1"])}`);
  return Buffer.from(`${lines.join("\r\n")}\r\n\r\n`, "latin1");
}

/** How an op's arguments are separated: normally one space; tabs and runs of spaces are valid too. */
function sep(rng: Rng, fancy: boolean): string {
  if (!fancy) return " ";
  return rng.pick([" ", " ", "\t", "  ", " \t ", "\t\t"]);
}

function eol(rng: Rng, fancy: boolean): string {
  return fancy && rng.chance(0.2) ? "\n" : "\r\n";
}

function opName(rng: Rng, name: string, fancy: boolean): string {
  if (!fancy || rng.chance(0.6)) return name;
  return [...name].map((c) => (rng.chance(0.5) ? c.toLowerCase() : c)).join("");
}

interface OpSeq {
  bytes: Buffer[];
  pings: number;
}

/** A valid op sequence for a client with these CONNECT options (or none: the server's defaults). */
function validOps(rng: Rng, ctx: GenContext, headers: boolean, count: number, fancy: boolean): OpSeq {
  const out: Buffer[] = [];
  let pings = 0;
  const sids: string[] = [];
  for (let i = 0; i < count; i++) {
    const s = sep(rng, fancy);
    const e = eol(rng, fancy);
    let kind = rng.weighted([[4, "pub"], [2, "hpub"], [3, "sub"], [1, "unsub"], [1, "ping"], [1, "pong"], [1, "info"], [1, "ok"]] as const);
    if (kind === "hpub" && !headers) kind = "pub"; // a client without headers publishes plainly
    switch (kind) {
      case "hpub": {
        const h = headerBlock(rng);
        const p = payload(rng, ctx.maxPayload - h.length);
        const reply = rng.chance(0.4) ? `${s}${rng.pick(PUB_SUBJECTS)}` : "";
        out.push(Buffer.from(`${opName(rng, "HPUB", fancy)}${s}${rng.pick(PUB_SUBJECTS)}${reply}${s}${h.length}${s}${h.length + p.length}${e}`, "latin1"), h, p, Buffer.from("\r\n"));
        break;
      }
      case "pub": {
        const p = payload(rng, ctx.maxPayload);
        const reply = rng.chance(0.4) ? `${s}${rng.pick(PUB_SUBJECTS)}` : "";
        out.push(Buffer.from(`${opName(rng, "PUB", fancy)}${s}${rng.pick(PUB_SUBJECTS)}${reply}${s}${p.length}${e}`, "latin1"), p, Buffer.from("\r\n"));
        break;
      }
      case "sub": {
        const sid = String(rng.chance(0.8) ? rng.int(20) : `s${rng.int(1000)}`);
        sids.push(sid);
        const queue = rng.chance(0.3) ? `${s}${rng.pick(QUEUES.slice(0, 3))}` : "";
        out.push(Buffer.from(`${opName(rng, "SUB", fancy)}${s}${rng.pick([...PUB_SUBJECTS, ...SUB_ONLY])}${queue}${s}${sid}${e}`, "latin1"));
        break;
      }
      case "unsub": {
        const sid = sids.length > 0 && rng.chance(0.7) ? rng.pick(sids) : String(rng.int(30));
        const max = rng.chance(0.4) ? `${s}${rng.int(5)}` : "";
        out.push(Buffer.from(`${opName(rng, "UNSUB", fancy)}${s}${sid}${max}${e}`, "latin1"));
        break;
      }
      case "ping":
        pings++;
        out.push(Buffer.from(`${opName(rng, "PING", fancy)}${e}`, "latin1"));
        break;
      case "pong":
        out.push(Buffer.from(`${opName(rng, "PONG", fancy)}${e}`, "latin1"));
        break;
      case "info":
        out.push(Buffer.from(`INFO {"server_id":"x"}${e}`, "latin1"));
        break;
      case "ok":
        out.push(Buffer.from(`+OK${e}`, "latin1"));
        break;
    }
  }
  return { bytes: out, pings };
}

/** One op with something broken in it. */
function brokenOp(rng: Rng, ctx: GenContext, headers: boolean): Buffer {
  const subj = () => (rng.chance(0.5) ? rng.pick(BAD_SUBJECTS) : rng.pick(PUB_SUBJECTS));
  const size = () =>
    rng.pick(["-1", "", "x", "1.5", "0x10", "1e3", " ", "99999999999999999999", "4294967296", String(ctx.maxPayload), String(ctx.maxPayload + 1), "00", "+1", String(rng.int(100))]);
  switch (rng.int(16)) {
    case 0: return Buffer.from(`PUB ${subj()} ${size()}\r\n${"x".repeat(rng.int(20))}\r\n`, "latin1");
    case 1: { // size and payload disagree
      const n = rng.int(50);
      const m = Math.max(0, n + rng.pick([-2, -1, 1, 2, 10]));
      return Buffer.from(`PUB ${rng.pick(PUB_SUBJECTS)} ${n}\r\n${"y".repeat(m)}\r\n`, "latin1");
    }
    case 2: { // header size against total
      const h = headerBlock(rng);
      const total = rng.pick([h.length - 1, h.length, h.length + 5, 0]);
      const hs = rng.pick([String(h.length), String(total + 1), "-1", "x", "0"]);
      return Buffer.concat([Buffer.from(`HPUB ${rng.pick(PUB_SUBJECTS)} ${hs} ${total}\r\n`, "latin1"), h, Buffer.from("\r\n")]);
    }
    case 3: { // a header block that is not one
      const garbage = rng.pick(["", "NATS/1.0", "NATS/1.0\r\n", "HTTP/1.1 200\r\n\r\n", "NATS/1.0\r\nnocolon\r\n\r\n", "\r\n\r\n", "NATS/1.0\r\n: \r\n\r\n", "NATS/2.0\r\n\r\n", "NATS/1.0 abc\r\n\r\n", "NATS/1.0\r\nK: v"]);
      const p = "p".repeat(rng.int(8));
      const sub = rng.pick(PUB_SUBJECTS);
      return Buffer.from(`HPUB ${sub} ${garbage.length} ${garbage.length + p.length}\r\n${garbage}${p}\r\n`, "latin1");
    }
    case 4: return Buffer.from(`${rng.pick(["PUB", "SUB", "HPUB", "UNSUB"])}${rng.pick(["", " a", " a b c d e f", " a b c d e", "\t"])}\r\n`, "latin1");
    case 5: return Buffer.from(`${rng.pick(["PUBX", "SUBB", "PIN", "PONGX", "P", "CONNEC", "MSG fz.a 1 1", "HMSG fz.a 1 2 2", "INFOX", "+O", "-ER", "UNSUBSCRIBE 1", "PUBLISH fz.a 1"])}\r\n`, "latin1");
    case 6: return Buffer.from(`SUB ${subj()} ${rng.chance(0.3) ? `${rng.pick(QUEUES)} ` : ""}${rng.pick(["1", "", "sid", "\xff"])}\r\n`, "latin1");
    case 7: { // long control line
      const n = rng.pick([ctx.maxControlLine - 20, ctx.maxControlLine - 1, ctx.maxControlLine, ctx.maxControlLine + 1, ctx.maxControlLine + 100, 2 * ctx.maxControlLine]);
      const long = `fz.${"a".repeat(Math.max(1, n))}`;
      return Buffer.from(rng.pick([`SUB ${long} 1\r\n`, `PUB ${long} 0\r\n\r\n`, `UNSUB ${long}\r\n`, `CONNECT {"name":"${long}"}\r\n`]), "latin1");
    }
    case 8: { // many tokens in a subject
      const t = rng.pick([10, 100, 1000, 2000]);
      return Buffer.from(`SUB ${Array.from({ length: t }, () => rng.pick(["a", "*", "b"])).join(".")} 1\r\n`, "latin1");
    }
    case 9: return Buffer.from(rng.pick(["\r\n", "\n", " PING\r\n", "\tPING\r\n", "\r\r\n", "\x00PING\r\n", "PING\r\r\n", "PING \r\n", "PINGPONG\r\n", "PONGX\r\n"]), "latin1");
    case 10: return Buffer.from(`UNSUB ${rng.pick(["1", "", "1 -1", "1 x", "1 99999999999999999999", "1 0", "1 2 3"])}\r\n`, "latin1");
    case 11: return Buffer.from(`-ERR '${rng.pick(["x", "", "Unknown Protocol Operation", "'"])}'\r\n`, "latin1");
    case 12: return Buffer.from(`PUB ${rng.pick(PUB_SUBJECTS)} ${rng.pick(["_INBOX.x", "$JS.API.INFO", "fz.*", ">", "\xff"])} ${rng.int(5)}\r\n${"z".repeat(rng.int(5))}\r\n`, "latin1");
    case 13: return Buffer.from(`HPUB ${rng.pick(PUB_SUBJECTS)} 12 12\r\nNATS/1.0\r\n\r\n\r\n`, "latin1"); // refused when headers are off
    case 14: return Buffer.from(`CONNECT ${rng.pick(["", "{", "}", "[]", "null", "1", "\"x\"", "{\"headers\":true}", "{\"protocol\":2}", "{\"no_responders\":true}", "{\"verbose\":true}{}", "{} extra"])}\r\n`, "latin1");
    default: return Buffer.from(`${rng.pick(["PUB", "HPUB"])} ${rng.pick(PUB_SUBJECTS)} ${headers ? "0 " : ""}${rng.pick([ctx.maxPayload + 1, ctx.maxPayload * 2, 2 ** 31, 2 ** 32 + 1])}\r\n`, "latin1");
  }
}

/** Does a subscription subject match a literal subject? (An independent little model, not the server's code.) */
function matches(pattern: string, subject: string): boolean {
  const p = pattern.split(".");
  const s = subject.split(".");
  for (let i = 0; i < p.length; i++) {
    if (p[i] === ">") return s.length > i;
    if (i >= s.length || (p[i] !== "*" && p[i] !== s[i])) return false;
  }
  return p.length === s.length;
}

/**
 * A valid sequence on subjects only this case uses, with the messages the connection must get back on its own
 * subscriptions computed from a model of SUB/UNSUB [max]/PUB/HPUB/echo/headers: checks that the parser frames
 * every op and payload exactly, whatever the separators, case, line endings and split points.
 */
export function genEcho(rng: Rng, index: number, ctx: GenContext): FuzzCase {
  const fancy = rng.chance(0.4);
  const headers = rng.chance(0.6);
  const echo = rng.chance(0.9);
  const opts = { verbose: rng.chance(0.3), pedantic: rng.chance(0.5), echo, headers, protocol: 1 };
  // Three tokens or more: a fuzzed stream may capture every two-token subject ("*.*"), but nothing longer that
  // starts with two wildcards (that would overlap $JS.API.>), so no PubAck lands on these replies.
  const base = `fzp.${index}`;
  const literal = () => `${base}.${rng.pick(["a", "b", "c"])}${rng.chance(0.4) ? `.${rng.pick(["x", "y"])}` : ""}`;
  const pattern = () => rng.pick([literal(), literal(), `${base}.*`, `${base}.>`, `${base}.*.x`, `${base}.a.*`]);
  const parts: Buffer[] = [Buffer.from(`CONNECT ${JSON.stringify(opts)}\r\n`)];
  const subs = new Map<string, { pattern: string; delivered: number; max: number }>();
  const deliveries: string[] = [];
  let pings = 0;
  const n = 2 + rng.small(20);
  const firstSubs = 1 + rng.int(3); // subscriptions first, mostly, so that publishes have somewhere to go
  for (let k = 0; k < n + firstSubs; k++) {
    const s = sep(rng, fancy);
    const e = eol(rng, fancy);
    const kind = k < firstSubs ? "sub" : rng.weighted([[4, "pub"], [headers ? 2 : 0, "hpub"], [2, "sub"], [1, "unsub"], [1, "ping"]] as const);
    if (kind === "sub") {
      const sid = rng.chance(0.85) ? `${k}` : rng.pick([...subs.keys(), "0"]);
      const p = pattern();
      parts.push(Buffer.from(`${opName(rng, "SUB", fancy)}${s}${p}${s}${sid}${e}`, "latin1"));
      if (!subs.has(sid)) subs.set(sid, { pattern: p, delivered: 0, max: 0 }); // a second SUB with a sid in use is ignored
    } else if (kind === "unsub") {
      const sid = subs.size > 0 && rng.chance(0.8) ? rng.pick([...subs.keys()]) : "999";
      const max = rng.chance(0.5) ? rng.int(4) : -1;
      parts.push(Buffer.from(`${opName(rng, "UNSUB", fancy)}${s}${sid}${max >= 0 ? `${s}${max}` : ""}${e}`, "latin1"));
      const sub = subs.get(sid);
      if (sub) {
        if (max > 0 && max > sub.delivered) sub.max = max;
        else subs.delete(sid);
      }
    } else if (kind === "ping") {
      pings++;
      parts.push(Buffer.from(`${opName(rng, "PING", fancy)}${e}`, "latin1"));
    } else {
      const subject = literal();
      const reply = rng.chance(0.3) ? `${base}.r.${k}` : null;
      const h = kind === "hpub" ? headerBlock(rng) : null;
      // Unique payloads (the publish number first), with CRLFs and op words inside sometimes.
      const payload = Buffer.concat([Buffer.from(`#${k}#`), rng.chance(0.5) ? rng.bytes(rng.small(300)) : Buffer.from("\r\nPING\r\nPUB x 1\r\n".slice(0, rng.int(18)))]);
      if (payload.length + (h?.length ?? 0) > ctx.maxPayload) continue;
      const r = reply === null ? "" : `${s}${reply}`;
      if (h === null) parts.push(Buffer.from(`${opName(rng, "PUB", fancy)}${s}${subject}${r}${s}${payload.length}${e}`, "latin1"), payload, Buffer.from("\r\n"));
      else parts.push(Buffer.from(`${opName(rng, "HPUB", fancy)}${s}${subject}${r}${s}${h.length}${s}${h.length + payload.length}${e}`, "latin1"), h, payload, Buffer.from("\r\n"));
      if (!echo) continue;
      for (const [sid, sub] of [...subs]) {
        if (!matches(sub.pattern, subject)) continue;
        deliveries.push(`${sid} ${subject} ${reply ?? "-"} ${h === null ? "-" : h.toString("base64")} ${payload.toString("base64")}`);
        sub.delivered++;
        if (sub.max > 0 && sub.delivered >= sub.max) subs.delete(sid);
      }
    }
  }
  const data = Buffer.concat(parts);
  return {
    family: "protocol", index, note: `protocol echo${fancy ? " fancy" : ""} (${deliveries.length} deliveries)`, transport: "tcp",
    chunks: splitChunks(rng, data), expect: { kind: "alive", pongs: pings + 1 }, deliveries,
  };
}

export function genProtocol(rng: Rng, index: number, ctx: GenContext): FuzzCase {
  if (rng.chance(0.25)) return genEcho(rng, index, ctx);
  const fancy = rng.chance(0.3);
  const opts = rng.chance(0.85) ? cleanOptions(rng) : null;
  const headers = opts?.headers ?? false;
  const parts: Buffer[] = [];
  if (opts) parts.push(Buffer.from(`CONNECT ${JSON.stringify(opts)}\r\n`));
  // Before CONNECT the server's defaults hold (pedantic, verbose): keep a valid sequence publishing valid subjects.
  const valid = validOps(rng, ctx, headers, 1 + rng.small(12), fancy);
  parts.push(...valid.bytes);
  const hostile = rng.weighted([[3, "none"], [4, "broken-op"], [3, "bytes"], [1, "both"]] as const);
  let note = `protocol ${fancy ? "fancy " : ""}${hostile}`;
  if (hostile === "broken-op" || hostile === "both") {
    const at = rng.int(parts.length + 1);
    const n = 1 + rng.small(3);
    for (let i = 0; i < n; i++) parts.splice(at, 0, brokenOp(rng, ctx, headers));
  }
  let data: Buffer = Buffer.concat(parts);
  if (hostile === "bytes" || hostile === "both") data = mutateBytes(rng, data, 6);
  if (hostile === "none") {
    note += ` (${valid.pings} pings)`;
    return { family: "protocol", index, note, transport: "tcp", chunks: splitChunks(rng, data), expect: { kind: "alive", pongs: valid.pings + 1 } };
  }
  return { family: "protocol", index, note, transport: "tcp", chunks: splitChunks(rng, data), expect: { kind: "any" } };
}

/** Ops with a known answer (nats-server's error table), after a valid prefix, cut at random points. */
export function genScenario(rng: Rng, index: number, ctx: GenContext): FuzzCase {
  const opts = { verbose: false, pedantic: rng.chance(0.5), headers: rng.chance(0.5), protocol: 1 };
  const ops = validOps(rng, ctx, opts.headers, rng.small(5), false);
  const prefix = Buffer.concat([Buffer.from(`CONNECT ${JSON.stringify(opts)}\r\n`), ...ops.bytes]);
  const pongs = ops.pings + 1;
  const over = ctx.maxPayload + 1 + rng.int(1000);
  const scenarios: [string, string, FuzzCase["expect"]][] = [
    ["garbage op", `${rng.pick(["FOO", "GET / HTTP/1.1", "PUBX fz.a 1", "SUBSCRIBE x 1", "HELLO"])}\r\n`, { kind: "close", err: "Unknown Protocol Operation" }],
    ["client MSG", "MSG fz.a 1 2\r\nhi\r\n", { kind: "close", err: "Unknown Protocol Operation" }],
    ["empty line", "\r\n", { kind: "close", err: "Unknown Protocol Operation" }],
    ["payload without CRLF", "PUB fz.a 3\r\nabcd\r\n", { kind: "close", err: "Unknown Protocol Operation" }],
    ["payload over max", `PUB fz.a ${over}\r\n`, { kind: "close", err: "Maximum Payload Violation" }],
    ["payload exactly max", `PUB fz.a ${ctx.maxPayload}\r\n${"m".repeat(ctx.maxPayload)}\r\n`, { kind: "alive", pongs }],
    ["control line over max", `SUB fz.${"c".repeat(ctx.maxControlLine + rng.int(3000))} 1\r\n`, { kind: "close", err: "maximum control line exceeded" }],
    ["control line never ends", `SUB fz.${"d".repeat(ctx.maxControlLine + 100 + rng.int(3000))}`, { kind: "close", err: "maximum control line exceeded" }],
    ["PUB without size", "PUB fz.a\r\n", { kind: "close", err: null }],
    ["PUB negative size", "PUB fz.a -1\r\n", { kind: "close", err: null }],
    ["SUB without sid", "SUB fz.a\r\n", { kind: "close", err: null }],
    ["client -ERR", "-ERR 'oops'\r\n", { kind: "close", err: null }],
    ["bad SUB subject", `SUB ${rng.pick(["fz..a", "fz.>.a", ".x", "fz."])} 9\r\n`, { kind: "error-stays", err: "Invalid Subject", pongs }],
    ["malformed CONNECT", `CONNECT ${rng.pick(["{", "{]", "nope", "{\"a\":}"])}\r\n`, { kind: "close", err: null }],
    ["bad protocol", `CONNECT {"protocol":${rng.pick([2, -1, 99])}}\r\n`, { kind: "close", err: "invalid client protocol" }],
    ["no_responders without headers", `CONNECT {"no_responders":true,"headers":false}\r\n`, { kind: "close", err: "no responders requires headers support" }],
  ];
  if (opts.headers) scenarios.push(["HPUB header over total", "HPUB fz.a 5 2\r\nNATS/1.0\r\n\r\n\r\n", { kind: "close", err: null }]);
  else scenarios.push(["HPUB without headers", "HPUB fz.a 12 12\r\nNATS/1.0\r\n\r\n\r\n", { kind: "close", err: null }]);
  const [name, tail, expect] = rng.pick(scenarios);
  const data = Buffer.concat([prefix, Buffer.from(tail, "latin1")]);
  return { family: "scenario", index, note: `scenario: ${name}`, transport: "tcp", chunks: splitChunks(rng, data), expect };
}
