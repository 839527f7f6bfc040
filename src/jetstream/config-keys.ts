// The config-file keys of the stream layer, as nats-server reads them (server/opts.go parseJetStream):
//   jetstream: enabled | disabled | true | false
//   jetstream { store_dir, max_memory_store, max_file_store, sync_interval: always | "2s", enabled, disabled }
//   store_dir: "/path"   (top level)
// Called from src/config/apply.ts; errors are ConfigErrors at the key's position.
import type { Options } from "../options.ts";
import { parseGoDuration } from "../config/duration.ts";
import { ConfigError, type ConfEntry, type ConfNode } from "../config/parser.ts";
import { domainNameError } from "./domain.ts";

function fail(e: ConfEntry | ConfNode, reason: string): never {
  throw new ConfigError(reason, e.pos);
}

function str(e: ConfEntry): string {
  if (e.node.kind !== "string") fail(e, `${e.key} must be a string`);
  return e.node.value;
}

function size(e: ConfEntry): number {
  if (e.node.kind !== "integer") fail(e, `${e.key} must be an integer or a size (e.g. 1GB)`);
  if (e.node.value < -1) fail(e, `${e.key} value can not be negative`);
  return e.node.value;
}

function enabledWord(e: ConfEntry, n: ConfNode): boolean {
  if (n.kind === "bool") return n.value;
  if (n.kind === "string") {
    const v = n.value.toLowerCase();
    if (["enabled", "enable", "true", "yes", "on"].includes(v)) return true;
    if (["disabled", "disable", "false", "no", "off"].includes(v)) return false;
  }
  fail(e, `expected 'enabled' or 'disabled' for string value, got ${JSON.stringify(n.kind === "string" ? n.value : n.kind)}`);
}

/**
 * Keys of nats-server 2.10's jetstream block natter does not implement: encryption at rest (key, prev_key, cipher), and clustering's
 * unique_tag and max_outstanding_catchup; extension_hint and request_queue_limit tune nats-server internals.
 */
const UNSUPPORTED_JETSTREAM_KEYS: ReadonlySet<string> = new Set([
  "key", "ek", "encryption_key", "prev_key", "prev_ek", "prev_encryption_key", "cipher", "extension_hint",
  "unique_tag", "max_outstanding_catchup", "request_queue_limit",
]);

/** Applies a top-level key of the stream layer; false when `e` is not one. */
export function applyJetStreamKey(e: ConfEntry, o: Options): boolean {
  switch (e.key.toLowerCase()) {
    case "store_dir":
    case "storedir":
      o.storeDir = str(e);
      return true;
    case "jetstream":
      if (e.node.kind !== "map") {
        o.jetstream = enabledWord(e, e.node);
        return true;
      }
      o.jetstream = true;
      for (const k of e.node.value.values()) {
        switch (k.key.toLowerCase()) {
          case "store_dir":
          case "storedir":
          case "store":
            o.storeDir = str(k);
            break;
          case "max_memory_store":
          case "max_mem_store":
          case "max_mem":
            o.jsMaxMemory = size(k);
            break;
          case "max_file_store":
          case "max_file":
            o.jsMaxFile = size(k);
            break;
          case "sync_interval":
          case "sync": {
            if (k.node.kind !== "string") fail(k, "sync_interval must be \"always\" or a duration string");
            if (k.node.value.toLowerCase() === "always") o.jsSyncIntervalMs = 0;
            else {
              try {
                o.jsSyncIntervalMs = parseGoDuration(k.node.value);
              } catch (error) {
                fail(k, `error parsing sync_interval: ${(error as Error).message}`);
              }
            }
            break;
          }
          case "domain": {
            // nats-server checks it with the other options (validateOptions): the same texts here.
            const domain = str(k);
            const error = domainNameError(domain);
            if (error !== null) fail(k, error);
            o.jsDomain = domain;
            break;
          }
          case "limits":
            parseLimits(k, o);
            break;
          case "enabled":
          case "enable":
            o.jetstream = enabledWord(k, k.node);
            break;
          case "disabled":
          case "disable":
            if (k.node.kind !== "bool") fail(k, `${k.key} must be a boolean`);
            if (k.node.value) o.jetstream = false;
            break;
          default:
            if (UNSUPPORTED_JETSTREAM_KEYS.has(k.key.toLowerCase())) fail(k, `"jetstream.${k.key}" is not supported yet`);
            if (!k.usedAsVariable) fail(k, `unknown field "${k.key}"`);
        }
      }
      return true;
  }
  return false;
}

/** Of `limits {}` (nats-server 2.12's JetStreamLimits) natter has the atomic batches' ones; the others are refused. */
const UNSUPPORTED_LIMITS_KEYS: ReadonlySet<string> = new Set(["max_ack_pending", "max_ha_assets", "max_request_batch", "duplicate_window"]);

function parseLimits(e: ConfEntry, o: Options): void {
  if (e.node.kind !== "map") fail(e, `Expected a map to define JetStreamLimits, got ${e.node.kind}`);
  for (const k of e.node.value.values()) {
    const key = k.key.toLowerCase();
    if (key === "batch") parseBatchLimits(k, o);
    else if (UNSUPPORTED_LIMITS_KEYS.has(key)) fail(k, `"jetstream.limits.${k.key}" is not supported yet`);
    else if (!k.usedAsVariable) fail(k, `unknown field "${k.key}"`);
  }
}

function parseBatchLimits(e: ConfEntry, o: Options): void {
  if (e.node.kind !== "map") fail(e, `Expected a map to define batch limits, got ${e.node.kind}`);
  const limits = o.jsBatchLimits;
  for (const k of e.node.value.values()) {
    switch (k.key.toLowerCase()) {
      case "max_inflight_per_stream":
        limits.maxInflightPerStream = whole(k);
        break;
      case "max_inflight_total":
        limits.maxInflightTotal = whole(k);
        break;
      case "max_msgs":
        limits.maxMsgs = whole(k);
        break;
      case "timeout": {
        if (k.node.kind !== "string") fail(k, "timeout must be a duration string");
        try {
          limits.timeoutMs = parseGoDuration(k.node.value);
        } catch (error) {
          fail(k, `error parsing timeout: ${(error as Error).message}`);
        }
        break;
      }
      default:
        if (!k.usedAsVariable) fail(k, `unknown field "${k.key}"`);
    }
  }
}

function whole(k: ConfEntry): number {
  if (k.node.kind !== "integer" || k.node.value < 0) fail(k, `${k.key} must be a whole number`);
  return k.node.value;
}
