// Accounts on the wire: each account is its own subject space (official `nats` client), users of an
// account authenticate with passwords or nkeys and land in it, no_auth_user may be an account user,
// default_permissions apply, and /connz shows and filters by account.
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import * as v2 from "nats";
import { createUser } from "@nats-io/nkeys";
import { connectRaw, waitFor } from "../harness/raw.ts";
import { freePort, startServer, type RunningServer } from "../harness/server.ts";
import { connectV2, connectV3 } from "../harness/clients.ts";
import { connectLine, expectErrThenClose } from "../auth/helpers.ts";

const alice = createUser();
const bob = createUser();
let srv: RunningServer;
let httpPort: number;

beforeAll(async () => {
  httpPort = await freePort();
  srv = await startServer({
    args: ["-m", String(httpPort)],
    config: `
      authorization { users: [ { user: global, password: g } ] }
      accounts {
        A: {
          users: [ { user: a, password: pa }, { nkey: ${alice.getPublicKey()} } ]
        }
        B: {
          users: [ { user: b, password: pb }, { nkey: ${bob.getPublicKey()} }, { user: b_open, password: pb, permissions: { publish: ">" } } ]
          default_permissions: { publish: { deny: "forbidden.>" } }
        }
      }
    `,
  });
});

afterAll(async () => {
  await srv?.stop();
});

async function expectRefused(p: Promise<unknown>): Promise<void> {
  await expect(p).rejects.toMatchObject({ code: v2.ErrorCode.AuthorizationViolation });
}

/** Collects what arrives on `subject` until the connection is flushed twice (a round trip after the publishes). */
function collect(nc: v2.NatsConnection, subject: string): string[] {
  const got: string[] = [];
  nc.subscribe(subject, { callback: (_e, m) => got.push(m.string()) });
  return got;
}

describe("isolation", () => {
  test("two accounts with the same subject never see each other's messages (nats.js v2 and v3)", async () => {
    const a = await connectV2(srv, { user: "a", pass: "pa" });
    const b = await connectV3(srv, { user: "b", pass: "pb" });
    const g = await connectV2(srv, { user: "global", pass: "g" });
    const gotA = collect(a, "orders.>");
    const gotB = collect(b, "orders.>");
    const gotG = collect(g, "orders.>");
    await Promise.all([a.flush(), b.flush(), g.flush()]);
    a.publish("orders.new", "from-a");
    b.publish("orders.new", "from-b");
    g.publish("orders.new", "from-g");
    await Promise.all([a.flush(), b.flush(), g.flush()]);
    await waitFor(() => gotA.length >= 1 && gotB.length >= 1 && gotG.length >= 1, 5_000, "each account's own message");
    // One more round trip each: anything from another account would have arrived by now.
    await Promise.all([a.flush(), b.flush(), g.flush()]);
    expect(gotA).toEqual(["from-a"]);
    expect(gotB).toEqual(["from-b"]);
    expect(gotG).toEqual(["from-g"]);
  });

  test("requests only reach responders of the same account", async () => {
    const a = await connectV2(srv, { user: "a", pass: "pa" });
    const b = await connectV2(srv, { user: "b", pass: "pb" });
    a.subscribe("svc.echo", { callback: (_e, m) => m.respond(`a:${m.string()}`) });
    b.subscribe("svc.echo", { callback: (_e, m) => m.respond(`b:${m.string()}`) });
    await Promise.all([a.flush(), b.flush()]);
    expect((await a.request("svc.echo", "x", { timeout: 2_000 })).string()).toBe("a:x");
    expect((await b.request("svc.echo", "y", { timeout: 2_000 })).string()).toBe("b:y");
  });

  test("a user with an nkey lands in its account", async () => {
    const a = await connectV2(srv, { authenticator: v2.nkeyAuthenticator(alice.getSeed()) });
    const a2 = await connectV2(srv, { user: "a", pass: "pa" });
    const b = await connectV2(srv, { authenticator: v2.nkeyAuthenticator(bob.getSeed()) });
    const gotA2 = collect(a2, "k");
    const gotB = collect(b, "k");
    await Promise.all([a2.flush(), b.flush()]);
    a.publish("k", "nkey-a");
    await a.flush();
    await waitFor(() => gotA2.length >= 1, 5_000, "the message in account A");
    await b.flush();
    expect(gotA2).toEqual(["nkey-a"]);
    expect(gotB).toEqual([]);
  });
});

