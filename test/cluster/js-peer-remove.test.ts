// Removing peers (issue 13, stage D), as nats-server: $JS.API.STREAM.PEER.REMOVE.<stream> takes one replica
// out of a stream and the free node takes its place (it copies the messages); $JS.API.SERVER.REMOVE (system
// account) takes a server out of the meta group. Errors as nats-server's. Also against a nats-server 2.9
// cluster (NATTER_TEST_SERVER=nats-server).
import { describe, expect, test } from "vitest";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { serverKind } from "../harness/server.ts";
import { waitFor, type ClusterNode } from "./spawn.ts";
import { metaCluster, storeDir, threeJetStreamNodes, waitForMeta } from "./js-cluster.ts";

const enc = new TextEncoder();

const ACCOUNTS = `
accounts {
  SYS { users [ { user: admin, password: adminpw } ] }
  APP { jetstream: enabled, users [ { user: app, password: apppw } ] }
}
system_account: SYS
`;

async function ask(nc: NatsConnection, subject: string, body: unknown): Promise<Record<string, unknown>> {
  const payload = typeof body === "string" ? body : JSON.stringify(body);
  return (await nc.request(subject, enc.encode(payload), { timeout: 5000 })).json<Record<string, unknown>>();
}

const errCode = (r: Record<string, unknown>) => (r.error as { err_code?: number } | undefined)?.err_code;

/** How many streams a node holds (its /jsz). */
async function streamsOn(node: ClusterNode): Promise<number> {
  return ((await (await fetch(`http://127.0.0.1:${node.httpPort}/jsz`)).json()) as { streams: number }).streams;
}

