// The warm-up of the hot path (src/warm-up.ts): synthetic traffic through a private server when the first
// client connects, so that the JIT compiles the hot path before clients' messages take it. It must leave no
// trace in what the server reports (stats, connections, client ids, subscriptions), also for clients served
// while it runs.
// natter only: nats-server has no JIT to warm. Its effect on latency is measured by bench/first-seconds.ts.
import { readFileSync, readdirSync, readlinkSync } from "node:fs";
import { afterEach, describe, expect, test } from "vitest";
import { connectReady, waitFor } from "../harness/raw.ts";
import { serverKind, startServer } from "../harness/server.ts";
import { getJson, startMonitored } from "../monitor/spawn.ts";

type Json = Record<string, unknown>;
const WARMED = /Hot path warmed up: (\d+) synthetic messages in \d+ ms/;

/** The local ports of a process's TCP sockets, listening and not (/proc: its descriptors' inodes in net/tcp). */
function tcpPorts(pid: number): { listening: number[]; connected: number } {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    } catch {} // closed meanwhile
  }
  const listening: number[] = [];
  let connected = 0;
  for (const table of ["tcp", "tcp6"]) {
    for (const line of readFileSync(`/proc/${pid}/net/${table}`, "latin1").split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || !inodes.has(f[9]!)) continue;
      if (f[3] === "0A") listening.push(parseInt(f[1]!.split(":")[1]!, 16));
      else connected++;
    }
  }
  return { listening: listening.sort(), connected };
}

/** What /varz counts of traffic and clients. */
async function counters(server: { base: string }): Promise<number[]> {
  const varz = await getJson<Json>(server as never, "/varz");
  return ["in_msgs", "out_msgs", "in_bytes", "out_bytes", "connections", "total_connections", "subscriptions", "slow_consumers"].map((k) => varz[k] as number);
}

