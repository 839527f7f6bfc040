// `natter bench` command line: modes, flags (nats bench's names where it has one), validation, --help.

import { readFileSync } from "node:fs";
import { BenchError, type TlsFiles } from "./conn.ts";
import { DEFAULT_URL, parseServerUrls, type ServerUrl } from "./url.ts";

export type Mode = "pub" | "sub" | "pubsub" | "request" | "reply";

export const MODE_LABELS: Record<Mode, string> = {
  pub: "pub",
  sub: "sub",
  pubsub: "pub/sub",
  request: "request-reply",
  reply: "reply (service)",
};

export interface BenchOptions {
  mode: Mode;
  subject: string;
  servers: ServerUrl[];
  serverList: string;
  /**
   * pub, pubsub, request: messages (requests) in total, shared among the publishers (requesters).
   * sub: messages each subscriber waits for. reply: stop after serving this many (0: until stopped).
   */
  msgs: number;
  /** Run for this long instead of a message count (0: count). */
  durationMs: number;
  size: number;
  /** A payload from --payload (its size is the message size); null: generated. */
  payload: Uint8Array | null;
  /** Publishers (pub, pubsub) or requesters (request). */
  pubs: number;
  /** Subscribers (sub, pubsub). */
  subs: number;
  /** Built-in responders (request: default 1, 0 = an existing service; reply: default 1). */
  responders: number;
  /** Aggregate target rate in msgs/s over all publishers or requesters; 0 = as fast as possible. */
  rate: number;
  /** nats bench's --sleep: pause per client between messages, in ms (0: none). */
  sleepMs: number;
  /** Subscribers (and responders) join this queue group; "" = plain subscriptions. */
  queue: string;
  /** Requests in flight per requester. */
  inflight: number;
  /** Request timeout; in pub/sub and sub, how long to wait with no message before giving up on the rest. */
  timeoutMs: number;
  multiSubject: boolean;
  multiSubjectMax: number;
  multiSubjectRandom: boolean;
  headers: Array<[string, string]>;
  /** Run the publishers (requesters) in this many Bun Workers; 0 = in the main thread. */
  workers: number;
  /** pub/sub flow control: publishers stay within this many bytes of the slowest subscriber; 0 = off. */
  windowBytes: number;
  /** Timestamp payloads and report latency (pub/sub). */
  latency: boolean;
  user?: string;
  password?: string;
  token?: string;
  tls: TlsFiles;
  connectTimeoutMs: number;
  json: boolean;
  csv: boolean;
  /** --csv=FILE: CSV into this file, the text report on stdout. */
  csvFile: string;
  progress: boolean;
  histogram: boolean;
}

export type ParsedBench = { kind: "help" } | { kind: "run"; options: BenchOptions };

const MODE_NAMES: Record<string, Mode> = {
  pub: "pub",
  publish: "pub",
  sub: "sub",
  subscribe: "sub",
  pubsub: "pubsub",
  "pub-sub": "pubsub",
  "pub/sub": "pubsub",
  request: "request",
  req: "request",
  "request-reply": "request",
  reqrep: "request",
  reply: "reply",
  serve: "reply",
  responder: "reply",
};

interface FlagSpec {
  names: string[];
  /** "bool" flags take no value (but accept --flag=true/false); the others take the next word or =value. */
  kind: "bool" | "value";
  arg?: string;
  help: string;
  /** Hidden from --help (accepted for nats bench compatibility, documented in the README). */
  hidden?: boolean;
  set: (o: Draft, value: string, flag: string) => void;
}

/** Options while parsing: undefined = not given (the mode picks the default). */
interface Draft {
  mode?: Mode;
  subject?: string;
  server?: string;
  msgs?: number;
  durationMs?: number;
  size?: number;
  payloadFile?: string;
  pubs?: number;
  subs?: number;
  clients?: number;
  responders?: number;
  rate?: number;
  sleepMs?: number;
  queue?: string;
  inflight?: number;
  timeoutMs?: number;
  multiSubject?: boolean;
  multiSubjectMax?: number;
  multiSubjectRandom?: boolean;
  headers: Array<[string, string]>;
  workers?: number;
  windowBytes?: number;
  latency?: boolean;
  user?: string;
  password?: string;
  token?: string;
  tls: TlsFiles;
  connectTimeoutMs?: number;
  json?: boolean;
  csv?: boolean;
  csvFile?: string;
  progress?: boolean;
  histogram?: boolean;
  /** Old nats bench (before v0.1.5): --request / --reply pick the mode. */
  legacyRequest?: boolean;
  legacyReply?: boolean;
}

