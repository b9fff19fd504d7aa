// One request per view per interval: a view polls what it shows, a call at a
// time (the next starts `every` ms after the last answer, so a slow server is
// never sent a pile of requests), and not while the tab is hidden.
import { useEffect, useRef, useState } from "preact/hooks";

export interface Polled<T> {
  data: T | undefined;
  error: unknown;
  refresh: () => void;
}

export function usePoll<T>(
  load: (signal: AbortSignal) => Promise<T>,
  every: number,
  deps: unknown[],
): Polled<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);
  const kick = useRef<() => void>(() => {});
  useEffect(() => {
    const abort = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    let running = false;
    let again = false; // a refresh asked for while a call was out
    const tick = async () => {
      clearTimeout(timer);
      if (running) {
        again = true;
        return;
      }
      running = true;
      again = false;
      try {
        const d = await load(abort.signal);
        if (!abort.signal.aborted) {
          setData(d);
          setError(undefined);
        }
      } catch (e) {
        if (!abort.signal.aborted) setError(e);
      } finally {
        running = false;
      }
      if (abort.signal.aborted) return;
      // The answer may predate what the refresh was for: ask once more.
      if (again) void tick();
      else timer = setTimeout(tick, document.hidden ? every * 5 : every);
    };
    kick.current = () => void tick();
    const onVisible = () => {
      if (!document.hidden) void tick();
    };
    document.addEventListener("visibilitychange", onVisible);
    void tick();
    return () => {
      abort.abort();
      clearTimeout(timer);
      document.removeEventListener("visibilitychange", onVisible);
    };
  }, deps);
  return { data, error, refresh: () => kick.current() };
}
