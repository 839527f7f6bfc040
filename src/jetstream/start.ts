// Turns the stream layer on for a server when its options ask for it (-js / jetstream {}).
import os from "node:os";
import path from "node:path";
import type { Server } from "../server.ts";
import { JetStream } from "./jetstream.ts";
import { DEFAULT_BATCH_LIMITS, type BatchLimits } from "./batch.ts";
import { workerIndex } from "../workers/worker.ts";
import { singleStoreRefusal } from "../workers/store-layout.ts";

/** Starts JetStream when enabled (subscribing before the listeners open); null when off. */
export function startJetStream(server: Server): JetStream | null {
  const o = server.options;
  if (!o.jetstream) return null;
  const storeDir = o.storeDir || path.join(os.tmpdir(), "nats");
  // A worker of --procs N (src/workers/store-layout.ts) gets its own store_dir and an Nth of the limits:
  // they bound what the machine gives natter, and the N workers share the machine.
  const share = workerIndex() !== null ? o.procs : 1;
  if (share === 1) {
    const refusal = singleStoreRefusal(storeDir);
    if (refusal !== null) throw new Error(refusal);
  }
  const maxMemory = o.jsMaxMemory >= 0 ? o.jsMaxMemory : Math.floor(os.totalmem() * 0.75);
  const js = new JetStream(server, {
    storeDir,
    maxMemory: share === 1 ? o.jsMaxMemory : Math.floor(maxMemory / share),
    maxFile: share === 1 || o.jsMaxFile < 0 ? o.jsMaxFile : Math.floor(o.jsMaxFile / share),
    sync: o.jsSyncIntervalMs === 0 ? "always" : "interval",
    syncIntervalMs: o.jsSyncIntervalMs || 1000,
    domain: o.jsDomain,
    batchLimits: batchLimitsOf(o.jsBatchLimits),
  });
  js.start();
  return js;
}

/** The configured batch limits, each 0 (unset) replaced by nats-server's default. */
function batchLimitsOf(c: BatchLimits): BatchLimits {
  const d = DEFAULT_BATCH_LIMITS;
  return {
    maxMsgs: c.maxMsgs > 0 ? c.maxMsgs : d.maxMsgs,
    maxInflightPerStream: c.maxInflightPerStream > 0 ? c.maxInflightPerStream : d.maxInflightPerStream,
    maxInflightTotal: c.maxInflightTotal > 0 ? c.maxInflightTotal : d.maxInflightTotal,
    timeoutMs: c.timeoutMs > 0 ? c.timeoutMs : d.timeoutMs,
  };
}
