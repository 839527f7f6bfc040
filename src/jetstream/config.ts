// Stream and consumer configurations in wire casing, with nats-server's defaults and checks
// (server/stream.go checkStreamCfg, server/consumer.go setConsumerConfigDefaults/checkConsumerCfg).
// Durations are nanoseconds, as on the wire.
import { isValidPublishSubject, isValidSubscribeSubject, subjectIsLiteral, subjectMatches } from "../subjects/subject.ts";
import { apiError } from "./errors.ts";
import { checkMirror, checkSources, parseStreamSource, type StreamSourceConfig } from "./source-config.ts";
import { parseRepublish, parseSubjectTransform, type RepublishConfig, type StreamSubjectTransformConfig } from "./republish.ts";
import { goDurationString, parseRfc3339, rfc3339, ZERO_TIME } from "./wire.ts";

export const RetentionPolicy = { Limits: "limits", Interest: "interest", WorkQueue: "workqueue" } as const;
export type RetentionPolicy = (typeof RetentionPolicy)[keyof typeof RetentionPolicy];
export const DeliverPolicy = {
  All: "all", Last: "last", New: "new", ByStartSequence: "by_start_sequence", ByStartTime: "by_start_time",
  LastPerSubject: "last_per_subject",
} as const;
export type DeliverPolicy = (typeof DeliverPolicy)[keyof typeof DeliverPolicy];
export const AckPolicy = { None: "none", All: "all", Explicit: "explicit" } as const;
export type AckPolicy = (typeof AckPolicy)[keyof typeof AckPolicy];

/** A stream's configuration as nats-server 2.10 writes it (field order too). */
export interface StreamConfig {
  name: string;
  description?: string;
  subjects: string[];
  retention: RetentionPolicy;
  max_consumers: number;
  max_msgs: number;
  max_bytes: number;
  /** ns; 0 = no limit */
  max_age: number;
  max_msgs_per_subject: number;
  max_msg_size: number;
  discard: "old" | "new";
  storage: "file" | "memory";
  num_replicas: number;
  no_ack?: boolean;
  /** ns */
  duplicate_window: number;
  /** Which cluster / tagged servers hold it: with one server there is no choice (nats-server ignores it too). */
  placement?: { cluster?: string; tags?: string[] };
  compression: "none" | "s2";
  first_seq?: number;
  allow_direct: boolean;
  mirror_direct: boolean;
  discard_new_per_subject?: boolean;
  sealed: boolean;
  deny_delete: boolean;
  deny_purge: boolean;
  allow_rollup_hdrs: boolean;
  consumer_limits: { inactive_threshold?: number; max_ack_pending?: number };
/** nats-server 2.10's input transform: a captured subject rewritten before it is stored (./republish.ts). */
  subject_transform?: StreamSubjectTransformConfig;
  /** Stored messages published again on a transformed subject (./republish.ts). */
  republish?: RepublishConfig;
  /** The stream this one mirrors (./source.ts): its messages under their own sequences. */
  mirror?: StreamSourceConfig;
  /** The streams this one gathers messages from (./source.ts). */
  sources?: StreamSourceConfig[];
    metadata?: Record<string, string>;
  /** nats-server 2.12: messages with `Nats-Schedule: @at <time>` are published to their target at that time. */
  allow_msg_schedules?: boolean;
  /** nats-server 2.11: messages may carry `Nats-TTL` (ttl.ts). Once on, an update can not turn it off. */
  allow_msg_ttl?: boolean;
  /** ns, ≥ 1 s: when the last message of a subject ages out, a marker with this TTL takes its place. */
  subject_delete_marker_ttl?: number;
  /** nats-server 2.12: atomic batch publish (batch.ts). */
  allow_atomic?: boolean;
}

/** A consumer's configuration as nats-server 2.10 writes it. */
export interface ConsumerConfig {
  durable_name?: string;
  name?: string;
  description?: string;
  deliver_policy: DeliverPolicy;
  opt_start_seq?: number;
  opt_start_time?: string;
  ack_policy: AckPolicy;
  /** ns */
  ack_wait?: number;
  max_deliver?: number;
  /** ns each */
  backoff?: number[];
  filter_subject?: string;
  filter_subjects?: string[];
  replay_policy: "instant" | "original";
  rate_limit_bps?: number;
  sample_freq?: string;
  max_waiting?: number;
  max_ack_pending?: number;
  /** ns */
  idle_heartbeat?: number;
  flow_control?: boolean;
  /** Created for a mirror or source by the copying server (nats-server's Direct): kept and echoed. */
  direct?: boolean;
  headers_only?: boolean;
  max_batch?: number;
  /** ns */
  max_expires?: number;
  max_bytes?: number;
  deliver_subject?: string;
  deliver_group?: string;
  /** ns */
  inactive_threshold?: number;
  num_replicas: number;
  mem_storage?: boolean;
  metadata?: Record<string, string>;
  /** natter: republish a message that exhausts max_deliver or is terminated to this subject (dead letter). */
  dead_letter_subject?: string;
  /** nats-server 2.11: no deliveries until then (RFC 3339, UTC); a past time is kept and means not paused. */
  pause_until?: string;
  /** nats-server 2.11 priority groups (pull consumers; one group, as nats-server allows only one in practice). */
  priority_groups?: string[];
  priority_policy?: PriorityPolicy;
  /** ns: a pin is dropped when its client sent no request for this long (pinned_client; default 2m). */
  priority_timeout?: number;
}

