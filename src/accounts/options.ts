// The shapes of the `accounts` block (and system_account / no_system_account), as src/accounts/config.ts
// parses them. Meanings follow nats-server's opts.go (parseAccounts, parseAccountLimits,
// parseExportStreamOrService, parseImportStreamOrService, parseJetStreamForAccount).
import type { PermissionOptions, UserOptions } from "../auth/options.ts";

/** The global account: every client lands here when no account is configured for it. */
export const GLOBAL_ACCOUNT = "$G";
/** The system account's default name (nats-server's DEFAULT_SYSTEM_ACCOUNT). */
export const DEFAULT_SYSTEM_ACCOUNT = "$SYS";

/** Per-account limits (`limits { … }` in an account); -1 = unlimited, as nats-server's jwt.NoLimit. */
export interface AccountLimitOptions {
  maxConnections: number;
  maxSubscriptions: number;
  maxPayload: number;
  maxLeafnodes: number;
}

export const NO_ACCOUNT_LIMITS: AccountLimitOptions = Object.freeze({ maxConnections: -1, maxSubscriptions: -1, maxPayload: -1, maxLeafnodes: -1 });

/** `exports: [ { stream: "a.>" } | { service: "help", response_type: stream, accounts: [B] } ]`. */
export interface ExportOptions {
  kind: "stream" | "service";
  subject: string;
  /** Accounts allowed to import it; null/absent = any account. */
  accounts?: string[] | null;
  /** Services: how many responses a request may have (nats-server's response_type). */
  responseType?: "singleton" | "stream" | "chunked";
  /** Services: how long a response may take before its mapping is dropped (response_threshold; default 2 min). */
  responseThresholdMs?: number;
  /** Services: `allow_trace`: a traced request is traced on past the account boundary (else it stops at `si`). */
  allowTrace?: boolean;
}

/**
 * `imports: [ { stream: { account: A, subject: "a.>" }, prefix: "p" | to: "x.>" }
 *           | { service: { account: A, subject: "help" }, to: "help.local" } ]`.
 */
export interface ImportOptions {
  kind: "stream" | "service";
  /** The exporting account. */
  account: string;
  /** The subject in the exporting account. */
  subject: string;
  /** Where it appears in the importing account (stream: `prefix.subject` or `to`; service: `to`); absent = the same subject. */
  to?: string;
  /** Streams: `prefix: p` puts the subject under `p.` (nats-server's addStreamImport with a prefix). */
  prefix?: string;
  /** Streams: `allow_trace`: a traced message is traced on into this account (else it stops at `se`). */
  allowTrace?: boolean;
}

/** An account's `jetstream` setting: enabled (with optional limits; -1 = unlimited) or not. */
export interface AccountJetStreamOptions {
  maxMemory: number;
  maxFile: number;
  maxStreams: number;
  maxConsumers: number;
  /** A consumer's max_ack_pending at most, and its default when lower than nats-server's 1000. */
  maxAckPending: number;
  /** Streams must set max_bytes (10113). */
  maxBytesRequired: boolean;
  /** A memory / file stream's max_bytes at most (10122). */
  memoryMaxStreamBytes: number;
  storeMaxStreamBytes: number;
}

/** An account's JetStream without limits. */
export function unlimitedJetStream(): AccountJetStreamOptions {
  return { maxMemory: -1, maxFile: -1, maxStreams: -1, maxConsumers: -1, maxAckPending: -1, maxBytesRequired: false, memoryMaxStreamBytes: -1, storeMaxStreamBytes: -1 };
}

/** One entry of `mappings { "<source>": "<destination>" | [ { destination, weight } ] }`. */
export interface MappingOptions {
  source: string;
  /** Weights in percent (a plain destination: 100). */
  destinations: { subject: string; weight: number }[];
}

export interface AccountOptions {
  name: string;
  /** The account's public nkey (`A…`), as nats-server's `nkey` in an account: informational without JWTs. */
  nkey?: string;
  users: UserOptions[];
  defaultPermissions?: PermissionOptions | null;
  exports: ExportOptions[];
  imports: ImportOptions[];
  limits: AccountLimitOptions;
  /** null: JetStream is not enabled for this account. */
  jetstream: AccountJetStreamOptions | null;
  /** `mappings` of the account's published subjects (./mappings.ts); absent = none. */
  mappings?: MappingOptions[];
  /** `msg_trace { dest, sampling }`: where a sampled `traceparent` is traced to (src/trace); absent = not traced. */
  msgTrace?: AccountTraceOptions;
}

/** An account's message trace destination for W3C trace context (nats-server's traceDest, traceDestSampling). */
export interface AccountTraceOptions {
  readonly dest: string;
  /** 1..100: the percent of sampled `traceparent` messages published by its clients that are traced. */
  readonly sampling: number;
}
