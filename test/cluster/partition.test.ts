// A five-node cluster cut into three and two, then healed, with real processes: each node runs in its
// own network namespace (`ip netns`), joined by a bridge; the cut is a blackhole route between the two
// sides (datagrams and TCP alike vanish, as on a real network). Needs root and iproute2; skips with a
// message otherwise.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import * as nats from "nats";
import { waitFor } from "./spawn.ts";

const REPO = path.resolve(import.meta.dirname, "../..");
const BUN = path.join(REPO, "node_modules/.bin/bun");
const N = 5;
const tag = `${process.pid % 10000}`;
const subnet = `10.${200 + (process.pid % 50)}.${process.pid % 250}`;
const bridge = `ntb${tag}`;
const ns = (i: number) => `ntp${tag}-${i}`;
const ip = (i: number) => `${subnet}.${i + 1}`;
const id = (i: number) => `${ip(i)}:6222`;

function sh(...args: string[]): void {
  execFileSync("ip", args, { stdio: "pipe" });
}

function canUseNetns(): string | null {
  if (typeof process.getuid === "function" && process.getuid() !== 0) return "not root";
  try {
    sh("netns", "add", `${ns(99)}`);
    sh("netns", "del", `${ns(99)}`);
    return null;
  } catch (error) {
    return `ip netns unavailable: ${(error as Error).message.split("\n")[0]}`;
  }
}

const why = canUseNetns();
if (why !== null) console.warn(`partition test skipped: ${why}`);

const procs: ChildProcess[] = [];
const logs: string[] = Array.from({ length: N }, () => "");
const conns: nats.NatsConnection[] = [];

function teardownNetwork(): void {
  for (const p of procs) p.kill("SIGKILL");
  for (let i = 0; i < N; i++) {
    try {
      sh("netns", "del", ns(i));
    } catch {
      // not there
    }
  }
  try {
    sh("link", "del", bridge);
  } catch {
    // not there
  }
}

function cut(sideA: number[], sideB: number[], add: boolean): void {
  for (const a of sideA) {
    for (const b of sideB) {
      sh("netns", "exec", ns(a), "ip", "route", add ? "add" : "del", "blackhole", `${ip(b)}/32`);
      sh("netns", "exec", ns(b), "ip", "route", add ? "add" : "del", "blackhole", `${ip(a)}/32`);
    }
  }
}

/** Whether node i's log (since `from`) shows the member j up after it was last gone. */
function sees(i: number, j: number): boolean {
  const log = logs[i]!;
  const up = log.lastIndexOf(`Cluster member ${id(j)} (`);
  const upLine = log.slice(up, log.indexOf("\n", up));
  return up >= 0 && upLine.includes("is up");
}

function routed(i: number, j: number): boolean {
  const log = logs[i]!;
  return log.lastIndexOf(`Route connection created to ${id(j)} `) > log.lastIndexOf(`Route connection to ${id(j)} closed`);
}

function meshOf(list: number[]): boolean {
  return list.every((i) => list.every((j) => i === j || (sees(i, j) && routed(i, j))));
}

