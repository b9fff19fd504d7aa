#pragma once
// W3C Trace Context: the `traceparent` header (https://www.w3.org/TR/trace-context/).
//
// TraceContext is a plain value: copy it freely between threads. parse() never
// throws; it returns nullopt for anything the spec says to ignore (bad length,
// upper-case hex, all-zero ids, version ff), and the caller starts a new trace.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace errand::observe {

struct TraceContext {
  std::string trace_id;  // 32 lower-case hex digits, never all zero
  std::string span_id;   // 16 lower-case hex digits: the caller's span (parent-id)
  std::uint8_t flags = 0;
  // The `tracestate` header that came with the traceparent (vendors' entries,
  // carried unchanged wherever the traceparent goes); empty: none.
  std::string tracestate{};

  [[nodiscard]] static std::optional<TraceContext> parse(std::string_view traceparent);
  // A `tracestate` header made fit to propagate: at most 32 `key=value`
  // members (W3C syntax), OWS trimmed, empty members dropped, members past
  // 512 characters dropped from the end; nullopt when it is not valid (then
  // it is not propagated at all, as the spec says).
  [[nodiscard]] static std::optional<std::string> parse_tracestate(std::string_view header);
  // A new trace with random ids and the sampled flag set.
  [[nodiscard]] static TraceContext generate();
  // Same trace, new span id: what this process propagates to work it starts.
  [[nodiscard]] TraceContext child() const;
  [[nodiscard]] bool sampled() const { return (flags & 0x01U) != 0; }
  // "00-<trace_id>-<span_id>-<flags>"
  [[nodiscard]] std::string to_traceparent() const;

  friend bool operator==(const TraceContext&, const TraceContext&) = default;
};

// Lower-case hex of `bytes` random bytes from a per-thread generator.
[[nodiscard]] std::string random_hex(std::size_t bytes);

}  // namespace errand::observe
