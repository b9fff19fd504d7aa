#pragma once
// `errand serve` as a library call: the App with the standard middleware, the
// configured traffic control, the built-in task types and the REST task API.

#include "errand/app/config.hpp"
#include "errand/http/server.hpp"

#include <chrono>

namespace errand::app {

// request_id, trace, access_log, recovery, timeout: the stack every errand
// server runs, outermost first. `tracer` makes each request a server span.
void install_standard_middleware(http::Router& router, std::chrono::milliseconds request_timeout,
                                 const observe::Logger& logger, const observe::Tracer& tracer = {});

// GET /metrics: the Prometheus text format, or OpenMetrics 1.0 with trace
// exemplars on the histograms when the scraper asks for
// application/openmetrics-text (Prometheus does with exemplar storage on).
[[nodiscard]] http::Handler metrics_handler(const observe::Registry& metrics);

// GET /healthz: the process is up. GET /readyz: 503 `draining` while
// draining, 503 `store_unavailable` while `store` (if given) reports it cannot
// take writes (Redis unreachable).
void install_health_routes(http::Server& server, const store::Store* store = nullptr);

// The configured rate limits, bearer authentication and concurrency limits,
// in that order (inside the standard stack: a request is timed, logged and
// counted even when refused).
void install_traffic_control(http::Router& router, const Config& config,
                             observe::Registry& metrics);

// validate()s the configuration (exit code 2 and a message on stderr when it
// is refused), opens the store, starts the task runtime and the server, runs
// until SIGINT/SIGTERM, drains. Returns the exit code: 0, 1 when the server
// could not run (a store it cannot open, a port in use), 2 for a bad config.
[[nodiscard]] int serve(const Config& config);

}  // namespace errand::app
