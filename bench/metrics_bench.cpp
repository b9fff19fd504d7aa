// What the metrics middleware does per request, from one thread and from
// several at once: find the series by its labels, then count and time it.
// With several threads every one of them writes the same series, the case a
// shared atomic turns into cache-line traffic between cores.
#include <benchmark/benchmark.h>

#include "errand/observe/metrics.hpp"

namespace {

using errand::observe::Registry;

Registry& registry() {
  static Registry r;
  return r;
}

// The request's path through the metrics middleware: the in-flight gauge up,
// the counter and the histogram found by their labels and updated, the gauge
// down.
void BM_RequestMetrics(benchmark::State& state) {
  auto& r = registry();
  auto& total = r.counter("bench_requests_total", "x", {"method", "route", "status"});
  auto& duration = r.histogram("bench_request_duration_seconds", "x", {"method", "route"});
  auto& in_flight = r.gauge("bench_in_flight", "x").get();
  for (int i = 0; i < 20; ++i) {  // other routes, as a real table has
    (void)total.with({"GET", "/r" + std::to_string(i), "200"});
    (void)duration.with({"GET", "/r" + std::to_string(i)});
  }
  for (auto _ : state) {
    in_flight.add(1);
    total.with({"POST", "/v1/tasks", "202"}).inc();
    duration.with({"POST", "/v1/tasks"}).observe(0.0004);
    in_flight.add(-1);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RequestMetrics)->Threads(1)->Threads(2)->Threads(4)->UseRealTime();

void BM_CounterInc(benchmark::State& state) {
  auto& c = registry().counter("bench_inc_total", "x").get();
  for (auto _ : state) c.inc();
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CounterInc)->Threads(1)->Threads(2)->Threads(4)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
