// Live data: each page asks for what it shows once a second (polling; see README "Console" for why not
// server-sent events), and stops when it is left. A failed poll is shown, and the next one retried.
import { useEffect, useState } from "preact/hooks";
import { getJson } from "./api.ts";

export const POLL_MS = 1000;

/** Calls `load` now and every POLL_MS while the component is mounted; returns its latest result or error. */
export function usePoll<T>(load: () => Promise<T>, deps: unknown[] = []): { data: T | null; error: string | null } {
  const [state, setState] = useState<{ data: T | null; error: string | null }>({ data: null, error: null });
  useEffect(() => {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const tick = async () => {
      try {
        const data = await load();
        if (!stopped) setState({ data, error: null });
      } catch (e) {
        if (!stopped) setState((s) => ({ data: s.data, error: (e as Error).message }));
      }
      if (!stopped) timer = setTimeout(tick, POLL_MS);
    };
    void tick();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, deps);
  return state;
}

/** The server's ring buffer (src/console/history.ts): one array per series, `t` in unix seconds. */
export type Series = Record<"t" | "in_msgs" | "out_msgs" | "in_bytes" | "out_bytes" | "connections" | "subscriptions" | "slow_consumers" | "cpu" | "mem" | "lat_p50" | "lat_p90" | "lat_p99" | "lat_p999", number[]>;

/** As many samples as the server keeps (15 minutes). */
const KEEP = 900;

/** The ring buffer: all of it first, then once a second only the samples after the last one seen. */
export function useSeries(): Series | null {
  const [series, setSeries] = useState<Series | null>(null);
  useEffect(() => {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let last = 0;
    const tick = async () => {
      try {
        const more = await getJson<Series>(`/console/api/series?since=${last}`);
        if (!stopped && more.t.length > 0) {
          last = more.t.at(-1)!;
          setSeries((s) => {
            if (s === null) return more;
            const next = {} as Series;
            for (const k of Object.keys(s) as (keyof Series)[]) next[k] = [...s[k], ...more[k]].slice(-KEEP);
            return next;
          });
        }
      } catch {
        // the next poll tries again
      }
      if (!stopped) timer = setTimeout(tick, POLL_MS);
    };
    void tick();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, []);
  return series;
}
