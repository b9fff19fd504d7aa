#pragma once
// `errand serve`: the HTTP server with the standard middleware stack and the
// operational routes. More routes (the REST API) arrive with later layers.

#include "errand/app/config.hpp"
#include "errand/http/server.hpp"

#include <memory>

namespace errand::app {

// request_id, trace, access_log, recovery, timeout: the stack every errand
// server runs, outermost first.
void install_standard_middleware(http::Router& router, const Config& config,
                                 const observe::Logger& logger);

// GET /healthz: the process is up. GET /readyz: 503 while draining.
void install_health_routes(http::Server& server);

// The store the config names: SqliteStore (durable) or MemoryStore. Throws
// store::StoreError when the file cannot be used.
[[nodiscard]] std::shared_ptr<store::Store> open_store(const Config& config);

// Opens the store, starts the task runtime and the server, runs it until SIGINT/SIGTERM, drains.
// Returns the exit code.
[[nodiscard]] int serve(const Config& config);

}  // namespace errand::app
