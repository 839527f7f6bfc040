// W3C trace context (nats-server 2.11): a sampled `traceparent` starts a trace where the account has
// `msg_trace { dest, sampling }`; traceparent/tracestate travel unchanged. natter only (2.9.10 has no tracing).
import { afterEach, expect, test } from "vitest";
import { startServer, type RunningServer } from "../harness/server.ts";
import { connectReady } from "../harness/raw.ts";
import { headerLines, hpub, traceEvents } from "./helpers.ts";
import { configErrorsOf, optionsFromText } from "../harness/config-text.ts";

let server: RunningServer | null = null;
afterEach(async () => {
  await server?.stop();
  server = null;
});

const SAMPLED = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const NOT_SAMPLED = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";

test("a sampled traceparent is traced to the account's msg_trace dest; an unsampled one is not; both pass unchanged", async () => {
  server = await startServer({
    config: `accounts {
      A: { users: [ { user: a, password: a } ], msg_trace: { dest: "acc.trace", sampling: "100%" } }
      B: { users: [ { user: b, password: b } ] }
    }`,
  });
  const c = await connectReady(server.port, { user: "a", pass: "a", name: "app", headers: true });
  c.send("SUB acc.trace 9\r\nSUB orders 1\r\n");
  await c.flush();
  c.send(hpub("orders", { traceparent: NOT_SAMPLED, tracestate: "vendor=1" }, "first"));
  c.send(hpub("orders", { Traceparent: SAMPLED, tracestate: "vendor=2" }, "second"));
  const frames = await c.messages(3);
  const delivered = frames.filter((f) => f.subject === "orders");
  expect(delivered.map((f) => [f.payload!.toString(), headerLines(f.headers)])).toEqual([
    ["first", [`traceparent: ${NOT_SAMPLED}`, "tracestate: vendor=1"]],
    ["second", [`Traceparent: ${SAMPLED}`, "tracestate: vendor=2"]],
  ]);
  const event = JSON.parse(frames.find((f) => f.subject === "acc.trace")!.payload!.toString());
  expect(event.request.header).toEqual({ Traceparent: [SAMPLED], tracestate: ["vendor=2"] });
  expect(event.events.map((e: Record<string, unknown>) => [e.type, e.acc ?? e.sub])).toEqual([
    ["in", "A"],
    ["eg", "orders"],
  ]);

  // An account without msg_trace: a sampled traceparent is just a header.
  const other = await connectReady(server.port, { user: "b", pass: "b", headers: true });
  other.send("SUB acc.trace 9\r\nSUB orders 1\r\n");
  await other.flush();
  other.send(hpub("orders", { traceparent: SAMPLED }, "plain"));
  other.send(hpub("orders", { "Nats-Trace-Dest": "acc.trace" }, "explicit"));
  const got = await other.messages(3);
  expect(got.map((f) => f.subject)).toEqual(["orders", "orders", "acc.trace"]);
});

test("msg_trace config: nats-server's forms and error texts", () => {
  const ok = (text: string) => optionsFromText(`accounts { A: { ${text} } }`).accounts[0]!.msgTrace;
  expect(ok(`msg_trace: "t.dest"`)).toEqual({ dest: "t.dest", sampling: 100 });
  expect(ok(`trace_dest: { dest: t, sampling: 25 }`)).toEqual({ dest: "t", sampling: 25 });
  expect(ok(`msg_trace: { sampling: 25 }`)).toBeUndefined();
  const error = (text: string) => configErrorsOf(`accounts { A: { ${text} } }`).join("\n");
  expect(error(`msg_trace: { dest: "a.*" }`)).toContain('Trace destination "a.*" is not valid');
  expect(error(`msg_trace: { dest: t, sampling: 101 }`)).toContain("Ttrace destination sampling value 101 is invalid, needs to be [1..100]");
  expect(error(`msg_trace: { dest: t, sampling: "x%" }`)).toContain('Invalid trace destination sampling value "x%"');
  expect(error(`msg_trace: 1`)).toContain('Expected account message trace "msg_trace" to be a string or a map/struct, got int64');
});

test("sampling: a sampled-out traceparent is delivered untraced, marked `Nats-Trace-Dest: trace disabled` for later servers", async () => {
  server = await startServer({
    config: `accounts { A: { users: [ { user: a, password: a } ], msg_trace: { dest: "acc.trace", sampling: 1 } } }`,
  });
  const c = await connectReady(server.port, { user: "a", pass: "a", headers: true });
  c.send("SUB acc.trace 9\r\nSUB orders 1\r\nSUB end 2\r\n");
  await c.flush();
  const n = 30;
  for (let i = 0; i < n; i++) c.send(hpub("orders", { traceparent: SAMPLED }, `m${i}`));
  c.send("PUB end 3\r\nend\r\n");
  const frames = await c.readUntil((f) => f.subject === "end", 10_000);
  const orders = frames.filter((f) => f.subject === "orders");
  expect(orders).toHaveLength(n);
  const disabled = orders.filter((f) => headerLines(f.headers).includes("Nats-Trace-Dest: trace disabled"));
  // sampling 1: each message is traced with a 2% chance (nats-server's draw), so nearly all are disabled.
  expect(disabled.length).toBeGreaterThan(n / 2);
  for (const f of disabled) expect(headerLines(f.headers)).toEqual([`traceparent: ${SAMPLED}`, "Nats-Trace-Dest: trace disabled"]);
  // Exactly the messages not disabled were traced: their events, then the event of a last explicit trace.
  const traced = orders.length - disabled.length;
  c.send(hpub("final", { "Nats-Trace-Dest": "acc.trace" }));
  const rest = await c.readUntil((f) => f.subject === "acc.trace" && f.payload!.toString().includes('"Nats-Trace-Dest"'), 10_000);
  const events = [...frames, ...rest].filter((f) => f.subject === "acc.trace").map((f) => JSON.parse(f.payload!.toString()));
  expect(events.length - 1).toBe(traced);
  for (const e of events.slice(0, -1)) expect(e.request.header).toEqual({ traceparent: [SAMPLED] });
});
