// Restart cost, side by side with nats-server: the time from spawn until the client port answers INFO
// (a) with no JetStream, (b) with JetStream and no stream, (c) with one file stream of N messages
// (default 300,000 × 64 B), restarted after `kill -9`; and (d) a client's outage across a restart
// (the time the official client spends between its disconnect and its reconnect).
//
//   bun bench/restart.ts [--runs 7] [--msgs 300000] [--only natter|nats-server] [--against <checkout>]
//
// `--against` adds "natter before": another checkout of natter (e.g. a worktree of an older commit).
// Times are the wall clock of this process (spawn → first INFO line on a fresh TCP connection, polled
// every 2 ms), medians and maxima over the runs. The runs alternate between the servers (one run of each
// measurement for each, in turn, the order reversed every other run), so that a busy machine's drift
// hits them alike.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { connect } from "@nats-io/transport-node";

const REPO = path.resolve(import.meta.dirname, "..");
const BUN = path.join(REPO, "node_modules/.bin/bun");
const HOST = "127.0.0.1";

const argv = process.argv.slice(2);
const flag = (name: string, dflt: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1]! : dflt;
};
const RUNS = Number(flag("runs", "7"));
const MSGS = Number(flag("msgs", "300000"));
const ONLY = flag("only", "");
const AGAINST = flag("against", "");
type Kind = "natter" | "natter before" | "nats-server";
const kinds: Kind[] = (["natter", ...(AGAINST === "" ? [] : ["natter before"]), "nats-server"] as Kind[]).filter((k) => ONLY === "" || k === ONLY);

const children = new Set<ChildProcess>();
process.on("exit", () => children.forEach((c) => c.kill("SIGKILL")));

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, HOST, () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

function spawnServer(kind: Kind, port: number, storeDir: string | null): ChildProcess {
  let child: ChildProcess;
  if (kind !== "nats-server") {
    const args = [path.join(kind === "natter" ? REPO : path.resolve(AGAINST), "src/main.ts"), "-a", HOST, "-p", String(port)];
    if (storeDir) args.push("-js", "-sd", storeDir);
    child = spawn(BUN, args, { cwd: REPO, stdio: "ignore" });
  } else {
    const args = ["-a", HOST, "-p", String(port)];
    if (storeDir) args.push("-js", "-sd", storeDir);
    child = spawn("nats-server", args, { stdio: "ignore" });
  }
  children.add(child);
  child.on("exit", () => children.delete(child));
  return child;
}

