// An account's JetStream limits hold for its streams in the whole cluster (nats-server checks them at the meta
// leader against every assignment): max_streams counts streams on every node, and max_file counts each
// replica's reservation. Also against a nats-server 2.9 cluster (NATTER_TEST_SERVER=nats-server).
import { describe, expect, test } from "vitest";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { connect } from "@nats-io/transport-node";
import { answers, storeDir, threeJetStreamNodes } from "./js-cluster.ts";

const ACCOUNTS = `
accounts {
  APP { jetstream: { max_streams: 2, max_file: 10000, max_mem: -1 }, users [ { user: app, password: apppw } ] }
}
`;

const errorOf = (r: Record<string, unknown>[]) => r[0]?.error as { err_code?: number } | undefined;

describe("account limits in a JetStream cluster", () => {
  test("max_streams and max_file count the account's streams on every node", async () => {
    const conf = path.join(storeDir(), "accounts.conf");
    writeFileSync(conf, ACCOUNTS);
    const nodes = await threeJetStreamNodes(["-c", conf]);
    const nc = await connect({ servers: nodes.map((n) => n.hostport), user: "app", pass: "apppw", timeout: 5000 });
    const create = (name: string, extra: Record<string, unknown> = {}) =>
      answers(nc, `$JS.API.STREAM.CREATE.${name}`, JSON.stringify({ name, subjects: [`${name.toLowerCase()}.>`], ...extra }));
    // An R3 stream reserving 4000 bytes per replica: 12,000 of the 10,000 the account has.
    expect(errorOf(await create("BIG", { num_replicas: 3, max_bytes: 4000 }))).toEqual({ code: 500, err_code: 10047, description: "insufficient storage resources available" });
    expect(errorOf(await create("S1", { num_replicas: 3, max_bytes: 3000 }))).toBeUndefined();
    // Two streams placed on different nodes still count against max_streams: 2.
    expect(errorOf(await create("S2"))).toBeUndefined();
    expect(errorOf(await create("S3"))).toEqual({ code: 400, err_code: 10027, description: "maximum number of streams reached" });
    await nc.close();
  }, 60_000);
});
