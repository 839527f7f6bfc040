// MQTT test helpers: a server with an MQTT port (JetStream on, as nats-server requires), MQTT.js clients
// that are closed when the test ends, and a message collector with deadlines instead of sleeps.
import mqtt, { type IClientOptions, type MqttClient } from "mqtt";
import { afterAll, onTestFinished } from "vitest";
import { freePort, startServer, type RunningServer, type ServerOptions } from "../harness/server.ts";

export interface MqttServer {
  server: RunningServer;
  mqttPort: number;
  mqttUrl: string;
}

/** Starts the server with `mqtt { port }` (plus `mqttConfig` inside the block) and JetStream. */
export async function startMqttServer(opts: ServerOptions & { mqttConfig?: string } = {}): Promise<MqttServer> {
  const mqttPort = await freePort();
  const { mqttConfig, ...rest } = opts;
  const server = await startServer({
    jetstream: true,
    ...rest,
    // nats-server 2.9 wants a server name with MQTT (2.10 only in a cluster).
    config: `server_name: mqtt_test\n${rest.config ?? ""}\nmqtt {\n  port: ${mqttPort}\n  host: "127.0.0.1"\n${mqttConfig ?? ""}\n}\n`,
  });
  return { server, mqttPort, mqttUrl: `mqtt://127.0.0.1:${mqttPort}` };
}

const open = new Set<MqttClient>();
afterAll(async () => {
  await Promise.all([...open].map((c) => c.endAsync(true).catch(() => {})));
});

/** Connects MQTT.js (protocolVersion 4 or 5) and waits for CONNACK; rejects on a refused CONNECT. */
export async function connectMqtt(url: string, opts: IClientOptions = {}): Promise<MqttClient> {
  const client = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 10_000, protocolVersion: 4, ...opts });
  open.add(client);
  try {
    onTestFinished(async () => {
      open.delete(client);
      await client.endAsync(true).catch(() => {});
    });
  } catch {
    // outside a test: afterAll closes it
  }
  await new Promise<void>((resolve, reject) => {
    client.once("connect", () => resolve());
    client.once("error", (err) => reject(err));
    client.once("close", () => reject(new Error("closed before CONNACK")));
  });
  return client;
}

export interface Received {
  topic: string;
  payload: string;
  packet: mqtt.IPublishPacket;
}

/** Collects every message a client receives; `next(n)` waits for n of them. */
export function collect(client: MqttClient): { messages: Received[]; wait(n: number, ms?: number): Promise<Received[]> } {
  const messages: Received[] = [];
  client.on("message", (topic, payload, packet) => messages.push({ topic, payload: payload.toString(), packet }));
  return {
    messages,
    async wait(n: number, ms = 5000): Promise<Received[]> {
      const deadline = Date.now() + ms;
      while (messages.length < n) {
        if (Date.now() > deadline) throw new Error(`expected ${n} messages, got ${messages.length}: ${JSON.stringify(messages.map((m) => m.topic))}`);
        await new Promise((r) => setTimeout(r, 10));
      }
      return messages;
    },
  };
}
