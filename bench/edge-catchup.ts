// Store-and-forward catch-up after an outage (issue 14): an edge server (leaf, domain `edge`, stream
// TELEMETRY) and a hub (domain `hub`, stream ALL_TELEMETRY sourcing TELEMETRY across the leaf link).
// The hub is killed, the edge stores N acknowledged messages, the hub is started again; measured:
//   - first: time from the link's return (the edge's domain API answers on the hub) to the first copied
//     message in the hub's stream (the copying side's retry: nats-server waits ~5 s, natter every second),
//   - rate: messages per second from the first copied message until the hub's stream holds all N.
// Pairs (edge → hub): natter → nats-server, nats-server → nats-server, natter → natter, nats-server → natter.
//
//   bun bench/edge-catchup.ts [--count 1000000] [--size 128] [--pairs natter:nats-server,nats-server:nats-server]
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { connect, type NatsConnection } from "nats";

type Kind = "natter" | "nats-server";

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
const REPO = path.resolve(import.meta.dir, "..");
const children = new Set<ChildProcess>();
process.on("exit", () => {
  for (const c of children) c.kill("SIGKILL");
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

async function waitFor<T>(what: string, check: () => Promise<T | null | false>, ms: number): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check().catch(() => null);
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

interface Server {
  port: number;
  start(): Promise<void>;
  kill(): Promise<void>;
}

function server(kind: Kind, name: string, port: number, config: string): Server {
  const dir = mkdtempSync(path.join(os.tmpdir(), `natter-catchup-${name}-`));
  const conf = path.join(dir, "server.conf");
  writeFileSync(conf, config.replaceAll("{{dir}}", dir));
  let child: ChildProcess | null = null;
  let exited: Promise<void> = Promise.resolve();
  const s: Server = {
    port,
    async start() {
      const [cmd, argv] = kind === "natter"
        ? [process.execPath, [path.join(REPO, "src/main.ts"), "-c", conf, "-a", "127.0.0.1", "-p", String(port), "-n", name, ...(process.env.CATCHUP_DEBUG ? ["-D"] : [])]]
        : ["nats-server", ["-c", conf, "-a", "127.0.0.1", "-p", String(port), "-n", name]];
      const c = spawn(cmd, argv, { stdio: process.env.CATCHUP_DEBUG ? ["ignore", "inherit", "inherit"] : "ignore" });
      child = c;
      children.add(c);
      exited = new Promise((r) => c.on("exit", () => r()));
      await waitFor(`${name} to listen`, () => new Promise<boolean>((resolve) => {
        const sock = net.connect({ host: "127.0.0.1", port }, () => { sock.destroy(); resolve(true); });
        sock.on("error", () => resolve(false));
      }), 20_000);
    },
    async kill() {
      if (child === null) return;
      child.kill("SIGKILL");
      await exited;
      children.delete(child);
      child = null;
    },
  };
  process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
  return s;
}

async function messages(nc: NatsConnection, stream: string): Promise<number> {
  const jsm = await nc.jetstreamManager();
  return (await jsm.streams.info(stream)).state.messages;
}

async function run(edgeKind: Kind, hubKind: Kind): Promise<{ first: number; rate: number; total: number }> {
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
  // is the first copied message (a stream info request would wait behind the hub's work).
  let firstSeen = 0;
  hc.subscribe("$JS.S.>", { callback: (_e, m) => { if (firstSeen === 0 && m.data.length > 0) firstSeen = performance.now(); } });
  // The link is back when the edge's domain API answers from the hub.
  await waitFor("the link's return", async () => (await hc.request("$JS.edge.API.INFO", undefined, { timeout: 200 })) !== null, 30_000);
  const back = performance.now();
  if (process.env.CATCHUP_DEBUG) console.log(`link back at ${new Date().toISOString()}`);
  const firstAt = await waitFor("the first copied message", async () => (firstSeen > 0 ? firstSeen : null), 60_000);
  const allAt = await waitFor("every message", async () => ((await messages(hc, "ALL_TELEMETRY")) >= COUNT ? performance.now() : null), 1_800_000);
  const total = await messages(hc, "ALL_TELEMETRY");
  await hc.close();
  await ec.close();
  await edge.kill();
  await hub.kill();
  return { first: (firstAt - back) / 1000, rate: COUNT / ((allAt - firstAt) / 1000), total };
}

console.log(`catch-up of ${COUNT} × ${SIZE} B after a hub outage (edge → hub, hub stream sourcing the edge's across domains)`);
const results: Record<string, { first: number; rate: number }> = {};
for (const [edgeKind, hubKind] of PAIRS) {
  const r = await run(edgeKind, hubKind);
  results[`${edgeKind}:${hubKind}`] = r;
  console.log(`${`${edgeKind} → ${hubKind}`.padEnd(28)} first copied ${r.first.toFixed(2)} s after the link's return, catch-up ${Math.round(r.rate).toLocaleString("en")} msgs/s, ${r.total} in the hub's stream`);
}
const a = results["natter:nats-server"];
const b = results["nats-server:nats-server"];
if (a && b) console.log(`natter edge / nats-server edge catch-up rate (nats-server hub): ${(a.rate / b.rate).toFixed(2)}×`);
process.exit(0);
