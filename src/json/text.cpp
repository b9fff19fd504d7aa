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

// The shortest digits that read back as `d` (fmt's "{}"), written without an
// exponent, and always with a fraction ("2.0", not "2") so that a double
// stored and read back is still a double.
void write_double(std::string& out, double d) {
  if (!std::isfinite(d)) {
    out += "null";
    return;
  }
  const auto shortest = fmt::format("{}", d);
  const auto e = shortest.find_first_of("eE");
  if (e == std::string::npos) {
    out += shortest;
    if (shortest.find('.') == std::string::npos) out += ".0";
    return;
  }
  // "-1.2345e-07": move the point in the digits instead of using an exponent.
  const bool negative = shortest.front() == '-';
  const std::string mantissa = shortest.substr(negative ? 1 : 0, e - (negative ? 1 : 0));
  const int exponent = std::stoi(shortest.substr(e + 1));
  const auto dot = mantissa.find('.');
  std::string digits = mantissa;
  auto point = static_cast<long>(mantissa.size());
  if (dot != std::string::npos) {
    digits = mantissa.substr(0, dot) + mantissa.substr(dot + 1);
    point = static_cast<long>(dot);
  }
  point += exponent;
  const auto n = static_cast<long>(digits.size());
  if (negative) out += '-';
  if (point <= 0) {
    out += "0.";
    out.append(static_cast<std::size_t>(-point), '0');
    out += digits;
  } else if (point >= n) {
    out += digits;
    out.append(static_cast<std::size_t>(point - n), '0');
    out += ".0";
  } else {
    out += digits.substr(0, static_cast<std::size_t>(point));
    out += '.';
    out += digits.substr(static_cast<std::size_t>(point));
  }
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
  if (!has_double(v)) return boost::json::serialize(v);  // no copy into a second string
  std::string out;
  write(out, v);
  return out;
}

}  // namespace errand::json
