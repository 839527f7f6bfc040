// The JetStream API: stream and consumer create/update/info/delete/purge/list, msg get/delete, direct
// get, pull requests, acks and publishes with JetStream headers, with valid and broken JSON bodies and
// broken subjects. Each request carries its own reply inbox; a request to a subject the API handles must
// get an answer (a JSON error or a valid response), never silence.
//
// State stays bounded: fuzzed creates use a small pool of names; two "anchor" streams (with a pull
// consumer and messages) are only read, published to and consumed from, never deleted or updated, and
// the engine's cleanup deletes everything else between rounds (see engine.ts).
import type { FuzzCase, JsRequest } from "./cases.ts";
import { mutateBytes, splitChunks } from "./mutate.ts";
import type { Rng } from "./prng.ts";
import type { GenContext } from "./gen-protocol.ts";

export const ANCHORS = [
  { name: "FZA_FILE", subject: "fza.f", storage: "file" },
  { name: "FZA_MEM", subject: "fza.m", storage: "memory" },
] as const;
export const ANCHOR_CONSUMER = "PULL";
export const POOL = ["FZ0", "FZ1", "FZ2", "FZ3", "FZ4", "FZ5"];
const CONSUMER_POOL = ["C0", "C1", "C2", "DUR", "EPH"];
const WEIRD_NAMES = ["", "*", ">", "a b", "a\tb", "../x", "a/b", "a\\b", "\u00e9t\u00e9", "\u{1F600}", "x".repeat(256), "\u00e9".repeat(200), "\u{1F600}".repeat(70), "con", ".", "..", "-", "$G", "\x7f", "\xff"];

/** An anchor stream's create request (used by the engine's setup too). */
export function anchorConfig(a: (typeof ANCHORS)[number]): Record<string, unknown> {
  return {
    name: a.name, subjects: [`${a.subject}.>`], storage: a.storage, retention: "limits", max_msgs: 500, max_bytes: 4 << 20,
    discard: "old", num_replicas: 1, allow_direct: true, allow_rollup_hdrs: true, duplicate_window: 1_000_000_000,
  };
}

// No max_ack_pending: a consumer stalled on it holds no_wait requests until acks make room (as nats-server
// does), and the cases rarely ack, so no_wait without expires could no longer be required to answer at once.
export function anchorConsumerConfig(a: (typeof ANCHORS)[number]): Record<string, unknown> {
  return { stream_name: a.name, config: { durable_name: ANCHOR_CONSUMER, ack_policy: "explicit", ack_wait: 30_000_000_000, max_ack_pending: -1 } };
}

function streamName(rng: Rng): string {
  return rng.weighted([[8, () => rng.pick(POOL)], [2, () => rng.pick(ANCHORS).name], [1, () => rng.pick(WEIRD_NAMES)]] as const)();
}

function consumerName(rng: Rng): string {
  return rng.weighted([[6, () => rng.pick(CONSUMER_POOL)], [2, () => ANCHOR_CONSUMER], [1, () => rng.pick(WEIRD_NAMES)]] as const)();
}

function subjectFor(rng: Rng, stream: string): string {
  const anchor = ANCHORS.find((a) => a.name === stream);
  const base = anchor ? anchor.subject : `fz.${stream.toLowerCase().replace(/[^a-z0-9]/g, "") || "s"}`;
  return rng.weighted([[5, `${base}.>`], [2, `${base}.*`], [2, `${base}.x`], [1, rng.pick([">", "*", "*.*", "_INBOX.>", "$JS.API.>", "$JS.API.STREAM.>", "$JS.ACK.>", "fz..x", "fz.>.x", "", "\u00e9", "fz.*.>"])]] as const);
}

// ---- values and JSON mutations --------------------------------------------------------------------

const NUMBERS = [0, 1, -1, 2, -2, 0.5, 1.5, -0.5, 1e-9, 100_000_000, 1e9, 1e15, 2 ** 31, 2 ** 32, 2 ** 53, 2 ** 53 + 2, 2 ** 63, 2 ** 64, 1e20, 1e300, -1e300, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER];