const flags: FlagSpec[] = [
  { names: ["s", "server"], kind: "value", arg: "urls", help: `Server URL(s), comma-separated; clients take them in turn (default: $NATS_URL or ${DEFAULT_URL})`,
    set: (o, v) => { o.server = v; } },
  { names: ["subject"], kind: "value", arg: "subject", help: "Subject (or give it after the mode; default: natter.bench)",
    set: (o, v) => { o.subject = v; } },
  { names: ["msgs"], kind: "value", arg: "count", help: "Messages in total (pub, pub/sub, request), per subscriber (sub), or to serve (reply) (default: 100000; 10k, 1M…)",
    set: (o, v, f) => { o.msgs = parseCount(v, f, 1); } },
  { names: ["duration"], kind: "value", arg: "time", help: "Run for this long instead of a message count (10s, 1m30s, 500ms)",
    set: (o, v, f) => { o.durationMs = parseDuration(v, f); if (o.durationMs <= 0) throw new BenchError(`--${f} must be more than 0`); } },
  { names: ["size"], kind: "value", arg: "bytes", help: "Payload size (default: 128; B, KB, MB suffixes are 1024-based, as nats bench)",
    set: (o, v, f) => { o.size = parseSize(v, f); } },
  { names: ["pub"], kind: "value", arg: "n", help: "Publishers (pub, pub/sub) or requesters (request) (default: 1)",
    set: (o, v, f) => { o.pubs = parseCount(v, f, 0); } },
  { names: ["sub"], kind: "value", arg: "n", help: "Subscribers (sub, pub/sub; default: 1), or responders (request, reply)",
    set: (o, v, f) => { o.subs = parseCount(v, f, 0); } },
  { names: ["clients"], kind: "value", arg: "n", help: "nats bench's --clients: the mode's own clients (publishers, subscribers, requesters, responders)",
    set: (o, v, f) => { o.clients = parseCount(v, f, 1); } },
  { names: ["responders"], kind: "value", arg: "n", help: "request: built-in responders, 0 = use a service already running (default: 1)",
    set: (o, v, f) => { o.responders = parseCount(v, f, 0); } },
  { names: ["rate", "throughput"], kind: "value", arg: "msgs/s", help: "Target rate over all publishers or requesters, paced (0: flat out; 50k, 1M…)",
    set: (o, v, f) => { o.rate = parseCount(v, f, 0); } },
  { names: ["sleep"], kind: "value", arg: "time", help: "Pause between messages per client (nats bench's --sleep; becomes a paced rate)",
    set: (o, v, f) => { o.sleepMs = parseDuration(v, f); } },
  { names: ["queue"], kind: "value", arg: "group", help: "Subscribers join this queue group: each message goes to one of them",
    set: (o, v) => { if (!/^[^\s*>]+$/.test(v)) throw new BenchError(`invalid queue group "${v}"`); o.queue = v; } },
  { names: ["inflight"], kind: "value", arg: "n", help: "request: requests in flight per requester (default: 1, one at a time)",
    set: (o, v, f) => { o.inflight = parseCount(v, f, 1); } },
  { names: ["timeout"], kind: "value", arg: "time", help: "request: reply timeout; sub, pub/sub: give up on missing messages after this long without one (default: 5s)",
    set: (o, v, f) => { o.timeoutMs = parseDuration(v, f); if (o.timeoutMs <= 0) throw new BenchError(`--${f} must be more than 0`); } },
  { names: ["multisubject"], kind: "bool", help: "Publish on <subject>.<n>; subscribers take <subject>.*",
    set: (o, v) => { o.multiSubject = v === "true"; } },
  { names: ["multisubjectmax"], kind: "value", arg: "n", help: "With --multisubject: subjects cycle through this many (0: no limit; default: 100000)",
    set: (o, v, f) => { o.multiSubjectMax = parseCount(v, f, 0); } },
  { names: ["multisubjectrandomize"], kind: "bool", help: "With --multisubject: pick the subject number at random",
    set: (o, v) => { o.multiSubjectRandom = v === "true"; } },
  { names: ["H", "header"], kind: "value", arg: "K:V", help: "Add a header to every message (repeatable; sends HPUB)",
    set: (o, v) => { o.headers.push(parseHeader(v)); } },
  { names: ["payload"], kind: "value", arg: "file", help: "Send this file's bytes as the payload (sets --size; no latency stamps)",
    set: (o, v) => { o.payloadFile = v; } },
  { names: ["no-latency"], kind: "bool", help: "pub/sub: do not timestamp payloads nor measure latency",
    set: (o, v) => { o.latency = v !== "true"; } },
  { names: ["workers"], kind: "value", arg: "n", help: "Run the publishers (requesters) in n Bun Workers (default: 0: one thread; on 2 cores Workers do not help)",
    set: (o, v, f) => { o.workers = parseCount(v, f, 0); } },
  { names: ["window"], kind: "value", arg: "bytes", help: "pub/sub: publishers stay this close to the slowest subscriber of this process (default: 256KB; 0: off)",
    set: (o, v, f) => { o.windowBytes = parseSize(v, f); } },
  { names: ["user"], kind: "value", arg: "user", help: "User name",
    set: (o, v) => { o.user = v; } },
  { names: ["password", "pass"], kind: "value", arg: "password", help: "Password",
    set: (o, v) => { o.password = v; } },
  { names: ["token"], kind: "value", arg: "token", help: "Authentication token",
    set: (o, v) => { o.token = v; } },
  { names: ["tlsca"], kind: "value", arg: "file", help: "CA certificate to verify the server with (TLS: tls:// or a server that requires it)",
    set: (o, v) => { o.tls.ca = v; } },
  { names: ["tlscert"], kind: "value", arg: "file", help: "Client certificate (TLS)",
    set: (o, v) => { o.tls.cert = v; } },
  { names: ["tlskey"], kind: "value", arg: "file", help: "Client certificate's private key (TLS)",
    set: (o, v) => { o.tls.key = v; } },
  { names: ["connect-timeout"], kind: "value", arg: "time", help: "How long connecting may take (default: 5s)",
    set: (o, v, f) => { o.connectTimeoutMs = parseDuration(v, f); } },
  { names: ["json"], kind: "bool", help: "Print the results as JSON (stdout) instead of the text report",
    set: (o, v) => { o.json = v === "true"; } },
  { names: ["csv"], kind: "bool", help: "Print the results as CSV (stdout); --csv=FILE writes FILE and prints the text report",
    set: (o, v) => {
      if (v === "true" || v === "false") o.csv = v === "true";
      else o.csvFile = v;
    } },
  { names: ["progress"], kind: "bool", help: "Progress bar on stderr when it is a terminal (default: true; --no-progress)",
    set: (o, v) => { o.progress = v === "true"; } },
  { names: ["no-progress"], kind: "bool", help: "No progress bar", hidden: true,
    set: (o, v) => { o.progress = v !== "true"; } },
  { names: ["histogram"], kind: "bool", help: "Latency histogram in the text report (default: true; --no-histogram)",
    set: (o, v) => { o.histogram = v === "true"; } },
  { names: ["no-histogram"], kind: "bool", help: "No latency histogram", hidden: true,
    set: (o, v) => { o.histogram = v !== "true"; } },
  { names: ["request"], kind: "bool", help: "Old nats bench: request mode (publishers are requesters)", hidden: true,
    set: (o, v) => { o.legacyRequest = v === "true"; } },
  { names: ["reply"], kind: "bool", help: "Old nats bench: reply mode (subscribers are responders)", hidden: true,
    set: (o, v) => { o.legacyReply = v === "true"; } },
];

