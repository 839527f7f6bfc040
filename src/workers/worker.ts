// The worker's side of `natter --procs N` (the supervisor is src/workers/supervisor.ts): a worker is an
// ordinary natter server started by the supervisor with NATTER_WORKER=<index> in its environment.
import type { Server } from "../server.ts";
import type { Options } from "../options.ts";

/** Set by the supervisor in each worker's environment: the worker's index, 0 … N-1. */
export const WORKER_ENV = "NATTER_WORKER";

/** This process's worker index, or null when it was not started by a supervisor. */
export function workerIndex(): number | null {
  const value = process.env[WORKER_ENV];
  return value === undefined || !/^\d+$/.test(value) ? null : Number(value);
}

/**
 * What this worker runs of the options every worker is given (at start and on each reload): leaf nodes
 * only in worker 0, which holds the workers' one link to each hub and the one leafnodes listener (the
 * supervisor resolved its port): a hub sees one leaf, and the other workers reach it over the routes
 * (Subscriber.sharedHubLink).
 */
export function ownShare(options: Options): Options {
  const index = workerIndex();
  if (index === null || index === 0) return options;
  options.leafnodes = null;
  options.leafnodeRemoteFlags = [];
  options.leafnodesListenFlag = "";
  return options;
}

/** What a worker tells its supervisor over the IPC channel. */
export interface WorkerMessage {
  kind: "ready";
  serverId: string;
  port: number;
}

/**
 * After the listeners opened: tell the supervisor, and stop when it is gone (kill -9 of the supervisor
 * reparents the workers; without this they would keep the port). Polled: Linux has no parent-death
 * signal Bun exposes.
 */
export function workerStarted(server: Server, stop: () => void): void {
  const message: WorkerMessage = { kind: "ready", serverId: server.serverId, port: server.port };
  process.send?.(message);
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    server.log.error(`Supervisor (pid ${parent}) is gone: shutting down`);
    stop();
  }, 500);
  timer.unref();
}
