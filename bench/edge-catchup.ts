// Store-and-forward catch-up after an outage (issue 14): an edge server (leaf, domain `edge`, stream
// TELEMETRY) and a hub (domain `hub`, stream ALL_TELEMETRY sourcing TELEMETRY across the leaf link).
// The hub is killed, the edge stores N acknowledged messages, the hub is started again; measured:
//   - first: time from the link's return (the edge's domain API answers on the hub) to the first copied
//     message in the hub's stream (the copying side's retry: nats-server waits ~5 s, natter every second),
//   - rate: messages per second from the first copied message until the hub's stream holds all N.
// Pairs (edge → hub): natter → nats-server, nats-server → nats-server, natter → natter, nats-server → natter.
//
//   bun bench/edge-catchup.ts [--count 1000000] [--size 128] [--rounds 3] [--pairs natter:nats-server,nats-server:nats-server]
// Each round runs every pair once; the ratio natter edge / nats-server edge is taken within a round.
// A/B of a natter change: NATTER_B=<other checkout>/src/main.ts and the kind `natter-b` in --pairs
// (natter-b:nats-server) run that natter too; its ratio to the nats-server edge is printed alongside.
import { connect, type NatsConnection } from "nats";
import { freePort, server, waitFor, type Kind } from "./edge-servers.ts";

const args = process.argv.slice(2);
const arg = (name: string, dflt: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : dflt;
};
const COUNT = Number(arg("count", "1000000"));
const SIZE = Number(arg("size", "128"));
const PAIRS = arg("pairs", "natter:nats-server,nats-server:nats-server,natter:natter,nats-server:natter")
  .split(",")
  .map((p) => p.split(":") as [Kind, Kind]);

async function messages(nc: NatsConnection, stream: string): Promise<number> {
  const jsm = await nc.jetstreamManager();
  return (await jsm.streams.info(stream)).state.messages;
}

async function run(edgeKind: Kind, hubKind: Kind): Promise<{ first: number; rate: number; total: number; cpuUs: { edge: number; hub: number } }> {
  const leafPort = await freePort();
  const hub = server(hubKind, "HUB", await freePort(), `jetstream { store_dir: "{{dir}}", domain: hub }\nleafnodes { listen: "127.0.0.1:${leafPort}" }\n`);
  const edge = server(edgeKind, "EDGE", await freePort(), `jetstream { store_dir: "{{dir}}", domain: edge }\nleafnodes { remotes [ { url: "nats-leaf://127.0.0.1:${leafPort}" } ] }\n`);
  await hub.start();
  await edge.start();
  const ec = await connect({ port: edge.port });
  let hc = await connect({ port: hub.port });
  await (await ec.jetstreamManager()).streams.add({ name: "TELEMETRY", subjects: ["telemetry.>"] });
  await waitFor("the link", async () => (await hc.request("$JS.edge.API.INFO", undefined, { timeout: 500 })) !== null, 20_000);
  await (await hc.jetstreamManager()).streams.add({ name: "ALL_TELEMETRY", sources: [{ name: "TELEMETRY", external: { api: "$JS.edge.API", deliver: "" } }] });
  await hc.close();
  await hub.kill();

  // The outage: the edge acknowledges and stores everything.
  const js = ec.jetstream();
  const payload = new Uint8Array(SIZE).fill(120);
  const WINDOW = 2000;
  let pending: Promise<unknown>[] = [];
  for (let i = 0; i < COUNT; i++) {
    pending.push(js.publish(`telemetry.s${i % 16}`, payload));
    if (pending.length >= WINDOW) {
      await Promise.all(pending);
      pending = [];
    }
  }
  await Promise.all(pending);

  // The link returns.
  await hub.start();
  hc = await connect({ port: hub.port });
  // The copied messages pass the hub on their deliver subject ($JS.S.<id>): the first one with a payload
  // is the first copied message (a stream info request would wait behind the hub's work). Then the
  // subscription goes: kept, it would have every copied message sent to this process too.
  let firstSeen = 0;
  const firstCopy = hc.subscribe("$JS.S.>", {
    callback: (_e, m) => {
      if (firstSeen !== 0 || m.data.length === 0) return;
      firstSeen = performance.now();
      firstCopy.unsubscribe();
    },
  });
  // The link is back when the edge's domain API answers from the hub.
  await waitFor("the link's return", async () => (await hc.request("$JS.edge.API.INFO", undefined, { timeout: 200 })) !== null, 30_000);
  const back = performance.now();
  const cpuAtBack = { edge: edge.cpu(), hub: hub.cpu() };
  if (process.env.CATCHUP_DEBUG) console.log(`link back at ${new Date().toISOString()}`);
  const firstAt = await waitFor("the first copied message", async () => (firstSeen > 0 ? firstSeen : null), 60_000);
  const allAt = await waitFor("every message", async () => ((await messages(hc, "ALL_TELEMETRY")) >= COUNT ? performance.now() : null), 1_800_000);
  // CPU per copied message on each side (from the link's return: startup work of the hub is before it).
  const cpuUs = { edge: ((edge.cpu() - cpuAtBack.edge) * 1e6) / COUNT, hub: ((hub.cpu() - cpuAtBack.hub) * 1e6) / COUNT };
  const total = await messages(hc, "ALL_TELEMETRY");
  await hc.close();
  await ec.close();
  await edge.kill();
  await hub.kill();
  return { first: (firstAt - back) / 1000, rate: COUNT / ((allAt - firstAt) / 1000), total, cpuUs };
}

const ROUNDS = Number(arg("rounds", "1"));
console.log(`catch-up of ${COUNT} × ${SIZE} B after a hub outage (edge → hub, hub stream sourcing the edge's across domains), ${ROUNDS} round(s), pairs alternating`);
const ratios: Record<string, number[]> = {};
for (let round = 1; round <= ROUNDS; round++) {
  const results: Record<string, { first: number; rate: number }> = {};
  for (const [edgeKind, hubKind] of PAIRS) {
    const r = await run(edgeKind, hubKind);
    results[`${edgeKind}:${hubKind}`] = r;
    console.log(`${round} ${`${edgeKind} → ${hubKind}`.padEnd(28)} first copied ${r.first.toFixed(2)} s after the link's return, catch-up ${Math.round(r.rate).toLocaleString("en")} msgs/s, ${r.total} in the hub's stream, CPU per message edge ${r.cpuUs.edge.toFixed(1)} µs hub ${r.cpuUs.hub.toFixed(1)} µs`);
  }
  const b = results["nats-server:nats-server"];
  for (const kind of ["natter", "natter-b"]) {
    const a = results[`${kind}:nats-server`];
    if (a && b) (ratios[kind] ??= []).push(a.rate / b.rate);
  }
}
for (const [kind, list] of Object.entries(ratios)) {
  const sorted = [...list].sort((x, y) => x - y);
  const median = sorted[Math.floor(sorted.length / 2)]!;
  console.log(`${kind} edge / nats-server edge catch-up rate (nats-server hub): median ${median.toFixed(2)}×, range ${sorted[0]!.toFixed(2)}–${sorted[sorted.length - 1]!.toFixed(2)}× over ${list.length} round(s)`);
}
process.exit(0);
