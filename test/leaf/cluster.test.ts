// A natter cluster whose every node is a leaf of the same hub (nats-server's recommended edge layout):
// a message seen by the cluster and by the hub arrives once everywhere, never loops, and a queue group
// spread over the cluster and the hub gets each message once.
import { describe, expect, test } from "vitest";
import { StringCodec } from "nats";
import { HAS_NATS_SERVER, client, collect, logs, subject, waitForFlow } from "./helpers.ts";
import { HOST, startProc, waitFor, type Kind, type Proc } from "./spawn.ts";

const sc = StringCodec();

async function edgeCluster(hubKind: Kind): Promise<{ hub: Proc; x: Proc; y: Proc }> {
  const hub = await startProc(hubKind, { name: "HUB", config: `leafnodes { listen: "${HOST}:{{leaf_port}}" }\n` });
  const remote = `leafnodes { remotes [ { url: "nats-leaf://${HOST}:${hub.leafPort}" } ] }\n`;
  const x = await startProc("natter", { name: "X", config: `cluster { name: edge, listen: "${HOST}:{{cluster_port}}" }\n${remote}` });
  const y = await startProc("natter", { name: "Y", config: `cluster { name: edge, listen: "${HOST}:{{cluster_port}}", routes: ["nats://${HOST}:${x.clusterPort}"] }\n${remote}` });
  return { hub, x, y };
}

for (const hubKind of ["nats-server", "natter"] as Kind[]) {
  describe.skipIf(hubKind === "nats-server" && !HAS_NATS_SERVER)(`a natter cluster (2 nodes, each a leaf) under a ${hubKind} hub`, () => {
    test("every message once on every node and at the hub, from wherever it is published", async () => {
      const { hub, x, y } = await edgeCluster(hubKind);
      const detail = logs(hub, x, y);
      const [hc, xc, yc] = [await client(hub), await client(x), await client(y)];
      const s = subject("edge");
      const atHub = collect(hc, s);
      const atX = collect(xc, s);
      const atY = collect(yc, s);
      await Promise.all([hc.flush(), xc.flush(), yc.flush()]);
      // Interest everywhere: hub → X, hub → Y, X → Y (route), X → hub, Y → hub.
      for (const [from, to, what] of [[hc, xc, "hub → X"], [hc, yc, "hub → Y"], [xc, yc, "X → Y"], [yc, xc, "Y → X"], [xc, hc, "X → hub"], [yc, hc, "Y → hub"]] as const) {
        await waitForFlow(from, to, `the links to carry ${what}`, 15_000, detail);
      }
      const n = 100;
      const counts = () => [atHub, atX, atY].map((c) => c.msgs.filter((m) => sc.decode(m.data).startsWith("m")).length);
      for (const [publisher, name] of [[hc, "hub"], [xc, "X"], [yc, "Y"]] as const) {
        const before = counts();
        for (let i = 0; i < n; i++) publisher.publish(s, sc.encode(`m-${name}-${i}`));
        await publisher.flush();
        await waitFor(`every message published at ${name} everywhere`, () => counts().every((c, k) => c - before[k]! >= n), 10_000, detail);
        // Anything duplicated would be in flight by now: round trips through every node.
        await Promise.all([hc.flush(), xc.flush(), yc.flush()]);
        await waitForFlow(publisher, hc, "a last probe", 5000, detail);
        expect(counts().map((c, k) => c - before[k]!), `published at ${name}`).toEqual([n, n, n]);
      }
    });

    test("a queue group over the cluster and the hub: each message to one member", async () => {
      const { hub, x, y } = await edgeCluster(hubKind);
      const detail = logs(hub, x, y);
      const [hc, xc, yc] = [await client(hub), await client(x), await client(y)];
      const s = subject("edgeq");
      const members = [collect(xc, s, "q"), collect(yc, s, "q")];
      await Promise.all([xc.flush(), yc.flush()]);
      await waitFor("the group to be known at the hub", async () => {
        hc.publish(s, sc.encode("warmup"));
        await hc.flush();
        return members.some((m) => m.count() > 0);
      }, 15_000, detail);
      const got = () => members.flatMap((m) => m.msgs.map((msg) => sc.decode(msg.data)).filter((p) => p.startsWith("job-")));
      const n = 200;
      for (let i = 0; i < n; i++) hc.publish(s, sc.encode(`job-${i}`));
      await hc.flush();
      await waitFor("every message to one member", () => got().length >= n, 10_000, detail);
      await Promise.all([hc.flush(), xc.flush(), yc.flush()]);
      expect(got().length).toBe(n);
      expect(new Set(got()).size).toBe(n);
      // From inside the cluster, with a member at the hub too: still once each (local members first).
      const hubMember = collect(hc, s, "q");
      await hc.flush();
      const before = got().length;
      for (let i = 0; i < n; i++) xc.publish(s, sc.encode(`v${i}`));
      await xc.flush();
      const vs = () => [...members, hubMember].flatMap((m) => m.msgs.map((msg) => sc.decode(msg.data)).filter((p) => p.startsWith("v")));
      await waitFor("every message to one member", () => vs().length >= n, 10_000, detail);
      await Promise.all([hc.flush(), xc.flush(), yc.flush()]);
      expect(vs().length).toBe(n);
      expect(new Set(vs()).size).toBe(n);
      expect(hubMember.count()).toBe(0); // X has a member of its own
      expect(got().length).toBe(before);
    });
  });
}

