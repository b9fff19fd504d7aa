#pragma once
// `errand serve`: the HTTP server with the standard middleware stack and the
// operational routes. More routes (the REST API) arrive with later layers.

#include "errand/app/config.hpp"
#include "errand/http/server.hpp"

#include <chrono>

namespace errand::app {

// request_id, trace, access_log, recovery, timeout: the stack every errand
// server runs, outermost first.
void install_standard_middleware(http::Router& router, std::chrono::milliseconds request_timeout,
                                 const observe::Logger& logger);

// GET /healthz: the process is up. GET /readyz: 503 while draining.
void install_health_routes(http::Server& server);

// The configured rate limits, bearer authentication and concurrency limits,
// in that order (inside the standard stack: a request is timed, logged and
// counted even when refused).
void install_traffic_control(http::Router& router, const Config& config,
                             observe::Registry& metrics);

// Opens the store, starts the task runtime and the server, runs it until SIGINT/SIGTERM, drains.
// Returns the exit code.
[[nodiscard]] int serve(const Config& config);

}  // namespace errand::app
