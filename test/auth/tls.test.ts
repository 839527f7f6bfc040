// TLS on the client port and on WebSocket (wss), mutual TLS with verify, and what a plaintext client
// gets. Certificates are made at test time with openssl (a CA, a server certificate for 127.0.0.1 and
// localhost, a client certificate from the CA, and a self-signed "rogue" one) in a temp dir removed
// afterwards. Also run against nats-server 2.9.10 (NATTER_TEST_SERVER=nats-server), except where marked.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import net from "node:net";
import tls from "node:tls";
import { afterAll, beforeAll, describe, expect, onTestFinished, test } from "vitest";
import { spawn } from "node:child_process";
import * as v2 from "nats";
import { closeAfterTest, connectRaw, waitFor } from "../harness/raw.ts";
import { freePort, serverKind, startServer, type RunningServer } from "../harness/server.ts";
import { connectV2, connectV3 } from "../harness/clients.ts";
import { connectLine } from "./helpers.ts";

const natterOnly = serverKind === "natter" ? test : test.skip;

let dir: string;
const f = (name: string) => path.join(dir, name);

function openssl(...args: string[]): void {
  execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
}

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), "natter-tls-"));
  openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=natter test CA");
  writeFileSync(f("server.ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n");
  openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost");
  openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "server.ext");
  writeFileSync(f("client.ext"), "extendedKeyUsage=clientAuth\n");
  openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "client.key", "-out", "client.csr", "-subj", "/CN=client");
  openssl("x509", "-req", "-in", "client.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "client.pem", "-days", "2", "-extfile", "client.ext");
  openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "rogue.key", "-out", "rogue.pem", "-days", "2", "-subj", "/CN=rogue");
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const tlsBlock = (extra = "") => `tls {\n  cert_file: "${f("server.pem")}"\n  key_file: "${f("server.key")}"\n${extra}}\n`;

/** A pub/sub round trip on one connection. */
async function roundTrip(nc: v2.NatsConnection): Promise<void> {
  const sub = nc.subscribe("tls.ping", { max: 1 });
  nc.publish("tls.ping", "x");
  for await (const m of sub) expect(m.string()).toBe("x");
}

/**
 * A raw client the NATS way: read the plaintext INFO, then TLS on the same socket; then CONNECT/PING.
 * Resolves with what came back after the handshake ("PONG\r\n"), or rejects with the TLS error.
 */
function rawTls(port: number, options: tls.ConnectionOptions = {}): Promise<{ info: Record<string, unknown>; reply: string }> {
  return new Promise((resolve, reject) => {
    const socket = closeAfterTest(net.connect({ host: "127.0.0.1", port }));
    let head = "";
    const onInfo = (d: Buffer) => {
      head += d.toString("latin1");
      const end = head.indexOf("\r\n");
      if (end < 0) return;
      socket.off("data", onInfo);
      const info = JSON.parse(head.slice(5, end)) as Record<string, unknown>;
      const secure = closeAfterTest(tls.connect({ socket, ca: [readFileSync(f("ca.pem"))], servername: "localhost", ...options }));
      let reply = "";
      secure.on("secureConnect", () => secure.write(connectLine({}) + "PING\r\n"));
      secure.on("data", (b: Buffer) => {
        reply += b.toString("latin1");
        if (reply.includes("\r\n")) resolve({ info, reply });
      });
      secure.on("error", reject);
      secure.on("close", () => reject(new Error(`closed; got ${JSON.stringify(reply)}`)));
    };
    socket.on("data", onInfo);
    socket.on("error", reject);
  });
}

