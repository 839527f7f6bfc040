// Account limits (`limits { max_connections, max_subscriptions, max_payload }`), each past its bound, with
// nats-server's -ERR texts: raw sockets pin the wire, the official client shows what applications see.
// Limits of one account never touch another's clients.
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import * as v2 from "nats";
import { connectRaw, waitFor, type RawClient } from "../harness/raw.ts";
import { startServer, type RunningServer } from "../harness/server.ts";
import { connectV2 } from "../harness/clients.ts";
import { connectLine, err, expectErrThenClose, expectOpen } from "../auth/helpers.ts";

let srv: RunningServer;

beforeAll(async () => {
  srv = await startServer({
    config: `
      accounts {
        CONN: { users: [ { user: c, password: p } ], limits: { max_connections: 2 } }
        SUBS: { users: [ { user: s, password: p } ], limits: { max_subs: 3 } }
        PAY: { users: [ { user: pay, password: p } ], limits: { max_payload: 16 } }
        FREE: { users: [ { user: f, password: p } ] }
      }
    `,
  });
});

afterAll(async () => {
  await srv?.stop();
});

/** A raw client, authenticated as `user`, ready (PING answered). */
async function rawAs(user: string): Promise<RawClient> {
  const c = await connectRaw(srv.port);
  c.send(connectLine({ user, pass: "p" }) + "PING\r\n");
  await c.expect("PONG\r\n");
  return c;
}

describe("max_connections", () => {
  test("the connection past the limit gets -ERR 'maximum account active connections exceeded' and is closed", async () => {
    const first = await rawAs("c");
    const second = await rawAs("c");
    const third = await connectRaw(srv.port);
    third.send(connectLine({ user: "c", pass: "p" }) + "PING\r\n");
    await expectErrThenClose(third, "maximum account active connections exceeded");
    // The two inside are untouched, and other accounts are not counted.
    await expectOpen(first);
    await expectOpen(second);
    await expectOpen(await rawAs("f"));
    await expectOpen(await rawAs("f"));
    await expectOpen(await rawAs("f"));
  });

  test("a closed connection frees its place; the official client is refused past the limit", async () => {
    const a = await connectV2(srv, { user: "c", pass: "p" });
    const b = await connectV2(srv, { user: "c", pass: "p" });
    // The raw test above pins the -ERR on the wire. The official client usually reports it too, but the server
    // closes the socket right after the -ERR (nats-server does the same: measured, both answer a later write with
    // a reset), so a client still writing then gets a reset, and the kernel drops the -ERR it had not read yet.
    await expect(connectV2(srv, { user: "c", pass: "p" })).rejects.toThrow(/maximum account active connections exceeded|ECONNRESET/i);
    await b.close();
    // The server notices the close asynchronously: retry within a deadline.
    const c = await waitFor(() => connectV2(srv, { user: "c", pass: "p" }).catch(() => null), 5_000, "a free place");
    await c.flush();
    await a.flush();
  });
});

describe("max_subscriptions", () => {
  test("the subscription past the limit gets -ERR 'maximum subscriptions exceeded'; the connection stays open", async () => {
    const c = await rawAs("s");
    c.send("SUB a 1\r\nSUB b 2\r\nSUB c 3\r\nSUB d 4\r\nPING\r\n");
    await c.expect(err("maximum subscriptions exceeded"));
    await c.expect("PONG\r\n");
    await expectOpen(c);
    // The fourth was not made: a message on d is not delivered, one on a is.
    const p = await rawAs("s");
    p.send("PUB d 1\r\nx\r\nPUB a 1\r\ny\r\nPING\r\n");
    await p.expect("PONG\r\n");
    const [msg] = await c.messages(1);
    expect(msg!.raw).toMatch(/^MSG a 1 1\r\n/);
    // Unsubscribing frees a place.
    c.send("UNSUB 1\r\nSUB e 5\r\nPING\r\n");
    await c.expect("PONG\r\n");
  });

  test("other accounts are not limited", async () => {
    const c = await rawAs("f");
    c.send("SUB a 1\r\nSUB b 2\r\nSUB c 3\r\nSUB d 4\r\nSUB e 5\r\n");
    await expectOpen(c);
  });

  test("the official client gets a protocol error for the one past the limit and stays connected", async () => {
    const nc = await connectV2(srv, { user: "s", pass: "p" });
    const errors: string[] = [];
    (async () => {
      for await (const s of nc.status()) if (s.type === "error") errors.push(String(s.data));
    })().catch(() => {});
    for (let i = 0; i < 4; i++) nc.subscribe(`n.${i}`);
    await nc.flush();
    await waitFor(() => errors.length > 0, 5_000, "the subscription error");
    expect(errors).toEqual(["NATS_PROTOCOL_ERR"]);
    expect(nc.isClosed()).toBe(false);
  });
});

describe("max_payload", () => {
  test("a PUB past the account's max_payload gets -ERR 'Maximum Payload Violation' and is closed", async () => {
    const c = await rawAs("pay");
    c.send("PUB x 16\r\n0123456789abcdef\r\nPING\r\n");
    await c.expect("PONG\r\n");
    c.send("PUB x 17\r\n0123456789abcdefg\r\n");
    await expectErrThenClose(c, "Maximum Payload Violation");
  });

  test("another account keeps the server's max_payload", async () => {
    const c = await rawAs("f");
    const big = "x".repeat(1024);
    c.send(`PUB x ${big.length}\r\n${big}\r\n`);
    await expectOpen(c);
  });

  test("the official client: a publish past the limit is refused", async () => {
    const nc = await connectV2(srv, { user: "pay", pass: "p" });
    const closed = nc.closed();
    // nats-server tells the client its account's max_payload in the INFO that follows the first PONG
    // (connect_info), so the client refuses locally; otherwise the server closes with the violation.
    let local: unknown = null;
    try {
      nc.publish("x", "0123456789abcdefghij");
    } catch (e) {
      local = e;
    }
    if (local !== null) expect(local).toMatchObject({ code: v2.ErrorCode.MaxPayloadExceeded });
    else expect(String(await closed)).toMatch(/Maximum Payload Violation/i);
  });
});

test("an account limit shows nowhere in INFO before authentication (server's max_payload there)", async () => {
  const c = await connectRaw(srv.port);
  expect(c.info?.max_payload).toBe(1024 * 1024);
});
