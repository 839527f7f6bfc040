// Authorization on the wire: publish/subscribe allow and deny lists, queue-group entries, deny beating
// allow, wildcard subscriptions filtered at delivery, allow_responses, default_permissions, reserved
// reply subjects. Exact -ERR texts; the connection stays open; nothing denied is delivered.
// Run against nats-server 2.9.10 too (NATTER_TEST_SERVER=nats-server): the same expectations hold there.
import { beforeAll, describe, expect, test } from "vitest";
import * as v2 from "nats";
import { connectRaw, type RawClient } from "../harness/raw.ts";
import { startServer, type RunningServer } from "../harness/server.ts";
import { connectV2 } from "../harness/clients.ts";
import { connectLine, err, expectOpen, raws } from "./helpers.ts";

const pubErr = (s: string) => err(`Permissions Violation for Publish to "${s}"`);
const subErr = (s: string, q?: string) => err(`Permissions Violation for Subscription to "${s}"${q ? ` using queue "${q}"` : ""}`);
const replyErr = (r: string) => err(`Permissions Violation for Publish with Reply of "${r}"`);

const CONFIG = `
authorization {
  default_permissions: {
    publish: "default.>"
    subscribe: "default.>"
  }
  users = [
    { user: admin, password: pw, permissions: { publish: ">", subscribe: ">" } }
    { user: alice, password: pw, permissions: {
        publish: { allow: ["orders.*", "_INBOX.>"], deny: ["orders.secret"] }
        subscribe: { allow: ["orders.*", "jobs v1", "events", "logs.*.>"], deny: ["orders.hidden", "logs.*.debug"] }
    } }
    { user: bob, password: pw, permissions: { publish: { deny: ">" }, subscribe: "svc.>", allow_responses: true } }
    { user: carl, password: pw, permissions: { subscribe: "svc.>", allow_responses: { max: 2, expires: "500ms" } } }
    { user: dora, password: pw, permissions: { publish: ["a.b", "c.>"] } }
    { user: dflt, password: pw }
  ]
}
`;

let srv: RunningServer;
beforeAll(async () => {
  srv = await startServer({ config: CONFIG });
});

/** A raw client logged in as `user`, ready (PING answered). */
async function as(user: string): Promise<RawClient> {
  const c = await connectRaw(srv.port);
  c.send(connectLine({ user, pass: "pw" }) + "PING\r\n");
  await c.expect("PONG\r\n");
  return c;
}

/** Sends ops, then PING; returns the frames before the PONG. */
async function exchange(c: RawClient, ops: string): Promise<string[]> {
  c.send(ops);
  return raws(await c.flush());
}

describe("publish", () => {
  test("allowed subjects go through; a subject outside allow, or in deny, gets the -ERR and is not delivered", async () => {
    const watcher = await as("admin");
    expect(await exchange(watcher, "SUB > 1\r\n")).toEqual([]);
    const alice = await as("alice");
    expect(await exchange(alice, "PUB orders.new 1\r\na\r\nPUB orders.secret 1\r\nb\r\nPUB payments.x 1\r\nc\r\nPUB orders.new 1\r\nd\r\n")).toEqual([
      pubErr("orders.secret"),
      pubErr("payments.x"),
    ]);
    await expectOpen(alice);
    expect(await exchange(watcher, "")).toEqual(["MSG orders.new 1 1\r\na\r\n", "MSG orders.new 1 1\r\nd\r\n"]);
  });

  test("the decision is remembered per subject, and still right when the subject alternates (cache)", async () => {
    const alice = await as("alice");
    let ops = "";
    const want: string[] = [];
    for (let i = 0; i < 300; i++) {
      const subject = i % 3 === 0 ? "orders.secret" : `orders.n${i % 200}`;
      ops += `PUB ${subject} 0\r\n\r\n`;
      if (i % 3 === 0) want.push(pubErr("orders.secret"));
    }
    expect(await exchange(alice, ops)).toEqual(want);
  });

  test("old style: a list of subjects is the allow list", async () => {
    const dora = await as("dora");
    expect(await exchange(dora, "PUB a.b 0\r\n\r\nPUB c.d.e 0\r\n\r\nPUB a.c 0\r\n\r\nPUB c 0\r\n\r\n")).toEqual([pubErr("a.c"), pubErr("c")]);
  });

  test("default_permissions apply to a user without permissions of its own", async () => {
    const d = await as("dflt");
    expect(await exchange(d, "PUB default.x 0\r\n\r\nPUB other 0\r\n\r\nSUB default.> 1\r\nSUB other 2\r\n")).toEqual([pubErr("other"), subErr("other")]);
  });

  test("a reserved reply subject (_R_., _GR_., $JS.ACK.) is refused for any client", async () => {
    const admin = await as("admin");
    const ops = "SUB x 1\r\nPUB x _R_.abc 0\r\n\r\nPUB x _GR_.a.b 0\r\n\r\nPUB x $JS.ACK.s.c.1 0\r\n\r\nPUB x _INBOX.ok 0\r\n\r\n";
    expect(await exchange(admin, ops)).toEqual([
      replyErr("_R_.abc"),
      replyErr("_GR_.a.b"),
      replyErr("$JS.ACK.s.c.1"),
      "MSG x 1 _INBOX.ok 0\r\n\r\n",
    ]);
  });

  test("a real client sees the error as a PERMISSIONS_VIOLATION status and stays connected", async () => {
    const nc = await connectV2(srv, { user: "alice", pass: "pw" });
    const statuses = (async () => {
      for await (const s of nc.status()) if (s.type === v2.Events.Error) return s;
      return null;
    })();
    nc.publish("orders.secret", "x");
    const status = await statuses;
    expect(status?.data).toBe(v2.ErrorCode.PermissionsViolation);
    expect((status as unknown as { permissionContext?: unknown }).permissionContext).toEqual({ operation: "publish", subject: "orders.secret", queue: undefined });
    await nc.flush();
    expect(nc.isClosed()).toBe(false);
  });
});