describe("TLS on the client port", () => {
  let srv: RunningServer;
  beforeAll(async () => {
    srv = await startServer({ config: tlsBlock() });
  });

  test("INFO comes in plaintext with tls_required, then the client upgrades (raw)", async () => {
    const { info, reply } = await rawTls(srv.port);
    expect(info.tls_required).toBe(true);
    expect(reply).toBe("PONG\r\n");
  });

  test("nats.js v2 and v3 clients connect with the CA and work", async () => {
    await roundTrip(await connectV2(srv, { tls: { caFile: f("ca.pem") } }));
    await roundTrip(await connectV3(srv, { tls: { caFile: f("ca.pem") } }));
  });

  test("a client that does not trust the server's CA fails the handshake", async () => {
    await expect(connectV2(srv, { tls: { caFile: f("rogue.pem") } })).rejects.toThrow();
  });

  test("a plaintext CONNECT after the INFO is closed, without a NATS error", async () => {
    const c = await connectRaw(srv.port);
    expect(c.info?.tls_required).toBe(true);
    c.send(connectLine({}) + "PING\r\n");
    expect(await c.waitClosed(5_000)).toBe(true);
    expect(c.frames.filter((fr) => fr.op === "PONG" || fr.op === "-ERR" || fr.op === "+OK")).toEqual([]);
  });
});

describe("TLS from the flags", () => {
  test("--tls --tlscert --tlskey", async () => {
    const srv = await startServer({ args: ["--tls", "--tlscert", f("server.pem"), "--tlskey", f("server.key")] });
    await roundTrip(await connectV2(srv, { tls: { caFile: f("ca.pem") } }));
  });

  test("--tlsverify --tlscacert: a client certificate is required", async () => {
    const srv = await startServer({ args: ["--tlsverify", "--tlscert", f("server.pem"), "--tlskey", f("server.key"), "--tlscacert", f("ca.pem")] });
    await roundTrip(await connectV2(srv, { tls: { caFile: f("ca.pem"), certFile: f("client.pem"), keyFile: f("client.key") } }));
    await expect(connectV2(srv, { tls: { caFile: f("ca.pem") } })).rejects.toThrow();
  });
});

describe("mutual TLS (verify)", () => {
  let srv: RunningServer;
  beforeAll(async () => {
    srv = await startServer({ config: tlsBlock(`  ca_file: "${f("ca.pem")}"\n  verify: true\n`) });
  });

  test("INFO says tls_required and tls_verify", async () => {
    const c = await connectRaw(srv.port);
    expect(c.info?.tls_required).toBe(true);
    expect(c.info?.tls_verify).toBe(true);
  });

  test("a client certificate from the CA is let in", async () => {
    const { reply } = await rawTls(srv.port, { cert: readFileSync(f("client.pem")), key: readFileSync(f("client.key")) });
    expect(reply).toBe("PONG\r\n");
    await roundTrip(await connectV2(srv, { tls: { caFile: f("ca.pem"), certFile: f("client.pem"), keyFile: f("client.key") } }));
  });

  test("no client certificate, or a self-signed one: the handshake fails, the client never gets in", async () => {
    await expect(rawTls(srv.port)).rejects.toThrow();
    await expect(rawTls(srv.port, { cert: readFileSync(f("rogue.pem")), key: readFileSync(f("rogue.key")) })).rejects.toThrow();
    await expect(connectV2(srv, { tls: { caFile: f("ca.pem") } })).rejects.toThrow();
  });
});

