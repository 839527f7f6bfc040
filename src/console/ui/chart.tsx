// A time-series chart: uPlot (≈50 KB, canvas, made for exactly this: many points, live appends, cheap
// redraws) in a Preact component that follows its container's width.
import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

export interface Line {
  label: string;
  values: number[];
  color: string;
}

interface Props {
  title: string;
  /** Unix seconds, one per point. */
  t: number[];
  lines: Line[];
  /** Formats the y axis and the legend's values. */
  format: (v: number) => string;
}

const AXIS = { stroke: "#8a8fa3", grid: { stroke: "rgba(128,128,140,0.18)" }, ticks: { stroke: "rgba(128,128,140,0.3)" } };

/** uPlot's data; a lone point (a chart opened in its first second) gets an empty one a minute before it, or the time axis would span years. */
function aligned(t: number[], lines: Line[]): uPlot.AlignedData {
  if (t.length !== 1) return [t, ...lines.map((l) => l.values)];
  return [[t[0]! - 60, t[0]!], ...lines.map((l) => [null, l.values[0]!])] as uPlot.AlignedData;
}

export function Chart({ title, t, lines, format }: Props) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const shape = lines.map((l) => l.label).join("|");

  useEffect(() => {
    const el = box.current!;
    const fmt = (_u: uPlot, v: number | null) => (v === null ? "-" : format(v));
    plot.current = new uPlot({
      width: Math.max(el.clientWidth, 200),
      height: 170,
      series: [{}, ...lines.map((l) => ({ label: l.label, stroke: l.color, width: 1.5, value: fmt, fill: `${l.color}18` }))],
      axes: [AXIS, { ...AXIS, size: 70, values: (_u: uPlot, vals: number[]) => vals.map((v) => format(v)) }],
      scales: { y: { range: (_u: uPlot, _min: number, max: number) => [0, max > 0 ? max * 1.1 : 1] } },
      cursor: { drag: { x: false, y: false } },
    }, aligned(t, lines), el);
    const resize = new ResizeObserver(() => plot.current?.setSize({ width: Math.max(el.clientWidth, 200), height: 170 }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      plot.current?.destroy();
      plot.current = null;
    };
  }, [shape]);

  useEffect(() => {
    plot.current?.setData(aligned(t, lines));
  }, [t, lines]);

  return (
    <figure class="chart" aria-label={title}>
      <figcaption>{title}</figcaption>
      <div ref={box} />
    </figure>
  );
}
