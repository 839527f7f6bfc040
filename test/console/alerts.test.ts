// Console alerts (src/console/alerts.ts): thresholds from the console block, checked once a second; a
// condition that holds for its `for` fires and later resolves. Active alerts are in the console API and
// in /metrics as gauges, and each firing/resolving is published in the system account on
// $SYS.SERVER.<id>.ALERT.<rule>. (natter's own: nats-server has no console.)
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { AckPolicy, jetstreamManager } from "@nats-io/jetstream";
import { serverKind } from "../harness/server.ts";
import { eventually, get, startMonitored, type Monitored } from "../monitor/spawn.ts";
import { signIn, type Signed } from "./fixture.ts";

interface AlertsApi {
  rules: Record<string, unknown>;
  active: { rule: string; target: string; value: number; threshold: number }[];
  history: { rule: string; target: string; state: string }[];
}

describe.skipIf(serverKind !== "natter")("console alerts", () => {
  let dir: string;
  let server: Monitored;
  let sys: NatsConnection;
  let app: NatsConnection;
  let session: Signed;
  const advisories: { type: string; rule: string; target: string; state: string }[] = [];
  const alerts = async () => (await (await fetch(`${server.base}/console/api/alerts`, { headers: { Cookie: session.cookie } })).json()) as AlertsApi;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), "natter-console-alerts-"));
    const conf = path.join(dir, "natter.conf");
    writeFileSync(conf, `
accounts {
  SYS: { users: [ { user: sys, password: sys-pw } ] }
  APP: { users: [ { user: app, password: app-pw } ], jetstream: enabled }
}
system_account: SYS
jetstream { store_dir: ${JSON.stringify(path.join(dir, "js"))} }
leafnodes { remotes: [ { url: "nats-leaf://127.0.0.1:1" } ] }
console {
  users: [ { user: ops, password: pw, role: admin } ]
  alerts {
    leaf_down: true
    # BULK's consumers: 20 (the stream's threshold), but auditor's own (above 25, held for an hour);
    # QUIET's: none.
    consumer_lag: {
      above: 5, for: "1s"
      streams: { "APP/BULK": 20, QUIET: false }
      consumers: { "BULK/auditor": { above: 25, for: "1h" } }
    }
    stream_full: { above: 50, streams: { BULK: 95 } }
  }
}
`);
    server = await startMonitored("natter", ["-c", conf]);
    session = await signIn(server, { user: "ops", password: "pw" });
    sys = await connect({ servers: server.hostport, user: "sys", pass: "sys-pw" });
    sys.subscribe("$SYS.SERVER.*.ALERT.>", { callback: (_e, m) => void advisories.push(m.json()) });
    await sys.flush();
    app = await connect({ servers: server.hostport, user: "app", pass: "app-pw" });
  }, 30_000);
  afterAll(async () => {
    await app?.close().catch(() => {});
    await sys?.close().catch(() => {});
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("a leaf remote that is not connected fires leaf_down: in the API, in /metrics and as a $SYS advisory", async () => {
    await eventually("leaf_down firing", async () => ((await alerts()).active.some((a) => a.rule === "leaf_down") ? true : undefined), 5_000);
    const metrics = (await get(server, "/metrics")).text;
    expect(metrics).toContain('natter_alert_active{rule="leaf_down",target="leafnodes"} 1');
    expect(metrics).toContain('natter_alert_rule_active{rule="consumer_lag"} 0');
    const advisory = await eventually("the advisory", async () => advisories.find((a) => a.rule === "leaf_down"));
    expect(advisory).toMatchObject({ type: "io.natter.console.alert", rule: "leaf_down", target: "leafnodes", state: "firing" });
  });

  it("consumer lag above its threshold for its duration fires, a stream past its limit too; both resolve after a purge", async () => {
    const jsm = await jetstreamManager(app);
    await jsm.streams.add({ name: "ORDERS", subjects: ["orders.>"], max_msgs: 10 });
    await jsm.consumers.add("ORDERS", { durable_name: "billing", ack_policy: AckPolicy.Explicit });
    for (let i = 0; i < 8; i++) app.publish(`orders.${i}`, "x");
    await app.flush();
    const firing = await eventually("lag and fullness firing", async () => {
      const a = await alerts();
      return a.active.some((x) => x.rule === "consumer_lag") && a.active.some((x) => x.rule === "stream_full") ? a : undefined;
    }, 8_000);
    expect(firing.active).toContainEqual(expect.objectContaining({ rule: "consumer_lag", target: "APP/ORDERS/billing", value: 8 }));
    expect(firing.active).toContainEqual(expect.objectContaining({ rule: "stream_full", target: "APP/ORDERS", value: 80 }));
    expect((await get(server, "/metrics")).text).toContain('natter_alert_active{rule="consumer_lag",target="APP/ORDERS/billing"} 1');

    await jsm.streams.purge("ORDERS");
    const resolved = await eventually("both resolved", async () => {
      const a = await alerts();
      return a.active.every((x) => x.rule === "leaf_down") ? a : undefined;
    }, 5_000);
    const states = resolved.history.filter((h) => h.target.startsWith("APP/ORDERS")).map((h) => `${h.rule} ${h.state}`);
    expect(states.slice(0, 2).sort()).toEqual(["consumer_lag resolved", "stream_full resolved"]); // newest first
    expect(states).toEqual(expect.arrayContaining(["consumer_lag firing", "stream_full firing"]));
    await eventually("the resolved advisories", async () =>
      advisories.filter((a) => a.state === "resolved").length >= 2 ? true : undefined);
    expect((await get(server, "/metrics")).text).not.toContain('rule="consumer_lag",target=');
  }, 20_000);

  it("a stream's or a consumer's own threshold wins over the rule's, and false turns the rule off there", async () => {
    const jsm = await jetstreamManager(app);
    await jsm.streams.add({ name: "BULK", subjects: ["bulk.>"], max_msgs: 50 });
    await jsm.streams.add({ name: "QUIET", subjects: ["quiet.>"] });
    for (const name of ["reader", "auditor"]) await jsm.consumers.add("BULK", { durable_name: name, ack_policy: AckPolicy.Explicit });
    await jsm.consumers.add("QUIET", { durable_name: "q", ack_policy: AckPolicy.Explicit });
    for (let i = 0; i < 30; i++) app.publish("bulk.x", "x");
    for (let i = 0; i < 10; i++) app.publish("quiet.x", "x");
    await app.flush();
    // reader: 30 pending, above BULK's 20. In the same evaluation auditor (30, above its 25 but not for an
    // hour) and q (10, above the rule's 5, but off for QUIET) would fire if they were going to, and BULK
    // (60% full, above the rule's 50 but not BULK's 95) too.
    const firing = await eventually("reader firing", async () => {
      const a = await alerts();
      return a.active.some((x) => x.target === "APP/BULK/reader") ? a : undefined;
    }, 8_000);
    expect(firing.active.filter((x) => x.target !== "leafnodes").map((x) => [x.rule, x.target, x.value, x.threshold])).toEqual([["consumer_lag", "APP/BULK/reader", 30, 20]]);
    expect(firing.rules.consumer_lag).toEqual({
      above: 5, forMs: 1000,
      streams: { "APP/BULK": { above: 20, forMs: 1000 }, QUIET: null },
      consumers: { "BULK/auditor": { above: 25, forMs: 3_600_000 } },
    });
  }, 20_000);
});
