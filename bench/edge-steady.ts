// Steady-state sourcing (issue 14), the leaf link up: an edge (domain `edge`, stream TELEMETRY) and a hub
// (domain `hub`, stream ALL_TELEMETRY sourcing TELEMETRY across the link and republishing each message it
// stores on `seen.<subject>`, so the bench sees the moment a message is in the hub's stream). Per pair:
//   - throughput: N × SIZE B published at the edge with acks (WINDOW in flight), from the first publish
//     until the hub's stream holds all N (msgs/s, end to end: the edge's store, the copy, the hub's store);
//   - added latency: RATE msgs/s published at the edge for SECONDS s (core publishes, the edge's stream
//     captures them), each carrying its publish time; the time until its republish from the hub's stream
//     arrives, p50/p99/max (the same process publishes and receives: one clock).
// Pairs (edge → hub) alternate within each round; ratios natter edge / nats-server edge are per round.
//
//   bun bench/edge-steady.ts [--count 200000] [--size 128] [--rate 2000] [--seconds 3] [--rounds 3]
//                            [--pairs natter:nats-server,nats-server:nats-server,natter:natter,nats-server:natter]
import { connect, type NatsConnection } from "nats";
import { freePort, server, waitFor, type Kind } from "./edge-servers.ts";

const args = process.argv.slice(2);
const arg = (name: string, dflt: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : dflt;
};
const COUNT = Number(arg("count", "200000"));
const SIZE = Number(arg("size", "128"));
const RATE = Number(arg("rate", "2000"));
const SECONDS = Number(arg("seconds", "3"));
const ROUNDS = Number(arg("rounds", "3"));
const WINDOW = 2000;
/** Latency publishes go out in batches this often. */
const TICK_MS = 5;
const PAIRS = arg("pairs", "natter:nats-server,nats-server:nats-server,natter:natter,nats-server:natter")
  .split(",")
  .map((p) => p.split(":") as [Kind, Kind]);

interface Result {
  rate: number;
  p50: number;
  p99: number;
  max: number;
  cpuUs: { edge: number; hub: number };
}

async function messages(nc: NatsConnection, stream: string): Promise<number> {
  return (await (await nc.jetstreamManager()).streams.info(stream)).state.messages;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]!;
}

