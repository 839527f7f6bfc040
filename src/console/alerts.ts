// Alerts: thresholds from the console block, checked once a second (the console's timer, off the hot
// path), each rule per target (a consumer, a stream, the server). A condition that holds for the rule's
// `for` duration fires; one that stops holding resolves. Active alerts are shown on every console page,
// exported in /metrics as natter_alert_active gauges, and every firing and resolving is published in the
// system account as an advisory on $SYS.SERVER.<server id>.ALERT.<rule> (JSON, ALERT_ADVISORY_TYPE), so
// other systems can act on them.
//
//   console { alerts {
//     consumer_lag:   { above: 1000, for: "30s" }   # a consumer's num_pending
//     slow_consumers: 1                            # slow consumers in the last minute
//     p99_latency:    { above: "5ms", for: "10s" } # /latz delivery p99
//     leaf_down:      { for: "10s" }               # a configured leaf remote not connected (true = for 0s)
//     stream_full:    90                           # percent of a stream's max_msgs or max_bytes
//   } }
//
// consumer_lag and stream_full may set thresholds for some streams and consumers, which win over the
// rule's own (the most specific one applies; `false` turns the rule off there; without `above` the rule
// applies only where a stream or consumer threshold is set):
//     consumer_lag: { above: 1000, for: "30s", streams: { ORDERS: 5000, "APP/SCRATCH": false },
//                     consumers: { "ORDERS/billing": { above: 10, for: "5s" } } }
// A stream is "STREAM" (in any account) or "ACCOUNT/STREAM"; a consumer "STREAM/CONSUMER" or
// "ACCOUNT/STREAM/CONSUMER".
import type { Server } from "../server.ts";
import { InternalClient } from "../internal-client.ts";
import { jsz } from "../jetstream/jsz.ts";
import { leafz } from "../monitor/leafz.ts";

export const ALERT_RULES = ["consumer_lag", "slow_consumers", "p99_latency", "leaf_down", "stream_full"] as const;
export type AlertRule = (typeof ALERT_RULES)[number];
export const ALERT_ADVISORY_TYPE = "io.natter.console.alert";

export interface TargetThreshold {
  /** The value past which the rule holds (messages, count, µs, percent; unused for leaf_down). */
  above: number;
  /** How long it must hold before it fires, ms. */
  forMs: number;
}

export interface AlertThreshold {
  /** The rule's threshold everywhere; null: only where `streams` or `consumers` set one. */
  above: number | null;
  forMs: number;
  /** consumer_lag, stream_full: per stream ("STREAM" or "ACCOUNT/STREAM"); null turns the rule off there. */
  streams?: Record<string, TargetThreshold | null>;
  /** consumer_lag: per consumer ("STREAM/CONSUMER" or "ACCOUNT/STREAM/CONSUMER"); null turns it off there. */
  consumers?: Record<string, TargetThreshold | null>;
}

/** The rules that take per-stream (and, consumer_lag, per-consumer) thresholds. */
export const PER_STREAM_RULES: readonly AlertRule[] = ["consumer_lag", "stream_full"];

/**
 * The threshold for one stream (or one of its consumers): the most specific of ACCOUNT/STREAM/CONSUMER,
 * STREAM/CONSUMER, ACCOUNT/STREAM, STREAM, then the rule's own; null when the rule is off there.
 */
export function thresholdFor(t: AlertThreshold, account: string, stream: string, consumer?: string): TargetThreshold | null {
  const keys: [Record<string, TargetThreshold | null> | undefined, string][] = [];
  if (consumer !== undefined) keys.push([t.consumers, `${account}/${stream}/${consumer}`], [t.consumers, `${stream}/${consumer}`]);
  keys.push([t.streams, `${account}/${stream}`], [t.streams, stream]);
  for (const [table, key] of keys) {
    if (table !== undefined && Object.hasOwn(table, key)) return table[key]!;
  }
  return t.above === null ? null : { above: t.above, forMs: t.forMs };
}

export type AlertOptions = Partial<Record<AlertRule, AlertThreshold>>;

export interface Alert {
  rule: AlertRule;
  /** What it is about: "ACCOUNT/STREAM/CONSUMER", "ACCOUNT/STREAM", "server", "leafnodes". */
  target: string;
  value: number;
  threshold: number;
  /** How long it must hold before it fires (the target's own or the rule's), ms. */
  forMs: number;
  /** When the condition started holding (ms). */
  since: number;
  /** When it fired (ms); null while it waits for `for`. */
  firedAt: number | null;
}

export interface AlertEvent {
  rule: AlertRule;
  target: string;
  state: "firing" | "resolved";
  value: number;
  threshold: number;
  time: string;
}

type Condition = [rule: AlertRule, target: string, value: number, threshold: number, forMs: number];

const HISTORY = 200;
/** How far back slow_consumers looks. */
const SLOW_WINDOW_MS = 60_000;

export class Alerts {
  private readonly holding = new Map<string, Alert>();
  private readonly events: AlertEvent[] = [];
  private readonly slowSeen: { at: number; total: number }[] = [];
  private publisher: InternalClient | null = null;

  constructor(private readonly server: Server, readonly rules: AlertOptions) {
    const system = server.accounts.system;
    if (system !== null) this.publisher = new InternalClient(server, "console-alerts", system);
  }