describe("subscribe", () => {
  test("allowed, outside allow, denied; deny beats allow", async () => {
    const alice = await as("alice");
    expect(await exchange(alice, "SUB orders.new 1\r\nSUB payments 2\r\nSUB orders.hidden 3\r\nSUB events 4\r\n")).toEqual([
      subErr("payments"),
      subErr("orders.hidden"),
    ]);
    await expectOpen(alice);
  });

  test("queue-group entries: 'jobs v1' allows only queue group v1 on jobs; a plain entry allows any queue", async () => {
    const alice = await as("alice");
    expect(await exchange(alice, "SUB jobs 1\r\nSUB jobs v1 2\r\nSUB jobs v2 3\r\nSUB events any 4\r\n")).toEqual([
      subErr("jobs"),
      subErr("jobs", "v2"),
    ]);
  });

  test("a wildcard that overlaps a deny is accepted, and the denied subjects are not delivered to it", async () => {
    const alice = await as("alice");
    // "orders.*" is allowed (and covers the denied "orders.hidden"); "orders.>" is admitted by the
    // allow entry "orders.*" too (its ">" token counts as one token, as nats-server matches it).
    expect(await exchange(alice, "SUB orders.* 1\r\nSUB orders.> 2\r\nSUB logs.*.> 3\r\n")).toEqual([]);
    const admin = await as("admin");
    expect(await exchange(admin, "PUB orders.hidden 1\r\nh\r\nPUB orders.open 1\r\no\r\nPUB logs.a.debug 1\r\nd\r\nPUB logs.a.info 1\r\ni\r\n")).toEqual([]);
    expect((await exchange(alice, "")).sort()).toEqual([
      "MSG logs.a.info 3 1\r\ni\r\n",
      "MSG orders.open 1 1\r\no\r\n",
      "MSG orders.open 2 1\r\no\r\n",
    ]);
  });

  test("a real client's denied subscription ends with a PERMISSIONS_VIOLATION error", async () => {
    const nc = await connectV2(srv, { user: "alice", pass: "pw" });
    const sub = nc.subscribe("payments");
    const ended = (async () => {
      try {
        for await (const _ of sub) {
          // nothing is delivered
        }
        return null;
      } catch (e) {
        return e as v2.NatsError;
      }
    })();
    const e = await ended;
    expect(e?.code).toBe(v2.ErrorCode.PermissionsViolation);
    expect(nc.isClosed()).toBe(false);
  });
});

describe("allow_responses", () => {
  test("true: one reply per request received, to its reply subject only", async () => {
    const bob = await as("bob");
    const admin = await as("admin");
    expect(await exchange(bob, "SUB svc.echo 1\r\n")).toEqual([]);
    expect(await exchange(admin, "SUB reply.> 9\r\nPUB svc.echo reply.1 1\r\nq\r\n")).toEqual([]);
    expect(await exchange(bob, "")).toEqual(["MSG svc.echo 1 reply.1 1\r\nq\r\n"]);
    expect(await exchange(bob, "PUB reply.1 1\r\na\r\nPUB reply.1 1\r\nb\r\nPUB reply.2 1\r\nc\r\nPUB svc.echo 0\r\n\r\n")).toEqual([
      pubErr("reply.1"),
      pubErr("reply.2"),
      pubErr("svc.echo"),
    ]);
    expect(await exchange(admin, "")).toEqual(["MSG reply.1 9 1\r\na\r\n"]);
  });

  test("{ max: 2, expires: 500ms }: two replies, and none after the expiry", async () => {
    const carl = await as("carl");
    const admin = await as("admin");
    expect(await exchange(carl, "SUB svc.a 1\r\n")).toEqual([]);
    expect(await exchange(admin, "SUB r.> 9\r\nPUB svc.a r.1 0\r\n\r\nPUB svc.a r.2 0\r\n\r\n")).toEqual([]);
    expect((await exchange(carl, "")).length).toBe(2);
    expect(await exchange(carl, "PUB r.1 1\r\na\r\nPUB r.1 1\r\nb\r\nPUB r.1 1\r\nc\r\n")).toEqual([pubErr("r.1")]);
    await new Promise((r) => setTimeout(r, 700));
    expect(await exchange(carl, "PUB r.2 1\r\nd\r\n")).toEqual([pubErr("r.2")]);
    expect(await exchange(admin, "")).toEqual(["MSG r.1 9 1\r\na\r\n", "MSG r.1 9 1\r\nb\r\n"]);
  });

  test("request/reply with real clients: the responder answers once", async () => {
    const responder = await connectV2(srv, { user: "bob", pass: "pw" });
    const sub = responder.subscribe("svc.time");
    void (async () => {
      for await (const m of sub) m.respond(v2.StringCodec().encode("now"));
    })();
    await responder.flush();
    const requester = await connectV2(srv, { user: "admin", pass: "pw" });
    const answer = await requester.request("svc.time", undefined, { timeout: 2_000 });
    expect(answer.string()).toBe("now");
  });
});
