#pragma once
// to_text(value): JSON text as people and log pipelines expect it. The same
// as boost::json::serialize except for floating-point numbers, which are
// written as plain decimals with the shortest digits that read back exactly
// ("1.285917", "0.25", "2.0", "0.00000000000000000001") instead of Boost
// 1.81's exponent form ("1.285917E0", "2.5E-1"); they keep a fraction, so
// they read back as doubles. Non-finite numbers (which JSON cannot hold)
// become null. Used by Context::json, the error
// bodies and every JSON log line. Pure function: safe on any thread.

#include <string>

#include <boost/json/value.hpp>

namespace errand::json {

[[nodiscard]] std::string to_text(const boost::json::value& v);
// Appends to `out` (reuses its capacity).
void append_text(std::string& out, const boost::json::value& v);

}  // namespace errand::json