describe("removing peers", () => {
  test("STREAM.PEER.REMOVE: the free node takes the removed replica's place and has the messages", async () => {
    const nodes = await threeJetStreamNodes();
    const nc = await connect({ servers: nodes.map((n) => n.hostport), reconnectTimeWait: 100, maxReconnectAttempts: -1, timeout: 5000 });
    const jsm = await jetstreamManager(nc);
    const js = jetstream(nc);
    await jsm.streams.add({ name: "PR", subjects: ["pr.>"], num_replicas: 2 });
    for (let i = 1; i <= 5; i++) await js.publish(`pr.${i}`, enc.encode(String(i)), { msgID: `m${i}` });

    const subject = "$JS.API.STREAM.PEER.REMOVE.PR";
    expect(errCode(await ask(nc, subject, ""))).toBe(10003);
    expect(errCode(await ask(nc, subject, "{}"))).toBe(10003);
    expect(errCode(await ask(nc, subject, "{nope"))).toBe(10025);
    expect(errCode(await ask(nc, subject, { peer: "NOBODY" }))).toBe(10040);
    expect(errCode(await ask(nc, "$JS.API.STREAM.PEER.REMOVE.NOPE", { peer: "N0" }))).toBe(10059);

    const info = await jsm.streams.info("PR");
    const leader = info.cluster!.leader!;
    const removed = info.cluster!.replicas![0]!.name;
    const free = nodes.map((n) => n.name).find((n) => n !== leader && n !== removed)!;
    const answer = await ask(nc, subject, { peer: removed });
    expect(answer).toEqual({ type: "io.nats.jetstream.api.v1.stream_remove_peer_response", success: true });
    await waitFor(`${free} replaces ${removed}, current; ${removed} holds nothing`, async () => {
      const s = await jsm.streams.info("PR").catch(() => null);
      const names = [s?.cluster?.leader, ...(s?.cluster?.replicas ?? []).map((r) => r.name)].sort();
      const current = (s?.cluster?.replicas ?? []).every((r) => r.current);
      return current && JSON.stringify(names) === JSON.stringify([leader, free].sort()) && (await streamsOn(nodes.find((n) => n.name === removed)!)) === 0;
    }, 20_000);
    // The new replica leads and has the messages (and their Msg-Ids).
    await waitFor(`${free} leads PR`, async () => {
      if ((await jsm.streams.info("PR").catch(() => null))?.cluster?.leader === free) return true;
      await nc.request("$JS.API.STREAM.LEADER.STEPDOWN.PR", new Uint8Array(), { timeout: 3000 }).catch(() => null);
      return false;
    }, 20_000);
    expect((await jsm.streams.info("PR")).state.messages).toBe(5);
    expect((await js.publish("pr.3", enc.encode("again"), { msgID: "m3" })).duplicate).toBe(true);
    expect((await js.publish("pr.6", enc.encode("6"))).seq).toBe(6);
    await nc.close();
  }, 60_000);

  test("SERVER.REMOVE from the system account: an offline server leaves the meta group", async () => {
    const conf = path.join(storeDir(), "accounts.conf");
    writeFileSync(conf, ACCOUNTS);
    const nodes = await threeJetStreamNodes(["-c", conf]);
    const metaLeader = await waitForMeta(nodes);
    // Connected to the meta leader (not the node about to be killed: a request while reconnecting may be lost).
    const admin = await connect({ servers: nodes.find((n) => n.name === metaLeader)!.hostport, user: "admin", pass: "adminpw", reconnect: false });
    const subject = "$JS.API.SERVER.REMOVE";
    let empty: Record<string, unknown> | null = null;
    await waitFor("the meta leader answers SERVER.REMOVE", async () => (empty = await admin.request(subject, new Uint8Array(), { timeout: 1000 }).then((m) => m.json<Record<string, unknown>>(), () => null)) !== null);
    expect(errCode(empty!)).toBe(10003);
    expect(errCode(await ask(admin, subject, { peer: "NOBODY" }))).toBe(10044);

    const victim = nodes.find((n) => n.name !== metaLeader)!;
    await victim.kill9();
    const survivors = nodes.filter((n) => n !== victim);
    const answer = await ask(admin, subject, { peer: victim.name });
    expect(answer).toEqual({ type: "io.nats.jetstream.api.v1.meta_server_remove_response", success: true });
    await waitFor("a meta group of the two others", async () => {
      const views = await Promise.all(survivors.map(metaCluster));
      return views.every((v) => v !== undefined && v.cluster_size === 2 && v.leader !== "");
    }, 20_000);
    // The cluster goes on: an R2 stream on the two that are left.
    const app = await connect({ servers: survivors.map((n) => n.hostport), user: "app", pass: "apppw", timeout: 5000 });
    const jsm = await jetstreamManager(app);
    expect((await jsm.streams.add({ name: "AFTER", subjects: ["after.>"], num_replicas: 2 })).config.num_replicas).toBe(2);
    // The removed server comes back with its old meta log: it learns of its removal and disables its
    // JetStream (as nats-server's does once it applies the removal); the group stays the two others.
    await victim.start();
    await waitFor("the restarted server knows it was removed", () => victim.log().includes("JetStream being DISABLED, our server was removed from the cluster"), 20_000);
    // natter keeps it out of the group; nats-server 2.9.10's /jsz counts it in cluster_size again.
    if (serverKind === "natter") expect((await Promise.all(survivors.map(metaCluster))).map((v) => v?.cluster_size)).toEqual([2, 2]);
    await app.close();
    await admin.close();
  }, 60_000);

  test("SERVER.REMOVE of a running server leading a stream: the free node replaces it, it serves nothing more", async () => {
    const conf = path.join(storeDir(), "accounts.conf");
    writeFileSync(conf, ACCOUNTS);
    const nodes = await threeJetStreamNodes(["-c", conf]);
    const metaLeader = await waitForMeta(nodes);
    const admin = await connect({ servers: nodes.find((n) => n.name === metaLeader)!.hostport, user: "admin", pass: "adminpw", reconnect: false });
    const app = await connect({ servers: nodes.find((n) => n.name === metaLeader)!.hostport, user: "app", pass: "apppw", timeout: 5000 });
    const jsm = await jetstreamManager(app);
    const js = jetstream(app);
    await jsm.streams.add({ name: "LIVE", subjects: ["live.>"], num_replicas: 2 });
    for (let i = 1; i <= 5; i++) await js.publish(`live.${i}`, enc.encode(String(i)));
    // The victim leads LIVE (an R2 group's leader cannot just stop: the other one alone has no quorum).
    if ((await jsm.streams.info("LIVE")).cluster!.leader === metaLeader) await app.request("$JS.API.STREAM.LEADER.STEPDOWN.LIVE", new Uint8Array(), { timeout: 5000 });
    let info = await jsm.streams.info("LIVE");
    await waitFor("LIVE led by a node that does not lead the meta group", async () => {
      info = await jsm.streams.info("LIVE");
      return info.cluster?.leader !== undefined && info.cluster.leader !== metaLeader;
    });
    const holders = [info.cluster!.leader!, ...info.cluster!.replicas!.map((r) => r.name)];
    const victim = nodes.find((n) => n.name === info.cluster!.leader)!;
    const free = nodes.find((n) => !holders.includes(n.name))!;
    await waitFor("the meta leader answers SERVER.REMOVE", async () => (await admin.request("$JS.API.SERVER.REMOVE", enc.encode(JSON.stringify({ peer: victim.name })), { timeout: 1000 }).then((m) => m.json<Record<string, unknown>>(), () => null))?.success === true);
    await waitFor(`${free.name} replaces ${victim.name}; ${victim.name} holds nothing`, async () => {
      const s = await jsm.streams.info("LIVE").catch(() => null);
      const names = [s?.cluster?.leader, ...(s?.cluster?.replicas ?? []).map((r) => r.name)];
      return names.includes(free.name) && !names.includes(victim.name) && (s?.cluster?.replicas ?? []).every((r) => r.current) && (await streamsOn(victim)) === 0;
    }, 20_000);
    const views = await Promise.all(nodes.filter((n) => n !== victim).map(metaCluster));
    expect(views.map((v) => v?.cluster_size)).toEqual([2, 2]);
    expect((await js.publish("live.6", enc.encode("6"))).seq).toBe(6);
    expect((await jsm.streams.info("LIVE")).state.messages).toBe(6);
    await app.close();
    await admin.close();
  }, 60_000);
});
