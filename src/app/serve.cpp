#include "errand/app/serve.hpp"

#include <sys/resource.h>

#include <iostream>

#include <boost/json.hpp>

#include "errand/app/app.hpp"
#include "errand/app/builtin_tasks.hpp"
#include "errand/app/dashboard.hpp"
#include "errand/app/task_api.hpp"
#include "errand/http/middleware.hpp"
#include "errand/store/memory_store.hpp"
#include "errand/store/redis_store.hpp"

namespace errand::app {

void install_standard_middleware(http::Router& router, std::chrono::milliseconds request_timeout,
                                 const observe::Logger& logger, const observe::Tracer& tracer) {
  router.use(http::mw::request_id());
  router.use(http::mw::trace(tracer));
  router.use(http::mw::access_log(logger));
  router.use(http::mw::recovery());
  router.use(http::mw::timeout({.after = request_timeout}));
}

http::Handler metrics_handler(const observe::Registry& metrics) {
  return [&metrics](http::Context& c) {
    // Any mention will do: Prometheus lists OpenMetrics first (with q-values)
    // when it can take exemplars, and plain text after it.
    const auto accept = c.header("accept").value_or("");
    const auto format = accept.find("application/openmetrics-text") != std::string_view::npos
                            ? observe::Registry::Format::openmetrics
                            : observe::Registry::Format::prometheus;
    c.text(200, metrics.expose(format), std::string(observe::Registry::content_type(format)));
  };
}

void install_health_routes(http::Server& server, const store::Store* store) {
  server.router().get("/healthz", [](http::Context& c) { c.json(200, {{"status", "ok"}}); });
  server.router().get("/readyz", [&server, store](http::Context& c) {
    if (server.draining()) {
      c.error(503, "draining", "server is shutting down");
      return;
    }
    if (store != nullptr) {
      if (auto h = store->health(); !h.ready) {
        c.error(503, h.full ? "store_full" : "store_unavailable", h.reason);
        return;
      }
    }
    c.json(200, {{"status", "ready"}});
  });
}

void install_traffic_control(http::Router& router, const Config& config,
                             observe::Registry& metrics) {
  for (const auto& rule : config.rate_limits) {
    auto o = rule.options;
    o.metrics = &metrics;
    router.use(http::mw::only_under({rule.prefix}, http::mw::rate_limit(std::move(o))));
  }
  if (!config.auth_tokens.empty()) {
    // The dashboard's assets hold no data: the page asks for the token and
    // sends it with each API call itself. "/" only redirects to it.
    auto open = config.auth_public;
    open.emplace_back("/ui");
    auto auth = http::mw::except_under(
        std::move(open),
        http::mw::bearer_auth({.tokens = config.auth_tokens, .metrics = &metrics}));
    router.use([auth = std::move(auth)](http::Context& c) {
      if (c.route() == "/") {
        c.next();
      } else {
        auth(c);
      }
    });
  }
  for (const auto& rule : config.concurrency_limits) {
    auto o = rule.options;
    o.metrics = &metrics;
    router.use(http::mw::only_under({rule.prefix}, http::mw::concurrency_limit(std::move(o))));
  }
}

namespace {

// Every connection is a file descriptor, and so are the store's files and
// the listener: the soft limit (1024 on many systems) is raised to what
// --max-connections needs, up to the hard limit; short of that, a warning
// says which limit to raise (accept then fails with EMFILE, logged and retried).
void raise_fd_limit(std::size_t max_connections, const observe::Logger& logger) {
  constexpr rlim_t kSpare = 256;  // store files, the listener, clients of http.request
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return;
  const rlim_t want = static_cast<rlim_t>(max_connections) + kSpare;
  if (lim.rlim_cur >= want) return;
  const rlim_t raised = lim.rlim_max == RLIM_INFINITY ? want : std::min(want, lim.rlim_max);
  if (raised > lim.rlim_cur) {
    rlimit next = lim;
    next.rlim_cur = raised;
    if (setrlimit(RLIMIT_NOFILE, &next) == 0) lim = next;
  }
  if (lim.rlim_cur < want) {
    logger.warn(
        "the open-file limit is below what --max-connections needs; raise it (ulimit -n, "
        "LimitNOFILE=) or lower --max-connections",
        {{"limit", static_cast<std::uint64_t>(lim.rlim_cur)},
         {"needed", static_cast<std::uint64_t>(want)}});
  }
}

}  // namespace

int serve(const Config& config) {
  try {
    validate(config);
  } catch (const std::invalid_argument& e) {
    std::cerr << "errand: " << e.what() << "\n";
    return 2;
  }
  auto logger = observe::Logger::to_stderr(config.log_level, config.log_format);
  raise_fd_limit(config.app.http.max_connections, logger);
  try {
    AppOptions o = config.app;
    using Role = Config::Role;
    o.tasks.role = config.role == Role::api      ? "api"
                   : config.role == Role::worker ? "worker"
                                                 : "all";
    if (config.role == Role::api) o.tasks.queues.clear();
    if (config.store == Config::StoreKind::memory) o.store = std::make_shared<store::MemoryStore>();
    if (config.store == Config::StoreKind::redis) {
      auto r = config.redis;
      r.logger = logger;
      auto redis = std::make_shared<store::RedisStore>(std::move(r));
      logger.info("store: redis", {{"url", store::redacted(config.redis.endpoint)},
                                   {"prefix", config.redis.key_prefix}});
      for (const auto& warning : redis->durability_warnings()) logger.warn(warning);
      o.store = std::move(redis);
    }
    o.logger = logger;
    const std::string role_name = o.tasks.role;
    App app(std::move(o));
    auto circuits =
        register_builtin_tasks(app.tasks(), config.smtp, &app.metrics(), config.breaker);
    for (const auto& s : config.schedules) {
      tasks::TaskSpec spec{s.type, boost::json::parse(s.payload), {}};
      if (!s.queue.empty()) spec.options.queue = s.queue;
      try {
        if (s.kind == "every") {
          app.tasks().every(s.name, s.every, std::move(spec));
        } else {
          app.tasks().cron(s.name, s.cron, std::move(spec));
        }
      } catch (const std::exception& e) {  // an unknown task type, say
        std::cerr << "errand: --schedule " << s.name << ": " << e.what() << "\n";
        return 2;
      }
    }
    install_traffic_control(app.http(), config, app.metrics());
    if (config.role != Role::worker) {
      install_task_api(app.http(), app.tasks(), {.circuits = circuits, .stats = app.task_stats()});
      install_dashboard(app.http(), {.trace_url = config.ui_trace_url});
    }
    logger.info("node", {{"id", app.tasks().owner()}, {"role", role_name}});
    return app.run();  // HTTP drains first, then running tasks finish or go back to pending
  } catch (const std::exception& e) {
    logger.error("server failed", {{"error", e.what()}});
    std::cerr << "errand: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace errand::app