async function run(edgeKind: Kind, hubKind: Kind): Promise<Result> {
  const leafPort = await freePort();
  const hub = server(hubKind, "HUB", await freePort(), `jetstream { store_dir: "{{dir}}", domain: hub }\nleafnodes { listen: "127.0.0.1:${leafPort}" }\n`);
  const edge = server(edgeKind, "EDGE", await freePort(), `jetstream { store_dir: "{{dir}}", domain: edge }\nleafnodes { remotes [ { url: "nats-leaf://127.0.0.1:${leafPort}" } ] }\n`);
  await hub.start();
  await edge.start();
  try {
    const ec = await connect({ port: edge.port });
    const hc = await connect({ port: hub.port });
    await (await ec.jetstreamManager()).streams.add({ name: "TELEMETRY", subjects: ["telemetry.>"] });
    await waitFor("the link", async () => (await hc.request("$JS.edge.API.INFO", undefined, { timeout: 500 })) !== null, 20_000);
    // nats-server 2.9 takes a republish source only within the stream's own subjects: `hubonly.>` is there
    // for that (nothing is published on it); `>` then covers the sourced subjects too.
    await (await hc.jetstreamManager()).streams.add({
      name: "ALL_TELEMETRY", subjects: ["hubonly.>"], republish: { src: ">", dest: "seen.>" },
      sources: [{ name: "TELEMETRY", external: { api: "$JS.edge.API", deliver: "" } }],
    });

    // Added latency, at a rate the link carries easily.
    const latencies: number[] = [];
    let expectSeen = false;
    hc.subscribe("seen.>", {
      callback: (_e, m) => {
        if (!expectSeen || m.data.length < 8) return;
        latencies.push(performance.now() - new DataView(m.data.buffer, m.data.byteOffset, 8).getFloat64(0, true));
      },
    });
    await hc.flush();
    // Warm the path (the source's consumer may still be starting; JIT): until one message comes back, then
    // a thousand more.
    const warm = new Uint8Array(SIZE);
    await waitFor("the first sourced message", async () => {
      ec.publish("telemetry.warm", warm);
      await new Promise((r) => setTimeout(r, 100));
      return (await messages(hc, "ALL_TELEMETRY")) > 0;
    }, 30_000);
    const firstWarm = await messages(hc, "ALL_TELEMETRY");
    for (let i = 0; i < 1000; i++) ec.publish("telemetry.warm", warm);
    await waitFor("the warm-up messages", async () => ((await messages(hc, "ALL_TELEMETRY")) >= firstWarm + 1000 ? true : null), 30_000);
    const warmed = await messages(hc, "ALL_TELEMETRY");
    expectSeen = true;
    const payload = new Uint8Array(Math.max(SIZE, 8));
    const view = new DataView(payload.buffer);
    const total = RATE * SECONDS;
    const perTick = Math.max(1, Math.round((RATE * TICK_MS) / 1000));
    const start = performance.now();
    for (let sent = 0; sent < total; ) {
      for (let k = 0; k < perTick && sent < total; k++, sent++) {
        view.setFloat64(0, performance.now(), true);
        ec.publish(`telemetry.s${sent % 16}`, payload);
      }
      const next = start + ((sent / perTick) * TICK_MS);
      await new Promise((r) => setTimeout(r, Math.max(0, next - performance.now())));
    }
    await waitFor("every latency sample", async () => latencies.length >= total ? true : null, 60_000);
    expectSeen = false;
    const sorted = [...latencies].sort((a, b) => a - b);

    // Throughput: as fast as the edge acknowledges.
    const base = warmed + total;
    const cpu0 = { edge: edge.cpu(), hub: hub.cpu() };
    const js = ec.jetstream();
    const t0 = performance.now();
    let pending: Promise<unknown>[] = [];
    for (let i = 0; i < COUNT; i++) {
      pending.push(js.publish(`telemetry.s${i % 16}`, payload));
      if (pending.length >= WINDOW) {
        await Promise.all(pending);
        pending = [];
      }
    }
    await Promise.all(pending);
    const allAt = await waitFor("every message in the hub's stream", async () => ((await messages(hc, "ALL_TELEMETRY")) >= base + COUNT ? performance.now() : null), 600_000);
    const cpuUs = { edge: ((edge.cpu() - cpu0.edge) * 1e6) / COUNT, hub: ((hub.cpu() - cpu0.hub) * 1e6) / COUNT };
    await hc.close();
    await ec.close();
    return { rate: COUNT / ((allAt - t0) / 1000), p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted[sorted.length - 1]!, cpuUs };
  } finally {
    await edge.kill();
    await hub.kill();
  }
}

console.log(`steady-state sourcing, edge → hub across a leaf link: throughput of ${COUNT} × ${SIZE} B published with acks; added latency at ${RATE} msgs/s for ${SECONDS} s; ${ROUNDS} round(s), pairs alternating`);
const ratios: Record<string, { rate: number[]; p50: number[]; p99: number[] }> = {};
for (let round = 1; round <= ROUNDS; round++) {
  const results: Record<string, Result> = {};
  for (const [edgeKind, hubKind] of PAIRS) {
    const r = await run(edgeKind, hubKind);
    results[`${edgeKind}:${hubKind}`] = r;
    console.log(`${round} ${`${edgeKind} → ${hubKind}`.padEnd(28)} ${Math.round(r.rate).toLocaleString("en")} msgs/s, latency p50 ${r.p50.toFixed(2)} ms p99 ${r.p99.toFixed(2)} ms max ${r.max.toFixed(1)} ms, CPU per message edge ${r.cpuUs.edge.toFixed(1)} µs hub ${r.cpuUs.hub.toFixed(1)} µs`);
  }
  for (const hubKind of ["nats-server", "natter"]) {
    const a = results[`natter:${hubKind}`];
    const b = results[`nats-server:${hubKind}`];
    if (!a || !b) continue;
    const r = (ratios[hubKind] ??= { rate: [], p50: [], p99: [] });
    r.rate.push(a.rate / b.rate);
    r.p50.push(a.p50 / b.p50);
    r.p99.push(a.p99 / b.p99);
  }
}
const summary = (list: number[]) => {
  const s = [...list].sort((x, y) => x - y);
  return `median ${s[Math.floor(s.length / 2)]!.toFixed(2)}× (${s[0]!.toFixed(2)}–${s[s.length - 1]!.toFixed(2)}×)`;
};
for (const [hubKind, r] of Object.entries(ratios)) {
  console.log(`natter edge / nats-server edge into a ${hubKind} hub: throughput ${summary(r.rate)}, latency p50 ${summary(r.p50)}, p99 ${summary(r.p99)} over ${r.rate.length} round(s)`);
}
process.exit(0);
