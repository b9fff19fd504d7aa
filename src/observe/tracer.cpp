#include "errand/observe/tracer.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdlib>
#include <stdexcept>

#include <fmt/format.h>

#include "observe/span_pipeline.hpp"

namespace errand::observe {

namespace {

constexpr std::array<std::string_view, 6> kSamplers = {"parentbased_always_on",
                                                       "parentbased_always_off",
                                                       "parentbased_traceidratio",
                                                       "always_on",
                                                       "always_off",
                                                       "traceidratio"};

std::string_view env(const char* name) {
  const char* v = std::getenv(name);  // NOLINT(concurrency-mt-unsafe): read at startup
  return v == nullptr ? std::string_view{} : std::string_view(v);
}

std::string lower(std::string_view v) {
  std::string out(v);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::size_t env_count(const char* name, std::size_t current) {
  const auto v = env(name);
  if (v.empty()) return current;
  std::size_t n = 0;
  const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || end != v.data() + v.size()) {
    throw std::invalid_argument(fmt::format("{}: '{}' is not a whole number", name, v));
  }
  return n;
}

std::chrono::milliseconds env_millis(const char* name, std::chrono::milliseconds current) {
  return std::chrono::milliseconds(env_count(name, static_cast<std::size_t>(current.count())));
}

bool http_url(std::string_view url) {
  return (url.starts_with("http://") && url.size() > 7) ||
         (url.starts_with("https://") && url.size() > 8);
}

}  // namespace

TracingOptions TracingOptions::with_environment() const {
  TracingOptions o = *this;
  if (lower(env("OTEL_SDK_DISABLED")) == "true") {
    o.endpoint.clear();
    o.traces_endpoint.clear();
    return o;
  }
  const auto exporter = lower(env("OTEL_TRACES_EXPORTER"));
  if (exporter == "none") {
    o.endpoint.clear();
    o.traces_endpoint.clear();
    return o;
  }
  if (!exporter.empty() && exporter != "otlp") {
    throw std::invalid_argument("OTEL_TRACES_EXPORTER: errand exports 'otlp' or 'none', not '" +
                                exporter + "'");
  }
  const auto protocol = env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL").empty()
                            ? env("OTEL_EXPORTER_OTLP_PROTOCOL")
                            : env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL");
  // Every OTLP/HTTP receiver takes JSON as well as protobuf: both mean this exporter.
  if (!protocol.empty() && protocol != "http/json" && protocol != "http/protobuf") {
    throw std::invalid_argument(
        "OTEL_EXPORTER_OTLP_PROTOCOL: errand exports OTLP over HTTP ('http/json'), not '" +
        std::string(protocol) + "'");
  }
  if (o.endpoint.empty() && o.traces_endpoint.empty()) {
    o.traces_endpoint = env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
    o.endpoint = env("OTEL_EXPORTER_OTLP_ENDPOINT");
  }
  if (o.headers.empty()) {
    o.headers = env("OTEL_EXPORTER_OTLP_TRACES_HEADERS").empty()
                    ? env("OTEL_EXPORTER_OTLP_HEADERS")
                    : env("OTEL_EXPORTER_OTLP_TRACES_HEADERS");
  }
  const TracingOptions defaults;
  if (o.export_timeout == defaults.export_timeout) {
    o.export_timeout = env_millis("OTEL_EXPORTER_OTLP_TIMEOUT", o.export_timeout);
    o.export_timeout = env_millis("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", o.export_timeout);
  }
  if (o.service_name.empty()) o.service_name = env("OTEL_SERVICE_NAME");
  if (o.resource_attributes.empty()) o.resource_attributes = env("OTEL_RESOURCE_ATTRIBUTES");
  // The sampler and its argument come from the environment together, and
  // only when no sampler was chosen here (--trace-sample-ratio chooses one).
  if (o.sampler == defaults.sampler && o.sampler_ratio == defaults.sampler_ratio) {
    if (!env("OTEL_TRACES_SAMPLER").empty()) {
      o.sampler = lower(env("OTEL_TRACES_SAMPLER"));
      if (std::find(kSamplers.begin(), kSamplers.end(), o.sampler) == kSamplers.end()) {
        throw std::invalid_argument(fmt::format("OTEL_TRACES_SAMPLER: '{}' is not one of {}",
                                                o.sampler, fmt::join(kSamplers, ", ")));
      }
    }
    if (const auto arg = env("OTEL_TRACES_SAMPLER_ARG"); !arg.empty()) {
      double ratio = -1;
      const auto [end, ec] = std::from_chars(arg.data(), arg.data() + arg.size(), ratio);
      if (ec != std::errc() || end != arg.data() + arg.size() || ratio < 0 || ratio > 1) {
        throw std::invalid_argument(
            fmt::format("OTEL_TRACES_SAMPLER_ARG: '{}' is not a ratio between 0 and 1", arg));
      }
      o.sampler_ratio = ratio;
    }
  }
  if (o.max_queue == defaults.max_queue) {
    o.max_queue = env_count("OTEL_BSP_MAX_QUEUE_SIZE", o.max_queue);
  }
  if (o.max_batch == defaults.max_batch) {
    o.max_batch = env_count("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", o.max_batch);
  }
  if (o.batch_delay == defaults.batch_delay) {
    o.batch_delay = env_millis("OTEL_BSP_SCHEDULE_DELAY", o.batch_delay);
  }
  // A smaller queue than the default batch: batches as large as the queue.
  o.max_batch = std::min(o.max_batch, std::max<std::size_t>(o.max_queue, 1));
  return o;
}

void TracingOptions::validate() const {
  if (!endpoint.empty() && !http_url(endpoint)) {
    throw std::invalid_argument("--otlp-endpoint must be an http:// or https:// URL, not '" +
                                endpoint + "'");
  }
  if (!traces_endpoint.empty() && !http_url(traces_endpoint)) {
    throw std::invalid_argument(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT must be an http:// or https:// URL, not '" +
        traces_endpoint + "'");
  }
  if (std::find(kSamplers.begin(), kSamplers.end(), sampler) == kSamplers.end()) {
    throw std::invalid_argument(
        fmt::format("tracing sampler '{}' is not one of {}", sampler, fmt::join(kSamplers, ", ")));
  }
  if (!(sampler_ratio >= 0 && sampler_ratio <= 1)) {
    throw std::invalid_argument("tracing sampler ratio must be between 0 and 1");
  }
  if (max_queue < 1 || max_queue > 1'000'000) {
    throw std::invalid_argument("tracing max_queue must be within 1..1000000");
  }
  if (max_batch < 1 || max_batch > max_queue) {
    throw std::invalid_argument("tracing max_batch must be within 1..max_queue");
  }
  if (batch_delay < std::chrono::milliseconds(1) || batch_delay > std::chrono::minutes(1)) {
    throw std::invalid_argument("tracing batch_delay must be within 1 ms..1 min");
  }
  if (export_timeout < std::chrono::milliseconds(1) || export_timeout > std::chrono::minutes(5)) {
    throw std::invalid_argument("tracing export_timeout must be within 1 ms..5 min");
  }
}

Tracer::Tracer(const TracingOptions& options) {
  if (!options.enabled()) return;
  options.validate();
  pipeline_ = std::make_shared<detail::SpanPipeline>(options, detail::make_otlp_exporter(options));
}

TraceContext Tracer::new_context(const TraceContext* parent) const {
  auto ctx = parent == nullptr ? TraceContext::generate() : parent->child();
  if (pipeline_) {
    const bool parent_sampled = parent != nullptr && parent->sampled();
    const bool sampled =
        pipeline_->sample(ctx.trace_id, parent == nullptr ? nullptr : &parent_sampled);
    ctx.flags = sampled ? (ctx.flags | 0x01U) : (ctx.flags & 0xFEU);
  }
  return ctx;
}

Span Tracer::start(std::string_view name, SpanKind kind, TraceContext self,
                   std::string_view parent_span_id,
                   std::chrono::system_clock::time_point start) const {
  if (!pipeline_ || !self.sampled()) return Span(std::move(self));
  Span span(self);
  span.data_ = std::make_unique<detail::SpanData>();
  auto& d = *span.data_;
  d.name = std::string(name.substr(0, Span::kMaxValueBytes));  // the exporter mends a cut character
  d.kind = kind;
  d.context = std::move(self);
  d.parent_span_id = std::string(parent_span_id);
  d.start = start;
  span.pipeline_ = pipeline_;
  return span;
}

Span Tracer::start_child(std::string_view name, SpanKind kind, const TraceContext& parent) const {
  return start(name, kind, new_context(&parent), parent.span_id);
}

void Tracer::shutdown(std::chrono::milliseconds timeout) const {
  if (pipeline_) pipeline_->shutdown(timeout);
}

}  // namespace errand::observe
