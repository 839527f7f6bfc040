// `npm run bench:js`: JetStream side by side, natter -js vs nats-server -js, each started fresh on free
// ports with its own temp store, driven by the official client (@nats-io/jetstream, @nats-io/kv) from this
// process. Scenarios: async publish with acks (file, memory), pull consumer, ordered consumer, KV put/get
// latency. Rounds alternate A B B A so drift on a noisy machine hits both alike; the median is reported.
//
//   bun bench/jetstream.ts [--msgs 100000] [--size 128] [--rounds 3] [--window 1000]
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { AckPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect } from "@nats-io/transport-node";
import { numberArg } from "./args.ts";

const MSGS = numberArg("msgs", 100_000);
const SIZE = numberArg("size", 128);
const ROUNDS = numberArg("rounds", 3);
const WINDOW = numberArg("window", 1000);
const KV_OPS = numberArg("kv", 2000);
const ROOT = path.resolve(import.meta.dirname, "..");

type Kind = "natter" | "nats-server";
type Result = Record<string, number>;

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

async function startServer(kind: Kind): Promise<{ port: number; stop(): Promise<void> }> {
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), "natter-jsbench-"));
  const args = ["-a", "127.0.0.1", "-p", String(port), "-js", "-sd", dir];
  const child: ChildProcess = kind === "natter"
    ? spawn(path.join(ROOT, "node_modules/.bin/bun"), [path.join(ROOT, "src/main.ts"), ...args], { stdio: "ignore" })
    : spawn(process.env.NATS_SERVER_BIN ?? "nats-server", args, { stdio: "ignore" });
  const exited = new Promise<void>((r) => child.on("exit", () => r()));
  const deadline = Date.now() + 15_000;
  for (;;) {
    const ok = await new Promise<boolean>((r) => {
      const s = net.connect({ host: "127.0.0.1", port }, () => {
        s.destroy();
        r(true);
      });
      s.on("error", () => r(false));
    });
    if (ok) break;
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`${kind} did not start`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    port,
    async stop() {
      child.kill("SIGTERM");
      const t = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(t);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function run(port: number): Promise<Result> {
  const nc = await connect({ servers: `127.0.0.1:${port}` });
  const js = jetstream(nc);
  const jsm = await jetstreamManager(nc);
  const payload = new Uint8Array(SIZE);
  const out: Result = {};
  for (const storage of ["file", "memory"] as const) {
    const name = `BENCH_${storage}`;
    await jsm.streams.add({ name, subjects: [`${name}.>`], storage: storage as never });
    let t = performance.now();
    let inflight: Promise<unknown>[] = [];
    for (let i = 0; i < MSGS; i++) {
      inflight.push(js.publish(`${name}.x`, payload));
      if (inflight.length >= WINDOW) {
        await Promise.all(inflight);
        inflight = [];
      }
    }
    await Promise.all(inflight);
    out[`async publish ${storage} (msg/s)`] = MSGS / ((performance.now() - t) / 1000);
    await jsm.consumers.add(name, { durable_name: "pull", ack_policy: AckPolicy.Explicit });
    const pull = await js.consumers.get(name, "pull");
    t = performance.now();
    let n = 0;
    for await (const m of await pull.consume({ max_messages: 1000 })) {
      m.ack();
      if (++n >= MSGS) break;
    }
    out[`pull consume+ack ${storage} (msg/s)`] = MSGS / ((performance.now() - t) / 1000);
    const ordered = await js.consumers.get(name);
    t = performance.now();
    n = 0;
    for await (const _m of await ordered.consume({ max_messages: 1000 })) if (++n >= MSGS) break;
    out[`ordered consume ${storage} (msg/s)`] = MSGS / ((performance.now() - t) / 1000);
  }
  const kv = await new Kvm(nc).create("bench");
  let t = performance.now();
  for (let i = 0; i < KV_OPS; i++) await kv.put(`k${i % 100}`, payload);
  out["kv put (µs, lower is better)"] = ((performance.now() - t) / KV_OPS) * 1000;
  t = performance.now();
  for (let i = 0; i < KV_OPS; i++) await kv.get(`k${i % 100}`);
  out["kv get (µs, lower is better)"] = ((performance.now() - t) / KV_OPS) * 1000;
  await nc.close();
  return out;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const results: Record<Kind, Result[]> = { natter: [], "nats-server": [] };
console.log(`JetStream bench: ${MSGS} msgs of ${SIZE} B, window ${WINDOW}, ${ROUNDS} round(s) each, A=natter B=nats-server`);
for (let r = 0; r < ROUNDS; r++) {
  const order: Kind[] = r % 2 === 0 ? ["natter", "nats-server"] : ["nats-server", "natter"];
  for (const kind of order) {
    const server = await startServer(kind);
    try {
      results[kind].push(await run(server.port));
    } finally {
      await server.stop();
    }
    process.stdout.write(".");
  }
}
console.log("");
const keys = Object.keys(results.natter[0]!);
const rows = keys.map((k) => {
  const a = median(results.natter.map((x) => x[k]!));
  const b = median(results["nats-server"].map((x) => x[k]!));
  const latency = k.includes("µs");
  const ratio = latency ? b / a : a / b; // > 1: natter better
  return { k, a, b, ratio };
});
const w = Math.max(...keys.map((k) => k.length));
console.log(`${"scenario".padEnd(w)}  ${"natter".padStart(10)}  ${"nats-server".padStart(11)}  ratio`);
for (const { k, a, b, ratio } of rows) {
  const fmt = (v: number) => (k.includes("µs") ? v.toFixed(1) : Math.round(v).toString());
  console.log(`${k.padEnd(w)}  ${fmt(a).padStart(10)}  ${fmt(b).padStart(11)}  ${ratio.toFixed(2)}x`);
}
console.log("ratio = natter / nats-server for throughput, nats-server / natter for latency: ≥ 1 means natter is as good or better");
