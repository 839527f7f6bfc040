// One slow client must not make the server's memory grow past max_pending plus a bounded overhead
// (issue 18, item 7). A raw subscriber stops reading its socket while a publisher floods its subject at
// the default max_pending (64 MiB) and a write deadline long enough that max_pending, not the deadline,
// is what holds the backlog. The server's RSS (/varz mem, sampled throughout, and the kernel's peak,
// VmHWM, where /proc has it) must stay within the RSS before the flood + max_pending + 48 MiB
// (natter's buffer doubles up to max_pending; nats-server 2.9.10 grew ~45 MiB here, natter ~85 MiB,
// before the fix 122 MiB).
//
// nats-server 2.9.10 holds the backlog near max_pending / 2: past half it throttles the publisher, so a
// client that never reads is then cut by the write deadline (the 33 MB the issue saw); natter does the same.
import { readFileSync } from "node:fs";
import { expect, test } from "vitest";
import { connectV2 } from "../harness/clients.ts";
import { connectReady, waitFor } from "../harness/raw.ts";
import { freePort, startServer } from "../harness/server.ts";

const MiB = 1024 * 1024;
const MAX_PENDING = 64 * MiB; // nats-server's default
const OVERHEAD = 48 * MiB;

async function varzMem(httpPort: number): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${httpPort}/varz`);
  return ((await res.json()) as { mem: number }).mem;
}

/** The process's peak resident set size (Linux /proc), or null where that is not available. */
function peakRss(pid: number): number | null {
  try {
    const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

test("a client that stops reading holds the server's RSS to max_pending plus a bounded overhead", { timeout: 120_000 }, async () => {
  const httpPort = await freePort();
  const srv = await startServer({ writeDeadline: "20s", args: ["-m", String(httpPort)] });
  // Warm up: the baseline is a server that has already carried such a flood to a client that reads it. natter
  // gives back its executable's start-up pages once ready (src/start-up-pages.ts); the code that traffic runs
  // comes back with the traffic, a fixed ~15 MiB that is not the backlog this test bounds.
  const pub = await connectV2(srv);
  const reader = await connectV2(srv);
  let read = 0;
  reader.subscribe("warm", { callback: () => read++ });
  await reader.flush();
  const warmPayload = new Uint8Array(16 * 1024);
  for (let batch = 0; batch < 8; batch++) {
    for (let i = 0; i < 64; i++) pub.publish("warm", warmPayload);
    await pub.flush();
  }
  await waitFor(() => read === 8 * 64, 20_000, "the warm-up flood to be read");
  await reader.close();
  const before = await varzMem(httpPort);

  const stuck = await connectReady(srv.port);
  stuck.send("SUB flood 1\r\n");
  await stuck.flush();
  stuck.pause();

  let peakVarz = before;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      try {
        peakVarz = Math.max(peakVarz, await varzMem(httpPort));
      } catch {}
      await new Promise((r) => setTimeout(r, 50));
    }
  })();

  // Flood 16 KiB messages in 1 MiB batches until the stuck client is gone (slow_consumers counts it), at
  // most 3 × max_pending.
  const payload = new Uint8Array(16 * 1024);
  let published = 0;
  const slowConsumers = async () => ((await (await fetch(`http://127.0.0.1:${httpPort}/varz`)).json()) as { slow_consumers: number }).slow_consumers;
  try {
    while (published * payload.length < 3 * MAX_PENDING && (await slowConsumers()) === 0) {
      for (let i = 0; i < 64; i++) pub.publish("flood", payload);
      published += 64;
      await pub.flush();
    }
    // However it ends (max_pending or the write deadline), the stuck client is cut.
    await waitFor(async () => (await slowConsumers()) > 0, 40_000, "the stuck client to be cut as a slow consumer");
  } finally {
    sampling = false;
    await sampler;
  }
  const peak = Math.max(peakVarz, peakRss(srv.pid) ?? 0);
  const mib = (n: number) => `${Math.round(n / MiB)} MiB`;
  const report = `RSS before ${mib(before)}, peak ${mib(peak)} (varz ${mib(peakVarz)}), ${mib(published * payload.length)} published`;
  console.log(`${srv.kind}: ${report}`);
  expect(peak - before, report).toBeLessThan(MAX_PENDING + OVERHEAD);

  // The server still serves.
  await pub.flush();
  await pub.close();
  stuck.resume();
});
