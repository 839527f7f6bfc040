// A natter cluster of real processes on loopback, driven with the official nats.js client: the mesh
// forms from one seed per node; messages, queue groups, request-reply and headers cross nodes exactly
// once and in order; interest follows churn; a node killed with -9 is dropped, its clients fail over,
// and it rejoins when restarted.
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import net from "node:net";
import * as nats from "nats";
import * as natsWs from "nats.ws";
import { freePort } from "../harness/server.ts";
import { encode } from "@msgpack/msgpack";
import { startCluster, startNode, subscriptionCount, waitFor, waitForMesh, type ClusterNode } from "./spawn.ts";
import { PROTOCOL_VERSION } from "../../src/cluster/protocol.ts";

const sc = nats.StringCodec();
const open = new Set<nats.NatsConnection>();
afterAll(async () => {
  await Promise.all([...open].map((nc) => nc.close().catch(() => {})));
});

async function connect(node: ClusterNode | string[], opts: nats.ConnectionOptions = {}): Promise<nats.NatsConnection> {
  const servers = Array.isArray(node) ? node : node.hostport;
  const nc = await nats.connect({ servers, reconnect: false, timeout: 5000, ...opts });
  open.add(nc);
  return nc;
}

/** Subscribes and waits until a probe published from `from` arrives through the cluster (the interest has propagated). */
async function subscribeReady(
  sub: nats.NatsConnection,
  subject: string,
  from: nats.NatsConnection[],
  opts: { queue?: string } = {},
): Promise<{ messages: nats.Msg[]; sub: nats.Subscription; probes: () => number }> {
  const messages: nats.Msg[] = [];
  let probes = 0;
  const s = sub.subscribe(subject, {
    queue: opts.queue,
    callback: (_e, m) => {
      if (m.headers?.get("probe") === "1") probes++;
      else messages.push(m);
    },
  });
  await sub.flush();
  const probeSubject = subject.replace(/\*|>/g, "probe");
  for (const pub of from) {
    const before = probes;
    const h = nats.headers();
    h.set("probe", "1");
    await waitFor(`interest in ${subject} to reach the publisher's node`, async () => {
      pub.publish(probeSubject, sc.encode("probe"), { headers: h });
      await pub.flush();
      await sub.flush();
      await new Promise((r) => setTimeout(r, 20));
      return probes > before;
    });
  }
  // Probes still in flight: let them land before the test counts.
  await new Promise((r) => setTimeout(r, 50));
  return { messages, sub: s, probes: () => probes };
}