/** `none` is written by leaving the field out, as nats-server does. */
export type PriorityPolicy = "overflow" | "pinned_client";

/** nats-server's default grace for a pinned client to ask again before the pin goes to another. */
export const DEFAULT_PINNED_TTL_NS = 2 * 60 * 1_000_000_000;
export const VALID_GROUP_NAME = /^[a-zA-Z0-9/_=-]{1,16}$/;

const NS = 1_000_000_000;
export const DEFAULT_DUPLICATE_WINDOW_NS = 2 * 60 * NS;
export const DEFAULT_ACK_WAIT_NS = 30 * NS;
export const DEFAULT_MAX_ACK_PENDING = 1000;
export const DEFAULT_MAX_WAITING = 512;
/** Ephemeral consumers go away after this long without interest (nats-server's default). */
export const DEFAULT_EPHEMERAL_INACTIVE_NS = 5 * NS;
const MAX_NAME_LEN = 255;
const MAX_DESCRIPTION_LEN = 4096;

type Json = Record<string, unknown>;

/** Stream and consumer names: non-empty, no whitespace, `.`, `*` or `>` (nats-server's isValidName). */
export function isValidName(name: unknown): name is string {
  // NUL too: names are directory names in the store, and a path cannot hold one.
  return typeof name === "string" && name !== "" && !/[\s.*>\0]/.test(name);
}

/** Names are directory names: their length counts in UTF-8 bytes, as nats-server's (Go's) does. */
function tooLong(name: string): boolean {
  return Buffer.byteLength(name) > MAX_NAME_LEN;
}

function invalid(text: string): never {
  throw apiError("StreamInvalidConfig", { err: text });
}

/** JSON fields of the wrong type are what Go's decoder refuses: "invalid JSON". */
function typed<T>(raw: Json, key: string, kind: "string" | "number" | "boolean" | "array" | "object"): T | undefined {
  const v = raw[key];
  if (v === undefined || v === null) return undefined;
  const ok = kind === "array" ? Array.isArray(v) : kind === "object" ? typeof v === "object" && !Array.isArray(v) : typeof v === kind;
  if (!ok) throw apiError("InvalidJSON");
  if (kind === "number" && !Number.isInteger(v)) throw apiError("InvalidJSON");
  return v as T;
}

function stringArray(raw: Json, key: string): string[] | undefined {
  const a = typed<unknown[]>(raw, key, "array");
  if (a === undefined) return undefined;
  if (!a.every((s) => typeof s === "string")) throw apiError("InvalidJSON");
  return a as string[];
}

/** Do two subscription subjects have a subject in common? (nats-server's SubjectsCollide) */
export function subjectsCollide(a: string, b: string): boolean {
  if (a === b) return true;
  return tokensCollide(a.split("."), b.split("."));
}

function tokensCollide(ta: string[], tb: string[]): boolean {
  for (let i = 0; ; i++) {
    const x = ta[i];
    const y = tb[i];
    if (x === ">" || y === ">") return x !== undefined && y !== undefined;
    if (x === undefined || y === undefined) return x === y;
    if (x !== y && x !== "*" && y !== "*") return false;
  }
}

/**
 * Overlap checks compare subjects pairwise, on the event loop (nats-server runs them in the request's
 * goroutine): one request with thousands of wildcard subjects stalled every client for seconds to
 * minutes. Distinct literal subjects never overlap, so only pairs with a wildcard subject are compared,
 * and their number is bounded.
 */
export const MAX_OVERLAP_PAIRS = 1_000_000;

/**
 * The first pair of distinct subjects of `list` that overlap, in the order of a nested loop over it
 * (as nats-server reports it), or null. Throws `tooMany` when the pairs to compare pass MAX_OVERLAP_PAIRS.
 */
