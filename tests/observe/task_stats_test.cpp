// Per-second task statistics: the ring, its window, quantiles from log
// buckets, and one node's figures merged into another's.
#include "errand/observe/task_stats.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace errand::observe {
namespace {

using namespace std::chrono_literals;
using TimePoint = TaskStats::TimePoint;

const TimePoint t0{std::chrono::seconds(1'800'000'000)};

TEST(TaskStats, CountsEachSecondOfTheWindowPerQueue) {
  TaskStats stats(10s);
  stats.record("mail", t0, true, 3ms, 20ms);
  stats.record("mail", t0 + 200ms, false, 0ms, 1ms);
  stats.record("mail", t0 + 2s, true, 0ms, 1ms);
  stats.record("bulk", t0 + 2s, true, 0ms, 1ms);
  const auto w = stats.window(t0 + 2s, 3s);
  ASSERT_EQ(w.size(), 2U);
  const auto& mail = w.at("mail");
  ASSERT_EQ(mail.size(), 3U);  // t0, t0+1, t0+2
  EXPECT_EQ(mail[0].succeeded, 1U);
  EXPECT_EQ(mail[0].failed, 1U);
  EXPECT_EQ(mail[1].succeeded + mail[1].failed, 0U);
  EXPECT_EQ(mail[2].succeeded, 1U);
  EXPECT_EQ(mail[0].wait[2], 1U);  // 3 ms: [2, 4)
  EXPECT_EQ(mail[0].run[5], 1U);   // 20 ms: [16, 32)
  EXPECT_EQ(w.at("bulk")[2].succeeded, 1U);
}

// A slot is reused a window later: what it held is gone, not added to.
TEST(TaskStats, ForgetsWhatIsOlderThanTheWindow) {
  TaskStats stats(10s);
  stats.record("q", t0, true, 0ms, 0ms);
  stats.record("q", t0 + 10s, true, 0ms, 0ms);  // the same slot
  auto w = stats.window(t0 + 10s, 10s);
  EXPECT_EQ(w.at("q").back().succeeded, 1U);
  EXPECT_EQ(w.at("q").front().succeeded, 0U);  // t0+1 .. t0+10: t0 is out
  w = stats.window(t0 + 25s, 10s);             // nothing within
  for (const auto& s : w.at("q")) EXPECT_EQ(s.succeeded, 0U);
  EXPECT_EQ(stats.window(t0, 1h).at("q").size(), 10U);  // at most the window
}

TEST(TaskStats, KeepsAtMostMaxQueuesApart) {
  TaskStats stats(10s, 3);
  for (const char* q : {"a", "b", "c", "d"}) stats.record(q, t0, true, 0ms, 0ms);
  const auto w = stats.window(t0, 1s);
  ASSERT_EQ(w.size(), 3U);
  EXPECT_EQ(w.at("(other)")[0].succeeded, 2U);  // c and d
}

TEST(TaskStats, AnswersQuantilesPerSecondAsBucketBounds) {
  TaskStats stats(10s);
  for (int i = 0; i < 19; ++i) stats.record("q", t0, true, 1ms, 10ms);  // [8, 16)
  stats.record("q", t0, true, 1ms, 1000ms);                             // [512, 1024)
  const auto v = TaskStats::to_json(stats.window(t0 + 1s, 2s), t0 + 1s, 2s);
  const auto& q = v.at("queues").at(0);
  EXPECT_EQ(v.at("start").as_int64(), 1'800'000'000);
  EXPECT_EQ(q.at("name").as_string(), "q");
  EXPECT_EQ(q.at("succeeded"), (boost::json::array{20, 0}));
  EXPECT_EQ(q.at("run_p50_ms").at(0).as_int64(), 16);
  EXPECT_EQ(q.at("run_p95_ms").at(0).as_int64(), 16);  // 19 of 20 are within 16 ms
  EXPECT_EQ(q.at("wait_p50_ms").at(0).as_int64(), 2);
  EXPECT_TRUE(q.at("run_p50_ms").at(1).is_null());  // no attempts that second

  // With few attempts the p95 is the slowest: one slow task of two shows.
  TaskStats few(10s);
  few.record("q", t0, true, 0ms, 2ms);
  few.record("q", t0, true, 0ms, 500ms);
  const auto f = TaskStats::to_json(few.window(t0, 1s), t0, 1s);
  EXPECT_EQ(f.at("queues").at(0).at("run_p95_ms").at(0).as_int64(), 512);
  EXPECT_EQ(f.at("queues").at(0).at("run_p50_ms").at(0).as_int64(), 4);
}

// One node's recent seconds, encoded, add into another's window; a node a
// second behind lands on the right seconds; foreign text is ignored.
TEST(TaskStats, MergesAnotherNodesFigures) {
  TaskStats here(60s);
  TaskStats there(60s);
  here.record("q", t0, true, 0ms, 1ms);
  there.record("q", t0, true, 0ms, 1ms);
  there.record("q", t0 - 1s, false, 0ms, 1ms);
  there.record("other", t0, true, 0ms, 1ms);
  const auto encoded = there.encode(t0, 60s);
  auto w = here.window(t0 + 1s, 5s);  // their text is a second old
  TaskStats::merge(encoded, t0 + 1s, 5s, w);
  EXPECT_EQ(w.at("q")[3].succeeded, 2U);  // t0
  EXPECT_EQ(w.at("q")[2].failed, 1U);     // t0 - 1
  ASSERT_EQ(w.at("other").size(), 5U);
  EXPECT_EQ(w.at("other")[3].succeeded, 1U);
  for (const char* bad : {"", "[]", "{\"v\":2}", "{\"v\":1,\"end\":\"x\",\"queues\":{}}",
                          "{\"v\":1,\"end\":1,\"queues\":{\"q\":[[0,1]]}}"}) {
    auto copy = w;
    TaskStats::merge(bad, t0 + 1s, 5s, copy);
    EXPECT_EQ(copy.at("q")[3].succeeded, 2U) << bad;
  }
}

}  // namespace
}  // namespace errand::observe
