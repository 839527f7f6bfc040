// Operating a JetStream cluster (issue 13, stage D): nats-server's advisories when a replicated stream
// elects a leader, $JS.API.META.LEADER.STEPDOWN from the system account (only the meta leader listens),
// and /jsz with the meta group and each stream's replicas. Accounts as a deployment has them: an
// application account with JetStream and the system account. Also against a nats-server 2.9 cluster
// (NATTER_TEST_SERVER=nats-server).
import { describe, expect, test } from "vitest";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { AckPolicy, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { serverKind } from "../harness/server.ts";
import { waitFor, type ClusterNode } from "./spawn.ts";
import { metaCluster, storeDir, threeJetStreamNodes, waitForMeta } from "./js-cluster.ts";

const CONFIG = `
accounts {
  SYS { users [ { user: admin, password: adminpw } ] }
  APP { jetstream: enabled, users [ { user: app, password: apppw } ] }
}
system_account: SYS
`;

async function user(nodes: ClusterNode[], name: string, pass: string): Promise<NatsConnection> {
  return connect({ servers: nodes.map((n) => n.hostport), user: name, pass, reconnectTimeWait: 100, maxReconnectAttempts: -1 });
}

describe("operating a JetStream cluster", () => {
  test("leader-elected advisories, meta leader stepdown from the system account, /jsz", async () => {
    const conf = path.join(storeDir(), "accounts.conf");
    writeFileSync(conf, CONFIG);
    const nodes = await threeJetStreamNodes(["-c", conf]);
    const app = await user(nodes, "app", "apppw");
    const admin = await user(nodes, "admin", "adminpw");
    const jsm = await jetstreamManager(app);
    // Action advisories go out once for the cluster, not once per replica.
    const actions: string[] = [];
    app.subscribe("$JS.EVENT.ADVISORY.*.*.S.>", { callback: (_, m) => void actions.push(m.subject) });
    app.subscribe("$JS.EVENT.ADVISORY.STREAM.*.S", { callback: (_, m) => void actions.push(m.subject) });
    await app.flush();
    await jsm.streams.add({ name: "S", subjects: ["s.>"], num_replicas: 3 });
    await jsm.consumers.add("S", { durable_name: "ONE", ack_policy: AckPolicy.Explicit });
    await waitFor("current replicas", async () => (await jsm.streams.info("S")).cluster?.replicas?.every((r) => r.current) === true);
    await waitFor("the create advisories", () => actions.includes("$JS.EVENT.ADVISORY.CONSUMER.CREATED.S.ONE"));
    await app.flush();
    expect(actions.filter((a) => a.includes(".CREATED."))).toEqual(["$JS.EVENT.ADVISORY.STREAM.CREATED.S", "$JS.EVENT.ADVISORY.CONSUMER.CREATED.S.ONE"]);

    // A stream stepdown: the new leader announces itself in the stream's account.
    const advisories: Record<string, unknown>[] = [];
    const sub = app.subscribe("$JS.EVENT.ADVISORY.STREAM.LEADER_ELECTED.S", { callback: (_, m) => void advisories.push(m.json()) });
    await app.flush();
    const before = (await jsm.streams.info("S")).cluster!.leader!;
    const r = await app.request("$JS.API.STREAM.LEADER.STEPDOWN.S", new Uint8Array(), { timeout: 5000 });
    expect(r.json<{ success: boolean }>().success).toBe(true);
    await waitFor("a leader-elected advisory", () => advisories.length > 0);
    const advisory = advisories[0]!;
    expect(advisory.type).toBe("io.nats.jetstream.advisory.v1.stream_leader_elected");
    expect(advisory.stream).toBe("S");
    expect(advisory.leader).not.toBe(before);
    expect((advisory.replicas as unknown[]).length).toBeGreaterThanOrEqual(2);
    sub.unsubscribe();

    // A durable's leader moves (natter moves its stream's leadership with it): its new leader announces itself.
    await jsm.consumers.add("S", { durable_name: "D", ack_policy: AckPolicy.Explicit });
    const consumerAdvisories: Record<string, unknown>[] = [];
    const consumerSub = app.subscribe("$JS.EVENT.ADVISORY.CONSUMER.LEADER_ELECTED.S.D", { callback: (_, m) => void consumerAdvisories.push(m.json()) });
    await app.flush();
    const consumerBefore = (await jsm.consumers.info("S", "D")).cluster!.leader!;
    await waitFor("a consumer stepdown answered", async () =>
      (await app.request("$JS.API.CONSUMER.LEADER.STEPDOWN.S.D", new Uint8Array(), { timeout: 2000 }).then((m) => m.json<{ success?: boolean }>(), () => null))?.success === true, 20_000);
    await waitFor("a consumer leader-elected advisory", () => consumerAdvisories.length > 0);
    expect(consumerAdvisories[0]).toMatchObject({ type: "io.nats.jetstream.advisory.v1.consumer_leader_elected", stream: "S", consumer: "D" });
    expect(consumerAdvisories[0]!.leader).not.toBe(consumerBefore);
    consumerSub.unsubscribe();

    // The meta leader steps down when asked: by the system account, and (as nats-server 2.9 takes it) by a
    // JetStream account.
    for (const [who, nc] of [["admin", admin], ["app", app]] as const) {
      const metaBefore = await waitForMeta(nodes);
      const stepdown = await nc.request("$JS.API.META.LEADER.STEPDOWN", new Uint8Array(), { timeout: 5000 });
      expect(stepdown.json<{ type: string; success: boolean }>(), who).toMatchObject({ type: "io.nats.jetstream.api.v1.meta_leader_stepdown_response", success: true });
      await waitFor("another meta leader known to every node", async () => {
        const views = await Promise.all(nodes.map(metaCluster));
        return views.every((v) => v !== undefined && v.leader !== "" && v.leader !== metaBefore && v.leader === views[0]!.leader);
      }, 20_000);
    }
    // Stream operations still work through the new meta leader.
    await jsm.streams.add({ name: "AFTER", subjects: ["after.>"], num_replicas: 3 });
    expect((await jsm.streams.info("AFTER")).config.num_replicas).toBe(3);

    // /jsz: each node's streams with their cluster block (natter shows it on every replica).
    if (serverKind === "natter") {
      const jsz = (await (await fetch(`http://127.0.0.1:${nodes[0]!.httpPort}/jsz?streams=true`)).json()) as {
        account_details: { name: string; stream_detail: { name: string; cluster?: { leader?: string } }[] }[];
      };
      const s = jsz.account_details.find((a) => a.name === "APP")!.stream_detail.find((d) => d.name === "S")!;
      expect(["N0", "N1", "N2"]).toContain(s.cluster?.leader);
    }
    await app.close();
    await admin.close();
  }, 60_000);
});
