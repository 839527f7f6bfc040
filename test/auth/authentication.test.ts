// Authentication on the wire: token, user/password (plain and bcrypt), users lists, nkeys, no_auth_user,
// the auth timeout, and WebSocket. Each test runs against natter, and against nats-server 2.9.10 with
// NATTER_TEST_SERVER=nats-server: the tests encode nats-server's behaviour. natter-only checks (cookies,
// the failure counter, what the log may not contain) are marked and skipped for nats-server.
import { beforeAll, describe, expect, test } from "vitest";
import * as v2 from "nats";
import * as natsWs from "nats.ws";
import { createUser } from "@nats-io/nkeys";
import { connectRaw, type RawClient, waitFor } from "../harness/raw.ts";
import { freePort, serverKind, startServer, type RunningServer } from "../harness/server.ts";
import { connectV2, connectV3, connectWs } from "../harness/clients.ts";
import { connectLine, expectErrThenClose, expectOpen } from "./helpers.ts";

const natterOnly = serverKind === "natter" ? test : test.skip;

/** A pub/sub round trip on one connection: proof the client is really in. */
async function roundTrip(nc: v2.NatsConnection, subject = "auth.ping"): Promise<void> {
  const sub = nc.subscribe(subject, { max: 1 });
  nc.publish(subject, "x");
  for await (const m of sub) expect(m.string()).toBe("x");
}

/** Connecting must fail with an authorization violation. */
async function expectRefused(p: Promise<unknown>): Promise<void> {
  await expect(p).rejects.toMatchObject({ code: v2.ErrorCode.AuthorizationViolation });
}

/** Raw connect; CONNECT with `fields`; PING; expect PONG (accepted). */
async function rawAccepted(port: number, fields: Record<string, unknown>): Promise<RawClient> {
  const c = await connectRaw(port);
  c.send(connectLine(fields) + "PING\r\n");
  await c.expect("PONG\r\n");
  return c;
}

/** Raw connect; CONNECT with `fields`; expect the violation and a close. */
async function rawRefused(port: number, fields: Record<string, unknown>): Promise<void> {
  const c = await connectRaw(port);
  c.send(connectLine(fields) + "PING\r\n");
  await expectErrThenClose(c, "Authorization Violation");
}

describe("token", () => {
  let srv: RunningServer;
  beforeAll(async () => {
    srv = await startServer({ args: ["--auth", "s3cret-token"] });
  });

  test("INFO says auth_required, with no nonce (no nkey users)", async () => {
    const c = await connectRaw(srv.port);
    expect(c.info?.auth_required).toBe(true);
    expect(c.info?.nonce).toBeUndefined();
  });

  test("the right token is let in (raw, nats.js v2 and v3)", async () => {
    await rawAccepted(srv.port, { auth_token: "s3cret-token" });
    await roundTrip(await connectV2(srv, { token: "s3cret-token" }));
    await roundTrip(await connectV3(srv, { token: "s3cret-token" }));
  });

  test("a wrong or missing token: -ERR 'Authorization Violation', then close", async () => {
    await rawRefused(srv.port, { auth_token: "wrong" });
    await rawRefused(srv.port, {});
    await rawRefused(srv.port, { user: "s3cret-token", pass: "s3cret-token" });
    await expectRefused(connectV2(srv, { token: "wrong" }));
  });

  test("the first op must be CONNECT: PING, SUB or PUB first is a violation", async () => {
    for (const first of ["PING\r\n", "SUB foo 1\r\n", "PUB foo 0\r\n\r\n", "\r\n"]) {
      const c = await connectRaw(srv.port);
      c.send(first);
      await expectErrThenClose(c, "Authorization Violation");
    }
  });

  test("a later CONNECT is checked again: wrong credentials then close the connection", async () => {
    const c = await rawAccepted(srv.port, { auth_token: "s3cret-token" });
    c.send(connectLine({ auth_token: "nope" }) + "PING\r\n");
    await expectErrThenClose(c, "Authorization Violation");
  });

  test("the token in an authorization block works the same", async () => {
    const s = await startServer({ config: 'authorization { token: "tok2" }\n' });
    await roundTrip(await connectV2(s, { token: "tok2" }));
    await expectRefused(connectV2(s, { token: "tok" }));
  });
});

