// Message tracing through account imports (nats-server 2.11: a stream export adds `se`, a service import
// `si`, and an egress in another account than the ingress names that account). The trace crosses the
// account boundary only where the config allows it (`allow_trace` on the stream import or the service
// export); otherwise it stops there. nats-server 2.9 has no tracing: against nats-server these pass with
// a 2.11+ binary (NATTER_TEST_SERVER=nats-server NATS_SERVER_BIN=.../nats-server-2.12.0).
import { afterEach, expect, test } from "vitest";
import { startServer, type RunningServer } from "../harness/server.ts";
import { connectReady } from "../harness/raw.ts";
import { headerLines, hpub, traceEvents } from "./helpers.ts";

let server: RunningServer | null = null;
afterEach(async () => {
  await server?.stop();
  server = null;
});

const config = (allowTrace: boolean) => `accounts {
  A: { users: [ { user: a, password: a } ], exports: [ { stream: "news.>" }, { service: "help"${allowTrace ? ", allow_trace: true" : ""} } ] }
  B: {
    users: [ { user: b, password: b } ]
    imports: [
      { stream: { account: A, subject: "news.>" }${allowTrace ? ", allow_trace: true" : ""} }
      { service: { account: A, subject: "help" }, to: "ask" }
    ]
  }
}`;
const CONFIG = config(true);

const strip = ({ ts: _ts, cid: _cid, ...rest }: Record<string, unknown>) => rest;

/** A's tracer and writer, B's reader on the imported news.x. */
async function streamImportClients(conf: string) {
  server = await startServer({ config: conf });
  const tracer = await connectReady(server.port, { user: "a", pass: "a" });
  tracer.send("SUB trace.out 9\r\n");
  await tracer.flush();
  const sub = await connectReady(server.port, { user: "b", pass: "b", name: "reader", headers: true });
  sub.send("SUB news.x 1\r\n");
  await sub.flush();
  const pub = await connectReady(server.port, { user: "a", pass: "a", name: "writer", headers: true });
  return { tracer, sub, pub };
}

/** A's responder on help, B's requester (which also reads the trace) on the imported `ask`. */
async function serviceImportClients(conf: string) {
  server = await startServer({ config: conf });
  const responder = await connectReady(server.port, { user: "a", pass: "a", name: "responder", headers: true });
  responder.send("SUB help 1\r\n");
  await responder.flush();
  const requester = await connectReady(server.port, { user: "b", pass: "b", name: "requester", headers: true });
  requester.send("SUB trace.out 9\r\nSUB reply.1 2\r\n");
  await requester.flush();
  return { responder, requester };
}

test("a stream import with allow_trace: se names the importing account, its subscriber's egress names it too", async () => {
  const { tracer, sub, pub } = await streamImportClients(CONFIG);
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

test("a service export with allow_trace: si names the exporting account and both subjects; trace-only reaches no responder", async () => {
  const { responder, requester } = await serviceImportClients(CONFIG);
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

test("without allow_trace a stream import ends the trace at se: delivered untraced, trace-only not delivered", async () => {
  const { tracer, sub, pub } = await streamImportClients(config(false));
  pub.send(hpub("news.x", { "Nats-Trace-Dest": "trace.out" }));
  const [got] = await sub.messages(1);
  expect(got!.payload!.toString()).toBe("hi");
  const [event] = await traceEvents(tracer, 1);
  expect(event!.events.map(strip)).toEqual([
    { type: "in", kind: 0, name: "writer", acc: "A", subj: "news.x" },
    { type: "se", acc: "B", to: "news.x" },
  ]);

  pub.send(hpub("news.x", { "Nats-Trace-Dest": "trace.out", "Nats-Trace-Only": "true" }, "only"));
  const [only] = await traceEvents(tracer, 1);
  expect(only!.events.map((e) => e.type)).toEqual(["in", "se"]);
  pub.send("PUB news.x 5\r\nafter\r\n");
  const taken = await sub.readUntil((f) => f.payload?.toString() === "after");
  expect(taken.map((f) => f.payload!.toString())).toEqual(["after"]);
});

test("without allow_trace on the export a service import ends the trace at si; the request goes on marked trace disabled", async () => {
  const { responder, requester } = await serviceImportClients(config(false));
  requester.send(hpub("ask", { "Nats-Trace-Dest": "trace.out" }, "q", "reply.1"));
  const [request] = await responder.messages(1);
  expect(request!.subject).toBe("help");
  // The copy cannot start a trace where it is routed: nats-server's main branch (and natter) set the
  // header to `trace disabled`; 2.12.0 renames it to `Xats-Trace-Dest`.
  const lines = headerLines(request!.headers);
  expect(lines).not.toContain("Nats-Trace-Dest: trace.out");
  expect(lines.filter((l) => l === "Nats-Trace-Dest: trace disabled" || l === "Xats-Trace-Dest: trace.out")).toHaveLength(1);
  const [event] = await traceEvents(requester, 1);
  expect(event!.events.map(strip)).toEqual([
    { type: "in", kind: 0, name: "requester", acc: "B", subj: "ask" },
    { type: "si", acc: "A", from: "ask", to: "help" },
  ]);

  requester.send(hpub("ask", { "Nats-Trace-Dest": "trace.out", "Nats-Trace-Only": "true" }, "q2", "reply.1"));
  const [only] = await traceEvents(requester, 1);
  expect(only!.events.map((e) => e.type)).toEqual(["in", "si"]);
  requester.send("PUB ask reply.1 5\r\nafter\r\n");
  const taken = await responder.readUntil((f) => f.payload?.toString() === "after");
  expect(taken.map((f) => f.payload!.toString())).toEqual(["after"]);
});