describe.skipIf(why !== null)("partition and heal (network namespaces)", () => {
  beforeAll(async () => {
    process.on("exit", teardownNetwork);
    teardownNetwork();
    sh("link", "add", bridge, "type", "bridge");
    sh("link", "set", bridge, "up");
    sh("addr", "add", `${subnet}.254/24`, "dev", bridge);
    for (let i = 0; i < N; i++) {
      const veth = `ntv${tag}${i}`;
      sh("netns", "add", ns(i));
      sh("link", "add", veth, "type", "veth", "peer", "name", `${veth}p`);
      sh("link", "set", `${veth}p`, "netns", ns(i));
      sh("link", "set", veth, "master", bridge);
      sh("link", "set", veth, "up");
      sh("netns", "exec", ns(i), "ip", "addr", "add", `${ip(i)}/24`, "dev", `${veth}p`);
      sh("netns", "exec", ns(i), "ip", "link", "set", `${veth}p`, "up");
      sh("netns", "exec", ns(i), "ip", "link", "set", "lo", "up");
    }
    for (let i = 0; i < N; i++) {
      const args = ["netns", "exec", ns(i), BUN, path.join(REPO, "src/main.ts"), "-a", ip(i), "-p", "4222", "-n", `P${i}`,
        "--cluster", `nats://${ip(i)}:6222`, "--cluster_name", "part", "-D"];
      if (i > 0) args.push("--routes", `nats://${id(i - 1)}`);
      const p = spawn("ip", args, { cwd: REPO, stdio: ["ignore", "pipe", "pipe"] });
      p.stdout!.on("data", (d: Buffer) => (logs[i] += d.toString()));
      p.stderr!.on("data", (d: Buffer) => (logs[i] += d.toString()));
      procs.push(p);
    }
    const all = [...Array(N).keys()];
    await waitFor("a full mesh of five", () => meshOf(all), 30_000, () => logs.join("\n"));
  }, 60_000);

  afterAll(async () => {
    await Promise.all(conns.map((c) => c.close().catch(() => {})));
    teardownNetwork();
  });

  test("3 | 2: each side drops the other and keeps routing; after healing the views converge and no message is duplicated", async () => {
    const sc = nats.StringCodec();
    const connect = async (i: number) => {
      const c = await nats.connect({ servers: `${ip(i)}:4222`, reconnect: false });
      conns.push(c);
      return c;
    };
    const [p0, c2, c4] = [await connect(0), await connect(2), await connect(4)];
    const got2: string[] = [];
    const got4: string[] = [];
    c2.subscribe("part.>", { callback: (_e, m) => got2.push(sc.decode(m.data)) });
    c4.subscribe("part.>", { callback: (_e, m) => got4.push(sc.decode(m.data)) });
    await c2.flush();
    await c4.flush();
    const reaches = async (got: string[], label: string) => {
      await waitFor(`${label} to be delivered`, async () => {
        p0.publish("part.probe", sc.encode(label));
        await p0.flush();
        await new Promise((r) => setTimeout(r, 50));
        return got.includes(label);
      }, 20_000);
    };
    await reaches(got4, "before");

    const sideA = [0, 1, 2];
    const sideB = [3, 4];
    const t0 = Date.now();
    cut(sideA, sideB, true);
    await waitFor("each side to drop the other", () =>
      sideA.every((i) => sideB.every((j) => !sees(i, j))) && sideB.every((j) => sideA.every((i) => !sees(j, i))), 20_000, () => logs.join("\n"));
    const detectMs = Date.now() - t0;
    expect(detectMs).toBeLessThan(10_000);
    await reaches(got2, "during"); // the majority side still routes

    cut(sideA, sideB, false);
    const t1 = Date.now();
    await waitFor("the views to converge and the mesh to return", () => meshOf([...Array(N).keys()]), 30_000, () => logs.join("\n"));
    const healMs = Date.now() - t1;
    console.log(`partition noticed on both sides in ${detectMs} ms; healed (views and routes) in ${healMs} ms`);
    await reaches(got4, "after");

    // Exactly once after healing: no stale route, no doubled interest.
    got2.length = 0;
    got4.length = 0;
    for (let i = 0; i < 500; i++) p0.publish("part.x", sc.encode(`m${i}`));
    await p0.flush();
    // Probes the `reaches` loop published before it saw its label may still arrive after the clear: only the series counts.
    const series = (got: string[]) => got.filter((m) => /^m\d+$/.test(m));
    await waitFor("500 at each side", () => series(got2).length >= 500 && series(got4).length >= 500);
    await new Promise((r) => setTimeout(r, 300));
    const expected = Array.from({ length: 500 }, (_, i) => `m${i}`);
    expect(series(got2)).toEqual(expected);
    expect(series(got4)).toEqual(expected);
  }, 90_000);
});
