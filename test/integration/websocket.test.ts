// NATS over WebSocket: nats.ws clients, TCP↔WS traffic, and the framing itself through a raw WebSocket client.
import { createHash, randomBytes } from "node:crypto";
import net from "node:net";
import { beforeAll, describe, expect, test } from "vitest";
import { connectV2, connectWs, type Conn, dec, enc, type Msg, wsHeaders } from "../harness/clients.ts";
import { closeAfterTest, connectReady, waitFor } from "../harness/raw.ts";
import { type RunningServer, startServer } from "../harness/server.ts";
import { connectRawWs, WsOpcode } from "../harness/ws-raw.ts";

let srv: RunningServer; // ws, no compression
let zsrv: RunningServer; // ws with compression: true

beforeAll(async () => {
  [srv, zsrv] = await Promise.all([startServer({ ws: true }), startServer({ ws: true, wsCompression: true })]);
});

function collect(nc: Conn, subject: string) {
  const msgs: Msg[] = [];
  nc.subscribe(subject, { callback: (_e, m) => msgs.push(m) });
  return msgs;
}

const raws = (fs: { raw: string }[]) => fs.map((f) => f.raw);

describe("nats.ws client", () => {
  test("connects and gets the server's INFO", async () => {
    const nc = await connectWs(srv);
    expect(nc.info!.server_id).toEqual(expect.any(String));
    expect(nc.info!.headers).toBe(true);
    expect(nc.info!.proto).toBe(1);
    const got = collect(nc, "ws.self");
    nc.publish("ws.self", enc("loop"));
    await nc.flush();
    expect(got.map((m) => dec(m.data))).toEqual(["loop"]);
  });

  test("TCP → WS and WS → TCP", async () => {
    const ws = await connectWs(srv);
    const tcp = await connectV2(srv);
    const atWs = collect(ws, "to.ws");
    const atTcp = collect(tcp, "to.tcp");
    await Promise.all([ws.flush(), tcp.flush()]);
    for (let i = 0; i < 100; i++) {
      tcp.publish("to.ws", enc(`t${i}`));
      ws.publish("to.tcp", enc(`w${i}`));
    }
    await Promise.all([ws.flush(), tcp.flush()]);
    await Promise.all([ws.flush(), tcp.flush()]);
    expect(atWs.map((m) => dec(m.data))).toEqual(Array.from({ length: 100 }, (_, i) => `t${i}`));
    expect(atTcp.map((m) => dec(m.data))).toEqual(Array.from({ length: 100 }, (_, i) => `w${i}`));
  });

  test("request-reply and headers across TCP and WS, both directions", async () => {
    const ws = await connectWs(srv);
    const tcp = await connectV2(srv);
    tcp.subscribe("svc.tcp", { callback: (_e, m) => m.respond(enc(`tcp:${dec(m.data)}:${m.headers?.get("X-From")}`)) });
    ws.subscribe("svc.ws", {
      callback: (_e, m) => {
        const h = wsHeaders(200, "OK");
        h.append("X-Multi", "1");
        h.append("X-Multi", "2");
        m.respond(enc(`ws:${dec(m.data)}`), { headers: h });
      },
    });
    await Promise.all([ws.flush(), tcp.flush()]);
    const h = wsHeaders();
    h.set("X-From", "browser");
    const r1 = await ws.request("svc.tcp", enc("a"), { timeout: 5_000, headers: h });
    expect(dec(r1.data)).toBe("tcp:a:browser");
    const r2 = await tcp.request("svc.ws", enc("b"), { timeout: 5_000 });
    expect(dec(r2.data)).toBe("ws:b");
    expect(r2.headers?.code).toBe(200);
    expect(r2.headers?.values("X-Multi")).toEqual(["1", "2"]);
  });

  test("a large payload (512 KiB) crosses WS → TCP → WS intact", async () => {
    const ws = await connectWs(srv);
    const tcp = await connectV2(srv);
    tcp.subscribe("big.in", { callback: (_e, m) => tcp.publish("big.out", m.data) });
    const back = collect(ws, "big.out");
    await Promise.all([ws.flush(), tcp.flush()]);
    const payload = Uint8Array.from({ length: 512 * 1024 }, (_, i) => (i * 7) & 0xff);
    ws.publish("big.in", payload);
    // The TCP client republishes from its callback, after whatever PING a flush sent: wait for the result.
    await waitFor(() => back.length >= 1, 10_000, "the payload to come back over WS");
    await ws.flush();
    expect(back.length).toBe(1);
    expect(Buffer.from(back[0]!.data).equals(Buffer.from(payload))).toBe(true);
  });
});

