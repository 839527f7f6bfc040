// Measures how soon a cluster node restarted after `kill -9` is whole again: three natter nodes on
// loopback (each seeded with the first), the last one killed and restarted, the times (from its spawn,
// its own log's millisecond clock) until it is ready, knows the members, and has a route to each.
//
//   bun test/cluster/restart-measure.ts [rounds=7]
import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { freePort } from "../harness/free-port.ts";

const REPO = path.resolve(import.meta.dirname, "../..");
const BUN = path.join(REPO, "node_modules/.bin/bun");
const ROUNDS = Number(process.argv[2] ?? 7);
const kids: ChildProcess[] = [];
process.on("exit", () => kids.forEach((k) => k.kill("SIGKILL")));

const ports = await Promise.all([0, 1, 2].map(async () => ({ client: await freePort(), cluster: await freePort() })));
function start(i: number, onLine: (ms: number, line: string) => void): ChildProcess {
  const t0 = performance.now();
  const args = [path.join(REPO, "src/main.ts"), "-a", "127.0.0.1", "-p", String(ports[i]!.client), "-n", `N${i}`, "--cluster", `nats://127.0.0.1:${ports[i]!.cluster}`, "--cluster_name", "m"];
  if (i > 0) args.push("--routes", `nats://127.0.0.1:${ports[0]!.cluster}`);
  const c = spawn(BUN, args, { cwd: REPO, stdio: ["ignore", "pipe", "pipe"] });
  kids.push(c);
  const on = (d: Buffer) => d.toString().split("\n").forEach((l) => l && onLine(performance.now() - t0, l));
  c.stdout!.on("data", on);
  c.stderr!.on("data", on);
  return c;
}
const waitUntil = async (check: () => boolean, ms: number) => {
  const deadline = Date.now() + ms;
  while (!check() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
};

for (let i = 0; i < 3; i++) start(i, () => {});
await new Promise((r) => setTimeout(r, 2000));
const results: { ready: number; members: number; whole: number }[] = [];
for (let round = 0; round < ROUNDS; round++) {
  const victim = kids[2]!;
  const exited = new Promise((r) => victim.once("exit", r));
  victim.kill("SIGKILL");
  await exited;
  await new Promise((r) => setTimeout(r, 300));
  let ready = -1;
  let members = 0;
  let routes = 0;
  let membersAt = -1;
  let wholeAt = -1;
  kids[2] = start(2, (ms, line) => {
    if (line.includes("Server is ready")) ready = ms;
    if (/Cluster member .* is up/.test(line) && ++members === 2) membersAt = ms;
    if (/Route connection created to/.test(line) && ++routes === 2) wholeAt = ms;
  });
  await waitUntil(() => wholeAt >= 0, 10_000);
  results.push({ ready, members: membersAt, whole: wholeAt });
  await new Promise((r) => setTimeout(r, 1500));
}
const median = (k: "ready" | "members" | "whole") => results.map((r) => r[k]).sort((a, b) => a - b)[Math.floor(results.length / 2)]!.toFixed(0);
console.log(`restarted node (median of ${ROUNDS}, ms from spawn): ready ${median("ready")}, knows both members ${median("members")}, routes to both ${median("whole")}`);
process.exit(0);
