// MQTT over WebSocket on the server's WebSocket port, at the path /mqtt with the `mqtt` subprotocol,
// as browser MQTT clients (MQTT.js) connect — the same place nats-server serves it.
import { describe, expect, test } from "vitest";
import { connectV2 } from "../harness/clients.ts";
import { serverKind } from "../harness/server.ts";
import { collect, connectMqtt, startMqttServer } from "./helpers.ts";

describe.each([4, 5] as const)("MQTT %i over WebSocket", (version) => {
  test.skipIf(version === 5 && serverKind === "nats-server")("an MQTT.js client at ws://host:port/mqtt exchanges messages with NATS and TCP MQTT clients", async () => {
    const { server, mqttUrl } = await startMqttServer({ ws: true });
    const wsClient = await connectMqtt(`ws://127.0.0.1:${server.wsPort}/mqtt`, { protocolVersion: version, clientId: `ws-${version}` });
    const got = collect(wsClient);
    await wsClient.subscribeAsync("dash/#");
    const nc = await connectV2(server);
    const natsGot: string[] = [];
    nc.subscribe("dash.>", { callback: (_e, m) => natsGot.push(`${m.subject} ${m.string()}`) });
    await nc.flush();
    const tcpClient = await connectMqtt(mqttUrl, { protocolVersion: version });
    await tcpClient.publishAsync("dash/from-tcp", "a");
    nc.publish("dash.from-nats", "b");
    await wsClient.publishAsync("dash/from-ws", "c");
    const messages = await got.wait(3);
    expect(messages.map((m) => `${m.topic} ${m.payload}`).sort()).toEqual(["dash/from-nats b", "dash/from-tcp a", "dash/from-ws c"]);
    await nc.flush();
    expect(natsGot.sort()).toEqual(["dash.from-nats b", "dash.from-tcp a", "dash.from-ws c"]);
  });
});
