// The scale bench's plot: one SVG, no dependencies. Four panels: throughput vs fan-out, latency
// percentiles (soak), and the soak's per-second p99 and RSS over time.
import type { Spread } from "../stats.ts";

interface Series {
  label: string;
  color: string;
  points: { x: number; y: number; lo?: number; hi?: number }[];
}

interface Panel {
  title: string;
  xLabel: string;
  yLabel: string;
  xLog: boolean;
  yLog: boolean;
  xTicks?: { at: number; label: string }[];
  series: Series[];
}

const COLORS = ["#d9480f", "#1c7ed6", "#2b8a3e", "#862e9c"];
const W = 520, H = 330, PAD = { l: 70, r: 20, t: 34, b: 48 };

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function fmt(n: number): string {
  const a = Math.abs(n);
  if (a >= 1e6) return `${+(n / 1e6).toPrecision(3)}M`;
  if (a >= 1e3) return `${+(n / 1e3).toPrecision(3)}k`;
  return `${+n.toPrecision(3)}`;
}

function niceTicks(lo: number, hi: number, log: boolean): number[] {
  if (log) {
    const out: number[] = [];
    for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) out.push(10 ** e);
    return out;
  }
  const span = hi - lo || 1;
  const step = 10 ** Math.floor(Math.log10(span / 5));
  const mult = [1, 2, 5, 10].find((m) => span / (step * m) <= 6) ?? 10;
  const s = step * mult;
  const out: number[] = [];
  for (let v = Math.ceil(lo / s) * s; v <= hi + 1e-9; v += s) out.push(v);
  return out;
}

