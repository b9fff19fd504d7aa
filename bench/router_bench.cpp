// Router matching cost, for a route table shaped like a real API.
#include <benchmark/benchmark.h>

#include "errand/http/router.hpp"

namespace {

using errand::http::Context;
using errand::http::Router;

void noop(Context&) {}

Router& api_router() {
  static Router router;
  static const bool built = [] {
    Router& r = router;
    r.get("/healthz", noop);
    r.get("/readyz", noop);
    r.get("/metrics", noop);
    auto v1 = r.group("/v1");
    v1.get("/tasks", noop);
    v1.post("/tasks", noop);
    v1.get("/tasks/:id", noop);
    v1.post("/tasks/:id/cancel", noop);
    v1.post("/tasks/:id/retry", noop);
    v1.get("/tasks/:id/events", noop);
    v1.get("/queues", noop);
    v1.post("/queues/:name/pause", noop);
    v1.post("/queues/:name/resume", noop);
    for (int i = 0; i < 50; ++i) v1.get("/resource" + std::to_string(i) + "/:id", noop);
    r.get("/ui/*path", noop);
    r.freeze();
    return true;
  }();
  (void)built;
  return router;
}

void BM_MatchStatic(benchmark::State& state) {
  auto& r = api_router();
  for (auto _ : state) benchmark::DoNotOptimize(r.match("GET", "/healthz"));
}
BENCHMARK(BM_MatchStatic);

void BM_MatchParam(benchmark::State& state) {
  auto& r = api_router();
  for (auto _ : state) benchmark::DoNotOptimize(r.match("POST", "/v1/tasks/01HXYZABCDEF/cancel"));
}
BENCHMARK(BM_MatchParam);

void BM_MatchCatchAll(benchmark::State& state) {
  auto& r = api_router();
  for (auto _ : state) benchmark::DoNotOptimize(r.match("GET", "/ui/assets/app.js"));
}
BENCHMARK(BM_MatchCatchAll);

void BM_MatchPercentEncoded(benchmark::State& state) {
  auto& r = api_router();
  for (auto _ : state) benchmark::DoNotOptimize(r.match("GET", "/v1/resource7/a%20b"));
}
BENCHMARK(BM_MatchPercentEncoded);

void BM_NotFound(benchmark::State& state) {
  auto& r = api_router();
  for (auto _ : state) benchmark::DoNotOptimize(r.match("GET", "/v1/nothing/here"));
}
BENCHMARK(BM_NotFound);

}  // namespace

BENCHMARK_MAIN();