describe("authentication", () => {
  test("INFO: auth_required and a nonce (nkey users in an account)", async () => {
    const c = await connectRaw(srv.port);
    expect(c.info?.auth_required).toBe(true);
    expect(typeof c.info?.nonce).toBe("string");
  });

  test("a wrong password, an unknown user, no credentials, an unknown nkey: Authorization Violation", async () => {
    await expectRefused(connectV2(srv, { user: "a", pass: "pb" }));
    await expectRefused(connectV2(srv, { user: "nobody", pass: "pa" }));
    await expectRefused(connectV2(srv, {}));
    await expectRefused(connectV2(srv, { authenticator: v2.nkeyAuthenticator(createUser().getSeed()) }));
    const c = await connectRaw(srv.port);
    c.send(connectLine({ user: "b", pass: "wrong" }) + "PING\r\n");
    await expectErrThenClose(c, "Authorization Violation");
  });

  test("the account's default_permissions apply to its users without their own; a user's own win", async () => {
    const c = await connectRaw(srv.port);
    c.send(connectLine({ user: "b", pass: "pb" }) + "PUB forbidden.x 1\r\nx\r\nPING\r\n");
    await c.expect("-ERR 'Permissions Violation for Publish to \"forbidden.x\"'\r\n");
    await c.expect("PONG\r\n");
    const open = await connectRaw(srv.port);
    open.send(connectLine({ user: "b_open", pass: "pb" }) + "PUB forbidden.x 1\r\nx\r\nPING\r\n");
    await open.expect("PONG\r\n");
  });
});

describe("/connz", () => {
  async function connz(query: string): Promise<{ total: number; connections: { cid: number; account?: string; authorized_user?: string; name?: string }[] | null }> {
    const res = await fetch(`http://127.0.0.1:${httpPort}/connz?${query}`);
    expect(res.status).toBe(200);
    return (await res.json()) as never;
  }

  test("auth=true shows authorized_user and account (none for $G); acc=NAME filters; an unknown account lists nothing", async () => {
    await connectV2(srv, { user: "a", pass: "pa", name: "conn-a" });
    await connectV2(srv, { user: "b", pass: "pb", name: "conn-b" });
    await connectV2(srv, { user: "global", pass: "g", name: "conn-g" });
    const all = await waitFor(async () => {
      const z = await connz("auth=true");
      const names = (z.connections ?? []).map((c) => c.name);
      return ["conn-a", "conn-b", "conn-g"].every((n) => names.includes(n)) ? z : null;
    });
    const byName = new Map((all.connections ?? []).map((c) => [c.name, c]));
    expect(byName.get("conn-a")).toMatchObject({ account: "A", authorized_user: "a" });
    expect(byName.get("conn-b")).toMatchObject({ account: "B", authorized_user: "b" });
    expect(byName.get("conn-g")?.account).toBeUndefined();
    expect(byName.get("conn-g")?.authorized_user).toBe("global");

    const plain = await connz("");
    expect((plain.connections ?? []).every((c) => c.account === undefined && c.authorized_user === undefined)).toBe(true);

    const onlyA = await connz("acc=A&auth=1");
    expect((onlyA.connections ?? []).map((c) => c.name)).toEqual(["conn-a"]);
    expect(onlyA.total).toBe(1);
    const onlyG = await connz("acc=$G");
    expect((onlyG.connections ?? []).map((c) => c.name)).toEqual(["conn-g"]);

    const none = await connz("acc=NOPE");
    expect(none.total).toBe(0);
    expect(none.connections).toBeNull();
  });

  test("closed connections keep their account", async () => {
    const b = await connectV2(srv, { user: "b", pass: "pb", name: "closed-b" });
    await b.close();
    const z = await waitFor(async () => {
      const r = await connz("state=closed&acc=B&auth=true");
      return (r.connections ?? []).some((c) => c.name === "closed-b") ? r : null;
    });
    expect((z.connections ?? []).every((c) => c.account === "B")).toBe(true);
  });
});

