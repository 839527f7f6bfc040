// Alerts: the banner every page shows while an alert fires, and the Alerts page (the rules as configured,
// what fires now, and the history of firing and resolving).
import { getJson } from "./api.ts";
import { usePoll } from "./live.ts";

interface Alert {
  rule: string;
  target: string;
  value: number;
  threshold: number;
  since: number;
  firedAt: number | null;
}

interface Threshold {
  above: number;
  forMs: number;
}

interface Rule {
  /** null: only for the streams and consumers listed. */
  above: number | null;
  forMs: number;
  streams?: Record<string, Threshold | null>;
  consumers?: Record<string, Threshold | null>;
}

interface AlertsState {
  rules: Record<string, Rule>;
  active: Alert[];
  history: { rule: string; target: string; state: string; value: number; threshold: number; time: string }[];
}

const load = () => getJson<AlertsState>("/console/api/alerts");

function describe(a: { rule: string; target: string; value: number; threshold: number }): string {
  switch (a.rule) {
    case "consumer_lag": return `consumer ${a.target}: ${a.value} pending, above ${a.threshold}`;
    case "stream_full": return `stream ${a.target}: ${a.value}% of its limit, above ${a.threshold}%`;
    case "slow_consumers": return `${a.value} slow consumers in the last minute (threshold ${a.threshold})`;
    case "p99_latency": return `delivery p99 ${a.value} µs, above ${a.threshold} µs`;
    case "leaf_down": return `${a.value} leaf remote${a.value === 1 ? "" : "s"} not connected`;
    default: return `${a.rule} ${a.target}: ${a.value}`;
  }
}

/** "consumer_lag above 1000 for 30s (ORDERS above 5000, APP/SCRATCH off)": a rule and its per-target thresholds. */
function describeRule(rule: string, t: Rule): string {
  const unit = rule === "p99_latency" ? " µs" : rule === "stream_full" ? "%" : "";
  const threshold = (x: Threshold, forMs: number | null) => `above ${x.above}${unit}${x.forMs && x.forMs !== forMs ? ` for ${x.forMs / 1000}s` : ""}`;
  const own = rule === "leaf_down" ? (t.forMs ? ` for ${t.forMs / 1000}s` : "") : t.above === null ? " only" : ` ${threshold({ above: t.above, forMs: t.forMs }, null)}`;
  const targets = [...Object.entries(t.streams ?? {}), ...Object.entries(t.consumers ?? {})]
    .map(([name, x]) => `${name} ${x === null ? "off" : threshold(x, t.above === null ? null : t.forMs)}`);
  return `${rule}${own}${targets.length > 0 ? ` (${targets.join(", ")})` : ""}`;
}

/** Shown on every page while something fires. */
export function AlertBanner() {
  const alerts = usePoll(load);
  const active = alerts.data?.active ?? [];
  if (active.length === 0) return null;
  return (
    <div class="alert-banner" role="alert" data-alerts={active.length}>
      <a href="#/alerts"><b>{active.length} alert{active.length === 1 ? "" : "s"} firing</b></a>: {active.map((a) => `${a.rule} (${a.target})`).join(", ")}
    </div>
  );
}

export function AlertsPage() {
  const alerts = usePoll(load);
  const a = alerts.data;
  const rules = Object.entries(a?.rules ?? {});
  return (
    <section>
      <h1>Alerts</h1>
      {alerts.error && <p class="error">{alerts.error}</p>}
      {a && rules.length === 0 && <p class="muted">No alert rules (<code>console {"{ alerts { consumer_lag: { above: 1000, for: \"30s\" } } }"}</code>).</p>}
      {rules.length > 0 && (
        <p class="muted" data-field="rules">Rules: {rules.map(([r, t]) => describeRule(r, t)).join(" · ")}</p>
      )}
      <h2>Firing</h2>
      <div class="table-wrap">
        <table class="data" data-table="active-alerts">
          <thead><tr><th>Rule</th><th>Target</th><th>What</th><th>Since</th></tr></thead>
          <tbody>
            {(a?.active ?? []).map((x) => (
              <tr key={`${x.rule}/${x.target}`} data-rule={x.rule}><td>{x.rule}</td><td class="mono">{x.target}</td><td>{describe(x)}</td><td>{new Date(x.since).toLocaleTimeString()}</td></tr>
            ))}
          </tbody>
        </table>
      </div>
      <h2>History</h2>
      <div class="table-wrap">
        <table class="data" data-table="alert-history">
          <thead><tr><th>Time</th><th>State</th><th>Rule</th><th>Target</th><th>What</th></tr></thead>
          <tbody>
            {(a?.history ?? []).map((x, i) => (
              <tr key={i} data-rule={x.rule} data-state={x.state}><td>{new Date(x.time).toLocaleTimeString()}</td><td class={x.state === "firing" ? "denied" : "allowed"}><b>{x.state}</b></td><td>{x.rule}</td><td class="mono">{x.target}</td><td>{describe(x)}</td></tr>
            ))}
          </tbody>
        </table>
      </div>
      <p class="muted">Also in <code>/metrics</code> (<code>natter_alert_active</code>) and published in the system account on <code>$SYS.SERVER.&lt;id&gt;.ALERT.&lt;rule&gt;</code>.</p>
    </section>
  );
}
