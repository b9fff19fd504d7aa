// The adaptive limit against a model of a server with a fixed capacity: up
// to `capacity` requests in flight each take 10 ms; beyond it they queue, so
// latency grows with in-flight / capacity. The limit must settle where
// latency is within 2x of the unloaded, from above and below, stay within its
// bounds, and follow a capacity that changes.
#include <gtest/gtest.h>

#include <algorithm>
#include <stdexcept>

#include "errand/guard/adaptive_limit.hpp"

namespace errand::guard {
namespace {

using namespace std::chrono_literals;

// Latency of a request admitted with `in_flight` requests (itself included).
std::chrono::nanoseconds model(std::size_t in_flight, std::size_t capacity) {
  const double queued =
      std::max(1.0, static_cast<double>(in_flight) / static_cast<double>(capacity));
  return std::chrono::duration_cast<std::chrono::nanoseconds>(10ms * queued);
}

// Offered load above any limit: every slot the limit allows is used.
std::size_t run(AdaptiveLimit& l, std::size_t capacity, int windows) {
  for (int i = 0; i < windows * 32; ++i) l.sample(model(l.limit(), capacity), l.limit());
  return l.limit();
}

// The limit at the end of a window in which it was not measuring.
std::size_t settled(AdaptiveLimit& l, std::size_t capacity, int windows) {
  run(l, capacity, windows);
  while (l.measuring()) run(l, capacity, 1);
  return l.limit();
}

// Light traffic (one request at a time) teaches the unloaded latency without
// the limit ever dropping: nothing is shed to learn it.
TEST(AdaptiveLimit, LearnsTheUnloadedLatencyFromLightTrafficAlone) {
  AdaptiveLimit l({.min_limit = 3, .initial_limit = 20});
  EXPECT_TRUE(l.measuring());
  for (int i = 0; i < 32; ++i) {
    EXPECT_EQ(l.limit(), 20U);
    l.sample(10ms, 1);
  }
  EXPECT_FALSE(l.measuring());
  EXPECT_DOUBLE_EQ(l.unloaded_latency(), 0.010);
  EXPECT_EQ(l.limit(), 20U);
}

// Under load from the start, the samples it needs do not come by
// themselves: after four windows of others it holds the limit at min_limit
// to get them, then lets it go.
TEST(AdaptiveLimit, UnderLoadItHoldsTheLimitAtTheFloorToLearn) {
  AdaptiveLimit l({.min_limit = 3, .initial_limit = 20});
  for (int i = 0; i < 32 * 4 - 1; ++i) l.sample(50ms, 20);
  EXPECT_EQ(l.limit(), 20U);
  l.sample(50ms, 20);
  EXPECT_TRUE(l.holding());
  EXPECT_EQ(l.limit(), 3U);
  for (int i = 0; i < 32; ++i) l.sample(10ms, 3);
  EXPECT_FALSE(l.measuring());
  EXPECT_FALSE(l.holding());
  EXPECT_DOUBLE_EQ(l.unloaded_latency(), 0.010);
  EXPECT_EQ(l.limit(), 20U);
}

TEST(AdaptiveLimit, SettlesWhereLatencyIsWithinTwiceTheUnloaded) {
  for (const std::size_t capacity : {10U, 50U, 200U}) {
    for (const std::size_t initial : {4U, 900U}) {
      AdaptiveLimit l({.min_limit = 1, .max_limit = 1000, .initial_limit = initial});
      const auto limit = settled(l, capacity, 600);
      EXPECT_GE(limit, capacity) << "uses the capacity; from " << initial;
      EXPECT_LE(model(limit, capacity), 20ms) << "capacity " << capacity << " limit " << limit;
    }
  }
}

TEST(AdaptiveLimit, StaysWithinItsBoundsAndKeepsAnUnusedLimit) {
  AdaptiveLimit fast({.min_limit = 8, .max_limit = 40, .initial_limit = 20});
  EXPECT_EQ(settled(fast, 1000, 200), 40U);  // never above the cap however fast
  AdaptiveLimit slow({.min_limit = 8, .max_limit = 40, .initial_limit = 20});
  for (int i = 0; i < 32; ++i) slow.sample(10ms, 8);       // unloaded: 10 ms
  for (int i = 0; i < 32 * 100; ++i) slow.sample(1s, 40);  // then everything is slow
  EXPECT_EQ(slow.limit(), 8U);                             // never below the floor
  AdaptiveLimit idle({.min_limit = 1, .max_limit = 100, .initial_limit = 30});
  for (int i = 0; i < 32; ++i) idle.sample(10ms, 1);
  for (int i = 0; i < 32 * 50; ++i) idle.sample(50ms, 2);  // two in flight of 30 allowed
  EXPECT_EQ(idle.limit(), 30U) << "nothing learned from a limit nobody reaches";
}

TEST(AdaptiveLimit, FollowsACapacityThatChanges) {
  AdaptiveLimit l({.min_limit = 1, .max_limit = 1000, .initial_limit = 4});
  EXPECT_GE(settled(l, 50, 400), 50U);
  // A slow dependency: capacity 10. The limit follows it down...
  const auto during = settled(l, 10, 400);
  EXPECT_LE(model(during, 10), 20ms) << during;
  // ...and back up once it recovers.
  const auto after = settled(l, 50, 800);
  EXPECT_GE(after, 50U);
  EXPECT_LE(model(after, 50), 20ms) << after;
}

// Requests admitted before the limit was held (long ones, holding the
// measuring slots) cannot measure the unloaded latency; the measurement
// gives up after four more windows of them rather than shed everything for
// good.
TEST(AdaptiveLimit, AMeasurementThatGetsNoUsableSampleEnds) {
  AdaptiveLimit l({.min_limit = 2, .initial_limit = 20});
  for (int i = 0; i < 32 * 4; ++i) l.sample(1s, 10);
  EXPECT_TRUE(l.holding());
  for (int i = 0; i < 32 * 4 - 1; ++i) l.sample(1s, 10);
  EXPECT_TRUE(l.measuring());
  l.sample(1s, 10);
  EXPECT_FALSE(l.measuring());
  EXPECT_FALSE(l.holding());
  EXPECT_EQ(l.limit(), 20U);
}

TEST(AdaptiveLimit, RefusesNonsense) {
  EXPECT_THROW(AdaptiveLimit({.min_limit = 0}), std::invalid_argument);
  EXPECT_THROW(AdaptiveLimit({.min_limit = 10, .max_limit = 5}), std::invalid_argument);
  EXPECT_THROW(AdaptiveLimit({.buffer = -0.1}), std::invalid_argument);
  EXPECT_THROW(AdaptiveLimit({.smoothing = 0}), std::invalid_argument);
  EXPECT_THROW(AdaptiveLimit({.window = 0}), std::invalid_argument);
}

}  // namespace
}  // namespace errand::guard
