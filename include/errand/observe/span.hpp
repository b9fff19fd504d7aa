#pragma once
// A span: one timed operation of a trace (a request, an enqueue, an attempt,
// an outgoing call), exported when it ends.
//
//   auto span = c.start_span("render invoice");   // or TaskContext::start_span
//   span.set("invoice.pages", pages);
//   if (!ok) span.set_error("renderer refused the template");
//   // ends when it goes out of scope (or at span.end())
//
// A Span that is not recording (tracing off, or this trace not sampled)
// still carries its context, so what it propagates stays right; everything
// else on it is a branch and nothing more. A recording span keeps at most
// kMaxAttributes attributes, kMaxEvents events and kMaxLinks links (further
// ones are dropped, as OpenTelemetry's default span limits do) and cuts
// string values to kMaxValueBytes.
//
// Thread-safety: a value, used by one thread at a time; it may end on
// another thread than the one that started it. Move-only.

#include <chrono>
#include <concepts>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "errand/observe/trace_context.hpp"

namespace errand::observe {

enum class SpanKind : std::uint8_t { internal, server, client, producer, consumer };

using AttributeValue = std::variant<bool, std::int64_t, double, std::string>;
struct Attribute {
  std::string key;
  AttributeValue value;
};

namespace detail {
struct SpanData;
class SpanPipeline;
}  // namespace detail

class Span {
 public:
  static constexpr std::size_t kMaxAttributes = 128;
  static constexpr std::size_t kMaxEvents = 128;
  static constexpr std::size_t kMaxLinks = 128;
  static constexpr std::size_t kMaxValueBytes = 4096;

  // Not recording, no context.
  Span() noexcept;
  // Not recording, with a context to propagate.
  explicit Span(TraceContext context) noexcept;
  ~Span();  // end()
  Span(Span&&) noexcept;
  Span& operator=(Span&&) noexcept;
  Span(const Span&) = delete;
  Span& operator=(const Span&) = delete;

  // True while the span records and will be exported (until end()).
  [[nodiscard]] bool recording() const { return data_ != nullptr; }
  // Its trace id and its own span id: what goes out as `traceparent`.
  [[nodiscard]] const TraceContext& context() const { return context_; }

  Span& set(std::string_view key, std::string_view value);
  Span& set(std::string_view key, const char* value) { return set(key, std::string_view(value)); }
  Span& set(std::string_view key, const std::string& value) {
    return set(key, std::string_view(value));
  }
  Span& set(std::string_view key, bool value);
  Span& set(std::string_view key, double value);
  template <std::integral T>
  requires(!std::same_as<T, bool>) Span& set(std::string_view key, T value) {
    return set_int(key, static_cast<std::int64_t>(value));
  }
  // Replaces the name given at the start (a server span learns its route late).
  Span& rename(std::string_view name);
  Span& add_event(std::string_view name, std::vector<Attribute> attributes = {});
  // An "exception" event with exception.type and exception.message, as the
  // semantic conventions name them.
  Span& record_exception(std::string_view type, std::string_view message);
  Span& add_link(const TraceContext& to);
  // Status error with a description; a span not marked stays "unset".
  Span& set_error(std::string_view description);

  // Ends the span now and hands it to the exporter; later calls do nothing.
  void end();
  // Drops the span unexported (work that did not happen after all).
  void discard() noexcept;

 private:
  friend class Tracer;
  Span& set_int(std::string_view key, std::int64_t value);
  Span& put(std::string_view key, AttributeValue value);

  TraceContext context_;
  std::unique_ptr<detail::SpanData> data_;
  std::shared_ptr<detail::SpanPipeline> pipeline_;
};

}  // namespace errand::observe
