// `natter --procs 2` as a leaf node of a hub (nats-server 2.9.10 when installed, and natter): only worker
// 0 dials the hub, and its link stands for both workers (Subscriber.sharedHubLink). The hub sees one leaf;
// subscribers on both workers get a hub publish once; hub subscribers get publishes from both workers
// once; kill -9 of worker 0: the supervisor restarts it and the link comes back. And the other way round: a
// leaf attached to natter --procs (worker 0's listener) reaches both workers.
import { afterAll, describe, expect, test } from "vitest";
import { StringCodec, type NatsConnection } from "nats";
import { freePort } from "../harness/server.ts";
import { HAS_NATS_SERVER, client, collect, subject, waitForFlow } from "../leaf/helpers.ts";
import { startProc, waitFor, type Kind } from "../leaf/spawn.ts";
import { HOST, connect, startProcs, stopAll, workerPid } from "./procs-harness.ts";

const sc = StringCodec();
afterAll(stopAll);

/** A client on worker `index` (its server name is w-<index>); the kernel picks, so connect until one lands there. */
async function clientOnWorker(port: number, index: number): Promise<NatsConnection> {
  for (let i = 0; i < 64; i++) {
    const nc = await connect(port, { reconnect: true, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    if (nc.info?.server_name === `w-${index}`) return nc;
    await nc.close();
  }
  throw new Error(`no connection landed on worker ${index}`);
}

for (const hubKind of ["nats-server", "natter"] as Kind[]) {
  describe.skipIf(hubKind === "nats-server" && !HAS_NATS_SERVER)(`natter --procs 2 with leaf nodes: ${hubKind} on the other side`, () => {
    test("as a leaf of a hub: one link (worker 0's); every message once on both workers and at the hub; the link comes back after kill -9 of worker 0", async () => {
      const hubHttp = await freePort();
      const hub = await startProc(hubKind, { name: "HUB", config: `leafnodes { listen: "${HOST}:{{leaf_port}}" }\n`, args: ["-m", String(hubHttp)] });
      const p = await startProcs(["-n", "w", "--leafnode_remote", `nats-leaf://${HOST}:${hub.leafPort}`], 2);
      const detail = () => `==== HUB\n${hub.log().split("\n").slice(-40).join("\n")}\n==== procs\n${p.log().split("\n").slice(-60).join("\n")}`;
      const leafCount = async () => ((await (await fetch(`http://${HOST}:${hubHttp}/leafz`)).json()) as { leafnodes: number }).leafnodes;

      const [w0, w1, hc] = [await clientOnWorker(p.port, 0), await clientOnWorker(p.port, 1), await client(hub)];
      const s = subject("procs");
      const at = { hub: collect(hc, s), w0: collect(w0, s), w1: collect(w1, s) };
      await Promise.all([hc.flush(), w0.flush(), w1.flush()]);
      for (const [from, to, what] of [[hc, w0, "hub → worker 0"], [hc, w1, "hub → worker 1"], [w0, hc, "worker 0 → hub"], [w1, hc, "worker 1 → hub"], [w0, w1, "worker 0 → worker 1"]] as const) {
        await waitForFlow(from, to, `the links to carry ${what}`, 15_000, detail);
      }
      expect(await leafCount()).toBe(1);

      const n = 50;
      const mine = (c: { msgs: { data: Uint8Array }[] }, from: string) => c.msgs.map((m) => sc.decode(m.data)).filter((d) => d.startsWith(`${from}-`));
      const expected = (from: string) => Array.from({ length: n }, (_, i) => `${from}-${i}`);
      for (const [publisher, from, receivers] of [[hc, "hub", [at.w0, at.w1]], [w0, "w0", [at.hub, at.w1]], [w1, "w1", [at.hub, at.w0]]] as const) {
        for (let i = 0; i < n; i++) publisher.publish(s, sc.encode(`${from}-${i}`));
        await publisher.flush();
        await waitFor(`every message published at ${from} at the others`, () => receivers.every((c) => mine(c, from).length >= n), 10_000, detail);
      }
      // A round trip through every path: anything doubled would have arrived by now.
      await waitForFlow(hc, w1, "a last probe", 5000, detail);
      for (const [c, from] of [[at.w0, "hub"], [at.w1, "hub"], [at.hub, "w0"], [at.w1, "w0"], [at.hub, "w1"], [at.w0, "w1"]] as const) {
        expect(mine(c, from), `${from} → ${c === at.hub ? "hub" : c === at.w0 ? "w0" : "w1"}`).toEqual(expected(from));
      }
      // Each publisher's own messages are not echoed back over the link.
      expect(mine(at.hub, "hub")).toEqual(expected("hub"));

      // kill -9 of worker 0 (the link's holder): restarted, the link comes back, worker 1's subscriber gets hub messages again.
      const pid = workerPid(p, 0)!;
      process.kill(pid, "SIGKILL");
      await waitFor("worker 0 to be restarted", () => {
        const now = workerPid(p, 0);
        return now !== null && now !== pid;
      }, 15_000, detail);
      await waitForFlow(hc, w1, "hub → worker 1 after the restart", 20_000, detail);
      await waitForFlow(w1, hc, "worker 1 → hub after the restart", 20_000, detail);
      expect(await leafCount()).toBe(1);
    }, 60_000);

    test(`a ${hubKind} leaf attached to natter --procs 2 (worker 0's listener) reaches both workers, every message once`, async () => {
      const leafPort = await freePort();
      const p = await startProcs(["-n", "w", "--leafnodes_listen", `${HOST}:${leafPort}`], 2);
      const leaf = await startProc(hubKind, { name: "LEAF", config: `leafnodes { remotes [ { url: "nats-leaf://${HOST}:${leafPort}" } ] }\n` });
      const detail = () => `==== LEAF\n${leaf.log().split("\n").slice(-40).join("\n")}\n==== procs\n${p.log().split("\n").slice(-60).join("\n")}`;
      const [w0, w1, lc] = [await clientOnWorker(p.port, 0), await clientOnWorker(p.port, 1), await client(leaf)];
      const s = subject("attached");
      const at = { leaf: collect(lc, s), w0: collect(w0, s), w1: collect(w1, s) };
      await Promise.all([lc.flush(), w0.flush(), w1.flush()]);
      for (const [from, to, what] of [[lc, w0, "leaf → worker 0"], [lc, w1, "leaf → worker 1"], [w0, lc, "worker 0 → leaf"], [w1, lc, "worker 1 → leaf"]] as const) {
        await waitForFlow(from, to, `the links to carry ${what}`, 15_000, detail);
      }
      const n = 50;
      const mine = (c: { msgs: { data: Uint8Array }[] }, from: string) => c.msgs.map((m) => sc.decode(m.data)).filter((d) => d.startsWith(`${from}-`));
      for (const [publisher, from, receivers] of [[lc, "leaf", [at.w0, at.w1]], [w0, "w0", [at.leaf, at.w1]], [w1, "w1", [at.leaf, at.w0]]] as const) {
        for (let i = 0; i < n; i++) publisher.publish(s, sc.encode(`${from}-${i}`));
        await publisher.flush();
        await waitFor(`every message published at ${from} at the others`, () => receivers.every((c) => mine(c, from).length >= n), 10_000, detail);
      }
      await waitForFlow(lc, w1, "a last probe", 5000, detail);
      for (const [c, from] of [[at.w0, "leaf"], [at.w1, "leaf"], [at.leaf, "w0"], [at.w1, "w0"], [at.leaf, "w1"], [at.w0, "w1"]] as const) {
        expect(mine(c, from)).toEqual(Array.from({ length: n }, (_, i) => `${from}-${i}`));
      }
    }, 60_000);
  });
}
