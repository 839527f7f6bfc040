// Latency: /latz's HDR histograms plotted as HdrHistogram's plotter draws them (value against percentile,
// the percentile axis logarithmic in 1/(1-p) so the tail gets room), delivery and each service subject;
// and delivery's p50/p90/p99/p99.9 over the last 15 minutes from the server's ring buffer.
import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import { getJson } from "./api.ts";
import { Chart } from "./chart.tsx";
import { count } from "./format.ts";
import { usePoll, useSeries } from "./live.ts";

interface Summary {
  count: number;
  p50_us: number;
  p90_us: number;
  p99_us: number;
  p999_us: number;
  max_us: number;
  distribution: { percentile: number; value_us: number }[];
}

interface Latz {
  reset_at: string;
  delivery: Summary;
  services: Record<string, Summary>;
  sampling: Record<string, number>;
}

const COLORS = ["#3b82f6", "#10b981", "#f59e0b", "#ef4444", "#8b5cf6", "#14b8a6", "#ec4899", "#64748b"];
const us = (v: number) => (v >= 1000 ? `${(v / 1000).toFixed(v >= 10_000 ? 0 : 1)} ms` : `${Math.round(v)} µs`);
/** HdrHistogram's x: 1/(1-p); 100% itself is off the axis, so it is drawn at 99.999%. */
const toX = (percentile: number) => 1 / (1 - Math.min(percentile, 99.999) / 100);
const pctLabel = (x: number) => `${+(100 * (1 - 1 / x)).toPrecision(6)}%`;

function PercentilePlot({ histograms }: { histograms: [string, Summary][] }) {
  const box = useRef<HTMLDivElement>(null);
  const shape = histograms.map(([n]) => n).join("|");
  const plot = useRef<uPlot | null>(null);
  const xs = histograms[0]?.[1].distribution.map((d) => toX(d.percentile)) ?? [];
  const data = [xs, ...histograms.map(([, h]) => h.distribution.map((d) => Math.max(d.value_us, 1)))] as uPlot.AlignedData;
  useEffect(() => {
    const el = box.current!;
    const axis = { stroke: "#8a8fa3", grid: { stroke: "rgba(128,128,140,0.18)" } };
    plot.current = new uPlot({
      width: Math.max(el.clientWidth, 200),
      height: 260,
      scales: { x: { time: false, distr: 3 }, y: { distr: 3 } },
      series: [{ label: "percentile", value: (_u, v) => (v === null ? "-" : pctLabel(v)) }, ...histograms.map(([name], i) => ({ label: name, stroke: COLORS[i % COLORS.length], width: 1.5, points: { show: true }, value: (_u: uPlot, v: number | null) => (v === null ? "-" : us(v)) }))],
      axes: [
        { ...axis, values: (_u, vals) => vals.map((v) => (v === null ? "" : pctLabel(v))), splits: () => [1, 2, 10, 100, 1000, 10000, 100000] },
        { ...axis, size: 70, values: (_u, vals) => vals.map((v) => (v === null ? "" : us(v))) },
      ],
    }, data, el);
    const resize = new ResizeObserver(() => plot.current?.setSize({ width: Math.max(el.clientWidth, 200), height: 260 }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      plot.current?.destroy();
    };
  }, [shape]);
  useEffect(() => plot.current?.setData(data), [histograms]);
  return (
    <figure class="chart" aria-label="Latency by percentile">
      <figcaption>Latency by percentile (log scales, as HdrHistogram plots it)</figcaption>
      <div ref={box} />
    </figure>
  );
}

export function LatencyPage() {
  const latz = usePoll(() => getJson<Latz>("/latz"));
  const series = useSeries();
  const l = latz.data;
  const all: [string, Summary][] = l ? [["delivery", l.delivery], ...Object.entries(l.services)] : [];
  const histograms = all.filter(([, h]) => h.count > 0);
  return (
    <section>
      <h1>Latency</h1>
      {latz.error && <p class="error">{latz.error}</p>}
      {l && (
        <p class="muted">
          Since {new Date(l.reset_at).toLocaleString()} · delivery: one read in {l.sampling.delivery_every_nth_read} timed · services: one request in {l.sampling.service_every_nth_request}, at most {l.sampling.max_services} subjects
        </p>
      )}
      <div class="table-wrap">
        <table class="data" data-table="latency">
          <thead><tr><th>Histogram</th><th class="num">Samples</th><th class="num">p50</th><th class="num">p90</th><th class="num">p99</th><th class="num">p99.9</th><th class="num">max</th></tr></thead>
          <tbody>
            {all.map(([name, h]) => (
              <tr key={name} data-histogram={name}>
                <td class="mono">{name}</td><td class="num" data-stat="count">{count(h.count)}</td><td class="num" data-stat="p50">{us(h.p50_us)}</td><td class="num">{us(h.p90_us)}</td>
                <td class="num" data-stat="p99">{us(h.p99_us)}</td><td class="num">{us(h.p999_us)}</td><td class="num">{us(h.max_us)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <div class="charts wide">
        {histograms.length > 0 && <PercentilePlot histograms={histograms} />}
        {series && (
          <Chart title="Delivery percentiles over time (since the last reset)" t={series.t} format={us} lines={[
            { label: "p50", values: series.lat_p50, color: "#3b82f6" },
            { label: "p90", values: series.lat_p90, color: "#10b981" },
            { label: "p99", values: series.lat_p99, color: "#f59e0b" },
            { label: "p99.9", values: series.lat_p999, color: "#ef4444" },
          ]} />
        )}
      </div>
    </section>
  );
}