export function nasty(rng: Rng, depth = 2): unknown {
  switch (rng.int(12)) {
    case 0: return null;
    case 1: return rng.chance(0.5);
    case 2: case 3: return rng.pick(NUMBERS);
    case 4: return rng.pick(["", "x", "all", "none", "explicit", "file", "memory", "limits", "workqueue", "interest", "old", "new", "s2", "1s", "2024-01-01T00:00:00Z", "not a time", "-1", "\u0000", "\ud800", "\u{1F600}"]);
    case 5: return "s".repeat(rng.pick([10, 300, 4097, 20_000]));
    case 6: return [];
    case 7: return {};
    case 8: return depth > 0 ? Array.from({ length: rng.int(5) }, () => nasty(rng, depth - 1)) : [1];
    case 9: return depth > 0 ? { [rng.pick(["a", "name", "seq", "config", "0"])]: nasty(rng, depth - 1) } : { a: 1 };
    case 10: return Array.from({ length: rng.pick([10, 100, 1000]) }, (_, i) => `fz.many.${i}`);
    default: return rng.pick([true, false, 1, "x"]);
  }
}

/** Replaces, deletes or adds fields at random places in a JSON object (in place), 1…n times. */
function mutateValue(rng: Rng, root: Record<string, unknown>, n: number): void {
  for (let k = 0; k < n; k++) {
    // Walk down to a random object.
    let obj: Record<string, unknown> = root;
    for (let d = 0; d < 3; d++) {
      const children = Object.values(obj).filter((v): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v));
      if (children.length === 0 || rng.chance(0.5)) break;
      obj = rng.pick(children);
    }
    const keys = Object.keys(obj);
    const what = rng.int(4);
    if (what === 0 && keys.length > 0) delete obj[rng.pick(keys)];
    else if (what === 1 || keys.length === 0) obj[rng.pick(["x_unknown", "name", "seq", "config", "subjects", "batch", "no_wait", "expires", "action", "filter", "keep", "offset", "__proto__"])] = nasty(rng);
    else {
      const key = rng.pick(keys);
      const v = obj[key];
      // Arrays: mutate an element sometimes.
      if (Array.isArray(v) && v.length > 0 && rng.chance(0.5)) v[rng.int(v.length)] = nasty(rng, 1);
      else obj[key] = nasty(rng);
    }
  }
}

/** The request body text: the JSON, or a broken version of it. */
function bodyText(rng: Rng, value: unknown): Buffer {
  const json = JSON.stringify(value) ?? "";
  const mode = rng.weighted([[10, "as-is"], [2, "bytes"], [1, "truncated"], [1, "dupkeys"], [1, "deep"], [1, "other"], [1, "padded"]] as const);
  switch (mode) {
    case "as-is": return Buffer.from(json);
    case "bytes": return mutateBytes(rng, Buffer.from(json), 4);
    case "truncated": return Buffer.from(json.slice(0, rng.int(json.length)));
    case "dupkeys": {
      if (!json.startsWith("{") || json === "{}") return Buffer.from(json);
      const key = rng.pick(["name", "stream_name", "config", "seq", "batch", "no_wait", "subjects", "action"]);
      return Buffer.from(`{"${key}":${JSON.stringify(nasty(rng, 1)) ?? "null"},${json.slice(1)}`);
    }
    case "deep": {
      const depth = rng.pick([100, 1000, 10_000, 30_000]);
      return Buffer.from(rng.chance(0.5) ? `${"[".repeat(depth)}${"]".repeat(depth)}` : `{"config":${'{"a":'.repeat(depth / 5)}1${"}".repeat(depth / 5)}}`);
    }
    case "other": return Buffer.from(rng.pick(["", " ", "null", "[]", "[{}]", "0", "-1", "\"x\"", "true", "{", "}", "{}", "{}{}", "\ufeff{}", "{\"a\":NaN}", "5", "+NXT", "\x00"]));
    default: return Buffer.from(`${" ".repeat(rng.int(100))}${json}${"\n\t ".repeat(rng.int(30))}`);
  }
}

