// Starts natter cluster nodes as real processes on loopback, on free ports, for the cluster tests.
// Every node is killed when the test (or file) that started it ends, pass or fail; a process 'exit'
// handler SIGKILLs anything left over. Waiting is by deadline (poll until true), never a fixed sleep.
import { spawn, type ChildProcess } from "node:child_process";
import net from "node:net";
import path from "node:path";
import { afterAll, onTestFinished } from "vitest";
import { printOnFailure } from "../harness/failure-log.ts";
import { freePort } from "../harness/server.ts";

const REPO = path.resolve(import.meta.dirname, "../..");
const BUN = path.join(REPO, "node_modules/.bin/bun");
const HOST = "127.0.0.1";

export interface NodeOptions {
  name: string;
  clusterName?: string;
  /** Cluster ports of the seeds (--routes). */
  seeds?: number[];
  /** Monitoring port too (for /subsz). */
  monitor?: boolean;
  noAdvertise?: boolean;
  extraArgs?: string[];
  /** Extra environment variables for the process. */
  env?: Record<string, string>;
  /**
   * Which server to run: natter (the default), or nats-server (the same flags; for tests that also hold
   * against a nats-server cluster, e.g. `kind: serverKind` under NATTER_TEST_SERVER=nats-server).
   */
  kind?: "natter" | "nats-server";
  /** The cluster port (picked free when not given): lets nodes name each other as seeds before they start. */
  clusterPort?: number;
}

export interface ClusterNode {
  readonly name: string;
  readonly port: number;
  readonly clusterPort: number;
  readonly httpPort: number;
  /** The member id other nodes know it by. */
  readonly id: string;
  readonly hostport: string;
  readonly url: string;
  log(): string;
  /** SIGKILL; resolves once the process has exited. */
  kill9(): Promise<void>;
  /** SIGTERM (graceful: it leaves the cluster), SIGKILL after 5 s. */
  stop(): Promise<void>;
  /** Starts again on the same ports (after kill9/stop). */
  start(): Promise<void>;
  signal(signal: NodeJS.Signals): void;
  readonly running: boolean;
}

const live = new Set<ChildProcess>();
const nodes = new Set<ClusterNode>();
let hooked = false;

afterAll(async () => {
  await Promise.all([...nodes].map((n) => n.kill9()));
  nodes.clear();
});

/** Polls `check` until it returns true; throws `what` (and `detail()`) past the deadline. */
export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000, detail?: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail ? `\n${detail()}` : ""}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function probe(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: HOST, port });
    let done = false;
    const finish = (ok: boolean) => {
      if (done) return;
      done = true;
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(2000, () => finish(false));
    sock.on("data", (d) => finish(d.toString("latin1").startsWith("INFO ")));
    sock.on("error", () => finish(false));
    sock.on("close", () => finish(false));
  });
}

