// Message tracing across a 3-node cluster (nats-server 2.11: every server the message crosses sends its
// own event; the origin's egress to a route names the hop, the next server's event carries it in the
// request's Nats-Trace-Hop header), also to a replicated stream's leader on another node (its `js` step).
// natter only: nats-server 2.9.10 has no tracing.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { expect, test } from "vitest";
import { startCluster, waitForMesh } from "../cluster/spawn.ts";
import { connectReady, waitFor } from "../harness/raw.ts";
import { headerLines, hpub, traceEvents, type TraceEvent } from "./helpers.ts";
import { jetstreamManager } from "@nats-io/jetstream";
import { client, threeJetStreamNodes } from "../cluster/js-cluster.ts";

test("a traced message crossing routes: one event per node, linked by hops; trace-only delivers nowhere", async () => {
  const nodes = await startCluster(3);
  await waitForMesh(nodes);
  const [a, b, c] = nodes as [(typeof nodes)[0], (typeof nodes)[0], (typeof nodes)[0]];
  const tracer = await connectReady(a.port, { name: "tracer" });
  tracer.send("SUB trace.out 9\r\n");
  const subB = await connectReady(b.port, { name: "subB", headers: true });
  subB.send("SUB foo 1\r\n");
  const subC = await connectReady(c.port, { name: "subC", headers: true });
  subC.send("SUB foo 1\r\n");
  await Promise.all([tracer.flush(), subB.flush(), subC.flush()]);
  const pub = await connectReady(a.port, { name: "pub", headers: true });
  // The interest of B, C in foo and of A in trace.out has reached every node once an untraced probe arrives at both.
  await waitFor(async () => {
    pub.send("PUB foo 5\r\nprobe\r\n");
    await pub.flush();
    return subB.frames.some((f) => f.op === "MSG") && subC.frames.some((f) => f.op === "MSG");
  }, 10_000, "the interest across the cluster", 200);

  pub.send(hpub("foo", { "Nats-Trace-Dest": "trace.out", traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", tracestate: "k=v" }));
  // Late probes may come first: the traced message is the one with headers.
  const gotB = (await subB.readUntil((f) => f.op === "HMSG", 10_000)).pop();
  const gotC = (await subC.readUntil((f) => f.op === "HMSG", 10_000)).pop();
  // traceparent and tracestate pass every hop unchanged.
  for (const m of [gotB!, gotC!]) {
    expect(headerLines(m.headers)).toEqual(expect.arrayContaining(["traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "tracestate: k=v"]));
  }
  const events = await traceEvents(tracer, 3);
  const byServer = new Map(events.map((e) => [e.server.name, e] as [string, TraceEvent]));
  expect([...byServer.keys()].sort()).toEqual([a.name, b.name, c.name].sort());
  const origin = byServer.get(a.name)!;
  expect(origin.hops).toBe(2);
  expect(origin.server.cluster).toBe("test");
  expect(origin.events[0]).toMatchObject({ type: "in", kind: 0, name: "pub", acc: "$G", subj: "foo" });
  const routeEgress = origin.events.slice(1);
  expect(routeEgress.map((e) => e.kind)).toEqual([1, 1]);
  expect(routeEgress.map((e) => e.hop).sort()).toEqual(["1", "2"]);
  for (const node of [b, c]) {
    const egress = routeEgress.find((e) => e.name === node.name)!;
    expect(egress).toMatchObject({ type: "eg", kind: 1, cid: expect.any(Number) });
    expect(egress.sub).toBeUndefined();
    const remote = byServer.get(node.name)!;
    expect(remote.hops).toBeUndefined();
    expect(remote.request.header!["Nats-Trace-Hop"]).toEqual([egress.hop]);
    expect(remote.request.header!.traceparent).toEqual(["00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"]);
    expect(remote.events.map(({ ts: _ts, cid: _cid, ...rest }) => rest)).toEqual([
      { type: "in", kind: 1, name: a.name, acc: "$G", subj: "foo" },
      { type: "eg", kind: 0, name: node === b ? "subB" : "subC", sub: "foo" },
    ]);
  }

  // Trace-only: the copies still cross the routes (each node reports), no client gets the message.
  pub.send(hpub("foo", { "Nats-Trace-Dest": "trace.out", "Nats-Trace-Only": "on" }, "only"));
  const only = await traceEvents(tracer, 3);
  expect(only.map((e) => e.server.name).sort()).toEqual([a.name, b.name, c.name].sort());
  for (const e of only.filter((x) => x.server.name !== a.name)) expect(e.events[1]).toMatchObject({ type: "eg", kind: 0, sub: "foo" });
  pub.send("PUB foo 5\r\nafter\r\n");
  for (const sub of [subB, subC]) {
    const taken = await sub.readUntil((f) => f.payload?.toString() === "after", 10_000);
    expect(taken.filter((f) => f.op === "HMSG")).toEqual([]);
  }
}, 60_000);

test("W3C traceparent across the cluster: the origin samples, the other nodes trace what it traced, to the account's dest", async () => {
  const dir = mkdtempSync(path.join(tmpdir(), "natter-trace-"));
  const config = path.join(dir, "accounts.conf");
  writeFileSync(config, `accounts {\n  A: { users: [ { user: a, password: a } ], msg_trace: { dest: "traces.a" } }\n}\n`);
  try {
    const nodes = await startCluster(2, { extraArgs: ["-c", config] });
    const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
    const tracer = await connectReady(a.port, { user: "a", pass: "a" });
    tracer.send("SUB traces.a 9\r\n");
    const sub = await connectReady(b.port, { user: "a", pass: "a", name: "far", headers: true });
    sub.send("SUB orders 1\r\n");
    await Promise.all([tracer.flush(), sub.flush()]);
    const pub = await connectReady(a.port, { user: "a", pass: "a", headers: true });
    await waitFor(async () => {
      pub.send("PUB orders 5\r\nprobe\r\n");
      await pub.flush();
      return sub.frames.some((f) => f.op === "MSG");
    }, 10_000, "the interest across the cluster", 200);
    // Not sampled: passes untraced everywhere. Sampled: both nodes report.
    pub.send(hpub("orders", { traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00" }, "unsampled"));
    pub.send(hpub("orders", { traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", tracestate: "v=1" }, "sampled"));
    const taken = await sub.readUntil((f) => f.payload?.toString() === "sampled", 10_000);
    // The copy that crossed the route carries the hop (as nats-server's); traceparent and tracestate are as sent.
    expect(headerLines(taken.at(-1)!.headers)).toEqual(["traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "tracestate: v=1", "Nats-Trace-Hop: 1"]);
    expect(taken.filter((f) => f.op === "HMSG").map((f) => headerLines(f.headers))).toContainEqual(["traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"]);
    const events = await traceEvents(tracer, 2);
    expect(events.map((e) => e.server.name).sort()).toEqual([a.name, b.name].sort());
    for (const e of events) expect(e.request.header!.traceparent).toEqual(["00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"]);
    const far = events.find((e) => e.server.name === b.name)!;
    expect(far.events.map(({ ts: _ts, cid: _cid, ...rest }) => rest)).toEqual([
      { type: "in", kind: 1, name: a.name, acc: "A", subj: "orders" },
      { type: "eg", kind: 0, name: "far", sub: "orders" },
    ]);
    // Nothing more: the unsampled message made no event (the next event is for a new sampled message).
    pub.send(hpub("orders", { traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" }, "again"));
    const more = await traceEvents(tracer, 2);
    for (const e of more) {
      expect(e.request.header!.traceparent).toEqual(["00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"]);
      expect(e.request.header!.tracestate).toBeUndefined();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 60_000);

test("a queue group on another node: the origin's egress is the route, that node's egress names the queue member", async () => {
  const nodes = await startCluster(2);
  const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
  const tracer = await connectReady(a.port);
  tracer.send("SUB trace.out 9\r\n");
  const workers = await Promise.all([1, 2].map((n) => connectReady(b.port, { name: `worker${n}`, headers: true })));
  for (const w of workers) w.send("SUB jobs q 1\r\n");
  await Promise.all([tracer.flush(), ...workers.map((w) => w.flush())]);
  const pub = await connectReady(a.port, { headers: true });
  await waitFor(async () => {
    pub.send("PUB jobs 5\r\nprobe\r\n");
    await pub.flush();
    return workers.some((w) => w.frames.some((f) => f.op === "MSG"));
  }, 10_000, "the queue interest across the cluster", 200);
  pub.send(hpub("jobs", { "Nats-Trace-Dest": "trace.out" }, "job"));
  const events = await traceEvents(tracer, 2);
  const origin = events.find((e) => e.server.name === a.name)!;
  const far = events.find((e) => e.server.name === b.name)!;
  expect(origin.events.slice(1)).toEqual([expect.objectContaining({ type: "eg", kind: 1, name: b.name, hop: "1" })]);
  expect(far.events).toHaveLength(2);
  expect(far.events[1]).toMatchObject({ type: "eg", kind: 0, sub: "jobs", queue: "q", name: expect.stringMatching(/^worker[12]$/) });
  // One egress: one member was picked, and it is the one that gets the message.
  const picked = workers[Number(String(far.events[1]!.name).slice(-1)) - 1]!;
  const taken = await picked.readUntil((f) => f.op === "HMSG", 10_000);
  expect(taken.at(-1)!.payload!.toString()).toBe("job");
}, 60_000);

test("a traced publish to a replicated stream whose leader is on another node: the leader's event has the js step", async () => {
  const nodes = await threeJetStreamNodes();
  const nc = await client(nodes[0]!);
  const jsm = await jetstreamManager(nc, { timeout: 15_000 });
  await jsm.streams.add({ name: "T", subjects: ["t.>"], num_replicas: 3 });
  let leaderName = "";
  await waitFor(async () => {
    const si = await jsm.streams.info("T").catch(() => null);
    leaderName = si?.cluster?.leader ?? "";
    return leaderName !== "" && si!.cluster!.replicas?.every((r) => r.current) === true;
  }, 20_000, "an R3 stream with a leader and current replicas", 200);
  const origin = nodes.find((n) => n.name !== leaderName)!;
  const tracer = await connectReady(origin.port, { name: "tracer" });
  tracer.send("SUB trace.out 9\r\n");
  const acks = await connectReady(origin.port, { name: "acks" });
  acks.send("SUB ack.1 2\r\n");
  await Promise.all([tracer.flush(), acks.flush()]);
  const pub = await connectReady(origin.port, { name: "pub", headers: true });
  // The leader's interest in t.> reaches the origin once an untraced publish is acknowledged.
  await waitFor(async () => {
    pub.send("PUB t.probe ack.1 5\r\nprobe\r\n");
    await pub.flush();
    return acks.frames.some((f) => f.op === "MSG");
  }, 10_000, "the stream leader's interest at the origin", 200);
  pub.send(hpub("t.1", { "Nats-Trace-Dest": "trace.out" }, "traced", "ack.1"));
  const events = await traceEvents(tracer, 2);
  const byServer = new Map(events.map((e) => [e.server.name, e] as [string, TraceEvent]));
  const first = byServer.get(origin.name)!;
  expect(first.events[0]).toMatchObject({ type: "in", kind: 0, name: "pub", subj: "t.1" });
  expect(first.events.slice(1)).toEqual([expect.objectContaining({ type: "eg", kind: 1, name: leaderName, hop: "1" })]);
  const atLeader = byServer.get(leaderName)!;
  expect(atLeader.request.header!["Nats-Trace-Hop"]).toEqual(["1"]);
  expect(atLeader.events.map(({ ts: _ts, cid: _cid, ...rest }) => rest)).toEqual([
    { type: "in", kind: 1, name: origin.name, acc: "$G", subj: "t.1" },
    { type: "js", stream: "T", subject: "t.1" },
  ]);
  // The stored copy starts no new trace where it is delivered: its Nats-Trace-Dest says so.
  const stored = await jsm.streams.getMessage("T", { last_by_subj: "t.1" });
  expect(stored!.header.get("Nats-Trace-Dest")).toBe("trace disabled");
  await nc.close();
}, 90_000);