describe("allow_non_tls: TLS and plaintext clients on one port", () => {
  let srv: RunningServer;
  beforeAll(async () => {
    srv = await startServer({ config: tlsBlock() + "allow_non_tls: true\n" });
  });

  test("INFO offers TLS (tls_available) without requiring it", async () => {
    const c = await connectRaw(srv.port);
    expect(c.info?.tls_available).toBe(true);
    expect(c.info?.tls_required).toBeUndefined();
  });

  test("a plaintext client speaks NATS at once; a TLS client upgrades after the INFO (raw)", async () => {
    const c = await connectRaw(srv.port);
    c.send(connectLine({}) + "PING\r\n");
    await waitFor(() => c.frames.some((fr) => fr.op === "PONG"), 5_000, "PONG in plaintext");
    expect(c.frames.filter((fr) => fr.op === "-ERR")).toEqual([]);
    const { info, reply } = await rawTls(srv.port);
    expect(info.tls_available).toBe(true);
    expect(reply).toBe("PONG\r\n");
  });

  test("a plaintext and a TLS nats.js client exchange messages through the one port", async () => {
    const plain = await connectV2(srv, { tls: null }); // nats.js upgrades when TLS is available unless told not to
    const secure = await connectV2(srv, { tls: { caFile: f("ca.pem") } });
    await roundTrip(plain);
    await roundTrip(secure);
    await roundTrip(await connectV3(srv, { tls: { caFile: f("ca.pem") } }));
    const got: string[] = [];
    const sub = secure.subscribe("mixed.>", { callback: (_e, m) => void got.push(m.string()) });
    await secure.flush();
    plain.publish("mixed.a", "from plaintext");
    await plain.flush();
    await waitFor(() => got.length === 1, 5_000, "the TLS client's message");
    expect(got).toEqual(["from plaintext"]);
    sub.unsubscribe();
    // A large message both ways exercises TLS writes that fill the socket.
    const big = "x".repeat(512 * 1024);
    const back: number[] = [];
    plain.subscribe("mixed.big", { callback: (_e, m) => void back.push(m.data.length) });
    await plain.flush();
    for (let i = 0; i < 4; i++) secure.publish("mixed.big", big);
    await secure.flush();
    await waitFor(() => back.length === 4, 10_000, "large messages from the TLS client");
    expect(back).toEqual([big.length, big.length, big.length, big.length]);
  });
});

// min_version is nats-server 2.10's (2.9.10 refuses the key): natter only.
describe("tls { min_version }", () => {
  natterOnly("1.3: a client limited to TLS 1.2 fails the handshake, a TLS 1.3 client gets in", async () => {
    const srv = await startServer({ config: tlsBlock('  min_version: "1.3"\n  insecure: false\n') });
    await expect(rawTls(srv.port, { maxVersion: "TLSv1.2" })).rejects.toThrow();
    const { reply } = await rawTls(srv.port, { minVersion: "TLSv1.3" });
    expect(reply).toBe("PONG\r\n");
  });

  natterOnly("1.2 (the default): a TLS 1.2 client gets in", async () => {
    const srv = await startServer({ config: tlsBlock('  min_version: "1.2"\n') });
    const { reply } = await rawTls(srv.port, { maxVersion: "TLSv1.2" });
    expect(reply).toBe("PONG\r\n");
  });
});

describe("tls { cipher_suites }", () => {
  test("Go's suite names: a TLS 1.2 client offering only another suite fails, one offering a listed suite gets in", async () => {
    const srv = await startServer({ config: tlsBlock('  cipher_suites: ["TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"]\n') });
    await expect(rawTls(srv.port, { maxVersion: "TLSv1.2", ciphers: "ECDHE-RSA-AES128-GCM-SHA256" })).rejects.toThrow();
    const { reply } = await rawTls(srv.port, { maxVersion: "TLSv1.2", ciphers: "ECDHE-RSA-AES256-GCM-SHA384" });
    expect(reply).toBe("PONG\r\n");
  });
});

describe("tls { connection_rate_limit }", () => {
  test("TLS connections past the limit in a second get INFO, the throttling -ERR and a close", async () => {
    const srv = await startServer({ config: tlsBlock("  connection_rate_limit: 2\n") });
    // Five connections at once: at most two a second start TLS (the harness's readiness probe may have taken
    // one); the rest are refused in plaintext. Those let in wait for a handshake they never get.
    const clients = await Promise.all(Array.from({ length: 5 }, () => connectRaw(srv.port)));
    const closed = await Promise.all(clients.map((c) => c.waitClosed(1_000)));
    const refused = clients.filter((_c, i) => closed[i]);
    expect(refused.length).toBeGreaterThanOrEqual(3);
    expect(refused.length).toBeLessThanOrEqual(4);
    for (const c of refused) {
      expect(c.info?.tls_required).toBe(true);
      expect(c.frames.map((f) => f.raw)).toEqual(["-ERR 'Connection throttling is active. Please try again later.'\r\n"]);
    }
  });
});

