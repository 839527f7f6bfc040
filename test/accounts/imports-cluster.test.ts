// Imports across a cluster of real processes: each node bridges what is published on it, once; the
// bridged copy crosses routes like any message (a queue group of the importing account gets each
// message once, whichever nodes its members are on); responses to service imports come back to the
// requester's node through the `_R_` subscription announced to the routes.
import { afterAll, beforeAll, expect, test } from "vitest";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import * as nats from "nats";
import { startCluster, waitFor, type ClusterNode } from "../cluster/spawn.ts";

const sc = nats.StringCodec();
const open = new Set<nats.NatsConnection>();
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "natter-imports-cluster-"));
const config = path.join(dir, "imports.conf");
fs.writeFileSync(
  config,
  `accounts {
  A { users: [ { user: a, password: a } ], exports: [ { stream: "s.>" }, { service: "svc" } ] }
  B {
    users: [ { user: b, password: b } ]
    imports: [ { stream: { account: A, subject: "s.>" }, to: "b.>" }, { service: { account: A, subject: "svc" }, to: "ask" } ]
  }
}
`,
);
let nodes: ClusterNode[];

beforeAll(async () => {
  nodes = await startCluster(3, { extraArgs: ["-c", config] });
}, 60_000);

afterAll(async () => {
  await Promise.all([...open].map((nc) => nc.close().catch(() => {})));
  fs.rmSync(dir, { recursive: true, force: true });
});

async function connect(node: ClusterNode, user: "a" | "b"): Promise<nats.NatsConnection> {
  const nc = await nats.connect({ servers: node.hostport, user, pass: user, reconnect: false, timeout: 5000 });
  open.add(nc);
  return nc;
}

test("a stream import bridges each message once: plain subscribers and a queue group on other nodes", async () => {
  const [n0, n1, n2] = nodes as [ClusterNode, ClusterNode, ClusterNode];
  const pub = await connect(n0, "a");
  const [b1, b2] = await Promise.all([connect(n1, "b"), connect(n2, "b")]);
  const plain: string[] = [];
  const queued: string[] = [];
  let probes = 0;
  b1.subscribe("b.>", { callback: (_e, m) => (m.subject === "b.probe" ? probes++ : plain.push(m.string())) });
  for (const nc of [b1, b2]) nc.subscribe("b.x", { queue: "q", callback: (_e, m) => void queued.push(m.string()) });
  await Promise.all([b1.flush(), b2.flush()]);
  await waitFor("B's interest on n0", async () => {
    pub.publish("s.probe", "p");
    await pub.flush();
    await new Promise((r) => setTimeout(r, 20));
    return probes > 0;
  });
  await new Promise((r) => setTimeout(r, 200)); // the queue members' interest too
  for (let k = 0; k < 50; k++) pub.publish("s.x", sc.encode(`m${k}`));
  await pub.flush();
  await waitFor("all of them", () => plain.length >= 50 && queued.length >= 50);
  await new Promise((r) => setTimeout(r, 200));
  const expected = Array.from({ length: 50 }, (_, k) => `m${k}`);
  expect(plain).toEqual(expected);
  expect(queued.sort()).toEqual([...expected].sort());
}, 30_000);

test("service requests from B on one node reach A's queue group on others, and every answer comes back once", async () => {
  const [n0, n1, n2] = nodes as [ClusterNode, ClusterNode, ClusterNode];
  const requester = await connect(n0, "b");
  const [r1, r2] = await Promise.all([connect(n1, "a"), connect(n2, "a")]);
  const served = [0, 0];
  [r1, r2].forEach((nc, k) =>
    nc.subscribe("svc", { queue: "workers", callback: (_e, m) => { served[k]!++; m.respond(sc.encode(`${k}:${m.string()}`)); } }),
  );
  await Promise.all([r1.flush(), r2.flush()]);
  await waitFor("the responders' interest on n0", async () => {
    try {
      await requester.request("ask", sc.encode("warmup"), { timeout: 200 });
      return true;
    } catch {
      return false;
    }
  });
  served[0] = served[1] = 0;
  const answers = await Promise.all(Array.from({ length: 30 }, (_, k) => requester.request("ask", sc.encode(`q${k}`), { timeout: 5_000 })));
  expect(answers.map((m) => m.string().split(":")[1])).toEqual(Array.from({ length: 30 }, (_, k) => `q${k}`));
  expect(served[0]! + served[1]!).toBe(30);
}, 30_000);
