#include "errand/observe/trace_context.hpp"

#include <algorithm>
#include <array>
#include <random>
#include <vector>

namespace errand::observe {
namespace {

bool is_lower_hex(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool all_zero(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c == '0'; });
}

std::mt19937_64& generator() {
  thread_local std::mt19937_64 gen{[] {
    std::random_device rd;
    std::seed_seq seq{rd(), rd(), rd(), rd()};
    return std::mt19937_64{seq};
  }()};
  return gen;
}

int hex_value(char c) {
  return c <= '9' ? c - '0' : c - 'a' + 10;
}

}  // namespace

std::string random_hex(std::size_t bytes) {
  static constexpr std::array<char, 16> digits{'0', '1', '2', '3', '4', '5', '6', '7',
                                               '8', '9', 'a', 'b', 'c', 'd', 'e', 'f'};
  // Written in place: every request makes three of these (request id, trace
  // id, span id), so the per-character push_back showed in its profile.
  std::string out(bytes * 2, '0');
  char* p = out.data();
  auto& gen = generator();
  for (std::size_t i = 0; i < bytes; i += 8) {
    std::uint64_t word = gen();
    for (std::size_t j = 0; j < 8 && i + j < bytes; ++j) {
      *p++ = digits[(word >> 4U) & 0xFU];
      *p++ = digits[word & 0xFU];
      word >>= 8U;
    }
  }
  return out;
}

std::optional<TraceContext> TraceContext::parse(std::string_view traceparent) {
  const std::string_view v = traceparent;
  // version "-" trace-id "-" parent-id "-" flags; future versions may append "-..." fields.
  constexpr std::size_t base_len = 55;
  if (v.size() < base_len) return std::nullopt;
  const auto version = v.substr(0, 2);
  if (!is_lower_hex(version) || version == "ff") return std::nullopt;
  if (version == "00" && v.size() != base_len) return std::nullopt;
  if (v.size() > base_len && v[base_len] != '-') return std::nullopt;
  if (v[2] != '-' || v[35] != '-' || v[52] != '-') return std::nullopt;
  const auto trace_id = v.substr(3, 32);
  const auto span_id = v.substr(36, 16);
  const auto flags = v.substr(53, 2);
  if (!is_lower_hex(trace_id) || !is_lower_hex(span_id) || !is_lower_hex(flags)) {
    return std::nullopt;
  }
  if (all_zero(trace_id) || all_zero(span_id)) return std::nullopt;
  return TraceContext{std::string(trace_id), std::string(span_id),
                      static_cast<std::uint8_t>(hex_value(flags[0]) * 16 + hex_value(flags[1]))};
}

TraceContext TraceContext::generate() {
  TraceContext t;
  do {
    t.trace_id = random_hex(16);
  } while (all_zero(t.trace_id));
  // Not child(): that would copy the trace id just drawn (once per request).
  do {
    t.span_id = random_hex(8);
  } while (all_zero(t.span_id));
  t.flags = 0x01;
  return t;
}

namespace {

bool tracestate_key(std::string_view k) {
  // simple-key or tenant@system: lcalpha / digit first, then [a-z0-9_-*/@].
  if (k.empty() || k.size() > 256) return false;
  const auto ok = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '*' ||
           c == '/' || c == '@';
  };
  if (!((k[0] >= 'a' && k[0] <= 'z') || (k[0] >= '0' && k[0] <= '9'))) return false;
  return std::all_of(k.begin(), k.end(), ok) && std::count(k.begin(), k.end(), '@') <= 1;
}

bool tracestate_value(std::string_view v) {
  // 1..256 printable ASCII but ',' and '=', not ending in a space.
  if (v.empty() || v.size() > 256 || v.back() == ' ') return false;
  return std::all_of(v.begin(), v.end(),
                     [](char c) { return c >= 0x20 && c <= 0x7e && c != ',' && c != '='; });
}

}  // namespace

std::optional<std::string> TraceContext::parse_tracestate(std::string_view header) {
  constexpr std::size_t kMaxMembers = 32;
  constexpr std::size_t kMaxLength = 512;
  std::vector<std::string_view> members;
  // Iterators rather than find(): see for_each_item in app/dashboard.cpp.
  auto it = header.begin();
  while (true) {
    const auto comma = std::find(it, header.end(), ',');
    std::string_view m = header.substr(static_cast<std::size_t>(it - header.begin()),
                                       static_cast<std::size_t>(comma - it));
    while (!m.empty() && (m.front() == ' ' || m.front() == '\t')) m.remove_prefix(1);
    while (!m.empty() && (m.back() == ' ' || m.back() == '\t')) m.remove_suffix(1);
    if (!m.empty()) {
      const auto eq = static_cast<std::size_t>(std::find(m.begin(), m.end(), '=') - m.begin());
      if (eq == m.size() || !tracestate_key(m.substr(0, eq)) ||
          !tracestate_value(m.substr(eq + 1))) {
        return std::nullopt;
      }
      members.push_back(m);
    }
    if (comma == header.end()) break;
    it = comma + 1;
  }
  if (members.size() > kMaxMembers) return std::nullopt;
  std::string out;
  for (const auto m : members) {
    if (out.size() + (out.empty() ? 0 : 1) + m.size() > kMaxLength) break;
    if (!out.empty()) out += ',';
    out += m;
  }
  return out;
}

TraceContext TraceContext::child() const {
  TraceContext t = *this;
  do {
    t.span_id = random_hex(8);
  } while (all_zero(t.span_id));
  return t;
}

std::string TraceContext::to_traceparent() const {
  static constexpr std::array<char, 16> digits{'0', '1', '2', '3', '4', '5', '6', '7',
                                               '8', '9', 'a', 'b', 'c', 'd', 'e', 'f'};
  std::string out;
  out.reserve(3 + trace_id.size() + 1 + span_id.size() + 3);
  out += "00-";
  out += trace_id;
  out += '-';
  out += span_id;
  out += '-';
  out += digits[(flags >> 4U) & 0xFU];
  out += digits[flags & 0xFU];
  return out;
}

}  // namespace errand::observe
