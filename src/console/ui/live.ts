// Live data: each page asks for what it shows once a second (polling; see README "Console" for why not
// server-sent events), and stops when it is left. A failed poll is shown, and the next one retried.
import { useEffect, useState } from "preact/hooks";

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