// ---- requests -------------------------------------------------------------------------------------

const CONSUMER_FIELD_VALUES: [string, () => unknown][] = [
  ["deliver_policy", () => "all"], ["ack_policy", () => "explicit"], ["ack_wait", () => 1_000_000_000], ["max_deliver", () => 3],
  ["replay_policy", () => "instant"], ["max_waiting", () => 10], ["max_ack_pending", () => 10], ["inactive_threshold", () => 2_000_000_000],
  ["headers_only", () => true], ["max_batch", () => 5], ["max_expires", () => 2_000_000_000], ["max_bytes", () => 100_000],
  ["backoff", () => [100_000_000, 200_000_000]], ["metadata", () => ({ k: "v" })], ["num_replicas", () => 1], ["mem_storage", () => true],
  ["description", () => "d"], ["sample_freq", () => "100%"], ["opt_start_seq", () => 1], ["opt_start_time", () => "2024-01-01T00:00:00Z"],
];

function consumerConfig(rng: Rng, stream: string, name: string | null, push: boolean, inbox: string): Record<string, unknown> {
  const c: Record<string, unknown> = {};
  if (name !== null && rng.chance(0.7)) c.durable_name = name;
  if (rng.chance(0.2)) c.name = name ?? rng.pick(CONSUMER_POOL);
  if (push) {
    c.deliver_subject = rng.chance(0.9) ? `${inbox}.push` : rng.pick(["fz.*", "", ">", `${subjectFor(rng, stream)}`]);
    if (rng.chance(0.4)) {
      c.idle_heartbeat = rng.pick([100_000_000, 500_000_000, 1]);
      c.flow_control = rng.chance(0.5);
    }
    if (rng.chance(0.2)) c.deliver_group = "g";
  }
  const n = rng.int(6);
  for (let i = 0; i < n; i++) {
    const [k, v] = rng.pick(CONSUMER_FIELD_VALUES);
    c[k] = v();
  }
  if (c.opt_start_seq !== undefined) c.deliver_policy = "by_start_sequence";
  if (c.opt_start_time !== undefined) c.deliver_policy = c.opt_start_seq !== undefined ? "all" : "by_start_time";
  if (rng.chance(0.4)) c.filter_subject = subjectFor(rng, stream).replace(/\.>$/, rng.chance(0.5) ? ".x" : ".>");
  else if (rng.chance(0.2)) c.filter_subjects = [subjectFor(rng, stream), subjectFor(rng, stream)];
  else if (rng.chance(0.04)) c.filter_subjects = manySubjects(rng, ANCHORS.find((a) => a.name === stream)?.subject ?? `fz.${stream.toLowerCase()}`);
  return c;
}

/** Thousands of distinct subjects (literal, wildcard or mixed): what pairwise overlap checks choke on. */
function manySubjects(rng: Rng, base: string): string[] {
  const n = rng.pick([500, 2000, 4000]); // 4000 short subjects still fit in a 64 KiB request
  const style = rng.pick(["literal", "wild", "mixed"]);
  return Array.from({ length: n }, (_, i) => (style === "literal" || (style === "mixed" && i % 2 === 0) ? `${base}.${i}` : `${base}.*.${i}`));
}

