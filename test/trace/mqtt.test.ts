// A traced NATS message reaching an MQTT 5 subscriber: its egress names the MQTT client (nats-server
// names MQTT clients by client id), and traceparent/tracestate arrive as user properties, unchanged.
// natter only (2.9.10 has no tracing and no MQTT 5).
import { expect, test } from "vitest";
import { connectReady } from "../harness/raw.ts";
import { collect, connectMqtt, startMqttServer } from "../mqtt/helpers.ts";
import { hpub, traceEvents } from "./helpers.ts";

const PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

test("an MQTT 5 subscriber: one egress with its client id; traceparent and tracestate become user properties", async () => {
  const { server, mqttUrl } = await startMqttServer();
  const tracer = await connectReady(server.port);
  tracer.send("SUB trace.out 9\r\n");
  await tracer.flush();
  const device = await connectMqtt(mqttUrl, { protocolVersion: 5, clientId: "device-7" });
  const got = collect(device);
  await device.subscribeAsync("telemetry/in");
  const pub = await connectReady(server.port, { headers: true });
  pub.send(hpub("telemetry.in", { "Nats-Trace-Dest": "trace.out", traceparent: PARENT, tracestate: "v=1" }, "21.5"));
  const [message] = await got.wait(1);
  expect(message!.payload).toBe("21.5");
  expect(message!.packet.properties?.userProperties).toMatchObject({ traceparent: PARENT, tracestate: "v=1" });
  const [event] = await traceEvents(tracer, 1);
  expect(event!.events[1]).toMatchObject({ type: "eg", kind: 0, name: "device-7", sub: "telemetry.in" });
});
