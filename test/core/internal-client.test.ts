// The internal client: in-process subscribers and publishers of the core (what the stream layer and
// system events build on), exercised through a real server and the official client.
import { afterEach, expect, test } from "vitest";
import { connect, headers as natsHeaders, StringCodec } from "nats";
import { InternalClient, type InternalMessage } from "../../src/internal-client.ts";
import { testLogger } from "../harness/failure-log.ts";
import { defaultOptions } from "../../src/options.ts";
import { Server } from "../../src/server.ts";

const sc = StringCodec();
const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.shutdown()));
});

function startServer(): Server {
  const server = new Server({ ...defaultOptions, wsAllowedOrigins: [], host: "127.0.0.1", port: -1 }, testLogger());
  servers.push(server);
  server.start();
  return server;
}

test("a client request reaches an internal subscriber, whose reply reaches the client", async () => {
  const server = startServer();
  const service = new InternalClient(server, "test");
  const seen: InternalMessage[] = [];
  service.subscribe("svc.>", (message) => {
    seen.push(message);
    service.publish(message.reply!, Buffer.from(`echo:${message.payload.toString()}`));
  });
  const nc = await connect({ servers: `127.0.0.1:${server.port}` });
  try {
    const h = natsHeaders();
    h.set("X-Test", "1");
    const reply = await nc.request("svc.upper", sc.encode("hello"), { timeout: 5_000, headers: h });
    expect(sc.decode(reply.data)).toBe("echo:hello");
    expect(seen.length).toBe(1);
    expect(seen[0]!.subject).toBe("svc.upper");
    expect(seen[0]!.headers!.toString()).toContain("X-Test: 1");
    expect(seen[0]!.payload.toString()).toBe("hello");
  } finally {
    await nc.close();
    service.close();
  }
});

test("internal publishes reach client subscribers with headers, and never the publisher itself", async () => {
  const server = startServer();
  const events = new InternalClient(server, "events");
  let selfDeliveries = 0;
  events.subscribe("events.>", () => selfDeliveries++);
  const nc = await connect({ servers: `127.0.0.1:${server.port}` });
  try {
    const received: { subject: string; data: string; header: string | undefined }[] = [];
    const sub = nc.subscribe("events.*", { max: 2 });
    const done = (async () => {
      for await (const m of sub) received.push({ subject: m.subject, data: sc.decode(m.data), header: m.headers?.get("Kind") });
    })();
    await nc.flush();
    expect(events.publish("events.a", Buffer.from("one"))).toBe(true);
    expect(events.publish("events.b", Buffer.from("two"), null, Buffer.from("NATS/1.0\r\nKind: test\r\n\r\n"))).toBe(true);
    await done;
    expect(received).toEqual([
      { subject: "events.a", data: "one", header: undefined },
      { subject: "events.b", data: "two", header: "test" },
    ]);
    expect(events.publish("nobody.listens", Buffer.from("x"))).toBe(false);
    await nc.flush();
    expect(selfDeliveries).toBe(0);
  } finally {
    await nc.close();
    events.close();
  }
});

test("an internal subscriber counts as a responder: no 503 while it listens, 503 after it closes", async () => {
  const server = startServer();
  const service = new InternalClient(server, "svc");
  service.subscribe("svc.ping", (m) => service.publish(m.reply!, Buffer.from("pong")));
  const nc = await connect({ servers: `127.0.0.1:${server.port}` });
  try {
    expect(sc.decode((await nc.request("svc.ping", sc.encode(""), { timeout: 5_000 })).data)).toBe("pong");
    service.close();
    await expect(nc.request("svc.ping", sc.encode(""), { timeout: 5_000 })).rejects.toMatchObject({ code: "503" });
  } finally {
    await nc.close();
  }
});
