// Message tracing across a leaf node link (nats-server 2.11: the leaf link is a hop like a route; the
// server at the other end sends its own event). natter only: nats-server 2.9.10 has no tracing.
import { expect, test } from "vitest";
import { HOST, startProc, waitFor } from "../leaf/spawn.ts";
import { logs } from "../leaf/helpers.ts";
import { connectReady } from "../harness/raw.ts";
import { headerLines, hpub, traceEvents } from "./helpers.ts";

test("a traced message over a leaf link: the leaf's event names the hub and the hop, the hub's event the leaf", async () => {
  const hub = await startProc("natter", { name: "HUB", config: `leafnodes { listen: "${HOST}:{{leaf_port}}" }\n` });
  const leaf = await startProc("natter", { name: "LEAF", config: `leafnodes { remotes [ { url: "nats-leaf://${HOST}:${hub.leafPort}" } ] }\n` });
  const tracer = await connectReady(leaf.port, { name: "tracer" });
  tracer.send("SUB trace.out 9\r\n");
  const sub = await connectReady(hub.port, { name: "hubsub", headers: true });
  sub.send("SUB foo 1\r\n");
  await Promise.all([tracer.flush(), sub.flush()]);
  const pub = await connectReady(leaf.port, { name: "pub", headers: true });
  await waitFor("the link carrying foo", async () => {
    pub.send("PUB foo 5\r\nprobe\r\n");
    await pub.flush();
    return sub.frames.some((f) => f.op === "MSG");
  }, 15_000, logs(hub, leaf));

  pub.send(hpub("foo", { "Nats-Trace-Dest": "trace.out", traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" }));
  const got = (await sub.readUntil((f) => f.op === "HMSG", 10_000)).pop()!;
  expect(headerLines(got.headers)).toContain("traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  const events = await traceEvents(tracer, 2);
  const fromLeaf = events.find((e) => e.server.name === "LEAF")!;
  const fromHub = events.find((e) => e.server.name === "HUB")!;
  expect(fromLeaf.hops).toBe(1);
  expect(fromLeaf.events.map(({ ts: _ts, cid: _cid, ...rest }) => rest)).toEqual([
    { type: "in", kind: 0, name: "pub", acc: "$G", subj: "foo" },
    { type: "eg", kind: 4, name: "HUB", hop: "1" },
  ]);
  expect(fromHub.request.header!["Nats-Trace-Hop"]).toEqual(["1"]);
  expect(fromHub.events.map(({ ts: _ts, cid: _cid, ...rest }) => rest)).toEqual([
    { type: "in", kind: 4, name: "LEAF", acc: "$G", subj: "foo" },
    { type: "eg", kind: 0, name: "hubsub", sub: "foo" },
  ]);
}, 60_000);
