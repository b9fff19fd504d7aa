#include "flag_parsers.hpp"

#include <algorithm>
#include <charconv>
#include <stdexcept>

#include <fmt/format.h>

#include "errand/tasks/registry.hpp"

namespace errand::cli {

std::chrono::milliseconds parse_duration(std::string_view text) {
  const auto bad = [&] {
    return std::invalid_argument(
        fmt::format("invalid duration '{}' (use e.g. 250ms, 10s, 2m, 1h)", text));
  };
  std::uint64_t value = 0;
  const auto* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc{} || ptr == text.data()) throw bad();
  const std::string_view unit(ptr, static_cast<std::size_t>(end - ptr));
  std::uint64_t factor = 0;
  if (unit == "ms")
    factor = 1;
  else if (unit.empty() || unit == "s")
    factor = 1000;
  else if (unit == "m")
    factor = 60'000;
  else if (unit == "h")
    factor = 3'600'000;
  else
    throw bad();
  if (value > std::uint64_t{1} << 40U) throw bad();
  return std::chrono::milliseconds(static_cast<std::int64_t>(value * factor));
}

std::pair<std::string, std::uint16_t> parse_listen(std::string_view text) {
  const auto bad = [&] {
    return std::invalid_argument(
        fmt::format("invalid listen address '{}' (use HOST:PORT, e.g. 127.0.0.1:8080)", text));
  };
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos) throw bad();
  std::string host(text.substr(0, colon));
  const auto port_text = text.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty()) host = "0.0.0.0";
  if (host == "localhost") host = "127.0.0.1";
  unsigned port = 0;
  auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc{} || ptr != port_text.data() + port_text.size() || port > 65535) throw bad();
  return {host, static_cast<std::uint16_t>(port)};
}

std::vector<tasks::QueueConfig> parse_queues(std::string_view text) {
  const auto bad = [&](std::string_view why) {
    return std::invalid_argument(
        fmt::format("invalid queues '{}': {} (use NAME=WORKERS[:WEIGHT[:PREFETCH]],..., e.g. "
                    "default=4,mail=2:3)",
                    text, why));
  };
  std::vector<tasks::QueueConfig> out;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    const auto comma = std::min(text.find(',', pos), text.size());
    const auto item = text.substr(pos, comma - pos);
    pos = comma + 1;
    const auto eq = item.find('=');
    if (eq == std::string_view::npos) throw bad("missing '='");
    tasks::QueueConfig q;
    q.name = std::string(item.substr(0, eq));
    if (!tasks::valid_name(q.name)) throw bad("bad queue name");
    for (const auto& other : out) {
      if (other.name == q.name) throw bad("queue listed twice");
    }
    auto rest = item.substr(eq + 1);
    const auto colon = rest.find(':');
    auto number = [&](std::string_view n, unsigned lo, unsigned hi) {
      unsigned v = 0;
      auto [ptr, ec] = std::from_chars(n.data(), n.data() + n.size(), v);
      if (ec != std::errc{} || ptr != n.data() + n.size() || v < lo || v > hi) {
        throw bad(fmt::format("'{}' is not a number in [{}, {}]", n, lo, hi));
      }
      return v;
    };
    q.concurrency = number(rest.substr(0, colon), 1, 1024);
    if (colon != std::string_view::npos) {
      auto tail = rest.substr(colon + 1);
      const auto second = tail.find(':');
      q.weight = number(tail.substr(0, second), 1, 1000);
      if (second != std::string_view::npos) q.prefetch = number(tail.substr(second + 1), 0, 4096);
    }
    out.push_back(std::move(q));
  }
  return out;
}

namespace {

// "PREFIX=REST" with PREFIX a path; REST split on ':'.
std::pair<std::string, std::vector<std::string_view>> split_rule(std::string_view text,
                                                                 std::string_view usage) {
  const auto eq = text.find('=');
  if (eq == std::string_view::npos || eq == 0 || text.front() != '/') {
    throw std::invalid_argument(fmt::format("invalid rule '{}' (use {})", text, usage));
  }
  std::vector<std::string_view> parts;
  auto rest = text.substr(eq + 1);
  while (true) {
    const auto colon = rest.find(':');
    parts.push_back(rest.substr(0, colon));
    if (colon == std::string_view::npos) break;
    rest = rest.substr(colon + 1);
  }
  return {std::string(text.substr(0, eq)), std::move(parts)};
}

template <class T>
T number_in(std::string_view n, T lo, T hi, std::string_view rule, std::string_view what) {
  T v{};
  auto [ptr, ec] = std::from_chars(n.data(), n.data() + n.size(), v);
  if (ec != std::errc{} || ptr != n.data() + n.size() || !(v >= lo) || !(v <= hi)) {
    throw std::invalid_argument(fmt::format(
        "invalid rule '{}': {} '{}' is not a number in [{}, {}]", rule, what, n, lo, hi));
  }
  return v;
}

}  // namespace

