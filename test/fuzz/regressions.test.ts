// Regression tests for the bugs the fuzzer found, each with the exact input that showed it.
import { describe, expect, test } from "vitest";
import { connectRaw, connectReady, type RawClient } from "../harness/raw.ts";
import { startServer, type RunningServer } from "../harness/server.ts";

/** A JSON API request over a raw client: the answer's JSON. */
async function rawApi(c: RawClient, subject: string, body: unknown, inbox: string): Promise<Record<string, any>> {
  const payload = body === undefined ? "" : JSON.stringify(body);
  c.send(`PUB ${subject} ${inbox} ${Buffer.byteLength(payload)}\r\n${payload}\r\n`);
  const [m] = await c.messages(1);
  expect(m!.subject).toBe(inbox);
  return JSON.parse(m!.payload!.toString());
}

/** The server still works for a new client, and its log shows no escaped exception. */
async function stillHealthy(srv: RunningServer): Promise<void> {
  const probe = await connectReady(srv.port);
  await probe.flush();
  expect(srv.log()).not.toMatch(/^error: |\n\s+at .*:\d+:\d+|handler for .* failed/m);
}

describe("fuzz regressions", () => {
  // Found by the JetStream fuzz family: the PubAck for a publish whose reply subject is not a valid
  // subject (a wildcard, an empty token) was published from a microtask by the internal client, which
  // threw on it: an uncaught exception that ended the process (exit code 1). One message from any client
  // stopped the server. API answers, direct-get and pull answers to such replies threw too (logged).
  test("a reply subject that is not a valid subject does not kill the server", { timeout: 30_000 }, async () => {
    const srv = await startServer({ jetstream: true });
    const admin = await connectReady(srv.port, { headers: true });
    admin.send("SUB _INBOX.adm.> 1\r\n");
    const created = await rawApi(admin, "$JS.API.STREAM.CREATE.S", { name: "S", subjects: ["s.>"], allow_direct: true }, "_INBOX.adm.1");
    expect(created.error).toBeUndefined();
    const consumer = await rawApi(admin, "$JS.API.CONSUMER.DURABLE.CREATE.S.D", { stream_name: "S", config: { durable_name: "D", ack_policy: "explicit" } }, "_INBOX.adm.2");
    expect(consumer.error).toBeUndefined();

    const c = await connectReady(srv.port, { headers: true });
    // The exact input: a publish into the stream with a wildcard reply subject.
    c.send("PUB s.x fz.* 2\r\nhi\r\n");
    await c.flush();
    // And the other places that answer a client's reply subject.
    for (const reply of ["fz.*", "fz.>", "a..b", "."]) {
      c.send(`PUB s.y ${reply} 1\r\nx\r\n`);
      c.send(`PUB $JS.API.STREAM.INFO.S ${reply} 0\r\n\r\n`);
      c.send(`PUB $JS.API.DIRECT.GET.S ${reply} 9\r\n{"seq":1}\r\n`);
      c.send(`PUB $JS.API.CONSUMER.MSG.NEXT.S.D ${reply} 16\r\n{"no_wait":true}\r\n`);
      c.send(`PUB $JS.ACK.S.D.1.1.1.1.0 ${reply} 4\r\n+ACK\r\n`);
    }
    await c.flush();
    await stillHealthy(srv);
    // The stream still takes messages and acknowledges them.
    admin.send("PUB s.z _INBOX.adm.3 2\r\nok\r\n");
    const [ack] = await admin.messages(1);
    expect(JSON.parse(ack!.payload!.toString())).toMatchObject({ stream: "S" });
  });

  // Found by the JetStream fuzz family: a pull request with a negative `expires` was kept forever (a
  // negative expiry was read as "none"), so `{"no_wait":true,"expires":-1}` on a consumer with nothing to
  // deliver was never answered. nats-server reads it as a deadline in the past: 408 Request Timeout.
  test("a pull request with a negative expires is answered (408), not kept forever", { timeout: 30_000 }, async () => {
    const srv = await startServer({ jetstream: true });
    const c = await connectReady(srv.port, { headers: true });
    c.send("SUB _INBOX.r.> 1\r\n");
    expect((await rawApi(c, "$JS.API.STREAM.CREATE.E", { name: "E", subjects: ["e.>"] }, "_INBOX.r.1")).error).toBeUndefined();
    expect((await rawApi(c, "$JS.API.CONSUMER.DURABLE.CREATE.E.P", { stream_name: "E", config: { durable_name: "P", ack_policy: "explicit" } }, "_INBOX.r.2")).error).toBeUndefined();
    const bodies = ['{"batch":0.5,"no_wait":true,"expires":-1}', '{"expires":-1}', '{"no_wait":true,"expires":-1e300}'];
    bodies.forEach((body, i) => c.send(`PUB $JS.API.CONSUMER.MSG.NEXT.E.P _INBOX.r.n${i} ${body.length}\r\n${body}\r\n`));
    const answers = await c.messages(bodies.length, 10_000);
    for (const a of answers) expect(a.headers!.toString()).toMatch(/^NATS\/1\.0 408 Request Timeout\r\n/);
    expect(answers.map((a) => a.subject).sort()).toEqual(["_INBOX.r.n0", "_INBOX.r.n1", "_INBOX.r.n2"]);
    await stillHealthy(srv);
  });
});

// Keeps the import used when every test above is skipped by a filter.
void connectRaw;
