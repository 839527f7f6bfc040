// /jsz: JetStream's monitoring page, in nats-server's shape (server/monitor.go JSInfo), with per-stream
// and per-consumer backlog when asked (?accounts=1&streams=1&consumers=1&config=1): num_pending is each
// consumer's lag, num_ack_pending what it has in flight. Totals are over every account with JetStream;
// `account_details` has one entry per such account (sorted by name), or only `?acc=<name>`'s.
// A file stream that cannot write (a full disk) shows `storage_error` in its stream_detail; /healthz and
// /metrics read the same state through storageStates().
import type { Server } from "../server.ts";
import type { AccountJetStream } from "./account.ts";
import type { JetStream } from "./jetstream.ts";
import { nowMs } from "./store/indexed.ts";
import { rfc3339 } from "./wire.ts";

const running = new WeakMap<Server, JetStream>();

/** Called by JetStream when it starts, so the monitor can find it without the core knowing streams. */
export function registerJetStream(server: Server, js: JetStream): void {
  running.set(server, js);
}

/** Each file stream and whether its store can write now (for /healthz and /metrics). */
export interface StreamStorageState {
  account: string;
  stream: string;
  /** What failed ("write …: ENOSPC: no space left on device"), or null while writes succeed. */
  error: string | null;
}

export function storageStates(server: Server): StreamStorageState[] {
  const js = running.get(server);
  const out: StreamStorageState[] = [];
  if (js === undefined) return out;
  for (const ctx of js.accounts.values()) {
    for (const s of ctx.streams.values()) {
      if (s.store.kind === "file") out.push({ account: ctx.account.name, stream: s.name, error: s.store.writeFailure?.message ?? null });
    }
  }
  return out;
}

/**
 * /healthz's JetStream checks beyond "enabled" (nats-server's healthz): on a cluster node, the meta group
 * and the streams assigned here (src/jetstream/cluster/clustered-api.ts health); null when healthy or alone.
 */
export function clusterHealth(server: Server, serverOnly: boolean): string | null {
  return running.get(server)?.cluster?.health(serverOnly) ?? null;
}

export interface JszOptions {
  accounts: boolean;
  streams: boolean;
  consumers: boolean;
  config: boolean;
  /** `?acc=<name>`: only this account's details (nats-server's JSzOptions.Account). */
  account?: string;
}

export function jsz(server: Server, opts: JszOptions): Record<string, unknown> {
  const js = running.get(server);
  const now = rfc3339(nowMs());
  if (js === undefined) {
    return {
      server_id: server.serverId, now, disabled: true, config: { max_memory: 0, max_storage: 0 },
      memory: 0, storage: 0, reserved_memory: 0, reserved_storage: 0, accounts: 0, ha_assets: 0,
      api: { total: 0, errors: 0 }, streams: 0, consumers: 0, messages: 0, bytes: 0,
    };
  }
  let streams = 0;
  let consumers = 0;
  let messages = 0;
  let bytes = 0;
  let apiTotal = 0;
  let apiErrors = 0;
  for (const ctx of js.accounts.values()) {
    apiTotal += ctx.apiTotal;
    apiErrors += ctx.apiErrors;
    streams += ctx.streams.size;
    for (const s of ctx.streams.values()) {
      consumers += s.consumers.size;
      const st = s.store.state();
      messages += st.messages;
      bytes += st.bytes;
    }
  }
  const info: Record<string, unknown> = {
    server_id: server.serverId,
    now,
    config: jetStreamConfig(js),
    ...jetStreamStats(js, apiTotal, apiErrors),
    streams,
    consumers,
    messages,
    bytes,
  };
  if (js.cluster !== null) info.meta_cluster = js.cluster.metaCluster();
  const wanted = opts.account ? [js.accounts.get(opts.account)].filter((c) => c !== undefined) : null;
  if (wanted !== null || opts.accounts || opts.streams || opts.consumers) {
    const contexts = wanted ?? [...js.accounts.values()].sort((a, b) => (a.account.name < b.account.name ? -1 : 1));
    if (contexts.length > 0) info.account_details = contexts.map((ctx) => accountDetail(ctx, opts));
  }
  return info;
}

/** A stream's `cluster` block (leader, replicas) in a JetStream cluster, as its info has it. */
function streamCluster(ctx: AccountJetStream, s: { config: unknown; created: number; stateJson(): unknown }): Record<string, unknown> {
  const cluster = ctx.service.cluster;
  if (cluster === null) return {};
  const body: Record<string, unknown> = { config: s.config, created: s.created, state: s.stateJson() };
  cluster.decorate(body, ctx.account.name);
  return body.cluster === undefined ? {} : { cluster: body.cluster };
}

