// The server bench/wrk/overload.sh overloads: errand's standard middleware
// and one CPU-bound route, so its capacity is set by its cores, as a service
// doing real work per request is, not by the load generator beside it.
//
//   GET /work?us=N  burns N µs of its thread's CPU (default 1000) on the
//                   blocking pool and answers a small JSON body
//   GET /metrics    concurrency_limit, concurrency_in_flight, ...
//
// Usage: errand_overload_server LIMIT [blocking_threads=16]
//   LIMIT: none | N (a fixed limit) | adaptive[:MAX] (the concurrency limit
//   middleware, on /work) | pool (ServerConfig::adaptive_blocking).
// Prints "port P" on stderr once it listens.
#include <charconv>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include <fmt/format.h>

#include "errand/app/config.hpp"
#include "errand/app/serve.hpp"
#include "errand/http/middleware.hpp"
#include "errand/http/server.hpp"
#include "errand/observe/metrics.hpp"

namespace {

double thread_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

std::optional<std::size_t> positive(std::string_view s) {
  std::size_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size() || v == 0) return std::nullopt;
  return v;
}

// A command-line number: exit 2 when it is not one.
std::size_t to_size(std::string_view s) {
  const auto v = positive(s);
  if (!v) {
    std::fprintf(stderr, "not a positive number: %.*s\n", static_cast<int>(s.size()), s.data());
    std::exit(2);
  }
  return *v;
}

// A query parameter in 1..max (`fallback` when absent); 400 when it is not.
std::optional<std::size_t> query_number(errand::http::Context& c, const char* name,
                                        std::size_t fallback, std::size_t max) {
  const auto text = c.query(name);
  if (!text) return fallback;
  const auto v = positive(*text);
  if (!v || *v > max) {
    c.error(400, "invalid_query", fmt::format("{} must be a number in 1..{}", name, max));
    return std::nullopt;
  }
  return v;
}

// Connections handed out first come, first served, as a database pool does
// (std::counting_semaphore promises no order, and starves some callers).
class Downstream {
 public:
  explicit Downstream(std::uint64_t slots) : slots_(slots) {}
  void acquire() {
    std::unique_lock lock(mu_);
    const auto ticket = next_++;
    cv_.wait(lock, [&] { return ticket < served_ + slots_; });
  }
  void release() {
    {
      const std::lock_guard lock(mu_);
      ++served_;
    }
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::uint64_t slots_;
  std::uint64_t next_ = 0;    // tickets given
  std::uint64_t served_ = 0;  // calls finished
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: errand_overload_server none|N|adaptive[:MAX] [blocking_threads]\n");
    return 2;
  }
  const std::string_view limit = argv[1];
  errand::app::Config config;
  config.app.http.port = 0;
  config.app.http.threads = 1;
  if (argc > 2) config.app.http.blocking_threads = static_cast<unsigned>(to_size(argv[2]));
  config.app.http.adaptive_blocking = limit == "pool";
  auto logger = errand::observe::Logger::to_stderr(errand::observe::Level::warn);
  errand::observe::Registry metrics;
  errand::http::Server server(config.app.http, logger);
  auto& router = server.router();
  errand::app::install_standard_middleware(router, config.app.request_timeout, logger);
  errand::app::install_health_routes(server);
  router.get("/metrics", errand::app::metrics_handler(metrics));

  metrics.gauge_callback("blocking_limit", "The blocking pool's adaptive limit", {}, [&server] {
    return errand::observe::Registry::Samples{
        {{}, static_cast<double>(server.stats().blocking_limit)}};
  });
  auto work = router.group("/work");
  errand::http::Handler work_limit;
  if (limit != "none" && limit != "pool") {
    errand::http::mw::ConcurrencyLimitOptions o{.name = "work", .metrics = &metrics};
    if (limit.starts_with("adaptive")) {
      o.adaptive = true;
      o.max_in_flight = 1000;
      if (limit.size() > 9 && limit[8] == ':') o.max_in_flight = to_size(limit.substr(9));
    } else {
      o.max_in_flight = to_size(limit);
    }
    work_limit = errand::http::mw::concurrency_limit(o);
    work.use(work_limit);
  }
  work.get("/",
           [](errand::http::Context& c) {
             const auto us = query_number(c, "us", 1000, 1'000'000);
             if (!us) return;
             const double budget = static_cast<double>(*us) * 1e-6;
             const double start = thread_cpu_seconds();
             std::uint64_t spins = 0;
             while (thread_cpu_seconds() - start < budget) ++spins;
             c.json(200, {{"spins", spins}});
           },
           {.blocking = true});

  // A downstream with 4 connections (a database pool, say): each call holds
  // one for `ms`; more callers wait for one. Latency grows with concurrency
  // while the CPU stays idle.
  static Downstream downstream(4);
  auto db = router.group("/db");
  if (limit != "none" && limit != "pool") db.use(work_limit);
  db.get("/",
         [](errand::http::Context& c) {
           const auto ms = query_number(c, "ms", 5, 10'000);
           if (!ms) return;
           downstream.acquire();
           std::this_thread::sleep_for(std::chrono::milliseconds(*ms));
           downstream.release();
           c.json(200, {{"ok", true}});
         },
         {.blocking = true});

  server.start();
  std::fprintf(stderr, "port %u\n", static_cast<unsigned>(server.port()));
  return server.run();
}
