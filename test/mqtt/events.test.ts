// $SYS connect/disconnect events name MQTT clients as nats-server does: client_type "mqtt" and the MQTT
// client id as `client_id`.
import { describe, expect, test } from "vitest";
import { connectV2 } from "../harness/clients.ts";
import { waitFor } from "../harness/raw.ts";
import { connectMqtt, startMqttServer } from "./helpers.ts";

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
