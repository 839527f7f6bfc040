// `natter --procs 2 -js --mqtt_port P`: the workers share the MQTT port (SO_REUSEPORT) as they share the client
// port, and keep MQTT sessions, retained and QoS 1/2 messages in their one JetStream (they are the nodes of a
// cluster, as in test/mqtt/cluster.test.ts): a QoS 1 publish on one worker reaches a subscriber on the other,
// and a kept session gets what was published while it was away, wherever it reconnects.
import { afterAll, describe, expect, onTestFinished, test } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import mqtt, { type MqttClient } from "mqtt";
import { freePort } from "../harness/server.ts";
import { waitFor } from "../cluster/spawn.ts";
import { collect, connectMqtt } from "../mqtt/helpers.ts";
import { runToExit, startProcs, stopAll, type Procs } from "./procs-harness.ts";

const tmp = mkdtempSync(path.join(os.tmpdir(), "natter-procs-mqtt-"));
afterAll(async () => {
  await stopAll();
  rmSync(tmp, { recursive: true, force: true });
});

/** Is this MQTT client id connected to worker 0 (the only worker with a monitor port)? */
async function onWorker0(p: Procs, clientId: string): Promise<boolean> {
  const connz = (await (await fetch(`http://127.0.0.1:${p.httpPort}/connz?limit=1024`)).json()) as { connections?: { mqtt_client?: string }[] };
  return (connz.connections ?? []).some((c) => c.mqtt_client === clientId);
}

describe("--procs with MQTT", () => {
  test("clients on both workers: QoS 1 across them; a kept session gets what came while it was away", async () => {
    const mqttPort = await freePort();
    const p = await startProcs(["-js", "-sd", tmp, "--mqtt_port", String(mqttPort)]);
    const url = `mqtt://127.0.0.1:${mqttPort}`;
    // The kernel picks each connection's worker: connect until there is one client on each.
    let first: MqttClient | null = null;
    let second: MqttClient | null = null;
    for (let i = 0; i < 40 && (first === null || second === null); i++) {
      const id = `probe-${i}`;
      const c = await connectMqtt(url, { clientId: id });
      const zero = await onWorker0(p, id);
      if (zero && first === null) first = c;
      else if (!zero && second === null) second = c;
      else await c.endAsync();
    }
    expect(first).not.toBeNull();
    expect(second).not.toBeNull();
    const got = collect(second!);
    await second!.subscribeAsync("plant/+/temp", { qos: 1 });
    // Interest reaches the other worker over the route asynchronously: publish until one arrives.
    await waitFor("a QoS 1 message from worker 0 on worker 1", async () => {
      await first!.publishAsync("plant/line-1/temp", "20", { qos: 1 });
      return got.messages.some((m) => m.topic === "plant/line-1/temp" && m.packet.qos === 1);
    }, 15_000);

    const keeper = await connectMqtt(url, { clientId: "keeper", clean: false });
    await keeper.subscribeAsync("kept/#", { qos: 1 });
    await keeper.endAsync();
    for (const publisher of [first!, second!]) await publisher.publishAsync("kept/1", "while away", { qos: 1 });
    // Collecting before CONNACK: the kept messages may come in the same read.
    const back = mqtt.connect(url, { clientId: "keeper", clean: false, connectTimeout: 20_000, reconnectPeriod: 0, protocolVersion: 4 });
    onTestFinished(() => back.endAsync(true).catch(() => {}));
    const kept = collect(back);
    const messages = await kept.wait(2, 15_000);
    expect(messages.map((m) => [m.topic, m.payload])).toEqual([["kept/1", "while away"], ["kept/1", "while away"]]);
  }, 60_000);

  test("without JetStream MQTT is refused with one line", async () => {
    const mqttPort = await freePort();
    const run = await runToExit(["--procs", "2", "-p", "-1", "--mqtt_port", String(mqttPort)]);
    expect(run.code).toBe(1);
    expect(run.stderr.trim()).toBe("natter: mqtt with --procs greater than 1 needs JetStream (-js): the workers keep MQTT sessions in it (see --help)");
  });
});
