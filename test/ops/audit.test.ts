// The audit log (audit_log / --audit_log, src/audit.ts): JSON lines for connects, disconnects, auth
// failures, permission violations and admin operations (config reload, lame duck, shutdown), written
// off the event loop and flushed at shutdown; never a password or a token.
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, test } from "vitest";
import { connect } from "nats";
import { AuditLog } from "../../src/audit.ts";
import { testLogger } from "../harness/failure-log.ts";
import { freePort, spawnNatter, tempDir, waitFor, writeConfig } from "./proc.ts";

type Json = Record<string, any>;
const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$/;
const dir = tempDir("natter-audit-");

function lines(file: string): Json[] {
  let text = "";
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return [];
  }
  return text.split("\n").filter(Boolean).map((l) => JSON.parse(l) as Json);
}

describe("audit log", () => {
  test("one JSON line per connect, disconnect, auth failure, permission violation, reload, lame duck and shutdown", async () => {
    const port = await freePort();
    const audit = path.join(dir, "audit-config.log");
    const conf = writeConfig(
      dir,
      "audit.conf",
      `host: 127.0.0.1
port: ${port}
audit_log: ${JSON.stringify(audit)}
accounts {
  SYS { users [{user: sys, password: "sys-pass-1"}] }
  APP { users [{user: app, password: "app-pass-2", permissions: {publish: {deny: "secret.>"}}}] }
}
system_account: SYS
`,
    );
    const p = spawnNatter(["-c", conf]);
    await p.waitForOutput(/Server is ready/);

    const app = await connect({ port, user: "app", pass: "app-pass-2", name: "auditor" });
    app.publish("secret.plans", "x");
    await app.flush().catch(() => undefined);
    await app.close();
    await expect(connect({ port, user: "app", pass: "wrong-pass-3", reconnect: false })).rejects.toThrow(/Authorization Violation/);
    // Written on a short timer, not at exit only.
    await waitFor(() => lines(audit).some((l) => l.type === "auth_error"), 5_000, "auth_error line");

    p.signal("SIGHUP");
    await p.waitForOutput(/Reloaded server configuration/);
    p.signal("SIGUSR2"); // no clients left: lame duck mode ends at once, then the server shuts down
    await p.waitForExit(10_000);

    const got = lines(audit);
    for (const l of got) {
      expect(l.timestamp).toMatch(RFC3339);
      expect(typeof l.type).toBe("string");
    }
    const types = got.map((l) => l.type);
    expect(types).toEqual(["connect", "permission_violation", "disconnect", "auth_error", "config_reload", "lame_duck", "shutdown"]);
    expect(got[0]).toMatchObject({ account: "APP", user: "app", name: "auditor", host: "127.0.0.1", client_type: "nats" });
    expect(got[1]).toMatchObject({ account: "APP", user: "app", op: "publish", subject: "secret.plans" });
    expect(got[2]).toMatchObject({ cid: got[0]!.cid, reason: "Client Closed", in_msgs: 1 });
    expect(got[3]).toMatchObject({ account: "$G", user: "app", reason: "Authentication Failure" });
    expect(got[4]).toMatchObject({ ok: true });
    const text = readFileSync(audit, "utf8");
    for (const secret of ["sys-pass-1", "app-pass-2", "wrong-pass-3"]) expect(text).not.toContain(secret);
  });

  test("--audit_log: a token is never written, a token user is [REDACTED]", async () => {
    const port = await freePort();
    const audit = path.join(dir, "audit-flag.log");
    const p = spawnNatter(["-a", "127.0.0.1", "-p", String(port), "--auth", "good-token-4", "--audit_log", audit]);
    await p.waitForOutput(/Server is ready/);
    const ok = await connect({ port, token: "good-token-4" });
    await ok.close();
    await expect(connect({ port, token: "bad-token-5", reconnect: false })).rejects.toThrow(/Authorization Violation/);
    p.signal("SIGTERM");
    await p.waitForExit(10_000);
    const got = lines(audit);
    expect(got.map((l) => l.type)).toEqual(["connect", "disconnect", "auth_error", "shutdown"]);
    expect(got[2]).toMatchObject({ user: "[REDACTED]" });
    const text = readFileSync(audit, "utf8");
    expect(text).not.toContain("good-token-4");
    expect(text).not.toContain("bad-token-5");
  });
});

describe("AuditLog", () => {
  test("bounded: past its buffer it drops records, counts them and says so in the file", async () => {
    const file = path.join(dir, "audit-unit.log");
    const log = AuditLog.open(file, testLogger())!;
    const big = "x".repeat(1024);
    for (let i = 0; i < 6000; i++) log.record("connect", { i, big }); // ~6 MB in one tick: more than the 4 MB buffer
    expect(log.droppedTotal).toBeGreaterThan(0);
    const dropped = log.droppedTotal;
    await log.close();
    const got = lines(file);
    const notice = got.find((l) => l.type === "audit_dropped");
    expect(notice).toMatchObject({ dropped });
    expect(got.filter((l) => l.type === "connect").length + dropped).toBe(6000);
  });
});
