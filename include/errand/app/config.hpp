#pragma once
// Configuration of `errand serve`: every flag has an ERRAND_* environment
// equivalent (flags win). Parsing helpers throw std::invalid_argument with a
// message fit for the command line.

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "errand/app/builtin_tasks.hpp"
#include "errand/guard/circuit_breaker.hpp"
#include "errand/http/middleware.hpp"
#include "errand/http/server.hpp"
#include "errand/observe/logger.hpp"
#include "errand/store/sqlite_store.hpp"
#include "errand/tasks/runtime.hpp"

namespace errand::app {

// A middleware for one route group (a path prefix, see http::mw::only_under).
struct RateLimitRule {
  std::string prefix;
  http::mw::RateLimitOptions options;
};
struct ConcurrencyRule {
  std::string prefix;
  http::mw::ConcurrencyLimitOptions options;
};

struct Config {
  http::ServerConfig http;
  std::chrono::milliseconds request_timeout{std::chrono::seconds(30)};
  observe::Level log_level = observe::Level::info;
  observe::Format log_format = observe::Format::json;

  // Traffic control and security, in the order a request meets them.
  std::vector<RateLimitRule> rate_limits;
  std::vector<std::string> auth_tokens;  // empty: no authentication
  std::vector<std::string> auth_public = {"/healthz", "/readyz", "/metrics"};
  std::vector<ConcurrencyRule> concurrency_limits;
  std::size_t max_waiting = 1'000'000;  // per queue; 0: unlimited
  std::map<std::string, std::size_t, std::less<>> queue_max_waiting;
  guard::CircuitBreaker::Options breaker;

  enum class StoreKind : std::uint8_t { sqlite, memory } store = StoreKind::sqlite;
  store::SqliteOptions sqlite;
  std::vector<tasks::QueueConfig> queues = {tasks::QueueConfig{}};
  std::chrono::milliseconds task_grace{std::chrono::seconds(10)};
  std::chrono::milliseconds lease{std::chrono::seconds(30)};
  std::chrono::milliseconds retention{std::chrono::hours(24 * 7)};
  SmtpOptions smtp;
};

// "default=4,mail=2:3,bulk=16:1:32": queue name = workers [: weight [: prefetch]].
// Throws std::invalid_argument.
[[nodiscard]] std::vector<tasks::QueueConfig> parse_queues(std::string_view text);

// "/v1/tasks=100:200" (100/s, burst 200, per client IP), "/=1000:2000:global",
// "/v1=50:100:header:X-API-Key". Throws std::invalid_argument.
[[nodiscard]] RateLimitRule parse_rate_limit(std::string_view text);
// "/v1/tasks=64" (no waiting), "/v1=32:2s" (wait up to 2 s for a slot).
[[nodiscard]] ConcurrencyRule parse_concurrency_limit(std::string_view text);
// Throws std::invalid_argument unless `token` is a usable bearer token.
void check_token(std::string_view token);
// "mail=1000,default=50000": waiting tasks at most, per queue (0: unlimited).
[[nodiscard]] std::map<std::string, std::size_t, std::less<>> parse_queue_limits(
    std::string_view text);

// "250ms", "10s", "2m", "1h"; a bare number is seconds.
[[nodiscard]] std::chrono::milliseconds parse_duration(std::string_view text);
// "127.0.0.1:8080", "[::1]:8080", ":8080" (all interfaces), "localhost:80".
[[nodiscard]] std::pair<std::string, std::uint16_t> parse_listen(std::string_view text);

// The `errand` command line: serve, --version, --help. Returns the exit code.
[[nodiscard]] int cli_main(int argc, char** argv);

}  // namespace errand::app
