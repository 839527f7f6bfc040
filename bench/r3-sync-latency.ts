// Sync publish latency on an R3 stream, by where the client is: on the stream leader's node, and on a
// follower's (one route hop more each way). Sides as bench/jetstream-cluster.ts (a fresh 3-node cluster each
// round); NATS_SERVER_BIN=<a wrapper running another natter build> makes that build the other side, for an
// A/B of a code change. Rounds alternate A B B A; per side and placement, each round's servers' CPU per
// publish (/proc: the leader's, all three), the time their threads (and main threads) waited for a CPU per publish, mean, p50, p90, p99, and B/A with its range. Environment: ONLY=natter|nats-server runs one side;
// SLOW=1 prints when the publishes over 1 ms started; LAT_FILE=<path> appends each publish as "<placement> <start, ms
// since the epoch> <µs>" (to line them up with the servers' own logs, e.g. their GC log: bench/gc-tail.ts); STRACE=1 counts each node's system calls (strace -c);
// NODE_LOGS=1 prints the nodes' logs (with BUN_JSC_logGC=1: their garbage collections); STOP_GENTLY=1 stops
// the servers with SIGTERM (a NATS_SERVER_BIN wrapper running `bun --cpu-prof-md` writes its profile then).
// --kv: the stream is a KV bucket's (replicas 3: direct gets, one message per key) and each publish a KV put.
//
//   bun bench/r3-sync-latency.ts [--sync 2000] [--rounds 4] [--kv]
import { jetstream } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { appendFileSync, readdirSync, readFileSync } from "node:fs";
import { spawn } from "node:child_process";
import { startJsCluster, type ClusterServer } from "../test/cluster/jepsen/cluster.ts";
import { connectCluster, connectNode, createReplicatedStream, jetstreamManager, streamLeader, until, waitStreamHealthy } from "../test/cluster/jepsen/stream.ts";
import { numberArg } from "./args.ts";

const SYNC = numberArg("sync", 2000);
const ROUNDS = numberArg("rounds", 4);
const KV = process.argv.includes("--kv");
const SIDES: ClusterServer[] = process.env.ONLY ? [process.env.ONLY as ClusterServer] : ["natter", "nats-server"];

/** CPU ms a process used so far (/proc: user + system, 100 ticks a second). */
/**
 * Time a process's threads (or its main thread: natter's event loop) spent runnable but waiting for a CPU so far,
 * in ms (/proc/<pid>/task/<tid>/schedstat, its second field): on a shared machine, what the scheduler adds to a
 * message's way through the servers.
 */
function runQueueMs(pid: number, mainThread = false): number {
  let ns = 0;
  try {
    for (const tid of mainThread ? [String(pid)] : readdirSync(`/proc/${pid}/task`)) {
      try {
        ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[1]);
      } catch {} // the thread ended meanwhile
    }
  } catch {}
  return ns / 1e6;
}

function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