export function firstOverlap(list: readonly string[], tooMany: (text: string) => never): [string, string] | null {
  const tokens = list.map((x) => x.split("."));
  const wild: number[] = [];
  for (let i = 0; i < list.length; i++) if (tokens[i]!.some((t) => t === "*" || t === ">")) wild.push(i);
  if (wild.length * list.length > MAX_OVERLAP_PAIRS) tooMany(`too many wildcard subjects to check for overlaps (${wild.length} of ${list.length}; at most ${MAX_OVERLAP_PAIRS} pairs)`);
  const isWild = new Set(wild);
  for (let i = 0; i < list.length; i++) {
    const a = list[i]!;
    if (isWild.has(i)) {
      for (let j = 0; j < list.length; j++) if (list[j] !== a && tokensCollide(tokens[i]!, tokens[j]!)) return [a, list[j]!];
    } else {
      for (const j of wild) if (list[j] !== a && tokensCollide(tokens[i]!, tokens[j]!)) return [a, list[j]!];
    }
  }
  return null;
}

/** Is `filter` within what `subject` covers (every subject matching filter matches subject)? */
export function subjectIsSubsetOf(filter: string, subject: string): boolean {
  if (subjectIsLiteral(filter)) return subjectMatches(subject, filter);
  const tf = filter.split(".");
  const ts = subject.split(".");
  for (let i = 0; i < tf.length; i++) {
    const s = ts[i];
    const f = tf[i]!;
    if (s === undefined) return false;
    if (s === ">") return true;
    if (f === ">") return false;
    if (s === "*") continue;
    if (f === "*" || f !== s) return false;
  }
  return tf.length === ts.length;
}

/**
 * Parses and completes a stream configuration (nats-server's checkStreamCfg): defaults filled in,
 * nats-server's errors for what does not fit.
 */
