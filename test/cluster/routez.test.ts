// /routez, /varz's cluster block and the ports file's cluster entry of a real natter cluster (3 nodes,
// real processes on loopback): the routes every node lists, their counters after traffic crossed
// them, subs=1 / subs=detail, and the JSON shape side by side with a real nats-server cluster
// (Debian's nats-server 2.9.10; the v2.10.0 fields it does not write are listed as extra).
import { afterAll, describe, expect, test } from "vitest";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import * as nats from "nats";
import { freePort } from "../harness/server.ts";
import { HAS_NATS_SERVER } from "../harness/reference.ts";
import { shapeDiff } from "../monitor/shape.ts";
import { startMonitored, type Monitored } from "../monitor/spawn.ts";
import { startCluster, startNode, waitFor, type ClusterNode } from "./spawn.ts";

type Json = Record<string, any>;

const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$/;
const UPTIME = /^(\d+y)?(\d+d)?(\d+h)?(\d+m)?\d+s$/;
const GO_DURATION = /^(0s|\d+(\.\d+)?(ns|µs|ms|s))$/;
/** v2.10.0 fields nats-server 2.9.10 does not write. */
const EXTRA = ["server_name", "routes[].remote_name"];

const open = new Set<nats.NatsConnection>();
const dirs: string[] = [];
afterAll(async () => {
  await Promise.all([...open].map((nc) => nc.close().catch(() => {})));
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function connect(hostport: string): Promise<nats.NatsConnection> {
  const nc = await nats.connect({ servers: hostport, reconnect: false, timeout: 5000 });
  open.add(nc);
  return nc;
}

async function json(httpPort: number, pathAndQuery: string): Promise<Json> {
  const res = await fetch(`http://127.0.0.1:${httpPort}${pathAndQuery}`, { signal: AbortSignal.timeout(10_000) });
  expect(res.status).toBe(200);
  return (await res.json()) as Json;
}

const routez = (n: ClusterNode, q = "") => json(n.httpPort, `/routez${q}`);

/** The route of `at` that leads to `to`. */
async function routeTo(at: ClusterNode, to: ClusterNode, q = ""): Promise<Json> {
  const varz = await json(to.httpPort, "/varz");
  const r = (await routez(at, q)).routes.find((x: Json) => x.remote_id === varz.server_id);
  expect(r, `${at.name} has a route to ${to.name}`).toBeDefined();
  return r;
}

/** The other node's interest in the global account held on a route (routes also carry every other account's, $SYS's included). */
async function globalInterest(at: ClusterNode, to: ClusterNode): Promise<number> {
  const detail = (await routeTo(at, to, "?subs=detail")).subscriptions_list_detail as Json[] | undefined;
  return (detail ?? []).filter((d) => String(d.sid).startsWith("$G ")).length;
}

describe("natter /routez", () => {
  test("three nodes: every route listed with nats-server's fields; counters follow traffic; subs=1 and subs=detail", async () => {
    const [a, b, c] = await startCluster(3, { monitor: true });
    const ids = await Promise.all([a!, b!, c!].map(async (n) => (await json(n.httpPort, "/varz")).server_id as string));

    // Every node lists the two others, once each.
    for (const [k, n] of [a!, b!, c!].entries()) {
      await waitFor(`${n.name} lists two routes`, async () => (await routez(n)).num_routes === 2);
      const z = await routez(n);
      expect(z.server_id).toBe(ids[k]);
      expect(z.server_name).toBe(n.name);
      expect(z.now).toMatch(RFC3339);
      expect(z.routes.map((r: Json) => r.remote_id).sort()).toEqual(ids.filter((_, j) => j !== k).sort());
      for (const r of z.routes as Json[]) {
        expect(Object.keys(r)).toEqual([
          "rid", "remote_id", "remote_name", "did_solicit", "is_configured", "ip", "port", "start", "last_activity",
          "rtt", "uptime", "idle", "pending_size", "in_msgs", "out_msgs", "in_bytes", "out_bytes", "subscriptions",
        ]);
        expect(r.remote_name).toMatch(/^N[012]$/);
        expect(r.ip).toBe("127.0.0.1");
        expect(Number.isInteger(r.port) && r.port > 0).toBe(true);
        expect(r.start).toMatch(RFC3339);
        expect(r.last_activity).toMatch(RFC3339);
        expect(r.uptime).toMatch(UPTIME);
        expect(r.idle).toMatch(UPTIME);
        expect(r.rtt).toMatch(GO_DURATION);
        expect(typeof r.did_solicit).toBe("boolean");
      }
    }
    // One side of each pair dialed; the dialed side's port is the other node's cluster port.
    for (const [x, y] of [[a!, b!], [a!, c!], [b!, c!]] as const) {
      const xy = await routeTo(x, y);
      const yx = await routeTo(y, x);
      expect(xy.did_solicit !== yx.did_solicit).toBe(true);
      const dialer = xy.did_solicit ? xy : yx;
      expect(dialer.port).toBe(xy.did_solicit ? y.clusterPort : x.clusterPort);
    }
    // is_configured: the other node is one of this node's --routes seeds (a chain: N1 → N0, N2 → N1).
    expect((await routeTo(b!, a!)).is_configured).toBe(true);
    expect((await routeTo(c!, b!)).is_configured).toBe(true);
    expect((await routeTo(c!, a!)).is_configured).toBe(false);
    expect((await routeTo(a!, b!)).is_configured).toBe(false);
    // The RTT is measured (a PING with a stamp right after the route opens).
    await waitFor("an RTT on every route", async () => (await routez(a!)).routes.every((r: Json) => r.rtt !== "0s"));

    // Interest on B (a plain and a queue subscription) is held on A as B's route subscriptions.
    const ncB = await connect(b!.hostport);
    const ncA = await connect(a!.hostport);
    const got: string[] = [];
    ncB.subscribe("orders.>", { callback: (_e, m) => got.push(m.subject) });
    ncB.subscribe("work", { queue: "workers", callback: () => {} });
    await ncB.flush();
    await waitFor("A holds B's interest", async () => (await globalInterest(a!, b!)) === 2);
    const before = await routeTo(a!, b!);
    const payload = new Uint8Array(100);
    await waitFor("messages from A reach B", async () => {
      ncA.publish("orders.probe", payload);
      await ncA.flush();
      await new Promise((r) => setTimeout(r, 20));
      return got.length > 0;
    });
    const probes = got.length;
    for (let i = 0; i < 10; i++) ncA.publish(`orders.${i}`, payload);
    await ncA.flush();
    await waitFor("all ten at B", () => got.length >= probes + 10);
    await waitFor("A's route to B counts them", async () => (await routeTo(a!, b!)).out_msgs >= before.out_msgs + 10);
    const ab = await routeTo(a!, b!);
    const ba = await routeTo(b!, a!);
    expect(ab.out_msgs).toBeGreaterThanOrEqual(10 + probes);
    expect(ab.out_bytes).toBe(ab.out_msgs * 100);
    expect(ba.in_msgs).toBe(ab.out_msgs);
    expect(ba.in_bytes).toBe(ab.out_bytes);
    expect(ab.in_msgs).toBe(0);
    expect(ab.pending_size).toBe(0);
    // C's route from A carried nothing: C has no interest.
    expect((await routeTo(a!, c!)).out_msgs).toBe(0);

    // subs=1: the subjects of B's interest (besides the system account's); subs=detail: nats-server's SubDetail without account.
    const withSubs = await routeTo(a!, b!, "?subs=1");
    expect(withSubs.subscriptions).toBe(withSubs.subscriptions_list.length);
    expect([...withSubs.subscriptions_list].filter((s: string) => !s.startsWith("$SYS.")).sort()).toEqual(["orders.>", "work"]);
    expect(withSubs.subscriptions_list_detail).toBeUndefined();
    const detail = await routeTo(a!, b!, "?subs=detail");
    expect(detail.subscriptions_list).toBeUndefined();
    const bySubject = Object.fromEntries((detail.subscriptions_list_detail as Json[]).map((s) => [s.subject, s]));
    expect(bySubject["orders.>"]).toEqual({ subject: "orders.>", sid: "$G orders.>", msgs: ab.out_msgs, cid: ab.rid });
    expect(bySubject["work"]).toEqual({ subject: "work", qgroup: "workers", sid: "$G work workers", msgs: 0, cid: ab.rid });
    // Every account's interest is routed: the system account's too, as nats-server (its $SYS.REQ.SERVER.PING).
    expect(bySubject["$SYS.REQ.SERVER.PING"]?.sid).toBe("$SYS $SYS.REQ.SERVER.PING");

    // /varz: routes, remotes and the cluster block.
    const varzC = await json(c!.httpPort, "/varz");
    expect(varzC.routes).toBe(2);
    expect(varzC.remotes).toBe(2);
    expect(varzC.cluster).toEqual({ name: "test", addr: "127.0.0.1", cluster_port: c!.clusterPort, auth_timeout: 3, urls: [`127.0.0.1:${b!.clusterPort}`], tls_timeout: 2 });
    const varzA = await json(a!.httpPort, "/varz");
    expect(varzA.cluster).toEqual({ name: "test", addr: "127.0.0.1", cluster_port: a!.clusterPort, auth_timeout: 3, tls_timeout: 2 });
    expect(varzA.slow_consumer_stats.routes).toBe(0);

    // A node that goes away leaves the list.
    await c!.kill9();
    await waitFor("A drops the route to C", async () => (await routez(a!)).num_routes === 1, 15_000);
    expect((await routez(a!)).routes[0].remote_id).toBe(ids[1]);
    expect((await json(a!.httpPort, "/varz")).routes).toBe(1);
  }, 60_000);

  test("the ports file lists the cluster listener (a node alone: no routes yet)", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "natter-ports-"));
    dirs.push(dir);
    const n = await startNode({ name: "P", monitor: true, extraArgs: ["--ports_file_dir", dir] });
    await waitFor("the ports file", () => readdirSync(dir).some((f) => f.endsWith(".ports")));
    const file = readdirSync(dir).find((f) => f.endsWith(".ports"))!;
    const ports = JSON.parse(readFileSync(path.join(dir, file), "utf8"));
    // As nats-server: nats, monitoring, cluster (the listener's URLs), in that order.
    expect(Object.keys(ports)).toEqual(["nats", "monitoring", "cluster"]);
    expect(ports.cluster).toEqual([`nats://127.0.0.1:${n.clusterPort}`]);
    expect((await routez(n)).num_routes).toBe(0);
  });
});

