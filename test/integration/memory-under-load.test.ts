// The server's memory under a fast 1:1 stream (issue 20): a publisher writes 1 KiB messages as fast as its
// socket takes them for about two seconds, a subscriber reads everything. The server's resident set is
// sampled throughout (/proc) and must grow by less than GROWTH_LIMIT over what it was before the stream.
//
// What held memory before: every read Bun hands over is a fresh copy (up to 512 KiB) that only the garbage
// collector freed, and the subscriber's outbound buffer was dropped on every drain and regrown from 4 KiB
// up to 16 MiB: natter grew by about 145 MiB here, now by about 20 MiB, as nats-server 2.9.10 does.
//
// And a subscriber that reads, but slower than the publisher writes, holds at most a few MiB in the server:
// the publisher is paused once 1 MiB is queued for it (src/connection.ts stallPoint). natter's own bound:
// nats-server (and natter before) let it reach half of max_pending, 32 MiB, before pausing the publisher.
import { readFileSync } from "node:fs";
import net from "node:net";
import { expect, test } from "vitest";
import { freePort, serverKind, startServer } from "../harness/server.ts";

const MiB = 1024 * 1024;
const GROWTH_LIMIT = 40 * MiB;
const STREAM_MS = 2_000;
const PAYLOAD = 1024;
const PING = Buffer.from("PING\r\n");

function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) * 1024 : 0;
}

/** A plain socket past INFO/CONNECT/PING→PONG, so the server has taken everything sent before. */
async function connected(port: number, afterConnect = ""): Promise<net.Socket> {
  const socket = net.connect({ host: "127.0.0.1", port });
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  socket.write(`CONNECT {"verbose":false,"pedantic":false}\r\n${afterConnect}PING\r\n`);
  let seen = "";
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no PONG within 5 s")), 5_000);
    const onData = (chunk: Buffer) => {
      seen += chunk.toString("latin1");
      if (!seen.includes("PONG\r\n")) return;
      clearTimeout(timer);
      socket.off("data", onData);
      resolve();
    };
    socket.on("data", onData);
  });
  return socket;
}

test.skipIf(process.platform !== "linux")("a fast 1:1 stream of 1 KiB messages grows the server's RSS by less than 40 MiB", { timeout: 30_000 }, async () => {
  const srv = await startServer();
  const subscriber = await connected(srv.port, "SUB load 1\r\n");
  const publisher = await connected(srv.port);
  try {
    // Message bytes received; the server's PINGs (its first comes about 2 s after CONNECT) are answered and
    // not counted. A payload of x's cannot hold "PING\r\n": a search finds only PINGs, also one split
    // across two reads (it starts in the last 5 bytes of the one before).
    let received = 0;
    let carry = Buffer.alloc(0);
    subscriber.on("data", (chunk: Buffer) => {
      received += chunk.length;
      let pings = 0;
      const seam = Buffer.concat([carry, chunk.subarray(0, PING.length - 1)]).indexOf(PING);
      if (seam >= 0 && seam < carry.length) pings++;
      for (let at = chunk.indexOf(PING); at >= 0; at = chunk.indexOf(PING, at + PING.length)) pings++;
      carry = Buffer.from(chunk.subarray(Math.max(0, chunk.length - (PING.length - 1))));
      if (pings > 0) {
        received -= pings * PING.length;
        subscriber.write("PONG\r\n".repeat(pings));
      }
    });
    const frame = Buffer.from(`PUB load ${PAYLOAD}\r\n${"x".repeat(PAYLOAD)}\r\n`, "latin1");
    const batch = Buffer.concat(Array.from({ length: 256 }, () => frame)); // ~260 KiB per write
    const before = rssBytes(srv.pid);
    let peak = before;
    const sampler = setInterval(() => {
      peak = Math.max(peak, rssBytes(srv.pid));
    }, 20);
    let sent = 0;
    const end = Date.now() + STREAM_MS;
    try {
      while (Date.now() < end) {
        sent += batch.length;
        if (!publisher.write(batch)) await new Promise((r) => publisher.once("drain", r));
      }
      // Everything published reaches the subscriber (nothing is dropped to save memory).
      const expected = (sent / frame.length) * (frame.length + "MSG load 1 \r\n".length - "PUB load \r\n".length);
      const deadline = Date.now() + 15_000;
      while (received < expected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(received).toBe(expected);
    } finally {
      clearInterval(sampler);
    }
    peak = Math.max(peak, rssBytes(srv.pid));
    const report = `${srv.kind}: RSS before ${(before / MiB).toFixed(0)} MiB, peak ${(peak / MiB).toFixed(0)} MiB, ${(sent / MiB).toFixed(0)} MiB streamed`;
    console.log(report);
    expect(peak - before, report).toBeLessThan(GROWTH_LIMIT);
  } finally {
    publisher.destroy();
    subscriber.destroy();
    await srv.stop();
  }
});

test.skipIf(serverKind === "nats-server")("a subscriber that reads slower than its publisher writes holds a few MiB in the server, not half of max_pending", { timeout: 30_000 }, async () => {
  const httpPort = await freePort();
  const srv = await startServer({ args: ["-m", String(httpPort)] });
  const subscriber = await connected(srv.port, "SUB load 1\r\n");
  const publisher = await connected(srv.port);
  // Reads a little every 10 ms: a few MB/s, far below what the publisher sends.
  subscriber.on("data", () => subscriber.pause());
  const reader = setInterval(() => subscriber.resume(), 10);
  let maxPending = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      try {
        const connz = (await (await fetch(`http://127.0.0.1:${httpPort}/connz`)).json()) as { connections: { pending_bytes: number }[] };
        for (const c of connz.connections) maxPending = Math.max(maxPending, c.pending_bytes);
      } catch {}
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  try {
    const frame = Buffer.from(`PUB load ${PAYLOAD}\r\n${"x".repeat(PAYLOAD)}\r\n`, "latin1");
    const batch = Buffer.concat(Array.from({ length: 256 }, () => frame));
    let sent = 0;
    const end = Date.now() + STREAM_MS;
    // The publisher's writes back up once the server pauses it: a write that does not drain within 100 ms
    // ends the stream (the server has stopped reading it, which is the point).
    while (Date.now() < end) {
      sent += batch.length;
      if (!publisher.write(batch)) {
        const drained = await Promise.race([new Promise((r) => publisher.once("drain", () => r(true))), new Promise((r) => setTimeout(() => r(false), 100))]);
        if (!drained) await new Promise((r) => setTimeout(r, Math.max(0, end - Date.now())));
      }
    }
    const report = `${(sent / MiB).toFixed(0)} MiB sent, largest pending_bytes seen ${(maxPending / MiB).toFixed(2)} MiB`;
    console.log(report);
    expect(maxPending, report).toBeGreaterThan(512 * 1024); // the subscriber was behind
    expect(maxPending, report).toBeLessThan(8 * MiB);
  } finally {
    sampling = false;
    await sampler;
    clearInterval(reader);
    publisher.destroy();
    subscriber.destroy();
    await srv.stop();
  }
});
