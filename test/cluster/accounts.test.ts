// Accounts across a cluster of real processes: every node has accounts A and B (a user in each), and
// the routes carry each interest and message with its account. Within A, pub/sub, queue groups and
// request-reply cross nodes; B, on the same subjects, never sees A's traffic (nor A B's); a restarted
// node gets every account's interest back.
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import * as nats from "nats";
import { startCluster, waitFor, waitForMesh, type ClusterNode } from "./spawn.ts";

const sc = nats.StringCodec();
const open = new Set<nats.NatsConnection>();
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "natter-cluster-accounts-"));
const config = path.join(dir, "accounts.conf");
fs.writeFileSync(
  config,
  `accounts {
  A { users: [ { user: a, password: a } ] }
  B { users: [ { user: b, password: b } ] }
}
`,
);

afterAll(async () => {
  await Promise.all([...open].map((nc) => nc.close().catch(() => {})));
  fs.rmSync(dir, { recursive: true, force: true });
});

type Acc = "a" | "b";

async function connect(node: ClusterNode, user: Acc, opts: nats.ConnectionOptions = {}): Promise<nats.NatsConnection> {
  const nc = await nats.connect({ servers: node.hostport, user, pass: user, reconnect: false, timeout: 5000, ...opts });
  open.add(nc);
  return nc;
}

interface Collected {
  messages: string[];
  sub: nats.Subscription;
}

function collect(nc: nats.NatsConnection, subject: string, queue?: string): Collected {
  const messages: string[] = [];
  const sub = nc.subscribe(subject, {
    queue,
    callback: (_e, m) => {
      if (m.headers?.get("probe") !== "1") messages.push(sc.decode(m.data));
    },
  });
  return { messages, sub };
}

/** Waits until `subject` published from `pub` reaches a probe subscriber on `sub`'s connection (interest has crossed the route). */
async function interestReady(sub: nats.NatsConnection, pub: nats.NatsConnection, subject: string): Promise<void> {
  let seen = false;
  const probe = sub.subscribe(subject, {
    callback: (_e, m) => {
      if (m.headers?.get("probe") === "1") seen = true;
    },
  });
  await sub.flush();
  const h = nats.headers();
  h.set("probe", "1");
  await waitFor(`interest in ${subject} to cross the route`, async () => {
    pub.publish(subject, sc.encode("probe"), { headers: h });
    await pub.flush();
    await new Promise((r) => setTimeout(r, 20));
    return seen;
  });
  probe.unsubscribe();
  await sub.flush();
}

/** Publishes `n` messages and flushes. */
async function publish(nc: nats.NatsConnection, subject: string, prefix: string, n: number): Promise<void> {
  for (let i = 0; i < n; i++) nc.publish(subject, sc.encode(`${prefix}${i}`));
  await nc.flush();
}

/** Lets stray deliveries (there must be none) arrive before a test asserts on their absence. */
async function settle(...ncs: nats.NatsConnection[]): Promise<void> {
  await new Promise((r) => setTimeout(r, 200));
  for (const nc of ncs) await nc.flush();
}

