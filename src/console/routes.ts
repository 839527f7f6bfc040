// The console's HTTP side, on the monitoring port under /console (every monitoring endpoint stays where
// it is; the page reads /varz, /connz, … itself, same origin):
//   GET  /console, /console/app.js, /console/app.css    the page (bundled at build time, src/console/assets.ts)
//   POST /console/api/login {user, password}            opens a session (cookie) and returns the CSRF token
//   GET  /console/api/session                           who is signed in ({user: null} when nobody)
//   POST /console/api/logout
//   GET  /console/api/overview                          identity and config summary
//   GET  /console/api/series?since=T                    the ring buffer's samples after unix second T
//   GET  /console/api/live                              the same as server-sent events, one a second
//   GET  /console/api/subjects                          the busiest subjects, sampled (src/console/top-subjects.ts)
//   POST /console/api/connections/close {cid}           admin: closes a client connection
//   POST /console/api/streams/create|purge|delete {account, name, subjects?, storage?}   admin
//   POST /console/api/streams/update {account, name, subjects?, max_msgs?, max_bytes?, max_msgs_per_subject?, max_age_seconds?}   admin
//   POST /console/api/consumers/create {account, stream, name, filter_subject?, ack_policy?, deliver_policy?, max_deliver?, dead_letter_subject?}   admin
//   POST /console/api/consumers/update {account, stream, name, description?, ack_wait?, …}   admin (src/console/consumer-edit.ts)
//   POST /console/api/consumers/delete {account, stream, name}                          admin
//   POST /console/api/streams/replay {account, stream, from, to, subject}               admin (src/console/replay.ts)
//   GET  /console/api/backlog?account=&stream=&consumer=   a consumer's num_pending/num_ack_pending, 15 minutes
//   GET  /console/api/dead-letters; POST dead-letters/redrive|discard {account, stream, seq}   admin
//   GET  /console/api/streams/msg?account=&stream=&seq=&subject=&time=   one stored message (the message browser)
//   GET  /console/api/accounts                          accounts, their users (names only) and permissions
//   GET  /console/api/audit?type=&user=&limit=          the audit log's newest lines, filtered
//   GET  /console/api/cluster                           the gossip's view of the members
//   GET  /console/api/alerts                            the rules, the alerts firing, their history (src/console/alerts.ts)
//   GET  /console/api/permissions/check?user=&op=pub|sub&subject=&queue=   what the server would decide
// Everything under /console/api but login needs a session; POSTs need the session's CSRF token in the
// X-CSRF-Token header and a JSON body, and admin ones the admin role. Admin actions and sign-ins are
// written to the audit log with the console user.
import type { Server } from "../server.ts";
import { AuditType } from "../audit.ts";
import { CloseReason } from "../protocol/errors.ts";
import { consoleAssets } from "./assets.ts";
import { History, SAMPLE_INTERVAL_MS } from "./history.ts";
import { Sessions, sessionCookie, type Session } from "./sessions.ts";
import { configSummary, identity } from "./summary.ts";
import { MAX_SUBJECTS, SAMPLE_EVERY, TopSubjects } from "./top-subjects.ts";
import { ApiError, jsApiOk, validName } from "./jetstream.ts";
import { accountsView, checkPermission } from "./accounts.ts";
import { auditTail } from "./audit-view.ts";
import { clusterView } from "./cluster-view.ts";
import { Alerts, serverAlerts } from "./alerts.ts";
import { deadLetters, discard, messageAtTime, redrive, replay } from "./replay.ts";
import { Backlog } from "./backlog.ts";
import { applyConsumerEdit, EditError } from "./consumer-edit.ts";

export const CONSOLE_PATH = "/console";

/** Headers on every console answer: no caching of data, no framing, nothing loaded from another origin. */
const SECURITY_HEADERS: Record<string, string> = {
  "Cache-Control": "no-store",
  "X-Content-Type-Options": "nosniff",
  "X-Frame-Options": "DENY",
  "Referrer-Policy": "no-referrer",
  "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
};

function json(body: unknown, status = 200, extra: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { ...SECURITY_HEADERS, "Content-Type": "application/json", ...extra } });
}

const error = (status: number, message: string) => json({ error: message }, status);