function streamConfig(rng: Rng, name: string): Record<string, unknown> {
  const c: Record<string, unknown> = { name, subjects: [subjectFor(rng, name)] };
  const extras: [string, () => unknown][] = [
    ["storage", () => rng.pick(["file", "memory"])], ["retention", () => rng.pick(["limits", "interest", "workqueue"])],
    ["max_msgs", () => rng.pick([-1, 10, 1000])], ["max_bytes", () => rng.pick([-1, 1024, 1 << 20])], ["max_age", () => rng.pick([0, 1_000_000_000, 60_000_000_000])],
    ["max_msgs_per_subject", () => rng.pick([-1, 1, 5])], ["max_msg_size", () => rng.pick([-1, 16, 1024])], ["discard", () => rng.pick(["old", "new"])],
    ["num_replicas", () => 1], ["duplicate_window", () => rng.pick([0, 100_000_000, 1_000_000_000])], ["allow_direct", () => rng.chance(0.5)],
    ["allow_rollup_hdrs", () => rng.chance(0.5)], ["deny_delete", () => rng.chance(0.3)], ["deny_purge", () => rng.chance(0.3)], ["sealed", () => rng.chance(0.1)],
    ["description", () => "fuzz"], ["metadata", () => ({ a: "b" })], ["compression", () => rng.pick(["none", "s2"])], ["max_consumers", () => rng.pick([-1, 1, 3])],
    ["consumer_limits", () => ({ inactive_threshold: 1_000_000_000, max_ack_pending: 5 })], ["no_ack", () => rng.chance(0.2)], ["discard_new_per_subject", () => rng.chance(0.3)],
    ["allow_msg_schedules", () => rng.chance(0.3)], ["first_seq", () => rng.pick([1, 100])], ["subject_transform", () => ({ src: "a", dest: "b" })],
    ["mirror", () => ({ name: "FZA_FILE" })], ["sources", () => [{ name: "FZA_FILE" }]], ["republish", () => ({ src: ">", dest: "x.>" })], ["placement", () => ({ cluster: "c" })],
  ];
  const n = rng.int(8);
  for (let i = 0; i < n; i++) {
    const [k, v] = rng.pick(extras);
    c[k] = v();
  }
  if (rng.chance(0.3)) (c.subjects as string[]).push(subjectFor(rng, name));
  if (rng.chance(0.06)) c.subjects = manySubjects(rng, `fz.${name.toLowerCase()}`);
  return c;
}

/** Which $JS.API subjects the server answers (mirrors src/jetstream/api.ts's routing). */
function apiAnswers(subject: string): boolean {
  const t = subject.split(".");
  if (t[0] !== "$JS" || t[1] !== "API" || t.some((x) => x === "" || x === "*" || x === ">")) return false;
  const [, , area, op, a] = t;
  const n = t.length;
  if (area === "INFO") return n === 3;
  if (area === "STREAM") {
    if (["CREATE", "UPDATE", "INFO", "DELETE", "PURGE"].includes(op!)) return n === 5;
    if (op === "NAMES" || op === "LIST") return n === 4;
    if (op === "MSG") return n === 6 && (a === "GET" || a === "DELETE");
    return false;
  }
  if (area === "CONSUMER") {
    if (op === "CREATE") return n >= 5;
    if (op === "DURABLE") return a === "CREATE" && n === 7;
    if (["INFO", "DELETE", "NAMES", "LIST"].includes(op!)) return n === (op === "NAMES" || op === "LIST" ? 5 : 6);
  }
  return false;
}

interface Built {
  subject: string;
  body: Buffer;
  headers?: Buffer;
  answer: JsRequest["answer"];
  /** The answer must come (when the subject is handled and the request cannot legitimately wait). */
  required: boolean;
}

function headerBlock(rng: Rng): Buffer {
  const keys = ["Nats-Msg-Id", "Nats-Expected-Stream", "Nats-Expected-Last-Sequence", "Nats-Expected-Last-Subject-Sequence", "Nats-Expected-Last-Msg-Id", "Nats-Rollup", "Nats-TTL", "Nats-Schedule", "Nats-Schedule-Target", "X-Other"];
  const values = ["", "x", "0", "1", "-1", "999999999999999999999", "sub", "all", "bogus", "1s", "never", "@at 2000-01-01T00:00:00Z", "@at 2999-01-01T00:00:00Z", "@at +275760-09-13T00:00:00Z", "@at 1970-01-01T00:00:00.000000001Z", "@at garbage", "@every 1s", "fza.f.x", "fza.m.y", "fz.fz0.x", "fz.fz1.a", "FZA_FILE", "FZ0", "\u00e9", " spaced "];
  const lines = [rng.pick(["NATS/1.0", "NATS/1.0", "NATS/1.0 503", "NATS/1.0 abc", "NATS/2.0", "garbage"])];
  const n = rng.int(5);
  for (let i = 0; i < n; i++) lines.push(`${rng.pick(keys)}:${rng.pick([" ", "", "  "])}${rng.pick(values)}`);
  if (rng.chance(0.1)) lines.push("no colon line", ": empty key");
  let block = `${lines.join("\r\n")}\r\n\r\n`;
  if (rng.chance(0.1)) block = block.slice(0, rng.int(block.length));
  return Buffer.from(block, "latin1");
}

