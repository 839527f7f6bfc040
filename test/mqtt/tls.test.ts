// MQTT over TLS (mqtt { tls {} }), also mutual TLS (verify: true): certificates made at test time with
// openssl in a temp dir removed afterwards. Also run against nats-server 2.9.10.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { collect, connectMqtt, startMqttServer } from "./helpers.ts";

let dir: string;
const f = (name: string) => path.join(dir, name);
const openssl = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), "natter-mqtt-tls-"));
  openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=natter test CA");
  writeFileSync(f("server.ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n");
  openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost");
  openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "server.ext");
  writeFileSync(f("client.ext"), "extendedKeyUsage=clientAuth\n");
  openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "client.key", "-out", "client.csr", "-subj", "/CN=device-1");
  openssl("x509", "-req", "-in", "client.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "client.pem", "-days", "2", "-extfile", "client.ext");
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const tlsBlock = (extra = "") => `  tls {\n    cert_file: "${f("server.pem")}"\n    key_file: "${f("server.key")}"\n${extra}  }`;

describe("MQTT over TLS", () => {
  test("an MQTT client connects with mqtts:// and exchanges messages", async () => {
    const { mqttPort } = await startMqttServer({ mqttConfig: tlsBlock() });
    const client = await connectMqtt(`mqtts://127.0.0.1:${mqttPort}`, { ca: readFileSync(f("ca.pem")) });
    const got = collect(client);
    await client.subscribeAsync("secure/#");
    await client.publishAsync("secure/x", "over tls");
    expect((await got.wait(1))[0]!.payload).toBe("over tls");
  });

  test("with verify, a client certificate from the CA is required", async () => {
    const { mqttPort } = await startMqttServer({ mqttConfig: tlsBlock(`    ca_file: "${f("ca.pem")}"\n    verify: true\n`) });
    const url = `mqtts://127.0.0.1:${mqttPort}`;
    const ok = await connectMqtt(url, { ca: readFileSync(f("ca.pem")), cert: readFileSync(f("client.pem")), key: readFileSync(f("client.key")) });
    expect(ok.connected).toBe(true);
    await expect(connectMqtt(url, { ca: readFileSync(f("ca.pem")) })).rejects.toThrow();
  });
});