async function round(kind: ClusterServer): Promise<Record<string, number[]>> {
  const cluster = await startJsCluster({ server: kind, nodes: 3, network: "loopback" });
  try {
    const admin = await connectCluster(cluster, "probe");
    const jsm = await until("JetStream", 60_000, () => jetstreamManager(admin, { timeout: 5000 }));
    const name = KV ? "KV_lat" : "LAT";
    if (KV) await until("the KV bucket", 60_000, () => new Kvm(admin).create("lat", { replicas: 3 }));
    else {
      const created = await createReplicatedStream(jsm, { name, subjects: ["lat.>"], num_replicas: 3 });
      if (!created.ok) throw new Error(created.unsupported);
    }
    await waitStreamHealthy(jsm, name, 3, 60_000);
    const leader = (await streamLeader(jsm, name))!;
    const out: Record<string, number[]> = {};
    for (const [where, node] of [["on the leader's node", cluster.nodes.find((n) => n.name === leader)!], ["on a follower's node", cluster.nodes.find((n) => n.name !== leader)!]] as const) {
      const nc = await connectNode(node);
      const js = jetstream(nc, { timeout: 10_000 });
      const payload = new Uint8Array(128);
      const kv = KV ? await new Kvm(nc).open("lat") : undefined;
      const publish = (i: number) => (kv ? kv.put(`k${i % 100}`, payload) : js.publish(i < 0 ? "lat.warm" : "lat.x", payload));
      for (let i = 0; i < 300; i++) await publish(-1 - i);
      const cpuBefore = cluster.nodes.map((n) => cpuMs(n.pid));
      const waitBefore = cluster.nodes.map((n) => runQueueMs(n.pid));
      const mainWaitBefore = cluster.nodes.map((n) => runQueueMs(n.pid, true));
      // STRACE=1: the system calls of each node over the measured publishes (strace -c), printed after.
      const traces = process.env.STRACE ? cluster.nodes.map((n) => {
        const t = spawn("strace", ["-c", "-f", "-p", String(n.pid)], { stdio: ["ignore", "ignore", "pipe"] });
        let text = "";
        t.stderr!.on("data", (d: Buffer) => (text += d.toString()));
        return { t, name: n.name === leader ? `${n.name} (leader)` : n.name, text: () => text, done: new Promise((r) => t.on("exit", r)) };
      }) : [];
      if (traces.length > 0) await new Promise((r) => setTimeout(r, 500));
      const lat: number[] = [];
      const slowAt: number[] = [];
      const latLines: string[] | null = process.env.LAT_FILE ? [] : null;
      const start = performance.now();
      for (let i = 0; i < SYNC; i++) {
        const t = performance.now();
        await publish(i);
        const us = (performance.now() - t) * 1000;
        lat.push(us);
        if (us > 1000) slowAt.push(Math.round(t - start));
        if (latLines !== null) latLines.push(`${where.replace(/ /g, "_")} ${(performance.timeOrigin + t).toFixed(3)} ${us.toFixed(0)}`);
      }
      for (const t of traces) t.t.kill("SIGINT");
      for (const t of traces) {
        await t.done;
        console.log(`--- ${kind} ${where}: ${t.name}\n${t.text().split("\n").filter((l) => !l.startsWith("strace:")).slice(0, 16).join("\n")}`);
      }
      const cpu = cluster.nodes.map((n, i) => ((cpuMs(n.pid) - cpuBefore[i]!) * 1000) / SYNC);
      const waited = cluster.nodes.map((n, i) => ((runQueueMs(n.pid) - waitBefore[i]!) * 1000) / SYNC);
      const mainWaited = cluster.nodes.map((n, i) => ((runQueueMs(n.pid, true) - mainWaitBefore[i]!) * 1000) / SYNC);
      out[`${where} CPU µs/msg, leader`] = [cpu[cluster.nodes.findIndex((n) => n.name === leader)]!];
      out[`${where} CPU µs/msg, all`] = [cpu.reduce((a, b) => a + b, 0)];
      out[`${where} run queue µs/msg, all`] = [waited.reduce((a, b) => a + b, 0)];
      out[`${where} run queue µs/msg, main threads`] = [mainWaited.reduce((a, b) => a + b, 0)];
      if (process.env.SLOW) console.log(kind, where, "slow (>1 ms) at ms:", slowAt.join(" "));
      if (latLines !== null) appendFileSync(process.env.LAT_FILE!, latLines.join("\n") + "\n");
      out[`${where} mean µs`] = [lat.reduce((a, b) => a + b, 0) / lat.length];
      lat.sort((a, b) => a - b);
      out[`${where} p99 µs`] = [lat[Math.floor(lat.length * 0.99)]!];
      out[`${where} p50 µs`] = [lat[Math.floor(lat.length * 0.5)]!];
      out[`${where} p90 µs`] = [lat[Math.floor(lat.length * 0.9)]!];
      await nc.close();
    }
    await admin.close();
    if (process.env.NODE_LOGS) console.log(cluster.logs());
    if (process.env.STOP_GENTLY) {
      // A profiled server (bun --cpu-prof in a NATS_SERVER_BIN wrapper) writes its profile when it exits.
      for (const n of cluster.nodes) process.kill(n.pid, "SIGTERM");
      await until("the servers to exit", 30_000, async () => (cluster.nodes.every((n) => { try { process.kill(n.pid, 0); return false; } catch { return true; } }) ? true : undefined));
    }
    return out;
  } finally {
    await cluster.shutdown();
  }
}

const results: Record<ClusterServer, Record<string, number[]>> = { natter: {}, "nats-server": {} };
for (let r = 0; r < ROUNDS; r++) {
  const order = r % 2 === 0 ? SIDES : [...SIDES].reverse();
  for (const kind of order) {
    const got = await round(kind);
    for (const [k, v] of Object.entries(got)) (results[kind][k] ??= []).push(...v);
  }
}
const b = process.env.NATS_SERVER_BIN ?? "nats-server";
console.log(`R3 ${KV ? "KV put" : "sync publish"} latency, ${SYNC} per placement, ${ROUNDS} rounds; A = natter (this tree), B = ${b}`);
for (const k of Object.keys(results[SIDES[0]!])) {
  const a = results.natter[k] ?? [], bb = results["nats-server"][k] ?? [];
  const med = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
  const ratios = a.map((x, i) => bb[i]! / x);
  const ratio = a.length > 0 && bb.length > 0 ? `  B/A median ${med(ratios).toFixed(2)} (${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)})` : "";
  console.log(`${k.padEnd(28)} A ${a.map((x) => x.toFixed(0)).join(" ")}  B ${bb.map((x) => x.toFixed(0)).join(" ")}${ratio}`);
}