  /** Every rule's current conditions: [rule, target, value, threshold, for (ms)]. */
  private conditions(now: number): Condition[] {
    const r = this.rules;
    const out: Condition[] = [];
    const everywhere = (t: AlertThreshold) => ({ above: t.above ?? 0, forMs: t.forMs });
    if (r.consumer_lag || r.stream_full) {
      const z = jsz(this.server, { accounts: false, streams: true, consumers: true, config: true, account: "" }) as {
        account_details?: { name: string; stream_detail?: { name: string; config?: { max_msgs: number; max_bytes: number }; state: { messages: number; bytes: number }; consumer_detail?: { name: string; num_pending: number }[] }[] }[];
      };
      for (const a of z.account_details ?? []) {
        for (const s of a.stream_detail ?? []) {
          const full = r.stream_full && s.config ? thresholdFor(r.stream_full, a.name, s.name) : null;
          if (full !== null && s.config) {
            const pct = Math.max(s.config.max_msgs > 0 ? (s.state.messages / s.config.max_msgs) * 100 : 0, s.config.max_bytes > 0 ? (s.state.bytes / s.config.max_bytes) * 100 : 0);
            if (pct > full.above) out.push(["stream_full", `${a.name}/${s.name}`, Math.round(pct * 10) / 10, full.above, full.forMs]);
          }
          if (r.consumer_lag) {
            for (const c of s.consumer_detail ?? []) {
              const lag = thresholdFor(r.consumer_lag, a.name, s.name, c.name);
              if (lag !== null && c.num_pending > lag.above) out.push(["consumer_lag", `${a.name}/${s.name}/${c.name}`, c.num_pending, lag.above, lag.forMs]);
            }
          }
        }
      }
    }
    if (r.slow_consumers) {
      const total = this.server.stats.slowConsumers;
      this.slowSeen.push({ at: now, total });
      while (this.slowSeen.length > 1 && this.slowSeen[0]!.at < now - SLOW_WINDOW_MS) this.slowSeen.shift();
      const recent = total - this.slowSeen[0]!.total;
      const t = everywhere(r.slow_consumers);
      if (recent >= t.above) out.push(["slow_consumers", "server", recent, t.above, t.forMs]);
    }
    if (r.p99_latency) {
      const p99 = this.server.latency.deliveryPercentiles().p99;
      const t = everywhere(r.p99_latency);
      if (p99 > t.above) out.push(["p99_latency", "delivery", p99, t.above, t.forMs]);
    }
    if (r.leaf_down) {
      const remotes = this.server.options.leafnodes?.remotes.length ?? 0;
      const up = leafz(this.server).leafs?.filter((l) => l.is_spoke).length ?? 0;
      if (up < remotes) out.push(["leaf_down", "leafnodes", remotes - up, 0, r.leaf_down.forMs]);
    }
    return out;
  }

  /** Once a second: conditions in, transitions out (advisories, history). */
  evaluate(now = Date.now()): void {
    const seen = new Set<string>();
    for (const [rule, target, value, threshold, forMs] of this.conditions(now)) {
      const key = `${rule}\0${target}`;
      seen.add(key);
      let a = this.holding.get(key);
      if (a === undefined) {
        a = { rule, target, value, threshold, forMs, since: now, firedAt: null };
        this.holding.set(key, a);
      }
      a.value = value;
      if (a.firedAt === null && now - a.since >= a.forMs) {
        a.firedAt = now;
        this.record(a, "firing", now);
      }
    }
    for (const [key, a] of this.holding) {
      if (seen.has(key)) continue;
      this.holding.delete(key);
      if (a.firedAt !== null) this.record(a, "resolved", now);
    }
  }

  private record(a: Alert, state: "firing" | "resolved", now: number): void {
    const e: AlertEvent = { rule: a.rule, target: a.target, state, value: a.value, threshold: a.threshold, time: new Date(now).toISOString() };
    this.events.push(e);
    if (this.events.length > HISTORY) this.events.shift();
    this.server.log.warn(`Console alert ${state}: ${a.rule} ${a.target} (${a.value}, threshold ${a.threshold})`);
    this.publisher?.publish(`$SYS.SERVER.${this.server.serverId}.ALERT.${a.rule}`, Buffer.from(JSON.stringify({ type: ALERT_ADVISORY_TYPE, server: { id: this.server.serverId, name: this.server.serverName }, ...e })));
  }

  active(): Alert[] {
    return [...this.holding.values()].filter((a) => a.firedAt !== null);
  }

  history(): AlertEvent[] {
    return [...this.events].reverse();
  }

  /** Prometheus text: one gauge per active alert (and the rules as configured, so a quiet rule shows 0). */
  metrics(): string {
    const esc = (v: string) => v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
    const lines = [
      "# HELP natter_alert_active A console alert that is firing (1), by rule and target.",
      "# TYPE natter_alert_active gauge",
      ...this.active().map((a) => `natter_alert_active{rule="${a.rule}",target="${esc(a.target)}"} 1`),
      "# HELP natter_alert_rule_active Console alerts firing per configured rule.",
      "# TYPE natter_alert_rule_active gauge",
      ...(Object.keys(this.rules) as AlertRule[]).map((rule) => `natter_alert_rule_active{rule="${rule}"} ${this.active().filter((a) => a.rule === rule).length}`),
    ];
    return `${lines.join("\n")}\n`;
  }

  close(): void {
    this.publisher?.close();
  }
}

/** The alerts of each server with a console (for /metrics, which the monitor answers). */
export const serverAlerts = new WeakMap<Server, Alerts>();
