// MQTT on a hub with leaf nodes: an MQTT publish on the hub reaches a NATS subscriber on a leaf node
// (natter or nats-server), and a NATS publish on the leaf reaches an MQTT subscriber on the hub.
// A server with leaf nodes may run MQTT without JetStream, as in nats-server.
import { describe, expect, test } from "vitest";
import { StringCodec } from "nats";
import { freePort } from "../harness/server.ts";
import { HAS_NATS_SERVER, client, logs, waitForLink } from "../leaf/helpers.ts";
import { HOST, startProc, waitFor, type Kind } from "../leaf/spawn.ts";
import { collect, connectMqtt } from "./helpers.ts";

const sc = StringCodec();

describe.each(["natter", "nats-server"] as Kind[])("natter hub with MQTT, %s leaf", (leafKind) => {
  test.skipIf(leafKind === "nats-server" && !HAS_NATS_SERVER)("MQTT ↔ NATS across the leaf link", async () => {
    const mqttPort = await freePort();
    const hub = await startProc("natter", { name: "HUB", config: `leafnodes { listen: "${HOST}:{{leaf_port}}" }\nmqtt { host: "${HOST}", port: ${mqttPort} }\n` });
    const leaf = await startProc(leafKind, { name: "LEAF", config: `leafnodes {\n  reconnect: 1\n  remotes [ { url: "nats-leaf://${HOST}:${hub.leafPort}" } ]\n}\n` });
    const detail = logs(hub, leaf);
    const hc = await client(hub);
    const lc = await client(leaf);
    await waitForLink(lc, hc, detail);
    const atLeaf: string[] = [];
    lc.subscribe("site.>", { callback: (_e, m) => atLeaf.push(`${m.subject} ${sc.decode(m.data)}`) });
    await lc.flush();
    const mqttClient = await connectMqtt(`mqtt://${HOST}:${mqttPort}`, { clientId: "hub-device" });
    const got = collect(mqttClient);
    await mqttClient.subscribeAsync("cmd/#");
    // Interest crosses the link asynchronously: publish until it arrives.
    await waitFor("the leaf's interest at the hub", async () => {
      await mqttClient.publishAsync("site/probe", "p");
      return atLeaf.length > 0;
    }, 10_000, detail);
    await mqttClient.publishAsync("site/line-1/temp", "21");
    await waitFor("the MQTT publish at the leaf", () => atLeaf.includes("site.line-1.temp 21"), 10_000, detail);
    await waitFor("the hub's MQTT interest at the leaf", async () => {
      lc.publish("cmd.probe", "p");
      await lc.flush();
      return got.messages.length > 0;
    }, 10_000, detail);
    lc.publish("cmd.valve.open", "now");
    const m = await waitFor("the NATS publish at the MQTT client", () => got.messages.find((r) => r.topic === "cmd/valve/open"), 10_000, detail);
    expect(m.payload).toBe("now");
  });
});
