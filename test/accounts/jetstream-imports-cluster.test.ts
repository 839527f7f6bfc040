// JetStream across accounts in a cluster: the streams of account A live on node 0 (the one running
// JetStream); clients of account I on node 1 use them through I's imports. Pull deliveries go back over
// the route to node 1's response bridge and into I; push deliveries to an imported deliver subject are
// bridged on node 0 and cross the route in I.
import { AckPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { startNode, waitFor, waitForMesh, type ClusterNode } from "../cluster/spawn.ts";
import { dec, enc, until } from "../jetstream/helpers.ts";

const open = new Set<NatsConnection>();
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "natter-js-imports-cluster-"));
const config = path.join(dir, "accounts.conf");
fs.writeFileSync(
  config,
  `accounts {
  A: {
    jetstream: enabled
    users: [{user: a, password: a}]
    exports: [ {service: "$JS.API.>", response: stream}, {service: "$JS.ACK.>"}, {service: "$JS.FC.>"}, {stream: "accI.>"} ]
  }
  I: {
    users: [{user: i, password: i}]
    imports: [
      {service: {account: A, subject: "$JS.API.>"}, to: "JS.A.API.>"}
      {service: {account: A, subject: "$JS.ACK.>"}}
      {service: {account: A, subject: "$JS.FC.>"}}
      {stream: {account: A, subject: "accI.>"}}
    ]
  }
}
`,
);
let nodes: ClusterNode[];

beforeAll(async () => {
  const n0 = await startNode({ name: "N0", extraArgs: ["-c", config, "-js", "--store_dir", path.join(dir, "js")] });
  const n1 = await startNode({ name: "N1", seeds: [n0.clusterPort], extraArgs: ["-c", config] });
  nodes = [n0, n1];
  await waitForMesh(nodes);
}, 60_000);

afterAll(async () => {
  await Promise.all([...open].map((nc) => nc.close().catch(() => {})));
  fs.rmSync(dir, { recursive: true, force: true });
});

async function client(node: ClusterNode, user: string, inboxPrefix?: string): Promise<NatsConnection> {
  const nc = await connect({ servers: node.hostport, user, pass: user, reconnect: false, timeout: 5000, ...(inboxPrefix ? { inboxPrefix } : {}) });
  open.add(nc);
  return nc;
}

test("I on another node fetches from A's pull consumer and acks; a push consumer delivers to I there", async () => {
  const [n0, n1] = nodes as [ClusterNode, ClusterNode];
  const a = await client(n0, "a");
  const i = await client(n1, "i", "accI");
  // A JetStream node in a cluster answers once its meta group has a leader (10008 until then).
  await waitFor("a meta leader", async () => {
    try {
      return !(await a.request("$JS.API.INFO", new Uint8Array(), { timeout: 500 })).string().includes("10008");
    } catch {
      return false;
    }
  }, 20_000);
  const jsm = await jetstreamManager(a);
  await jsm.streams.add({ name: "WORK", subjects: ["work.>"] });
  for (let k = 0; k < 3; k++) await jetstream(a).publish(`work.${k}`, enc(`w${k}`));
  await jsm.consumers.add("WORK", { durable_name: "pull", ack_policy: AckPolicy.Explicit });

  // The API and the pull deliveries, from node 1 through I's imports (the interest may still be crossing).
  let got: string[] = [];
  await until(async () => {
    got = [];
    const consumer = await jetstream(i, { apiPrefix: "JS.A.API", timeout: 2_000 }).consumers.get("WORK", "pull");
    for await (const m of await consumer.fetch({ max_messages: 3, expires: 2_000 })) {
      got.push(`${m.subject}=${dec(m.data)}`);
      m.ack();
      if (got.length === 3) break;
    }
    return got.length === 3;
  }, 20_000, "a fetch from node 1");
  expect(got).toEqual(["work.0=w0", "work.1=w1", "work.2=w2"]);
  await until(async () => (await jsm.consumers.info("WORK", "pull")).num_ack_pending === 0, 5_000, "the acks from node 1");

  const seen: string[] = [];
  i.subscribe("accI.push", { callback: (_e, m) => void seen.push(`${m.subject}=${dec(m.data)}`) });
  await i.flush();
  await jsm.consumers.add("WORK", { durable_name: "push", deliver_subject: "accI.push", ack_policy: AckPolicy.None });
  await until(() => seen.length === 3, 10_000, "push deliveries on node 1");
  expect(seen).toEqual(["work.0=w0", "work.1=w1", "work.2=w2"]);
}, 60_000);