function panel(p: Panel, ox: number, oy: number): string {
  const pts = p.series.flatMap((s) => s.points);
  if (pts.length === 0) {
    return `<g transform="translate(${ox},${oy})"><text x="${W / 2}" y="${H / 2}" text-anchor="middle" fill="#888">${esc(p.title)}: not measured</text></g>`;
  }
  const xs = pts.map((q) => q.x);
  const ys = pts.flatMap((q) => [q.y, q.lo ?? q.y, q.hi ?? q.y]);
  let [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  if (p.yLog) {
    y0 = 10 ** Math.floor(Math.log10(Math.max(y0, 1e-9)));
    y1 = 10 ** Math.ceil(Math.log10(y1));
  } else {
    y0 = 0;
    y1 = y1 * 1.1 || 1;
  }
  if (x0 === x1) x1 = x0 + 1;
  const iw = W - PAD.l - PAD.r, ih = H - PAD.t - PAD.b;
  const sx = (x: number) => PAD.l + (p.xLog ? (Math.log10(x) - Math.log10(x0)) / (Math.log10(x1) - Math.log10(x0)) : (x - x0) / (x1 - x0)) * iw;
  const sy = (y: number) => PAD.t + ih - (p.yLog ? (Math.log10(Math.max(y, y0)) - Math.log10(y0)) / (Math.log10(y1) - Math.log10(y0)) : (y - y0) / (y1 - y0)) * ih;
  const g: string[] = [];
  g.push(`<rect x="${PAD.l}" y="${PAD.t}" width="${iw}" height="${ih}" fill="#fff" stroke="#ccc"/>`);
  g.push(`<text x="${W / 2}" y="20" text-anchor="middle" font-weight="bold">${esc(p.title)}</text>`);
  for (const t of niceTicks(y0, y1, p.yLog)) {
    if (t < y0 || t > y1) continue;
    g.push(`<line x1="${PAD.l}" x2="${PAD.l + iw}" y1="${sy(t)}" y2="${sy(t)}" stroke="#eee"/>`);
    g.push(`<text x="${PAD.l - 6}" y="${sy(t) + 4}" text-anchor="end">${fmt(t)}</text>`);
  }
  const xt = p.xTicks ?? niceTicks(x0, x1, p.xLog).filter((t) => t >= x0 && t <= x1).map((t) => ({ at: t, label: fmt(t) }));
  for (const t of xt) g.push(`<text x="${sx(t.at)}" y="${PAD.t + ih + 16}" text-anchor="middle">${esc(t.label)}</text>`);
  g.push(`<text x="${PAD.l + iw / 2}" y="${H - 10}" text-anchor="middle" fill="#555">${esc(p.xLabel)}</text>`);
  g.push(`<text transform="translate(16,${PAD.t + ih / 2}) rotate(-90)" text-anchor="middle" fill="#555">${esc(p.yLabel)}</text>`);
  p.series.forEach((s, i) => {
    if (s.points.length === 0) return;
    const d = s.points.map((q, k) => `${k ? "L" : "M"}${sx(q.x).toFixed(1)},${sy(q.y).toFixed(1)}`).join("");
    g.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"/>`);
    for (const q of s.points) {
      if (s.points.length <= 20) g.push(`<circle cx="${sx(q.x)}" cy="${sy(q.y)}" r="3" fill="${s.color}"/>`);
      if (q.lo !== undefined && q.hi !== undefined) g.push(`<line x1="${sx(q.x)}" x2="${sx(q.x)}" y1="${sy(q.lo)}" y2="${sy(q.hi)}" stroke="${s.color}"/>`);
    }
    // Legend in the top right corner, on a white box so lines do not run through it.
    const lx = PAD.l + iw - 110, ly = PAD.t + 8 + i * 16;
    g.push(`<rect x="${lx - 4}" y="${ly - 6}" width="110" height="16" fill="#fff" fill-opacity="0.85"/>`);
    g.push(`<rect x="${lx}" y="${ly}" width="12" height="3" fill="${s.color}"/>`);
    g.push(`<text x="${lx + 18}" y="${ly + 5}">${esc(s.label)}</text>`);
  });
  return `<g transform="translate(${ox},${oy})">${g.join("")}</g>`;
}

type Out = Record<string, unknown>;

export function plotSvg(out: Out, servers: { kind: string; label: string }[]): string {
  const color = (i: number) => COLORS[i % COLORS.length]!;
  const fan = (out.fanout as { subs: number; msgs_per_sec: Record<string, Spread | null> }[] | undefined) ?? [];
  const soak = ((out.soak as { rows: { server: string; p50_us: number; p90_us: number; p99_us: number; p999_us: number; max_us: number; intervals: { t_s: number; rss_kb: number; p99_us: number }[] }[] } | undefined)?.rows) ?? [];
  const soakInfo = out.soak as { rate: number; subs: number; seconds: number } | undefined;
  const fanPanel: Panel = {
    title: "Throughput vs fan-out (128 B, deliveries/s)",
    xLabel: "subscribers (one publisher)",
    yLabel: "msgs/s delivered",
    xLog: true,
    yLog: false,
    xTicks: fan.map((r) => ({ at: r.subs, label: `1:${r.subs}` })),
    series: servers.map((s, i) => ({
      label: s.label,
      color: color(i),
      points: fan.filter((r) => r.msgs_per_sec[s.kind]).map((r) => {
        const m = r.msgs_per_sec[s.kind]!;
        return { x: r.subs, y: m.median, lo: m.min, hi: m.max };
      }),
    })),
  };
  // Percentiles on the usual "number of nines" axis: x = -log10(1 - p).
  const pcts: [string, number, (r: (typeof soak)[number]) => number][] = [
    ["p50", 50, (r) => r.p50_us], ["p90", 90, (r) => r.p90_us], ["p99", 99, (r) => r.p99_us], ["p99.9", 99.9, (r) => r.p999_us], ["max", 99.99, (r) => r.max_us],
  ];
  const nines = (p: number) => -Math.log10(1 - p / 100);
  const latPanel: Panel = {
    title: soakInfo ? `One-way latency, ${fmt(soakInfo.rate)} msgs/s to ${soakInfo.subs} subs, ${soakInfo.seconds} s` : "One-way latency",
    xLabel: "percentile",
    yLabel: "µs (log)",
    xLog: false,
    yLog: true,
    xTicks: pcts.map(([label, p]) => ({ at: nines(p), label })),
    series: servers.map((s, i) => ({
      label: s.label,
      color: color(i),
      points: soak.filter((r) => r.server === s.kind).flatMap((r) => pcts.map(([, p, f]) => ({ x: nines(p), y: Math.max(1, f(r)) }))),
    })),
  };
  const over = (title: string, yLabel: string, f: (i: { rss_kb: number; p99_us: number }) => number, yLog: boolean): Panel => ({
    title,
    xLabel: "seconds into the soak",
    yLabel,
    xLog: false,
    yLog,
    series: servers.map((s, i) => ({
      label: s.label,
      color: color(i),
      points: soak.filter((r) => r.server === s.kind).flatMap((r) => r.intervals.map((iv) => ({ x: iv.t_s, y: Math.max(yLog ? 1 : 0, f(iv)) }))),
    })),
  });
  const panels = [
    panel(fanPanel, 0, 0),
    panel(latPanel, W, 0),
    panel(over("Soak: p99 per second", "µs (log)", (i) => i.p99_us, true), 0, H),
    panel(over("Soak: server RSS", "MiB", (i) => i.rss_kb / 1024, false), W, H),
  ];
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${2 * W}" height="${2 * H}" font-family="sans-serif" font-size="11">` +
    `<rect width="100%" height="100%" fill="#fafafa"/>${panels.join("")}</svg>\n`;
}
