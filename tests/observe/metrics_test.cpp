#include <gtest/gtest.h>
#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <thread>
#include <vector>

#include "errand/observe/metrics.hpp"

namespace errand::observe {
namespace {

TEST(Metrics, ExposesCountersGaugesAndHistogramsInTextFormat) {
  Registry r;
  auto& requests = r.counter("http_requests_total", "HTTP requests", {"method", "status"});
  requests.with({"GET", "200"}).inc();
  requests.with({"GET", "200"}).inc(2);
  requests.with({"POST", "500"}).inc();
  r.gauge("in_flight", "Requests in flight").get().set(3);
  auto& d = r.histogram("duration_seconds", "Durations", {"route"}, {0.1, 1});
  d.with({"/a"}).observe(0.05);
  d.with({"/a"}).observe(0.5);
  d.with({"/a"}).observe(5);
  r.gauge_callback("tasks", "Tasks per state", {"state"}, [] {
    return Registry::Samples{{{"pending"}, 7}, {{"dead"}, 0}};
  });

  const std::string text = r.expose();
  for (const char* line : {
           "# TYPE http_requests_total counter\n",
           "http_requests_total{method=\"GET\",status=\"200\"} 3\n",
           "http_requests_total{method=\"POST\",status=\"500\"} 1\n",
           "# TYPE in_flight gauge\nin_flight 3\n",
           "# TYPE duration_seconds histogram\n",
           "duration_seconds_bucket{route=\"/a\",le=\"0.1\"} 1\n",
           "duration_seconds_bucket{route=\"/a\",le=\"1\"} 2\n",
           "duration_seconds_bucket{route=\"/a\",le=\"+Inf\"} 3\n",
           "duration_seconds_sum{route=\"/a\"} 5.55\n",
           "duration_seconds_count{route=\"/a\"} 3\n",
           "tasks{state=\"pending\"} 7\n",
       }) {
    EXPECT_NE(text.find(line), std::string::npos) << line << "\n---\n" << text;
  }
}

TEST(Metrics, OpenMetricsCarriesExemplarsAndNamesCounterFamiliesWithoutTotal) {
  Registry r;
  r.counter("jobs_total", "Jobs \"done\"").get().inc();
  auto& d = r.histogram("duration_seconds", "Durations", {"route"}, {0.1, 1});
  d.with({"/a"}).observe(0.05, "4bf92f3577b34da6a3ce929d0e0e4736");
  d.with({"/a"}).observe(0.07);  // no trace: the bucket keeps its exemplar
  d.with({"/a"}).observe(5, "0af7651916cd43dd8448eb211c80319c");
  const auto om = r.expose(Registry::Format::openmetrics);
  EXPECT_NE(om.find("# HELP jobs Jobs \\\"done\\\"\n# TYPE jobs counter\njobs_total 1\n"),
            std::string::npos)
      << om;
  EXPECT_NE(om.find("duration_seconds_bucket{route=\"/a\",le=\"0.1\"} 2 # "
                    "{trace_id=\"4bf92f3577b34da6a3ce929d0e0e4736\"} 0.05 "),
            std::string::npos)
      << om;
  EXPECT_NE(om.find("duration_seconds_bucket{route=\"/a\",le=\"1\"} 2\n"), std::string::npos);
  EXPECT_NE(om.find("duration_seconds_bucket{route=\"/a\",le=\"+Inf\"} 3 # "
                    "{trace_id=\"0af7651916cd43dd8448eb211c80319c\"} 5 "),
            std::string::npos)
      << om;
  EXPECT_TRUE(om.ends_with("# EOF\n"));
  // The Prometheus text format has neither exemplars nor # EOF.
  const auto text = r.expose();
  EXPECT_EQ(text.find("trace_id"), std::string::npos);
  EXPECT_EQ(text.find("# EOF"), std::string::npos);
  EXPECT_NE(text.find("# TYPE jobs_total counter\njobs_total 1\n"), std::string::npos);
  EXPECT_EQ(Registry::content_type(Registry::Format::openmetrics),
            "application/openmetrics-text; version=1.0.0; charset=utf-8");
}

TEST(Metrics, LabelValuesAreEscaped) {
  Registry r;
  r.counter("c_total", "with \\ and\nnewline", {"v"}).with({"a\"b\\c\nd"}).inc();
  const std::string text = r.expose();
  EXPECT_NE(text.find(R"(c_total{v="a\"b\\c\nd"} 1)"), std::string::npos) << text;
  EXPECT_NE(text.find("# HELP c_total with \\\\ and\\nnewline\n"), std::string::npos) << text;
}

TEST(Metrics, CardinalityIsBounded) {
  Registry r;
  auto& f = r.counter("paths_total", "Paths", {"path"}, 3);
  for (int i = 0; i < 100; ++i) f.with({"/p/" + std::to_string(i)}).inc();
  const std::string text = r.expose();
  EXPECT_NE(text.find("paths_total{path=\"other\"} 97"), std::string::npos) << text;
  EXPECT_NE(text.find("metrics_series_overflow_total 97"), std::string::npos) << text;
}

TEST(Metrics, ASeriesIsFoundByItsValuesHoweverTheyAreSpelled) {
  Registry r;
  auto& f = r.counter("pairs_total", "Pairs", {"a", "b"});
  const std::string a = "x";
  auto& first = f.with({a, "y"});
  EXPECT_EQ(&first, &f.with({std::string_view("xy").substr(0, 1), "y"}));
  EXPECT_NE(&first, &f.with({"x", "yy"}));
  EXPECT_NE(&first, &f.with({"xy", ""}));
  // Missing values are empty: the short form and the padded one are one series.
  EXPECT_EQ(&f.with({"x"}), &f.with({"x", ""}));
  EXPECT_NE(&f.with({"x"}), &first);
}

TEST(Metrics, BadNamesAndConflictingRegistrationsAreRefused) {
  Registry r;
  EXPECT_THROW(r.counter("9lives", "x"), std::invalid_argument);
  EXPECT_THROW(r.counter("ok_total", "x", {"le"}), std::invalid_argument);
  auto& a = r.counter("same_total", "x", {"a"});
  EXPECT_EQ(&a, &r.counter("same_total", "x", {"a"}));
  EXPECT_THROW(r.gauge("same_total", "x", {"a"}), std::invalid_argument);
  EXPECT_THROW(r.counter("same_total", "x", {"b"}), std::invalid_argument);
}

TEST(Metrics, ConcurrentUpdatesAreCounted) {
  Registry r;
  auto& c = r.counter("hits_total", "Hits", {"worker"});
  auto& h = r.histogram("lat_seconds", "Latency");
  {
    std::vector<std::jthread> threads;
    threads.reserve(4);
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < 10000; ++i) {
          c.with({t % 2 == 0 ? "even" : "odd"}).inc();
          h.get().observe(0.001);
          if (i % 1000 == 0) (void)r.expose();
        }
      });
    }
  }
  EXPECT_EQ(c.with({"even"}).value() + c.with({"odd"}).value(), 40000);
  EXPECT_EQ(h.get().snapshot().count, 40000U);
}

