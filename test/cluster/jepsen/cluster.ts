// A JetStream cluster of real server processes for the Jepsen-style test and the cluster benchmark:
// natter or nats-server, 3 or 5 nodes, each given the same nats-server config file (server_name,
// listen, http, `jetstream { store_dir }`, a `cluster` block naming every other node as a route).
//
// Two networks:
// - "netns": each node runs in its own network namespace (`ip netns exec`), on its own address, joined
//   by a bridge that this process also sits on (so clients reach every node, whatever the partition);
//   a partition is blackhole routes between the two sides, as test/cluster/partition.test.ts does.
//   Needs root and iproute2.
// - "loopback": every node on 127.0.0.1 on free ports; no partitions (a pause, SIGSTOP/SIGCONT, is
//   the fault that stands in for a node cut off).
//
// No vitest import (test/cluster/spawn.ts registers vitest hooks at import): `npm run jepsen` and
// `npm run bench:js-cluster` use this outside vitest. Every process is SIGKILLed and every namespace
// removed by shutdown(), and by a process 'exit' hook when shutdown() was never reached.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { freePort } from "../../harness/free-port.ts";

export type ClusterServer = "natter" | "nats-server";
export type NetworkMode = "netns" | "loopback";

const REPO = path.resolve(import.meta.dirname, "../../..");
const LOG_LIMIT = 512 * 1024;

export interface JsNode {
  readonly index: number;
  /** server_name, as stream info `cluster.leader` names it. */
  readonly name: string;
  /** host:port for clients. */
  readonly hostport: string;
  /** http://host:port of the monitoring endpoint. */
  readonly monitorUrl: string;
  readonly running: boolean;
  readonly paused: boolean;
  readonly pid: number;
  /** SIGKILL; resolves once the process has exited. */
  kill9(): Promise<void>;
  /** Starts again with the same name, ports and store (after kill9). */
  start(): Promise<void>;
  /** SIGSTOP / SIGCONT. */
  pause(): void;
  resume(): void;
  log(): string;
}

export interface JsCluster {
  readonly server: ClusterServer;
  readonly network: NetworkMode;
  readonly nodes: JsNode[];
  /** Every node's host:port, for a client that should reconnect anywhere. */
  readonly servers: string[];
  /** Cuts `isolated` off from the other nodes (netns only). */
  partition(isolated: number[]): void;
  /** Removes every cut. */
  heal(): void;
  readonly partitioned: number[] | null;
  /** Heals, resumes paused nodes, restarts killed ones. */
  healAll(): Promise<void>;
  /** Kills everything, removes stores, namespaces and config files. */
  shutdown(): Promise<void>;
  /** Every node's log, labelled (for a failure report). */
  logs(): string;
}

export interface ClusterOptions {
  server: ClusterServer;
  nodes: number;
  network: NetworkMode;
  /** Extra config-file text every node gets. */
  extraConfig?: string;
}

/** Why network namespaces cannot be used here, or null when they can. */
export function netnsUnavailable(): string | null {
  if (typeof process.getuid === "function" && process.getuid() !== 0) return "not root";
  const probe = `njprobe${process.pid % 100000}`;
  try {
    execFileSync("ip", ["netns", "add", probe], { stdio: "pipe" });
    execFileSync("ip", ["netns", "del", probe], { stdio: "pipe" });
    return null;
  } catch (error) {
    return `ip netns unavailable: ${(error as Error).message.split("\n")[0]}`;
  }
}

function ip(...args: string[]): void {
  execFileSync("ip", args, { stdio: "pipe" });
}

function tryIp(...args: string[]): void {
  try {
    ip(...args);
  } catch {
    // already gone
  }
}

