// Message tracing through account imports (nats-server 2.11: a stream export adds `se`, a service import
// `si`, and an egress in another account than the ingress names that account). natter only.
import { afterEach, expect, test } from "vitest";
import { startServer, type RunningServer } from "../harness/server.ts";
import { connectReady } from "../harness/raw.ts";
import { hpub, traceEvents } from "./helpers.ts";

let server: RunningServer | null = null;
afterEach(async () => {
  await server?.stop();
  server = null;
});

const CONFIG = `accounts {
  A: { users: [ { user: a, password: a } ], exports: [ { stream: "news.>" }, { service: "help" } ] }
  B: {
    users: [ { user: b, password: b } ]
    imports: [ { stream: { account: A, subject: "news.>" } }, { service: { account: A, subject: "help" }, to: "ask" } ]
  }
}`;

const strip = ({ ts: _ts, cid: _cid, ...rest }: Record<string, unknown>) => rest;

test("a stream export: se names the importing account, its subscriber's egress names it too", async () => {
  server = await startServer({ config: CONFIG });
  const tracer = await connectReady(server.port, { user: "a", pass: "a" });
  tracer.send("SUB trace.out 9\r\n");
  await tracer.flush();
  const sub = await connectReady(server.port, { user: "b", pass: "b", name: "reader", headers: true });
  sub.send("SUB news.x 1\r\n");
  await sub.flush();
  const pub = await connectReady(server.port, { user: "a", pass: "a", name: "writer", headers: true });
  pub.send(hpub("news.x", { "Nats-Trace-Dest": "trace.out" }));
  const [got] = await sub.messages(1);
  expect(got!.payload!.toString()).toBe("hi");
  const [event] = await traceEvents(tracer, 1);
  expect(event!.events.map(strip)).toEqual([
    { type: "in", kind: 0, name: "writer", acc: "A", subj: "news.x" },
    { type: "se", acc: "B", to: "news.x" },
    { type: "eg", kind: 0, name: "reader", acc: "B", sub: "news.x" },
  ]);
});

test("a service import: si names the exporting account and both subjects; trace-only reaches no responder", async () => {
  server = await startServer({ config: CONFIG });
  const responder = await connectReady(server.port, { user: "a", pass: "a", name: "responder", headers: true });
  responder.send("SUB help 1\r\n");
  await responder.flush();
  const requester = await connectReady(server.port, { user: "b", pass: "b", name: "requester", headers: true });
  requester.send("SUB trace.out 9\r\nSUB reply.1 2\r\n");
  await requester.flush();
  requester.send(hpub("ask", { "Nats-Trace-Dest": "trace.out" }, "q", "reply.1"));
  const [request] = await responder.messages(1);
  expect(request!.subject).toBe("help");
  const [event] = await traceEvents(requester, 1);
  expect(event!.events.map(strip)).toEqual([
    { type: "in", kind: 0, name: "requester", acc: "B", subj: "ask" },
    { type: "si", acc: "A", from: "ask", to: "help" },
    { type: "eg", kind: 0, name: "responder", acc: "A", sub: "help" },
  ]);

  requester.send(hpub("ask", { "Nats-Trace-Dest": "trace.out", "Nats-Trace-Only": "true" }, "q2", "reply.1"));
  const [only] = await traceEvents(requester, 1);
  expect(only!.events.map((e) => e.type)).toEqual(["in", "si", "eg"]);
  requester.send("PUB ask reply.1 5\r\nafter\r\n");
  const taken = await responder.readUntil((f) => f.payload?.toString() === "after");
  expect(taken.map((f) => f.payload!.toString())).toEqual(["after"]);
});
