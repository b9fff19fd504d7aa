#include "errand/json/text.hpp"

#include <cmath>

#include <fmt/format.h>
#include <boost/json/serialize.hpp>

namespace errand::json {

namespace {

bool has_double(const boost::json::value& v) {
  switch (v.kind()) {
    case boost::json::kind::double_: return true;
    case boost::json::kind::array:
      for (const auto& item : v.get_array()) {
        if (has_double(item)) return true;
      }
      return false;
    case boost::json::kind::object:
      for (const auto& kv : v.get_object()) {
        if (has_double(kv.value())) return true;
      }
      return false;
    default: return false;
  }
}

void write_double(std::string& out, double d) {
  if (!std::isfinite(d)) {
    out += "null";
    return;
  }
  const auto shortest = fmt::format("{}", d);  // round-trips; an exponent only at extremes
  if (shortest.find_first_of("eE") == std::string::npos) {
    out += shortest;
    return;
  }
  // Very small or very large: fixed notation, trailing zeros trimmed.
  auto fixed = fmt::format("{:.17f}", d);
  while (fixed.size() > 1 && fixed.back() == '0') fixed.pop_back();
  if (fixed.back() == '.') fixed.pop_back();
  out += fixed;
}

void write(std::string& out, const boost::json::value& v) {
  switch (v.kind()) {
    case boost::json::kind::double_: write_double(out, v.get_double()); return;
    case boost::json::kind::array: {
      out += '[';
      bool first = true;
      for (const auto& item : v.get_array()) {
        if (!first) out += ',';
        first = false;
        write(out, item);
      }
      out += ']';
      return;
    }
    case boost::json::kind::object: {
      out += '{';
      bool first = true;
      for (const auto& kv : v.get_object()) {
        if (!first) out += ',';
        first = false;
        out += boost::json::serialize(kv.key());
        out += ':';
        write(out, kv.value());
      }
      out += '}';
      return;
    }
    default: out += boost::json::serialize(v); return;
  }
}

}  // namespace

void append_text(std::string& out, const boost::json::value& v) {
  if (!has_double(v)) {  // the common case: Boost's own serializer, unchanged
    out += boost::json::serialize(v);
    return;
  }
  write(out, v);
}

std::string to_text(const boost::json::value& v) {
  std::string out;
  append_text(out, v);
  return out;
}

}  // namespace errand::json
