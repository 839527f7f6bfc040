// Atomic batch publish on a replicated stream (nats-server 2.12, `allow_atomic` with num_replicas 3): the
// commit's PubAck comes once the whole batch is stored on a majority; every replica has all of it or none,
// so a kill -9 of the leader loses nothing acknowledged and shows no part of a batch. nats-server 2.9 has no
// batches: against nats-server this needs a 2.12 binary (NATTER_TEST_SERVER=nats-server NATS_SERVER_BIN=...).
import { describe, expect, test } from "vitest";
import { jetstream, jetstreamManager, type StreamInfo } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { serverKind } from "../harness/server.ts";
import { waitFor, type ClusterNode } from "./spawn.ts";
import { natterOnly, threeJetStreamNodes } from "./js-cluster.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const needsBatches = serverKind === "natter" || process.env.NATS_SERVER_BIN !== undefined ? test : test.skip;

async function clusterClient(nodes: ClusterNode[]): Promise<NatsConnection> {
  return connect({ servers: nodes.map((n) => n.hostport), reconnectTimeWait: 100, maxReconnectAttempts: -1, timeout: 5000 });
}

/** The stream's info, or null while the cluster cannot answer (a failover, the client reconnecting). */
async function info(nc: NatsConnection, stream: string): Promise<StreamInfo | null> {
  try {
    return await (await jetstreamManager(nc, { timeout: 2000 })).streams.info(stream);
  } catch {
    return null;
  }
}

