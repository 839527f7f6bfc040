// How a fresh R3 cluster warms up: async publishes (window 256, 128 B) to a new R3 stream, in blocks, and for
// each block the CPU time its three server processes spent per message (/proc: every thread, the JIT's
// compiler threads too) and msg/s. bench/jetstream-cluster.ts measures only the first 20 000 of a fresh
// cluster; this shows where the cost per message settles. Environment: KIND=nats-server (NATS_SERVER_BIN: any
// server, e.g. a wrapper running another natter build or natter with BUN_JSC_* options); SECOND=1 moves to a
// second new stream halfway (a cost that comes back there belongs to the stream, one that does not to the
// process); NODE_LOGS=<dir> writes each node's output there (with BUN_JSC_reportFTLCompileTimes=1 in the
// environment: each compilation of JavaScriptCore's FTL tier and its time); STOP_GENTLY=1 stops the servers
// with SIGTERM (a wrapper running `bun --cpu-prof-md` writes its profile then).
//
//   bun bench/warm-up-curve.ts [--block 5000] [--blocks 8]
import { jetstream } from "@nats-io/jetstream";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { startJsCluster, type ClusterServer } from "../test/cluster/jepsen/cluster.ts";
import { connectCluster, createReplicatedStream, jetstreamManager, until, waitStreamHealthy } from "../test/cluster/jepsen/stream.ts";
import { numberArg } from "./args.ts";

const BLOCK = numberArg("block", 5000);
const BLOCKS = numberArg("blocks", 8);
const WINDOW = 256;

/** CPU ms the processes used so far (/proc: user + system, 100 ticks a second). */
const cpuMs = (pids: number[]) =>
  pids.reduce((sum, pid) => {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return sum + (Number(fields[11]) + Number(fields[12])) * 10;
  }, 0);

const kind = (process.env.KIND as ClusterServer | undefined) ?? "natter";
const cluster = await startJsCluster({ server: kind, nodes: 3, network: "loopback" });
try {
  const nc = await connectCluster(cluster, "warm-up-curve");
  const jsm = await until("JetStream", 60_000, () => jetstreamManager(nc, { timeout: 5000 }));
  const newStream = async (name: string) => {
    const created = await createReplicatedStream(jsm, { name, subjects: [`${name.toLowerCase()}.>`], num_replicas: 3 });
    if (!created.ok) throw new Error(created.unsupported);
    await waitStreamHealthy(jsm, name, 3, 60_000);
  };
  await newStream("W1");
  const js = jetstream(nc, { timeout: 10_000 });
  const payload = new Uint8Array(128);
  const pids = cluster.nodes.map((n) => n.pid);
  const cells: string[] = [];
  let subject = "w1.x";
  for (let b = 0; b < BLOCKS; b++) {
    if (process.env.SECOND && b === Math.floor(BLOCKS / 2)) {
      await newStream("W2");
      subject = "w2.x";
      cells.push("| W2:");
    }
    const cpu = cpuMs(pids);
    const t = performance.now();
    let inflight: Promise<unknown>[] = [];
    for (let i = 0; i < BLOCK; i++) {
      inflight.push(js.publish(subject, payload));
      if (inflight.length >= WINDOW) {
        await Promise.all(inflight);
        inflight = [];
      }
    }
    await Promise.all(inflight);
    cells.push(`${(((cpuMs(pids) - cpu) * 1000) / BLOCK).toFixed(1)} µs ${Math.round(BLOCK / ((performance.now() - t) / 1000))}/s`);
  }
  console.log(`${kind} (${process.env.NATS_SERVER_BIN ?? "this tree"}), blocks of ${BLOCK}: servers' CPU per message, msg/s`);
  console.log(cells.join("  "));
  await nc.close();
  if (process.env.NODE_LOGS) for (const n of cluster.nodes) writeFileSync(path.join(process.env.NODE_LOGS, `${n.name}.log`), n.log());
  if (process.env.STOP_GENTLY) {
    for (const n of cluster.nodes) process.kill(n.pid, "SIGTERM");
    await until("the servers to exit", 30_000, async () => (cluster.nodes.every((n) => { try { process.kill(n.pid, 0); return false; } catch { return true; } }) ? true : undefined));
  }
} finally {
  await cluster.shutdown();
}
