// Overview: who this server is, its counters now (from /varz), and the last 15 minutes as charts (the
// server's ring buffer, src/console/history.ts: a page opened now shows history at once).
import { useEffect, useState } from "preact/hooks";
import { getJson } from "./api.ts";
import { Chart } from "./chart.tsx";
import { bytes, count, rate } from "./format.ts";
import { usePoll, useSeries } from "./live.ts";


interface Overview {
  identity: { server_id: string; server_name: string; version: string; natter_version: string; start: string; uptime: string };
  config: [string, string][];
}

interface Varz {
  uptime: string;
  connections: number;
  total_connections: number;
  subscriptions: number;
  slow_consumers: number;
  in_msgs: number;
  out_msgs: number;
  in_bytes: number;
  out_bytes: number;
  mem: number;
  cpu: number;
}


function Stat({ label, value, id }: { label: string; value: string; id: string }) {
  return (
    <div class="stat">
      <span class="stat-label">{label}</span>
      <span class="stat-value" data-stat={id}>{value}</span>
    </div>
  );
}

export function OverviewPage() {
  const [overview, setOverview] = useState<Overview | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    getJson<Overview>("/console/api/overview").then(setOverview, (e: Error) => setError(e.message));
  }, []);
  const series = useSeries();
  const varz = usePoll(() => getJson<Varz>("/varz"));

  if (error !== null) return <p class="error">{error}</p>;
  if (overview === null || series === null) return <p>Loading…</p>;
  const id = overview.identity;
  const v = varz.data;
  const s = series;
  return (
    <section>
      <h1>Overview</h1>
      <div class="identity">
        {id.server_name !== id.server_id && <span><b>{id.server_name}</b></span>}
        <span class="mono" data-field="server_id">{id.server_id}</span>
        <span>natter {id.natter_version} (nats-server {id.version} compatible)</span>
        <span>up <b data-field="uptime">{v?.uptime ?? id.uptime}</b></span>
      </div>
      {v !== null && (
        <div class="stats">
          <Stat id="connections" label="Connections" value={count(v.connections)} />
          <Stat id="total_connections" label="Total connections" value={count(v.total_connections)} />
          <Stat id="subscriptions" label="Subscriptions" value={count(v.subscriptions)} />
          <Stat id="slow_consumers" label="Slow consumers" value={count(v.slow_consumers)} />
          <Stat id="in_msgs" label="Messages in" value={count(v.in_msgs)} />
          <Stat id="out_msgs" label="Messages out" value={count(v.out_msgs)} />
          <Stat id="in_bytes" label="Bytes in" value={bytes(v.in_bytes)} />
          <Stat id="out_bytes" label="Bytes out" value={bytes(v.out_bytes)} />
          <Stat id="cpu" label="CPU" value={`${v.cpu}%`} />
          <Stat id="mem" label="Memory" value={bytes(v.mem)} />
        </div>
      )}
      <div class="charts">
        <Chart title="Messages per second" t={s.t} format={rate} lines={[
          { label: "in", values: s.in_msgs, color: "#3b82f6" },
          { label: "out", values: s.out_msgs, color: "#10b981" },
        ]} />
        <Chart title="Bytes per second" t={s.t} format={(n) => `${bytes(n)}/s`} lines={[
          { label: "in", values: s.in_bytes, color: "#6366f1" },
          { label: "out", values: s.out_bytes, color: "#14b8a6" },
        ]} />
        <Chart title="Connections and subscriptions" t={s.t} format={count} lines={[
          { label: "connections", values: s.connections, color: "#f59e0b" },
          { label: "subscriptions", values: s.subscriptions, color: "#8b5cf6" },
        ]} />
        <Chart title="Slow consumers (total)" t={s.t} format={count} lines={[
          { label: "slow consumers", values: s.slow_consumers, color: "#ef4444" },
        ]} />
        <Chart title="CPU (% of one core)" t={s.t} format={(n) => `${n.toFixed(0)}%`} lines={[
          { label: "cpu", values: s.cpu, color: "#ec4899" },
        ]} />
        <Chart title="Memory (resident)" t={s.t} format={bytes} lines={[
          { label: "rss", values: s.mem, color: "#0ea5e9" },
        ]} />
      </div>
      <h2>Configuration</h2>
      <table class="config">
        <tbody>
          {overview.config.map(([k, val]) => (
            <tr key={k}><th scope="row">{k}</th><td>{val}</td></tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
