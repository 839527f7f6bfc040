// Message tracing on one server (nats-server 2.11's msgtrace.go; 2.9.10 has none, so natter only):
// the event a `Nats-Trace-Dest` message produces, with nats-server's field names and types.
import { afterEach, expect, test } from "vitest";
import { startServer, type RunningServer } from "../harness/server.ts";
import { connectReady } from "../harness/raw.ts";
import { headerLines, hpub, RFC3339, traceEvents } from "./helpers.ts";

let servers: RunningServer[] = [];
afterEach(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  servers = [];
});

async function start(opts: Parameters<typeof startServer>[0] = {}): Promise<RunningServer> {
  const s = await startServer(opts);
  servers.push(s);
  return s;
}

test("a traced message: the ingress event, one egress per subscription, the message delivered unchanged", async () => {
  const s = await start();
  const tracer = await connectReady(s.port, { name: "tracer" });
  tracer.send("SUB trace.out 9\r\n");
  const sub = await connectReady(s.port, { name: "sub", headers: true });
  sub.send("SUB foo 1\r\nSUB foo q 2\r\n");
  await sub.flush();
  await tracer.flush();
  const pub = await connectReady(s.port, { name: "pub", headers: true });
  pub.send(hpub("foo", { "Nats-Trace-Dest": "trace.out", traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" }));
  const delivered = await sub.messages(2);
  for (const m of delivered) {
    expect(m.payload!.toString()).toBe("hi");
    expect(headerLines(m.headers)).toEqual(["Nats-Trace-Dest: trace.out", "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"]);
  }
  const [event] = await traceEvents(tracer, 1);
  expect(Object.keys(event!)).toEqual(["server", "request", "events"]);
  expect(Object.keys(event!.server)).toEqual(["name", "host", "id", "ver", "jetstream", "flags", "seq", "time"]);
  expect(event!.server.ver).toBe("2.11.0");
  expect(event!.server.time).toMatch(RFC3339);
  expect(event!.request).toEqual({
    header: { "Nats-Trace-Dest": ["trace.out"], traceparent: ["00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"] },
    msgsize: Buffer.byteLength("NATS/1.0\r\nNats-Trace-Dest: trace.out\r\ntraceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n\r\nhi"),
  });
  const [ingress, ...egress] = event!.events;
  expect(ingress).toEqual({ type: "in", ts: expect.stringMatching(RFC3339), kind: 0, cid: expect.any(Number), name: "pub", acc: "$G", subj: "foo" });
  expect(egress.map(({ ts: _ts, cid: _cid, ...rest }) => rest).sort((a, b) => String(a.queue ?? "").localeCompare(String(b.queue ?? "")))).toEqual([
    { type: "eg", kind: 0, name: "sub", sub: "foo" },
    { type: "eg", kind: 0, name: "sub", sub: "foo", queue: "q" },
  ]);
  expect(egress[0]!.cid).not.toBe(ingress!.cid);
});

test("Nats-Trace-Only: every egress is recorded, nothing is delivered", async () => {
  const s = await start();
  const tracer = await connectReady(s.port);
  tracer.send("SUB trace.out 9\r\n");
  const sub = await connectReady(s.port, { name: "sub", headers: true });
  sub.send("SUB foo 1\r\n");
  await sub.flush();
  await tracer.flush();
  const pub = await connectReady(s.port, { headers: true });
  pub.send(hpub("foo", { "Nats-Trace-Dest": "trace.out", "Nats-Trace-Only": "true" }));
  const [event] = await traceEvents(tracer, 1);
  expect(event!.events.map((e) => e.type)).toEqual(["in", "eg"]);
  expect(event!.events[1]).toMatchObject({ kind: 0, name: "sub", sub: "foo" });
  // The publisher's next message (untraced) is the first thing the subscriber gets.
  pub.send("PUB foo 5\r\nafter\r\n");
  const [next] = await sub.messages(1);
  expect(next!.payload!.toString()).toBe("after");
});

test("no echo: the publisher's own subscription gets an egress with nats-server's error", async () => {
  const s = await start();
  const tracer = await connectReady(s.port);
  tracer.send("SUB trace.out 9\r\n");
  await tracer.flush();
  const pub = await connectReady(s.port, { name: "self", headers: true, echo: false });
  pub.send("SUB foo 1\r\n");
  await pub.flush();
  pub.send(hpub("foo", { "Nats-Trace-Dest": "trace.out" }));
  const [event] = await traceEvents(tracer, 1);
  expect(event!.events[1]).toMatchObject({ type: "eg", kind: 0, name: "self", sub: "foo", error: "Not delivered because of no echo" });
});

test("a refused publish: the ingress event carries the permission violation", async () => {
  const s = await start({
    config: `authorization { users: [ { user: a, password: a, permissions: { publish: { deny: "secret" } } }, { user: t, password: t } ] }`,
  });
  const tracer = await connectReady(s.port, { user: "t", pass: "t" });
  tracer.send("SUB trace.out 9\r\n");
  await tracer.flush();
  const pub = await connectReady(s.port, { user: "a", pass: "a", headers: true });
  pub.send(hpub("secret", { "Nats-Trace-Dest": "trace.out" }));
  const [event] = await traceEvents(tracer, 1);
  expect(event!.events).toHaveLength(1);
  expect(event!.events[0]).toMatchObject({ type: "in", subj: "secret", error: 'Permissions Violation for Publish to "secret"' });
});

test("a subject mapping: the sm event names the subject it was mapped to", async () => {
  const s = await start({ config: `mappings { "orders.new": "orders.mapped" }` });
  const tracer = await connectReady(s.port);
  tracer.send("SUB trace.out 9\r\n");
  const sub = await connectReady(s.port, { headers: true });
  sub.send("SUB orders.mapped 1\r\n");
  await sub.flush();
  await tracer.flush();
  const pub = await connectReady(s.port, { headers: true });
  pub.send(hpub("orders.new", { "Nats-Trace-Dest": "trace.out" }));
  const [event] = await traceEvents(tracer, 1);
  expect(event!.events.map(({ ts: _ts, cid: _cid, ...rest }) => rest)).toEqual([
    { type: "in", kind: 0, acc: "$G", subj: "orders.new" },
    { type: "sm", to: "orders.mapped" },
    { type: "eg", kind: 0, sub: "orders.mapped" },
  ]);
});

test("JetStream: the js event once stored; the stored copy has the trace disabled; trace-only stores nothing", async () => {
  const s = await start({ jetstream: true });
  const c = await connectReady(s.port, { headers: true });
  c.send("SUB trace.out 9\r\nSUB _INBOX.r.* 8\r\n");
  c.send(`PUB $JS.API.STREAM.CREATE.S _INBOX.r.1 ${JSON.stringify({ name: "S", subjects: ["js.>"], storage: "memory" }).length}\r\n${JSON.stringify({ name: "S", subjects: ["js.>"], storage: "memory" })}\r\n`);
  const [created] = await c.messages(1);
  expect(created!.payload!.toString()).toContain('"name":"S"');
  c.send(hpub("js.a", { "Nats-Trace-Dest": "trace.out", traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", tracestate: "k=v" }, "stored", "_INBOX.r.2"));
  const got = await c.messages(2);
  const ack = got.find((m) => m.subject === "_INBOX.r.2")!;
  expect(JSON.parse(ack.payload!.toString())).toMatchObject({ stream: "S", seq: 1 });
  const event = JSON.parse(got.find((m) => m.subject === "trace.out")!.payload!.toString());
  expect(event.events.map((e: { type: string }) => e.type)).toEqual(["in", "js"]);
  expect(event.events[1]).toEqual({ type: "js", ts: expect.stringMatching(RFC3339), stream: "S", subject: "js.a" });
  // The stored copy: traceparent/tracestate kept, the trace header disabled (nats-server's "trace disabled").
  const get = JSON.stringify({ seq: 1 });
  c.send(`PUB $JS.API.STREAM.MSG.GET.S _INBOX.r.3 ${get.length}\r\n${get}\r\n`);
  const [stored] = await c.messages(1);
  const message = JSON.parse(stored!.payload!.toString()).message;
  expect(Buffer.from(message.hdrs, "base64").toString()).toBe(
    "NATS/1.0\r\nNats-Trace-Dest: trace disabled\r\ntraceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\ntracestate: k=v\r\n\r\n",
  );
  // Trace-only: the js event, no ack, nothing stored.
  c.send(hpub("js.b", { "Nats-Trace-Dest": "trace.out", "Nats-Trace-Only": "1" }, "x", "_INBOX.r.4"));
  const [only] = await traceEvents(c, 1);
  expect(only!.events[1]).toMatchObject({ type: "js", stream: "S", subject: "js.b" });
  c.send(`PUB $JS.API.STREAM.INFO.S _INBOX.r.5 0\r\n\r\n`);
  const [info] = await c.messages(1);
  expect(info!.subject).toBe("_INBOX.r.5");
  expect(JSON.parse(info!.payload!.toString()).state.messages).toBe(1);
});

test("a slow consumer cut by the traced message itself: its egress says so", async () => {
  const s = await start({ maxPending: 1024, maxPayload: 1024 });
  const tracer = await connectReady(s.port);
  tracer.send("SUB trace.out 9\r\n");
  const slow = await connectReady(s.port, { name: "slow", headers: true });
  slow.send("SUB big 1\r\n");
  await Promise.all([tracer.flush(), slow.flush()]);
  const pub = await connectReady(s.port, { headers: true });
  pub.send(hpub("big", { "Nats-Trace-Dest": "trace.out" }, "x".repeat(984)));
  const [event] = await traceEvents(tracer, 1);
  expect(event!.events[1]).toMatchObject({ type: "eg", kind: 0, name: "slow", sub: "big", error: "Not delivered because fast producer not stalled and consumer is slow" });
  expect(await slow.waitClosed()).toBe(true);
});

test("a trace destination the publisher may not publish to: a permission violation, the message goes nowhere", async () => {
  const s = await start({
    config: `authorization { users: [ { user: a, password: a, permissions: { publish: { allow: "foo" } } }, { user: t, password: t } ] }`,
  });
  const other = await connectReady(s.port, { user: "t", pass: "t", headers: true });
  other.send("SUB foo 1\r\nSUB trace.out 9\r\n");
  await other.flush();
  const pub = await connectReady(s.port, { user: "a", pass: "a", headers: true });
  pub.send(hpub("foo", { "Nats-Trace-Dest": "trace.out" }, "traced"));
  await pub.expect("-ERR 'Permissions Violation for Publish to \"trace.out\"'\r\n");
  pub.send("PUB foo 5\r\nafter\r\n");
  const [first] = await other.messages(1);
  expect(first!.payload!.toString()).toBe("after");
});

test("a subscriber whose permissions deny the subject (through a wildcard): its egress says so, it gets nothing", async () => {
  const s = await start({
    config: `authorization { users: [ { user: r, password: r, permissions: { subscribe: { allow: "foo.*", deny: "foo.secret" } } }, { user: t, password: t } ] }`,
  });
  const tracer = await connectReady(s.port, { user: "t", pass: "t" });
  tracer.send("SUB trace.out 9\r\n");
  const reader = await connectReady(s.port, { user: "r", pass: "r", name: "reader", headers: true });
  reader.send("SUB foo.* 1\r\n");
  await Promise.all([tracer.flush(), reader.flush()]);
  const pub = await connectReady(s.port, { user: "t", pass: "t", headers: true });
  pub.send(hpub("foo.secret", { "Nats-Trace-Dest": "trace.out" }));
  const [event] = await traceEvents(tracer, 1);
  expect(event!.events[1]).toMatchObject({ type: "eg", kind: 0, name: "reader", sub: "foo.*", error: "Not delivered because subscription denies this subject" });
  pub.send("PUB foo.open 5\r\nafter\r\n");
  const [first] = await reader.messages(1);
  expect(first!.subject).toBe("foo.open");
});
