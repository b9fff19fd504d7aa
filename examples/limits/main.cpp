// Gin:    sem := make(chan struct{}, 2)                      // at most 2 reports at once
//         limiter := rate.NewLimiter(1, 5)                    // 1/s, bursts of 5 → 429
// errand: http::mw::concurrency_limit and http::mw::rate_limit on route groups.
//         Over the limit is an answer, not a queue that grows: 503 or 429 with
//         Retry-After, and both counted in GET /metrics.
//
//   curl -s 'localhost:8080/heavy/report?ms=3000' &  curl -s 'localhost:8080/heavy/report?ms=3000'
//   & curl -si 'localhost:8080/heavy/report'         # 503 concurrency_limited for i in 1 2 3 4 5
//   6; do curl -so /dev/null -w '%{http_code} ' localhost:8080/api/search; done   # 200 x5, 429
#include <thread>

#include <errand/errand.hpp>

#include "../example_env.hpp"

int main() {
  errand::App app(example::options("limits"));
  auto& metrics = app.metrics();

  // A semaphore around an expensive route. It runs on the blocking pool, so
  // sleeping (or a slow database) does not hold an I/O thread.
  auto heavy = app.http().group("/heavy");
  heavy.use(errand::http::mw::concurrency_limit(
      {.max_in_flight = 2, .name = "report", .metrics = &metrics}));
  heavy.get("/report",
            [](errand::http::Context& c) {
              const auto until =
                  std::chrono::steady_clock::now() +
                  std::chrono::milliseconds(example::query_int(c, "ms", 500, 0, 10'000));
              while (std::chrono::steady_clock::now() < until && !c.stop_requested()) {
                std::this_thread::sleep_for(std::chrono::milliseconds(10));
              }
              c.json(200, {{"report", "ready"}});
            },
            {.blocking = true});

  // A token bucket per client IP: 1 request/s with bursts of 5.
  auto api = app.http().group("/api");
  api.use(errand::http::mw::rate_limit({.per_second = 1,
                                        .burst = 5,
                                        .key = errand::http::mw::RateLimitOptions::Key::client_ip,
                                        .metrics = &metrics}));
  api.get("/search", [](errand::http::Context& c) {
    c.json(200, {{"results", boost::json::array{"errand", "gin"}}});
  });
  return app.run();
}
