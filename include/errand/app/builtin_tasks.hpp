#pragma once
// Task types that `errand serve` ships, for people who do not write C++.
//
// http.request {"method": "POST", "url": "https://…", "headers": {…}, "body": "…",
//               "timeout_ms": 10000}
//   Webhook delivery. 2xx: succeeded, result {"status", "body" (first 4 KiB),
//   "bytes"}. 5xx, 429, connection errors and timeouts: retried with backoff
//   (429/503 honour a Retry-After in seconds). Other 4xx: dead at once. Sends
//   the task's `traceparent`, so the receiver continues the enqueuing
//   request's trace. URLs must be http(s); header names and values are checked
//   at enqueue time (no CR/LF: no header injection).
//
// email.send {"to": ["a@example.org"], "subject": "…", "body": "…", "from": "…"}
//   SMTP through the server in SmtpOptions. A 5xx reply is permanent (dead);
//   connection trouble, timeouts and 4xx replies are retried.
//
// demo.noop   any payload; succeeds at once (benchmarks, smoke tests).
//
// demo.sleep  {"seconds": 5, "steps": 5, "fail_attempts": 0}
//   Sleeps in steps, reporting progress after each; stops at once when
//   cancelled; fails its first `fail_attempts` attempts on purpose (to watch
//   retries). seconds: 0..3600, steps: 1..1000. Result: {"slept_ms", "steps"}.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "errand/guard/circuit_breaker.hpp"
#include "errand/observe/metrics.hpp"
#include "errand/tasks/runtime.hpp"

namespace errand::app {

// Where email.send delivers.
struct SmtpOptions {
  std::string host;  // empty: email.send is not registered
  std::uint16_t port = 25;
  enum class Tls : std::uint8_t { none, starttls, implicit } tls = Tls::none;
  std::string user{};
  std::string password{};
  std::string from = "errand@localhost";  // when the task gives none
  std::chrono::milliseconds timeout{std::chrono::seconds(30)};
};

void register_demo_sleep(tasks::Runtime& runtime);
// Failing hosts are isolated by a circuit breaker per host (5 failures in a
// row open it for 30 s; then one probe): while open, attempts fail fast and
// are retried later. With `metrics`: circuit_state{target} (0 closed, 1 open,
// 2 half-open). Returns the breakers, for GET /v1/circuits. `metrics` is not
// owned: it must outlive the runtime (the App's registry does).
std::shared_ptr<guard::CircuitBreakers> register_http_request(
    tasks::Runtime& runtime, observe::Registry* metrics = nullptr,
    guard::CircuitBreaker::Options breaker = {});
void register_email_send(tasks::Runtime& runtime, const SmtpOptions& smtp);
// Every built-in type; email.send only when smtp.host is set. Returns
// http.request's circuit breakers. Before runtime.start(); `metrics` must
// outlive the runtime.
std::shared_ptr<guard::CircuitBreakers> register_builtin_tasks(
    tasks::Runtime& runtime, const SmtpOptions& smtp = {}, observe::Registry* metrics = nullptr,
    guard::CircuitBreaker::Options breaker = {});

}  // namespace errand::app
