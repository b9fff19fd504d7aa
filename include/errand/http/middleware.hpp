#pragma once
// Built-in middleware. Each factory returns a Handler to pass to use(); all are
// thread-safe to share between routes and I/O threads.
//
// A typical stack, outermost first (App installs it for you):
//   request_id(), trace(), access_log(logger), recovery(), timeout({...})

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "errand/http/context.hpp"
#include "errand/observe/logger.hpp"
#include "errand/observe/metrics.hpp"

namespace errand::http::mw {

// Catches any exception from the rest of the chain: http::Error becomes its
// JSON error; anything else becomes 500 {"error":{"code":"internal"}} and one
// error log line carrying the request id. The server keeps serving.
[[nodiscard]] Handler recovery();

struct RequestIdOptions {
  std::string header = "X-Request-ID";
  // Incoming ids longer than this, or with characters outside [A-Za-z0-9._:-],
  // are replaced by a fresh one (they end up in logs).
  std::size_t max_length = 128;
};
// Keeps a well-formed incoming X-Request-ID or generates one; echoes it.
[[nodiscard]] Handler request_id(RequestIdOptions options = {});

// Parses W3C `traceparent` (a new trace when absent or invalid), stores it on
// the context and echoes this server's span as `traceparent` on the response.
// With a tracer that is on, the request is a server span named
// "METHOD /route/:pattern" with the HTTP semantic conventions' attributes
// (method, route, path, status, client address, user agent) and error status
// for 5xx answers, ended when the response is given (a deferred one too).
[[nodiscard]] Handler trace(observe::Tracer tracer = {});

// One JSON line per request after it finished: method, path, route, status,
// bytes, duration_ms, remote, request_id, trace_id.
[[nodiscard]] Handler access_log(observe::Logger logger);

// Prometheus metrics of every request: http_requests_total{method,route,status},
// http_request_duration_seconds{method,route} (histogram) and
// http_requests_in_flight. `route` is the matched template ("/v1/tasks/:id"),
// "unmatched" for 404/405, so label values stay a bounded set.
// `registry` is not owned: it must outlive the router.
[[nodiscard]] Handler metrics(observe::Registry& registry);

// Token-bucket rate limiting (Gin's rate.Limiter middleware), globally or per
// client. Over the limit: 429 {"error":{"code":"rate_limited"}} with
// Retry-After (seconds); every answer carries RateLimit-Limit,
// RateLimit-Remaining and RateLimit-Reset (IETF draft headers). Memory is
// bounded by max_keys (least recently seen clients are forgotten).
struct RateLimitOptions {
  double per_second = 100;  // sustained rate per key
  double burst = 100;       // requests that may arrive at once
  enum class Key : std::uint8_t { global, client_ip, header } key = Key::client_ip;
  std::string header{};  // for Key::header (e.g. "X-API-Key"); absent: the client's IP
  std::size_t max_keys = 10000;
  // ratelimit_rejected_total{route}; not owned: must outlive the router.
  observe::Registry* metrics = nullptr;
  // For tests: where "now" comes from (default: the system clock).
  std::function<std::chrono::sys_time<std::chrono::milliseconds>()> clock{};
};
// Throws std::invalid_argument for a rate <= 0 or a burst < 1.
[[nodiscard]] Handler rate_limit(RateLimitOptions options);

// Route groups by path prefix, for middleware installed on the whole router
// (from a config file): `prefixes` are matched against the matched route's
// template (the raw path when no route matched), on segment boundaries —
// "/v1/tasks" covers "/v1/tasks" and "/v1/tasks/:id", not "/v1/tasksx"; "/"
// covers everything.
[[nodiscard]] bool path_under(std::string_view path, std::string_view prefix);
// Runs `middleware` for requests under one of `prefixes`; others skip it.
[[nodiscard]] Handler only_under(std::vector<std::string> prefixes, Handler middleware);
// Runs `middleware` for every request except those under one of `prefixes`.
[[nodiscard]] Handler except_under(std::vector<std::string> prefixes, Handler middleware);

// Concurrency limiter (a semaphore around the rest of the chain): at most
// `max_in_flight` requests run it at once. One more waits up to `max_wait` for
// a slot — only when its chain runs on the blocking pool, since waiting on an
// I/O thread would stall every connection of that thread; non-blocking routes
// are answered at once. The wait also ends when the request's deadline passes
// (timeout middleware) or the server shuts down. Then: 503
// {"error":{"code":"concurrency_limited"}} with Retry-After. A streamed
// response holds its slot only while the handler sets it up. Waiters occupy
// blocking-pool threads: keep max_in_flight well below the pool's size, or
// the pool's own 503 `overloaded` answers first.
//
// `adaptive`: the limit is not fixed but follows the latency of what it
// admits (guard::AdaptiveLimit, after Envoy's adaptive concurrency filter),
// between `min_in_flight` and `max_in_flight`: it grows while latency stays
// near the unloaded one and shrinks as requests start to queue, so under
// overload the excess is shed at once (no waiting) and what is admitted keeps
// its latency. It learns the unloaded latency at start and every 250 windows
// from a window of requests admitted with at most `min_in_flight` in flight
// (holding the limit there only when load keeps them from coming). On a blocking route
// the middleware decides only after the request has waited for the pool, on
// a pool thread: there ServerConfig::adaptive_blocking is the better door.
// An adaptive limit times each request from its arrival (its first byte).
struct ConcurrencyLimitOptions {
  std::size_t max_in_flight = 64;
  std::chrono::milliseconds max_wait{0};
  std::chrono::seconds retry_after{1};
  std::string name = "default";  // the `limiter` label
  // concurrency_rejected_total, concurrency_in_flight, concurrency_limit;
  // not owned: must outlive the router.
  observe::Registry* metrics = nullptr;
  bool adaptive = false;
  std::size_t min_in_flight = 4;  // adaptive only: the floor, and the measuring limit
};
// Throws std::invalid_argument when max_in_flight is 0, or when adaptive with
// a max_wait or min_in_flight outside 1..max_in_flight.
[[nodiscard]] Handler concurrency_limit(ConcurrencyLimitOptions options);

// Bearer-token authentication (RFC 6750): a request must carry
// `Authorization: Bearer <one of tokens>`. Tokens are compared in constant
// time. Missing or wrong: 401 {"error":{"code":"unauthorized"}} with
// `WWW-Authenticate: Bearer realm="<realm>"` (plus error="invalid_token" when
// a token was given). Combine with except_under() to leave /healthz open.
struct BearerAuthOptions {
  std::vector<std::string> tokens;
  std::string realm = "errand";
  // auth_rejected_total{reason}; not owned: must outlive the router.
  observe::Registry* metrics = nullptr;
};
// Throws std::invalid_argument when there is no token or one is empty.
[[nodiscard]] Handler bearer_auth(BearerAuthOptions options);

struct TimeoutOptions {
  std::chrono::milliseconds after{std::chrono::seconds(30)};
  int status = 408;  // e.g. 503 or 504 if you prefer
  std::string code = "timeout";
  std::string message = "request timed out";
};
// Sets the context's deadline and requests its stop_token when it passes. A
// blocking route is answered at the deadline even if its handler keeps running
// (the handler's late response is dropped); a non-blocking handler cannot be
// interrupted, but if it returns after the deadline its response is replaced.
[[nodiscard]] Handler timeout(TimeoutOptions options);

}  // namespace errand::http::mw