// Puts the calling thread on the first CPU it may run on: threads pinned
// together write one stripe, and take turns on that CPU mid-write.
void pin_to_one_cpu() {
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  ASSERT_EQ(sched_getaffinity(0, sizeof allowed, &allowed), 0);
  int first = 0;
  while (first < CPU_SETSIZE && !CPU_ISSET(first, &allowed)) ++first;
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(first, &one);
  ASSERT_EQ(pthread_setaffinity_np(pthread_self(), sizeof one, &one), 0);
}

TEST(Metrics, ThreadsThatShareAStripeLoseNoUpdate) {
  // More threads than stripes, all on one CPU so that they share a stripe
  // and are preempted between reading and writing it: every add must count.
  Registry r;
  auto& c = r.counter("shared_total", "Shared").get();
  auto& g = r.gauge("shared_gauge", "Shared").get();
  auto& h = r.histogram("shared_seconds", "Shared", {}, {0.5}).get();
  const auto threads = static_cast<int>(detail::stripe_count() * 2 + 1);
  {
    std::vector<std::jthread> pool;
    pool.reserve(static_cast<std::size_t>(threads));
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&] {
        pin_to_one_cpu();
        for (int i = 0; i < 20000; ++i) {
          c.inc();
          g.add(2);
          h.observe(i % 2 == 0 ? 0.25 : 1.0);
        }
      });
    }
  }
  EXPECT_EQ(c.value(), threads * 20000);
  EXPECT_EQ(g.value(), threads * 40000);
  const auto s = h.snapshot();
  EXPECT_EQ(s.count, static_cast<std::uint64_t>(threads) * 20000);
  EXPECT_EQ(s.cumulative.at(0), static_cast<std::uint64_t>(threads) * 10000);
  EXPECT_DOUBLE_EQ(s.sum, threads * 10000 * 1.25);
}

