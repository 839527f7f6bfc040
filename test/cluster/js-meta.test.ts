// One JetStream for a cluster whose every node runs -js (issue 13, stage A): the nodes form the meta group,
// every $JS.API request gets exactly one answer from any node, a stream is created once and placed on one
// node (least loaded), and it is reachable from every node: publishes, durable consumers, KV. Before the
// group has a leader, requests get 10008. A node's R1 streams from before it joined a cluster stay.
// (The first paragraph: 3 answers per request, a durable fetching 1,2,3,4,1,2,3,4,5,…)
// NATTER_TEST_SERVER=nats-server runs the first two tests against a nats-server 2.9 cluster (same flags);
// what nats-server does otherwise (placement by storage, no adoption of a single server's streams) is natter's only.
import { describe, expect, test } from "vitest";
import { AckPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect } from "@nats-io/transport-node";
import { serverKind } from "../harness/server.ts";
import { startNode, waitFor, waitForMesh } from "./spawn.ts";
import { answers, client, metaCluster, natterOnly, storeDir, threeJetStreamNodes, waitForMeta } from "./js-cluster.ts";

describe("a cluster whose every node runs JetStream is one JetStream", () => {
  test("one answer per request from any node; a stream made once, reachable from every node", async () => {
    const nodes = await threeJetStreamNodes();
    const [c0, c1, c2] = await Promise.all(nodes.map(client));
    // API audit advisories (src/jetstream/api-audit.ts), by id: each node's client sees those of its own node at once.
    const audits = new Map<string, Record<string, any>>();
    for (const nc of [c0, c1, c2]) nc.subscribe("$JS.EVENT.ADVISORY.API", { callback: (_, m) => void audits.set(m.json<{ id: string }>().id, m.json()) });
    await Promise.all([c0, c1, c2].map((nc) => nc.flush()));

    // (Each answers() waits 400 ms for a second answer: the nodes are asked side by side.)
    for (const got of await Promise.all([c0, c1, c2].map((nc) => answers(nc, "$JS.API.INFO")))) {
      expect(got.length).toBe(1);
      expect(got[0]!.type).toBe("io.nats.jetstream.api.v1.account_info_response");
    }

    // Created through N2: one answer, and one stream in the whole cluster.
    const created = await answers(c2, "$JS.API.STREAM.CREATE.ORDERS", JSON.stringify({ name: "ORDERS", subjects: ["orders.>"] }));
    expect(created.length).toBe(1);
    expect(created[0]!.error).toBeUndefined();
    const holder = (created[0]!.cluster as { leader: string }).leader;
    expect(["N0", "N1", "N2"]).toContain(holder);
    const asked = [c0, c1, c2].map((nc) => Promise.all([answers(nc, "$JS.API.STREAM.NAMES"), answers(nc, "$JS.API.STREAM.INFO.ORDERS")]));
    for (const [names, info] of await Promise.all(asked)) {
      expect(names.length).toBe(1);
      expect(names[0]!.streams).toEqual(["ORDERS"]);
      expect(info.length).toBe(1);
      expect(info[0]!.cluster).toEqual({ name: "test", leader: holder });
    }
    // A second create of the same name with another configuration is refused once (10058).
    // Overlapping subjects with a stream held elsewhere: 10065, decided by the meta leader.
    const [again, overlap] = await Promise.all([
      answers(c0, "$JS.API.STREAM.CREATE.ORDERS", JSON.stringify({ name: "ORDERS", subjects: ["other.>"] })),
      answers(c1, "$JS.API.STREAM.CREATE.O2", JSON.stringify({ name: "O2", subjects: ["orders.eu"] })),
    ]);
    expect(again.map((a) => (a.error as { err_code: number }).err_code)).toEqual([10058]);
    expect(overlap.map((a) => (a.error as { err_code: number }).err_code)).toEqual([10065]);

    // One audit advisory per request, from the node that answered, naming the requester's node (nats-server
    // carries the client's info with the request across routes: its Nats-Request-Info header).
    const metaLeader = (await metaCluster(nodes[0]!))!.leader;
    const audited = (subject: string) => [...audits.values()].filter((a) => a.subject === subject).map((a) => [a.client.server, a.server, a.client.acc, a.client.cluster]);
    await waitFor("the audits of the creates", async () => audited("$JS.API.STREAM.CREATE.ORDERS").length === 2 && audited("$JS.API.STREAM.CREATE.O2").length === 1);
    // (The nodes were asked side by side: in any order.)
    const fromEach = (subject: string) => audited(subject).sort((a, b) => String(a[0]).localeCompare(String(b[0])));
    expect(fromEach("$JS.API.INFO")).toEqual(["N0", "N1", "N2"].map((n) => [n, metaLeader, "$G", "test"]));
    expect(audited("$JS.API.STREAM.CREATE.ORDERS")).toEqual([["N2", holder, "$G", "test"], ["N0", metaLeader, "$G", "test"]]);
    expect(audited("$JS.API.STREAM.CREATE.O2")).toEqual([["N1", metaLeader, "$G", "test"]]);
    expect(fromEach("$JS.API.STREAM.NAMES")).toEqual(["N0", "N1", "N2"].map((n) => [n, metaLeader, "$G", "test"]));
    expect(fromEach("$JS.API.STREAM.INFO.ORDERS")).toEqual(["N0", "N1", "N2"].map((n) => [n, holder, "$G", "test"]));

    // Five publishes through N1, a durable pull consumer made on N0 and fetched on N2: each message once.
    const js1 = jetstream(c1);
    await waitFor("orders.> interest on N1", async () => {
      try {
        await js1.publish("orders.0", new TextEncoder().encode("probe"), { timeout: 500, msgID: "probe" });
        return true;
      } catch {
        return false;
      }
    });
    for (let i = 1; i <= 5; i++) expect((await js1.publish(`orders.${i}`, new TextEncoder().encode(`order ${i}`), { msgID: `id-${i}` })).seq).toBe(i + 1);
    expect((await js1.publish("orders.1", new TextEncoder().encode("again"), { msgID: "id-1" })).duplicate).toBe(true);
    const jsm0 = await jetstreamManager(c0);
    await jsm0.consumers.add("ORDERS", { durable_name: "worker", ack_policy: AckPolicy.Explicit });
    const consumer = await jetstream(c2).consumers.get("ORDERS", "worker");
    const seqs: number[] = [];
    for await (const m of await consumer.fetch({ max_messages: 10, expires: 1500 })) {
      seqs.push(m.seq);
      m.ack();
    }
    expect(seqs).toEqual([1, 2, 3, 4, 5, 6]);
    await waitFor("acks reach the holder", async () => (await jsm0.consumers.info("ORDERS", "worker")).num_ack_pending === 0);
    expect((await answers(c1, "$JS.API.CONSUMER.INFO.ORDERS.worker")).length).toBe(1);

    // Account info and list from a node that may not hold the stream: the whole cluster's.
    const jsm2 = await jetstreamManager(c2);
    const account = await jsm2.getAccountInfo();
    expect(account.streams).toBe(1);
    expect(account.consumers).toBe(1);
    const listed = await jsm2.streams.list().next();
    expect(listed.map((s) => [s.config.name, s.state.messages])).toEqual([["ORDERS", 6]]);

    // KV through the official client: bucket from N1, written on N2, read and watched on N0.
    const kv1 = await new Kvm(c1).create("cfg");
    const kv2 = await new Kvm(c2).open("cfg");
    await waitFor("the bucket's interest to reach N2", async () => {
      try {
        await kv2.put("color", "blue");
        return true;
      } catch {
        return false;
      }
    });
    const kv0 = await new Kvm(c0).open("cfg");
    expect((await kv0.get("color"))?.string()).toBe("blue");

    // Delete through N0: one answer, gone everywhere.
    const deleted = await answers(c0, "$JS.API.STREAM.DELETE.ORDERS");
    expect(deleted.length).toBe(1);
    expect(deleted[0]!.success).toBe(true);
    for (const info of await Promise.all([c0, c1, c2].map((nc) => answers(nc, "$JS.API.STREAM.INFO.ORDERS")))) {
      expect(info.map((a) => (a.error as { err_code: number }).err_code)).toEqual([10059]);
    }
  }, 60_000);

  test("streams are spread over the nodes, least loaded first", async () => {
    const nodes = await threeJetStreamNodes();
    const jsm = await jetstreamManager(await client(nodes[1]!));
    const holders: string[] = [];
    for (const name of ["A", "B", "C"]) {
      const info = await jsm.streams.add({ name, subjects: [`${name.toLowerCase()}.>`] });
      holders.push(info.cluster!.leader!);
    }
    // nats-server places by available storage; natter by stream count.
    if (serverKind === "natter") expect(holders.sort()).toEqual(["N0", "N1", "N2"]);
    // A placement tag no node has: nats-server's 10005.
    const got = await answers(await client(nodes[0]!), "$JS.API.STREAM.CREATE.T", JSON.stringify({ name: "T", subjects: ["t"], placement: { tags: ["ssd"] } }));
    expect(got.length).toBe(1);
    expect(got[0]!.error).toEqual({ code: 400, err_code: 10005, description: "no suitable peers for placement, tags not matched ['ssd']" });
  }, 60_000);

  natterOnly("before the meta group has a leader, requests get 10008 once", async () => {
    // A seed that never answers: the node waits for it (up to 5 s) before founding the group.
    const n0 = await startNode({ name: "N0", seeds: [1], extraArgs: ["-js", "--store_dir", storeDir()] });
    const nc = await client(n0);
    const got = await answers(nc, "$JS.API.INFO");
    expect(got.length).toBe(1);
    expect(got[0]!.error).toEqual({ code: 503, err_code: 10008, description: "JetStream system temporarily unavailable" });
    await waitFor("a meta leader", async () => !JSON.stringify(await answers(nc, "$JS.API.INFO", "", 1000)).includes("10008"), 15_000);
  }, 30_000);

  natterOnly("a node's streams from before it joined a cluster stay, reachable from the other nodes", async () => {
    const store = storeDir();
    // Alone (no cluster): a stream with two messages.
    const { startServer } = await import("../harness/server.ts");
    const single = await startServer({ args: ["-js", "--store_dir", store] });
    try {
      const nc = await connect({ servers: single.url });
      const jsm = await jetstreamManager(nc);
      await jsm.streams.add({ name: "OLD", subjects: ["old.>"] });
      const js = jetstream(nc);
      await js.publish("old.1", new TextEncoder().encode("one"));
      await js.publish("old.2", new TextEncoder().encode("two"));
      await nc.close();
    } finally {
      await single.stop();
    }
    // The same store in a cluster of three JetStream nodes.
    const n0 = await startNode({ name: "N0", monitor: true, extraArgs: ["-js", "--store_dir", store] });
    const n1 = await startNode({ name: "N1", monitor: true, seeds: [n0.clusterPort], extraArgs: ["-js", "--store_dir", storeDir()] });
    await waitForMesh([n0, n1]);
    await waitForMeta([n0, n1]);
    const c1 = await client(n1);
    await waitFor("OLD known to the meta group", async () => {
      const names = await answers(c1, "$JS.API.STREAM.NAMES", "", 1000);
      return JSON.stringify(names).includes("OLD");
    }, 15_000);
    const jsm1 = await jetstreamManager(c1);
    const info = await jsm1.streams.info("OLD");
    expect(info.state.messages).toBe(2);
    expect(info.cluster?.leader).toBe("N0");
    expect((await jsm1.streams.getMessage("OLD", { seq: 2 }))?.string()).toBe("two");
  }, 60_000);

  test("the meta leader dies: creates and deletes go on after the re-election, nothing twice; it rejoins", async () => {
    const nodes = await threeJetStreamNodes();
    const leaderName = await waitForMeta(nodes);
    const leader = nodes.find((n) => n.name === leaderName)!;
    const others = nodes.filter((n) => n !== leader);
    const nc = await client(others[0]!);
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: "BEFORE", subjects: ["before.>"] });
    await leader.kill9();
    await waitFor("a new meta leader among the others", async () => {
      const views = await Promise.all(others.map(metaCluster));
      return views.every((v) => v !== undefined && v.leader !== "" && v.leader !== leaderName && v.leader === views[0]!.leader);
    }, 20_000);
    // A create through the new leader: once, whatever node the client is on.
    await waitFor("a create after the re-election", async () => {
      const got = await answers(nc, "$JS.API.STREAM.CREATE.AFTER", JSON.stringify({ name: "AFTER", subjects: ["after.>"] }));
      expect(got.length).toBeLessThanOrEqual(1);
      return got.length === 1 && got[0]!.error === undefined;
    }, 20_000);
    const names = await answers(await client(others[1]!), "$JS.API.STREAM.NAMES");
    expect(names.length).toBe(1);
    expect((names[0]!.streams as string[]).filter((n) => n === "AFTER")).toEqual(["AFTER"]);
    // The old leader comes back as a member: it knows both streams and the group is whole again.
    await leader.start();
    await waitForMeta(nodes);
    const fromOld = await answers(await client(leader), "$JS.API.STREAM.NAMES");
    expect(fromOld.length).toBe(1);
    expect((fromOld[0]!.streams as string[]).filter((n) => n === "AFTER" || n === "BEFORE").sort()).toEqual(["AFTER", "BEFORE"]);
    const deleted = await answers(nc, "$JS.API.STREAM.DELETE.AFTER");
    expect(deleted.map((d) => d.success)).toEqual([true]);
  }, 60_000);
});
