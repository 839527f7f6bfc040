// What docs/low-memory.conf saves and costs, for README "Running on a device": dist/natter started with
// each profile (fresh server and store per round, median of --rounds), then
//   idle      resident memory once "Server is ready";
//   steady    `natter bench pubsub` 1→1, 128 B, with the bench's flow window (a subscriber keeping up);
//   burst     the same with --window 0 (publisher flat out, nothing holds it back: the server queues);
//   js file   async publishes with acks (256 in flight) to a file stream, 128 B;
//   js memory a memory stream filled past max_memory_store (how many publishes were taken);
//   peak      the server's VmHWM (peak resident memory) after the pub/sub runs, and after all of them.
//
//   npm run build -- --target host && bun scripts/low-memory-figures.ts [--rounds 3]
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { connect, StorageType } from "nats";
import { REPO } from "./build.ts";
import net from "node:net";

const NATTER = path.join(REPO, "dist/natter");
const ROUNDS = Number(process.argv[process.argv.indexOf("--rounds") + 1]) || 3;
const JS_MSGS = 20_000;

interface Profile {
  name: string;
  args: string[];
  env: NodeJS.ProcessEnv;
}
const PROFILES: Profile[] = [
  { name: "defaults", args: [], env: {} },
  { name: "docs/low-memory.conf", args: ["-c", path.join(REPO, "docs/low-memory.conf")], env: {} },
  { name: "docs/low-memory.conf + BUN_OPTIONS=--smol", args: ["-c", path.join(REPO, "docs/low-memory.conf")], env: { BUN_OPTIONS: "--smol" } },
];

type Row = Record<"idle" | "steady" | "burst" | "peakCore" | "jsFile" | "jsMemory" | "peak", number>;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer().on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

const kib = (pid: number, field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);

/** `natter bench …` against the server; its publish rate (msgs/s), or -1 when the server cut the subscriber. */
function bench(port: number, args: string[]): number {
  const r = spawnSync(NATTER, ["bench", "pubsub", "-s", `nats://127.0.0.1:${port}`, "--no-latency", ...args], { encoding: "utf8", timeout: 120_000 });
  const rate = /Pub stats: ([\d,]+) msgs\/s/.exec(r.stdout);
  return rate ? Number(rate[1]!.replaceAll(",", "")) : -1;
}

async function round(profile: Profile): Promise<Row> {
  const store = mkdtempSync(path.join(os.tmpdir(), "natter-lowmem-"));
  const [port, http] = [await freePort(), await freePort()];
  // Flags after -c win over the file: free ports and a temporary store.
  const child = spawn(NATTER, [...profile.args, "-a", "127.0.0.1", "-p", String(port), "-m", String(http), "-js", "-sd", store], {
    env: { ...process.env, ...profile.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  try {
    let out = "";
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`not ready:\n${out}`)), 30_000);
      const onData = (d: Buffer) => {
        out += d.toString();
        if (out.includes("Server is ready")) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout!.on("data", onData);
      child.stderr!.on("data", onData);
    });
    const idle = kib(child.pid!, "VmRSS");
    const steady = bench(port, ["--msgs", "500k"]);
    const burst = bench(port, ["--msgs", "1M", "--window", "0"]);
    const peakCore = kib(child.pid!, "VmHWM");

    const nc = await connect({ servers: `127.0.0.1:${port}`, timeout: 10_000 });
    const jsm = await nc.jetstreamManager();
    const js = nc.jetstream();
    const payload = new Uint8Array(128);
    await jsm.streams.add({ name: "FILE", subjects: ["file.>"], storage: StorageType.File });
    const t0 = performance.now();
    const inflight: Promise<unknown>[] = [];
    for (let i = 0; i < JS_MSGS; i++) {
      inflight.push(js.publish("file.x", payload));
      if (inflight.length >= 256) await Promise.all(inflight.splice(0));
    }
    await Promise.all(inflight);
    const jsFile = JS_MSGS / ((performance.now() - t0) / 1000);

    // A memory stream fed 64 MB of 4 KB messages: how many the server takes before max_memory_store refuses.
    await jsm.streams.add({ name: "MEM", subjects: ["mem.>"], storage: StorageType.Memory });
    const big = new Uint8Array(4096);
    let taken = 0;
    for (let i = 0; i < 16_384; i++) {
      try {
        await js.publish("mem.x", big);
        taken++;
      } catch {
        break;
      }
    }
    await nc.close();
    const peak = kib(child.pid!, "VmHWM");
    return { idle, steady, burst, peakCore, jsFile, jsMemory: taken, peak };
  } finally {
    child.kill("SIGTERM");
    await new Promise((resolve) => child.once("exit", resolve));
    rmSync(store, { recursive: true, force: true });
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const mib = (k: number) => `${(k / 1024).toFixed(0)} MiB`;
const rate = (r: number) => (r < 0 ? "subscriber cut (slow consumer)" : `${(r / 1e6).toFixed(2)} M msgs/s`);

const results = new Map<string, Row[]>(PROFILES.map((p) => [p.name, []]));
// Rounds alternate through the profiles so a busy machine's drift hits them alike.
for (let r = 0; r < ROUNDS; r++) for (const p of PROFILES) results.get(p.name)!.push(await round(p));

console.log(`| profile | RSS idle | pub/sub steady | pub/sub burst (no flow control) | peak RSS after pub/sub | JetStream file publish | memory stream, 4 KB msgs taken | peak RSS at the end |`);
console.log(`|---|---|---|---|---|---|---|---|`);
for (const p of PROFILES) {
  const rows = results.get(p.name)!;
  const m = (k: keyof Row) => median(rows.map((x) => x[k]));
  const bursts = rows.map((x) => x.burst);
  const burst = bursts.some((b) => b < 0) ? `${rate(-1)} in ${bursts.filter((b) => b < 0).length}/${rows.length}` : rate(m("burst"));
  console.log(`| ${p.name} | ${mib(m("idle"))} | ${rate(m("steady"))} | ${burst} | ${mib(m("peakCore"))} | ${(m("jsFile") / 1000).toFixed(1)} k msgs/s | ${m("jsMemory")} (${((m("jsMemory") * 4096) / 1048576).toFixed(0)} MiB) | ${mib(m("peak"))} |`);
}