/** `clustered`: num_replicas up to 5 is allowed (a JetStream cluster); alone, more than 1 is 10074. */
export function normalizeStreamConfig(raw: unknown, clustered = false): StreamConfig {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) invalid("stream configuration invalid");
  const r = raw as Json;
  const name = typed<string>(r, "name", "string") ?? "";
  if (!isValidName(name)) invalid("stream name is required and can not contain '.', '*', '>'");
  if (/[/\\]/.test(name)) throw apiError("StreamNameContainsPathSeparators");
  if (tooLong(name)) invalid(`stream name is too long, maximum allowed is ${MAX_NAME_LEN}`);
  const description = typed<string>(r, "description", "string");
  if (description !== undefined && description.length > MAX_DESCRIPTION_LEN) {
    invalid(`stream description is too long, maximum allowed is ${MAX_DESCRIPTION_LEN}`);
  }
  const retention = typed<string>(r, "retention", "string") ?? "limits";
  if (retention !== "limits" && retention !== "interest" && retention !== "workqueue") throw apiError("InvalidJSON");
  const discard = typed<string>(r, "discard", "string") ?? "old";
  if (discard !== "old" && discard !== "new") throw apiError("InvalidJSON");
  const storage = typed<string>(r, "storage", "string") ?? "file";
  if (storage !== "file" && storage !== "memory") throw apiError("InvalidJSON");
  const compression = typed<string>(r, "compression", "string") || "none";
  if (compression !== "none" && compression !== "s2") throw apiError("InvalidJSON");
  const replicas = typed<number>(r, "num_replicas", "number") || 1;
  if (replicas > 5) invalid("maximum replicas is 5");
  if (replicas < 0) throw apiError("ReplicasCountCannotBeNegative");
  if (replicas > 1 && !clustered) throw apiError("StreamReplicasNotSupported");
  const orNoLimit = (v: number | undefined) => (v === undefined || v === 0 ? -1 : v);
  const maxAge = typed<number>(r, "max_age", "number") ?? 0;
  if (maxAge < 0) invalid("max age needs to be >= 100ms"); // nats-server: negative ages are refused the same way
  let duplicates = typed<number>(r, "duplicate_window", "number") ?? 0;
  if (duplicates === 0) duplicates = maxAge !== 0 && maxAge < DEFAULT_DUPLICATE_WINDOW_NS ? maxAge : DEFAULT_DUPLICATE_WINDOW_NS;
  if (maxAge !== 0 && maxAge < 100_000_000) invalid("max age needs to be >= 100ms");
  if (duplicates < 0) invalid("duplicates window can not be negative");
  if (maxAge !== 0 && duplicates > maxAge) invalid("duplicates window can not be larger then max age");
  if (duplicates > 0 && duplicates < 100_000_000) invalid("duplicates window needs to be >= 100ms");
  let denyPurge = typed<boolean>(r, "deny_purge", "boolean") ?? false;
  let allowRollup = typed<boolean>(r, "allow_rollup_hdrs", "boolean") ?? false;
  if (denyPurge && allowRollup) invalid("roll-ups require the purge permission");
  // Markers need TTLs (they expire) and roll-ups (a marker replaces its subject): nats-server 2.12 turns both on.
  let allowMsgTtl = typed<boolean>(r, "allow_msg_ttl", "boolean") ?? false;
  const markerTtl = typed<number>(r, "subject_delete_marker_ttl", "number") ?? 0;
  if (markerTtl > 0) {
    if (markerTtl < 1_000_000_000) invalid("subject delete marker TTL must be at least 1 second");
    allowMsgTtl = true;
    if (!allowRollup) [allowRollup, denyPurge] = [true, false];
  } else if (markerTtl < 0) invalid("subject delete marker TTL must not be negative");
  const maxMsgsPer = orNoLimit(typed<number>(r, "max_msgs_per_subject", "number"));
  const discardNewPer = typed<boolean>(r, "discard_new_per_subject", "boolean") ?? false;
  if (discardNewPer) {
    if (discard !== "new") invalid("discard new per subject requires discard new policy to be set");
    if (maxMsgsPer <= 0) invalid("discard new per subject requires max msgs per subject > 0");
  }
  // Mirrors and sources (./source-config.ts, ./source.ts): checked in nats-server's order.
  // A replicated stream's copy runs on its leader and writes through the group's log (cluster/stream-replica.ts).
  const mirror = r.mirror !== undefined && r.mirror !== null ? parseStreamSource(r.mirror) : undefined;
  const sourcesRaw = typed<unknown[]>(r, "sources", "array") ?? [];
  const sources = sourcesRaw.map(parseStreamSource);
  const explicitSubjects = stringArray(r, "subjects") ?? [];
  if (mirror !== undefined) checkMirror(mirror, explicitSubjects, sources, typed<number>(r, "first_seq", "number") ?? 0);
  checkSources(sources);
  // nats-server 2.12's counters (`Nats-Incr`): no official client here drives them, so natter has none yet.
  if (typed<boolean>(r, "allow_msg_counter", "boolean")) invalid("message counters are not supported by natter");
  if (typed<string>(r, "template_owner", "string")) invalid("stream templates are not supported by natter");
  const placement = typed<Json>(r, "placement", "object");
  let subjects = explicitSubjects;
  // A stream fed by a mirror or sources captures nothing unless it names subjects (nats-server's rule).
  if (subjects.length === 0 && mirror === undefined && sources.length === 0) subjects = [name];
  const seen = new Set<string>();
  for (const s of subjects) {
    if (seen.has(s)) invalid("duplicate subjects detected");
    // nats-server refuses only subsets of the API; natter also refuses wider subjects (`>`) that would capture it.
    if (subjectsCollide(s, "$JS.API.>")) invalid("subjects overlap with jetstream api");
    if (!isValidSubscribeSubject(s)) invalid("invalid subject");
    seen.add(s);
  }
  // nats-server 2.10's republish and input subject transform (./republish.ts).
  const republish = r.republish !== undefined && r.republish !== null ? parseRepublish(r.republish, subjects, subjectsCollide) : undefined;
  const subjectTransform = r.subject_transform !== undefined && r.subject_transform !== null ? parseSubjectTransform(r.subject_transform) : undefined;
  const overlap = firstOverlap(subjects, invalid);
  if (overlap !== null) invalid(`subject ${JSON.stringify(overlap[0])} overlaps with ${JSON.stringify(overlap[1])}`);
  const limits = typed<Json>(r, "consumer_limits", "object") ?? {};
  const firstSeq = typed<number>(r, "first_seq", "number") ?? 0;
  // A uint64 in nats-server; natter's sequences are exact up to 2^53 − 1 (api.ts, sequenceArgument).
  if (firstSeq < 0 || !Number.isSafeInteger(firstSeq)) throw apiError("InvalidJSON");
  const cfg: StreamConfig = {
    name,
    ...(description ? { description } : {}),
    subjects,
    retention,
    max_consumers: orNoLimit(typed<number>(r, "max_consumers", "number")),
    max_msgs: orNoLimit(typed<number>(r, "max_msgs", "number")),
    max_bytes: orNoLimit(typed<number>(r, "max_bytes", "number")),
    max_age: maxAge,
    max_msgs_per_subject: maxMsgsPer,
    max_msg_size: orNoLimit(typed<number>(r, "max_msg_size", "number")),
    discard,
    storage,
    num_replicas: replicas,
    ...(typed<boolean>(r, "no_ack", "boolean") ? { no_ack: true } : {}),
    duplicate_window: duplicates,
    ...(placement && (placement.cluster || (Array.isArray(placement.tags) && placement.tags.length > 0)) ? { placement: placementOf(placement) } : {}),
    ...(mirror !== undefined ? { mirror } : {}),
    ...(sources.length > 0 ? { sources } : {}),
    ...(subjectTransform !== undefined ? { subject_transform: subjectTransform } : {}),
    ...(republish !== undefined ? { republish } : {}),
    compression,
    ...(firstSeq > 0 ? { first_seq: firstSeq } : {}),
    allow_direct: typed<boolean>(r, "allow_direct", "boolean") ?? false,
    // Without a mirror it means nothing (create refuses it, as nats-server does; an update keeps it, as there).
    mirror_direct: typed<boolean>(r, "mirror_direct", "boolean") ?? false,
    ...(discardNewPer ? { discard_new_per_subject: true } : {}),
    sealed: typed<boolean>(r, "sealed", "boolean") ?? false,
    deny_delete: typed<boolean>(r, "deny_delete", "boolean") ?? false,
    deny_purge: denyPurge,
    allow_rollup_hdrs: allowRollup,
    consumer_limits: {
      ...(typeof limits.inactive_threshold === "number" && limits.inactive_threshold > 0 ? { inactive_threshold: limits.inactive_threshold } : {}),
      ...(typeof limits.max_ack_pending === "number" && limits.max_ack_pending > 0 ? { max_ack_pending: limits.max_ack_pending } : {}),
    },
  };
  const metadata = typed<Record<string, string>>(r, "metadata", "object");
  if (metadata && Object.keys(metadata).length > 0) cfg.metadata = metadata;
  if (typed<boolean>(r, "allow_msg_schedules", "boolean")) cfg.allow_msg_schedules = true;
  if (allowMsgTtl) cfg.allow_msg_ttl = true;
  if (markerTtl > 0) cfg.subject_delete_marker_ttl = markerTtl;
  if (typed<boolean>(r, "allow_atomic", "boolean")) cfg.allow_atomic = true;
  return cfg;
}