function buildRequest(rng: Rng, inbox: string): Built {
  const kind = rng.weighted([
    [4, "stream.create"], [2, "stream.update"], [2, "stream.info"], [1, "stream.delete"], [1, "stream.purge"], [1, "stream.names"], [1, "stream.list"],
    [2, "msg.get"], [1, "msg.delete"], [4, "consumer.create"], [1, "consumer.durable"], [1, "consumer.info"], [1, "consumer.delete"], [1, "consumer.names"],
    [1, "consumer.list"], [3, "next"], [2, "direct"], [1, "account"], [3, "publish"], [1, "ack"], [1, "raw-subject"],
  ] as const);
  const anchorName = () => rng.pick(ANCHORS).name;
  const poolOrWeird = () => (rng.chance(0.9) ? rng.pick(POOL) : rng.pick(WEIRD_NAMES));
  const withBody = (value: unknown, valueMutations = rng.chance(0.5) ? rng.int(4) : 0): Buffer => {
    if (value !== null && typeof value === "object" && !Array.isArray(value)) mutateValue(rng, value as Record<string, unknown>, valueMutations);
    return bodyText(rng, value);
  };
  const api = (subject: string, body: Buffer): Built => ({ subject, body, answer: "api", required: apiAnswers(subject) });
  switch (kind) {
    case "stream.create": {
      const name = poolOrWeird();
      const cfg = streamConfig(rng, name);
      if (rng.chance(0.1)) cfg.name = rng.pick(POOL);
      return api(`$JS.API.STREAM.CREATE.${name}`, withBody(cfg));
    }
    case "stream.update": {
      const name = poolOrWeird();
      return api(`$JS.API.STREAM.UPDATE.${name}`, withBody(streamConfig(rng, name)));
    }
    case "stream.info":
      return api(`$JS.API.STREAM.INFO.${streamName(rng)}`, rng.chance(0.4) ? Buffer.alloc(0) : withBody({ subjects_filter: rng.pick([">", "fza.>", "fza.f.x", "", "*"]), deleted_details: rng.chance(0.5), offset: rng.pick([0, 1, -1, 1e9]) }));
    case "stream.delete":
      return api(`$JS.API.STREAM.DELETE.${poolOrWeird()}`, Buffer.alloc(0));
    case "stream.purge": {
      const name = rng.chance(0.8) ? poolOrWeird() : anchorName();
      return api(`$JS.API.STREAM.PURGE.${name}`, rng.chance(0.3) ? Buffer.alloc(0) : withBody({ ...(rng.chance(0.5) ? { filter: subjectFor(rng, name) } : {}), ...(rng.chance(0.4) ? { seq: rng.pick(NUMBERS) } : {}), ...(rng.chance(0.4) ? { keep: rng.pick(NUMBERS) } : {}) }));
    }
    case "stream.names":
    case "stream.list":
      return api(`$JS.API.STREAM.${kind === "stream.names" ? "NAMES" : "LIST"}`, rng.chance(0.3) ? Buffer.alloc(0) : withBody({ offset: rng.pick(NUMBERS), subject: rng.pick(["fza.>", "", ">", "*", "fz.fz0.x"]) }));
    case "msg.get": {
      const body: Record<string, unknown> = {};
      if (rng.chance(0.6)) body.seq = rng.pick([...NUMBERS, 1, 2, 3, 5]);
      if (rng.chance(0.3)) body.last_by_subj = rng.pick(["fza.f.a", "fza.m.b", ">", "fza.*.a", ""]);
      if (rng.chance(0.3)) body.next_by_subj = rng.pick(["fza.f.a", "fza.>", "*", ""]);
      return api(`$JS.API.STREAM.MSG.GET.${streamName(rng)}`, withBody(body));
    }
    case "msg.delete": {
      const name = rng.chance(0.5) ? anchorName() : poolOrWeird();
      return api(`$JS.API.STREAM.MSG.DELETE.${name}`, withBody({ seq: rng.pick([...NUMBERS, 1, 2, 3]), ...(rng.chance(0.3) ? { no_erase: rng.chance(0.5) } : {}) }));
    }
    case "consumer.create": {
      const stream = streamName(rng);
      const named = rng.chance(0.6);
      const name = named ? consumerName(rng) : null;
      const filter = named && rng.chance(0.2) ? `.${subjectFor(rng, stream)}` : "";
      const config = consumerConfig(rng, stream, name, rng.chance(0.3), inbox);
      if (filter !== "" && rng.chance(0.7)) config.filter_subject = filter.slice(1);
      const body: Record<string, unknown> = { stream_name: rng.chance(0.9) ? stream : rng.pick(POOL), config };
      if (rng.chance(0.5)) body.action = rng.pick(["create", "update", "", "bogus"]);
      return api(`$JS.API.CONSUMER.CREATE.${stream}${name === null ? "" : `.${name}`}${filter}`, withBody(body));
    }
    case "consumer.durable": {
      const stream = streamName(rng);
      const name = consumerName(rng);
      return api(`$JS.API.CONSUMER.DURABLE.CREATE.${stream}.${name}`, withBody({ stream_name: stream, config: consumerConfig(rng, stream, name, rng.chance(0.3), inbox) }));
    }
    case "consumer.info":
    case "consumer.delete": {
      // The anchors' own consumer is never deleted.
      const stream = streamName(rng);
      const name = kind === "consumer.delete" && ANCHORS.some((a) => a.name === stream) ? rng.pick(CONSUMER_POOL) : consumerName(rng);
      return api(`$JS.API.CONSUMER.${kind === "consumer.info" ? "INFO" : "DELETE"}.${stream}.${name}`, Buffer.alloc(0));
    }
    case "consumer.names":
    case "consumer.list":
      return api(`$JS.API.CONSUMER.${kind === "consumer.names" ? "NAMES" : "LIST"}.${streamName(rng)}`, rng.chance(0.3) ? Buffer.alloc(0) : withBody({ offset: rng.pick(NUMBERS) }));
    case "next": {
      const anchor = rng.pick(ANCHORS).name;
      const onAnchor = rng.chance(0.8);
      const req: Record<string, unknown> = {};
      if (rng.chance(0.8)) req.batch = rng.pick([1, 2, 5, 0, -1, 0.5, 1.5, 1e9, 1e308]);
      if (rng.chance(0.5)) req.no_wait = rng.chance(0.7) ? true : rng.pick([false, "true", 1]);
      if (rng.chance(0.5)) req.expires = rng.pick([1_000_000, 100_000_000, 500_000_000, 0, -1, 1e300, 0.5]);
      if (rng.chance(0.2)) req.max_bytes = rng.pick([1, 100, 0, -1, 1e12]);
      if (rng.chance(0.2)) req.idle_heartbeat = rng.pick([1, 50_000_000, 100_000_000, 1e12, -1]);
      const body = rng.chance(0.15) ? Buffer.from(rng.pick(["", "1", "5", "-3", "x", "99999999999999999999"])) : withBody(req, rng.chance(0.3) ? 1 : 0);
      // It must be answered at once when it asked not to wait (or is not JSON at all: then a 400).
      const text = body.toString().trim();
      let required = false;
      if (onAnchor) {
        try {
          const j = JSON.parse(text) as Record<string, unknown>;
          const exp = typeof j.expires === "number" ? j.expires : 0;
          // A negative expires is a deadline in the past (nats-server answers 408 at once).
          const hb = typeof j.idle_heartbeat === "number" ? j.idle_heartbeat : 0;
          // Answered at once: no_wait without expires (messages or 404), a heartbeat the expiry cannot hold (400);
          // soon: a short expiry (408), a negative one (a deadline in the past). no_wait with a long expiry waits, as nats-server's.
          required = j !== null && typeof j === "object" && ((j.no_wait === true && exp === 0) || (hb > 0 && hb * 2 > exp) || exp < 0 || (exp > 0 && exp <= 500_000_000));
        } catch {
          required = text.startsWith("{");
        }
      }
      return { subject: `$JS.API.CONSUMER.MSG.NEXT.${onAnchor ? anchor : streamName(rng)}.${onAnchor ? ANCHOR_CONSUMER : consumerName(rng)}`, body, answer: "status-or-msg", required };
    }
    case "direct": {
      const anchor = rng.pick(ANCHORS);
      const onAnchor = rng.chance(0.85);
      const stream = onAnchor ? anchor.name : streamName(rng);
      if (rng.chance(0.3)) {
        const subj = rng.pick([`${anchor.subject}.a`, `${anchor.subject}.b`, `${anchor.subject}.*`, `${anchor.subject}.>`, "nothing.here"]);
        const body = rng.chance(0.8) ? Buffer.alloc(0) : Buffer.from("{}");
        return { subject: `$JS.API.DIRECT.GET.${stream}.${subj}`, body, answer: "status-or-msg", required: onAnchor };
      }
      const req: Record<string, unknown> = {};
      if (rng.chance(0.6)) req.seq = rng.pick([...NUMBERS, 1, 2, 3]);
      if (rng.chance(0.3)) req.last_by_subj = rng.pick([`${anchor.subject}.a`, ">", ""]);
      if (rng.chance(0.3)) req.next_by_subj = rng.pick([`${anchor.subject}.>`, "*", ""]);
      return { subject: `$JS.API.DIRECT.GET.${stream}`, body: withBody(req), answer: "status-or-msg", required: onAnchor };
    }
    case "account":
      return api("$JS.API.INFO", rng.chance(0.7) ? Buffer.alloc(0) : withBody({ x: 1 }));
    case "publish": {
      // Into an anchor (it exists: a PubAck must come), or into a fuzzed pool stream (whatever its config: rollups,
      // schedules, limits, discard policies, dedupe windows; it may not exist, then nothing answers).
      const anchor = rng.pick(ANCHORS);
      const pool = rng.chance(0.3) ? rng.pick(POOL) : null;
      const subject = pool === null ? `${anchor.subject}.${rng.pick(["a", "b", "c", "d.e"])}` : `fz.${pool.toLowerCase()}.${rng.pick(["x", "a", "0", "1"])}`;
      const headers = rng.chance(0.7) ? headerBlock(rng) : undefined;
      const data = rng.chance(0.9) ? rng.bytes(rng.small(512)) : rng.bytes(rng.int(70_000));
      // Rollup values a stream drops without a reply (as nats-server); a scheduled message's ack may also differ.
      const silent = headers !== undefined && /Nats-Rollup|garbage|NATS\/2|no colon/.test(headers.toString("latin1"));
      return { subject, body: data, headers, answer: "puback", required: pool === null && !silent };
    }
    case "ack": {
      const anchor = rng.pick(ANCHORS).name;
      const seq = rng.pick(["1", "2", "0", "-1", "x", "99999999999999999999", "1.5"]);
      const subject = rng.chance(0.8) ? `$JS.ACK.${anchor}.${ANCHOR_CONSUMER}.1.${seq}.1.${Date.now()}000000.0` : `$JS.ACK.${anchor}.${ANCHOR_CONSUMER}.${rng.pick(["1", "a.b", "1.2.3.4.5.6.7.8.9.10"])}`;
      const body = Buffer.from(rng.pick(["", "+ACK", "-NAK", "-NAK 1s", "-NAK {\"delay\":1000000}", "-NAK {\"delay\":-5}", "-NAK {bad", "-NAK 99999999h", "+WPI", "+TERM", "+TERM reason\r\nX", "+NXT", "+NXT {\"batch\":2,\"no_wait\":true}", "+NXT 3", "garbage", "+ACK extra"]), "latin1");
      return { subject, body, answer: "any", required: false };
    }
    default: {
      // Subjects the API does not route, and routed ones with odd tokens.
      const subject = rng.pick([
        "$JS.API", "$JS.API.", "$JS.API.STREAM", "$JS.API.STREAM.CREATE", "$JS.API.STREAM.CREATE.a.b", "$JS.API.CONSUMER.CREATE.FZA_FILE.a.b.c.d.e",
        "$JS.API.CONSUMER.MSG.NEXT", "$JS.API.DIRECT.GET", "$JS.API.UNKNOWN.X", "$JS.API.STREAM.MSG.GET.FZA_FILE.x", "$JS.API.CONSUMER.DURABLE.CREATE.FZ0",
        "$JS.API.STREAM.INFO.*", "$JS.API.STREAM.INFO.>", "$JS.API.CONSUMER.INFO.FZA_FILE.*", "$JS.FC.FZA_FILE.PULL.1", "$JS.API.INFO.extra",
      ]);
      return { subject, body: withBody({ name: "FZ0", stream_name: "FZ0", config: {} }), answer: "any", required: apiAnswers(subject) };
    }
  }
}

