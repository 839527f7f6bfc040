// Two JetStream nodes that could not reach each other at their very first start each found a meta group
// of their own (meta-group.ts). When they meet, the groups merge if one of them holds no streams: its
// members drop their meta log and the other group's leader adds them, so the cluster is one JetStream again
// (one meta leader, each request answered once). If both hold streams nothing is merged or mixed: each
// node reports the conflict (/healthz 503, /jsz meta_cluster.conflict, an error in its log). About 20 s for
// the three (each node is a process that must found its group before the groups can meet).
// natter only: nats-server's meta group is founded from its configured routes, not by this discovery.
import { describe, expect } from "vitest";
import { startNode, waitFor, waitForMesh, type ClusterNode } from "./spawn.ts";
import { answers, client, metaCluster, natterOnly, storeDir, waitForMeta } from "./js-cluster.ts";

/** A node alone (no seed): it founds its own meta group. */
async function alone(name: string, dir: string): Promise<ClusterNode> {
  const node = await startNode({ name, monitor: true, extraArgs: ["-js", "--store_dir", dir] });
  await waitForMeta([node]);
  return node;
}

/** `node` stopped and started again on its cluster port and store, now with `seed` as its route. */
async function restartWithSeed(node: ClusterNode, dir: string, seed: ClusterNode): Promise<ClusterNode> {
  await node.stop();
  return startNode({ name: node.name, monitor: true, clusterPort: node.clusterPort, seeds: [seed.clusterPort], extraArgs: ["-js", "--store_dir", dir] });
}

async function health(node: ClusterNode): Promise<{ code: number; body: { status: string; error?: string } }> {
  const r = await fetch(`http://127.0.0.1:${node.httpPort}/healthz`);
  return { code: r.status, body: (await r.json()) as { status: string; error?: string } };
}

async function createStream(node: ClusterNode, name: string): Promise<Record<string, unknown>[]> {
  return answers(await client(node), `$JS.API.STREAM.CREATE.${name}`, JSON.stringify({ name, subjects: [`${name.toLowerCase()}.>`] }));
}

describe("meta groups founded apart", () => {
  natterOnly("two empty groups meet: they become one group of two, and a stream created then is answered once", async () => {
    const a = await alone("A", storeDir());
    const bDir = storeDir();
    const b = await restartWithSeed(await alone("B", bDir), bDir, a);
    await waitForMesh([a, b]);
    const leader = await waitForMeta([a, b]);
    expect(`${a.log()}${b.log()}`).toContain("to be added to the other as a fresh node");
    const groups = await Promise.all([a, b].map(async (n) => ((await metaCluster(n)) as { group?: string } | undefined)?.group));
    expect(groups[0]).toMatch(/^127\.0\.0\.1:\d+@/);
    expect(groups[1]).toBe(groups[0]);

    const created = await createStream(b, "AFTER");
    expect(created.length).toBe(1);
    expect(created[0]!.error).toBeUndefined();
    for (const node of [a, b]) {
      const info = await answers(await client(node), "$JS.API.STREAM.INFO.AFTER");
      expect(info.length).toBe(1);
      expect(info[0]!.error).toBeUndefined();
      expect((await metaCluster(node))?.leader).toBe(leader);
      expect((await health(node)).code).toBe(200);
    }
  }, 30_000);

  natterOnly("an empty group of two meets a group of one holding a stream: both of its members join the other", async () => {
    const a = await alone("A", storeDir());
    expect((await createStream(a, "KEEP")).map((r) => r.error)).toEqual([undefined]);
    const bDir = storeDir();
    const b0 = await alone("B", bDir);
    const c = await startNode({ name: "C", monitor: true, seeds: [b0.clusterPort], extraArgs: ["-js", "--store_dir", storeDir()] });
    await waitForMeta([b0, c]);
    const b = await restartWithSeed(b0, bDir, a);
    await waitForMesh([a, b, c]);
    expect(await waitForMeta([a, b, c])).toBe("A");
    for (const node of [a, b, c]) {
      const info = await answers(await client(node), "$JS.API.STREAM.INFO.KEEP");
      expect(info.length).toBe(1);
      expect((info[0]!.cluster as { leader: string }).leader).toBe("A");
    }
  }, 40_000);

  natterOnly("two groups that both hold streams meet: the conflict is reported on each node, nothing is mixed; once one side's stream is deleted they merge", async () => {
    const a = await alone("A", storeDir());
    expect((await createStream(a, "ONA")).map((r) => r.error)).toEqual([undefined]);
    const bDir = storeDir();
    const b0 = await alone("B", bDir);
    expect((await createStream(b0, "ONB")).map((r) => r.error)).toEqual([undefined]);
    const b = await restartWithSeed(b0, bDir, a);
    await waitForMesh([a, b]);

    for (const node of [a, b]) {
      await waitFor(`${node.name} reports the conflict`, async () => (await health(node)).body.error?.includes("conflict") === true, 15_000);
      const { code, body } = await health(node);
      expect(code).toBe(503);
      expect(body.status).toBe("unavailable");
      expect(body.error).toMatch(/^JetStream meta group conflict: this server's meta group .* \(1 voter, 1 stream\) and [AB]'s meta group .* \(1 voter, 1 stream\) both hold streams; they are not merged$/);
      expect(node.log()).toContain("[ERR] JetStream meta group conflict");
    }
    // Each is still a group of one, led by itself (B, restarted, elects itself again), holding its own stream.
    await waitFor("B leads its group again", async () => (await metaCluster(b))?.leader === "B");
    const [ma, mb] = await Promise.all([metaCluster(a), metaCluster(b)]);
    expect([ma?.leader, ma?.cluster_size, mb?.leader, mb?.cluster_size]).toEqual(["A", 1, "B", 1]);
    expect((ma as { conflict?: string } | undefined)?.conflict).toContain("both hold streams");
    expect((mb as { conflict?: string } | undefined)?.conflict).toContain("both hold streams");
    for (const [node, stream] of [[a, "ONA"], [b, "ONB"]] as const) {
      const info = await answers(await client(node), `$JS.API.STREAM.INFO.${stream}`);
      expect(info.some((r) => r.error === undefined && (r.cluster as { leader: string }).leader === node.name)).toBe(true);
    }
    // The operator deletes B's stream (each group's leader answers: B deletes it, A does not know it): B's
    // group is empty now and dissolves into A's.
    const deleted = await answers(await client(b), "$JS.API.STREAM.DELETE.ONB");
    expect(deleted.some((r) => r.success === true)).toBe(true);
    expect(await waitForMeta([a, b])).toBe("A");
    await waitFor("both healthy", async () => (await health(a)).code === 200 && (await health(b)).code === 200);
  }, 30_000);
});
