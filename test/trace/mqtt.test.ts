// A traced NATS message reaching an MQTT 5 subscriber: its egress names the MQTT client (nats-server
// names MQTT clients by client id), and traceparent/tracestate arrive as user properties, unchanged.
// An MQTT 5 publisher starts a trace with a Nats-Trace-Dest user property, as a NATS client's header does.
// natter only (nats-server has no tracing before 2.11 and no MQTT 5).
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

test("an MQTT 5 publisher starts a trace with a Nats-Trace-Dest user property; trace-only reaches nobody", async () => {
  const { server, mqttUrl } = await startMqttServer();
  const tracer = await connectReady(server.port);
  tracer.send("SUB trace.out 9\r\n");
  await tracer.flush();
  const reader = await connectReady(server.port, { headers: true, name: "reader" });
  reader.send("SUB telemetry.> 1\r\n");
  await reader.flush();
  const device = await connectMqtt(mqttUrl, { protocolVersion: 5, clientId: "sensor-3" });
  await device.publishAsync("telemetry/out", "7.5", { properties: { userProperties: { "Nats-Trace-Dest": "trace.out", traceparent: PARENT } } });
  const [message] = await reader.messages(1);
  expect(message!.payload!.toString()).toBe("7.5");
  const [event] = await traceEvents(tracer, 1);
  expect(event!.request.header).toMatchObject({ "Nats-Trace-Dest": ["trace.out"], traceparent: [PARENT] });
  expect(event!.events.map(({ type, kind, name, subj, sub }) => ({ type, kind, name, subj, sub }))).toEqual([
    { type: "in", kind: 0, name: "sensor-3", subj: "telemetry.out", sub: undefined },
    { type: "eg", kind: 0, name: "reader", subj: undefined, sub: "telemetry.>" },
  ]);

  await device.publishAsync("telemetry/out", "only", { properties: { userProperties: { "Nats-Trace-Dest": "trace.out", "Nats-Trace-Only": "true" } } });
  const [only] = await traceEvents(tracer, 1);
  expect(only!.events.map((e) => e.type)).toEqual(["in", "eg"]);
  await device.publishAsync("telemetry/out", "after");
  const taken = await reader.readUntil((f) => f.payload?.toString() === "after");
  expect(taken.map((f) => f.payload!.toString())).toEqual(["after"]);
  await device.endAsync();
});