TEST(Metrics, AGaugeSetFromAnyThreadReadsWhatWasSet) {
  Registry r;
  auto& g = r.gauge("level", "Level").get();
  g.add(5);
  std::jthread([&] { g.set(3); }).join();
  EXPECT_EQ(g.value(), 3);
  g.add(-4);
  EXPECT_EQ(g.value(), -1);
  std::jthread([&] { g.add(10); }).join();
  g.set(0);
  EXPECT_EQ(g.value(), 0);
}

TEST(Metrics, AGaugeSetFromSeveralThreadsOnlyEverReadsAValueSet) {
  // A scrape between sets from different cores must read a value that was
  // set (give or take the adders' +1 -1 pairs under way), not a sum of
  // stripes from before one set and after another; and the adds racing the
  // sets are never lost.
  Registry r;
  auto& g = r.gauge("depth", "Depth").get();
  constexpr int kAdders = 2;
  std::atomic<bool> done{false};
  std::atomic<int> bad{0};
  const auto near_a_set_value = [](double v) {
    for (int set = 0; set <= 4000; set += 1000) {
      if (v >= set - kAdders && v <= set + kAdders) return true;
    }
    return false;
  };
  std::jthread reader([&] {
    while (!done.load()) {
      if (!near_a_set_value(g.value())) bad.fetch_add(1);
    }
  });
  {
    std::vector<std::jthread> pool;
    pool.reserve(4 + kAdders);
    for (int t = 1; t <= 4; ++t) {
      pool.emplace_back([&g, t] {
        for (int i = 0; i < 20000; ++i) g.set(t * 1000);
      });
    }
    for (int t = 0; t < kAdders; ++t) {
      pool.emplace_back([&g] {
        for (int i = 0; i < 20000; ++i) {
          g.add(1);
          g.add(-1);
        }
      });
    }
  }
  done = true;
  reader.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_TRUE(near_a_set_value(g.value())) << g.value();
  g.set(7);
  EXPECT_EQ(g.value(), 7);
}

TEST(Metrics, SeriesCreatedWhileOthersAreFoundAreEachOneSeries) {
  // Lookups without the lock run while another thread publishes: each finds
  // the one series for its values, never another's, never a half-made one.
  Registry r;
  auto& f = r.counter("made_total", "Made", {"k", "n"});
  constexpr int kSeries = 500;
  std::atomic<int> made{0};
  std::atomic<int> wrong{0};
  {
    std::jthread maker([&] {
      for (int i = 0; i < kSeries; ++i) {
        f.with({"k", std::to_string(i)}).inc(i + 1);
        made.store(i + 1, std::memory_order_release);
      }
    });
    std::vector<std::jthread> finders;
    finders.reserve(2);
    for (int t = 0; t < 2; ++t) {
      finders.emplace_back([&] {
        while (made.load(std::memory_order_acquire) < kSeries) {
          const int n = made.load(std::memory_order_acquire);
          if (n == 0) continue;
          const int i = n - 1;
          // Made and counted: found, and it is the series of i (i + 1).
          if (f.with({"k", std::to_string(i)}).value() != i + 1) wrong.fetch_add(1);
        }
      });
    }
  }
  EXPECT_EQ(wrong.load(), 0);
  for (int i = 0; i < kSeries; ++i) {
    EXPECT_EQ(f.with({"k", std::to_string(i)}).value(), i + 1) << i;
  }
}

TEST(Metrics, SeriesPastTheLockFreeIndexAreStillFoundAsOne) {
  // The index holds 4,096 series; a family allowed more finds the rest
  // under its lock, the same series every time, from any thread.
  Registry r;
  auto& f = r.counter("many_total", "Many", {"k"}, 6000);
  std::vector<Counter*> first;
  first.reserve(6000);
  for (int i = 0; i < 6000; ++i) first.push_back(&f.with({std::to_string(i)}));
  std::jthread([&] {
    for (int i = 0; i < 6000; ++i) {
      auto& again = f.with({std::to_string(i)});
      EXPECT_EQ(&again, first[static_cast<std::size_t>(i)]) << i;
      again.inc();
    }
  }).join();
  EXPECT_EQ(f.with({"5999"}).value(), 1);
  EXPECT_EQ(f.with({"0"}).value(), 1);
  EXPECT_EQ(r.expose().find("many_total{k=\"other\"}"), std::string::npos);
}

}  // namespace
}  // namespace errand::observe