describe("a three-node cluster with accounts A and B on every node", () => {
  let nodes: ClusterNode[];
  beforeAll(async () => {
    nodes = await startCluster(3, { extraArgs: ["-c", config] });
  }, 60_000);

  test("pub/sub across nodes within A; B on the same subject gets nothing, and the other way round", async () => {
    const [n0, n1, n2] = nodes as [ClusterNode, ClusterNode, ClusterNode];
    const pubA = await connect(n0, "a");
    const pubB = await connect(n0, "b");
    const subA1 = await connect(n1, "a");
    const subA2 = await connect(n2, "a");
    const subB1 = await connect(n1, "b");
    const a1 = collect(subA1, "orders.new");
    const a2 = collect(subA2, "orders.new");
    const b1 = collect(subB1, "orders.new");
    await interestReady(subA1, pubA, "orders.new");
    await interestReady(subA2, pubA, "orders.new");
    await interestReady(subB1, pubB, "orders.new");

    await publish(pubA, "orders.new", "a", 100);
    const expected = Array.from({ length: 100 }, (_, i) => `a${i}`);
    await waitFor("A's subscribers on both other nodes", () => a1.messages.length === 100 && a2.messages.length === 100);
    expect(a1.messages).toEqual(expected); // once each, in publish order
    expect(a2.messages).toEqual(expected);

    await publish(pubB, "orders.new", "b", 10);
    await waitFor("B's subscriber", () => b1.messages.length === 10);
    await settle(pubA, pubB, subA1, subA2, subB1);
    expect(b1.messages).toEqual(Array.from({ length: 10 }, (_, i) => `b${i}`)); // none of A's
    expect(a1.messages.length).toBe(100); // none of B's
    expect(a2.messages.length).toBe(100);
  }, 30_000);

  test("a subscriber in B only, on another node: A's messages are not routed to it", async () => {
    const [n0, n1] = nodes as [ClusterNode, ClusterNode];
    const pubA = await connect(n0, "a");
    const pubB = await connect(n0, "b");
    const subB = await connect(n1, "b");
    const b = collect(subB, "only.b");
    await interestReady(subB, pubB, "only.b");
    await publish(pubA, "only.b", "a", 20);
    await publish(pubB, "only.b", "b", 1);
    await waitFor("B's own message", () => b.messages.length >= 1);
    await settle(pubA, subB);
    expect(b.messages).toEqual(["b0"]);
  }, 30_000);

  test("queue groups across nodes, per account: each message to one member of its own account's group", async () => {
    const [n0, n1, n2] = nodes as [ClusterNode, ClusterNode, ClusterNode];
    const pubA = await connect(n0, "a");
    const pubB = await connect(n0, "b");
    const members: Record<Acc, Collected[]> = { a: [], b: [] };
    for (const acc of ["a", "b"] as const) {
      for (const node of [n1, n2]) {
        const nc = await connect(node, acc);
        members[acc].push(collect(nc, "work", "workers"), collect(nc, "work", "workers"));
        await nc.flush();
        await interestReady(nc, acc === "a" ? pubA : pubB, "work");
      }
    }
    const total = (acc: Acc) => members[acc].reduce((n, m) => n + m.messages.length, 0);
    await publish(pubA, "work", "a", 200);
    await publish(pubB, "work", "b", 50);
    await waitFor("every message delivered once per account", () => total("a") === 200 && total("b") === 50, 10_000, () => `a=${total("a")} b=${total("b")}`);
    await settle(pubA, pubB);
    expect(total("a")).toBe(200);
    expect(total("b")).toBe(50);
    expect(members.a.flatMap((m) => m.messages).sort()).toEqual(Array.from({ length: 200 }, (_, i) => `a${i}`).sort());
    expect(members.b.flatMap((m) => m.messages).every((m) => m.startsWith("b"))).toBe(true);
    // Both nodes' members of A's group got a share (the group spans the cluster).
    expect(members.a.slice(0, 2).reduce((n, m) => n + m.messages.length, 0)).toBeGreaterThan(0);
    expect(members.a.slice(2).reduce((n, m) => n + m.messages.length, 0)).toBeGreaterThan(0);
  }, 30_000);

  test("request-reply across nodes within an account; the other account has no responder", async () => {
    const [n0, , n2] = nodes as [ClusterNode, ClusterNode, ClusterNode];
    const responder = await connect(n2, "a");
    responder.subscribe("svc.echo", { callback: (_e, m) => m.respond(sc.encode(`A:${sc.decode(m.data)}`)) });
    const reqA = await connect(n0, "a");
    await responder.flush();
    await waitFor("the responder's interest on the requester's node", async () => {
      try {
        await reqA.request("svc.echo", sc.encode("ping"), { timeout: 500 });
        return true;
      } catch {
        return false;
      }
    });
    for (let i = 0; i < 20; i++) {
      const reply = await reqA.request("svc.echo", sc.encode(`r${i}`), { timeout: 2000 });
      expect(sc.decode(reply.data)).toBe(`A:r${i}`);
    }
    const reqB = await connect(n0, "b");
    const err = await reqB.request("svc.echo", sc.encode("x"), { timeout: 2000 }).then(
      () => null,
      (e: nats.NatsError) => e,
    );
    expect(err?.code).toBe(nats.ErrorCode.NoResponders);
  }, 30_000);

  test("a restarted node gets every account's interest back", async () => {
    const [n0, n1, n2] = nodes as [ClusterNode, ClusterNode, ClusterNode];
    const subA = await connect(n1, "a");
    const subB = await connect(n1, "b");
    const a = collect(subA, "after.restart");
    const b = collect(subB, "after.restart");
    await subA.flush();
    await subB.flush();

    await n2.kill9();
    await n2.start();
    await waitForMesh(nodes, 20_000);
    const pubA = await connect(n2, "a");
    const pubB = await connect(n2, "b");
    await interestReady(subA, pubA, "after.restart");
    await interestReady(subB, pubB, "after.restart");
    await publish(pubA, "after.restart", "a", 10);
    await publish(pubB, "after.restart", "b", 5);
    await waitFor("both accounts' subscribers", () => a.messages.length === 10 && b.messages.length === 5);
    await settle(pubA, pubB, subA, subB);
    expect(a.messages).toEqual(Array.from({ length: 10 }, (_, i) => `a${i}`));
    expect(b.messages).toEqual(Array.from({ length: 5 }, (_, i) => `b${i}`));

    // And the restarted node's own interest reaches the others, per account.
    const onRestarted = await connect(n2, "a");
    const r = collect(onRestarted, "to.restarted");
    const fromN0 = await connect(n0, "a");
    await interestReady(onRestarted, fromN0, "to.restarted");
    await publish(fromN0, "to.restarted", "x", 3);
    await waitFor("the restarted node's subscriber", () => r.messages.length === 3);
  }, 60_000);
});