describe("user and password", () => {
  test("--user/--pass", async () => {
    const srv = await startServer({ args: ["--user", "ann", "--pass", "pw1"] });
    await roundTrip(await connectV2(srv, { user: "ann", pass: "pw1" }));
    await expectRefused(connectV2(srv, { user: "ann", pass: "pw2" }));
    await expectRefused(connectV2(srv, { user: "bob", pass: "pw1" }));
    await rawRefused(srv.port, {});
  });

  test("authorization { user, password } with a bcrypt password", async () => {
    const hash = await Bun.password.hash("hunter2", { algorithm: "bcrypt", cost: 4 });
    expect(hash).toMatch(/^\$2b\$04\$/);
    const srv = await startServer({ config: `authorization { user: ann, password: "${hash}" }\n` });
    await roundTrip(await connectV2(srv, { user: "ann", pass: "hunter2" }));
    await expectRefused(connectV2(srv, { user: "ann", pass: hash }));
    await expectRefused(connectV2(srv, { user: "ann", pass: "hunter3" }));
  });

  describe("a users list: plain and bcrypt ($2a$, $2b$) passwords", () => {
    let srv: RunningServer;
    beforeAll(async () => {
      const b = await Bun.password.hash("b-pass", { algorithm: "bcrypt", cost: 4 });
      const a = (await Bun.password.hash("a-pass", { algorithm: "bcrypt", cost: 4 })).replace(/^\$2b\$/, "$2a$");
      srv = await startServer({
        config: `authorization {\n  users = [\n    { user: plain, password: "p-pass" }\n    { user: bee, password: "${b}" }\n    { user: aay, password: "${a}" }\n  ]\n}\n`,
      });
    });

    test("each user with its password is let in", async () => {
      await roundTrip(await connectV2(srv, { user: "plain", pass: "p-pass" }));
      await roundTrip(await connectV2(srv, { user: "bee", pass: "b-pass" }));
      await roundTrip(await connectV3(srv, { user: "aay", pass: "a-pass" }));
    });

    test("wrong password, unknown user, no credentials, a token: refused", async () => {
      await rawRefused(srv.port, { user: "plain", pass: "b-pass" });
      await rawRefused(srv.port, { user: "bee", pass: "p-pass" });
      await rawRefused(srv.port, { user: "nobody", pass: "p-pass" });
      await rawRefused(srv.port, {});
      await rawRefused(srv.port, { auth_token: "p-pass" });
    });

    test("what follows CONNECT in the same write waits for a bcrypt check, in order", async () => {
      const c = await connectRaw(srv.port);
      c.send(connectLine({ user: "bee", pass: "b-pass", verbose: true }) + "SUB q 1\r\nPUB q 2\r\nhi\r\nPING\r\n");
      const frames = await c.readUntil((f) => f.op === "PONG");
      expect(frames.map((f) => f.raw)).toEqual(["+OK\r\n", "+OK\r\n", "+OK\r\n", "MSG q 1 2\r\nhi\r\n", "PONG\r\n"]);
    });

    test("a refused bcrypt check: nothing after the CONNECT is processed", async () => {
      const watcher = await connectV2(srv, { user: "plain", pass: "p-pass" });
      const sub = watcher.subscribe("leak", { max: 1 });
      await watcher.flush();
      const c = await connectRaw(srv.port);
      c.send(connectLine({ user: "bee", pass: "bad" }) + "PUB leak 2\r\nhi\r\n");
      await expectErrThenClose(c, "Authorization Violation");
      watcher.publish("leak", "ok");
      for await (const m of sub) expect(m.string()).toBe("ok");
    });
  });
});

describe("nkeys", () => {
  const alice = createUser();
  const mallory = createUser();
  let srv: RunningServer;
  beforeAll(async () => {
    srv = await startServer({ config: `authorization {\n  users = [\n    { nkey: ${alice.getPublicKey()} }\n  ]\n}\n` });
  });

  test("INFO carries a fresh 15-character nonce per connection", async () => {
    const a = await connectRaw(srv.port);
    const b = await connectRaw(srv.port);
    expect(a.info?.auth_required).toBe(true);
    expect(a.info?.nonce).toMatch(/^[A-Za-z0-9_-]{15}$/);
    expect(b.info?.nonce).toMatch(/^[A-Za-z0-9_-]{15}$/);
    expect(a.info?.nonce).not.toBe(b.info?.nonce);
  });

  test("the client signs the nonce: nats.js with nkeyAuthenticator is let in", async () => {
    await roundTrip(await connectV2(srv, { authenticator: v2.nkeyAuthenticator(alice.getSeed()) }));
  });

  test("a raw client signing the nonce (base64url or standard base64) is let in", async () => {
    for (const encoding of ["base64url", "base64"] as const) {
      const c = await connectRaw(srv.port);
      const sig = Buffer.from(alice.sign(Buffer.from(String(c.info!.nonce)))).toString(encoding);
      c.send(connectLine({ nkey: alice.getPublicKey(), sig }) + "PING\r\n");
      await c.expect("PONG\r\n");
    }
  });

  test("an unknown key, a signature by another key, of another nonce, or none: refused", async () => {
    await expectRefused(connectV2(srv, { authenticator: v2.nkeyAuthenticator(mallory.getSeed()) }));
    let c = await connectRaw(srv.port);
    const forged = Buffer.from(mallory.sign(Buffer.from(String(c.info!.nonce)))).toString("base64url");
    c.send(connectLine({ nkey: alice.getPublicKey(), sig: forged }) + "PING\r\n");
    await expectErrThenClose(c, "Authorization Violation");
    c = await connectRaw(srv.port);
    const replayed = Buffer.from(alice.sign(Buffer.from("some-other-nonce"))).toString("base64url");
    c.send(connectLine({ nkey: alice.getPublicKey(), sig: replayed }) + "PING\r\n");
    await expectErrThenClose(c, "Authorization Violation");
    await rawRefused(srv.port, { nkey: alice.getPublicKey() });
    await rawRefused(srv.port, {});
  });
});

