// A replica whose store was wiped rebuilds from its peers (issue 13, faults): the node comes back with an
// empty store directory, rejoins the meta group as itself, gets the stream assigned to it again, and copies
// the messages from the stream's leader (the group's log was compacted, so replaying it cannot), then
// takes part again.
import { describe, expect, test } from "vitest";
import { existsSync, readdirSync, rmSync } from "node:fs";
import path from "node:path";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { waitFor, type ClusterNode } from "./spawn.ts";
import { natterOnly, storeDirs, threeJetStreamNodes, waitForMeta } from "./js-cluster.ts";

const enc = new TextEncoder();

describe("a replica whose store was wiped", () => {
  natterOnly("rebuilds from its peers after the group compacted its log", async () => {
    const nodes = await threeJetStreamNodes();
    const metaLeader = await waitForMeta(nodes);
    const nc = await connect({ servers: nodes.filter((n) => n.name === metaLeader).map((n) => n.hostport), timeout: 5000 });
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: "W", subjects: ["w.>"], num_replicas: 3, allow_direct: true });
    const js = jetstream(nc);
    const total = 1200;
    // Every tenth message is 32 KiB: what the leader sends back in one copying answer must still fit a
    // route frame (max_payload + 256 KiB), whatever the messages' sizes.
    const body = (i: number) => (i % 10 === 9 ? enc.encode(String(i).padEnd(32 * 1024, ".")) : enc.encode(String(i)));
    for (let i = 0; i < total; i += 100) {
      await Promise.all(Array.from({ length: 100 }, (_, j) => js.publish(`w.${i + j}`, body(i + j), { msgID: `w${i + j}` })));
    }
    const snapshotOf = (node: ClusterNode) => {
      const sys = path.join(storeDirs.get(node)!, "jetstream", "$SYS", "_js_");
      return existsSync(sys) && readdirSync(sys).some((g) => g.startsWith("S-") && existsSync(path.join(sys, g, "snapshot")));
    };
    await waitFor("the group compacted its log", () => nodes.every(snapshotOf), 15_000);

    const leader = (await jsm.streams.info("W")).cluster!.leader!;
    const victim = nodes.find((n) => n.name !== leader && n.name !== metaLeader)!;
    await victim.kill9();
    rmSync(storeDirs.get(victim)!, { recursive: true, force: true });
    await victim.start();
    await waitForMeta(nodes);
    await waitFor("the wiped replica current again", async () => {
      const info = await jsm.streams.info("W").catch(() => null);
      return info?.cluster?.replicas?.find((r) => r.name === victim.name)?.current === true;
    }, 20_000);
    // Its own copy (its /jsz shows its local store): every message, with their sequences.
    type Jsz = { account_details?: { stream_detail?: { name: string; state: { messages: number; first_seq: number; last_seq: number } }[] }[] };
    const localState = async () => {
      const j = (await (await fetch(`http://127.0.0.1:${victim.httpPort}/jsz?streams=true`)).json()) as Jsz;
      return (j.account_details ?? []).flatMap((a) => a.stream_detail ?? []).find((d) => d.name === "W")?.state;
    };
    await waitFor("the rebuilt copy has every message", async () => (await localState())?.messages === total);
    expect(await localState()).toMatchObject({ messages: total, first_seq: 1, last_seq: total });
    // The copies are the messages: a large one read back from the rebuilt node (a direct get is answered
    // by the replica on the requester's own node).
    const own = await connect({ servers: victim.hostport, timeout: 5000 });
    try {
      const copy = await (await jetstreamManager(own)).direct.getMessage("W", { seq: 1000 });
      expect(new TextDecoder().decode(copy?.data)).toBe(new TextDecoder().decode(body(999)));
    } finally {
      await own.close();
    }
    // And it goes on taking part: one more publish reaches it too.
    expect((await js.publish("w.after", enc.encode("after"))).seq).toBe(total + 1);
    await waitFor("the rebuilt replica has the new message", async () => (await localState())?.last_seq === total + 1);
    await nc.close();
  }, 60_000);
});
