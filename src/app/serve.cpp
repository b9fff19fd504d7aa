#include "errand/app/serve.hpp"

#include <iostream>

#include "errand/http/middleware.hpp"

namespace errand::app {

void install_standard_middleware(http::Router& router, const Config& config,
                                 const observe::Logger& logger) {
  router.use(http::mw::request_id());
  router.use(http::mw::trace());
  router.use(http::mw::access_log(logger));
  router.use(http::mw::recovery());
  router.use(http::mw::timeout({.after = config.request_timeout}));
}

void install_health_routes(http::Server& server) {
  server.router().get("/healthz", [](http::Context& c) { c.json(200, {{"status", "ok"}}); });
  server.router().get("/readyz", [&server](http::Context& c) {
    if (server.draining()) {
      c.error(503, "draining", "server is shutting down");
      return;
    }
    c.json(200, {{"status", "ready"}});
  });
}

int serve(const Config& config) {
  auto logger = observe::Logger::to_stderr(config.log_level);
  try {
    http::Server server(config.http, logger);
    install_standard_middleware(server.router(), config, logger);
    install_health_routes(server);
    return server.run();
  } catch (const std::exception& e) {
    logger.error("server failed", {{"error", e.what()}});
    std::cerr << "errand: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace errand::app
