// /varz's `jetstream` block against nats-server's (server/monitor.go JetStreamVarz): empty with JetStream
// off; with it on, `config` (max_memory, max_storage, store_dir, sync_interval…) and `stats` (memory,
// storage, reserved_*, accounts, ha_assets, api {total, errors}) — tools read it to tell whether JetStream
// is on. Both servers get the same API calls; key sets and JSON types are compared with a live nats-server
// 2.9.10, and the stats must be equal.
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { afterAll, describe, expect, test } from "vitest";
import { HAS_NATS_SERVER } from "../harness/reference.ts";
import { shapeDiff } from "./shape.ts";
import { getJson, startMonitored, type Kind, type Monitored } from "./spawn.ts";

type Json = Record<string, any>;

/** nats-server 2.10 fields 2.9.10 does not write. */
const JETSTREAM_2_10 = ["jetstream.config.sync_interval", "jetstream.config.compress_ok"];

const started: Monitored[] = [];
const dirs: string[] = [];
afterAll(async () => {
  await Promise.allSettled(started.map((s) => s.stop()));
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function startJs(kind: Kind): Promise<{ server: Monitored; storeDir: string }> {
  const storeDir = mkdtempSync(path.join(os.tmpdir(), "natter-varz-js-"));
  dirs.push(storeDir);
  const server = await startMonitored(kind, ["-js", "-sd", storeDir]);
  started.push(server);
  return { server, storeDir };
}

/** The same API traffic on both: two streams (one with max_bytes, reserving it), a message, one bad request. */
async function workload(server: Monitored): Promise<void> {
  const nc = await connect({ servers: server.hostport, reconnect: false });
  try {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: "RESERVED", subjects: ["r.>"], max_bytes: 1 << 20 });
    await jsm.streams.add({ name: "PLAIN", subjects: ["p.>"] });
    await nc.request("p.1", new TextEncoder().encode("hello"));
    await jsm.streams.info("NOSUCH").catch(() => undefined); // an API error
  } finally {
    await nc.close();
  }
}

describe("/varz jetstream", () => {
  test("empty with JetStream off", async () => {
    const server = await startMonitored("natter");
    started.push(server);
    expect((await getJson<Json>(server, "/varz")).jetstream).toEqual({});
  });

  test("config and stats with JetStream on", async () => {
    const { server, storeDir } = await startJs("natter");
    await workload(server);
    const js = (await getJson<Json>(server, "/varz")).jetstream;
    expect(js.config).toEqual({
      max_memory: js.config.max_memory,
      max_storage: js.config.max_storage,
      store_dir: path.join(storeDir, "jetstream"),
      sync_interval: 1_000_000_000,
      compress_ok: true,
    });
    expect(js.stats).toEqual({
      memory: 0, storage: js.stats.storage, reserved_memory: 0, reserved_storage: 1 << 20, accounts: 1, ha_assets: 0,
      api: { total: 4, errors: 1 }, // the manager's account info, two creates, the failed info
    });
    expect(js.stats.storage).toBeGreaterThan(0);
  });

  test.skipIf(!HAS_NATS_SERVER)("same fields, JSON types and API counts as nats-server", async () => {
    const [ours, ref] = await Promise.all([startJs("natter"), startJs("nats-server")]);
    await Promise.all([workload(ours.server), workload(ref.server)]);
    const [o, r] = await Promise.all([getJson<Json>(ours.server, "/varz"), getJson<Json>(ref.server, "/varz")]);
    expect(shapeDiff({ jetstream: r.jetstream }, { jetstream: o.jetstream }, { extra: JETSTREAM_2_10 })).toEqual([]);
    expect(o.jetstream.config.store_dir).toBe(path.join(ours.storeDir, "jetstream"));
    expect(r.jetstream.config.store_dir).toBe(path.join(ref.storeDir, "jetstream"));
    expect(o.jetstream.stats).toEqual(r.jetstream.stats); // storage too: the same bytes per record as its file store
  });
});
