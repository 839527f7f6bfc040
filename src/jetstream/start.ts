// Turns the stream layer on for a server when its options ask for it (-js / jetstream {}).
import os from "node:os";
import path from "node:path";
import type { Server } from "../server.ts";
import { JetStream } from "./jetstream.ts";

/** Starts JetStream when enabled (subscribing before the listeners open); null when off. */
export function startJetStream(server: Server): JetStream | null {
  const o = server.options;
  if (!o.jetstream) return null;
  const js = new JetStream(server, {
    storeDir: o.storeDir || path.join(os.tmpdir(), "nats"),
    maxMemory: o.jsMaxMemory,
    maxFile: o.jsMaxFile,
    sync: o.jsSyncIntervalMs === 0 ? "always" : "interval",
    syncIntervalMs: o.jsSyncIntervalMs || 1000,
    domain: o.jsDomain,
  });
  js.start();
  return js;
}
