// Protection of the server and of well-behaved clients: slow consumers are cut off, garbage is contained.
import { readFileSync } from "node:fs";
import { describe, expect, test } from "vitest";
import { connectV2, connectV3, dec, enc } from "../harness/clients.ts";
import { connectRaw, connectReady, waitFor } from "../harness/raw.ts";
import { type ServerOptions, startServer } from "../harness/server.ts";

/**
 * One subscriber stops reading while a publisher floods its subject; another subscriber of that subject
 * keeps reading, and unrelated request-reply traffic runs throughout. The stuck subscriber must be cut off
 * (without an -ERR), the reader must get every message, the unrelated traffic must stay fast, and the
 * server must keep answering.
 *
 * nats-server throttles the flooding publisher (up to 1 s per message) once the stuck subscriber's pending
 * bytes pass half of max_pending, so the flood's own latency is not bounded here; unrelated traffic's is.
 */
async function slowConsumerScenario(opts: ServerOptions, msgSize: number): Promise<void> {
  const srv = await startServer(opts);

  // The stuck subscriber: subscribes, then stops reading its socket.
  const stuck = await connectReady(srv.port);
  stuck.send("SUB flood 1\r\nSUB stuck.probe 2\r\n");
  await stuck.flush();
  stuck.pause();

  const reader = await connectV2(srv);
  let received = 0;
  let corrupt = 0;
  reader.subscribe("flood", {
    callback: (_e, m) => {
      received++;
      if (m.data.length !== msgSize) corrupt++;
    },
  });
  await reader.flush();

  // While the stuck subscriber is connected, a request to stuck.probe has a responder; once it is gone the
  // server answers 503 at once. That tells us when it has been cut off without reading its socket.
  const prober = await connectReady(srv.port, { headers: true, no_responders: true });
  prober.send("SUB probe.reply 1\r\n");
  const stuckIsGone = async () => {
    prober.send("PUB stuck.probe probe.reply 0\r\n\r\n");
    const frames = await prober.flush(10_000);
    return frames.some((f) => f.op === "HMSG" && f.headers!.toString().startsWith("NATS/1.0 503"));
  };
  expect(await stuckIsGone()).toBe(false);

  // Unrelated request-reply traffic, timed, for as long as the flood lasts.
  const responder = await connectV2(srv);
  responder.subscribe("svc.unrelated", { callback: (_e, m) => m.respond(m.data) });
  await responder.flush();
  const requester = await connectV3(srv);
  let flooding = true;
  const rtts: number[] = [];
  const unrelated = (async () => {
    while (flooding) {
      const t0 = performance.now();
      await requester.request("svc.unrelated", enc("x"), { timeout: 10_000 });
      rtts.push(performance.now() - t0);
    }
  })();

  // Flood in ~1 MiB batches, each confirmed by a flush, until the stuck subscriber is cut off.
  const pub = await connectV2(srv);
  const perBatch = Math.max(1, Math.floor((1024 * 1024) / msgSize));
  const LIMIT_BYTES = 1024 * 1024 * 1024;
  let published = 0;
  let gone = false;
  const deadline = Date.now() + 60_000;
  try {
    while (!gone && published * msgSize < LIMIT_BYTES && Date.now() < deadline) {
      for (let i = 0; i < perBatch; i++) {
        pub.publish("flood", new Uint8Array(msgSize));
        published++;
      }
      await pub.flush();
      gone = await stuckIsGone();
    }
  } finally {
    flooding = false;
    await unrelated;
  }
  expect(gone, `stuck subscriber still connected after ${(published * msgSize) / 2 ** 20} MiB`).toBe(true);

  // The server's memory stayed bounded: its peak RSS is far below what it was sent (the stuck
  // client's backlog was capped by max_pending or cut by the write deadline, not buffered).
  const peakRss = peakRssBytes(srv.pid);
  if (peakRss !== null) {
    expect(peakRss, `peak RSS ${Math.round(peakRss / 2 ** 20)} MiB after ${Math.round((published * msgSize) / 2 ** 20)} MiB published`).toBeLessThan(512 * 2 ** 20);
  }

  // Unrelated traffic was not held up.
  expect(rtts.length).toBeGreaterThan(0);
  expect(Math.max(...rtts), "worst unrelated request-reply round trip (ms)").toBeLessThan(2_000);

  // The reading subscriber got everything.
  await waitFor(() => received >= published, 30_000, `the reader to get ${published} messages (got ${received})`);
  await reader.flush();
  expect(received).toBe(published);
  expect(corrupt).toBe(0);

  // The stuck subscriber, once it reads again, finds its connection closed, without an -ERR.
  stuck.resume();
  expect(await stuck.waitClosed(20_000)).toBe(true);
  expect(stuck.history.filter((f) => f.op === "-ERR").map((f) => f.raw)).toEqual([]);

  // The server still answers: the flooding publisher, and a new connection.
  reader.subscribe("after.flood", { callback: (_e, m) => m.respond(enc("pong")) });
  await reader.flush();
  const r = await pub.request("after.flood", enc("ping"), { timeout: 5_000 });
  expect(dec(r.data)).toBe("pong");
  const fresh = await connectReady(srv.port);
  expect(await fresh.flush()).toEqual([]);
}

