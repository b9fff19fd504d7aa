#pragma once
// Tracing: spans exported over OTLP/HTTP (JSON encoding) to an OpenTelemetry
// collector, or to anything that takes OTLP (Jaeger, Tempo, Honeycomb ...),
// or nothing at all.
//
//   observe::Tracer tracer(observe::TracingOptions::from_environment());  // OTEL_* variables
//   auto span = tracer.start_child("work", observe::SpanKind::internal, parent);
//
// A default-constructed Tracer is off: it hands out contexts as errand always
// did (a child of the caller's traceparent, or a new sampled trace) and spans
// that do not record; that costs a branch. A Tracer that is on samples new
// traces (parent-based: a child keeps its parent's decision; a new trace
// by the sampler), and queues each ended span for a background thread that
// exports them in batches. The queue is bounded (max_queue): when full, a span
// is dropped and counted, never waited for. A failed export is retried by
// the exporter with backoff, then dropped and counted; the next ones wait
// longer (up to 30 s) while the collector stays down; one log line per
// minute says so, never one per span.
//
// Metrics (when `metrics` is given): otel_spans_exported_total,
// otel_spans_dropped_total{reason=queue_full|export_failed|shutdown},
// otel_export_failures_total.
//
// Thread-safety: a Tracer is a handle (a shared_ptr inside); copy it freely,
// call it from any thread. The export thread stops with shutdown() or when
// the last copy (and the last span) is gone.

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "errand/observe/logger.hpp"
#include "errand/observe/span.hpp"
#include "errand/observe/trace_context.hpp"

namespace errand::observe {

class Registry;

struct TracingOptions {
  // The collector's OTLP/HTTP base URL ("http://collector:4318"); spans go
  // to <endpoint>/v1/traces. Empty: tracing is off.
  std::string endpoint{};
  // A full traces URL (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT): used as given,
  // and wins over `endpoint`.
  std::string traces_endpoint{};
  // service.name; empty: the one in resource_attributes, else "errand".
  // resource_attributes ("k=v,k2=v2", as OTEL_RESOURCE_ATTRIBUTES) are
  // added to service.name, service.instance.id, service.version and
  // telemetry.sdk.*, and may replace them (not service_name).
  std::string service_name{};
  std::string service_instance{};  // service.instance.id: the node id
  std::string resource_attributes{};
  // OTEL_TRACES_SAMPLER's names: parentbased_always_on (the default),
  // parentbased_always_off, parentbased_traceidratio, always_on,
  // always_off, traceidratio; `sampler_ratio` for the ratio ones.
  std::string sampler = "parentbased_always_on";
  double sampler_ratio = 1.0;
  // Extra HTTP headers for the collector ("k=v,k2=v2", as OTEL_EXPORTER_OTLP_HEADERS).
  std::string headers{};

  std::size_t max_queue = 2048;                 // ended spans waiting for export
  std::size_t max_batch = 512;                  // spans per export request
  std::chrono::milliseconds batch_delay{1000};  // the longest a span waits for a batch
  std::chrono::milliseconds export_timeout{10000};

  Registry* metrics = nullptr;  // must outlive the Tracer
  Logger logger = Logger::null();

  // These options with the OpenTelemetry environment applied:
  // OTEL_SDK_DISABLED, OTEL_TRACES_EXPORTER (none / otlp),
  // OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
  // OTEL_EXPORTER_OTLP_PROTOCOL (errand sends http/json; http/protobuf is
  // taken to mean OTLP/HTTP too, grpc is refused),
  // OTEL_EXPORTER_OTLP_HEADERS (and _TRACES_HEADERS), OTEL_EXPORTER_OTLP_TIMEOUT
  // (and _TRACES_TIMEOUT), OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES,
  // OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG (together, and only when
  // neither sampler nor sampler_ratio was set here), OTEL_BSP_MAX_QUEUE_SIZE,
  // OTEL_BSP_MAX_EXPORT_BATCH_SIZE, OTEL_BSP_SCHEDULE_DELAY. A setting made
  // here (not empty / not default) wins over the environment, which wins
  // over the defaults. Throws std::invalid_argument naming the variable
  // when one is malformed.
  [[nodiscard]] TracingOptions with_environment() const;
  // Throws std::invalid_argument naming the setting that is wrong.
  void validate() const;
  [[nodiscard]] bool enabled() const { return !endpoint.empty() || !traces_endpoint.empty(); }
};

class Tracer {
 public:
  // Off.
  Tracer() = default;
  // On when options.enabled(); validates them (std::invalid_argument) and
  // starts the export thread.
  explicit Tracer(const TracingOptions& options);

  [[nodiscard]] bool enabled() const { return pipeline_ != nullptr; }

  // The context of a new span: a child of `parent` (same trace, same
  // sampling decision, its tracestate) or, without one, a new trace whose
  // sampled flag the sampler sets.
  [[nodiscard]] TraceContext new_context(const TraceContext* parent) const;

  // A span with the ids of `self` (from new_context) under `parent_span_id`
  // (empty for a root). Records only when on and `self` is sampled.
  [[nodiscard]] Span start(
      std::string_view name, SpanKind kind, TraceContext self, std::string_view parent_span_id,
      std::chrono::system_clock::time_point start = std::chrono::system_clock::now()) const;
  // new_context(&parent), then start().
  [[nodiscard]] Span start_child(std::string_view name, SpanKind kind,
                                 const TraceContext& parent) const;

  // Exports what is queued, waiting up to `timeout`; spans ended meanwhile
  // past it are dropped and counted (reason "shutdown"), and spans ended
  // after it returns are dropped uncounted (the metrics may be gone with
  // their App). Every copy is then off for export.
  void shutdown(std::chrono::milliseconds timeout) const;

 private:
  std::shared_ptr<detail::SpanPipeline> pipeline_;
};

}  // namespace errand::observe
