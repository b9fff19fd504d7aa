#pragma once
// The configuration of `errand serve` as a value: what the command line,
// its TOML file and the ERRAND_* environment fill in (apps/errand/), and what
// a program calling app::serve(config) fills in by hand. validate() holds
// every check of it, and serve() runs validate() first, so a bad
// configuration is refused however it was built.

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "errand/app/app.hpp"
#include "errand/app/builtin_tasks.hpp"
#include "errand/guard/circuit_breaker.hpp"
#include "errand/http/middleware.hpp"
#include "errand/observe/logger.hpp"
#include "errand/store/redis_store.hpp"

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

// A periodic schedule `errand serve` registers (--schedule).
struct ScheduleRule {
  std::string name;
  std::string kind;                   // "every" or "cron"
  std::chrono::milliseconds every{};  // kind every
  std::string cron{};                 // kind cron: the expression (UTC)
  std::string type;                   // the task it enqueues
  std::string queue{};                // empty: the type's
  std::string payload = "{}";         // JSON
};

struct Config {
  // The server, the task runtime (queues, lease, shutdown grace, retention,
  // backpressure) and the SQLite store, as the App takes them; its logger is
  // replaced by one built from log_level and log_format.
  AppOptions app{};
  observe::Level log_level = observe::Level::info;
  observe::Format log_format = observe::Format::json;

  // Traffic control and security, in the order a request meets them.
  std::vector<RateLimitRule> rate_limits;
  std::vector<std::string> auth_tokens;  // empty: no authentication
  std::vector<std::string> auth_public = {"/healthz", "/readyz", "/metrics"};
  std::vector<ConcurrencyRule> concurrency_limits;

  // sqlite: app.sqlite's file; memory: nothing kept; redis: `redis` (its
  // logger is replaced by the server's).
  enum class StoreKind : std::uint8_t { sqlite, memory, redis } store = StoreKind::sqlite;
  store::RedisOptions redis{};

  // What this node does (the node id is app.tasks.owner): all — the task API
  // and workers; api — the task API, no workers (app.tasks.queues are
  // ignored); worker — workers, and over HTTP only /healthz, /readyz and
  // /metrics. Every role runs maintenance (reclaim, purge, schedules): the
  // store makes each of those safe to run on several nodes at once.
  enum class Role : std::uint8_t { all, api, worker } role = Role::all;
  std::vector<ScheduleRule> schedules;  // registered by every node that has them
  // The dashboard (not on worker nodes): a task's trace id links here, with
  // "{trace_id}" replaced; empty: no link. http(s) only.
  std::string ui_trace_url{};
  guard::CircuitBreaker::Options breaker;  // http.request's per-host circuits
  SmtpOptions smtp;                        // email.send; no host: no such type
};

// Every check of a Config, in one place; throws std::invalid_argument naming
// the setting by its flag (`--lease must be at least 1s`). Among them: header
// limit within 256 B..16 MiB, at least one connection and blocking thread, a
// lease of at least 1 s, queues with valid names and 1..1024 workers, rules on
// route prefixes ("/..."), usable bearer tokens, public prefixes that cannot
// open every route, and a concurrency limit that waits only with more
// blocking threads than its slots.
void validate(const Config& config);

// Throws std::invalid_argument unless `token` is a usable bearer token.
void check_token(std::string_view token);

}  // namespace errand::app