describe("atomic batches on a replicated stream (R3)", () => {
  needsBatches("the commit is acknowledged once stored; after kill -9 of the leader the new one has the whole batch; a batch cut by the failover leaves nothing", async () => {
    const nodes = await threeJetStreamNodes();
    const nc = await clusterClient(nodes);
    const jsm = await jetstreamManager(nc, { timeout: 15_000 }); // generous: a busy machine slows the first election
    await jsm.streams.add({ name: "OUTBOX", subjects: ["ob.>"], num_replicas: 3, allow_atomic: true } as Parameters<typeof jsm.streams.add>[0]);
    let si: StreamInfo | null = null;
    await waitFor("two current replicas", async () => {
      si = await info(nc, "OUTBOX");
      return si?.cluster?.replicas?.length === 2 && si.cluster.replicas.every((r) => r.current);
    }, 20_000);
    expect(si!.config).toMatchObject({ allow_atomic: true, num_replicas: 3 });

    const js = jetstream(nc);
    const batch = await js.startBatch("ob.orders", "order-1");
    batch.add("ob.events", "event-1");
    await batch.add("ob.events", "event-2", { ack: true }); // staged on the leader, not stored
    expect((await info(nc, "OUTBOX"))!.state.messages).toBe(0);
    const ack = await batch.commit("ob.events", "event-3");
    expect(ack).toMatchObject({ stream: "OUTBOX", seq: 4, batch: batch.id, count: 4 });

    // A second batch opened on this leader and cut by its death: none of it may appear anywhere.
    const cut = await js.startBatch("ob.orders", "order-2");
    await cut.add("ob.events", "cut-1", { ack: true });

    const leaderName = (await info(nc, "OUTBOX"))!.cluster!.leader!;
    const leader = nodes.find((n) => n.name === leaderName)!;
    await leader.kill9();
    await waitFor("a new leader with the whole first batch", async () => {
      const s = await info(nc, "OUTBOX");
      return s !== null && s.cluster?.leader !== undefined && s.cluster.leader !== leaderName && s.state.messages === 4;
    }, 30_000);
    // The cut batch's commit reaches a leader that never staged it: refused, nothing stored.
    await expect(cut.commit("ob.events", "cut-commit")).rejects.toThrow();
    const messages: string[] = [];
    for (let seq = 1; seq <= 4; seq++) messages.push(dec.decode((await jsm.streams.getMessage("OUTBOX", { seq }))!.data));
    expect(messages).toEqual(["order-1", "event-1", "event-2", "event-3"]);
    const last = await jsm.streams.getMessage("OUTBOX", { seq: 4 });
    expect([last!.header.get("Nats-Batch-Id"), last!.header.get("Nats-Batch-Commit")]).toEqual([batch.id, "1"]);

    // The killed node comes back with the same four, none of the cut batch; new batches still commit.
    await leader.start();
    await waitFor("the restarted replica current", async () => {
      const s = await info(nc, "OUTBOX");
      return s?.cluster?.replicas?.find((r) => r.name === leaderName)?.current === true;
    }, 30_000);
    const again = await js.startBatch("ob.orders", "order-3");
    const ack2 = await again.commit("ob.events", "event-4");
    expect(ack2).toMatchObject({ seq: 6, count: 2 });
    expect((await info(nc, "OUTBOX"))!.state.messages).toBe(6);
    await nc.close();
  }, 90_000);

  natterOnly("batches committed while the leader is killed: each batch is on every replica whole or not at all, every acknowledged one there", async () => {
    const nodes = await threeJetStreamNodes();
    const nc = await clusterClient(nodes);
    const jsm = await jetstreamManager(nc, { timeout: 15_000 }); // generous: a busy machine slows the first election
    await jsm.streams.add({ name: "TX", subjects: ["tx.>"], num_replicas: 3, allow_atomic: true } as Parameters<typeof jsm.streams.add>[0]);
    await waitFor("two current replicas", async () => (await info(nc, "TX"))?.cluster?.replicas?.every((r) => r.current) === true, 20_000);
    const js = jetstream(nc);
    const SIZE = 5;
    const acked: string[] = [];
    let killed: ClusterNode | null = null;
    const deadline = Date.now() + 45_000;
    for (let n = 0; acked.length < 12 && Date.now() < deadline; n++) {
      if (acked.length === 4 && killed === null) {
        const leaderName = (await info(nc, "TX"))?.cluster?.leader;
        killed = nodes.find((x) => x.name === leaderName) ?? null;
        void killed?.kill9(); // not awaited: the next batch is on its way while the leader dies
      }
      try {
        const b = await js.startBatch("tx.a", `b${n}-1`, { timeout: 1500 });
        for (let k = 2; k < SIZE; k++) b.add("tx.a", `b${n}-${k}`);
        const ack = await b.commit("tx.a", `b${n}-${SIZE}`);
        acked.push(ack.batch!);
      } catch {
        // No leader yet (no responders: only a leader listens on the stream's subjects, as in nats-server), or
        // the batch was cut by the failover: the client sees an error and nothing of it is stored. Retry paced.
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    expect(killed).not.toBeNull();
    expect(acked.length).toBe(12);
    await killed!.start();
    await waitFor("the restarted replica current", async () => {
      const s = await info(nc, "TX");
      return s?.cluster?.replicas?.find((r) => r.name === killed!.name)?.current === true;
    }, 30_000);
    const total = (await info(nc, "TX"))!.state.messages;
    const byBatch = new Map<string, string[]>();
    for (let seq = 1; seq <= total; seq++) {
      const m = await jsm.streams.getMessage("TX", { seq });
      const id = m!.header.get("Nats-Batch-Id");
      byBatch.set(id, [...(byBatch.get(id) ?? []), dec.decode(m!.data)]);
    }
    for (const [id, got] of byBatch) {
      expect(got.length, `batch ${id}`).toBe(SIZE);
      const n = got[0]!.split("-")[0];
      expect(got).toEqual(Array.from({ length: SIZE }, (_, k) => `${n}-${k + 1}`));
    }
    for (const id of acked) expect(byBatch.has(id), `acknowledged batch ${id}`).toBe(true);
    // Every replica holds the same count (its own /jsz).
    await waitFor("every replica with the same messages", async () => {
      const counts = await Promise.all(nodes.map(async (node) => {
        const jsz = (await (await fetch(`http://127.0.0.1:${node.httpPort}/jsz?streams=true`)).json()) as {
          account_details?: { stream_detail?: { name: string; state: { messages: number } }[] }[];
        };
        return (jsz.account_details ?? []).flatMap((a) => a.stream_detail ?? []).find((s) => s.name === "TX")?.state.messages;
      }));
      return counts.every((c) => c === total);
    }, 20_000);
    await nc.close();
  }, 120_000);
});
