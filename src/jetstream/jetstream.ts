// The stream layer as a service of the core (nats-server's jetStream): one JetStream context per account
// that has JetStream (src/jetstream/account.ts), the server's own storage limits over all of them, the
// shared timer sweep, and the `JetStream not enabled for account` answer for accounts without it.
//
// Which accounts have JetStream (src/accounts/accounts.ts): `$G` when no accounts are configured; with
// accounts, those whose config enables it (`jetstream: enabled` or limits). The system account never has it.
//
// Layout on disk: <store_dir>/jetstream/<account>/streams/…, as nats-server's. `$G` was always kept at
// <store_dir>/jetstream/$G/streams, so stores written before accounts existed are read as they are.
import os from "node:os";
import path from "node:path";
import type { Account } from "../accounts/account.ts";
import type { Cluster } from "../cluster/cluster.ts";
import type { JetStreamCluster } from "./cluster/clustered-api.ts";
import { optionalModule } from "../optional-modules.ts";
import { InternalClient } from "../internal-client.ts";
import type { Server } from "../server.ts";
import { AccountJetStream } from "./account.ts";
import type { BatchLimits } from "./batch.ts";
import { JetStreamApi } from "./api.ts";
import { addDomainMappings } from "./domain.ts";
import { apiError, type ApiError } from "./errors.ts";
import { registerJetStream } from "./jsz.ts";
import { nowMs } from "./store/indexed.ts";
import type { SyncPolicy } from "./store/file.ts";

export interface JetStreamOptions {
  /** Directory under which `jetstream/` is kept. */
  storeDir: string;
  /** Bytes all memory streams may hold; -1 = 75% of the machine's memory (nats-server's default). */
  maxMemory: number;
  /** Bytes all file streams may hold; -1 = no limit but the disk. */
  maxFile: number;
  sync: SyncPolicy;
  syncIntervalMs: number;
  /** jetstream { domain } (./domain.ts); "" = none. */
  domain: string;
  /** jetstream { limits { batch {} } }: atomic batches' limits (./batch.ts). */
  batchLimits: BatchLimits;
}

/** How often timers (ack wait, heartbeats, request expiry, push interest, inactivity) are checked. */
const SWEEP_MS = 50;

export class JetStream {
  /** `<store_dir>/jetstream`. */
  readonly dir: string;
  /** The server's limits over every account (max_memory_store, max_file_store). */
  readonly maxMemory: number;
  readonly maxFile: number;
  /** The JetStream context of each account that has JetStream, by account name. */
  readonly accounts = new Map<string, AccountJetStream>();
  /** Internal clients answering 10039 in the accounts without JetStream. */
  private readonly disabled: InternalClient[] = [];
  private sweepTimer: ReturnType<typeof setInterval> | null = null;
  /** In a cluster: the meta group and who answers which request (src/jetstream/cluster); null alone. */
  cluster: JetStreamCluster | null = null;

  constructor(
    readonly server: Server,
    readonly options: JetStreamOptions,
  ) {
    this.dir = path.join(options.storeDir, "jetstream");
    this.maxMemory = options.maxMemory >= 0 ? options.maxMemory : Math.floor(os.totalmem() * 0.75);
    this.maxFile = options.maxFile;
    registerJetStream(server, this);
  }

  /**
   * Takes the API's and the stored streams' subjects in every account now, and restores the streams from
   * the next turn of the event loop (recover()): the server accepts clients meanwhile; JetStream requests
   * wait until every stream is back. (nats-server recovers before it accepts clients, from its index files.)
   */
  start(): void {
    this.began = performance.now();
    for (const account of this.server.accounts.all()) {
      if (account.jetstream !== null && !account.isSystem && !isDirectoryName(account.name)) {
        this.server.log.error(`JetStream: account ${JSON.stringify(account.name)} cannot have JetStream: its name cannot be a directory`);
        this.answerDisabled(account);
      } else if (account.jetstream !== null && !account.isSystem) {
        if (this.options.domain !== "") addDomainMappings(account, this.options.domain);
        const ctx = new AccountJetStream(this, account);
        this.accounts.set(account.name, ctx);
        ctx.start();
      } else {
        this.answerDisabled(account);
      }
    }
    this.sweepTimer = setInterval(() => this.sweep(), SWEEP_MS);
    this.recovery = new Promise((resolve) => setImmediate(resolve))
      .then(() => this.recover())
      .catch((error: Error) => this.server.log.error(`JetStream: restoring the streams failed: ${error.stack ?? error}`));
  }

  /** Shut down: a recovery still running stops at its next stream. */
  stopped = false;
  /** Resolves once every account's streams are restored (the API answers). */
  recovery: Promise<void> = Promise.resolve();
  private began = 0;

  private async recover(): Promise<void> {
    let restored = 0;
    for (const ctx of this.accounts.values()) {
      if (this.stopped) return;
      restored += await ctx.recover();
    }
    const ms = Math.round(performance.now() - this.began);
    const names = [...this.accounts.keys()].join(", ") || "none";
    const domain = this.options.domain !== "" ? `, domain ${this.options.domain}` : "";
    this.server.log.info(`Starting JetStream: store ${this.options.storeDir}${domain}, accounts ${names}, ${restored} stream(s) restored in ${ms} ms`);
  }

  /**
   * The server is part of a cluster: the JetStream nodes form one JetStream (the meta group). Called once
   * the cluster's listener is up (its member id known), before any route opens.
   */
  joinCluster(cluster: Cluster): void {
    const clustered = new (optionalModule("jetstreamCluster").JetStreamCluster)(this, cluster);
    // Set at once, so that API requests released when the streams are back go through the cluster layer
    // (10008 until the meta group has a leader) and never through a single node's answers; started once
    // the stores are restored, so the meta group adopts the streams on disk and replicas attach to them.
    this.cluster = clustered;
    void this.recovery.then(() => {
      if (!this.stopped) clustered.start();
    });
  }

  /** As nats-server: an account without JetStream still reaches the API, which answers 503 / 10039. */
  private answerDisabled(account: Account): void {
    const client = new InternalClient(this.server, `jetstream ${account.name} (not enabled)`, account);
    new JetStreamApi(client, null).subscribe();
    this.disabled.push(client);
  }

  /** The server's storage limit for one more message of `size` bytes: 10023 insufficient resources. */
  checkResources(storage: "file" | "memory", size: number): ApiError | null {
    const limit = storage === "memory" ? this.maxMemory : this.maxFile;
    if (limit < 0) return null;
    if (this.usage(storage) + size > limit) return apiError("InsufficientResources");
    return null;
  }

  /** Bytes stored over all accounts. */
  usage(storage: "file" | "memory"): number {
    let n = 0;
    for (const ctx of this.accounts.values()) n += ctx.usage(storage);
    return n;
  }

  private sweep(): void {
    const now = nowMs();
    for (const ctx of this.accounts.values()) ctx.sweep(now);
  }

  /** Flushes stores and consumer states and stops answering (graceful shutdown). */
  shutdown(): void {
    this.stopped = true;
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
    this.cluster?.stop();
    for (const ctx of this.accounts.values()) ctx.shutdown();
    for (const client of this.disabled) client.close();
  }
}

/** Stores live in `<store_dir>/jetstream/<account name>/`: the name must be one plain path component. */
function isDirectoryName(name: string): boolean {
  return name !== "" && name !== "." && name !== ".." && !/[/\\\0]/.test(name);
}