/** Resolves once host:port answers with an INFO line. */
function answers(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    let done = false;
    const sock = net.connect({ host, port });
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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const everyCluster = new Set<() => void>();
let exitHooked = false;

export async function startJsCluster(opts: ClusterOptions): Promise<JsCluster> {
  if (!exitHooked) {
    exitHooked = true;
    process.on("exit", () => {
      for (const cleanup of everyCluster) cleanup();
    });
  }
  const n = opts.nodes;
  // Names unlike partition.test.ts's (ntp…/ntb…/10.200–249): both may run at once in one vitest process.
  const tag = `${process.pid % 10000}${Math.floor(Math.random() * 90 + 10)}`;
  const subnet = `10.${150 + (process.pid % 50)}.${Math.floor(Math.random() * 250)}`;
  const ns = (i: number) => `njp${tag}-${i}`;
  const bridge = `njb${tag}`;
  const netns = opts.network === "netns";

  const addr: { host: string; port: number; clusterPort: number; httpPort: number }[] = [];
  for (let i = 0; i < n; i++) {
    if (netns) addr.push({ host: `${subnet}.${i + 1}`, port: 4222, clusterPort: 6222, httpPort: 8222 });
    else addr.push({ host: "127.0.0.1", port: await freePort(), clusterPort: await freePort(), httpPort: await freePort() });
  }

  const children = new Set<ChildProcess>();
  const workDir = mkdtempSync(path.join(os.tmpdir(), "natter-jepsen-"));
  let torn = false;
  const teardown = () => {
    if (torn) return;
    torn = true;
    for (const c of children) c.kill("SIGKILL");
    if (netns) {
      for (let i = 0; i < n; i++) tryIp("netns", "del", ns(i));
      tryIp("link", "del", bridge);
    }
  };
  everyCluster.add(teardown);

  if (netns) {
    ip("link", "add", bridge, "type", "bridge");
    ip("link", "set", bridge, "up");
    ip("addr", "add", `${subnet}.254/24`, "dev", bridge);
    for (let i = 0; i < n; i++) {
      const veth = `njv${tag}${i}`;
      ip("netns", "add", ns(i));
      ip("link", "add", veth, "type", "veth", "peer", "name", `${veth}p`);
      ip("link", "set", `${veth}p`, "netns", ns(i));
      ip("link", "set", veth, "master", bridge);
      ip("link", "set", veth, "up");
      ip("netns", "exec", ns(i), "ip", "addr", "add", `${addr[i]!.host}/24`, "dev", `${veth}p`);
      ip("netns", "exec", ns(i), "ip", "link", "set", `${veth}p`, "up");
      ip("netns", "exec", ns(i), "ip", "link", "set", "lo", "up");
    }
  }

  const name = (i: number) => `n${i}`;
  const confFile = (i: number) => path.join(workDir, `${name(i)}.conf`);
  for (let i = 0; i < n; i++) {
    const a = addr[i]!;
    const routes = addr.filter((_, j) => j !== i).map((b) => `    "nats://${b.host}:${b.clusterPort}"`);
    writeFileSync(confFile(i), [
      `server_name: ${name(i)}`,
      `listen: "${a.host}:${a.port}"`,
      `http: "${a.host}:${a.httpPort}"`,
      `jetstream {\n  store_dir: ${JSON.stringify(path.join(workDir, `${name(i)}-store`))}\n}`,
      `cluster {\n  name: jepsen\n  listen: "${a.host}:${a.clusterPort}"\n  routes: [\n${routes.join("\n")}\n  ]\n}`,
      opts.extraConfig ?? "",
      "",
    ].join("\n"));
  }

  const command = (i: number): [string, string[]] => {
    const server: [string, string[]] = opts.server === "nats-server"
      ? [process.env.NATS_SERVER_BIN ?? "nats-server", ["-c", confFile(i)]]
      : [path.join(REPO, "node_modules/.bin/bun"), [path.join(REPO, "src/main.ts"), "-c", confFile(i)]];
    // `ip netns exec` execs the server: the child's pid is the server's, so signals reach it.
    return netns ? ["ip", ["netns", "exec", ns(i), server[0], ...server[1]]] : server;
  };

  let partitioned: number[] | null = null;
  const cut = (isolated: number[], add: boolean) => {
    const rest = [...Array(n).keys()].filter((i) => !isolated.includes(i));
    for (const a of isolated) {
      for (const b of rest) {
        ip("netns", "exec", ns(a), "ip", "route", add ? "add" : "del", "blackhole", `${addr[b]!.host}/32`);
        ip("netns", "exec", ns(b), "ip", "route", add ? "add" : "del", "blackhole", `${addr[a]!.host}/32`);
      }
    }
  };

  const makeNode = (i: number): JsNode => {
    let child: ChildProcess | null = null;
    let running = false;
    let paused = false;
    let exited: Promise<void> = Promise.resolve();
    let logText = "";
    const append = (s: string) => {
      logText += s;
      if (logText.length > LOG_LIMIT * 2) logText = logText.slice(-LOG_LIMIT);
    };
    const a = addr[i]!;
    const node: JsNode = {
      index: i,
      name: name(i),
      hostport: `${a.host}:${a.port}`,
      monitorUrl: `http://${a.host}:${a.httpPort}`,
      get running() {
        return running;
      },
      get paused() {
        return paused;
      },
      get pid() {
        return child?.pid ?? -1;
      },
      async kill9() {
        if (!running || child === null) return;
        child.kill("SIGKILL");
        await exited;
        paused = false;
      },
      pause() {
        if (running && child !== null && !paused) {
          child.kill("SIGSTOP");
          paused = true;
        }
      },
      resume() {
        if (running && child !== null && paused) {
          child.kill("SIGCONT");
          paused = false;
        }
      },
      log: () => logText,
      async start() {
        if (running) return;
        const [cmd, args] = command(i);
        append(`--- start ${name(i)}: ${cmd} ${args.join(" ")}\n`);
        const c = spawn(cmd, args, { cwd: REPO, stdio: ["ignore", "pipe", "pipe"] });
        child = c;
        running = true;
        paused = false;
        children.add(c);
        c.stdout!.on("data", (d: Buffer) => append(d.toString()));
        c.stderr!.on("data", (d: Buffer) => append(d.toString()));
        exited = new Promise((resolve) => {
          c.on("exit", (code, signal) => {
            running = false;
            children.delete(c);
            append(`--- exited code=${code} signal=${signal}\n`);
            resolve();
          });
        });
        const deadline = Date.now() + 30_000;
        while (!(await answers(a.host, a.port))) {
          if (!running) throw new Error(`${name(i)} exited during start-up:\n${logText}`);
          if (Date.now() > deadline) {
            c.kill("SIGKILL");
            throw new Error(`${name(i)} not answering on ${a.host}:${a.port} within 30 s:\n${logText}`);
          }
          await sleep(50);
        }
      },
    };
    return node;
  };

  const nodes = Array.from({ length: n }, (_, i) => makeNode(i));
  const cluster: JsCluster = {
    server: opts.server,
    network: opts.network,
    nodes,
    servers: nodes.map((x) => x.hostport),
    get partitioned() {
      return partitioned;
    },
    partition(isolated) {
      if (!netns) throw new Error("partitions need network namespaces");
      if (partitioned !== null) cut(partitioned, false);
      cut(isolated, true);
      partitioned = [...isolated];
    },
    heal() {
      if (partitioned !== null) cut(partitioned, false);
      partitioned = null;
    },
    async healAll() {
      cluster.heal();
      for (const node of nodes) node.resume();
      await Promise.all(nodes.filter((x) => !x.running).map((x) => x.start()));
    },
    async shutdown() {
      for (const node of nodes) node.resume();
      await Promise.all(nodes.map((x) => x.kill9()));
      teardown();
      everyCluster.delete(teardown);
      rmSync(workDir, { recursive: true, force: true });
    },
    logs: () => nodes.map((x) => `--- log of ${x.name} (${x.hostport}):\n${x.log().slice(-64 * 1024)}`).join("\n"),
  };
  try {
    await Promise.all(nodes.map((x) => x.start()));
  } catch (error) {
    await cluster.shutdown();
    throw error;
  }
  return cluster;
}