RateLimitRule parse_rate_limit(std::string_view text) {
  constexpr std::string_view usage =
      "PREFIX=RATE:BURST[:ip|global|header:NAME], e.g. /v1/tasks=100:200";
  auto [prefix, parts] = split_rule(text, usage);
  if (parts.size() < 2 || parts.size() > 4) {
    throw std::invalid_argument(fmt::format("invalid rate limit '{}' (use {})", text, usage));
  }
  RateLimitRule r;
  r.prefix = std::move(prefix);
  r.options.per_second = number_in(parts[0], 0.001, 1e9, text, "rate");
  r.options.burst = number_in(parts[1], 1.0, 1e9, text, "burst");
  using Key = http::mw::RateLimitOptions::Key;
  const auto key = parts.size() > 2 ? parts[2] : std::string_view("ip");
  if (key == "ip" && parts.size() <= 3) {
    r.options.key = Key::client_ip;
  } else if (key == "global" && parts.size() == 3) {
    r.options.key = Key::global;
  } else if (key == "header" && parts.size() == 4 && !parts[3].empty()) {
    r.options.key = Key::header;
    r.options.header = std::string(parts[3]);
  } else {
    throw std::invalid_argument(fmt::format("invalid rate limit '{}' (use {})", text, usage));
  }
  return r;
}

app::ScheduleRule parse_schedule(std::string_view text) {
  constexpr std::string_view usage =
      "NAME=every:DURATION:TYPE[:QUEUE[:PAYLOAD]] or NAME=cron:EXPRESSION:TYPE[:QUEUE[:PAYLOAD]], "
      "e.g. nightly=cron:0 3 * * *:report.build";
  auto bad = [&](std::string_view why) {
    return std::invalid_argument(
        fmt::format("invalid schedule '{}': {} (use {})", text, why, usage));
  };
  const auto eq = text.find('=');
  if (eq == std::string_view::npos || eq == 0) throw bad("no NAME=");
  app::ScheduleRule r;
  r.name = std::string(text.substr(0, eq));
  // Split on ':' at most four times: the payload (JSON) may hold colons.
  std::vector<std::string_view> parts;
  std::string_view rest = text.substr(eq + 1);
  while (parts.size() < 4) {
    const auto colon = rest.find(':');
    if (colon == std::string_view::npos) break;
    parts.push_back(rest.substr(0, colon));
    rest = rest.substr(colon + 1);
  }
  parts.push_back(rest);
  if (parts.size() < 3) throw bad("too few parts");
  r.kind = std::string(parts[0]);
  if (r.kind == "every") {
    r.every = parse_duration(parts[1]);
  } else if (r.kind == "cron") {
    r.cron = std::string(parts[1]);
  } else {
    throw bad("the kind is every or cron");
  }
  r.type = std::string(parts[2]);
  if (r.type.empty()) throw bad("no TYPE");
  if (parts.size() > 3) r.queue = std::string(parts[3]);
  if (parts.size() > 4) r.payload = std::string(parts[4]);
  return r;
}

ConcurrencyRule parse_concurrency_limit(std::string_view text) {
  constexpr std::string_view usage =
      "PREFIX=MAX_IN_FLIGHT[:MAX_WAIT] or PREFIX=adaptive[:MAX_IN_FLIGHT], e.g. /v1=64:2s";
  auto [prefix, parts] = split_rule(text, usage);
  if (parts.size() > 2) {
    throw std::invalid_argument(
        fmt::format("invalid concurrency limit '{}' (use {})", text, usage));
  }
  ConcurrencyRule r;
  r.options.name = prefix;
  r.prefix = std::move(prefix);
  if (parts[0] == "adaptive") {
    r.options.adaptive = true;
    r.options.max_in_flight =
        parts.size() == 2 ? number_in<std::size_t>(parts[1], 1, 1'000'000, text, "max in flight")
                          : 1000;
    r.options.min_in_flight = std::min<std::size_t>(4, r.options.max_in_flight);
    return r;
  }
  r.options.max_in_flight = number_in<std::size_t>(parts[0], 1, 1'000'000, text, "max in flight");
  if (parts.size() == 2) r.options.max_wait = parse_duration(parts[1]);
  return r;
}

std::map<std::string, std::size_t, std::less<>> parse_queue_limits(std::string_view text) {
  std::map<std::string, std::size_t, std::less<>> out;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    const auto comma = std::min(text.find(',', pos), text.size());
    const auto item = text.substr(pos, comma - pos);
    pos = comma + 1;
    const auto eq = item.find('=');
    const std::string name(item.substr(0, std::min(eq, item.size())));
    if (eq == std::string_view::npos || !tasks::valid_name(name)) {
      throw std::invalid_argument(fmt::format(
          "invalid queue limits '{}' (use NAME=MAX_WAITING,..., e.g. mail=1000)", text));
    }
    if (out.contains(name)) {
      throw std::invalid_argument(
          fmt::format("invalid queue limits '{}': queue '{}' is listed twice", text, name));
    }
    out[name] =
        number_in<std::size_t>(item.substr(eq + 1), 0, std::size_t{1} << 40U, text, "max waiting");
  }
  return out;
}

}  // namespace errand::cli
