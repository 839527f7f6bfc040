// CONNECT JSON: every field with values of every type, huge values, deep nesting, unicode (lone
// surrogates, NUL, RTL), duplicate keys, prototype-ish keys, and text-level breakage. When the line is
// one the server can decide from the JSON alone, the expected answer is computed from it (a model of
// nats-server's rules as natter implements them); otherwise the case is hostile ("any").
import type { Expectation, FuzzCase } from "./cases.ts";
import { mutateBytes, splitChunks } from "./mutate.ts";
import type { Rng } from "./prng.ts";
import type { GenContext } from "./gen-protocol.ts";

const FIELDS = ["verbose", "pedantic", "echo", "headers", "no_responders", "protocol", "name", "lang", "version", "user", "pass", "auth_token", "nkey", "sig", "jwt", "tls_required", "ssl_required"];

function nastyString(rng: Rng, budget: number): string {
  switch (rng.int(10)) {
    case 0: return "";
    case 1: return "\u0000";
    case 2: return "\ud800"; // lone surrogate
    case 3: return "\udfff\ud800";
    case 4: return "\u202e\u0645\u0631\u062d\u0628\u0627"; // RTL override, Arabic
    case 5: return "\u{1F600}".repeat(rng.int(50));
    case 6: return "x".repeat(Math.max(0, rng.int(budget)));
    case 7: return "\r\n";
    case 8: return "'\"\\/\b\f\t";
    default: return String.fromCharCode(...Array.from({ length: rng.int(20) }, () => rng.int(0x10000)));
  }
}

function nastyValue(rng: Rng, depth: number, budget: number): unknown {
  switch (rng.int(14)) {
    case 0: return null;
    case 1: return rng.chance(0.5);
    case 2: return rng.pick([0, 1, -1, 2, 0.5, 1.5, -0, 1e308, -1e308, 2 ** 53 + 1, Number.MAX_SAFE_INTEGER, 4294967297]);
    case 3: return nastyString(rng, budget);
    case 4: return [];
    case 5: return {};
    case 6: return depth > 0 ? Array.from({ length: rng.int(4) }, () => nastyValue(rng, depth - 1, budget / 4)) : [];
    case 7: return depth > 0 ? { [rng.pick(FIELDS)]: nastyValue(rng, depth - 1, budget / 4) } : {};
    case 8: return "true";
    case 9: return "1";
    case 10: return { __proto__: null, toString: 1 };
    default: return rng.pick([true, false, 0, 1, "x"]);
  }
}

/** Deeply nested JSON text within `budget` characters. */
function deepText(rng: Rng, budget: number): string {
  const depth = Math.max(1, Math.floor(budget / 2) - 5);
  return rng.chance(0.5) ? `${"[".repeat(depth)}${"]".repeat(depth)}` : `${'{"a":'.repeat(Math.floor(depth / 3))}1${"}".repeat(Math.floor(depth / 3))}`;
}

/** natter's decision on a CONNECT line whose JSON text is `text` (no CR/LF in it). */
export function expectedConnect(text: string, ctx: GenContext): Expectation {
  const trimmed = text.replace(/^[ \t]+/, "");
  if (trimmed !== "" && Buffer.byteLength(trimmed) > ctx.maxControlLine) return { kind: "close", err: "maximum control line exceeded" };
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(text).toString("utf8"));
  } catch {
    return { kind: "close", err: null };
  }
  if (v === null || typeof v !== "object" || Array.isArray(v)) return { kind: "close", err: null };
  const o = v as Record<string, unknown>;
  const protocol = typeof o.protocol === "number" ? o.protocol : 0;
  if (protocol < 0 || protocol > 1) return { kind: "close", err: "invalid client protocol" };
  if (o.no_responders === true && o.headers !== true) return { kind: "close", err: "no responders requires headers support" };
  return { kind: "alive", pongs: 1 };
}

export function genConnect(rng: Rng, index: number, ctx: GenContext): FuzzCase {
  const budget = rng.weighted([[6, 200], [2, ctx.maxControlLine - 100], [1, ctx.maxControlLine + 500]] as const);
  let text: string;
  const style = rng.weighted([[5, "object"], [2, "duplicate-keys"], [1, "deep"], [1, "raw"], [2, "mutated"]] as const);
  const obj: Record<string, unknown> = {};
  const n = 1 + rng.int(8);
  for (let i = 0; i < n; i++) obj[rng.chance(0.9) ? rng.pick(FIELDS) : rng.pick(["__proto__", "constructor", "prototype", "toString", "", "\u0000", "Verbose", "PROTOCOL"])] = rng.chance(0.4) ? rng.pick([true, false, 0, 1, "x"]) : nastyValue(rng, 3, budget);
  switch (style) {
    case "object":
      text = JSON.stringify(obj);
      break;
    case "duplicate-keys": {
      const key = rng.pick(["protocol", "headers", "no_responders", "verbose", "echo"]);
      const a = JSON.stringify(nastyValue(rng, 1, 50)) ?? "null";
      const b = JSON.stringify(rng.pick([true, false, 0, 1, 2, -1, null])) ?? "null";
      text = `{"${key}":${a},${JSON.stringify(obj).slice(1, -1)}${Object.keys(obj).length ? "," : ""}"${key}":${b}}`;
      break;
    }
    case "deep":
      text = rng.chance(0.5) ? `{"name":${deepText(rng, budget)}}` : deepText(rng, budget);
      break;
    case "raw":
      text = rng.pick(["", "{", "}", "{}", "[]", "null", "true", "0", "\"{}\"", "{}{}", "{} ", " {}", "{\"a\":1,}", "{'a':1}", "{\"a\":01}", "{\"a\":NaN}", "{\"a\":Infinity}", "{\"a\":\"\\x41\"}", "{\"a\":\"\\u12\"}", "\ufeff{}", "{\"headers\":true}\t"]);
      break;
    default: {
      const bytes = mutateBytes(rng, Buffer.from(JSON.stringify(obj)), 4);
      text = bytes.toString("latin1"); // kept as raw bytes below
      const connect = Buffer.concat([Buffer.from("CONNECT "), bytes, Buffer.from("\r\n")]);
      const data = Buffer.concat([connect, Buffer.from("SUB fz.a 1\r\nPUB fz.a 2\r\nhi\r\n")]);
      return { family: "connect", index, note: "connect mutated bytes", transport: "tcp", chunks: splitChunks(rng, data), expect: { kind: "any" } };
    }
  }
  const form = rng.weighted([[8, "CONNECT "], [1, "connect "], [1, "CONNECT\t"], [1, "CONNECT"]] as const);
  const line = Buffer.concat([Buffer.from(form), Buffer.from(text, "utf8"), Buffer.from("\r\n")]);
  const after = rng.chance(0.7) ? Buffer.from(`SUB fz.a 1\r\nPUB fz.a 2\r\nhi\r\n${rng.chance(0.3) ? `CONNECT ${JSON.stringify({ verbose: false })}\r\n` : ""}`) : Buffer.alloc(0);
  const data = Buffer.concat([line, after]);
  // The model applies to a plain `CONNECT <json>` line without line breaks inside.
  const modelled = (form === "CONNECT " || form === "connect ") && !/[\r\n]/.test(text) && text.trim() !== "";
  const expect: Expectation = modelled ? expectedConnect(text, ctx) : { kind: "any" };
  // A pedantic client (the default) gets an -ERR for nothing here: fz.a is a valid subject.
  return { family: "connect", index, note: `connect ${style}${modelled ? "" : " (unmodelled)"}`, transport: "tcp", chunks: splitChunks(rng, data), expect };
}
