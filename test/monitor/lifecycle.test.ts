// The monitor inside a Server (in-process): random port (-m -1), httpPort getter, off when -m 0,
// closed-connection snapshots, WebSocket clients in /connz and /varz, and 503 from /healthz once
// the server is shutting down.
import net from "node:net";
import { afterEach, expect, test } from "vitest";
import { Logger } from "../../src/log.ts";
import { createMonitorHandler } from "../../src/monitor/http.ts";
import { defaultOptions, type Options } from "../../src/options.ts";
import { Server } from "../../src/server.ts";
import { loadOptionalModules } from "../../src/optional-modules.ts";

// An in-process server takes its optional modules (the monitor here) from what was loaded, as main.ts does.
await loadOptionalModules({ ...defaultOptions, httpPort: -1 });

class QuietLogger extends Logger {
  readonly lines: string[] = [];
  constructor() {
    super(false, false);
  }
  override info(text: string): void {
    this.lines.push(text);
  }
  override warn(text: string): void {
    this.lines.push(text);
  }
  override error(text: string): void {
    this.lines.push(text);
  }
}

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.shutdown()));
});

function startServer(overrides: Partial<Options>): { server: Server; log: QuietLogger } {
  const log = new QuietLogger();
  const server = new Server({ ...defaultOptions, wsAllowedOrigins: [], host: "127.0.0.1", port: -1, ...overrides }, log);
  servers.push(server);
  server.start();
  return { server, log };
}

async function json(port: number, path: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(5_000) });
  return { status: res.status, body: await res.json() };
}

/** A raw client: CONNECT, a SUB, a PING; resolves on the PONG. */
function rawClient(port: number, name: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: "127.0.0.1", port });
    let buf = "";
    sock.on("data", (d) => {
      buf += d.toString();
      if (buf.includes("PONG\r\n")) resolve(sock);
    });
    sock.on("error", reject);
    sock.write(`CONNECT {"verbose":false,"pedantic":false,"name":"${name}","lang":"raw"}\r\nSUB a.b 1\r\nPING\r\n`);
  });
}

test("-m -1 picks a free port; the log line and httpPort say which", async () => {
  const { server, log } = startServer({ httpPort: -1 });
  expect(server.httpPort).toBeGreaterThan(0);
  expect(log.lines).toContain(`Starting http monitor on 127.0.0.1:${server.httpPort}`);
  const v = await json(server.httpPort, "/varz");
  expect(v.body.http_port).toBe(server.httpPort);
  expect(v.body.port).toBe(server.port);
});

test("--http_host overrides the client host; -m 0 leaves the monitor off", async () => {
  const { server } = startServer({ httpPort: -1, httpHost: "127.0.0.1", host: "0.0.0.0" });
  expect((await json(server.httpPort, "/varz")).body.http_host).toBe("127.0.0.1");
  const off = startServer({ httpPort: 0 });
  expect(off.server.httpPort).toBe(0);
  expect(off.log.lines.some((l) => l.includes("http monitor"))).toBe(false);
});

test("closed connections are snapshotted with reason, counters and stop time", async () => {
  const { server } = startServer({ httpPort: -1 });
  const sock = await rawClient(server.port, "short-lived");
  const open = await json(server.httpPort, "/connz?subs=1");
  expect(open.body.connections[0]).toMatchObject({ name: "short-lived", lang: "raw", subscriptions: 1, subscriptions_list: ["a.b"] });
  sock.destroy();
  const deadline = Date.now() + 5_000;
  while (server.closedConnections.size === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  const closed = await json(server.httpPort, "/connz?state=closed");
  expect(closed.body).toMatchObject({ num_connections: 1, total: 1 });
  expect(closed.body.connections[0]).toMatchObject({ name: "short-lived", reason: "Client Closed", pending_bytes: 0 });
  expect(typeof closed.body.connections[0].stop).toBe("string");
  expect((await json(server.httpPort, "/connz")).body.num_connections).toBe(0);
});

test("WebSocket clients show as type websocket; /varz describes the WebSocket listener", async () => {
  const { server } = startServer({ httpPort: -1, wsPort: -1, wsHost: "127.0.0.1" });
  const ws = new WebSocket(`ws://127.0.0.1:${server.wsPort}`);
  ws.binaryType = "arraybuffer";
  await new Promise<void>((resolve, reject) => {
    let buf = "";
    ws.onopen = () => ws.send('CONNECT {"verbose":false,"name":"browser"}\r\nPING\r\n');
    ws.onmessage = (e) => {
      buf += typeof e.data === "string" ? e.data : Buffer.from(e.data as ArrayBuffer).toString();
      if (buf.includes("PONG")) resolve();
    };
    ws.onerror = () => reject(new Error("websocket error"));
  });
  try {
    const c = await json(server.httpPort, "/connz");
    expect(c.body.connections[0]).toMatchObject({ name: "browser", kind: "Client", type: "websocket" });
    const v = await json(server.httpPort, "/varz");
    expect(v.body.websocket).toEqual({ host: "127.0.0.1", port: server.wsPort, no_tls: true }); // compression is off by default, as in nats-server
  } finally {
    ws.close();
  }
});

test("/healthz answers 503 once the server is shutting down, and the listener closes", async () => {
  const { server } = startServer({ httpPort: -1 });
  const port = server.httpPort;
  expect(await json(port, "/healthz")).toEqual({ status: 200, body: { status: "ok" } });
  await server.shutdown();
  const res = createMonitorHandler(server).fetch(new Request("http://monitor/healthz"));
  expect(res.status).toBe(503);
  expect(await res.json()).toEqual({ status: "unavailable", error: "server is shutting down" });
  await expect(fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(2_000) })).rejects.toThrow();
});
