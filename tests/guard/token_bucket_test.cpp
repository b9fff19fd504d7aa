#include <gtest/gtest.h>

#include "errand/guard/token_bucket.hpp"

namespace errand::guard {
namespace {

using namespace std::chrono_literals;
const TokenBucket::TimePoint t0{1'700'000'000'000ms};

TEST(TokenBucket, BurstThenRate) {
  TokenBucket b(10, 3);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(b.try_acquire(t0));
  EXPECT_FALSE(b.try_acquire(t0));
  EXPECT_FALSE(b.try_acquire(t0 + 99ms));
  EXPECT_TRUE(b.try_acquire(t0 + 100ms));
  EXPECT_FALSE(b.try_acquire(t0 + 100ms));
}

TEST(TokenBucket, CountedOverALongWindow) {
  // 5/s for 10 minutes of fake time, asked every 10 ms: 3000 tokens + the burst.
  TokenBucket b(5, 2);
  int granted = 0;
  for (int ms = 0; ms <= 600'000; ms += 10)
    granted += b.try_acquire(t0 + std::chrono::milliseconds(ms)) ? 1 : 0;
  EXPECT_EQ(granted, 3000 + 2);
}

TEST(TokenBucket, ReserveBooksEvenlySpacedTurns) {
  TokenBucket b(2, 1);
  EXPECT_EQ(b.reserve(t0), t0);
  EXPECT_EQ(b.reserve(t0), t0 + 500ms);
  EXPECT_EQ(b.reserve(t0), t0 + 1000ms);
  EXPECT_FALSE(b.try_acquire(t0 + 1000ms));  // booked
  EXPECT_TRUE(b.try_acquire(t0 + 1500ms));
}

TEST(TokenBucket, RejectsNonsense) {
  EXPECT_THROW(TokenBucket(0, 1), std::invalid_argument);
  EXPECT_THROW(TokenBucket(-1, 1), std::invalid_argument);
  EXPECT_THROW(TokenBucket(1, 0.5), std::invalid_argument);
  EXPECT_THROW(TokenBucket(std::numeric_limits<double>::infinity(), 1), std::invalid_argument);
}

}  // namespace
}  // namespace errand::guard