const INDEX_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>natter console</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/console/app.css">
</head>
<body>
<div id="app"></div>
<script type="module" src="/console/app.js"></script>
</body>
</html>
`;

export interface ConsoleHandler {
  /** Whether this request is the console's (its path is under /console). */
  owns(pathname: string): boolean;
  /** `remote`: the peer's address, for the audit log. */
  fetch(req: Request, remote?: string): Promise<Response>;
  stop(): void;
}

export function createConsoleHandler(server: Server): ConsoleHandler {
  const sessions = new Sessions(server.options.console.users);
  // Served over https_port: the session cookie is Secure (a browser never sends it over plain HTTP).
  const secureCookie = server.options.httpsPort !== 0;
  const history = new History(server);
  history.start();
  const assets = consoleAssets(); // starts bundling (from source) at once, not at the first request
  assets.catch((e: Error) => server.log.error(`Console assets could not be built: ${e.message}`));
  const audit = (type: typeof AuditType.ConsoleLogin | typeof AuditType.ConsoleAction, fields: Record<string, unknown>) =>
    server.events?.adminOperation(type, fields);
  const alerts = new Alerts(server, server.options.console.alerts);
  serverAlerts.set(server, alerts);
  const backlog = server.options.jetstream ? new Backlog(server) : null;
  const topSubjects = new TopSubjects();
  server.topSubjects = topSubjects; // from now on the publish path samples subjects
  const liveStreams = new Set<ReadableStreamDefaultController<Uint8Array>>();
  // Once a second, off the hot path: the busiest subjects' rates, the consumers' backlog, the alert rules,
  // and a frame for each server-sent event stream.
  const everySecond = setInterval(() => {
    topSubjects.tick();
    try {
      backlog?.sample();
    } catch (e) {
      server.log.error(`Console backlog: ${(e as Error).message}`);
    }
    if (Object.keys(alerts.rules).length > 0) {
      try {
        alerts.evaluate();
      } catch (e) {
        server.log.error(`Console alerts: ${(e as Error).message}`);
      }
    }
    if (liveStreams.size === 0) return;
    const frame = new TextEncoder().encode(`data: ${JSON.stringify(history.since(Date.now() / 1000 - 2))}\n\n`);
    for (const c of liveStreams) {
      try {
        c.enqueue(frame);
      } catch {
        liveStreams.delete(c);
      }
    }
  }, SAMPLE_INTERVAL_MS);
  everySecond.unref?.();

  async function page(name: string): Promise<Response> {
    if (name === "" || name === "/") return new Response(INDEX_HTML, { headers: { ...SECURITY_HEADERS, "Content-Type": "text/html; charset=utf-8" } });
    const a = await assets;
    if (name === "/app.js") return new Response(a.js, { headers: { ...SECURITY_HEADERS, "Content-Type": "text/javascript; charset=utf-8" } });
    if (name === "/app.css") return new Response(a.css, { headers: { ...SECURITY_HEADERS, "Content-Type": "text/css; charset=utf-8" } });
    return error(404, "not found");
  }

  /** The body of a POST as an object: JSON only (a cross-site form cannot send that without a preflight we refuse). */
  async function body(req: Request): Promise<Record<string, unknown> | null> {
    if (!(req.headers.get("content-type") ?? "").startsWith("application/json")) return null;
    try {
      const v: unknown = await req.json();
      return typeof v === "object" && v !== null ? (v as Record<string, unknown>) : null;
    } catch {
      return null;
    }
  }

  async function login(req: Request, remote: string): Promise<Response> {
    const b = await body(req);
    if (b === null || typeof b.user !== "string" || typeof b.password !== "string") return error(400, "expected JSON {user, password}");
    if (sessions.throttled(remote)) {
      audit(AuditType.ConsoleLogin, { console_user: b.user, ok: false, throttled: true, remote: remote || undefined });
      return error(429, "too many failed sign-ins from this address: wait a minute");
    }
    const s = await sessions.signIn(b.user, b.password, remote);
    audit(AuditType.ConsoleLogin, { console_user: b.user, ok: s !== null, remote: remote || undefined });
    if (s === null) return error(401, "wrong user or password");
    return json({ user: s.user, role: s.role, csrf: s.csrf }, 200, { "Set-Cookie": sessionCookie(s.id, secureCookie) });
  }

  type Outcome = { status: number; result: Record<string, unknown> };
  /** What an action aimed at (names and ids only), so a refused or failed attempt's audit line says so. */
  const targetOf = (b: Record<string, unknown>) =>
    Object.fromEntries(Object.entries(b).filter(([k, v]) => ["cid", "account", "name", "stream", "seq"].includes(k) && (typeof v === "string" || typeof v === "number")));
  /** An admin action: the session's role, its CSRF token, then `act`; recorded in the audit log either way. */
  async function adminAction(req: Request, s: Session, action: string, act: (b: Record<string, unknown>) => Outcome | Promise<Outcome>): Promise<Response> {
    const b = await body(req);
    if (b === null) return error(400, "expected a JSON body");
    if (s.role !== "admin") {
      audit(AuditType.ConsoleAction, { console_user: s.user, action, allowed: false, ...targetOf(b) });
      return error(403, "this needs the admin role");
    }
    let outcome: Outcome;
    try {
      outcome = await act(b);
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      outcome = { status: e.status, result: { ...targetOf(b), error: e.message } };
    }
    const { status, result } = outcome;
    audit(AuditType.ConsoleAction, { console_user: s.user, action, allowed: true, ...result });
    return json(result, status);
  }

  function closeConnection(b: Record<string, unknown>): { status: number; result: Record<string, unknown> } {
    const cid = Number(b.cid);
    const conn = server.connections.get(cid);
    if (!Number.isInteger(cid) || conn === undefined) return { status: 404, result: { cid: b.cid, error: "no such connection" } };
    conn.close(CloseReason.Kicked, null);
    return { status: 200, result: { cid, closed: true } };
  }

  const accountOf = (b: Record<string, unknown>) => (typeof b.account === "string" && b.account !== "" ? b.account : "$G");

  /** Stream actions, through the JetStream API of the stream's account (src/console/jetstream.ts). */
  function streamAction(verb: "CREATE" | "PURGE" | "DELETE") {
    return async (b: Record<string, unknown>): Promise<Outcome> => {
      const account = typeof b.account === "string" && b.account !== "" ? b.account : "$G";
      if (!validName(b.name)) return { status: 400, result: { account, error: "a stream name without dots, wildcards or spaces" } };
      let request: unknown = {};
      if (verb === "CREATE") {
        const subjects = (Array.isArray(b.subjects) ? b.subjects : String(b.subjects ?? "").split(",")).map((x) => String(x).trim()).filter(Boolean);
        request = { name: b.name, subjects: subjects.length > 0 ? subjects : [b.name], storage: b.storage === "memory" ? "memory" : "file" };
      }
      const answer = await jsApiOk(server, account, `$JS.API.STREAM.${verb}.${b.name}`, request);
      return { status: 200, result: { account, stream: b.name, ...(verb === "PURGE" ? { purged: answer.purged } : {}), ok: true } };
    };
  }

  /** Edit a stream: its current config from STREAM.INFO, the fields the form has changed, STREAM.UPDATE. */
  async function updateStream(b: Record<string, unknown>): Promise<Outcome> {
    const account = accountOf(b);
    if (!validName(b.name)) return { status: 400, result: { account, error: "a stream name" } };
    const info = await jsApiOk(server, account, `$JS.API.STREAM.INFO.${b.name}`, {});
    const config = { ...(info.config as Record<string, unknown>) };
    const changed: string[] = [];
    if (b.subjects !== undefined) {
      config.subjects = String(b.subjects).split(",").map((x) => x.trim()).filter(Boolean);
      changed.push("subjects");
    }
    for (const key of ["max_msgs", "max_bytes", "max_msgs_per_subject"] as const) {
      if (b[key] === undefined || b[key] === "") continue;
      config[key] = Number(b[key]);
      changed.push(key);
    }
    if (b.max_age_seconds !== undefined && b.max_age_seconds !== "") {
      config.max_age = Math.round(Number(b.max_age_seconds) * 1e9); // nanoseconds on the wire
      changed.push("max_age");
    }
    await jsApiOk(server, account, `$JS.API.STREAM.UPDATE.${b.name}`, config);
    return { status: 200, result: { account, stream: b.name, changed, ok: true } };
  }

  /** Create a durable consumer on a stream (CONSUMER.CREATE.<stream>.<name>), with the form's few settings. */
  async function createConsumer(b: Record<string, unknown>): Promise<Outcome> {
    const account = accountOf(b);
    if (!validName(b.stream) || !validName(b.name)) return { status: 400, result: { account, error: "a stream and a consumer name without dots, wildcards or spaces" } };
    const config: Record<string, unknown> = {
      durable_name: b.name,
      ack_policy: ["none", "all", "explicit"].includes(String(b.ack_policy)) ? b.ack_policy : "explicit",
      deliver_policy: ["all", "new", "last"].includes(String(b.deliver_policy)) ? b.deliver_policy : "all",
    };
    if (typeof b.filter_subject === "string" && b.filter_subject !== "") config.filter_subject = b.filter_subject;
    if (b.max_deliver !== undefined && b.max_deliver !== "") config.max_deliver = Number(b.max_deliver);
    if (typeof b.dead_letter_subject === "string" && b.dead_letter_subject !== "") config.dead_letter_subject = b.dead_letter_subject;
    await jsApiOk(server, account, `$JS.API.CONSUMER.CREATE.${b.stream}.${b.name}`, { stream_name: b.stream, config });
    return { status: 200, result: { account, stream: b.stream, consumer: b.name, ok: true } };
  }

  /**
   * Edit a consumer: its current config from CONSUMER.INFO, the form's answers applied (only what nats-server
   * lets change: src/console/consumer-edit.ts), then CONSUMER.CREATE with action "update", so nats-server's
   * checks decide and its error text is the answer.
   */
  async function updateConsumer(b: Record<string, unknown>): Promise<Outcome> {
    const account = accountOf(b);
    if (!validName(b.stream) || !validName(b.name)) return { status: 400, result: { account, error: "a stream and a consumer name" } };
    const info = await jsApiOk(server, account, `$JS.API.CONSUMER.INFO.${b.stream}.${b.name}`, {});
    let edit: ReturnType<typeof applyConsumerEdit>;
    try {
      edit = applyConsumerEdit(info.config as Record<string, unknown>, b);
    } catch (e) {
      if (e instanceof EditError) return { status: 400, result: { account, stream: b.stream, consumer: b.name, error: e.message } };
      throw e;
    }
    const target = { account, stream: b.stream, consumer: b.name };
    if (edit.changed.length === 0) return { status: 200, result: { ...target, changed: [], ok: true } };
    await jsApiOk(server, account, `$JS.API.CONSUMER.CREATE.${b.stream}.${b.name}`, { stream_name: b.stream, config: edit.config, action: "update" });
    return { status: 200, result: { ...target, changed: edit.changed, ok: true } };
  }

  async function deleteConsumer(b: Record<string, unknown>): Promise<Outcome> {
    const account = typeof b.account === "string" && b.account !== "" ? b.account : "$G";
    if (!validName(b.stream) || !validName(b.name)) return { status: 400, result: { account, error: "a stream and a consumer name" } };
    await jsApiOk(server, account, `$JS.API.CONSUMER.DELETE.${b.stream}.${b.name}`, {});
    return { status: 200, result: { account, stream: b.stream, consumer: b.name, ok: true } };
  }

  /** One stored message: by sequence, the next one on a subject from a sequence, or the first at or after a time. */
  async function streamMessage(q: URLSearchParams): Promise<Response> {
    const account = q.get("account") || "$G";
    const stream = q.get("stream");
    const seq = Number(q.get("seq") ?? 1) || 1;
    const subject = q.get("subject") ?? "";
    const time = q.get("time") ?? "";
    if (!validName(stream)) return error(400, "which stream?");
    try {
      let m: { subject: string; seq: number; hdrs?: string; data?: string; time: string };
      if (time !== "") {
        const atMs = Date.parse(time);
        if (Number.isNaN(atMs)) return error(400, `${JSON.stringify(time)} is not a time`);
        const found = await messageAtTime(server, account, stream, atMs, subject);
        if (found === null) return error(404, "no message at or after that time");
        m = found;
      } else {
        m = (await jsApiOk(server, account, `$JS.API.STREAM.MSG.GET.${stream}`, subject ? { seq, next_by_subj: subject } : { seq })).message as typeof m;
      }
      return json({ subject: m.subject, seq: m.seq, time: m.time, headers: m.hdrs ? Buffer.from(m.hdrs, "base64").toString("utf8") : "", data: m.data ?? "" });
    } catch (e) {
      if (e instanceof ApiError) return error(e.status, e.message);
      throw e;
    }
  }

  async function api(req: Request, name: string, q: URLSearchParams, remote: string): Promise<Response> {
    if (name === "/login" && req.method === "POST") return login(req, remote);
    const s = sessions.fromRequest(req);
    // The page asks first thing; nobody signed in is an answer there, not an error.
    if (name === "/session" && req.method === "GET" && s === null) return json({ user: null });
    if (s === null) return error(401, "sign in first");
    if (req.method === "POST") {
      if (req.headers.get("x-csrf-token") !== s.csrf) return error(403, "missing or wrong CSRF token");
      switch (name) {
        case "/logout":
          sessions.signOut(s);
          return json({ ok: true }, 200, { "Set-Cookie": sessionCookie(null, secureCookie) });
        case "/connections/close":
          return adminAction(req, s, "close_connection", closeConnection);
        case "/streams/create":
          return adminAction(req, s, "stream_create", streamAction("CREATE"));
        case "/streams/purge":
          return adminAction(req, s, "stream_purge", streamAction("PURGE"));
        case "/streams/delete":
          return adminAction(req, s, "stream_delete", streamAction("DELETE"));
        case "/consumers/delete":
          return adminAction(req, s, "consumer_delete", deleteConsumer);
        case "/consumers/create":
          return adminAction(req, s, "consumer_create", createConsumer);
        case "/consumers/update":
          return adminAction(req, s, "consumer_update", updateConsumer);
        case "/streams/update":
          return adminAction(req, s, "stream_update", updateStream);
        case "/streams/replay":
          return adminAction(req, s, "stream_replay", async (b) => {
            const account = accountOf(b);
            const r = await replay(server, account, String(b.stream ?? ""), Number(b.from), Number(b.to), String(b.subject ?? ""));
            return { status: 200, result: { account, stream: b.stream, from: b.from, to: b.to, subject: b.subject, ...r } };
          });
        case "/dead-letters/redrive":
          return adminAction(req, s, "dead_letter_redrive", async (b) => {
            const account = accountOf(b);
            const r = await redrive(server, account, String(b.stream ?? ""), Number(b.seq));
            return { status: 200, result: { account, stream: b.stream, seq: b.seq, ...r } };
          });
        case "/dead-letters/discard":
          return adminAction(req, s, "dead_letter_discard", async (b) => {
            const account = accountOf(b);
            await discard(server, account, String(b.stream ?? ""), Number(b.seq));
            return { status: 200, result: { account, stream: b.stream, seq: b.seq, discarded: true } };
          });
      }
      return error(404, "not found");
    }
    if (req.method !== "GET") return error(405, "method not allowed");
    switch (name) {
      case "/session":
        return json({ user: s.user, role: s.role, csrf: s.csrf });
      case "/overview":
        return json({ identity: identity(server), config: configSummary(server) });
      case "/series":
        return json(history.since(Number(q.get("since") ?? 0) || 0));
      case "/live":
        return live(req);
      case "/accounts":
        return json(accountsView(server));
      case "/cluster":
        return json(clusterView(server));
      case "/alerts":
        return json({ rules: alerts.rules, active: alerts.active(), history: alerts.history() });
      case "/audit": {
        const path = server.options.auditLog;
        if (path === "") return json({ enabled: false, lines: [], types: [] });
        const tail = await auditTail(path, { type: q.get("type") ?? "", user: q.get("user") ?? "", limit: Number(q.get("limit") ?? 200) || 200 });
        return json({ enabled: true, ...tail });
      }
      case "/permissions/check": {
        const op = q.get("op") === "sub" ? "sub" : "pub";
        const answer = checkPermission(server, q.get("user") ?? "", op, q.get("subject") ?? "", q.get("queue") || null);
        return answer === null ? error(404, "no such user") : json(answer);
      }
      case "/backlog": {
        // A consumer not sampled yet (created in the last second, or past the 64 followed) has no points.
        return json(backlog?.series(q.get("account") || "$G", q.get("stream") ?? "", q.get("consumer") ?? "") ?? { t: [], num_pending: [], num_ack_pending: [] });
      }
      case "/dead-letters":
        return json(await deadLetters(server));
      case "/streams/msg":
        return streamMessage(q);
      case "/subjects":
        return json({ sample_every: SAMPLE_EVERY, max_subjects: MAX_SUBJECTS, top: topSubjects.top(Number(q.get("limit") ?? 50) || 50) });
    }
    return error(404, "not found");
  }

  function live(req: Request): Response {
    let self: ReadableStreamDefaultController<Uint8Array> | null = null;
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        self = c;
        liveStreams.add(c);
      },
      cancel() {
        if (self !== null) liveStreams.delete(self);
      },
    });
    req.signal.addEventListener("abort", () => {
      if (self !== null) liveStreams.delete(self);
    });
    return new Response(stream, { headers: { ...SECURITY_HEADERS, "Content-Type": "text/event-stream" } });
  }

  return {
    owns: (pathname) => pathname === CONSOLE_PATH || pathname.startsWith(`${CONSOLE_PATH}/`),
    async fetch(req, remote = "") {
      const url = new URL(req.url);
      const rest = url.pathname.slice(CONSOLE_PATH.length);
      try {
        if (rest.startsWith("/api/")) return await api(req, rest.slice(4), url.searchParams, remote);
        if (req.method !== "GET" && req.method !== "HEAD") return error(405, "method not allowed");
        return await page(rest);
      } catch (e) {
        server.log.error(`Console: error serving ${url.pathname}: ${(e as Error).message}`);
        return error(500, "internal error");
      }
    },
    stop() {
      history.stop();
      server.topSubjects = null;
      alerts.close();
      serverAlerts.delete(server);
      clearInterval(everySecond);
      for (const c of liveStreams) {
        try {
          c.close();
        } catch {
          // already closed
        }
      }
      liveStreams.clear();
    },
  };
}