export function genJetStream(rng: Rng, index: number, ctx: GenContext): FuzzCase {
  const inboxBase = `_INBOX.fzjs${index}`;
  const parts: Buffer[] = [
    Buffer.from(`CONNECT {"verbose":false,"pedantic":false,"headers":true,"protocol":1}\r\nSUB ${inboxBase}.> 1\r\n`),
  ];
  const requests: FuzzCase["requests"] = [];
  const n = 1 + rng.small(4);
  let note = "jetstream";
  for (let k = 0; k < n; k++) {
    const r = buildRequest(rng, `${inboxBase}.c${k}`);
    const inbox = `${inboxBase}.${k}`;
    const sid = `r${k}`;
    parts.push(Buffer.from(`SUB ${inbox} ${sid}\r\n`));
    // Odd reply subjects: the answer then has nowhere to go, but the server must shrug it off.
    const odd = rng.chance(0.04);
    const reply = odd ? rng.pick(["fz.*", ">", "fz.>", "\xff", "a..b"]) : inbox;
    let body = r.body;
    if (body.length + (r.headers?.length ?? 0) > ctx.maxPayload) body = body.subarray(0, Math.max(0, ctx.maxPayload - (r.headers?.length ?? 0)));
    if (r.headers) {
      parts.push(Buffer.from(`HPUB ${r.subject} ${reply} ${r.headers.length} ${r.headers.length + body.length}\r\n`), r.headers, body, Buffer.from("\r\n"));
    } else {
      parts.push(Buffer.from(`PUB ${r.subject} ${reply} ${body.length}\r\n`), body, Buffer.from("\r\n"));
    }
    // A wildcard token in the subject: whether the server's subscriptions see it is not the API's business.
    const wild = r.subject.split(".").some((t) => t === "*" || t === ">");
    const required = r.required && !odd && !wild;
    requests.push({ subject: r.subject, inbox, sid, required, answer: r.answer });
    note += ` ${r.subject.replace(/^\$JS\.API\./, "")}${required ? "!" : ""}`;
  }
  const data = Buffer.concat(parts);
  // Whitespace in a name splits the control line (a protocol error, not an API one); otherwise every line
  // fits and the case is valid at the protocol level: the connection must stay.
  const protocolBroken = requests.some((r) => /[\s]/.test(r.subject) || Buffer.byteLength(r.subject) + 80 > ctx.maxControlLine);
  return {
    family: "jetstream", index, note, transport: "tcp", chunks: splitChunks(rng, data),
    expect: protocolBroken ? { kind: "any" } : { kind: "alive", pongs: 1 }, requests: protocolBroken ? requests.map((r) => ({ ...r, required: false })) : requests,
  };
}