/** A placement echoed as given (cluster and tags only, as nats-server's struct has). */
function placementOf(p: Json): { cluster?: string; tags?: string[] } {
  const cluster = typed<string>(p, "cluster", "string");
  const tags = stringArray(p, "tags");
  return { ...(cluster ? { cluster } : {}), ...(tags && tags.length > 0 ? { tags } : {}) };
}

/**
 * What an update may not change (nats-server's configUpdateCheck); returns the configuration to apply
 * (sealing a stream also sets what a sealed stream implies, as nats-server does).
 */
export function checkStreamUpdate(old: StreamConfig, next: StreamConfig): StreamConfig {
  if (next.name !== old.name) invalid("stream configuration name must match original");
  if (JSON.stringify(next.mirror) !== JSON.stringify(old.mirror)) throw apiError("MirrorNotUpdatable");
  if (next.max_consumers !== old.max_consumers) invalid("stream configuration update can not change MaxConsumers");
  if (next.storage !== old.storage) invalid("stream configuration update can not change storage type");
  if (next.retention !== old.retention && (old.retention === "workqueue" || next.retention === "workqueue")) {
    invalid("stream configuration update can not change retention policy to/from workqueue");
  }
  if (!next.sealed && old.sealed) invalid("stream configuration update can not unseal a sealed stream");
  if (!next.deny_delete && old.deny_delete) invalid("stream configuration update can not cancel deny message deletes");
  if (!next.deny_purge && old.deny_purge) invalid("stream configuration update can not cancel deny purge");
  if (old.allow_msg_ttl && !next.allow_msg_ttl) invalid("message TTL status can not be disabled");
  if (!next.sealed) return next;
  return { ...next, max_age: 0, discard: "new", deny_delete: true, deny_purge: true, allow_rollup_hdrs: false };
}

function consumerInvalid(text: string): never {
  throw apiError("ConsumerCreate", { err: text });
}

/**
 * Parses and completes a consumer configuration: nats-server's defaults, then its checks against the
 * stream. Throws the ApiError nats-server answers with.
 */
