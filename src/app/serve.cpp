#include "errand/app/serve.hpp"

#include <iostream>

#include "errand/http/middleware.hpp"
#include "errand/store/memory_store.hpp"

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

std::shared_ptr<store::Store> open_store(const Config& config) {
  if (config.store == Config::StoreKind::memory) return std::make_shared<store::MemoryStore>();
  return std::make_shared<store::SqliteStore>(config.sqlite);
}

int serve(const Config& config) {
  auto logger = observe::Logger::to_stderr(config.log_level);
  try {
    auto store = open_store(config);
    tasks::RuntimeConfig rc;
    rc.queues = config.queues;
    rc.shutdown_grace = config.task_grace;
    rc.retention = config.retention;
    rc.logger = logger;
    tasks::Runtime runtime(store, rc);
    http::Server server(config.http, logger);
    install_standard_middleware(server.router(), config, logger);
    install_health_routes(server);
    runtime.start();
    const int code = server.run();  // HTTP drains first: no new work arrives
    runtime.stop();                 // then running tasks finish or go back to pending
    return code;
  } catch (const std::exception& e) {
    logger.error("server failed", {{"error", e.what()}});
    std::cerr << "errand: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace errand::app
