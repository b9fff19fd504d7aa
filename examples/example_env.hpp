#pragma once
// What every example reads from its environment, the way a Gin service does:
// PORT (default 8080; 0 picks a free one, logged in the "listening" line) and
// DB, the SQLite file of its tasks (default data/<example>.db).

#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include <errand/errand.hpp>

namespace example {

inline std::string env_or(const char* name, std::string fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::string(v) : fallback;
}

// `text` as a whole number in [lo, hi], or nullopt.
inline std::optional<int> parse_int(std::string_view text, int lo, int hi) {
  int v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || end != text.data() + text.size() || v < lo || v > hi) {
    return std::nullopt;
  }
  return v;
}

// ?name=N as a number in [lo, hi]; absent: fallback; anything else: 400.
inline int query_int(const errand::http::Context& c, std::string_view name, int fallback, int lo,
                     int hi) {
  const auto text = c.query(name);
  if (!text) return fallback;
  if (auto v = parse_int(*text, lo, hi)) return *v;
  throw errand::http::Error(400, "invalid_query",
                            std::string(name) + " must be a number from " + std::to_string(lo) +
                                " to " + std::to_string(hi));
}

// $name as a number in [lo, hi]; unset: fallback; anything else stops the
// program with a message (exit 2), as a bad flag would.
inline int env_int(const char* name, int fallback, int lo, int hi) {
  const std::string text = env_or(name, "");
  if (text.empty()) return fallback;
  if (auto v = parse_int(text, lo, hi)) return *v;
  std::fprintf(stderr, "%s=%s: expected a number from %d to %d\n", name, text.c_str(), lo, hi);
  std::exit(2);
}

inline errand::AppOptions options(const std::string& name) {
  errand::AppOptions o;
  o.http.port = static_cast<std::uint16_t>(env_int("PORT", 8080, 0, 65535));
  o.sqlite.path = env_or("DB", "data/" + name + ".db");
  return o;
}

}  // namespace example