describe("raw WebSocket", () => {
  test("the upgrade answers 101 with the right Sec-WebSocket-Accept; the server sends binary frames", async () => {
    const c = await connectRawWs(srv.wsPort!);
    expect(c.handshake.status).toBe(101);
    expect(c.handshake.headers.upgrade?.toLowerCase()).toBe("websocket");
    expect(c.handshake.headers.connection?.toLowerCase()).toContain("upgrade");
    expect(c.handshake.headers["sec-websocket-extensions"]).toBeUndefined();
    expect(c.info!.server_id).toEqual(expect.any(String));
    c.send('CONNECT {"verbose":false}\r\nSUB f 1\r\nPUB f 2\r\nhi\r\n');
    expect(raws(await c.flush())).toEqual(["MSG f 1 2\r\nhi\r\n"]);
    expect(c.wsFrames.length).toBeGreaterThan(0);
    for (const f of c.wsFrames) {
      expect(f.opcode).toBe(WsOpcode.binary);
      expect(f.rsv1).toBe(false);
    }
  });

  test("Sec-WebSocket-Accept is base64(sha1(key + GUID))", async () => {
    const key = "dGhlIHNhbXBsZSBub25jZQ==";
    const sock = closeAfterTest(net.connect({ host: "127.0.0.1", port: srv.wsPort! }));
    const head = await new Promise<string>((resolve, reject) => {
      let buf = "";
      sock.on("error", reject);
      sock.on("data", (d) => {
        buf += d.toString("latin1");
        const end = buf.indexOf("\r\n\r\n");
        if (end >= 0) resolve(buf.slice(0, end));
      });
      sock.write(`GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    });
    const want = createHash("sha1").update(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest("base64");
    expect(want).toBe("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    expect(head).toMatch(/^HTTP\/1\.1 101 /);
    expect(head).toContain(`\r\nSec-WebSocket-Accept: ${want}`);
  });

  test("ops may span frames", async () => {
    const c = await connectRawWs(srv.wsPort!);
    const parts = ['CONNECT {"verb', 'ose":false}\r\nSUB sp', "an 1\r\nPUB span 5\r\nhel", "lo\r", "\nPI", "NG\r\n"];
    for (const p of parts) c.sendFrame(p);
    expect(raws(await c.readUntil((f) => f.op === "PONG"))).toEqual(["MSG span 1 5\r\nhello\r\n", "PONG\r\n"]);
  });

  test("a fragmented message (continuation frames) is one byte stream too", async () => {
    const c = await connectRawWs(srv.wsPort!);
    c.sendFrame('CONNECT {"verbose":false}\r\nSUB fr 1\r\nPU', { fin: false });
    c.sendFrame("B fr 3\r\nab", { opcode: WsOpcode.continuation, fin: false });
    c.sendFrame("c\r\nPING\r\n", { opcode: WsOpcode.continuation, fin: true });
    expect(raws(await c.readUntil((f) => f.op === "PONG"))).toEqual(["MSG fr 1 3\r\nabc\r\n", "PONG\r\n"]);
  });

  test("text frames are accepted", async () => {
    const c = await connectRawWs(srv.wsPort!);
    c.sendFrame('CONNECT {"verbose":false}\r\nSUB tx 1\r\n', { opcode: WsOpcode.text });
    c.sendFrame("PUB tx 4\r\ntext\r\nPING\r\n", { opcode: WsOpcode.text });
    expect(raws(await c.readUntil((f) => f.op === "PONG"))).toEqual(["MSG tx 1 4\r\ntext\r\n", "PONG\r\n"]);
  });

  test("a WebSocket client and a TCP client see the same protocol errors", async () => {
    const c = await connectRawWs(srv.wsPort!);
    c.send('CONNECT {"verbose":false}\r\nSUB a..b 1\r\nPING\r\n');
    expect(raws(await c.readUntil((f) => f.op === "PONG"))).toEqual(["-ERR 'Invalid Subject'\r\n", "PONG\r\n"]);
    c.send("BOGUS\r\n");
    await c.expect("-ERR 'Unknown Protocol Operation'\r\n");
    expect(await c.waitClosed()).toBe(true);
  });

  test("without compression configured, a permessage-deflate offer is declined", async () => {
    const c = await connectRawWs(srv.wsPort!, { extensions: "permessage-deflate; client_max_window_bits" });
    expect(c.handshake.status).toBe(101);
    expect(c.handshake.headers["sec-websocket-extensions"]).toBeUndefined();
    c.send('CONNECT {"verbose":false}\r\nPING\r\n');
    await c.expect("PONG\r\n");
    expect(c.wsFrames.every((f) => !f.rsv1)).toBe(true);
  });

  test("with compression configured, a permessage-deflate offer is accepted without context takeover", async () => {
    const c = await connectRawWs(zsrv.wsPort!, { extensions: "permessage-deflate; client_max_window_bits" });
    expect(c.handshake.status).toBe(101);
    const ext = c.handshake.headers["sec-websocket-extensions"] ?? "";
    const params = ext.split(";").map((s) => s.trim());
    expect(params[0]).toBe("permessage-deflate");
    expect(params).toContain("server_no_context_takeover");
    expect(params).toContain("client_no_context_takeover");
    // The INFO (> 64 bytes) came compressed and was inflated by the client.
    expect(c.info!.server_id).toEqual(expect.any(String));
    expect(c.wsFrames[0]!.rsv1).toBe(true);

    // Compressed frames from the client are understood, also split across messages.
    c.sendCompressed('CONNECT {"verbose":false}\r\nSUB z 1\r\n');
    c.sendCompressed("PUB z 1000\r\n" + "z".repeat(500));
    c.sendFrame("z".repeat(500) + "\r\n"); // an uncompressed message in between is fine too
    c.sendCompressed("PING\r\n");
    const frames = await c.readUntil((f) => f.op === "PONG");
    expect(frames.map((f) => f.line)).toEqual(["MSG z 1 1000", "PONG"]);
    expect(frames[0]!.payload!.toString()).toBe("z".repeat(1000));
    expect(c.wsFrames.slice(1).some((f) => f.rsv1)).toBe(true); // the 1000-byte MSG came compressed

    // Small frames (≤ 64 bytes) go uncompressed: a lone PONG.
    const before = c.wsFrames.length;
    c.sendCompressed("PING\r\n");
    await c.expect("PONG\r\n");
    const after = c.wsFrames.slice(before).filter((f) => f.payload.toString("latin1") !== "PING\r\n"); // the server's own first PING may slip in
    expect(after.map((f) => [f.rsv1, f.payload.toString("latin1")])).toEqual([[false, "PONG\r\n"]]);
  });

  test("a large message that does not compress goes out uncompressed (RSV1 clear), a large one that does compressed", async () => {
    const c = await connectRawWs(zsrv.wsPort!, { extensions: "permessage-deflate; client_max_window_bits" });
    c.send('CONNECT {"verbose":false}\r\nSUB big 1\r\nPING\r\n');
    await c.expect("PONG\r\n");
    const publisher = await connectReady(zsrv.port);
    const size = 256 * 1024;
    const random = randomBytes(size);
    const text = Buffer.from("natter speaks NATS over WebSocket; ".repeat(size / 32).slice(0, size));
    for (const payload of [random, text]) {
      const before = c.wsFrames.length;
      publisher.send(Buffer.concat([Buffer.from(`PUB big ${size}\r\n`), payload, Buffer.from("\r\n")]));
      const [msg] = await c.readUntil((f) => f.op === "MSG", 10_000);
      expect(msg!.payload!.equals(payload)).toBe(true);
      const frames = c.wsFrames.slice(before).filter((f) => f.payload.length > 1024);
      expect(frames.length).toBeGreaterThan(0);
      // nats-server 2.9.10 deflates every message; natter skips deflate where a sample shows it would not pay.
      if (zsrv.kind === "natter") expect(frames.every((f) => f.rsv1 === (payload === text))).toBe(true);
    }
  });

  test("without an offer, the compressing server sends plain frames", async () => {
    const c = await connectRawWs(zsrv.wsPort!);
    expect(c.handshake.headers["sec-websocket-extensions"]).toBeUndefined();
    c.send('CONNECT {"verbose":false}\r\nSUB p 1\r\nPUB p 1000\r\n' + "p".repeat(1000) + "\r\n");
    expect((await c.flush()).map((f) => f.line)).toEqual(["MSG p 1 1000"]);
    expect(c.wsFrames.every((f) => !f.rsv1)).toBe(true);
  });

  test("nats.ws works against the compressing server", async () => {
    const ws = await connectWs(zsrv);
    const tcp = await connectV2(zsrv);
    const got = collect(ws, "zz");
    await ws.flush();
    tcp.publish("zz", enc("y".repeat(10_000)));
    await tcp.flush();
    await ws.flush();
    expect(got.map((m) => m.data.length)).toEqual([10_000]);
  });

  test("a plain HTTP request is refused: 400 without the upgrade headers, 405 for a POST", async () => {
    const ask = (req: string) => {
      const sock = closeAfterTest(net.connect({ host: "127.0.0.1", port: srv.wsPort! }));
      return new Promise<string>((resolve, reject) => {
        let buf = "";
        sock.on("error", reject);
        sock.on("data", (d) => {
          buf += d.toString("latin1");
          if (buf.includes("\r\n")) resolve(buf.slice(0, buf.indexOf("\r\n")));
        });
        sock.write(req);
      });
    };
    expect(await ask("GET / HTTP/1.1\r\nHost: x\r\n\r\n")).toMatch(/^HTTP\/1\.1 400 /);
    expect(
      await ask("POST / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nContent-Length: 0\r\n\r\n"),
    ).toMatch(/^HTTP\/1\.1 405 /);
    expect(await ask("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n")).toMatch(/^HTTP\/1\.1 400 /);
    expect(await ask("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n")).toMatch(/^HTTP\/1\.1 400 /);
    // Each refusal is an error line without -D, in nats-server's words.
    for (const reason of ["invalid value for header 'Upgrade'", "request method must be GET", "key missing", "invalid version"]) {
      await waitFor(() => new RegExp(`\\[ERR\\] 127\\.0\\.0\\.1:\\d+ - websocket handshake error: ${reason}\\n`).test(srv.log()), 5_000, reason);
    }
  });
});

/** Sends a WebSocket upgrade request (with an Origin when given) and returns the HTTP status code. */
function upgradeStatus(port: number, origin: string | null, host = `127.0.0.1:${port}`): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = closeAfterTest(net.connect({ host: "127.0.0.1", port }));
    let answer = "";
    const timer = setTimeout(() => reject(new Error(`no upgrade answer: ${JSON.stringify(answer)}`)), 10_000);
    socket.on("connect", () => {
      const lines = [
        "GET / HTTP/1.1",
        `Host: ${host}`,
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Version: 13",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
      ];
      if (origin !== null) lines.push(`Origin: ${origin}`);
      socket.write(`${lines.join("\r\n")}\r\n\r\n`);
    });
    socket.on("data", (d) => {
      answer += d.toString("latin1");
      const m = /^HTTP\/1\.1 (\d{3})/.exec(answer);
      if (m) {
        clearTimeout(timer);
        socket.destroy();
        resolve(Number(m[1]));
      }
    });
    socket.on("error", reject);
  });
}

describe("origins", () => {
  test("allowed_origins: a listed origin is upgraded, another gets 403, a request without Origin is accepted", async () => {
    const s = await startServer({ wsAllowedOrigins: ["http://good.example", "https://also.example:8443"] });
    expect(await upgradeStatus(s.wsPort!, "http://good.example")).toBe(101);
    expect(await upgradeStatus(s.wsPort!, "https://also.example:8443")).toBe(101);
    expect(await upgradeStatus(s.wsPort!, "http://evil.example")).toBe(403);
    expect(await upgradeStatus(s.wsPort!, "https://good.example")).toBe(403); // scheme counts
    expect(await upgradeStatus(s.wsPort!, null)).toBe(101);
    // Each refusal is an error line without -D, in nats-server's words.
    const refusals = () => s.log().match(/\[ERR\] 127\.0\.0\.1:\d+ - websocket handshake error: origin not allowed: not in the allowed list\n/g) ?? [];
    await waitFor(() => refusals().length === 2, 5_000, "two refusals logged");
  });

  test("same_origin: only an Origin naming the server's own host and port is upgraded", async () => {
    const s = await startServer({ wsSameOrigin: true });
    expect(await upgradeStatus(s.wsPort!, `http://127.0.0.1:${s.wsPort}`)).toBe(101);
    expect(await upgradeStatus(s.wsPort!, "http://127.0.0.1:1")).toBe(403);
    expect(await upgradeStatus(s.wsPort!, null)).toBe(101);
    await waitFor(() => /\[ERR\] 127\.0\.0\.1:\d+ - websocket handshake error: origin not allowed: not same origin\n/.test(s.log()), 5_000, "the refusal logged");
  });
});
