#include <gtest/gtest.h>

#include "errand/guard/circuit_breaker.hpp"

namespace errand::guard {
namespace {

using namespace std::chrono_literals;
using State = CircuitBreaker::State;

TEST(CircuitBreaker, OpensAfterThresholdProbesWhenHalfOpenAndCloses) {
  CircuitBreaker b({.failure_threshold = 3, .open_for = 10s});
  CircuitBreaker::TimePoint t{1'700'000'000'000ms};
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(b.allow(t));
    b.failure(t);
  }
  EXPECT_EQ(b.state(t), State::closed);
  b.success();  // a success resets the count
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(b.allow(t));
    b.failure(t);
  }
  EXPECT_EQ(b.state(t), State::open);
  EXPECT_FALSE(b.allow(t + 9999ms));  // fails fast
  EXPECT_EQ(b.retry_in(t + 4s), 6s);
  EXPECT_EQ(b.state(t + 10s), State::half_open);
  EXPECT_TRUE(b.allow(t + 10s));   // the probe
  EXPECT_FALSE(b.allow(t + 10s));  // only one at a time
  b.failure(t + 11s);              // the probe failed: open again
  EXPECT_EQ(b.state(t + 11s), State::open);
  EXPECT_FALSE(b.allow(t + 20s));
  EXPECT_TRUE(b.allow(t + 21s));
  b.success();
  EXPECT_EQ(b.state(t + 21s), State::closed);
  EXPECT_TRUE(b.allow(t + 21s));
  EXPECT_TRUE(b.allow(t + 21s));
}

TEST(CircuitBreakers, OnePerTargetAndBounded) {
  CircuitBreakers set({.failure_threshold = 1, .open_for = 1s}, 2);
  CircuitBreaker::TimePoint t{1'700'000'000'000ms};
  auto* a = set.get("a.example");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(set.get("a.example"), a);
  a->failure(t);
  ASSERT_NE(set.get("b.example"), nullptr);
  EXPECT_TRUE(set.get("b.example")->allow(t));  // b is not affected by a
  EXPECT_EQ(set.get("c.example"), nullptr);     // past the bound
  const auto states = set.states(t);
  ASSERT_EQ(states.size(), 2U);
  EXPECT_EQ(states[0].target, "a.example");
  EXPECT_EQ(states[0].state, State::open);
  EXPECT_EQ(states[0].retry_in, 1s);
  EXPECT_EQ(states[1].state, State::closed);
  EXPECT_EQ(states[1].retry_in, 0ms);
}

}  // namespace
}  // namespace errand::guard
