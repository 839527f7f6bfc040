// MQTT clients in /connz (type "mqtt", `mqtt_client` = the client id, as nats-server) and the /varz mqtt block.
import { describe, expect, test } from "vitest";
import { freePort, serverKind } from "../harness/server.ts";
import { waitFor } from "../harness/raw.ts";
import { connectMqtt, startMqttServer } from "./helpers.ts";
import { connectV2 } from "../harness/clients.ts";

describe("monitoring", () => {
  test("/connz lists an MQTT client with mqtt_client; /connz?state=closed keeps it; /varz shows the mqtt block", async () => {
    const httpPort = await freePort();
    const { mqttPort, mqttUrl } = await startMqttServer({ args: ["-m", String(httpPort)], mqttConfig: '  ack_wait: "10s"\n  max_ack_pending: 50' });
    const client = await connectMqtt(mqttUrl, { clientId: "meter-7" });
    await client.subscribeAsync("meters/7/#");
    const connz = await waitFor(async () => {
      const body = (await (await fetch(`http://127.0.0.1:${httpPort}/connz?subs=1`)).json()) as { connections: Record<string, unknown>[] };
      return body.connections.find((c) => c.mqtt_client === "meter-7");
    }, 5000, "the MQTT client in /connz");
    expect(connz).toMatchObject({ kind: "Client", type: "mqtt", mqtt_client: "meter-7" });
    expect(connz.subscriptions_list).toEqual(expect.arrayContaining(["meters.7.>", "meters.7"]));
    const varz = (await (await fetch(`http://127.0.0.1:${httpPort}/varz`)).json()) as { mqtt: Record<string, unknown>; connections: number };
    expect(varz.mqtt).toMatchObject({ host: "127.0.0.1", port: mqttPort, ack_wait: 10_000_000_000, max_ack_pending: 50 });
    expect(varz.connections).toBe(1); // MQTT clients count as connections, as in nats-server
    await client.endAsync();
    const closed = await waitFor(async () => {
      const body = (await (await fetch(`http://127.0.0.1:${httpPort}/connz?state=closed`)).json()) as { connections: Record<string, unknown>[] };
      return body.connections.find((c) => c.mqtt_client === "meter-7");
    }, 5000, "the closed MQTT client in /connz?state=closed");
    expect(closed.type).toBe("mqtt");
    if (serverKind === "natter") expect(closed.reason).toBe("Client Closed");
  });

  test.skipIf(serverKind === "nats-server")("/metrics has MQTT counters", async () => {
    const httpPort = await freePort();
    const { mqttUrl } = await startMqttServer({ args: ["-m", String(httpPort)] });
    const client = await connectMqtt(mqttUrl, { clientId: "metered" });
    await client.subscribeAsync("m/#", { qos: 1 });
    await client.publishAsync("m/x", "1", { qos: 1, retain: true });
    const text = await waitFor(async () => {
      const body = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
      return /^natter_mqtt_publishes_sent_total 1$/m.test(body) ? body : null;
    }, 5000, "the delivery counted");
    expect(text).toMatch(/^natter_mqtt_connections 1$/m);
    expect(text).toMatch(/^natter_mqtt_sessions 1$/m);
    expect(text).toMatch(/^natter_mqtt_retained_messages 1$/m);
    expect(text).toMatch(/^natter_mqtt_publishes_received_total 1$/m);
  });
});

describe("limits", () => {
  test("max_connections counts NATS and MQTT clients together", async () => {
    const { server, mqttUrl } = await startMqttServer({ maxConnections: 1 });
    // The harness's readiness probe is a connection too: until the server has seen it close, a client is
    // one too many (on a busy machine that can take a moment), so the NATS client tries until it fits.
    let nc: Awaited<ReturnType<typeof connectV2>> | null = null;
    await waitFor(async () => {
      try {
        nc = await connectV2(server);
        return true;
      } catch {
        return false;
      }
    }, 5000, "the NATS client to fit");
    await expect(connectMqtt(mqttUrl, { clientId: "one-too-many" })).rejects.toThrow();
    await nc!.close();
    await waitFor(async () => {
      try {
        return (await connectMqtt(mqttUrl, { clientId: "now-fits" })).connected;
      } catch {
        return false;
      }
    }, 5000, "the MQTT client to fit once the NATS one left");
  });
});
