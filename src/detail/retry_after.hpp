#pragma once
// Internal: the `Retry-After` header as libcurl hands header lines to a
// callback, for the clients that honour it (http.request, the OTLP exporter).

#include <chrono>
#include <optional>
#include <string_view>

namespace errand::detail {

// The delay a "Retry-After: N" line asks for, N in whole seconds. Another
// header, an HTTP date, a negative or out-of-range number: nullopt (the
// caller falls back to its own backoff, and bounds what it gets).
[[nodiscard]] std::optional<std::chrono::seconds> retry_after(std::string_view header_line);

}  // namespace errand::detail