/** `accountMaxAckPending`: the account's max_ack_pending limit (0 or less: none). */
export function normalizeConsumerConfig(raw: unknown, stream: StreamConfig, accountMaxAckPending = 0): ConsumerConfig {
  if (raw === null || raw === undefined || typeof raw !== "object" || Array.isArray(raw)) throw apiError("ConsumerConfigRequired");
  const r = raw as Json;
  const deliverPolicy = (typed<string>(r, "deliver_policy", "string") ?? "all") as DeliverPolicy;
  if (!Object.values(DeliverPolicy).includes(deliverPolicy)) throw apiError("InvalidJSON");
  const ackPolicy = (typed<string>(r, "ack_policy", "string") ?? "none") as AckPolicy;
  if (!Object.values(AckPolicy).includes(ackPolicy)) throw apiError("InvalidJSON");
  const replay = typed<string>(r, "replay_policy", "string") ?? "instant";
  if (replay !== "instant" && replay !== "original") throw apiError("InvalidJSON");
  const c: ConsumerConfig = { deliver_policy: deliverPolicy, ack_policy: ackPolicy, replay_policy: replay, num_replicas: 0 };
  const str = (k: keyof ConsumerConfig & string) => {
    const v = typed<string>(r, k, "string");
    if (v) (c as unknown as Json)[k] = v;
  };
  const num = (k: keyof ConsumerConfig & string) => {
    const v = typed<number>(r, k, "number");
    if (v) (c as unknown as Json)[k] = v;
  };
  const bool = (k: keyof ConsumerConfig & string) => {
    if (typed<boolean>(r, k, "boolean")) (c as unknown as Json)[k] = true;
  };
  str("durable_name"); str("name"); str("description"); num("opt_start_seq"); str("opt_start_time");
  num("ack_wait"); num("max_deliver"); str("filter_subject"); num("rate_limit_bps"); str("sample_freq");
  num("max_waiting"); num("max_ack_pending"); num("idle_heartbeat"); bool("flow_control"); bool("headers_only");
  num("max_batch"); num("max_expires"); num("max_bytes"); str("deliver_subject"); str("deliver_group");
  num("inactive_threshold"); bool("mem_storage"); str("dead_letter_subject");
  // The consumers a copying server creates for a mirror or a source (nats-server's internal ones): an
  // ephemeral push consumer like any other here, marked so (./source.ts creates them, as nats-server does).
  bool("direct");
  const backoff = typed<unknown[]>(r, "backoff", "array");
  if (backoff && backoff.length > 0) {
    if (!backoff.every((b) => typeof b === "number")) throw apiError("InvalidJSON");
    c.backoff = backoff as number[];
  }
  const filters = stringArray(r, "filter_subjects");
  if (filters && filters.length > 0) c.filter_subjects = filters;
  const replicas = typed<number>(r, "num_replicas", "number") ?? 0;
  if (replicas < 0) throw apiError("ReplicasCountCannotBeNegative");
  c.num_replicas = replicas; // echoed as asked: 0 (the stream's) and 1 are both kept, as nats-server keeps them
  const metadata = typed<Record<string, string>>(r, "metadata", "object");
  if (metadata && Object.keys(metadata).length > 0) c.metadata = metadata;
  const pauseUntil = typed<string>(r, "pause_until", "string");
  if (pauseUntil) {
    const at = parseRfc3339(pauseUntil);
    if (Number.isNaN(at)) throw apiError("InvalidJSON");
    if (pauseUntil !== ZERO_TIME) c.pause_until = timeText(at); // Go's zero time is "not set"
  }
  const policy = typed<string>(r, "priority_policy", "string") ?? "none";
  if (policy === "prioritized") consumerInvalid("priority policy prioritized is not supported by natter");
  if (policy !== "none" && policy !== "overflow" && policy !== "pinned_client") throw apiError("InvalidJSON");
  if (policy !== "none") c.priority_policy = policy;
  const groups = stringArray(r, "priority_groups");
  if (groups && groups.length > 0) c.priority_groups = groups;
  num("priority_timeout");
  if ((c.priority_timeout ?? 0) < 0) delete c.priority_timeout; // nats-server: negative is 0 (unless pedantic)

  // Defaults (setConsumerConfigDefaults).
  const push = c.deliver_subject !== undefined;
  if (!push && c.max_waiting === undefined) c.max_waiting = DEFAULT_MAX_WAITING;
  if (c.ack_wait === undefined && ackPolicy !== "none") c.ack_wait = DEFAULT_ACK_WAIT_NS;
  if (c.max_deliver === undefined) c.max_deliver = -1;
  if (c.backoff) c.ack_wait = c.backoff[0];
  if (ackPolicy !== "none" && c.max_ack_pending === undefined) {
    c.max_ack_pending = stream.consumer_limits.max_ack_pending ?? (accountMaxAckPending > 0 ? Math.min(DEFAULT_MAX_ACK_PENDING, accountMaxAckPending) : DEFAULT_MAX_ACK_PENDING);
  }
  if (c.inactive_threshold === undefined && stream.consumer_limits.inactive_threshold) c.inactive_threshold = stream.consumer_limits.inactive_threshold;
  if (c.priority_policy === "pinned_client" && !c.priority_timeout) c.priority_timeout = DEFAULT_PINNED_TTL_NS;

  // Checks (checkConsumerCfg), in nats-server's order.
  if (c.num_replicas > 0 && c.num_replicas > Math.max(1, stream.num_replicas ?? 1)) throw apiError("ConsumerReplicasExceedsStream");
  if (c.backoff && c.max_deliver! > 0 && c.max_deliver! <= c.backoff.length) throw apiError("ConsumerMaxDeliverBackoff");
  if (c.backoff && c.max_deliver! < 0) throw apiError("ConsumerMaxDeliverBackoff");
  if (c.description && c.description.length > MAX_DESCRIPTION_LEN) throw apiError("ConsumerDescriptionTooLong", { max: MAX_DESCRIPTION_LEN });
  if (c.max_ack_pending !== undefined && c.max_ack_pending > 0 && ackPolicy === "none") throw apiError("ConsumerMaxPendingAckPolicyRequired");
  if (c.idle_heartbeat !== undefined && c.idle_heartbeat > 0 && c.idle_heartbeat < 100_000_000) throw apiError("ConsumerSmallHeartbeat");
  if (push) {
    if (!isValidPublishSubject(c.deliver_subject!)) {
      if (!subjectIsLiteral(c.deliver_subject!)) throw apiError("ConsumerDeliverToWildcards");
      throw apiError("ConsumerInvalidDeliverSubject");
    }
    for (const s of stream.subjects) if (subjectsCollide(s, c.deliver_subject!)) throw apiError("ConsumerDeliverCycle");
    if (c.max_waiting !== undefined && c.max_waiting !== 0) throw apiError("ConsumerPushMaxWaiting");
    if (c.max_batch !== undefined) consumerInvalid("consumer in push mode can not set max batch");
    if (c.max_expires !== undefined) consumerInvalid("consumer in push mode can not set max expires");
    if (c.max_bytes !== undefined) consumerInvalid("consumer in push mode can not set max bytes");
    if (c.flow_control && !c.idle_heartbeat) throw apiError("ConsumerWithFlowControlNeedsHeartbeats");
  } else {
    if (c.rate_limit_bps) throw apiError("ConsumerPullWithRateLimit");
    if (c.max_waiting! < 0) throw apiError("ConsumerMaxWaitingNegative");
    if (c.idle_heartbeat) throw apiError("ConsumerHBRequiresPush");
    if (c.flow_control) throw apiError("ConsumerFCRequiresPush");
    if (c.max_batch !== undefined && c.max_batch < 0) throw apiError("ConsumerMaxRequestBatchNegative");
    if (c.max_expires !== undefined && c.max_expires !== 0 && c.max_expires < 1_000_000) throw apiError("ConsumerMaxRequestExpiresToSmall");
  }
  // The account's max_ack_pending is a ceiling, then the stream's consumer_limits (ceilings as well as defaults).
  if (accountMaxAckPending > 0 && (c.max_ack_pending ?? 0) > accountMaxAckPending) throw apiError("ConsumerMaxPendingAckExcess", { limit: accountMaxAckPending });
  const limits = stream.consumer_limits;
  if (limits.max_ack_pending && (c.max_ack_pending ?? 0) > limits.max_ack_pending) {
    throw apiError("ConsumerMaxPendingAckExcess", { limit: limits.max_ack_pending });
  }
  if (limits.inactive_threshold && (c.inactive_threshold ?? 0) > limits.inactive_threshold) {
    throw apiError("ConsumerInactiveThresholdExcess", { limit: goDurationString(limits.inactive_threshold) });
  }
  // A direct consumer (what a server makes for a mirror or a source) is an ephemeral push consumer.
  if (c.direct && !push) throw apiError("ConsumerDirectRequiresPush");
  if (c.direct && c.durable_name) throw apiError("ConsumerDirectRequiresEphemeral");
  if (c.deliver_group && !push) consumerInvalid("consumer with deliver group requires a deliver subject");
  if (c.filter_subject !== undefined && c.filter_subjects !== undefined) throw apiError("ConsumerDuplicateFilterSubjects");
  const all = c.filter_subjects ?? (c.filter_subject ? [c.filter_subject] : []);
  // A literal filter is within a literal stream subject only when equal: look those up, compare the rest (bounded).
  const streamLiterals = new Set(stream.subjects.filter((x) => subjectIsLiteral(x)));
  const streamWild = stream.subjects.filter((x) => !subjectIsLiteral(x));
  const literalFilters = all.filter((f) => subjectIsLiteral(f)).length;
  if ((all.length - literalFilters) * stream.subjects.length + literalFilters * streamWild.length > MAX_OVERLAP_PAIRS) {
    consumerInvalid(`too many filter subjects to check against the stream's subjects (at most ${MAX_OVERLAP_PAIRS} pairs)`);
  }
  for (const f of all) {
    if (f === "") throw apiError("ConsumerEmptyFilter");
    if (!isValidSubscribeSubject(f)) consumerInvalid("consumer filter subject is not a valid subject");
    const within = subjectIsLiteral(f) ? streamLiterals.has(f) || streamWild.some((s) => subjectIsSubsetOf(f, s)) : stream.subjects.some((s) => subjectIsSubsetOf(f, s));
    if (f !== ">" && !within) throw apiError("ConsumerFilterNotSubset");
  }
  if (firstOverlap(all, consumerInvalid) !== null) throw apiError("ConsumerOverlappingSubjectFilters");
  switch (deliverPolicy) {
    case "by_start_sequence":
      if (!c.opt_start_seq) throw apiError("ConsumerInvalidPolicy", { err: "consumer delivery policy is deliver by start sequence, but optional start sequence is not set" });
      if (c.opt_start_time) throw apiError("ConsumerInvalidPolicy", { err: "consumer delivery policy is deliver by start sequence, but optional start time is also set" });
      break;
    case "by_start_time":
      if (!c.opt_start_time) throw apiError("ConsumerInvalidPolicy", { err: "consumer delivery policy is deliver by start time, but optional start time is not set" });
      if (c.opt_start_seq) throw apiError("ConsumerInvalidPolicy", { err: "consumer delivery policy is deliver by start time, but optional start sequence is also set" });
      break;
    default:
      if (c.opt_start_seq || c.opt_start_time) {
        throw apiError("ConsumerInvalidPolicy", { err: "consumer delivery policy is deliver all, but optional start sequence or time is also set" });
      }
  }
  if (c.sample_freq !== undefined) {
    const error = sampleFrequencyError(c.sample_freq);
    if (error !== null) throw apiError("ConsumerInvalidSampling", { err: error });
  }
  if (stream.retention === "workqueue" && ackPolicy !== "explicit") throw apiError("ConsumerWQRequiresExplicitAck");
  if (c.durable_name !== undefined && !isValidName(c.durable_name)) throw apiError("ConsumerBadDurableName");
  if (c.name !== undefined && !isValidName(c.name)) consumerInvalid("consumer name can not contain '.', '*', '>'");
  for (const n of [c.durable_name, c.name]) if (n && /[/\\]/.test(n)) throw apiError("ConsumerNameContainsPathSeparators");
  for (const n of [c.durable_name, c.name]) if (n && tooLong(n)) throw apiError("ConsumerNameTooLong", { max: MAX_NAME_LEN });
  if (c.durable_name && c.name && c.durable_name !== c.name) throw apiError("ConsumerCreateDurableAndNameMismatch");
  // Priority groups (nats-server 2.12's checks; 2.11 had fewer).
  if (c.priority_policy !== undefined) {
    if (push) throw apiError("ConsumerPushWithPriorityGroup");
    if (!c.priority_groups) throw apiError("ConsumerPriorityPolicyWithoutGroup");
    for (const g of c.priority_groups) {
      if (g === "") throw apiError("ConsumerEmptyGroupName");
      if (!VALID_GROUP_NAME.test(g)) throw apiError("ConsumerInvalidGroupName");
    }
  } else {
    if (c.priority_groups) throw apiError("ConsumerPriorityGroupWithPolicyNone");
    if (c.priority_timeout) throw apiError("ConsumerPinnedTTLWithoutPriorityPolicyNone");
  }
  return orderConsumerConfig(c);
}