describe("TLS with authentication", () => {
  test("user and password over TLS; a wrong password still gets the violation (inside TLS)", async () => {
    const srv = await startServer({ config: tlsBlock() + "authorization { user: tu, password: tp }\n" });
    await roundTrip(await connectV2(srv, { user: "tu", pass: "tp", tls: { caFile: f("ca.pem") } }));
    await expect(connectV2(srv, { user: "tu", pass: "no", tls: { caFile: f("ca.pem") } })).rejects.toMatchObject({ code: v2.ErrorCode.AuthorizationViolation });
  });
});

describe("TLS handshake timeout", () => {
  test("a client that never starts the handshake is closed after tls.timeout", async () => {
    const srv = await startServer({ config: tlsBlock("  timeout: 1\n") });
    const c = await connectRaw(srv.port);
    const started = Date.now();
    expect(await c.waitClosed(5_000)).toBe(true);
    const waited = Date.now() - started;
    expect(waited).toBeGreaterThanOrEqual(700);
    expect(waited).toBeLessThan(4_000);
  });
});

describe("wss", () => {
  test("websocket { tls {...} }: a wss client gets INFO and speaks NATS", async () => {
    const srv = await startServer({
      ws: true,
      config: `websocket {\n  host: 127.0.0.1\n  port: {{ws_port}}\n  tls {\n    cert_file: "${f("server.pem")}"\n    key_file: "${f("server.key")}"\n  }\n}\n`,
    });
    const got = await new Promise<string>((resolve, reject) => {
      // Bun's WebSocket client takes TLS options (the CA to trust).
      const ws = new WebSocket(`wss://127.0.0.1:${srv.wsPort}`, { tls: { ca: readFileSync(f("ca.pem"), "utf8") } } as unknown as string[]);
      ws.binaryType = "arraybuffer";
      let text = "";
      const timer = setTimeout(() => reject(new Error(`no answer: ${JSON.stringify(text)}`)), 5_000);
      ws.onmessage = (e) => {
        const first = text === "";
        text += Buffer.from(e.data as ArrayBuffer).toString("latin1");
        if (first) ws.send(connectLine({}) + "PING\r\n");
        if (text.includes("PONG")) {
          clearTimeout(timer);
          ws.close();
          resolve(text);
        }
      };
      ws.onerror = (e) => reject(new Error(`websocket error: ${String((e as ErrorEvent).message ?? e)}`));
    });
    expect(got).toMatch(/^INFO \{.*\} \r\nPONG\r\n$/);
  });
});

describe("natter: handshake_first", () => {
  natterOnly("tls { handshake_first: true }: TLS from the first byte; INFO comes inside TLS", async () => {
    // The harness waits for a plaintext INFO, which this server never sends: start it here.
    const port = await freePort();
    const conf = f("first.conf");
    writeFileSync(conf, `listen: "127.0.0.1:${port}"\n${tlsBlock("  handshake_first: true\n")}`);
    const child = spawn(path.resolve(import.meta.dirname, "../../node_modules/.bin/bun"), [path.resolve(import.meta.dirname, "../../src/main.ts"), "-c", conf], { stdio: ["ignore", "pipe", "pipe"] });
    onTestFinished(() => {
      child.kill("SIGKILL");
    });
    let log = "";
    child.stderr!.on("data", (d: Buffer) => (log += d.toString()));
    await waitFor(() => log.includes("Server is ready"), 15_000, "natter to start");
    const nc = await v2.connect({ servers: `127.0.0.1:${port}`, reconnect: false, tls: { caFile: f("ca.pem"), handshakeFirst: true } });
    try {
      await roundTrip(nc);
      expect(nc.info?.tls_required).toBe(true);
    } finally {
      await nc.close();
    }
    // A client that waits for a plaintext INFO gets none: the server waits for a ClientHello.
    const socket = closeAfterTest(net.connect({ host: "127.0.0.1", port }));
    let plain = "";
    socket.on("data", (d: Buffer) => (plain += d.toString("latin1")));
    await new Promise((r) => setTimeout(r, 300));
    expect(plain).toBe("");
  });
});