/** Resolves when a fresh connection to the port gets an INFO line; polls every 2 ms. */
async function untilInfo(port: number, deadlineMs = 20_000): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, HOST);
      let got = "";
      s.on("data", (d) => {
        got += d.toString();
        if (got.includes("\r\n")) {
          s.destroy();
          resolve(got.startsWith("INFO"));
        }
      });
      s.on("error", () => resolve(false));
      s.on("close", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`no INFO on ${port}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

async function kill9(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGKILL");
  await exited;
}

/** Fills one file stream `S` (subject `s.>`) with `msgs` messages through core PUBs. */
async function fillStream(port: number, msgs: number): Promise<void> {
  const nc = await connect({ servers: `${HOST}:${port}` });
  const create = JSON.stringify({ name: "S", subjects: ["s.>"], storage: "file", max_msgs: -1, max_bytes: -1, max_age: 0, retention: "limits", discard: "old", num_replicas: 1 });
  await nc.request("$JS.API.STREAM.CREATE.S", new TextEncoder().encode(create), { timeout: 5000 });
  const payload = new Uint8Array(64);
  for (let i = 0; i < msgs; i++) {
    nc.publish(`s.${i % 100}`, payload);
    if (i % 5000 === 4999) await nc.flush();
  }
  await nc.flush();
  // Until everything is stored.
  for (;;) {
    const info = JSON.parse(new TextDecoder().decode((await nc.request("$JS.API.STREAM.INFO.S", undefined, { timeout: 5000 })).data));
    if (info.state?.messages >= msgs) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  await nc.close();
}

async function streamMessages(port: number): Promise<number> {
  const nc = await connect({ servers: `${HOST}:${port}` });
  try {
    for (let i = 0; i < 500; i++) {
      try {
        const info = JSON.parse(new TextDecoder().decode((await nc.request("$JS.API.STREAM.INFO.S", undefined, { timeout: 2000 })).data));
        if (info.state) return info.state.messages;
      } catch {}
      await new Promise((r) => setTimeout(r, 10));
    }
    return -1;
  } finally {
    await nc.close();
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (xs: number[]) => `median ${median(xs).toFixed(0)} ms, max ${Math.max(...xs).toFixed(0)} ms`;

/** One restart: spawn → INFO; the server is killed after. */
async function timeToInfo(kind: Kind, port: number, storeDir: string | null): Promise<number> {
  const began = performance.now();
  const child = spawnServer(kind, port, storeDir);
  await untilInfo(port);
  const took = performance.now() - began;
  await kill9(child);
  return took;
}

/** One restart: spawn → the stream's STREAM.INFO answered with all its messages (the store recovered). */
async function timeToStreamInfo(kind: Kind, port: number, storeDir: string): Promise<number> {
  const began = performance.now();
  const child = spawnServer(kind, port, storeDir);
  await untilInfo(port);
  const n = await streamMessages(port);
  const took = performance.now() - began;
  if (n !== MSGS) console.log(`  !! ${kind}: the stream has ${n} messages`);
  await kill9(child);
  return took;
}

/** A client connected to a server that is killed and restarted at once: its disconnect → reconnect time. */
async function clientOutage(kind: Kind, port: number, storeDir: string): Promise<number> {
  let child = spawnServer(kind, port, storeDir);
  await untilInfo(port);
  const nc = await connect({ servers: `${HOST}:${port}`, maxReconnectAttempts: -1, reconnectTimeWait: 50, reconnectJitter: 0 });
  let disconnectedAt = 0;
  const back = new Promise<void>((resolve) => {
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === "disconnect") disconnectedAt = performance.now();
        if (s.type === "reconnect") resolve();
      }
    })();
  });
  // The client retries a server it connected to less than reconnectTimeWait ago only after that wait:
  // stay connected longer, so the restart is met by an immediate first attempt.
  await new Promise((r) => setTimeout(r, 200));
  await kill9(child);
  child = spawnServer(kind, port, storeDir);
  await back;
  const outage = performance.now() - disconnectedAt;
  await nc.close();
  await kill9(child);
  return outage;
}

const version = (kind: Kind) =>
  kind === "nats-server"
    ? spawnSync("nats-server", ["--version"]).stdout.toString().trim()
    : `${kind} ` + spawnSync("git", ["-C", kind === "natter" ? REPO : path.resolve(AGAINST), "rev-parse", "--short", "HEAD"]).stdout.toString().trim();

// Per server: a port, an empty store, and a store with one stream of MSGS messages left by kill -9.
const setups = new Map<Kind, { port: number; emptyDir: string; dir: string }>();
for (const kind of kinds) {
  const emptyDir = mkdtempSync(path.join(os.tmpdir(), "restart-empty-"));
  const dir = mkdtempSync(path.join(os.tmpdir(), "restart-js-"));
  const port = await freePort();
  const filler = spawnServer(kind, port, dir);
  await untilInfo(port);
  await fillStream(port, MSGS);
  await kill9(filler);
  setups.set(kind, { port, emptyDir, dir });
}
const measures = ["ready, no JetStream", "ready, JetStream, no stream", `ready, one stream of ${MSGS} msgs`, "stream info answered (recovered)", "client outage per kill -9 restart (50 ms reconnect wait)"] as const;
const results = new Map<string, number[]>();
const add = (kind: Kind, measure: string, ms: number) => results.set(`${kind}|${measure}`, [...(results.get(`${kind}|${measure}`) ?? []), ms]);
for (let r = 0; r < RUNS; r++) {
  for (const kind of r % 2 === 0 ? kinds : [...kinds].reverse()) {
    const { port, emptyDir, dir } = setups.get(kind)!;
    add(kind, measures[0], await timeToInfo(kind, port, null));
    add(kind, measures[1], await timeToInfo(kind, port, emptyDir));
    add(kind, measures[2], await timeToInfo(kind, port, dir));
    add(kind, measures[3], await timeToStreamInfo(kind, port, dir));
    add(kind, measures[4], await clientOutage(kind, port, dir));
  }
}
for (const kind of kinds) {
  console.log(`== ${version(kind)} (${RUNS} runs)`);
  for (const m of measures) console.log(`  ${(m + ":").padEnd(60)} ${fmt(results.get(`${kind}|${m}`)!)}`);
  const { emptyDir, dir } = setups.get(kind)!;
  rmSync(emptyDir, { recursive: true, force: true });
  rmSync(dir, { recursive: true, force: true });
}
console.log(`load average ${os.loadavg().map((l) => l.toFixed(1)).join(" ")}`);
process.exit(0);
