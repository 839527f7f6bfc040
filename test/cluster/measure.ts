// Measures the cluster on this machine: for n nodes (real processes on loopback, each given one seed),
// how long a new node takes until every member knows it and routes to it (convergence), how long a
// killed node takes to be declared dead by all (detection), and gossip traffic per node in steady state.
//
//   bun test/cluster/measure.ts [3,5,10,20]
//
// Times come from the nodes' own log timestamps (ms), so polling does not blur them.
import { spawn, type ChildProcess } from "node:child_process";
import net from "node:net";
import path from "node:path";

const REPO = path.resolve(import.meta.dirname, "../..");
const BUN = path.join(REPO, "node_modules/.bin/bun");
const HOST = "127.0.0.1";
const sizes = (process.argv[2] ?? "3,5,10").split(",").map(Number);

interface Node {
  name: string;
  id: string;
  child: ChildProcess;
  log: string;
}
const all: Node[] = [];
process.on("exit", () => all.forEach((n) => n.child.kill("SIGKILL")));

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, HOST, () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

async function waitFor(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Log timestamp `2026/11/22 04:48:05.154000` → ms since epoch (local time, as the node wrote it). */
function stamp(line: string): number {
  const m = /(\d{4})\/(\d\d)\/(\d\d) (\d\d):(\d\d):(\d\d)\.(\d{3})/.exec(line)!;
  return new Date(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!, +m[7]!).getTime();
}

function firstLine(log: string, re: RegExp): string | null {
  for (const line of log.split("\n")) if (re.test(line)) return line;
  return null;
}

async function start(name: string, seed: string | null): Promise<Node> {
  const port = await freePort();
  const cport = await freePort();
  const args = [path.join(REPO, "src/main.ts"), "-a", HOST, "-p", String(port), "-n", name, "--cluster", `nats://${HOST}:${cport}`, "--cluster_name", "m", "-D"];
  if (seed) args.push("--routes", `nats://${seed}`);
  const child = spawn(BUN, args, { cwd: REPO, stdio: ["ignore", "pipe", "pipe"] });
  const node: Node = { name, id: `${HOST}:${cport}`, child, log: "" };
  child.stderr!.on("data", (d: Buffer) => (node.log += d.toString()));
  child.stdout!.on("data", (d: Buffer) => (node.log += d.toString()));
  all.push(node);
  await waitFor(() => node.log.includes("Server is ready"), 15_000, `${name} ready`);
  return node;
}

const esc = (s: string) => s.replace(/\./g, "\\.");

async function measure(n: number): Promise<Record<string, number>> {
  const nodes: Node[] = [];
  for (let i = 0; i < n - 1; i++) nodes.push(await start(`n${i}`, i === 0 ? null : nodes[i - 1]!.id));
  const meshed = (list: Node[]) =>
    list.every((a) => list.every((b) => a === b || a.log.includes(`Route connection created to ${b.id} `)));
  await waitFor(() => meshed(nodes), 30_000, "initial mesh");
  // Convergence: one more node, seeded with the last one only.
  const newcomer = await start(`n${n - 1}`, nodes[n - 2]!.id);
  nodes.push(newcomer);
  await waitFor(() => meshed(nodes), 30_000, "mesh with the newcomer");
  const ready = stamp(firstLine(newcomer.log, /Server is ready/)!);
  let membershipDone = 0;
  let meshDone = 0;
  for (const a of nodes) {
    if (a === newcomer) continue;
    membershipDone = Math.max(membershipDone, stamp(firstLine(a.log, new RegExp(`Cluster member ${esc(newcomer.id)} `))!));
    membershipDone = Math.max(membershipDone, stamp(firstLine(newcomer.log, new RegExp(`Cluster member ${esc(a.id)} `))!));
    meshDone = Math.max(meshDone, stamp(firstLine(a.log, new RegExp(`Route connection created to ${esc(newcomer.id)} `))!));
    meshDone = Math.max(meshDone, stamp(firstLine(newcomer.log, new RegExp(`Route connection created to ${esc(a.id)} `))!));
  }
  // Steady-state gossip traffic: two stats lines (5 s apart) per node.
  const statsLines = (node: Node) => node.log.split("\n").filter((l) => l.includes("Gossip stats:") && l.includes(`members_up=${n - 1} `));
  await waitFor(() => nodes.every((x) => statsLines(x).length >= 2), 30_000, "two stats lines per node");
  let sentPerSec = 0;
  let receivedPerSec = 0;
  for (const node of nodes) {
    const lines = statsLines(node);
    const [l1, l2] = [lines.at(-2)!, lines.at(-1)!];
    const field = (l: string, k: string) => Number(new RegExp(`${k}=(\\d+)`).exec(l)![1]);
    const secs = (stamp(l2) - stamp(l1)) / 1000;
    sentPerSec += (field(l2, "sent_bytes") - field(l1, "sent_bytes")) / secs;
    receivedPerSec += (field(l2, "received_bytes") - field(l1, "received_bytes")) / secs;
  }
  // Detection: kill -9 one node (not the newcomer); time until every other node declares it gone.
  const victim = nodes[Math.floor(n / 2)]!;
  const killedAt = Date.now();
  victim.child.kill("SIGKILL");
  const rest = nodes.filter((x) => x !== victim);
  const gone = new RegExp(`Cluster member ${esc(victim.id)} \\(\\S+\\) is gone`);
  await waitFor(() => rest.every((x) => gone.test(x.log)), 30_000, "death noticed everywhere");
  const detected = Math.max(...rest.map((x) => stamp(firstLine(x.log, gone)!)));
  if (process.env.MEASURE_DETAIL) {
    console.log("detection per node (ms):", rest.map((x) => stamp(firstLine(x.log, gone)!) - killedAt).join(" "));
    console.log("newcomer known (ms):", nodes.filter((x) => x !== newcomer).map((a) => stamp(firstLine(a.log, new RegExp(`Cluster member ${esc(newcomer.id)} `))!) - ready).join(" "));
    for (const x of nodes) console.log(x.name, x.id, statsLines(x).at(-1)?.replace(/.*Gossip stats: /, ""), (x.log.match(/gossip socket: .*/g) ?? []).length, "socket errors");
    for (const a of nodes) {
      if (a === newcomer) continue;
      const t = stamp(firstLine(a.log, new RegExp(`Cluster member ${esc(newcomer.id)} `))!) - ready;
      if (t > 1000) console.log(`--- late node ${a.name}:\n` + a.log.split("\n").filter((l) => /gossip|Dropping|Cluster member|Route/.test(l)).map((l) => `${stamp(l) - ready} ${l.replace(/^.*\] /, "")}`).join("\n"));
    }
  }
  for (const x of nodes) x.child.kill("SIGKILL");
  await new Promise((r) => setTimeout(r, 300));
  return {
    n,
    membership_ms: membershipDone - ready,
    mesh_ms: meshDone - ready,
    detect_ms: detected - killedAt,
    gossip_sent_bytes_per_s_per_node: Math.round(sentPerSec / n),
    gossip_received_bytes_per_s_per_node: Math.round(receivedPerSec / n),
  };
}

const rows = [];
for (const n of sizes) {
  const r = await measure(n);
  console.log(JSON.stringify(r));
  rows.push(r);
}
console.log("\n| nodes | new node known by all | full route mesh | kill -9 declared dead by all | gossip sent per node | gossip received per node |");
console.log("|---:|---:|---:|---:|---:|---:|");
for (const r of rows) {
  console.log(`| ${r.n} | ${r.membership_ms} ms | ${r.mesh_ms} ms | ${r.detect_ms} ms | ${(r.gossip_sent_bytes_per_s_per_node! / 1024).toFixed(2)} KiB/s | ${(r.gossip_received_bytes_per_s_per_node! / 1024).toFixed(2)} KiB/s |`);
}
process.exit(0);