/** A two-node nats-server cluster with monitoring, each naming the other as its route. */
async function natsCluster(): Promise<Monitored[]> {
  const [c1, c2] = [await freePort(), await freePort()];
  const args = (own: number, other: number) => ["--cluster", `nats://127.0.0.1:${own}`, "--routes", `nats://127.0.0.1:${other}`, "--cluster_name", "x"];
  return Promise.all([startMonitored("nats-server", args(c1, c2)), startMonitored("nats-server", args(c2, c1))]);
}

describe.skipIf(!HAS_NATS_SERVER)("/routez and /varz cluster: same shape as a nats-server cluster", () => {
  test("field names and JSON types, subs=0, subs=1, subs=detail", async () => {
    const ref = await natsCluster();
    try {
      const [a, b] = await startCluster(2, { monitor: true });
      // natter's route needs some interest to list (nats-server always has its $SYS subscriptions).
      const ncB = await connect(b!.hostport);
      ncB.subscribe("x.>", { callback: () => {} });
      ncB.subscribe("y", { queue: "q", callback: () => {} });
      await ncB.flush();
      await waitFor("A holds B's interest", async () => (await globalInterest(a!, b!)) === 2);
      await waitFor("the nats-server cluster formed", async () => (await (await fetch(`${ref[0]!.base}/routez`)).json() as Json).num_routes === 1);
      // The same interest on the nats-server side (its route lists a queue subscription too).
      const ref1 = await connect(ref[1]!.hostport);
      ref1.subscribe("x.>", { callback: () => {} });
      ref1.subscribe("y", { queue: "q", callback: () => {} });
      await ref1.flush();
      await waitFor("nats-server 0 holds the queue interest", async () => {
        const z = (await (await fetch(`${ref[0]!.base}/routez?subs=detail`)).json()) as Json;
        return (z.routes[0]?.subscriptions_list_detail ?? []).some((d: Json) => d.qgroup === "q");
      });
      for (const q of ["", "?subs=1", "?subs=detail"]) {
        const theirs = (await (await fetch(`${ref[0]!.base}/routez${q}`)).json()) as Json;
        const ours = await routez(a!, q);
        expect({ q, problems: shapeDiff(theirs, ours, { extra: EXTRA }) }).toEqual({ q, problems: [] });
      }
      const theirVarz = (await (await fetch(`${ref[0]!.base}/varz`)).json()) as Json;
      const ourVarz = await json(b!.httpPort, "/varz"); // b has a seed, as both nats-servers do
      expect(shapeDiff(theirVarz.cluster, ourVarz.cluster)).toEqual([]);
      expect(Object.keys(ourVarz.cluster)).toEqual(Object.keys(theirVarz.cluster));
      expect([ourVarz.routes, ourVarz.remotes]).toEqual([theirVarz.routes, theirVarz.remotes]);
    } finally {
      await Promise.all(ref.map((s) => s.stop()));
    }
  }, 60_000);
});
