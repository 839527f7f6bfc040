// A natter cluster as the hub: a leaf node (nats-server, and natter) attached to node A of a 2-node
// natter cluster is served by the whole cluster. Its interest reaches node B over the route, messages
// published on B reach it (through A, never back over a route), and what it publishes reaches B's
// subscribers; queue groups get each message once cluster-wide and over the link; request-reply works
// both ways. Every count is exact: no duplicates, no loops.
import { describe, expect, test } from "vitest";
import { StringCodec, type NatsConnection } from "nats";
import { HAS_NATS_SERVER, client, collect, logs, subject, waitForFlow, type Collected } from "./helpers.ts";
import { HOST, startProc, waitFor, type Kind, type Proc } from "./spawn.ts";

const sc = StringCodec();

interface Setup {
  a: Proc;
  b: Proc;
  leaf: Proc;
  ac: NatsConnection;
  bc: NatsConnection;
  lc: NatsConnection;
  detail: () => string;
}

async function hubCluster(leafKind: Kind): Promise<Setup> {
  const hubLeaf = `leafnodes { listen: "${HOST}:{{leaf_port}}" }\n`;
  const a = await startProc("natter", { name: "A", config: `cluster { name: hub, listen: "${HOST}:{{cluster_port}}" }\n${hubLeaf}` });
  const b = await startProc("natter", { name: "B", config: `cluster { name: hub, listen: "${HOST}:{{cluster_port}}", routes: ["nats://${HOST}:${a.clusterPort}"] }\n${hubLeaf}` });
  const leaf = await startProc(leafKind, { name: "LEAF", config: `leafnodes { reconnect: 1, remotes [ { url: "nats-leaf://${HOST}:${a.leafPort}" } ] }\n` });
  const detail = logs(a, b, leaf);
  const [ac, bc, lc] = [await client(a), await client(b), await client(leaf)];
  for (const [from, to, what] of [[lc, bc, "leaf → B"], [bc, lc, "B → leaf"], [ac, bc, "A → B"]] as const) {
    await waitForFlow(from, to, `the links to carry ${what}`, 15_000, detail);
  }
  return { a, b, leaf, ac, bc, lc, detail };
}

/** Round trips through every server: anything duplicated would have arrived by then. */
async function settle(s: Setup): Promise<void> {
  await Promise.all([s.ac.flush(), s.bc.flush(), s.lc.flush()]);
  await waitForFlow(s.bc, s.lc, "a last probe B → leaf", 5000, s.detail);
  await waitForFlow(s.lc, s.bc, "a last probe leaf → B", 5000, s.detail);
}

const payloads = (c: Collected, prefix: string) => c.msgs.map((m) => sc.decode(m.data)).filter((p) => p.startsWith(prefix));

for (const leafKind of ["nats-server", "natter"] as Kind[]) {
  describe.skipIf(leafKind === "nats-server" && !HAS_NATS_SERVER)(`a ${leafKind} leaf attached to node A of a natter cluster`, () => {
    test("pub/sub both ways across the cluster: every message once, in order, everywhere", async () => {
      const s = await hubCluster(leafKind);
      const subj = subject("hubc");
      const at = { a: collect(s.ac, subj), b: collect(s.bc, subj), leaf: collect(s.lc, subj), leafWild: collect(s.lc, `${subj.split(".")[0]}.>`) };
      await Promise.all([s.ac.flush(), s.bc.flush(), s.lc.flush()]);
      await waitFor("interest everywhere", async () => {
        s.bc.publish(subj, sc.encode("warm"));
        s.lc.publish(subj, sc.encode("warm"));
        await Promise.all([s.bc.flush(), s.lc.flush()]);
        return at.leaf.count() > 0 && at.b.count() > 0 && at.leafWild.count() > 0;
      }, 15_000, s.detail);
      const n = 200;
      for (const [publisher, name] of [[s.bc, "B"], [s.lc, "leaf"], [s.ac, "A"]] as const) {
        for (let i = 0; i < n; i++) publisher.publish(subj, sc.encode(`m-${name}-${i}`));
        await publisher.flush();
        const want = Array.from({ length: n }, (_, i) => `m-${name}-${i}`);
        await waitFor(`every message from ${name} everywhere`, () => Object.values(at).every((c) => payloads(c, `m-${name}-`).length >= n), 10_000, s.detail);
        await settle(s);
        for (const [where, c] of Object.entries(at)) expect({ from: name, where, got: payloads(c, `m-${name}-`) }).toEqual({ from: name, where, got: want });
      }
    });

    test("queue groups: each message to one member, wherever the members and the publisher are", async () => {
      const s = await hubCluster(leafKind);
      // Members only on the leaf, published on B; members only on B, published on the leaf; members on both, published on A.
      const cases: [string, NatsConnection, NatsConnection[]][] = [
        ["B → leaf members", s.bc, [s.lc, s.lc]],
        ["leaf → B members", s.lc, [s.bc, s.bc]],
        ["A → leaf and B members", s.ac, [s.lc, s.bc]],
      ];
      for (const [name, publisher, where] of cases) {
        const subj = subject("hubq");
        const members = where.map((nc) => collect(nc, subj, "workers"));
        await Promise.all(where.map((nc) => nc.flush()));
        await waitFor(`${name}: the group known at the publisher's server`, async () => {
          publisher.publish(subj, sc.encode("warm"));
          await publisher.flush();
          return members.some((m) => m.count() > 0);
        }, 15_000, s.detail);
        const n = 300;
        for (let i = 0; i < n; i++) publisher.publish(subj, sc.encode(`job-${i}`));
        await publisher.flush();
        const got = () => members.flatMap((m) => payloads(m, "job-"));
        await waitFor(`${name}: every job delivered`, () => got().length >= n, 10_000, s.detail);
        await settle(s);
        expect({ name, jobs: got().length, distinct: new Set(got()).size }).toEqual({ name, jobs: n, distinct: n });
      }
    });

    test("request-reply both ways across the cluster", async () => {
      const s = await hubCluster(leafKind);
      for (const [name, responder, requester] of [["leaf asks B", s.bc, s.lc], ["B asks the leaf", s.lc, s.bc]] as const) {
        const svc = subject("svc");
        responder.subscribe(svc, { callback: (_e, m) => m.respond(sc.encode(`re:${sc.decode(m.data)}`)) });
        await responder.flush();
        await waitFor(`${name}: the service reachable`, async () => {
          try {
            await requester.request(svc, sc.encode("ping"), { timeout: 500 });
            return true;
          } catch {
            return false;
          }
        }, 15_000, s.detail);
        for (let i = 0; i < 50; i++) {
          const reply = await requester.request(svc, sc.encode(`q${i}`), { timeout: 5000 });
          expect(sc.decode(reply.data)).toBe(`re:q${i}`);
        }
      }
    });
  });
}