describe("the warm-up of the hot path", () => {
  const savedRounds = process.env.NATTER_WARM_UP;
  afterEach(() => {
    if (savedRounds === undefined) delete process.env.NATTER_WARM_UP;
    else process.env.NATTER_WARM_UP = savedRounds;
  });

  test("starts at the first subscription and leaves nothing in stats, connections or client ids", async () => {
    process.env.NATTER_WARM_UP = "60"; // the default (the suite's servers run without it: vitest.config.ts)
    const server = await startMonitored("natter", ["-D"]);
    try {
      const sub = await connectReady(server.port);
      expect(sub.info?.client_id).toBe(1); // the first client's id, as if nothing else had connected
      // A connection alone (a health check) does not start it: an idle server keeps its memory.
      expect(await sub.flush()).toEqual([]);
      expect(server.log()).not.toMatch(WARMED);
      sub.send("SUB warm.test 1\r\n");
      expect(await sub.flush()).toEqual([]);
      const messages = await waitFor(() => Number(WARMED.exec(server.log())?.[1] ?? 0), 15_000, "the warm-up's log line");
      expect(messages).toBeGreaterThan(10_000);
      expect(server.log()).not.toMatch(/ended early/); // one quiet client: the whole warm-up
      expect(await counters(server)).toEqual([0, 0, 0, 0, 1, 1, 1, 0]); // the client's one subscription only
      const closed = await getJson<Json>(server, "/connz?state=closed");
      expect(closed.total).toBe(0);

      const pub = await connectReady(server.port);
      expect(pub.info?.client_id).toBe(2);
      pub.send("PUB warm.test 5\r\nhello\r\n");
      expect(await pub.flush()).toEqual([]);
      const msg = await sub.next();
      expect([msg.op, msg.subject, msg.payload?.toString()]).toEqual(["MSG", "warm.test", "hello"]);
      expect(await counters(server)).toEqual([1, 1, 5, 5, 2, 2, 1, 0]);
    } finally {
      await server.stop();
    }
  });

  // natter only (startServer follows NATTER_TEST_SERVER; nats-server has no warm-up).
  test.skipIf(serverKind !== "natter")("its request-reply over loopback TCP leaves no port listening and no connection open", async () => {
    process.env.NATTER_WARM_UP = "60";
    const server = await startServer({ debug: true });
    try {
      const sub = await connectReady(server.port);
      sub.send("SUB warm.test 1\r\n");
      expect(await sub.flush()).toEqual([]);
      const loopback = await waitFor(() => /(\d+) of the messages over loopback TCP/.exec(server.log())?.[1], 15_000, "the warm-up's log line");
      expect(Number(loopback)).toBeGreaterThan(0);
      // The client's connection only, and the client port (the loopback's closing connections may linger a moment).
      await waitFor(() => tcpPorts(server.pid).connected === 1 || undefined, 5_000, "the loopback's connections closed");
      expect(tcpPorts(server.pid)).toEqual({ listening: [server.port], connected: 1 });
    } finally {
      await server.stop();
    }
  });

  test("clients served while it runs are counted alone", async () => {
    // A warm-up that lasts until the server stops: every exchange below happens while it runs (the first
    // client, the responder, starts it with its SUB).
    process.env.NATTER_WARM_UP = "100000000";
    const server = await startMonitored("natter", ["-D"]);
    try {
      const responder = await connectReady(server.port);
      responder.send("SUB svc 1\r\n");
      expect(await responder.flush()).toEqual([]);
      const requester = await connectReady(server.port);
      requester.send("SUB _INBOX.test.* 1\r\n");
      expect(await requester.flush()).toEqual([]);
      for (let k = 0; k < 20; k++) {
        requester.send(`PUB svc _INBOX.test.${k} 2\r\nq${k % 10}\r\n`);
        const request = await responder.next();
        expect([request.subject, request.reply]).toEqual(["svc", `_INBOX.test.${k}`]);
        responder.send(`PUB ${request.reply} 2\r\na${k % 10}\r\n`);
        const reply = await requester.next();
        expect([reply.subject, reply.payload?.toString()]).toEqual([`_INBOX.test.${k}`, `a${k % 10}`]);
      }
      expect(server.log()).not.toMatch(WARMED);
      // 40 messages in and out (2 bytes each), two clients, two subscriptions: nothing of the warm-up's.
      expect(await counters(server)).toEqual([40, 40, 80, 80, 2, 2, 2, 0]);
      const connz = await getJson<Json>(server, "/connz");
      expect((connz.connections as Json[]).map((c) => c.cid)).toEqual([1, 2]);
    } finally {
      await server.stop();
    }
  });

  test("ends early once clients have sent 100,000 messages meanwhile, and counts theirs alone", async () => {
    // A warm-up that would last until the server stops, unless clients' traffic ends it.
    process.env.NATTER_WARM_UP = "100000000";
    const server = await startMonitored("natter", ["-D"]);
    try {
      const sub = await connectReady(server.port);
      sub.send("SUB heavy.wanted 1\r\n"); // starts the warm-up
      expect(await sub.flush()).toEqual([]);
      const pub = await connectReady(server.port);
      const flood = Buffer.from("PUB heavy.nobody 2\r\nhi\r\n".repeat(10_000), "latin1");
      for (let k = 0; k < 12; k++) pub.send(flood); // 120,000 messages no one subscribed to
      expect(await pub.flush()).toEqual([]);
      const line = await waitFor(() => /Hot path warmed up: .*ended early: clients sent (\d+) messages meanwhile/.exec(server.log()), 20_000, "the warm-up's early end");
      expect(Number(line[1])).toBeGreaterThanOrEqual(100_000);
      expect(Number(line[1])).toBeLessThanOrEqual(120_000);
      // The clients' messages only (2 bytes each), none delivered; the server serves on.
      await waitFor(async () => (await counters(server))[0] === 120_000, 10_000, "the flood counted");
      expect(await counters(server)).toEqual([120_000, 0, 240_000, 0, 2, 2, 1, 0]);
      pub.send("PUB heavy.wanted 5\r\nafter\r\n");
      const msg = await sub.next();
      expect([msg.subject, msg.payload?.toString()]).toEqual(["heavy.wanted", "after"]);
    } finally {
      await server.stop();
    }
  });
});