const byName = new Map<string, FlagSpec>();
for (const spec of flags) for (const name of spec.names) byName.set(name, spec);

export function parseBenchArgs(argv: readonly string[], env: Record<string, string | undefined> = process.env): ParsedBench {
  const o: Draft = { headers: [], tls: {} };
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i]!;
    if (word === "--") {
      positional.push(...argv.slice(i + 1));
      break;
    }
    if (!word.startsWith("-") || word === "-") {
      positional.push(word);
      continue;
    }
    const body = word.replace(/^--?/, "");
    const eq = body.indexOf("=");
    const name = eq >= 0 ? body.slice(0, eq) : body;
    if (name === "h" || name === "help") return { kind: "help" };
    let spec = byName.get(name);
    let negated = false;
    if (!spec && name.startsWith("no-") && byName.get(name.slice(3))?.kind === "bool") {
      spec = byName.get(name.slice(3));
      negated = true;
    }
    if (!spec) throw new BenchError(`unknown flag ${word.startsWith("--") ? "--" : "-"}${name} (see natter bench --help)`);
    const flag = name;
    if (spec.kind === "bool") {
      let v = eq >= 0 ? body.slice(eq + 1) : "true";
      if (spec.names[0] !== "csv" && v !== "true" && v !== "false") throw new BenchError(`invalid value "${v}" for --${flag}: true or false`);
      if (negated) {
        if (eq >= 0) throw new BenchError(`--${flag} takes no value`);
        v = "false";
      }
      spec.set(o, v, flag);
      continue;
    }
    let value: string;
    if (eq >= 0) value = body.slice(eq + 1);
    else {
      if (i + 1 >= argv.length) throw new BenchError(`flag --${flag} needs a value`);
      value = argv[++i]!;
    }
    spec.set(o, value, flag);
  }

  // Positional words: [mode] [subject]; "service request|serve" as nats bench spells it.
  if (positional[0] === "service") {
    const what = positional[1];
    if (what !== "request" && what !== "serve" && what !== "reply") {
      throw new BenchError(`"service" takes "request" or "serve" (see natter bench --help)`);
    }
    positional.splice(0, 2, what === "request" ? "request" : "reply");
  }
  if (positional.length > 0 && MODE_NAMES[positional[0]!.toLowerCase()] !== undefined) {
    o.mode = MODE_NAMES[positional.shift()!.toLowerCase()];
  }
  if (positional.length > 0) {
    if (o.subject !== undefined) throw new BenchError(`unexpected argument "${positional[0]}": the subject is given by --subject`);
    o.subject = positional.shift();
  }
  if (positional.length > 0) throw new BenchError(`unexpected argument "${positional[0]}" (see natter bench --help)`);
  if (o.mode === undefined) {
    const legacy = o.legacyRequest || o.legacyReply || (o.pubs ?? 0) > 0 || (o.subs ?? 0) > 0;
    if (!legacy && o.subject !== undefined && argv.includes(o.subject)) {
      throw new BenchError(`unknown mode "${o.subject}": use pub, sub, pubsub, request or reply (see natter bench --help)`);
    }
    o.mode = legacyMode(o);
  }

  return { kind: "run", options: finish(o, env) };
}

