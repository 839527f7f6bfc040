// The config file's `console` block (see src/console/options.ts for its shape):
//   console: true | false            (or enabled/disabled)
//   console { enabled, users: [ { user, password, role: admin | readonly } ], alerts { … } }
// Called from src/config/apply.ts; errors are ConfigErrors at the key's position.
import type { Options } from "../options.ts";
import { ConfigError, type ConfEntry, type ConfNode } from "../config/parser.ts";
import { CONSOLE_ROLES, type ConsoleRole, type ConsoleUser } from "./options.ts";
import { ALERT_RULES, PER_STREAM_RULES, type AlertOptions, type AlertRule, type AlertThreshold, type TargetThreshold } from "./alerts.ts";
import { parseGoDuration } from "../config/duration.ts";

function fail(at: { pos: ConfEntry["pos"] }, reason: string): never {
  throw new ConfigError(reason, at.pos);
}

function enabled(at: ConfEntry, n: ConfNode): boolean {
  if (n.kind === "bool") return n.value;
  if (n.kind === "string" && ["enabled", "disabled"].includes(n.value.toLowerCase())) return n.value.toLowerCase() === "enabled";
  fail(at, `console: expected true, false, enabled or disabled`);
}

function user(n: ConfNode): ConsoleUser {
  if (n.kind !== "map") fail(n, "console users: each user is a map { user, password, role }");
  const u: Partial<ConsoleUser> = {};
  for (const e of n.value.values()) {
    const key = e.key.toLowerCase();
    if (key === "user" || key === "username" || key === "password" || key === "pass") {
      if (e.node.kind !== "string" && e.node.kind !== "integer") fail(e, `console users: ${e.key} must be a string`);
      const value = e.node.kind === "string" ? e.node.value : e.node.raw;
      if (key.startsWith("user")) u.user = value;
      else u.password = value;
    } else if (key === "role") {
      if (e.node.kind !== "string" || !CONSOLE_ROLES.includes(e.node.value as ConsoleRole)) fail(e, `console users: role must be one of ${CONSOLE_ROLES.join(", ")}`);
      u.role = e.node.value as ConsoleRole;
    } else fail(e, `console users: unknown field "${e.key}"`);
  }
  if (!u.user) fail(n, "console users: a user needs a name (user)");
  if (!u.password) fail(n, `console users: user ${JSON.stringify(u.user)} needs a password`);
  return { user: u.user, password: u.password, role: u.role ?? "readonly" };
}

function duration(e: ConfEntry, n: ConfNode): number {
  if (n.kind === "integer") return n.value * 1000; // seconds, as nats-server reads a bare number
  if (n.kind !== "string") fail(e, `console alerts: ${e.key} needs a duration such as "30s"`);
  try {
    return parseGoDuration(n.value);
  } catch {
    fail(e, `console alerts: ${e.key}: ${JSON.stringify(n.value)} is not a duration (e.g. "30s", "5ms")`);
  }
}

/** A threshold's value: a number, or for p99_latency a duration (kept in µs, as /latz has it). */
function thresholdValue(rule: AlertRule, e: ConfEntry, n: ConfNode): number {
  if (rule === "p99_latency") return duration(e, n) * 1000;
  if (n.kind !== "integer" && n.kind !== "float") fail(e, `console alerts: ${rule} needs a number`);
  return n.value;
}

/**
 * `streams { NAME: value | { above, for } | false }` (and `consumers`): thresholds for some targets; a bare
 * value keeps the rule's `for`, false turns the rule off there (null).
 */
