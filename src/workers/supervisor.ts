// `natter --procs N`: one natter per core. The process the user starts becomes a supervisor that
// serves no client itself; it starts N worker processes of the same executable. Every worker binds
// the client port (and the WebSocket port) with SO_REUSEPORT, so the kernel spreads new connections
// over them, and the workers form a natter cluster over loopback routes (src/cluster), one route port
// each: interest and messages flow between workers exactly as between cluster nodes (a message
// crosses at most one route, queue groups deliver once, local members first).
//
// - The supervisor binds each public port once without SO_REUSEPORT before starting the workers: a
//   port held by anything else, another `natter --procs` included (the kernel would otherwise let
//   processes of the same user share it), is refused with "address already in use". `-p -1` is
//   resolved here, so all workers get the same port.
// - Monitoring (-m) is served by worker 0 and shows worker 0 only (its /routez lists the others).
// - Signals to the supervisor (SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2) go to every worker; after
//   SIGINT, SIGTERM or SIGUSR2 the supervisor exits 0 once all workers have. A worker that dies
//   otherwise is started again on the same ports (backoff 250 ms doubling to 10 s while it keeps
//   dying young); its clients reconnect meanwhile and land on the other workers.
// - The pid file holds the supervisor's pid, the ports file is the supervisor's; workers write none.
// - JetStream (-js): the workers are the JetStream nodes of their cluster, each with its own store
//   under store_dir (store-layout.ts: the layout, the route ports kept across starts, the lock).
// - Leaf nodes: worker 0 alone dials the hubs and listens for leaf nodes (worker.ts ownShare); its hub
//   links stand for every worker (Subscriber.sharedHubLink), so a hub sees one leaf.
// - A cluster of the user's (--cluster host:port): each worker is a member, worker i's route port is
//   port + i (as nats-server users give each server of a cluster its own port), seeded with the user's
//   routes and the other workers. Refused with both a cluster and leaf nodes.
import { unlinkSync } from "node:fs";
import path from "node:path";
import type { Subprocess } from "bun";
import type { Options } from "../options.ts";
import { failStart as fail, loggerFor } from "../log.ts";
import { executableName, listenerUrls, writeAtomically } from "../config/lifecycle.ts";
import { effectiveLeafnodeOptions } from "../leaf/options.ts";
import { WORKER_ENV, type WorkerMessage } from "./worker.ts";
import { joinHostPort, listenError, type ListenerKind } from "../transport/listen-error.ts";
import { prepareWorkerStores, storeRoot as rootOfStores, workerStoreDir } from "./store-layout.ts";

const RESTART_MIN_MS = 250;
const RESTART_MAX_MS = 10_000;
/** A worker that ran this long before dying is restarted after the shortest delay again. */
const HEALTHY_RUN_MS = 10_000;
const START_DEADLINE_MS = 60_000;

/** Why these options cannot run as several processes; null when they can. */
export function procsRefusal(o: Options): string | null {
  if (o.clusterPort !== 0 && effectiveLeafnodeOptions(o) !== null) {
    return "--procs cannot be combined with both a cluster and leaf nodes (worker 0's hub link would carry the other nodes' interest too)";
  }
  if (o.httpsPort !== 0) return "--procs cannot be combined with https_port (worker 0 serves monitoring over plain HTTP only)";
  return null;
}

interface Slot {
  index: number;
  routePort: number;
  proc: Subprocess | null;
  startedAt: number;
  /** Consecutive deaths within HEALTHY_RUN_MS of starting. */
  failures: number;
  ready: boolean;
  restartTimer: ReturnType<typeof setTimeout> | null;
}

/** Binds host:port without SO_REUSEPORT and lets go: the port it got (port 0: a free one), or why not. */
function probePort(kind: ListenerKind, host: string, port: number): number {
  try {
    const listener = Bun.listen({ hostname: host, port, socket: { data() {} } });
    const bound = listener.port;
    listener.stop(true);
    return bound;
  } catch (error) {
    fail(listenError(kind, host, port, error).message);
  }
}

/** cluster_advertise host:port: worker i advertises port + i. */
function parseAdvertisedRoute(value: string): { host: string; port: number } {
  const m = /^(\[[^\]]*\]|[^:]+):(\d+)$/.exec(value.trim());
  if (!m) fail(`--procs needs cluster_advertise as host:port (worker i advertises port + i), got "${value}"`);
  return { host: m[1]!.replace(/^\[|\]$/g, ""), port: Number(m[2]) };
}

/** The command that runs this same natter: `bun [bun flags] main.ts` from a checkout, or the compiled binary. */
function selfCommand(): string[] {
  const compiled = Bun.main.startsWith("/$bunfs/") || Bun.main.startsWith("B:\\~BUN\\");
  return compiled ? [process.execPath] : [process.execPath, ...process.execArgv, Bun.main];
}

