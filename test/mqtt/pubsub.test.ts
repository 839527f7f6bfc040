// MQTT 3.1.1 and 5 clients (MQTT.js) against the real server: CONNECT, SUBSCRIBE, PUBLISH QoS 0 both
// ways with NATS clients on the converted subjects, and QoS 1/2 between MQTT clients.
import { describe, expect, test } from "vitest";
import { connectV2 } from "../harness/clients.ts";
import { serverKind } from "../harness/server.ts";
import { collect, connectMqtt, startMqttServer } from "./helpers.ts";

describe.each([4, 5] as const)("MQTT protocol version %i", (version) => {
  const skipV5 = version === 5 && serverKind === "nats-server"; // nats-server refuses MQTT 5 at CONNECT

  test.skipIf(skipV5)("an MQTT publish reaches an MQTT subscriber and a NATS subscriber on the converted subject", async () => {
    const { server, mqttUrl } = await startMqttServer();
    const sub = await connectMqtt(mqttUrl, { protocolVersion: version, clientId: "sub" });
    const got = collect(sub);
    await sub.subscribeAsync("sensors/+/temp", { qos: 0 });
    const nc = await connectV2(server);
    const natsSub = nc.subscribe("sensors.*.temp", { max: 1 });
    await nc.flush();
    const pub = await connectMqtt(mqttUrl, { protocolVersion: version, clientId: "pub" });
    await pub.publishAsync("sensors/cold-1/temp", "21.5");
    const [m] = await got.wait(1);
    expect(m!.topic).toBe("sensors/cold-1/temp");
    expect(m!.payload).toBe("21.5");
    for await (const msg of natsSub) {
      expect(msg.subject).toBe("sensors.cold-1.temp");
      expect(msg.string()).toBe("21.5");
    }
  });

  test.skipIf(skipV5)("a NATS publish reaches MQTT subscribers as QoS 0, `#` also matching the parent level", async () => {
    const { server, mqttUrl } = await startMqttServer();
    const sub = await connectMqtt(mqttUrl, { protocolVersion: version });
    const got = collect(sub);
    await sub.subscribeAsync("a/#", { qos: 1 });
    const nc = await connectV2(server);
    nc.publish("a", "parent");
    nc.publish("a.b.c", "child");
    nc.publish("ab", "not matched");
    const messages = await got.wait(2);
    expect(messages.map((m) => [m.topic, m.payload, m.packet.qos])).toEqual([
      ["a", "parent", 0],
      ["a/b/c", "child", 0],
    ]);
  });

  // nats-server 2.9.10 refuses '.' in topics; 2.10 (the reference here) maps it to '//'.
  test.skipIf(serverKind === "nats-server")("dots and empty levels convert as nats-server 2.10's", async () => {
    const { server, mqttUrl } = await startMqttServer();
    const nc = await connectV2(server);
    const natsSub = nc.subscribe(">");
    const subjects: string[] = [];
    (async () => {
      for await (const m of natsSub) if (!m.subject.startsWith("$")) subjects.push(m.subject);
    })();
    await nc.flush();
    const pub = await connectMqtt(mqttUrl, { protocolVersion: version });
    for (const topic of ["foo.bar", "/foo", "foo//bar", "foo/"]) await pub.publishAsync(topic, "x");
    const deadline = Date.now() + 5000;
    while (subjects.length < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(subjects).toEqual(["foo//bar", "/.foo", "foo./.bar", "foo./"]);
    // And back: an MQTT subscriber gets `a.//b` as `a/.b`.
    const sub = await connectMqtt(mqttUrl, { protocolVersion: version });
    const got = collect(sub);
    await sub.subscribeAsync("a/#");
    nc.publish("a.//b", "encoded dot");
    expect((await got.wait(1))[0]!.topic).toBe("a/.b");
  });

  // nats-server 2.9.10 deviates: its `#` subscriber receives the server's own $MQTT/sess/… session records.
  test.skipIf(serverKind === "nats-server")("`#` and `+` at the first level do not match topics starting with `$` [MQTT-4.7.2-1]", async () => {
    const { server, mqttUrl } = await startMqttServer();
    const sub = await connectMqtt(mqttUrl, { protocolVersion: version });
    const got = collect(sub);
    await sub.subscribeAsync("#");
    await sub.subscribeAsync("+/status");
    await sub.subscribeAsync("$app/#");
    const nc = await connectV2(server);
    nc.publish("$app.status", "hidden from wildcards");
    nc.publish("app.status", "visible");
    const messages = await got.wait(3);
    // `app/status` matches `#` and `+/status` (two copies); `$app/status` only `$app/#`.
    expect(messages.map((m) => m.topic).sort()).toEqual(["$app/status", "app/status", "app/status"]);
  });

  test.skipIf(skipV5)("QoS 1 between MQTT clients is acknowledged and delivered with QoS 1", async () => {
    const { mqttUrl } = await startMqttServer();
    const sub = await connectMqtt(mqttUrl, { protocolVersion: version, clientId: "q1-sub" });
    const got = collect(sub);
    await sub.subscribeAsync("q/#", { qos: 1 });
    const pub = await connectMqtt(mqttUrl, { protocolVersion: version, clientId: "q1-pub" });
    await pub.publishAsync("q/one", "1", { qos: 1 });
    await pub.publishAsync("q/zero", "0", { qos: 0 });
    const messages = await got.wait(2);
    expect(messages.map((m) => [m.topic, m.packet.qos])).toEqual([["q/one", 1], ["q/zero", 0]]);
  });

  // nats-server 2.9.10 has no QoS 2 (2.10 added it).
  test.skipIf(serverKind === "nats-server")("QoS 1 and QoS 2 between MQTT clients are acknowledged and delivered once", async () => {
    const { mqttUrl } = await startMqttServer();
    const sub = await connectMqtt(mqttUrl, { protocolVersion: version, clientId: "q-sub" });
    const got = collect(sub);
    await sub.subscribeAsync("q/#", { qos: 2 });
    const pub = await connectMqtt(mqttUrl, { protocolVersion: version, clientId: "q-pub" });
    await pub.publishAsync("q/one", "1", { qos: 1 });
    await pub.publishAsync("q/two", "2", { qos: 2 });
    await pub.publishAsync("q/zero", "0", { qos: 0 });
    const messages = await got.wait(3);
    expect(messages.map((m) => [m.topic, m.packet.qos])).toEqual([["q/one", 1], ["q/two", 2], ["q/zero", 0]]);
  });
});