describe.skipIf(!HAS_NATS_SERVER)("a natter hub with two leaf nodes (a natter and a nats-server)", () => {
  test("leaf to leaf through the hub: pub/sub, queue groups, request-reply, no responders", async () => {
    const hub = await startProc("natter", { name: "HUB", config: `leafnodes { listen: "${HOST}:{{leaf_port}}" }\n` });
    const remote = `leafnodes { remotes [ { url: "nats-leaf://${HOST}:${hub.leafPort}" } ] }\n`;
    const a = await startProc("natter", { name: "A", config: remote });
    const b = await startProc("nats-server", { name: "B", config: remote });
    const detail = logs(hub, a, b);
    const [ac, bc] = [await client(a), await client(b)];
    await waitForFlow(ac, bc, "A → B", 15_000, detail);
    await waitForFlow(bc, ac, "B → A", 15_000, detail);
    const s = subject("l2l");
    const atB = collect(bc, s);
    const members = [collect(ac, `${s}.q`, "q"), collect(bc, `${s}.q`, "q")];
    bc.subscribe(`${s}.svc`, { callback: (_e, m) => m.respond(sc.encode("from-b")) });
    await Promise.all([ac.flush(), bc.flush()]);
    await waitForFlow(ac, bc, "A → B again", 15_000, detail);
    await waitFor("the service at A", async () => ac.request(`${s}.svc`, sc.encode(""), { timeout: 500 }).then(() => true, () => false), 10_000, detail);
    const n = 100;
    for (let i = 0; i < n; i++) ac.publish(s, sc.encode(`p${i}`));
    await ac.flush();
    await waitFor("all at B", () => atB.count() >= n, 10_000, detail);
    await bc.flush();
    expect(atB.count()).toBe(n);
    // A queue group with members at A and at B, published at A: A's own member takes all.
    const qs = (c: { msgs: { data: Uint8Array }[] }, prefix: string) => c.msgs.filter((m) => sc.decode(m.data).startsWith(prefix)).length;
    await waitFor("B's member to be subscribed", async () => {
      bc.publish(`${s}.q`, sc.encode("warmup")); // published at B: B's own member takes it
      await bc.flush();
      return qs(members[1]!, "warmup") > 0;
    }, 10_000, detail);
    for (let i = 0; i < n; i++) ac.publish(`${s}.q`, sc.encode(`a${i}`));
    await ac.flush();
    await waitFor("A's member to get all", () => qs(members[0]!, "a") >= n, 10_000, detail);
    await bc.flush();
    expect(qs(members[0]!, "a")).toBe(n);
    expect(qs(members[1]!, "a")).toBe(0);
    // A's member leaves: A's publishes cross the hub to B's member, once each.
    members[0]!.sub.unsubscribe();
    await ac.flush();
    await waitFor("the group at B to be reached from A", async () => {
      ac.publish(`${s}.q`, sc.encode("probe"));
      await ac.flush();
      return qs(members[1]!, "probe") > 0;
    }, 10_000, detail);
    for (let i = 0; i < n; i++) ac.publish(`${s}.q`, sc.encode(`b${i}`));
    await ac.flush();
    await waitFor("B's member to get all", () => qs(members[1]!, "b") >= n, 10_000, detail);
    await bc.flush();
    expect(qs(members[1]!, "b")).toBe(n);
    expect(sc.decode((await ac.request(`${s}.svc`, sc.encode(""), { timeout: 2000 })).data)).toBe("from-b");
    const error = await ac.request(`${s}.nobody`, sc.encode(""), { timeout: 5000 }).then(() => null, (e: Error & { code?: string }) => e);
    expect(error?.code).toBe("503");
  });
});
