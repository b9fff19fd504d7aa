// What the server tells the page about itself (GET /ui/config.json, open
// like the assets): the trace viewer's link template, set with
// `errand serve --ui-trace-url`.
import { useEffect, useState } from "preact/hooks";

export interface UiConfig {
  trace_url: string;
  version: string;
}

let loaded: Promise<UiConfig> | null = null;

export function useUiConfig(): UiConfig {
  const [c, setC] = useState<UiConfig>({ trace_url: "", version: "" });
  useEffect(() => {
    loaded ??= fetch("config.json")
      .then((r) => (r.ok ? (r.json() as Promise<UiConfig>) : { trace_url: "", version: "" }))
      .catch(() => ({ trace_url: "", version: "" }));
    void loaded.then(setC);
  }, []);
  return c;
}
