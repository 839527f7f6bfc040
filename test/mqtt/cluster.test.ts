// MQTT in a natter cluster: an MQTT publish on one node reaches MQTT and NATS subscribers on another,
// and a NATS publish reaches an MQTT subscriber across the route (MQTT sessions are ordinary subscribers
// of the account's subject space, so their interest crosses routes like a client's). natter only: the
// nodes are natter processes (a cluster without JetStream may run MQTT, as in nats-server).
import { describe, expect, test } from "vitest";
import * as nats from "nats";
import { freePort, serverKind } from "../harness/server.ts";
import { startNode, waitForMesh } from "../cluster/spawn.ts";
import { waitFor } from "../harness/raw.ts";
import { collect, connectMqtt } from "./helpers.ts";

describe.skipIf(serverKind === "nats-server")("MQTT across a cluster", () => {
  test("MQTT → MQTT and NATS on another node, NATS → MQTT on another node", async () => {
    const [mqtt0, mqtt1] = [await freePort(), await freePort()];
    const n0 = await startNode({ name: "M0", seeds: [], extraArgs: ["--mqtt_port", String(mqtt0)] });
    const n1 = await startNode({ name: "M1", seeds: [n0.clusterPort], extraArgs: ["--mqtt_port", String(mqtt1)] });
    await waitForMesh([n0, n1]);
    const sub = await connectMqtt(`mqtt://127.0.0.1:${mqtt1}`, { clientId: "far-sub" });
    const got = collect(sub);
    await sub.subscribeAsync("plant/#");
    const nc1 = await nats.connect({ servers: n1.url, reconnect: false });
    const nc0 = await nats.connect({ servers: n0.url, reconnect: false });
    try {
      const natsGot: string[] = [];
      nc1.subscribe("plant.>", { callback: (_e, m) => natsGot.push(m.subject) });
      await nc1.flush();
      // Interest reaches node 0 asynchronously: probe until the MQTT subscriber on node 1 hears node 0.
      await waitFor(async () => {
        nc0.publish("plant.probe", "p");
        await nc0.flush();
        return got.messages.length > 0;
      }, 10_000, "interest from node 1 on node 0", 100);
      got.messages.length = 0;
      natsGot.length = 0;
      const pub = await connectMqtt(`mqtt://127.0.0.1:${mqtt0}`, { clientId: "near-pub" });
      await pub.publishAsync("plant/line-1/temp", "20", { qos: 1 });
      // Probes still on their way may arrive first: wait for this message by its topic.
      const m = await waitFor(() => got.messages.find((r) => r.topic === "plant/line-1/temp"), 5000, "the MQTT message on node 1");
      expect(m.payload).toBe("20");
      await waitFor(() => natsGot.includes("plant.line-1.temp"), 5000, "the NATS subscriber on node 1");
    } finally {
      await nc0.close();
      await nc1.close();
    }
  });
});