/** The process's peak resident set size (Linux /proc), or null where that is not available. */
function peakRssBytes(pid: number): number | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const m = /^VmHWM:\s+(\d+) kB$/m.exec(status);
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

describe("slow consumer", () => {
  // The flood gives up after 60 s; the reader and the stuck client get their own deadlines after that.
  const TIMEOUT = 150_000;

  test("cut off when its pending bytes pass max_pending (1 MiB)", { timeout: TIMEOUT }, async () => {
    await slowConsumerScenario({ maxPending: 1024 * 1024 }, 256 * 1024);
  });

  test("cut off when a write to it is stuck past write_deadline (1s)", { timeout: TIMEOUT }, async () => {
    await slowConsumerScenario({ writeDeadline: "1s" }, 16 * 1024);
  });
});

describe("garbage", () => {
  const junk: [string, string | Buffer][] = [
    ["binary noise", Buffer.from(Array.from({ length: 4096 }, (_, i) => (i === 0 ? 0xff : (i * 131 + 7) & 0xff)))],
    ["an unknown op", "HELLO WORLD\r\n"],
    ["an endless control line", "SUB " + "x".repeat(20_000)],
    ["a huge PUB size", "PUB foo 99999999999\r\n"],
    ["over max_payload", "PUB foo 2000000\r\n"],
    ["a payload overrun", "PUB foo 5\r\nabcdefghij\r\n"],
    ["malformed CONNECT", "CONNECT {not json\r\n"],
    ["a bad HPUB", "HPUB foo 100 10\r\n"],
    ["MSG from a client", "MSG foo 1 2\r\nhi\r\n"],
  ];

  test("garbage from other clients does not disturb an ongoing request-reply", async () => {
    const srv = await startServer();
    const responder = await connectV2(srv);
    responder.subscribe("svc.steady", { callback: (_e, m) => m.respond(m.data) });
    await responder.flush();
    const requester = await connectV3(srv);

    let stop = false;
    const requests = (async () => {
      let n = 0;
      while (!stop || n < 200) {
        const r = await requester.request("svc.steady", enc(`r${n}`), { timeout: 5_000 });
        expect(dec(r.data)).toBe(`r${n}`);
        n++;
      }
      return n;
    })();

    const closedOk: string[] = [];
    try {
      for (let round = 0; round < 5; round++) {
        await Promise.all(
          junk.map(async ([name, bytes]) => {
            const c = await connectRaw(srv.port);
            if (name !== "malformed CONNECT") c.send('CONNECT {"verbose":false}\r\n');
            c.send(bytes);
            if (!(await c.waitClosed(10_000))) throw new Error(`server did not close the connection after ${name}`);
            closedOk.push(name);
          }),
        );
      }
    } finally {
      stop = true;
    }
    const done = await requests;
    expect(done).toBeGreaterThanOrEqual(200);
    expect(closedOk.length).toBe(junk.length * 5);
    // The server is still fine for newcomers.
    const fresh = await connectReady(srv.port);
    expect(await fresh.flush()).toEqual([]);
  });
});

describe("max_sub_tokens", () => {
  test("a SUB with more tokens than max_sub_tokens gets nats-server's -ERR; the connection stays", async () => {
    const srv = await startServer({ config: "max_sub_tokens: 3\n" });
    const c = await connectReady(srv.port);
    c.send("SUB a.b.c 1\r\nSUB a.b.c.d 2\r\nSUB a.*.> 3\r\nPUB a.b.c 2\r\nok\r\n");
    const frames = await c.flush();
    expect(frames[0]!.raw).toBe(`-ERR 'Permissions Violation for Subscription to "a.b.c.d", too many tokens'\r\n`);
    expect(frames.slice(1).map((f) => f.raw).sort()).toEqual(["MSG a.b.c 1 2\r\nok\r\n", "MSG a.b.c 3 2\r\nok\r\n"]);
  });
});