/** Old nats bench had no modes: `nats bench foo --pub 1 --sub 1`, `--request`, `--reply`. */
function legacyMode(o: Draft): Mode {
  if (o.legacyRequest) return "request";
  if (o.legacyReply) return "reply";
  const pubs = o.pubs ?? 0;
  const subs = o.subs ?? 0;
  if (pubs > 0 && subs > 0) return "pubsub";
  if (pubs > 0) return "pub";
  if (subs > 0) return "sub";
  throw new BenchError("give a mode: pub, sub, pubsub, request or reply (see natter bench --help)");
}

function finish(o: Draft, env: Record<string, string | undefined>): BenchOptions {
  const mode = o.mode!;
  const serverList = o.server ?? env.NATS_URL ?? DEFAULT_URL;
  const servers = parseServerUrls(serverList);
  const subject = o.subject ?? "natter.bench";
  validateSubject(subject, o.multiSubject === true);

  // Who runs: --clients is nats bench's count for the mode's own clients.
  let pubs = 0;
  let subs = 0;
  let responders = 0;
  const refuse = (flag: string) => { throw new BenchError(`--${flag} does not apply to ${mode} mode`); };
  switch (mode) {
    case "pub":
      if (o.subs !== undefined && o.subs > 0) refuse("sub");
      if (o.responders !== undefined) refuse("responders");
      pubs = o.clients ?? o.pubs ?? 1;
      break;
    case "sub":
      if (o.pubs !== undefined && o.pubs > 0) refuse("pub");
      if (o.responders !== undefined) refuse("responders");
      subs = o.clients ?? o.subs ?? 1;
      break;
    case "pubsub":
      if (o.responders !== undefined) refuse("responders");
      if (o.clients !== undefined) throw new BenchError("pubsub mode takes --pub and --sub, not --clients");
      pubs = o.pubs ?? 1;
      subs = o.subs ?? 1;
      break;
    case "request":
      pubs = o.clients ?? o.pubs ?? 1;
      responders = o.responders ?? o.subs ?? 1;
      break;
    case "reply":
      if (o.pubs !== undefined && o.pubs > 0) refuse("pub");
      responders = o.clients ?? o.responders ?? o.subs ?? 1;
      break;
  }
  if (mode !== "sub" && mode !== "reply" && pubs < 1) throw new BenchError(`${MODE_LABELS[mode]} needs at least one ${mode === "request" ? "requester" : "publisher"}`);
  if (mode === "sub" && subs < 1) throw new BenchError("sub mode needs at least one subscriber");
  if (mode === "reply" && responders < 1) throw new BenchError("reply mode needs at least one responder");

  let payload: Uint8Array | null = null;
  let size = o.size ?? 128;
  if (o.payloadFile !== undefined) {
    try {
      payload = new Uint8Array(readFileSync(o.payloadFile));
    } catch (error) {
      throw new BenchError(`cannot read --payload ${o.payloadFile}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
    if (o.size !== undefined && o.size !== payload.length) throw new BenchError(`--size ${o.size} and --payload (${payload.length} bytes) disagree`);
    size = payload.length;
  }
  if (size > 64 * 1024 * 1024) throw new BenchError(`--size ${size} is too large (at most 64 MiB)`);

  const durationMs = o.durationMs ?? 0;
  const sleepMs = o.sleepMs ?? 0;
  const rate = o.rate ?? 0;
  if (rate > 0 && (mode === "sub" || mode === "reply")) refuse("rate");
  // In reply mode --sleep delays each reply (nats bench's `service serve --sleep`).
  if (sleepMs > 0 && mode === "sub") refuse("sleep");
  if (o.queue !== undefined && mode !== "sub" && mode !== "pubsub" && mode !== "reply" && mode !== "request") refuse("queue");
  if (o.inflight !== undefined && mode !== "request") refuse("inflight");
  if (o.windowBytes !== undefined && mode !== "pubsub") refuse("window");
  if (o.multiSubject && (mode === "request" || mode === "reply")) refuse("multisubject");
  if (o.workers !== undefined && o.workers > 0 && (mode === "sub" || mode === "reply")) refuse("workers");
  if (o.workers !== undefined && o.workers > 64) throw new BenchError("--workers is at most 64");
  const csv = o.csv === true;
  if (csv && o.json) throw new BenchError("--json and --csv both print to stdout: pick one (or --csv=FILE)");

  return {
    mode,
    subject,
    servers,
    serverList,
    msgs: o.msgs ?? (mode === "reply" ? 0 : 100_000),
    durationMs,
    size,
    payload,
    pubs,
    subs,
    responders,
    rate,
    sleepMs,
    queue: o.queue ?? "",
    inflight: o.inflight ?? 1,
    timeoutMs: o.timeoutMs ?? 5_000,
    multiSubject: o.multiSubject ?? false,
    multiSubjectMax: o.multiSubjectMax ?? 100_000,
    multiSubjectRandom: o.multiSubjectRandom ?? false,
    headers: o.headers,
    workers: o.workers ?? 0,
    windowBytes: o.windowBytes ?? 256 * 1024,
    latency: (o.latency ?? true) && payload === null,
    user: o.user,
    password: o.password,
    token: o.token,
    tls: o.tls,
    connectTimeoutMs: o.connectTimeoutMs ?? 5_000,
    json: o.json ?? false,
    csv,
    csvFile: o.csvFile ?? "",
    progress: o.progress ?? true,
    histogram: o.histogram ?? true,
  };
}

function validateSubject(subject: string, multi: boolean): void {
  const tokens = subject.split(".");
  const ok = subject.length > 0 && !/\s/.test(subject) && tokens.every((t) => t.length > 0);
  if (!ok) throw new BenchError(`invalid subject "${subject}"`);
  if (multi && /[*>]/.test(subject)) throw new BenchError(`--multisubject needs a subject without wildcards, not "${subject}"`);
}

/** Header `K:V` (nats bench's -H). */
function parseHeader(v: string): [string, string] {
  const colon = v.indexOf(":");
  if (colon <= 0) throw new BenchError(`invalid header "${v}": use KEY:VALUE`);
  const key = v.slice(0, colon).trim();
  const value = v.slice(colon + 1).trim();
  if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(key) || /[\r\n]/.test(value)) throw new BenchError(`invalid header "${v}"`);
  return [key, value];
}

const countUnits: Record<string, number> = { "": 1, k: 1e3, m: 1e6, g: 1e9 };

/** A whole number, with an optional k/M/G suffix (1000-based) and _ or , separators. */
export function parseCount(value: string, flag: string, min: number): number {
  const m = /^(\d+(?:\.\d+)?)([kKmMgG]?)$/.exec(value.trim().replace(/[_,]/g, ""));
  const n = m ? Math.round(Number(m[1]) * countUnits[m[2]!.toLowerCase()]!) : NaN;
  if (!m || !Number.isSafeInteger(n)) throw new BenchError(`invalid value "${value}" for --${flag}: not a whole number`);
  if (n < min) throw new BenchError(`--${flag} must be at least ${min}`);
  return n;
}

const sizeShift: Record<string, number> = { "": 0, b: 0, k: 10, kb: 10, kib: 10, m: 20, mb: 20, mib: 20, g: 30, gb: 30, gib: 30 };

export function parseSize(value: string, flag: string): number {
  const m = /^(\d+)\s*([a-zA-Z]*)$/.exec(value.trim());
  const shift = m ? sizeShift[m[2]!.toLowerCase()] : undefined;
  if (!m || shift === undefined) throw new BenchError(`invalid value "${value}" for --${flag}: not a size (128, 1KB, 1MB)`);
  return Number(m[1]) * 2 ** shift;
}

const durationUnits: Record<string, number> = { ns: 1e-6, us: 1e-3, "µs": 1e-3, "μs": 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** A Go duration (1m30s, 500ms, 100us) or a bare number of seconds; in milliseconds. */
export function parseDuration(value: string, flag: string): number {
  const t = value.trim();
  if (/^\d+(\.\d+)?$/.test(t)) return Number(t) * 1000;
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|μs|ms|s|m|h)/y;
  let total = 0;
  let at = 0;
  for (let m = re.exec(t); m; m = re.exec(t)) {
    total += Number(m[1]) * durationUnits[m[2]!]!;
    at = re.lastIndex;
  }
  if (at === 0 || at !== t.length) throw new BenchError(`invalid value "${value}" for --${flag}: not a duration (10s, 1m30s, 500ms)`);
  return total;
}

export function benchUsage(): string {
  const lines = [
    "Usage: natter bench <mode> [subject] [options]",
    "",
    "Benchmarks a NATS server (natter, nats-server, any server speaking the NATS protocol) at a URL.",
    "",
    "Modes:",
    "    pub        Publishers only: how fast the server takes messages (nobody subscribed)",
    "    sub        Subscribers only: each waits for --msgs messages published by someone else",
    "    pubsub     Publishers and subscribers in this process; latency from a timestamp in each payload",
    "    request    Requesters and built-in responders (--responders 0: a service already running); round-trip latency",
    "    reply      Responders only: serve requests on the subject until --msgs, --duration or Ctrl-C",
    "    (nats bench spellings work too: `service request`, `service serve`, and `<subject> --pub N --sub M`.)",
    "",
    "Options:",
  ];
  for (const spec of flags) {
    if (spec.hidden) continue;
    const names = spec.names.map((n) => (n.length === 1 ? `-${n}` : `--${n}`)).join(", ");
    const left = spec.kind === "value" ? `${names} <${spec.arg}>` : names;
    lines.push(`    ${left.padEnd(34)} ${spec.help}`);
  }
  lines.push(`    ${"-h, --help".padEnd(34)} Show this message`);
  lines.push(
    "",
    "Output: a text report on stdout (per-client and aggregate msgs/s and MB/s, min/avg/max/stddev, latency",
    "percentiles and a histogram), or --json / --csv. MB is 10^6 bytes. Errors: one line on stderr, exit status 1;",
    "exit status 1 also when messages were lost or requests timed out (the report is printed first).",
    "",
    "Examples:",
    "    natter bench pub foo --msgs 1M --size 16",
    "    natter bench pubsub foo --pub 2 --sub 4 --duration 10s --rate 100k",
    "    natter bench request svc --clients 4 --inflight 8 --json",
    "    natter bench reply svc -s nats://10.0.0.5:4222    # then: natter bench request svc --responders 0",
  );
  return lines.join("\n");
}
