// Hash routes (#/tasks?state=dead): the server serves one page for all of
// them, and a reload or a shared link opens the same view.
import { useEffect, useState } from "preact/hooks";

export interface Route {
  path: string[]; // "#/tasks/01M8" → ["tasks", "01M8"]
  params: URLSearchParams;
}

export function parse(hash: string): Route {
  const h = hash.replace(/^#\/?/, "");
  const q = h.indexOf("?");
  const path = (q < 0 ? h : h.slice(0, q)).split("/").filter(Boolean).map(decodeURIComponent);
  return { path, params: new URLSearchParams(q < 0 ? "" : h.slice(q + 1)) };
}

export function href(path: string, params?: Record<string, string | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params ?? {})) if (v) q.set(k, v);
  const s = q.toString();
  return "#/" + path + (s ? "?" + s : "");
}

export function navigate(to: string): void {
  location.hash = to;
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parse(location.hash));
  useEffect(() => {
    const on = () => setRoute(parse(location.hash));
    addEventListener("hashchange", on);
    return () => removeEventListener("hashchange", on);
  }, []);
  return route;
}
