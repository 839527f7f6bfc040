// natter's rate limits (nats-server has none): a user's publish rate (messages/s, bytes/s) enforced by
// pausing reads, nothing dropped; and new connections per second per IP address. natter only.
import { describe, expect, test } from "vitest";
import { connectRaw, waitFor } from "../harness/raw.ts";
import { freePort, serverKind, startServer } from "../harness/server.ts";
import { connectV2, connectWs } from "../harness/clients.ts";
import { connectLine, err, expectErrThenClose } from "./helpers.ts";

const describeNatter = serverKind === "natter" ? describe : describe.skip;

const USERS = `authorization {
  users = [
    { user: slow, password: pw, rate_limit: { msgs_per_sec: 1000 } }
    { user: thin, password: pw, rate_limit: { bytes_per_sec: 100KB } }
    { user: free, password: pw }
  ]
}
`;

async function metric(httpPort: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
  const m = new RegExp(`^${name} (\\d+)$`, "m").exec(text);
  return m ? Number(m[1]) : NaN;
}

describeNatter("publish rate limit per user", () => {
  test("msgs_per_sec: 3001 messages at 1000/s take about 2 s (a second's burst), and all arrive", async () => {
    const httpPort = await freePort();
    const srv = await startServer({ config: USERS, args: ["-m", String(httpPort)] });
    const sub = await connectV2(srv, { user: "free", pass: "pw" });
    let received = 0;
    const s = sub.subscribe("rl.>", { callback: () => received++ });
    await sub.flush();
    const pub = await connectRaw(srv.port);
    pub.send(connectLine({ user: "slow", pass: "pw" }));
    let burst = "";
    for (let i = 0; i < 3000; i++) burst += `PUB rl.m 3\r\nabc\r\n`;
    const started = Date.now();
    pub.send(burst);
    await pub.flush(10_000);
    // The read holding the PING may overshoot (it is parsed whole, then paid back): what comes next waits.
    pub.send("PUB rl.m 3\r\nabc\r\n");
    await pub.flush(10_000);
    const took = Date.now() - started;
    expect(took).toBeGreaterThanOrEqual(1_800);
    expect(took).toBeLessThan(6_000);
    await waitFor(() => received === 3001, 5_000, "all 3001 messages");
    expect(s.getReceived()).toBe(3001);
    expect(await metric(httpPort, "natter_rate_limit_pauses_total")).toBeGreaterThan(0);
  });

  test("bytes_per_sec: 300 kB at 100 KB/s take about 2 s; a user without a limit is not slowed meanwhile", async () => {
    const srv = await startServer({ config: USERS });
    const pub = await connectRaw(srv.port);
    pub.send(connectLine({ user: "thin", pass: "pw" }));
    const payload = "x".repeat(1000);
    let burst = "";
    for (let i = 0; i < 300; i++) burst += `PUB rl.b 1000\r\n${payload}\r\n`;
    const started = Date.now();
    pub.send(burst);
    const done = pub.flush(10_000);
    // Meanwhile an unlimited user's round trip is quick.
    const other = await connectV2(srv, { user: "free", pass: "pw" });
    const t0 = Date.now();
    await other.flush();
    expect(Date.now() - t0).toBeLessThan(500);
    await done;
    // The read holding the PING may overshoot (it is parsed whole, then paid back): what comes next waits.
    pub.send("PUB rl.b 1\r\nx\r\n");
    await pub.flush(10_000);
    const took = Date.now() - started;
    // 300,000 payload bytes at 102,400/s with a second's burst: (300000 - 102400) / 102400 = 1.93 s.
    expect(took).toBeGreaterThanOrEqual(1_700);
    expect(took).toBeLessThan(6_000);
  });

  test("over WebSocket too (reads are held, in order, since a WebSocket cannot stop being read)", async () => {
    const srv = await startServer({ ws: true, config: USERS });
    const sub = await connectV2(srv, { user: "free", pass: "pw" });
    const got: number[] = [];
    sub.subscribe("rl.ws", { callback: (_e, m) => got.push(Number(m.string())) });
    await sub.flush();
    const nc = await connectWs(srv, { user: "slow", pass: "pw" });
    const started = Date.now();
    for (let i = 0; i < 2500; i++) nc.publish("rl.ws", String(i));
    await nc.flush();
    // The frame holding the PING may overshoot; the next publish waits until the budget is paid back.
    nc.publish("rl.ws", "2500");
    await nc.flush();
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_350);
    await waitFor(() => got.length === 2501, 5_000, "all 2501 messages");
    expect(got).toEqual(Array.from({ length: 2501 }, (_, i) => i));
  });
});

describeNatter("connection_rate_per_ip", () => {
  test("past N new connections in a second from one address: INFO, then the throttling -ERR, then close", async () => {
    const srv = await startServer({ args: ["--connection_rate_per_ip", "5"] });
    // The harness's readiness probe was one connection; wait for a fresh second.
    await new Promise((r) => setTimeout(r, 1_100));
    const ok = [];
    for (let i = 0; i < 5; i++) ok.push(await connectRaw(srv.port));
    const refused = await connectRaw(srv.port);
    await expectErrThenClose(refused, "Connection throttling is active. Please try again later.");
    for (const c of ok) {
      c.send("PING\r\n");
      await c.expect("PONG\r\n");
    }
    await new Promise((r) => setTimeout(r, 1_100));
    const later = await connectRaw(srv.port);
    later.send("PING\r\n");
    expect((await later.next()).raw).not.toBe(err("Connection throttling is active. Please try again later."));
  });

  test("it is in the config file too", async () => {
    const srv = await startServer({ config: "connection_rate_per_ip: 1\n" });
    await new Promise((r) => setTimeout(r, 1_100));
    await connectRaw(srv.port);
    await expectErrThenClose(await connectRaw(srv.port), "Connection throttling is active. Please try again later.");
  });
});