/** One account's entry in account_details (nats-server's AccountDetail). */
function accountDetail(ctx: AccountJetStream, opts: JszOptions): Record<string, unknown> {
  const name = ctx.account.name;
  const l = ctx.limits;
  const detail: Record<string, unknown> = {
    name, id: name, memory: ctx.usage("memory"), storage: ctx.usage("file"),
    reserved_memory: Math.max(0, l.maxMemory), reserved_storage: Math.max(0, l.maxFile), accounts: 0, ha_assets: 0,
    api: { total: ctx.apiTotal, errors: ctx.apiErrors },
  };
  if (opts.streams || opts.consumers) {
    detail.stream_detail = [...ctx.streams.values()]
      .sort((a, b) => (a.name < b.name ? -1 : 1))
      .map((s) => ({
        name: s.name,
        created: rfc3339(s.created),
        ...(opts.config ? { config: s.config } : {}),
        state: s.stateJson(),
        ...streamCluster(ctx, s),
        ...(s.store.writeFailure !== null ? { storage_error: s.store.writeFailure.message } : {}),
        ...(opts.consumers && s.consumers.size > 0
          ? { consumer_detail: [...s.consumers.values()].map((c) => {
              const ci = c.info();
              if (!opts.config) delete (ci as { config?: unknown }).config;
              return ci;
            }) }
          : {}),
      }));
  }
  return detail;
}

// ---- the `jetstream` block of /varz (nats-server's JetStreamVarz) -------------------------------------

/** nats-server's JetStreamConfig as /varz and /jsz write it (omitempty fields left out when empty). */
export interface JetStreamConfigJson {
  max_memory: number;
  max_storage: number;
  store_dir?: string;
  /** Nanoseconds (a Go time.Duration); absent with sync_always. */
  sync_interval?: number;
  sync_always?: boolean;
  compress_ok?: boolean;
}

/** nats-server's JetStreamStats. */
export interface JetStreamStatsJson {
  memory: number;
  storage: number;
  reserved_memory: number;
  reserved_storage: number;
  accounts: number;
  ha_assets: number;
  api: { total: number; errors: number };
}

/** `/varz`'s `jetstream`: empty when JetStream is off (tools look here to tell), else its config and stats. */
export interface JetStreamVarz {
  config?: JetStreamConfigJson;
  stats?: JetStreamStatsJson;
}

export function jetStreamVarz(server: Server): JetStreamVarz {
  const js = running.get(server);
  if (js === undefined) return {};
  let apiTotal = 0;
  let apiErrors = 0;
  for (const ctx of js.accounts.values()) {
    apiTotal += ctx.apiTotal;
    apiErrors += ctx.apiErrors;
  }
  return { config: jetStreamConfig(js), stats: jetStreamStats(js, apiTotal, apiErrors) };
}

function jetStreamConfig(js: JetStream): JetStreamConfigJson {
  return {
    max_memory: js.maxMemory,
    max_storage: js.maxFile,
    // nats-server reports the directory it keeps streams in: <store_dir>/jetstream.
    store_dir: js.dir,
    ...(js.options.sync === "always" ? { sync_always: true } : { sync_interval: js.options.syncIntervalMs * 1_000_000 }),
    // nats-server 2.10 sets it: its streams may be compressed (natter's `compression` stream field).
    compress_ok: true,
  };
}

/**
 * nats-server's usageStats: bytes stored, and bytes reserved by the streams' max_bytes (per storage, over
 * every account, as its reserveStreamResources counts them). No clustered assets: ha_assets is 0.
 */
function jetStreamStats(js: JetStream, apiTotal: number, apiErrors: number): JetStreamStatsJson {
  let reservedMemory = 0;
  let reservedStorage = 0;
  for (const ctx of js.accounts.values()) {
    for (const s of ctx.streams.values()) {
      if (s.config.max_bytes <= 0) continue;
      if (s.config.storage === "memory") reservedMemory += s.config.max_bytes;
      else reservedStorage += s.config.max_bytes;
    }
  }
  return {
    memory: js.usage("memory"), storage: js.usage("file"), reserved_memory: reservedMemory, reserved_storage: reservedStorage,
    accounts: js.accounts.size, ha_assets: 0, api: { total: apiTotal, errors: apiErrors },
  };
}

/** How many JetStream nodes the cluster has as this node knows them (the meta group's voters or more); 1 alone. */
export function jetStreamClusterSize(server: Server): number {
  const cluster = running.get(server)?.cluster;
  if (cluster == null) return 1;
  return Math.max(cluster.meta.peers.length, 1 + cluster.transport.peers.size);
}