export async function startNode(opts: NodeOptions): Promise<ClusterNode> {
  if (!hooked) {
    hooked = true;
    process.on("exit", () => {
      for (const c of live) c.kill("SIGKILL");
    });
  }
  const port = await freePort();
  const clusterPort = opts.clusterPort ?? (await freePort());
  const httpPort = opts.monitor ? await freePort() : 0;
  let child: ChildProcess | null = null;
  let exited: Promise<void> = Promise.resolve();
  let running = false;
  let logText = "";
  const args = [
    path.join(REPO, "src/main.ts"), "-a", HOST, "-p", String(port), "-n", opts.name, "--cluster", `nats://${HOST}:${clusterPort}`,
    "--cluster_name", opts.clusterName ?? "test",
  ];
  if (opts.seeds && opts.seeds.length > 0) args.push("--routes", opts.seeds.map((p) => `nats://${HOST}:${p}`).join(","));
  if (httpPort) args.push("-m", String(httpPort));
  if (opts.noAdvertise) args.push("--no_advertise");
  args.push("-D", ...(opts.extraArgs ?? []));

  const node: ClusterNode = {
    name: opts.name,
    port,
    clusterPort,
    httpPort,
    id: `${HOST}:${clusterPort}`,
    hostport: `${HOST}:${port}`,
    url: `nats://${HOST}:${port}`,
    log: () => logText,
    get running() {
      return running;
    },
    async kill9() {
      if (!running || child === null) return;
      child.kill("SIGKILL");
      await exited;
    },
    signal(signal) {
      if (running && child !== null) child.kill(signal);
    },
    async stop() {
      if (!running || child === null) return;
      const c = child;
      c.kill("SIGTERM");
      const t = setTimeout(() => c.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(t);
    },
    async start() {
      const [cmd, argv] = opts.kind === "nats-server" ? [process.env.NATS_SERVER_BIN ?? "nats-server", args.slice(1)] : [BUN, args];
      const c = spawn(cmd, argv, { cwd: REPO, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...opts.env } });
      child = c;
      running = true;
      live.add(c);
      logText += `--- start ${opts.name}\n`;
      c.stdout!.on("data", (d: Buffer) => (logText += d.toString()));
      c.stderr!.on("data", (d: Buffer) => (logText += d.toString()));
      exited = new Promise((resolve) => {
        c.on("exit", (code, signal) => {
          running = false;
          live.delete(c);
          logText += `--- exited code=${code} signal=${signal}\n`;
          resolve();
        });
      });
      try {
        await waitFor(`${opts.name} to accept clients`, async () => {
          if (!running) throw new Error(`${opts.name} exited during start-up:\n${logText}`);
          return probe(port);
        }, 15_000);
      } catch (error) {
        c.kill("SIGKILL");
        throw error;
      }
    },
  };
  await node.start();
  nodes.add(node);
  printOnFailure(`node ${opts.name} (client port ${port})`, () => logText);
  try {
    onTestFinished(async () => {
      nodes.delete(node);
      await node.kill9();
    });
  } catch {
    // started in a hook: afterAll kills it
  }
  return node;
}

/** n nodes; node 0 has no seed, node i > 0 names node i-1 as its only seed (a chain: each learns the rest by gossip). */
export async function startCluster(n: number, opts: Partial<NodeOptions> = {}): Promise<ClusterNode[]> {
  const out: ClusterNode[] = [];
  for (let i = 0; i < n; i++) {
    out.push(await startNode({ ...opts, name: `N${i}`, seeds: i === 0 ? [] : [out[i - 1]!.clusterPort] }));
  }
  await waitForMesh(out);
  return out;
}

/** Count of "Route connection created to <id>" minus "Route connection to <id> closed" in a node's log since its last start. */
export function routeUp(node: ClusterNode, to: ClusterNode): boolean {
  const log = node.log();
  const since = log.lastIndexOf(`--- start ${node.name}`);
  const text = log.slice(since);
  const created = text.lastIndexOf(`Route connection created to ${to.id} `);
  const closed = text.lastIndexOf(`Route connection to ${to.id} closed`);
  return created >= 0 && created > closed;
}

export async function waitForMesh(list: ClusterNode[], timeoutMs = 10_000): Promise<void> {
  await waitFor(
    "a full mesh of routes",
    () => list.every((a) => list.every((b) => a === b || routeUp(a, b))),
    timeoutMs,
    () => list.map((n) => `${n.name} ${n.id}:\n${n.log().split("\n").filter((l) => /Route|member|Cluster/.test(l)).join("\n")}`).join("\n"),
  );
}

/** /subsz num_subscriptions (local subscriptions plus the other nodes' interest held here). */
export async function subscriptionCount(node: ClusterNode): Promise<number> {
  const r = await fetch(`http://${HOST}:${node.httpPort}/subsz`);
  const j = (await r.json()) as { num_subscriptions: number };
  return j.num_subscriptions;
}