describe("no_auth_user", () => {
  let srv: RunningServer;
  beforeAll(async () => {
    srv = await startServer({
      config: `authorization {\n  users = [\n    { user: guest, password: gpw, permissions: { publish: "public.>", subscribe: "public.>" } }\n    { user: admin, password: apw }\n  ]\n}\nno_auth_user: guest\n`,
    });
  });

  test("INFO does not ask for auth; a client without credentials is the no_auth_user, with its permissions", async () => {
    const c = await connectRaw(srv.port);
    expect(c.info?.auth_required).toBeUndefined();
    c.send(connectLine({}) + "SUB public.news 1\r\nSUB private.x 2\r\nPUB public.news 2\r\nhi\r\nPING\r\n");
    const frames = await c.readUntil((f) => f.op === "PONG");
    expect(frames.map((f) => f.raw)).toEqual([
      `-ERR 'Permissions Violation for Subscription to "private.x"'\r\n`,
      "MSG public.news 1 2\r\nhi\r\n",
      "PONG\r\n",
    ]);
  });

  test("a client may even start without CONNECT (as nats-server allows for telnet demos)", async () => {
    const c = await connectRaw(srv.port);
    c.send("PING\r\n");
    await c.expect("PONG\r\n");
  });

  test("credentials, when given, must still be right", async () => {
    await roundTrip(await connectV2(srv, { user: "admin", pass: "apw" }), "private.x");
    await expectRefused(connectV2(srv, { user: "admin", pass: "bad" }));
  });
});

describe("allowed_connection_types", () => {
  test("a user limited to WEBSOCKET is refused on the client port, one limited to STANDARD on WebSocket", async () => {
    const nk = createUser();
    const srv = await startServer({
      ws: true,
      config: `authorization {
  users = [
    { user: browser, password: b, allowed_connection_types: ["WebSocket"] } # any case
    { user: backend, password: k, allowed_connection_types: "STANDARD" }
    { user: both, password: x, allowed_connection_types: ["STANDARD", "WEBSOCKET"] }
    { nkey: ${nk.getPublicKey()}, allowed_connection_types: ["LEAFNODE"] }
  ]
}
`,
    });
    await roundTrip(await connectWs(srv, { user: "browser", pass: "b" }));
    await expectRefused(connectV2(srv, { user: "browser", pass: "b" }));
    await roundTrip(await connectV2(srv, { user: "backend", pass: "k" }));
    await expect(connectWs(srv, { user: "backend", pass: "k" })).rejects.toMatchObject({ code: natsWs.ErrorCode.AuthorizationViolation });
    await roundTrip(await connectV2(srv, { user: "both", pass: "x" }));
    await roundTrip(await connectWs(srv, { user: "both", pass: "x" }));
    await expectRefused(connectV2(srv, { authenticator: v2.nkeyAuthenticator(nk.getSeed()) }));
  });

  test("a no_auth_user limited to WEBSOCKET does not let anonymous clients in on the client port", async () => {
    const srv = await startServer({
      ws: true,
      config: `authorization {
  users = [ { user: guest, password: g, allowed_connection_types: ["WEBSOCKET"] } ]
}
no_auth_user: guest
`,
    });
    await roundTrip(await connectWs(srv, {}));
    await expectRefused(connectV2(srv, {}));
  });
});

describe("authorization timeout", () => {
  test("no CONNECT within the timeout: -ERR 'Authentication Timeout', then close", async () => {
    const srv = await startServer({ config: "authorization {\n  token: t\n  timeout: 1\n}\n" });
    const c = await connectRaw(srv.port);
    const started = Date.now();
    await expectErrThenClose(c, "Authentication Timeout", 4_000);
    const waited = Date.now() - started;
    expect(waited).toBeGreaterThanOrEqual(800);
    expect(waited).toBeLessThan(3_000);
  });

  test("a client that sent its CONNECT in time is not timed out", async () => {
    const srv = await startServer({ config: "authorization {\n  token: t\n  timeout: 0.5\n}\n" });
    const c = await rawAccepted(srv.port, { auth_token: "t" });
    await new Promise((r) => setTimeout(r, 1_000));
    await expectOpen(c);
  });
});