/**
 * `sample_freq` is a percentage, `"N"` or `"N%"`: what is wrong with it in nats-server's words (Go's
 * strconv.Atoi error, or `<nil>` for a negative number, as nats-server prints it), or null.
 */
function sampleFrequencyError(text: string): string | null {
  const digits = text.endsWith("%") ? text.slice(0, -1) : text;
  if (!/^[+-]?\d+$/.test(digits)) return `strconv.Atoi: parsing ${JSON.stringify(digits)}: invalid syntax`;
  const n = BigInt(digits);
  if (n > 2n ** 63n - 1n || n < -(2n ** 63n)) return `strconv.Atoi: parsing ${JSON.stringify(digits)}: value out of range`;
  return n < 0n ? "<nil>" : null;
}

/** The sampling percentage of a valid `sample_freq` (0 = none). */
export function samplePercent(c: ConsumerConfig): number {
  if (!c.sample_freq) return 0;
  return Number(c.sample_freq.endsWith("%") ? c.sample_freq.slice(0, -1) : c.sample_freq);
}

/** nats-server's field order (its struct order), so responses read the same. */
const CONSUMER_FIELDS: (keyof ConsumerConfig)[] = [
  "durable_name", "name", "description", "deliver_policy", "opt_start_seq", "opt_start_time", "ack_policy", "ack_wait",
  "max_deliver", "backoff", "filter_subject", "filter_subjects", "replay_policy", "rate_limit_bps", "sample_freq",
  "max_waiting", "max_ack_pending", "idle_heartbeat", "flow_control", "headers_only", "max_batch", "max_expires",
  "max_bytes", "deliver_subject", "deliver_group", "inactive_threshold", "num_replicas", "mem_storage", "direct", "metadata",
  "pause_until", "priority_groups", "priority_policy", "priority_timeout", "dead_letter_subject",
];

export function orderConsumerConfig(c: ConsumerConfig): ConsumerConfig {
  const out: Record<string, unknown> = {};
  for (const k of CONSUMER_FIELDS) if (c[k] !== undefined) out[k] = c[k];
  return out as unknown as ConsumerConfig;
}

/** A time as Go's RFC 3339 text, also at or before the epoch (the clients' `resume` sends 1970-01-01). */
export function timeText(ms: number): string {
  return ms > 0 ? rfc3339(ms) : new Date(ms).toISOString().replace(".000Z", "Z");
}

/** The filters of a consumer, or null for all subjects. */
export function consumerFilters(c: ConsumerConfig): string[] | null {
  if (c.filter_subjects && c.filter_subjects.length > 0) return c.filter_subjects;
  if (c.filter_subject) return [c.filter_subject];
  return null;
}