function targetThresholds(rule: AlertRule, e: ConfEntry, forMs: () => number): Record<string, TargetThreshold | null> {
  if (e.node.kind !== "map") fail(e, `console alerts: ${rule} ${e.key} must be a map of name: threshold`);
  const out: Record<string, TargetThreshold | null> = {};
  for (const k of e.node.value.values()) {
    const slashes = k.key.split("/").length - 1;
    const most = e.key.toLowerCase() === "streams" ? 1 : 2;
    if (slashes < most - 1 || slashes > most || k.key.split("/").some((x) => x === "")) {
      fail(k, `console alerts: ${rule} ${e.key}: "${k.key}" is not ${most === 1 ? "STREAM or ACCOUNT/STREAM" : "STREAM/CONSUMER or ACCOUNT/STREAM/CONSUMER"}`);
    }
    if (k.node.kind === "bool") {
      if (k.node.value) fail(k, `console alerts: ${rule} ${e.key}: "${k.key}" needs a threshold (or false for none)`);
      out[k.key] = null;
    } else if (k.node.kind === "map") {
      const t: TargetThreshold = { above: 0, forMs: forMs() };
      for (const f of k.node.value.values()) {
        const key = f.key.toLowerCase();
        if (key === "above" || key === "threshold") t.above = thresholdValue(rule, f, f.node);
        else if (key === "for") t.forMs = duration(f, f.node);
        else fail(f, `console alerts: unknown field "${f.key}" in ${rule} ${e.key} "${k.key}" (above, for)`);
      }
      out[k.key] = t;
    } else {
      out[k.key] = { above: thresholdValue(rule, k, k.node), forMs: forMs() };
    }
  }
  return out;
}

/** `alerts { rule: value | { above: value, for: duration, streams {…}, consumers {…} } | true }` */
function alerts(e: ConfEntry): AlertOptions {
  if (e.node.kind !== "map") fail(e, "console alerts must be a map");
  const out: AlertOptions = {};
  for (const k of e.node.value.values()) {
    const rule = k.key.toLowerCase() as AlertRule;
    if (!ALERT_RULES.includes(rule)) fail(k, `console alerts: unknown rule "${k.key}" (one of ${ALERT_RULES.join(", ")})`);
    const t: AlertThreshold = { above: 0, forMs: 0 };
    if (k.node.kind === "map") {
      let aboveGiven = false;
      const targets: ConfEntry[] = [];
      for (const f of k.node.value.values()) {
        const key = f.key.toLowerCase();
        if (key === "above" || key === "threshold") {
          t.above = thresholdValue(rule, f, f.node);
          aboveGiven = true;
        } else if (key === "for") t.forMs = duration(f, f.node);
        else if ((key === "streams" && PER_STREAM_RULES.includes(rule)) || (key === "consumers" && rule === "consumer_lag")) targets.push(f);
        else if (key === "streams" || key === "consumers") fail(f, `console alerts: ${rule} has no per-${key.slice(0, -1)} thresholds (${key === "streams" ? PER_STREAM_RULES.join(" and ") : "consumer_lag"} have)`);
        else fail(f, `console alerts: unknown field "${f.key}" in ${rule} (above, for${PER_STREAM_RULES.includes(rule) ? ", streams" : ""}${rule === "consumer_lag" ? ", consumers" : ""})`);
      }
      // Parsed after the rule's own `for` (whatever the order in the file): a bare value inherits it.
      for (const f of targets) t[f.key.toLowerCase() as "streams" | "consumers"] = targetThresholds(rule, f, () => t.forMs);
      // With per-target thresholds and no `above`, the rule applies only to those targets.
      if (!aboveGiven && targets.length > 0) t.above = null;
    } else if (k.node.kind === "bool") {
      if (!k.node.value) continue;
    } else {
      t.above = thresholdValue(rule, k, k.node);
    }
    out[rule] = t;
  }
  return out;
}

/** Applies the top-level `console` key; false when `e` is another key. */
export function applyConsoleKey(e: ConfEntry, o: Options): boolean {
  if (e.key.toLowerCase() !== "console") return false;
  if (e.node.kind !== "map") {
    o.console = { ...o.console, enabled: enabled(e, e.node) };
    return true;
  }
  const c = { enabled: true, users: [] as ConsoleUser[], alerts: {} as AlertOptions };
  for (const k of e.node.value.values()) {
    switch (k.key.toLowerCase()) {
      case "enabled":
        c.enabled = enabled(k, k.node);
        break;
      case "users":
        if (k.node.kind !== "array") fail(k, "console users must be an array");
        c.users = k.node.value.map(user);
        break;
      case "alerts":
        c.alerts = alerts(k);
        break;
      default:
        fail(k, `unknown field "console.${k.key}"`);
    }
  }
  o.console = c;
  return true;
}
