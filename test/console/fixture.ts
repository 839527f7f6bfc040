// The console tests' server: natter with --console (users in a config file), a monitoring port, and a
// config full of secrets (account passwords, a route and a leaf URL with passwords, a credentials file with
// an nkey seed) that no console response may ever contain. Plus helpers to sign in and POST as the page does.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { createUser } from "@nats-io/nkeys";
import { startMonitored, type Monitored } from "../monitor/spawn.ts";

export const ADMIN = { user: "ops", password: "console-admin-SECRET-1" };
export const VIEWER = { user: "viewer", password: "console-viewer-SECRET-2" };
/** The clients' user in "users" mode (they then live in the global account, which /subsz lists). */
export const APP = { user: "app", pass: "app-SECRET-pw" };

export interface ConsoleServer extends Monitored {
  /** Every secret in the config: none may appear in a console response. */
  readonly secrets: string[];
  readonly auditLog: string;
  readonly dir: string;
  audit(): Record<string, unknown>[];
}

/**
 * `auth`: "accounts" puts clients in account APP (user alice, with no_auth_user); "users" has them sign in
 * as APP in the global account (with a second user, billing, whose permissions are limited), JetStream and
 * an MQTT port on.
 */
export async function startConsoleServer(auth: "accounts" | "users" = "accounts"): Promise<ConsoleServer> {
  const dir = mkdtempSync(path.join(os.tmpdir(), "natter-console-"));
  const seed = new TextDecoder().decode(createUser().getSeed());
  const creds = path.join(dir, "leaf.creds");
  writeFileSync(creds, `-----BEGIN NATS USER JWT-----\neyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.e30.AAAA\n------END NATS USER JWT------\n\n-----BEGIN USER NKEY SEED-----\n${seed}\n------END USER NKEY SEED------\n`);
  const viewerHash = await Bun.password.hash(VIEWER.password, { algorithm: "bcrypt", cost: 4 });
  const auditLog = path.join(dir, "audit.log");
  const secrets = [ADMIN.password, VIEWER.password, viewerHash, seed, APP.pass, "billing-SECRET-pw", "alice-SECRET-pw", "route-SECRET-pw", "leaf-SECRET-pw", "SECRET"];
  const clientAuth = auth === "users"
    ? `authorization { users: [
  { user: ${APP.user}, password: ${JSON.stringify(APP.pass)} }
  { user: billing, password: "billing-SECRET-pw", permissions: { publish: { allow: ["billing.>", "$JS.API.>"], deny: ["billing.secret"] }, subscribe: { allow: ["orders.*", "_INBOX.>"] } } }
] }\njetstream { store_dir: ${JSON.stringify(path.join(dir, "js"))} }\nmqtt { port: -1, host: "127.0.0.1" }`
    : `accounts {\n  APP: { users: [ { user: alice, password: "alice-SECRET-pw" } ] }\n}\nno_auth_user: alice`;
  writeFileSync(path.join(dir, "natter.conf"), `
audit_log: ${JSON.stringify(auditLog)}
${clientAuth}
cluster { port: -1, routes: ["nats://ruser:route-SECRET-pw@127.0.0.1:1"] }
leafnodes { listen: "127.0.0.1:-1", remotes: [ { url: "nats-leaf://leafuser:leaf-SECRET-pw@127.0.0.1:1", credentials: ${JSON.stringify(creds)} } ] }
console {
  enabled: true
  users: [
    { user: ${ADMIN.user}, password: ${JSON.stringify(ADMIN.password)}, role: admin }
    { user: ${VIEWER.user}, password: ${JSON.stringify(viewerHash)}, role: readonly }
  ]
  # The leaf remote above never connects: leaf_down fires (the banner on every page shows it).
  alerts { leaf_down: true, consumer_lag: { above: 1000000, for: "10s", streams: { ORDERS: 2000000, SCRATCH: false } } }
}
`);
  const server = await startMonitored("natter", ["-c", path.join(dir, "natter.conf")]);
  return {
    ...server,
    kind: server.kind,
    port: server.port,
    httpPort: server.httpPort,
    hostport: server.hostport,
    base: server.base,
    log: () => server.log(),
    secrets,
    auditLog,
    dir,
    audit: () => readFileSync(auditLog, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>),
    async stop() {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface Signed {
  cookie: string;
  csrf: string;
  role: string;
}

export async function signIn(server: Monitored, who: { user: string; password: string }): Promise<Signed> {
  const res = await fetch(`${server.base}/console/api/login`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(who),
  });
  if (res.status !== 200) throw new Error(`sign-in as ${who.user}: HTTP ${res.status} ${await res.text()}`);
  const body = (await res.json()) as { csrf: string; role: string };
  const cookie = (res.headers.get("set-cookie") ?? "").split(";")[0]!;
  return { cookie, csrf: body.csrf, role: body.role };
}

/** A POST as the page sends it: JSON, the session cookie, the CSRF token (unless told otherwise). */
export function postAs(server: Monitored, s: Signed | null, pathName: string, body: unknown, csrf = s?.csrf): Promise<Response> {
  const headers: Record<string, string> = { "Content-Type": "application/json" };
  if (s !== null) headers.Cookie = s.cookie;
  if (csrf !== undefined) headers["X-CSRF-Token"] = csrf;
  return fetch(`${server.base}${pathName}`, { method: "POST", headers, body: JSON.stringify(body) });
}
