#include "errand/app/config.hpp"

#include <algorithm>
#include <cctype>
#include <stdexcept>

#include <fmt/format.h>
#include <boost/json.hpp>

#include "errand/tasks/cron.hpp"

namespace errand::app {

namespace {

[[noreturn]] void refuse(const std::string& message) {
  throw std::invalid_argument(message);
}

void check_prefix(std::string_view flag, const std::string& prefix) {
  if (prefix.empty() || prefix.front() != '/') {
    refuse(fmt::format("{}: '{}' is not a route prefix (it must start with '/')", flag, prefix));
  }
}

}  // namespace

void check_token(std::string_view token) {
  // RFC 6750 b64token characters: no spaces or quotes, so what a client sends
  // after "Bearer " can match it exactly.
  const bool charset = std::all_of(token.begin(), token.end(), [](char ch) {
    return std::isalnum(static_cast<unsigned char>(ch)) != 0 ||
           std::string_view("-._~+/=").find(ch) != std::string_view::npos;
  });
  if (token.size() < 16 || !charset) {
    throw std::invalid_argument(
        "--auth-token: a token is at least 16 characters of A-Z a-z 0-9 - . _ ~ + / = (use "
        "e.g. `openssl rand -hex 24`)");
  }
}

void validate(const Config& config) {
  const auto& http = config.app.http;
  const auto& tasks = config.app.tasks;
  if (http.max_header_bytes < 256 || http.max_header_bytes > (std::size_t{1} << 24U)) {
    refuse(fmt::format("--max-header-bytes must be within 256 and {}, not {}",
                       std::size_t{1} << 24U, http.max_header_bytes));
  }
  if (http.max_connections < 1) refuse("--max-connections must be at least 1");
  if (http.blocking_threads < 1) refuse("--blocking-threads must be at least 1");
  if (config.app.request_timeout <= std::chrono::milliseconds(0)) {
    refuse("--request-timeout must be positive");
  }
  if (tasks.lease < std::chrono::seconds(1)) refuse("--lease must be at least 1s");
  if (tasks.queues.empty() && config.role != Config::Role::api) {
    refuse("--queues: at least one queue is needed (or --role api, which runs no workers)");
  }
  if (!tasks.owner.empty() &&
      (tasks.owner.size() > 128 || std::any_of(tasks.owner.begin(), tasks.owner.end(), [](char ch) {
         return ch == '~' || std::isspace(static_cast<unsigned char>(ch)) != 0 ||
                std::iscntrl(static_cast<unsigned char>(ch)) != 0;
       }))) {
    refuse("--node-id must be 1..128 characters without spaces or '~'");
  }
  if (tasks.node_silence < 2 * tasks.node_heartbeat) {
    refuse(fmt::format("--node-timeout must be at least twice the node heartbeat ({} ms)",
                       tasks.node_heartbeat.count()));
  }
  for (std::size_t i = 0; i < config.schedules.size(); ++i) {
    const auto& s = config.schedules[i];
    const auto where = fmt::format("--schedule {}", s.name);
    if (!tasks::valid_name(s.name)) {
      refuse(fmt::format("--schedule: '{}' is not a schedule name (1-128 of A-Z a-z 0-9 . _ : -)",
                         s.name));
    }
    for (std::size_t j = 0; j < i; ++j) {
      if (config.schedules[j].name == s.name) refuse(where + ": the name is used twice");
    }
    if (s.kind == "every") {
      if (s.every < std::chrono::seconds(1)) refuse(where + ": the period must be at least 1s");
    } else if (s.kind == "cron") {
      try {
        (void)tasks::CronSchedule::parse(s.cron);
      } catch (const std::invalid_argument& e) {
        refuse(fmt::format("{}: {}", where, e.what()));
      }
    } else {
      refuse(where + ": the kind is every or cron");
    }
    if (!s.queue.empty() && !tasks::valid_name(s.queue)) {
      refuse(fmt::format("{}: '{}' is not a queue name", where, s.queue));
    }
    boost::system::error_code ec;
    const auto payload = boost::json::parse(s.payload, ec);
    if (ec || !payload.is_object()) refuse(where + ": the payload must be a JSON object");
  }
  for (std::size_t i = 0; i < tasks.queues.size(); ++i) {
    const auto& q = tasks.queues[i];
    if (!tasks::valid_name(q.name)) {
      refuse(
          fmt::format("--queues: '{}' is not a queue name (1-128 of A-Z a-z 0-9 . _ : -)", q.name));
    }
    if (q.concurrency < 1 || q.concurrency > 1024) {
      refuse(fmt::format("--queues: {} needs 1 to 1024 workers, not {}", q.name, q.concurrency));
    }
    if (q.weight < 1 || q.weight > 1000) {
      refuse(fmt::format("--queues: {} needs a weight of 1 to 1000, not {}", q.name, q.weight));
    }
    if (q.prefetch > 4096) {
      refuse(fmt::format("--queues: {} may prefetch at most 4096, not {}", q.name, q.prefetch));
    }
    for (std::size_t j = 0; j < i; ++j) {
      if (tasks.queues[j].name == q.name) refuse("--queues: '" + q.name + "' is listed twice");
    }
  }
  for (const auto& [name, limit] : tasks.queue_max_waiting) {
    if (!tasks::valid_name(name)) {
      refuse(fmt::format("--queue-max-waiting: '{}' is not a queue name", name));
    }
  }
  for (const auto& rule : config.rate_limits) {
    check_prefix("--rate-limit", rule.prefix);
    if (!(rule.options.per_second > 0) || !(rule.options.burst >= 1)) {
      refuse(fmt::format("--rate-limit {}: the rate must be positive and the burst at least 1",
                         rule.prefix));
    }
  }
  for (const auto& t : config.auth_tokens) check_token(t);
  for (const auto& p : config.auth_public) {
    // "" or "/" would leave every route open: a typo must not turn auth off.
    if (p.size() < 2 || p.front() != '/') {
      refuse(fmt::format(
          "--auth-public: '{}' is not a route prefix like /healthz (\"/\" would make every "
          "route public)",
          p));
    }
  }
  // The OTEL_* environment too: a malformed variable is refused at start.
  config.app.tracing.with_environment().validate();
  if (!config.ui_trace_url.empty() && !config.ui_trace_url.starts_with("http://") &&
      !config.ui_trace_url.starts_with("https://")) {
    refuse("--ui-trace-url must start with http:// or https:// (it becomes a link)");
  }
  for (const auto& rule : config.concurrency_limits) {
    check_prefix("--concurrency-limit", rule.prefix);
    if (rule.options.max_in_flight < 1) {
      refuse(fmt::format("--concurrency-limit {}: at least 1 in flight", rule.prefix));
    }
    if (rule.options.max_wait.count() > 0 && rule.options.max_in_flight >= http.blocking_threads) {
      refuse(fmt::format(
          "--concurrency-limit {}: {} in flight with waiting needs more --blocking-threads than "
          "that ({} now): each waiting request holds a blocking thread",
          rule.prefix, rule.options.max_in_flight, http.blocking_threads));
    }
  }
  if (config.breaker.failure_threshold < 1 || config.breaker.failure_threshold > 1000) {
    refuse("--breaker-failures must be within 1 and 1000");
  }
  if (config.store == Config::StoreKind::sqlite && config.app.store == nullptr &&
      config.app.sqlite.path.empty()) {
    refuse("--db: the SQLite store needs a file");
  }
  if (config.store == Config::StoreKind::redis) {
    const auto& r = config.redis;
    if (r.endpoint.host.empty()) refuse("--store: the Redis URL names no host");
    if (r.key_prefix.empty() || r.key_prefix.size() > 64 ||
        r.key_prefix.find_first_of("{}: \t\r\n") != std::string::npos) {
      refuse(
          "--redis-prefix must be 1..64 characters without braces, colons or spaces (it becomes "
          "the keys' hash tag, {PREFIX})");
    }
    if (r.connections < 1 || r.connections > 64) refuse("--redis-connections must be 1..64");
    if (r.command_timeout < std::chrono::milliseconds(10)) {
      refuse("--redis-timeout must be at least 10ms");
    }
  }
  if (!config.smtp.host.empty() && config.smtp.port == 0) refuse("--smtp-port must not be 0");
}

}  // namespace errand::app
