// `natter --procs 2` in a cluster of the user's (--cluster host:port): each worker is a member, worker i
// listening for routes on port + i, so a single natter node C and the two workers are one cluster of
// three: messages and queue groups across all three once, and with -js one JetStream (an R3 stream over
// C and both workers: created on C, published to on worker 0, consumed on worker 1).
import { afterAll, describe, expect, test } from "vitest";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { AckPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect as natsConnect, type NatsConnection as CoreConnection } from "@nats-io/transport-node";
import type { NatsConnection } from "nats";
import { startNode, waitFor } from "../cluster/spawn.ts";
import { HOST, connect, sc, startProcs, stopAll, subscribeReady } from "./procs-harness.ts";

const tmp = mkdtempSync(path.join(os.tmpdir(), "natter-procs-cluster-"));
afterAll(async () => {
  await stopAll();
  rmSync(tmp, { recursive: true, force: true });
});

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(false));
    server.listen(port, HOST, () => server.close(() => resolve(true)));
  });
}

/** A port p with p and p + 1 free (the two workers' route ports). */
async function twoFreePorts(): Promise<number> {
  for (;;) {
    const p = 20000 + Math.floor(Math.random() * 30000);
    if ((await portFree(p)) && (await portFree(p + 1))) return p;
  }
}

async function clientOnWorker(port: number, index: number): Promise<NatsConnection> {
  for (let i = 0; i < 64; i++) {
    const nc = await connect(port);
    if (nc.info?.server_name === `w-${index}`) return nc;
    await nc.close();
  }
  throw new Error(`no connection landed on worker ${index}`);
}

describe("natter --procs 2 in a cluster of the user's", () => {
  test("a single node and the two workers are one cluster (route ports port + i), and one JetStream", async () => {
    const sd = path.join(tmp, "js");
    const cRoute = await twoFreePorts();
    const c = await startNode({ name: "C", clusterName: "c1", clusterPort: cRoute, monitor: true, extraArgs: ["-js", "-sd", path.join(tmp, "c")] });
    const base = await twoFreePorts();
    const p = await startProcs(["-n", "w", "--cluster", `nats://${HOST}:${base}`, "--routes", `nats://${HOST}:${cRoute}`, "--cluster_name", "c1", "-js", "-sd", sd], 2);
    const detail = () => `==== C\n${c.log().split("\n").slice(-40).join("\n")}\n==== procs\n${p.log().split("\n").slice(-60).join("\n")}`;
    expect(p.log()).toMatch(new RegExp(`Listening for route connections on ${HOST}:${base}\\b`));
    expect(p.log()).toMatch(new RegExp(`Listening for route connections on ${HOST}:${base + 1}\\b`));
    const routes = async (httpPort: number) => ((await (await fetch(`http://${HOST}:${httpPort}/varz`)).json()) as { routes: number }).routes;
    await waitFor("a full mesh of three (C and worker 0 each with two routes)", async () => (await routes(c.httpPort)) === 2 && (await routes(p.httpPort)) === 2, 15_000, detail);

    const [w0, w1, cc] = [await clientOnWorker(p.port, 0), await clientOnWorker(p.port, 1), await connect(c.port)];
    // Plain subscribers on each: a message from any of the three once at the other two.
    const at = { c: [] as string[], w0: [] as string[], w1: [] as string[] };
    for (const [nc, got] of [[cc, at.c], [w0, at.w0], [w1, at.w1]] as const) {
      nc.subscribe("mesh.>", { callback: (_e, m) => got.push(sc.decode(m.data)) });
      await nc.flush();
    }
    const [onC, onW0, onW1] = [at.c, at.w0, at.w1];
    // Each one's interest has reached the other two once probes from each arrive everywhere.
    await waitFor("interest in mesh.> everywhere", async () => {
      for (const [nc, from] of [[cc, "c"], [w0, "w0"], [w1, "w1"]] as const) {
        nc.publish("mesh.probe", sc.encode(`probe-${from}`));
        await nc.flush();
      }
      await new Promise((r) => setTimeout(r, 20));
      return [onC, onW0, onW1].every((got) => ["c", "w0", "w1"].every((from) => got.includes(`probe-${from}`)));
    }, 15_000, detail);
    for (const [publisher, from] of [[cc, "c"], [w0, "w0"], [w1, "w1"]] as const) {
      for (let i = 0; i < 50; i++) publisher.publish("mesh.x", sc.encode(`${from}-${i}`));
      await publisher.flush();
    }
    const mine = (got: string[], from: string) => got.filter((d) => d.startsWith(`${from}-`));
    await waitFor("every message at the other two", () =>
      mine(onW0, "c").length + mine(onW1, "c").length + mine(onC, "w0").length + mine(onW1, "w0").length + mine(onC, "w1").length + mine(onW0, "w1").length >= 300, 10_000, detail);
    await subscribeReady(w0, cc, "last.>"); // a round trip after the last publish
    const fifty = (from: string) => Array.from({ length: 50 }, (_, i) => `${from}-${i}`);
    expect([mine(onW0, "c"), mine(onW1, "c"), mine(onC, "w0"), mine(onW1, "w0"), mine(onC, "w1"), mine(onW0, "w1")]).toEqual([
      fifty("c"), fifty("c"), fifty("w0"), fifty("w0"), fifty("w1"), fifty("w1"),
    ]);

    // One JetStream: an R3 stream over C and both workers.
    expect(JSON.parse(readFileSync(path.join(sd, "procs.json"), "utf8"))).toMatchObject({ procs: 2, routes: [base, base + 1], cluster: "c1" });
    const core = async (port: number): Promise<CoreConnection> => natsConnect({ servers: `${HOST}:${port}`, timeout: 5000 });
    const [jc, j0, j1] = [await core(c.port), await core(p.port), await core(p.port)];
    try {
      const jsm = await jetstreamManager(jc, { timeout: 3000, checkAPI: false });
      await waitFor("an R3 stream over the three nodes", async () => {
        try {
          await jsm.streams.add({ name: "ALL", subjects: ["all.>"], num_replicas: 3 });
          return true;
        } catch (error) {
          if (/10008|temporarily unavailable|no suitable peers|timeout/i.test(String(error))) return false;
          throw error;
        }
      }, 20_000, detail);
      const si = await jsm.streams.info("ALL");
      expect([si.cluster!.leader, ...si.cluster!.replicas!.map((r) => r.name)].sort()).toEqual(["C", "w-0", "w-1"]);
      const js = jetstream(j0);
      for (let i = 1; i <= 10; i++) expect((await js.publish("all.x", sc.encode(`m${i}`))).seq).toBe(i);
      const jsm1 = await jetstreamManager(j1, { timeout: 3000, checkAPI: false });
      await jsm1.consumers.add("ALL", { durable_name: "d", ack_policy: AckPolicy.Explicit });
      const consumer = await jetstream(j1).consumers.get("ALL", "d");
      const got: string[] = [];
      const batch = await consumer.fetch({ max_messages: 10, expires: 5000 });
      for await (const m of batch) {
        got.push(sc.decode(m.data));
        m.ack();
      }
      expect(got).toEqual(Array.from({ length: 10 }, (_, i) => `m${i + 1}`));
    } finally {
      await Promise.all([jc, j0, j1].map((nc) => nc.close()));
    }
  }, 60_000);
});
