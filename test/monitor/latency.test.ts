// /latz and the latency summaries in /metrics: HDR histograms of delivery latency and of
// request-reply service latency, filled by real traffic through a real server process.
import { afterAll, beforeAll, expect, test } from "vitest";
import { connect, StringCodec, type NatsConnection } from "nats";
import { getJson, get, startMonitored, type Monitored } from "./spawn.ts";
import { LatencyTracker } from "../../src/monitor/latency.ts";

const sc = StringCodec();
let server: Monitored;
let nc: NatsConnection;

interface Summary {
  count: number;
  p50_us: number;
  p99_us: number;
  p999_us: number;
  max_us: number;
  distribution: { percentile: number; value_us: number }[];
}
interface Latz {
  delivery: Summary;
  services: Record<string, Summary>;
  pending_requests: number;
}

beforeAll(async () => {
  server = await startMonitored("natter");
  nc = await connect({ servers: server.hostport });
});

afterAll(async () => {
  await nc?.close();
  await server?.stop();
});

test("request-reply traffic shows up per service subject, delivery latency overall", async () => {
  nc.subscribe("svc.fast", { callback: (_e, m) => m.respond(m.data) });
  nc.subscribe("svc.slow", { callback: (_e, m) => setTimeout(() => m.respond(m.data), 20) });
  await nc.flush();
  for (let i = 0; i < 200; i++) await nc.request("svc.fast", sc.encode(`${i}`), { timeout: 5_000 });
  await Promise.all(Array.from({ length: 40 }, (_, i) => nc.request("svc.slow", sc.encode(`${i}`), { timeout: 5_000 })));

  const latz = await getJson<Latz>(server, "/latz");
  // One request in 8 is timed: 200 → 25, 40 → 5.
  expect(latz.services["svc.fast"]!.count).toBe(25);
  expect(latz.services["svc.slow"]!.count).toBe(5);
  // The slow service answers after at least 20 ms; the fast one far sooner (generous bounds: a busy machine).
  expect(latz.services["svc.slow"]!.p50_us).toBeGreaterThanOrEqual(20_000);
  expect(latz.services["svc.fast"]!.p50_us).toBeLessThan(latz.services["svc.slow"]!.p50_us);
  expect(latz.delivery.count).toBeGreaterThan(0);
  expect(latz.delivery.p50_us).toBeGreaterThan(0);
  const percentiles = latz.delivery.distribution.map((d) => d.percentile);
  expect(percentiles).toEqual([...percentiles].sort((a, b) => a - b));
  const values = latz.delivery.distribution.map((d) => d.value_us);
  expect(values).toEqual([...values].sort((a, b) => a - b));
  expect(latz.pending_requests).toBe(0);

  const metrics = (await get(server, "/metrics")).text;
  expect(metrics).toContain("# TYPE natter_service_latency_seconds summary");
  expect(metrics).toMatch(/^natter_service_latency_seconds_count\{subject="svc\.fast"\} 25$/m);
  expect(metrics).toMatch(/^natter_delivery_latency_seconds\{quantile="0\.99"\} [0-9.e-]+$/m);
});

test("requests nobody answers are not held forever, and ?reset=true clears the histograms", async () => {
  nc.subscribe("svc.silent", { callback: () => {} });
  await nc.flush();
  await Promise.allSettled(Array.from({ length: 16 }, () => nc.request("svc.silent", sc.encode(""), { timeout: 200 })));
  const before = await getJson<Latz>(server, "/latz?reset=true");
  expect(before.pending_requests).toBeGreaterThan(0); // waiting, bounded by count and age
  const after = await getJson<Latz>(server, "/latz");
  expect(after.delivery.count).toBe(0);
  expect(after.services).toEqual({});
  expect(after.pending_requests).toBe(0);
});

test("without a monitoring port nothing is sampled (nothing could read it): no histogram, no pending request", () => {
  const off = new LatencyTracker(false);
  for (let i = 0; i < 64; i++) {
    off.startRead();
    off.recordFlush();
    off.endRead();
    expect(off.sampleRequest()).toBe(false);
  }
  const report = off.report();
  expect(report.delivery.count).toBe(0);
  expect(report.pending_requests).toBe(0);
  expect(off.awaitingReplies).toBe(false);
});
