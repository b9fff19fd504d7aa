// A real OTLP receiver as its own process: @elastic/mockotlpserver on a free
// port of 127.0.0.1 (OTLP/HTTP, protobuf and JSON). Prints one JSON line
// {"url": ...} once it listens, then one line {"spans": [...]} per export
// request it decoded, each span flattened with hex ids and plain attribute
// values. Exits when its stdin closes (its parent went away).
import { MockOtlpServer, normalizeTrace } from "@elastic/mockotlpserver";

function value(v) {
  if (v == null) return null;
  if ("stringValue" in v) return v.stringValue;
  if ("boolValue" in v) return v.boolValue;
  if ("intValue" in v) return Number(v.intValue);
  if ("doubleValue" in v) return v.doubleValue;
  if ("arrayValue" in v) return (v.arrayValue.values ?? []).map(value);
  return v;
}

// normalizeTrace() turns attribute lists into plain objects already.
function attrs(list) {
  if (list == null) return {};
  if (!Array.isArray(list)) return list;
  return Object.fromEntries(list.map((a) => [a.key, value(a.value)]));
}

const server = new MockOtlpServer({
  services: ["http"],
  httpHostname: "127.0.0.1",
  httpPort: 0,
  logLevel: "warn",
  onTrace(trace) {
    if (process.env.RECEIVER_RAW) process.stderr.write(JSON.stringify(normalizeTrace(trace)) + "\n");
    const spans = [];
    for (const rs of normalizeTrace(trace).resourceSpans ?? []) {
      const resource = attrs(rs.resource?.attributes);
      for (const ss of rs.scopeSpans ?? []) {
        for (const s of ss.spans ?? []) {
          spans.push({
            resource,
            scope: ss.scope?.name,
            traceId: s.traceId,
            spanId: s.spanId,
            parentSpanId: s.parentSpanId || "",
            name: s.name,
            kind: s.kind,
            start: s.startTimeUnixNano,
            end: s.endTimeUnixNano,
            attributes: attrs(s.attributes),
            events: (s.events ?? []).map((e) => ({ name: e.name, attributes: attrs(e.attributes) })),
            links: (s.links ?? []).map((l) => ({ traceId: l.traceId, spanId: l.spanId })),
            status: s.status ?? {},
          });
        }
      }
    }
    process.stdout.write(JSON.stringify({ spans }) + "\n");
  },
});
await server.start();
process.stdout.write(JSON.stringify({ url: server.httpUrl }) + "\n");
process.stdin.resume();
process.stdin.on("end", async () => {
  await server.close();
  process.exit(0);
});
