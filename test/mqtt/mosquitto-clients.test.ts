// Interop with Debian's mosquitto_pub and mosquitto_sub (package mosquitto-clients), both protocol
// versions, with a NATS client on the other side.
import { spawn, spawnSync } from "node:child_process";
import { describe, expect, test } from "vitest";
import { connectV2 } from "../harness/clients.ts";
import { serverKind } from "../harness/server.ts";
import { waitFor } from "../harness/raw.ts";
import { startMqttServer } from "./helpers.ts";

const installed = spawnSync("sh", ["-c", "command -v mosquitto_pub && command -v mosquitto_sub"]).status === 0;
if (!installed) console.warn("mosquitto-clients is not installed (apt-get install mosquitto-clients): its interop tests are skipped");

function run(cmd: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe.skipIf(!installed).each(["mqttv311", "mqttv5"] as const)("mosquitto clients, %s", (version) => {
  const skip = version === "mqttv5" && serverKind === "nats-server";

  test.skipIf(skip)("mosquitto_pub at QoS 0 and 1 reaches a NATS subscriber", async () => {
    const { server, mqttPort } = await startMqttServer();
    const nc = await connectV2(server);
    const got: string[] = [];
    const sub = nc.subscribe("plant.line-1.>", { callback: (_e, m) => got.push(`${m.subject} ${m.string()}`) });
    await nc.flush();
    for (const qos of ["0", "1"]) {
      const r = await run("mosquitto_pub", ["-h", "127.0.0.1", "-p", String(mqttPort), "-V", version, "-q", qos, "-t", `plant/line-1/q${qos}`, "-m", `hello ${qos}`]);
      expect(r.code, r.stderr).toBe(0);
    }
    await waitFor(() => got.length === 2, 5000, "two messages");
    expect(got).toEqual(["plant.line-1.q0 hello 0", "plant.line-1.q1 hello 1"]);
    sub.unsubscribe();
  });

  test.skipIf(skip)("mosquitto_sub receives a NATS publish on the converted topic", async () => {
    const { server, mqttPort } = await startMqttServer();
    const nc = await connectV2(server);
    const child = spawn("mosquitto_sub", ["-h", "127.0.0.1", "-p", String(mqttPort), "-V", version, "-t", "plant/+/temp", "-v", "-C", "1"], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
    try {
      // Publish until the subscription is in place (mosquitto_sub prints nothing when it subscribed).
      await waitFor(async () => {
        nc.publish("plant.line-2.temp", "19");
        await nc.flush();
        return out.length > 0;
      }, 10_000, "mosquitto_sub output", 100);
      expect(await exited).toBe(0);
      expect(out.trim()).toBe("plant/line-2/temp 19");
    } finally {
      child.kill("SIGKILL");
    }
  });
});