describe("WebSocket", () => {
  test("a users list applies to WebSocket clients too (nats.ws)", async () => {
    const srv = await startServer({
      ws: true,
      config: `authorization {\n  users = [ { user: wsu, password: wsp } ]\n}\n`,
    });
    await roundTrip(await connectWs(srv, { user: "wsu", pass: "wsp" }));
    await expect(connectWs(srv, { user: "wsu", pass: "nope" })).rejects.toMatchObject({ code: natsWs.ErrorCode.AuthorizationViolation });
  });

  test("websocket { authorization { token } } guards WebSocket clients only", async () => {
    const srv = await startServer({
      ws: true,
      config: `websocket {\n  host: 127.0.0.1\n  port: {{ws_port}}\n  no_tls: true\n  authorization { token: wstok }\n}\n`,
    });
    const tcp = await connectRaw(srv.port);
    expect(tcp.info?.auth_required).toBeUndefined();
    await roundTrip(await connectV2(srv));
    await roundTrip(await connectWs(srv, { token: "wstok" }));
    await expect(connectWs(srv, {})).rejects.toMatchObject({ code: natsWs.ErrorCode.AuthorizationViolation });
  });

  natterOnly("user_cookie/pass_cookie/token_cookie stand in for CONNECT fields a browser keeps out of JavaScript", async () => {
    const srv = await startServer({
      ws: true,
      config: `authorization {\n  users = [ { user: cu, password: cp } ]\n}\nwebsocket {\n  host: 127.0.0.1\n  port: {{ws_port}}\n  no_tls: true\n  user_cookie: nuser\n  pass_cookie: npass\n}\n`,
    });
    const exchange = (cookie: string) =>
      new Promise<string>((resolve, reject) => {
        // Bun's WebSocket client can send headers (a browser sends the cookies itself).
        const ws = new WebSocket(srv.wsUrl!, { headers: { Cookie: cookie } } as unknown as string[]);
        ws.binaryType = "arraybuffer";
        let got = "";
        const timer = setTimeout(() => reject(new Error(`no answer: ${JSON.stringify(got)}`)), 5_000);
        ws.onmessage = (e) => {
          got += Buffer.from(e.data as ArrayBuffer).toString("latin1");
          if (got.startsWith("INFO") && !got.includes("CONNECT-SENT")) {
            got += "CONNECT-SENT";
            ws.send(connectLine({}) + "PING\r\n");
          }
          if (/PONG|-ERR/.test(got)) {
            clearTimeout(timer);
            ws.close();
            resolve(got.slice(got.indexOf("CONNECT-SENT") + 12));
          }
        };
        ws.onerror = () => reject(new Error("websocket error"));
      });
    expect(await exchange("nuser=cu; npass=cp")).toBe("PONG\r\n");
    expect(await exchange("nuser=cu; npass=wrong")).toBe("-ERR 'Authorization Violation'\r\n");
    expect(await exchange("other=1")).toBe("-ERR 'Authorization Violation'\r\n");
  });
});

describe("natter: failures are logged with the address, counted, and credentials never reach the log", () => {
  natterOnly("log line, /varz-style counter in /metrics, no secret in the trace", async () => {
    const httpPort = await freePort();
    const srv = await startServer({
      args: ["-DV", "-m", String(httpPort)],
      config: `authorization {\n  users = [ { user: carol, password: "pw-ZXQ-secret" } ]\n}\n`,
    });
    await roundTrip(await connectV2(srv, { user: "carol", pass: "pw-ZXQ-secret" }));
    const c = await connectRaw(srv.port);
    const port = c.socket.localPort;
    // A CONNECT split across writes, with a wrong password that is a secret too.
    c.send('CONNECT {"verbose":false,"user":"carol","pa');
    await new Promise((r) => setTimeout(r, 50));
    c.send('ss":"pw-ZXQ-wrong","auth_token":"tok-ZXQ"}\r\n');
    await expectErrThenClose(c, "Authorization Violation");
    const metrics = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
    expect(metrics).toMatch(/^natter_auth_failures_total 1$/m);
    const failure = new RegExp(`\\[ERR\\] 127\\.0\\.0\\.1:${port} - cid:\\d+ - authentication error - User "carol"`);
    const log = await waitFor(() => (failure.test(srv.log()) ? srv.log() : ""), 5_000, "the failure in the log");
    expect(log).toContain("[TRC]");
    expect(log).not.toContain("ZXQ");
  });
});