describe("a three-node cluster, one seed each", () => {
  let nodes: ClusterNode[];
  beforeAll(async () => {
    nodes = await startCluster(3, { monitor: true });
  }, 30_000);

  test("forms a full mesh, and clients learn every member's URL", async () => {
    const [a, b, c] = nodes as [ClusterNode, ClusterNode, ClusterNode];
    const nc = await connect(a);
    const urls = () => ((nc as unknown as { info: { connect_urls?: string[] } }).info.connect_urls ?? []).slice().sort();
    await waitFor("connect_urls with all three nodes", () => urls().length === 3);
    expect(urls()).toEqual([a.hostport, b.hostport, c.hostport].sort());
    expect(urls()[0]).toBeDefined();
  }, 30_000);

  test("pub/sub across nodes: each subscriber gets each message once, in publish order, headers intact", async () => {
    const [a, b, c] = nodes as [ClusterNode, ClusterNode, ClusterNode];
    const pa = await connect(a);
    const sb = await connect(b);
    const sc2 = await connect(c);
    const onB = await subscribeReady(sb, "orders.>", [pa]);
    const onC1 = await subscribeReady(sc2, "orders.*", [pa]);
    const onC2 = await subscribeReady(sc2, "orders.new", [pa]); // two matching subs on C: one frame on the route, two deliveries
    const N = 2000;
    for (let i = 0; i < N; i++) {
      const h = nats.headers();
      h.set("seq", String(i));
      pa.publish("orders.new", sc.encode(`m${i}`), { headers: h });
    }
    await pa.flush();
    await waitFor("every message at every subscriber", () => onB.messages.length >= N && onC1.messages.length >= N && onC2.messages.length >= N);
    await new Promise((r) => setTimeout(r, 200)); // duplicates would arrive now
    for (const got of [onB.messages, onC1.messages, onC2.messages]) {
      expect(got.length).toBe(N);
      expect(got.map((m) => sc.decode(m.data))).toEqual(Array.from({ length: N }, (_, i) => `m${i}`));
      expect(got.map((m) => m.headers?.get("seq"))).toEqual(Array.from({ length: N }, (_, i) => String(i)));
    }
  }, 30_000);

  test("no loops, no duplicates: subscribers on every node, publishers on every node", async () => {
    const conns = await Promise.all(nodes.map((n) => connect(n)));
    const subs: Awaited<ReturnType<typeof subscribeReady>>[] = [];
    for (const nc of conns) subs.push(await subscribeReady(nc, "mesh.>", conns));
    let sent = 0;
    for (const nc of conns) {
      for (let i = 0; i < 100; i++) nc.publish(`mesh.x.${sent++}`, sc.encode("x"));
      await nc.flush();
    }
    await waitFor("all messages everywhere", () => subs.every((s) => s.messages.length >= sent));
    await new Promise((r) => setTimeout(r, 300));
    for (const s of subs) {
      expect(s.messages.length).toBe(sent);
      expect(new Set(s.messages.map((m) => m.subject)).size).toBe(sent);
    }
  }, 30_000);

  test("queue group: exactly one member cluster-wide per message, local members first", async () => {
    const [a, b, c] = nodes as [ClusterNode, ClusterNode, ClusterNode];
    const pa = await connect(a);
    const nb = await connect(b);
    const nc = await connect(c);
    // Members on B and C only: A's publisher has no local member, so each message goes to one remote one.
    const mb1 = await subscribeReady(nb, "jobs", [pa], { queue: "workers" });
    const mb2 = await subscribeReady(nb, "jobs", [], { queue: "workers" });
    const mc = await subscribeReady(nc, "jobs", [], { queue: "workers" });
    await waitFor("every member reachable from A", async () => {
      const h = nats.headers();
      h.set("probe", "1");
      for (let i = 0; i < 10; i++) pa.publish("jobs", sc.encode("p"), { headers: h });
      await pa.flush();
      await new Promise((r) => setTimeout(r, 30));
      return mb1.probes() > 0 && mb2.probes() > 0 && mc.probes() > 0;
    });
    await new Promise((r) => setTimeout(r, 100));
    for (const m of [mb1, mb2, mc]) m.messages.length = 0;
    const N = 3000;
    for (let i = 0; i < N; i++) pa.publish("jobs", sc.encode(String(i)));
    await pa.flush();
    const total = () => mb1.messages.length + mb2.messages.length + mc.messages.length;
    await waitFor("all jobs delivered", () => total() >= N);
    await new Promise((r) => setTimeout(r, 300));
    expect(total()).toBe(N);
    const all = [...mb1.messages, ...mb2.messages, ...mc.messages].map((m) => sc.decode(m.data));
    expect(new Set(all).size).toBe(N);
    const onB = mb1.messages.length + mb2.messages.length;
    // Weighted by members per node (2 on B, 1 on C): both nodes get a fair share.
    expect(onB).toBeGreaterThan(N * 0.5);
    expect(mc.messages.length).toBeGreaterThan(N * 0.15);

    // A member on A: A's publisher now prefers it for every message.
    const ma = await subscribeReady(pa, "jobs", [], { queue: "workers" });
    for (const m of [mb1, mb2, mc]) m.messages.length = 0;
    for (let i = 0; i < 500; i++) pa.publish("jobs", sc.encode(String(i)));
    await pa.flush();
    await waitFor("jobs at A's member", () => ma.messages.length >= 500);
    await new Promise((r) => setTimeout(r, 200));
    expect(ma.messages.length).toBe(500);
    expect(mb1.messages.length + mb2.messages.length + mc.messages.length).toBe(0);
  }, 30_000);

  test("request-reply across nodes; no-responders only when no node has interest", async () => {
    const [a, , c] = nodes as [ClusterNode, ClusterNode, ClusterNode];
    const req = await connect(a);
    const resp = await connect(c);
    await expect(req.request("rpc.echo", sc.encode("x"), { timeout: 2000 })).rejects.toMatchObject({ code: nats.ErrorCode.NoResponders });
    resp.subscribe("rpc.echo", {
      callback: (_e, m) => {
        const h = nats.headers();
        h.set("from", "C");
        h.set("asked", m.headers?.get("q") ?? "");
        m.respond(sc.encode(`echo:${sc.decode(m.data)}`), { headers: h });
      },
    });
    await resp.flush();
    await waitFor("the responder's interest to reach A", async () => {
      try {
        await req.request("rpc.echo", sc.encode("ready"), { timeout: 500 });
        return true;
      } catch {
        return false;
      }
    });
    for (let i = 0; i < 50; i++) {
      const h = nats.headers();
      h.set("q", String(i));
      const r = await req.request("rpc.echo", sc.encode(String(i)), { timeout: 2000, headers: h });
      expect(sc.decode(r.data)).toBe(`echo:${i}`);
      expect(r.headers?.get("from")).toBe("C");
      expect(r.headers?.get("asked")).toBe(String(i));
    }
    // Old-style requests: a new inbox subscription per request, churning interest on every route.
    for (let i = 0; i < 20; i++) {
      const r = await req.request("rpc.echo", sc.encode(`n${i}`), { timeout: 2000, noMux: true });
      expect(sc.decode(r.data)).toBe(`echo:n${i}`);
    }
  }, 30_000);

  test("interest churn: 10k subscribe/unsubscribe pairs leave the other nodes holding exactly the interest left", async () => {
    const [a, b, c] = nodes as [ClusterNode, ClusterNode, ClusterNode];
    const nb = await connect(b);
    const base = await Promise.all([a, c].map((n) => subscriptionCount(n)));
    // Deterministic pseudo-random churn over 700 subjects and 70 subject/queue pairs.
    let seed = 42;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
    const live: nats.Subscription[] = [];
    for (let i = 0; i < 10_000; i++) {
      const s = rand(10) === 0 ? nb.subscribe(`churn.q.${rand(70)}`, { queue: `g${rand(2)}` }) : nb.subscribe(`churn.${rand(700)}`);
      live.push(s);
      if (rand(3) > 0) live.splice(rand(live.length), 1)[0]!.unsubscribe(); // two in three are undone again, at random
    }
    await nb.flush();
    // The brute-force truth: one remote interest per distinct subject (plain) and per subject + queue group.
    const truth = new Set(live.map((s) => `${s.getSubject()} ${(s as unknown as { queue?: string }).queue ?? ""}`)).size;
    expect(truth).toBeGreaterThan(100);
    for (const [k, n] of [a, c].entries()) {
      await waitFor(`${n.name} to hold B's remaining interest`, async () => (await subscriptionCount(n)) === base[k]! + truth, 10_000);
    }
    for (const s of live) s.unsubscribe();
    await nb.flush();
    for (const [k, n] of [a, c].entries()) {
      await waitFor(`${n.name} to drop B's interest`, async () => (await subscriptionCount(n)) === base[k]!);
    }
  }, 30_000);

  test("bad input on the cluster port gets a clear error and a close; the cluster is unaffected", async () => {
    const [a, b] = nodes as [ClusterNode, ClusterNode];
    // A HELLO of another protocol version, and one from another cluster: refused with the reason.
    const hello = (v: number, cluster: string, accounts: string[] | null = ["$G"]) => {
      const body = encode({ v, cluster, id: "127.0.0.1:1", inc: 1, server_id: "NX", server_name: "x", ...(accounts === null ? {} : { accounts }) });
      const frame = Buffer.alloc(5 + body.length);
      frame.writeUInt32BE(1 + body.length, 0);
      frame[4] = 1;
      frame.set(body, 5);
      return frame.toString("latin1");
    };
    const expectations: [string, RegExp][] = [
      ["CONNECT {}\r\nPING\r\n", /natter cluster port: expected a route handshake, this is not a client port/],
      ["\x00\x00\x00\x05\x07garbage", /expected a natter route HELLO/],
      ["\xff\xfe\xfd", /natter cluster port: expected a route handshake/],
      [hello(PROTOCOL_VERSION + 1, "test"), new RegExp(`protocol version ${PROTOCOL_VERSION + 1}, this node speaks ${PROTOCOL_VERSION}`)],
      [hello(PROTOCOL_VERSION, "other"), /cluster name "other" does not match "test"/],
      // A node of the previous version (no account in its frames), and a HELLO without the accounts list.
      [hello(PROTOCOL_VERSION - 1, "test", null), new RegExp(`protocol version ${PROTOCOL_VERSION - 1}, this node speaks ${PROTOCOL_VERSION}`)],
      [hello(PROTOCOL_VERSION, "test", null), /HELLO lacks its accounts list/],
    ];
    for (const [input, expected] of expectations) {
      const reply = await new Promise<string>((resolve) => {
        let got = "";
        const s = net.connect({ host: "127.0.0.1", port: a.clusterPort }, () => s.write(Buffer.from(input, "latin1")));
        s.on("data", (d) => (got += d.toString("latin1")));
        s.on("close", () => resolve(got));
        s.on("error", () => resolve(got));
        setTimeout(() => s.destroy(), 5000);
      });
      expect(reply).toMatch(expected);
    }
    expect(a.log()).toMatch(/Refusing connection on the cluster port: not a natter route \(received "CONNECT \{\}/);
    const pa = await connect(a);
    const sb = await connect(b);
    const got = await subscribeReady(sb, "still.works", [pa]);
    pa.publish("still.works", sc.encode("yes"));
    await pa.flush();
    await waitFor("delivery after bad input", () => got.messages.length === 1);
  }, 30_000);

  test("kill -9 one node: the others drop its interest and keep routing; its clients fail over; it rejoins", async () => {
    const [a, b, c] = nodes as [ClusterNode, ClusterNode, ClusterNode];
    const pa = await connect(a);
    const nb = await connect(b);
    // A client of C that knows only C: it fails over through connect_urls.
    const nc = await connect(c, { reconnect: true, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    await waitFor("C's client to learn the other URLs", () => (((nc as unknown as { info: { connect_urls?: string[] } }).info.connect_urls) ?? []).length === 3);
    const onC = await subscribeReady(nc, "failover.x", [pa, nb]);
    const onB = await subscribeReady(nb, "failover.x", [pa]);
    const before = await subscriptionCount(a);

    await c.kill9();
    // C's interest leaves A at once (the route closed) and for good (C is declared dead within seconds).
    await waitFor("A to drop C's interest", async () => (await subscriptionCount(a)) < before, 5000);
    const t0 = Date.now();
    await waitFor("A to declare C gone", () => /Cluster member 127\.0\.0\.1:\d+ \(N2\) is gone/.test(a.log()), 10_000);
    expect(Date.now() - t0).toBeLessThan(8000);
    // Routing between A and B goes on.
    onB.messages.length = 0;
    pa.publish("failover.x", sc.encode("after-kill"));
    await pa.flush();
    await waitFor("B still gets A's messages", () => onB.messages.length === 1);

    // C's client reconnected to A or B; its subscription works there.
    await waitFor("C's client to reconnect elsewhere", () => !nc.isClosed() && (nc.getServer() === a.hostport || nc.getServer() === b.hostport), 10_000);
    await waitFor("the failed-over subscription to receive", async () => {
      onC.messages.length = 0;
      pa.publish("failover.x", sc.encode("to-c-client"));
      await pa.flush();
      await new Promise((r) => setTimeout(r, 50));
      return onC.messages.some((m) => sc.decode(m.data) === "to-c-client");
    });

    // C restarts on the same ports and rejoins: routes again, and its clients' messages reach B.
    await c.start();
    await waitForMesh(nodes, 15_000);
    const nc2 = await connect(c);
    onB.messages.length = 0;
    await waitFor("C's new client to reach B", async () => {
      nc2.publish("failover.x", sc.encode("from-restarted-c"));
      await nc2.flush();
      await new Promise((r) => setTimeout(r, 50));
      return onB.messages.some((m) => sc.decode(m.data) === "from-restarted-c");
    });
    await waitFor("A's clients to see C's URL again", () => (((pa as unknown as { info: { connect_urls?: string[] } }).info.connect_urls) ?? []).includes(c.hostport));
  }, 60_000);
});

describe("membership rules", () => {
  test("a node with another cluster name is refused with a clear log line, and never joins", async () => {
    const a = await startNode({ name: "A", clusterName: "blue" });
    const x = await startNode({ name: "X", clusterName: "green", seeds: [a.clusterPort] });
    await waitFor("the refusal in the log", () => /cluster name "green" does not match "blue"/.test(a.log()), 10_000, () => a.log());
    await waitFor("the joiner to be told", () => /Refused by 127\.0\.0\.1:\d+: cluster name "green" does not match "blue"/.test(x.log()), 10_000, () => x.log());
    const nc = await connect(a);
    await new Promise((r) => setTimeout(r, 500));
    expect((nc as unknown as { info: { connect_urls?: string[] } }).info.connect_urls ?? [a.hostport]).toEqual([a.hostport]);
    expect(a.log()).not.toMatch(/Route connection created/);
  }, 30_000);

  test("--no_advertise: the node's clients get no connect_urls", async () => {
    const a = await startNode({ name: "A" });
    const b = await startNode({ name: "B", seeds: [a.clusterPort], noAdvertise: true });
    await waitForMesh([a, b]);
    const nb = await connect(b);
    const na = await connect(a);
    await nb.flush();
    expect((nb as unknown as { info: { connect_urls?: string[] } }).info.connect_urls).toBeUndefined();
    // And A does not advertise B to its clients either (B keeps its URL to itself).
    await new Promise((r) => setTimeout(r, 300));
    expect((na as unknown as { info: { connect_urls?: string[] } }).info.connect_urls ?? []).not.toContain(b.hostport);
  }, 30_000);

  test("WebSocket clients get the members' WebSocket URLs as connect_urls, TCP clients the TCP ones", async () => {
    const [wa, wb] = [await freePort(), await freePort()];
    const a = await startNode({ name: "A", extraArgs: ["--ws_host", "127.0.0.1", "--ws_port", String(wa)] });
    const b = await startNode({ name: "B", seeds: [a.clusterPort], extraArgs: ["--ws_host", "127.0.0.1", "--ws_port", String(wb)] });
    await waitForMesh([a, b]);
    const ws = await natsWs.connect({ servers: `ws://127.0.0.1:${wa}`, reconnect: false });
    try {
      const info = (ws as unknown as { info: { connect_urls?: string[] } }).info;
      expect((info.connect_urls ?? []).slice().sort()).toEqual([`127.0.0.1:${wa}`, `127.0.0.1:${wb}`].sort());
    } finally {
      await ws.close();
    }
    const tcp = await connect(b);
    expect(((tcp as unknown as { info: { connect_urls?: string[] } }).info.connect_urls ?? []).slice().sort()).toEqual([a.hostport, b.hostport].sort());
  }, 30_000);

  test("lame duck mode: the node's clients are sent to the others, and the others stop advertising it", async () => {
    const a = await startNode({ name: "A" });
    const b = await startNode({ name: "B", seeds: [a.clusterPort] });
    await waitForMesh([a, b]);
    const urls = (nc: nats.NatsConnection) => ((nc as unknown as { info: { connect_urls?: string[] } }).info.connect_urls ?? []).slice().sort();
    const na = await connect(a);
    const nb = await connect(b);
    await waitFor("both clients to know both URLs", () => urls(na).length === 2 && urls(nb).length === 2);
    let ldm = false;
    void (async () => {
      for await (const s of nb.status()) if (s.type === nats.Events.LDM) ldm = true;
    })();
    b.signal("SIGUSR2");
    await waitFor("B's client to be told (ldm) to go to A", () => ldm && urls(nb).join() === a.hostport);
    await waitFor("A's client to stop hearing of B", () => urls(na).join() === a.hostport);
  }, 30_000);

  test("a gracefully stopped node is removed at once (it says it is leaving)", async () => {
    const nodes = await startCluster(3);
    const [a, , c] = nodes as [ClusterNode, ClusterNode, ClusterNode];
    const t0 = Date.now();
    await c.stop();
    await waitFor("A to see C gone", () => /Cluster member 127\.0\.0\.1:\d+ \(N2\) is gone/.test(a.log()), 5000);
    expect(Date.now() - t0).toBeLessThan(2000);
  }, 30_000);
});

describe("a route that cannot keep up", () => {
  test("a local publisher is held back while the route to a stopped node fills; past max_pending the route is cut, and dialed again once the node runs", async () => {
    const a = await startNode({ name: "A", monitor: true, extraArgs: ["--max_pending", "4194304"] });
    const b = await startNode({ name: "B", seeds: [a.clusterPort] });
    await waitForMesh([a, b]);
    const na = await connect(a);
    const nb = await connect(b);
    const s = `slow.route.${process.pid}`;
    await subscribeReady(nb, s, [na]);
    b.signal("SIGSTOP"); // B reads nothing: the kernel's buffers fill, then A's buffer for the route
    try {
      const payload = new Uint8Array(64 * 1024);
      await waitFor("A to cut the route as slow", async () => {
        for (let i = 0; i < 64; i++) na.publish(s, payload); // 4 MiB a round
        await na.flush();
        return /rid:\d+ - Slow route: \d+ bytes pending, closing/.test(a.log());
      }, 20_000, () => a.log());
    } finally {
      b.signal("SIGCONT");
    }
    // The publisher was paused on the way (Link.stallPublisher), not cut.
    const metrics = await (await fetch(`http://127.0.0.1:${a.httpPort}/metrics`)).text();
    expect(Number(/^natter_publisher_stalls_total (\d+)$/m.exec(metrics)?.[1] ?? 0)).toBeGreaterThan(0);
    expect(na.isClosed()).toBe(false);
    await waitForMesh([a, b]);
  }, 40_000);
});
