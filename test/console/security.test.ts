// The console's security (src/console/): off unless asked for; its own users and roles; sessions in an
// HttpOnly cookie; admin actions only as POSTs with the CSRF token and the admin role, written to the audit
// log with the console user; and never a secret in any answer, whatever the config holds.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { freePorts } from "../harness/free-port.ts";
import { eventually, getJson, startMonitored } from "../monitor/spawn.ts";
import { serverKind } from "../harness/server.ts";
import { ADMIN, VIEWER, postAs, signIn, startConsoleServer, type ConsoleServer } from "./fixture.ts";

const REPO = path.resolve(import.meta.dirname, "../..");

describe("console: off by default", () => {
  it("the monitoring port has no /console unless it is turned on (nats-server has none either)", async () => {
    const s = await startMonitored(serverKind);
    try {
      for (const p of ["/console", "/console/app.js", "/console/api/session"]) {
        const res = await fetch(`${s.base}${p}`);
        expect(res.status).toBe(404);
        expect(await res.text()).toBe("404 page not found\n");
      }
    } finally {
      await s.stop();
    }
  });

  it.skipIf(serverKind !== "natter")("--console without users or a monitoring port, or with a bad console block, refuses to start", async () => {
    const [port, httpPort] = await freePorts(2);
    const run = (args: string[]) => spawnSync(path.join(REPO, "node_modules/.bin/bun"), [path.join(REPO, "src/main.ts"), "-p", String(port), ...args], { encoding: "utf8", timeout: 20_000 });
    const noUsers = run(["-m", String(httpPort), "--console"]);
    expect(noUsers.status).not.toBe(0);
    expect(noUsers.stderr).toContain("console is enabled but has no users");
    const noPort = run(["--console"]);
    expect(noPort.status).not.toBe(0);
    expect(noPort.stderr).toContain("console needs the monitoring port");
    const dir = mkdtempSync(path.join(os.tmpdir(), "natter-console-conf-"));
    try {
      const conf = path.join(dir, "bad.conf");
      writeFileSync(conf, "console { users: [ { user: a, password: b, role: root } ] }\n");
      expect(run(["-m", String(httpPort), "-c", conf]).stderr).toContain("console users: role must be one of readonly, admin");
      writeFileSync(conf, "console { users: [ { user: a, password: b } ], alerts { disk_full: 1 } }\n");
      expect(run(["-m", String(httpPort), "-c", conf]).stderr).toContain('console alerts: unknown rule "disk_full"');
      writeFileSync(conf, "console { users: [ { user: a, password: b } ], alerts { leaf_down: { streams: { ORDERS: 1 } } } }\n");
      expect(run(["-m", String(httpPort), "-c", conf]).stderr).toContain("console alerts: leaf_down has no per-stream thresholds (consumer_lag and stream_full have)");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe.skipIf(serverKind !== "natter")("console: sign-in, roles, CSRF, audit, secrets", () => {
  let server: ConsoleServer;
  let nc: NatsConnection;
  /** Every console answer the tests saw, to scan for secrets at the end. */
  const seen: { what: string; text: string }[] = [];
  async function record(what: string, res: Response): Promise<Response> {
    const text = await res.text();
    seen.push({ what, text: `${[...res.headers].map(([k, v]) => `${k}: ${v}`).join("\n")}\n\n${text}` });
    return new Response(text, { status: res.status, headers: res.headers });
  }

  beforeAll(async () => {
    server = await startConsoleServer();
    nc = await connect({ servers: server.hostport, name: "victim" });
  });
  afterAll(async () => {
    await nc?.close().catch(() => {});
    await server?.stop();
  });

  it("serves the page and its bundled script and styles under /console, and keeps / and /varz where they are", async () => {
    const page = await record("page", await fetch(`${server.base}/console`));
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('<script type="module" src="/console/app.js">');
    expect(html).not.toMatch(/https?:\/\//); // nothing from another origin
    const js = await record("app.js", await fetch(`${server.base}/console/app.js`));
    expect(js.headers.get("content-type")).toContain("javascript");
    const jsText = await js.text();
    expect(jsText.length).toBeGreaterThan(10_000);
    // No script or style loaded from another origin (URLs in comments or strings would show here).
    expect(jsText).not.toMatch(/(import|fetch)\s*\(\s*["']https?:/);
    const css = await record("app.css", await fetch(`${server.base}/console/app.css`));
    expect(await css.text()).toContain(".uplot");
    expect(page.headers.get("content-security-policy")).toContain("default-src 'self'");
    expect((await fetch(`${server.base}/`)).status).toBe(200);
    expect((await getJson(server, "/varz")).server_id).toBeTruthy();
  });

  it("refuses a wrong password, an unknown user and a request without a session", async () => {
    const post = (body: unknown) => fetch(`${server.base}/console/api/login`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    expect((await record("bad login", await post({ user: ADMIN.user, password: "nope" }))).status).toBe(401);
    expect((await record("unknown user", await post({ user: "mallory", password: ADMIN.password }))).status).toBe(401);
    expect((await record("form login", await fetch(`${server.base}/console/api/login`, { method: "POST", body: `user=${ADMIN.user}&password=${ADMIN.password}`, headers: { "Content-Type": "application/x-www-form-urlencoded" } }))).status).toBe(400);
    for (const p of ["/console/api/overview", "/console/api/series", "/console/api/live"]) {
      expect((await record(p, await fetch(`${server.base}${p}`))).status).toBe(401);
    }
    expect(await (await record("no session", await fetch(`${server.base}/console/api/session`))).json()).toEqual({ user: null });
  });

  it("signs in (bcrypt or plain password) with an HttpOnly SameSite=Strict cookie and tells the role", async () => {
    const res = await record("login", await fetch(`${server.base}/console/api/login`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(ADMIN) }));
    expect(res.status).toBe(200);
    expect(res.headers.get("set-cookie")).toMatch(/^natter_console=[\w-]{20,}; Path=\/console; HttpOnly; SameSite=Strict$/);
    expect((await res.json()).role).toBe("admin");
    const viewer = await signIn(server, VIEWER); // VIEWER's password is a bcrypt hash in the config
    expect(viewer.role).toBe("readonly");
    const me = await record("session", await fetch(`${server.base}/console/api/session`, { headers: { Cookie: viewer.cookie } }));
    expect(await me.json()).toMatchObject({ user: VIEWER.user, role: "readonly" });
    const overview = await record("overview", await fetch(`${server.base}/console/api/overview`, { headers: { Cookie: viewer.cookie } }));
    const body = (await overview.json()) as { identity: { server_id: string }; config: [string, string][]; series: { t: number[] } };
    expect(body.identity.server_id).toBe((await getJson(server, "/varz")).server_id);
    expect(body.config.find(([k]) => k === "console users")?.[1]).toBe("ops (admin), viewer (readonly)");
    expect(body.config.find(([k]) => k === "cluster")?.[1]).toContain("127.0.0.1:1"); // the route, without its user:password
    // Accounts: the users by name, never their passwords (the scan at the end checks every answer).
    const accounts = (await (await record("accounts", await fetch(`${server.base}/console/api/accounts`, { headers: { Cookie: viewer.cookie } }))).json()) as { name: string; users: { name: string }[] }[];
    expect(accounts.find((a) => a.name === "APP")?.users).toEqual([{ name: "alice", account: "APP", permissions: null }]);
    const check = await record("check", await fetch(`${server.base}/console/api/permissions/check?user=alice&op=pub&subject=a.b`, { headers: { Cookie: viewer.cookie } }));
    expect(await check.json()).toEqual({ allowed: true, why: "this user has no permissions set: everything is allowed" });
    await eventually("a sample in the ring buffer", async () => {
      const r = await record("series", await fetch(`${server.base}/console/api/series?since=0`, { headers: { Cookie: viewer.cookie } }));
      const s = (await r.json()) as { t: number[]; connections: number[] };
      return s.t.length > 0 && s.connections.at(-1)! >= 1 ? true : undefined;
    }, 5_000);
  });

  it("an admin action needs the CSRF token and the admin role, and is written to the audit log", async () => {
    const admin = await signIn(server, ADMIN);
    const viewer = await signIn(server, VIEWER);
    const conns = await getJson<{ connections: { cid: number; name?: string }[] }>(server, "/connz");
    const cid = conns.connections.find((c) => c.name === "victim")!.cid;

    expect((await record("no csrf", await postAs(server, admin, "/console/api/connections/close", { cid }, "")))).toHaveProperty("status", 403);
    expect((await record("other csrf", await postAs(server, admin, "/console/api/connections/close", { cid }, viewer.csrf)))).toHaveProperty("status", 403);
    expect((await record("no session", await postAs(server, null, "/console/api/connections/close", { cid }, admin.csrf)))).toHaveProperty("status", 401);
    expect((await record("get", await fetch(`${server.base}/console/api/connections/close?cid=${cid}`, { headers: { Cookie: admin.cookie } })))).toHaveProperty("status", 404);
    const refused = await record("readonly", await postAs(server, viewer, "/console/api/connections/close", { cid }));
    expect(refused.status).toBe(403);
    expect(await refused.json()).toEqual({ error: "this needs the admin role" });
    expect(nc.isClosed()).toBe(false);

    const done = await record("close", await postAs(server, admin, "/console/api/connections/close", { cid }));
    expect(done.status).toBe(200);
    const closed = await eventually("the connection among the closed ones", async () => {
      const z = await getJson<{ connections: { cid: number; reason: string }[] | null }>(server, "/connz?state=closed");
      return z.connections?.find((c) => c.cid === cid);
    });
    expect(closed.reason).toBe("Kicked");
    expect((await record("gone", await postAs(server, admin, "/console/api/connections/close", { cid }))).status).toBe(404);

    const lines = await eventually("the console lines in the audit log", async () => {
      const l = server.audit().filter((e) => String(e.type).startsWith("console_"));
      return l.some((e) => e.type === "console_action" && e.allowed === true) ? l : undefined;
    });
    expect(lines).toContainEqual(expect.objectContaining({ type: "console_login", console_user: ADMIN.user, ok: true, remote: "127.0.0.1" }));
    expect(lines).toContainEqual(expect.objectContaining({ type: "console_login", console_user: ADMIN.user, ok: false }));
    expect(lines).toContainEqual(expect.objectContaining({ type: "console_action", console_user: VIEWER.user, action: "close_connection", allowed: false }));
    expect(lines).toContainEqual(expect.objectContaining({ type: "console_action", console_user: ADMIN.user, action: "close_connection", allowed: true, cid, closed: true }));
  });

  it("signing out ends the session", async () => {
    const s = await signIn(server, VIEWER);
    expect((await record("logout", await postAs(server, s, "/console/api/logout", {}))).status).toBe(200);
    expect(await (await fetch(`${server.base}/console/api/session`, { headers: { Cookie: s.cookie } })).json()).toEqual({ user: null });
    expect((await fetch(`${server.base}/console/api/overview`, { headers: { Cookie: s.cookie } })).status).toBe(401);
  });

  it("no console answer, nor the audit log, holds a password, a bcrypt hash, a seed or URL credentials", async () => {
    const live = await signIn(server, ADMIN);
    const ctl = new AbortController();
    const sse = await fetch(`${server.base}/console/api/live`, { headers: { Cookie: live.cookie }, signal: ctl.signal });
    const reader = sse.body!.getReader();
    const first = await reader.read();
    ctl.abort();
    seen.push({ what: "live", text: new TextDecoder().decode(first.value) });
    expect(seen.length).toBeGreaterThan(20);
    const audit = { what: "audit log", text: JSON.stringify(server.audit()) };
    for (const { what, text } of [...seen, audit]) {
      for (const secret of server.secrets) {
        if (text.includes(secret)) throw new Error(`${what} holds the secret ${secret}`);
      }
    }
  });

  // Last: it locks this address out of signing in for a minute.
  it("past 10 failed sign-ins a minute from one address, sign-ins from it are refused, even with the right password", async () => {
    const post = (body: unknown) => fetch(`${server.base}/console/api/login`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    // The earlier tests' two wrong sign-ins count too: eight more 401s, then 429.
    const statuses: number[] = [];
    for (let i = 0; i < 9; i++) statuses.push((await post({ user: ADMIN.user, password: `guess-${i}` })).status);
    expect(statuses).toEqual([401, 401, 401, 401, 401, 401, 401, 401, 429]);
    const refused = await post(ADMIN);
    expect(refused.status).toBe(429);
    expect(await refused.json()).toEqual({ error: "too many failed sign-ins from this address: wait a minute" });
    await eventually("the throttled line in the audit log", async () => (server.audit().some((e) => e.type === "console_login" && e.throttled === true) ? true : undefined));
  });
});