/** Runs the supervisor until the workers are stopped; never returns. `argv`: the user's arguments. */
export async function superviseWorkers(options: Options, argv: readonly string[]): Promise<never> {
  const refusal = procsRefusal(options);
  if (refusal !== null) fail(refusal);
  const n = options.procs;
  const log = loggerFor(options);

  const port = probePort("client", options.host, options.port === -1 ? 0 : options.port);
  const wsPort = options.wsPort === 0 ? 0 : probePort("websocket", options.wsHost, options.wsPort === -1 ? 0 : options.wsPort);
  const mqttPort = options.mqtt.port === 0 ? 0 : probePort("mqtt", options.mqtt.host, options.mqtt.port === -1 ? 0 : options.mqtt.port);
  const httpHost = options.httpHost || options.host;
  const httpPort = options.httpPort === 0 ? 0 : probePort("monitor", httpHost, options.httpPort === -1 ? 0 : options.httpPort);
  // Leaf nodes are worker 0's (worker.ts ownShare): its listener's port is resolved here once, so that a
  // restarted worker 0 listens where leaf nodes were told to dial.
  const leafnodes = effectiveLeafnodeOptions(options);
  const leafListen = leafnodes === null || leafnodes.port === 0 ? null : { host: leafnodes.host, port: probePort("leafnode", leafnodes.host, leafnodes.port === -1 ? 0 : leafnodes.port) };
  // A cluster of the user's (--cluster host:port, cluster {}): every worker is a member of it, worker i
  // listening for routes on port + i of the user's host (each random for port -1); the workers are one
  // another's seeds besides the user's routes. Otherwise the workers form their own on loopback.
  const userCluster = options.clusterPort !== 0;
  const routeHost = userCluster ? options.clusterHost : "127.0.0.1";
  const seedHost = routeHost === "0.0.0.0" || routeHost === "::" || routeHost === "" ? "127.0.0.1" : routeHost;
  const freeRoutePort = (taken: number[]): number => {
    for (;;) {
      const p = probePort("route", routeHost, 0);
      if (!taken.includes(p) && p !== port && p !== wsPort && p !== mqttPort && p !== httpPort && p !== leafListen?.port) return p;
    }
  };
  /** The N route ports: given the ports kept in the store's layout (JetStream), or none. */
  const routesFor = (kept: number[]): number[] => {
    const ports: number[] = [];
    if (userCluster && options.clusterPort !== -1) for (let i = 0; i < n; i++) ports.push(options.clusterPort + i);
    else if (!userCluster) ports.push(...kept.slice(0, n));
    while (ports.length < n) ports.push(freeRoutePort(ports));
    return ports;
  };
  let routePorts: number[] = [];
  let clusterName = userCluster ? options.clusterName : `natter-procs-${process.pid}`;
  // With JetStream the route ports are the workers' Raft ids: the same at every start (store-layout.ts).
  let storeRoot = "";
  let releaseStore = () => {};
  if (options.jetstream) {
    storeRoot = rootOfStores(options.storeDir);
    try {
      const prepared = prepareWorkerStores(storeRoot, n, routesFor, log, userCluster ? options.clusterName : undefined);
      releaseStore = prepared.release;
      routePorts = prepared.layout.routes.slice(0, n);
      if (!userCluster) clusterName = prepared.layout.cluster;
    } catch (error) {
      fail((error as Error).message);
    }
  } else {
    routePorts = routesFor([]);
  }
  // Ports kept or given are not probed yet: each must be free now (a worker would fail to start).
  for (const p of routePorts) {
    if (p === port || p === wsPort || p === mqttPort || p === httpPort || p === leafListen?.port) fail(`route port ${p} of a worker is also a listener's port`);
    probePort("route", routeHost, p);
  }
  const advertised = options.clusterAdvertise === "" ? null : parseAdvertisedRoute(options.clusterAdvertise);
  const command = selfCommand();

  function workerArgs(index: number): string[] {
    const routes = [
      ...options.routes.map((r) => `nats://${r}`),
      ...routePorts.filter((_, j) => j !== index).map((p) => `nats://${joinHostPort(seedHost, p)}`),
    ];
    return [
      ...argv,
      // After the user's flags: the later flag wins, and flags win over the config file (also on reload).
      "--procs", String(n),
      "-p", String(port),
      ...(wsPort !== 0 ? ["--ws_port", String(wsPort)] : []),
      ...(mqttPort !== 0 ? ["--mqtt_port", String(mqttPort)] : []),
      "-m", String(index === 0 ? httpPort : 0),
      ...(index === 0 && leafListen !== null ? ["--leafnodes_listen", joinHostPort(leafListen.host, leafListen.port)] : []),
      "--cluster", `nats://${joinHostPort(routeHost, routePorts[index]!)}`,
      "--routes", routes.join(","),
      ...(clusterName !== "" ? ["--cluster_name", clusterName] : []),
      ...(advertised !== null ? ["--cluster_advertise", joinHostPort(advertised.host, advertised.port + index)] : []),
      ...(storeRoot !== "" ? ["-sd", workerStoreDir(storeRoot, index)] : []),
      "--pid=",
      "--ports_file_dir=",
      ...(options.serverName ? ["-n", `${options.serverName}-${index}`] : []),
    ];
  }

  const slots: Slot[] = routePorts.map((routePort, index) => ({
    index, routePort, proc: null, startedAt: 0, failures: 0, ready: false, restartTimer: null,
  }));
  let stopping = false;
  let starting = true;
  let portsFile = "";
  let readyCount = 0;
  let resolveStarted: () => void = () => {};
  const started = new Promise<void>((resolve) => (resolveStarted = resolve));

  let finishing = false;
  /** Exits once the last log line is out (stderr may be a pipe the reader has not drained yet). */
  function finish(code: number): void {
    if (finishing) return;
    finishing = true;
    releaseStore();
    if (portsFile) {
      try {
        unlinkSync(portsFile);
      } catch {
        // already gone
      }
    }
    setTimeout(() => process.exit(code), 50);
  }

  function spawn(slot: Slot): void {
    slot.ready = false;
    slot.startedAt = Date.now();
    const proc = Bun.spawn([...command, ...workerArgs(slot.index)], {
      env: { ...process.env, [WORKER_ENV]: String(slot.index) },
      stdio: ["ignore", "inherit", "inherit"],
      ipc(message: WorkerMessage) {
        if (message.kind !== "ready" || slot.proc !== proc) return;
        slot.ready = true;
        log.debug(`Worker ${slot.index} (pid ${proc.pid}, server id ${message.serverId}) is ready`);
        if (starting && ++readyCount === n) resolveStarted();
      },
    });
    slot.proc = proc;
    void proc.exited.then(() => exited(slot, proc));
  }

  function exited(slot: Slot, proc: Subprocess): void {
    if (slot.proc !== proc) return;
    slot.proc = null;
    const how = proc.signalCode !== null ? `signal ${proc.signalCode}` : `exit code ${proc.exitCode}`;
    if (stopping) {
      log.debug(`Worker ${slot.index} (pid ${proc.pid}) exited (${how})`);
      if (slots.every((s) => s.proc === null) && !finishing) {
        log.info("All workers stopped");
        finish(0);
      }
      return;
    }
    if (starting && !slot.ready) {
      // It said why on stderr (one line, e.g. a port in use): the whole start fails.
      stopping = true;
      for (const s of slots) s.proc?.kill("SIGKILL");
      finish(1);
      return;
    }
    slot.failures = Date.now() - slot.startedAt < HEALTHY_RUN_MS ? slot.failures + 1 : 1;
    const delay = Math.min(RESTART_MAX_MS, RESTART_MIN_MS * 2 ** (slot.failures - 1));
    log.error(`Worker ${slot.index} (pid ${proc.pid}) exited (${how}): restarting it in ${delay} ms`);
    slot.restartTimer = setTimeout(() => {
      slot.restartTimer = null;
      if (!stopping) spawn(slot);
    }, delay);
  }

  function forward(signal: NodeJS.Signals, stop: boolean): void {
    if (stop && !stopping) {
      stopping = true;
      for (const s of slots) if (s.restartTimer !== null) clearTimeout(s.restartTimer);
      if (slots.every((s) => s.proc === null)) finish(0);
    }
    for (const s of slots) s.proc?.kill(signal);
  }

  // Workers are never left behind: the supervisor failing or exiting takes them along.
  process.on("exit", () => {
    for (const s of slots) s.proc?.kill("SIGKILL");
    releaseStore();
  });
  process.on("SIGINT", () => forward("SIGINT", true));
  process.on("SIGTERM", () => forward("SIGTERM", true));
  process.on("SIGUSR2", () => forward("SIGUSR2", true));
  process.on("SIGHUP", () => forward("SIGHUP", false));
  process.on("SIGUSR1", () => {
    log.reopen();
    forward("SIGUSR1", false);
  });

  log.info(`Starting ${n} natter worker processes on port ${port} (routes on ${routeHost}:${routePorts.join(",")})`);
  for (const slot of slots) spawn(slot);
  const deadline = setTimeout(() => {
    process.stderr.write(`natter: workers did not start within ${START_DEADLINE_MS / 1000} s\n`);
    stopping = true;
    for (const s of slots) s.proc?.kill("SIGKILL");
    finish(1);
  }, START_DEADLINE_MS);
  await started;
  clearTimeout(deadline);
  starting = false;

  if (options.pidFile) {
    try {
      writeAtomically(options.pidFile, String(process.pid), 0o660);
    } catch (error) {
      log.error(`Failed to write pidfile: ${(error as Error).message}`);
    }
  }
  if (options.portsFileDir) {
    const ports: Record<string, string[]> = { nats: listenerUrls("nats", options.host, port) };
    if (httpPort !== 0) ports.monitoring = listenerUrls("http", httpHost, httpPort);
    if (wsPort !== 0) ports.websocket = listenerUrls("ws", options.wsHost, wsPort);
    const file = path.join(options.portsFileDir, `${executableName()}_${process.pid}.ports`);
    try {
      writeAtomically(file, JSON.stringify(ports), 0o666);
      portsFile = file;
    } catch (error) {
      log.error(`Error writing ports file (${file}): ${(error as Error).message}`);
    }
  }
  log.info(`Supervisor is ready: workers ${slots.map((s) => s.proc?.pid).join(", ")}`);
  // The signal handlers and the workers' exits end this process.
  return new Promise<never>(() => {});
}