describe("/accountz", () => {
  test("lists the accounts and the system account; acc=NAME gives one account's details; an unknown one is a 400", async () => {
    const list = (await (await fetch(`http://127.0.0.1:${httpPort}/accountz`)).json()) as { accounts: string[]; system_account: string };
    expect([...list.accounts].sort()).toEqual(["$G", "$SYS", "A", "B"]);
    expect(list.system_account).toBe("$SYS");
    await connectV2(srv, { user: "a", pass: "pa" });
    const detail = await waitFor(async () => {
      const r = (await (await fetch(`http://127.0.0.1:${httpPort}/accountz?acc=A`)).json()) as { account_detail: { account_name: string; client_connections: number } };
      return r.account_detail.client_connections >= 1 ? r.account_detail : null;
    });
    expect(detail).toMatchObject({ account_name: "A", expired: false, complete: true, jetstream_enabled: false });
    const bad = await fetch(`http://127.0.0.1:${httpPort}/accountz?acc=NOPE`);
    expect(bad.status).toBe(400);
    expect(await bad.text()).toBe("Account NOPE does not exist");
  });
});

describe("no_auth_user in an account", () => {
  let s: RunningServer;
  beforeAll(async () => {
    s = await startServer({
      config: `
        no_auth_user: anon
        accounts {
          A: { users: [ { user: anon, password: x } ] }
          B: { users: [ { user: b, password: pb } ] }
        }
      `,
    });
  });
  afterAll(async () => {
    await s?.stop();
  });

  test("a client without credentials is that user, in its account; INFO says no auth required", async () => {
    const c = await connectRaw(s.port);
    expect(c.info?.auth_required).toBeFalsy();
    const anon1 = await connectV2(s);
    const anon2 = await connectV2(s);
    const b = await connectV2(s, { user: "b", pass: "pb" });
    const got2 = collect(anon2, "x");
    const gotB = collect(b, "x");
    await Promise.all([anon2.flush(), b.flush()]);
    anon1.publish("x", "hi");
    await anon1.flush();
    await waitFor(() => got2.length >= 1, 5_000, "anon2 to get the message");
    await b.flush();
    expect(got2).toEqual(["hi"]);
    expect(gotB).toEqual([]);
  });

  test("named credentials still have to be right", async () => {
    await expectRefused(connectV2(s, { user: "b", pass: "wrong" }));
  });
});

describe("account users alone make authentication required", () => {
  let s: RunningServer;
  beforeAll(async () => {
    s = await startServer({ config: "accounts { A: { users: [ { user: a, password: pa } ] } }\n" });
  });
  afterAll(async () => {
    await s?.stop();
  });

  test("no credentials are refused; the account user gets in", async () => {
    const c = await connectRaw(s.port);
    expect(c.info?.auth_required).toBe(true);
    await expectRefused(connectV2(s));
    const a = await connectV2(s, { user: "a", pass: "pa" });
    await a.flush();
  });
});

describe("only a system account with users (nats-server's special case)", () => {
  let s: RunningServer;
  beforeAll(async () => {
    s = await startServer({ config: "accounts { SYS: { users: [ { user: admin, password: pw } ] } }\nsystem_account: SYS\n" });
  });
  afterAll(async () => {
    await s?.stop();
  });

  test("clients without credentials still get in (to $G), apart from the system account's users", async () => {
    const anon1 = await connectV2(s);
    const anon2 = await connectV2(s);
    const admin = await connectV2(s, { user: "admin", pass: "pw" });
    const got = collect(anon2, "y");
    const gotAdmin = collect(admin, "y");
    await Promise.all([anon2.flush(), admin.flush()]);
    anon1.publish("y", "1");
    await anon1.flush();
    await waitFor(() => got.length >= 1, 5_000, "anon2 to get the message");
    await admin.flush();
    expect(gotAdmin).toEqual([]);
    await expectRefused(connectV2(s, { user: "admin", pass: "nope" }));
  });
});
