// $SYS connect/disconnect events name MQTT clients as nats-server does: client_type "mqtt" and the MQTT
// client id as `client_id`.
import { describe, expect, test } from "vitest";
import { connectV2 } from "../harness/clients.ts";
import { waitFor } from "../harness/raw.ts";
import { serverKind } from "../harness/server.ts";
import { connectMqtt, startMqttServer } from "./helpers.ts";
import { RawMqtt } from "./raw-mqtt.ts";

const ACCOUNTS = `
accounts {
  SYS { users: [ { user: sys, password: x } ] }
  APP { jetstream: enabled, users: [ { user: app, password: pw } ] }
}
system_account: SYS
`;

describe("system events", () => {
  test("an MQTT client's connect and disconnect events carry client_type mqtt and its client id", async () => {
    const { server, mqttUrl } = await startMqttServer({ config: ACCOUNTS });
    const sys = await connectV2(server, { user: "sys", pass: "x" });
    const events: { subject: string; body: Record<string, any> }[] = [];
    sys.subscribe("$SYS.ACCOUNT.APP.>", { callback: (_e, m) => events.push({ subject: m.subject, body: m.json() }) });
    await sys.flush();
    const client = await connectMqtt(mqttUrl, { clientId: "dev-9", username: "app", password: "pw" });
    const connect = await waitFor(() => events.find((e) => e.subject.endsWith(".CONNECT")), 5000, "the CONNECT event");
    expect(connect.body.client).toMatchObject({ acc: "APP", user: "app", client_type: "mqtt", client_id: "dev-9", kind: "Client" });
    await client.endAsync();
    const disconnect = await waitFor(() => events.find((e) => e.subject.endsWith(".DISCONNECT")), 5000, "the DISCONNECT event");
    expect(disconnect.body.client).toMatchObject({ acc: "APP", client_type: "mqtt", client_id: "dev-9" });
  });
});

// natter's log (-D): found by the fuzzer (test/fuzz gen-mqtt.ts), as bug 4 was for NATS client names.
describe.skipIf(serverKind === "nats-server")("the server log", () => {
  test("a client id with a line break cannot forge a log line (it is quoted)", async () => {
    const { server, mqttPort } = await startMqttServer({ args: ["-D"] });
    const raw = await RawMqtt.connect(mqttPort);
    await raw.handshake({ clientId: "dev\n[1] 2026/01/01 00:00:00.000000 [INF] forged" });
    await waitFor(() => /Client connected: clientID=/.test(server.log()), 5000, "the connect line");
    expect(server.log()).not.toMatch(/^\[1\] .*forged/m);
    expect(server.log()).toContain('clientID="dev\\n[1] 2026/01/01 00:00:00.000000 [INF] forged"');
  });
});
