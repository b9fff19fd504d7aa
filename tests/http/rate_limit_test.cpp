// The rate-limit middleware and its keyed buckets, on a fake clock, in memory.
#include <gtest/gtest.h>

#include "errand/guard/keyed_buckets.hpp"
#include "errand/http/middleware.hpp"
#include "errand/http/router.hpp"
#include "errand/http/testing.hpp"

namespace errand::http {
namespace {

using namespace std::chrono_literals;
using Time = std::chrono::sys_time<std::chrono::milliseconds>;

struct Fixture {
  Fixture(mw::RateLimitOptions o) {
    o.clock = [this] { return now; };
    o.metrics = &metrics;
    router.use(mw::rate_limit(std::move(o)));
    router.get("/x", [](Context& c) { c.text(200, "ok"); });
    router.freeze();
  }
  testing::Response get(Headers h = {}) {
    return testing::perform(router, {"GET", "/x", std::move(h)});
  }
  static std::string header(const testing::Response& r, std::string_view name) {
    for (const auto& [k, v] : r.headers) {
      if (k == name) return v;
    }
    return "";
  }

  Time now{1'700'000'000'000ms};
  observe::Registry metrics;
  Router router;
};

TEST(RateLimit, BurstThenRateThen429WithRetryAfter) {
  Fixture f({.per_second = 2, .burst = 3, .key = mw::RateLimitOptions::Key::global});
  for (int i = 0; i < 3; ++i) {
    const auto r = f.get();
    EXPECT_EQ(r.status, 200) << i;
    EXPECT_EQ(Fixture::header(r, "RateLimit-Limit"), "3");
    EXPECT_EQ(Fixture::header(r, "RateLimit-Remaining"), std::to_string(2 - i));
  }
  auto r = f.get();
  EXPECT_EQ(r.status, 429);
  EXPECT_NE(r.body.find("\"rate_limited\""), std::string::npos) << r.body;
  EXPECT_EQ(Fixture::header(r, "Retry-After"), "1");
  EXPECT_EQ(Fixture::header(r, "RateLimit-Remaining"), "0");
  f.now += 499ms;
  EXPECT_EQ(f.get().status, 429);
  f.now += 1ms;  // one token per 500 ms
  EXPECT_EQ(f.get().status, 200);
  EXPECT_EQ(f.get().status, 429);
  EXPECT_NE(f.metrics.expose().find(R"(ratelimit_rejected_total{route="/x"} 3)"), std::string::npos)
      << f.metrics.expose();
}

TEST(RateLimit, CountedOverALongWindowPerHeaderKey) {
  Fixture f({.per_second = 10,
             .burst = 1,
             .key = mw::RateLimitOptions::Key::header,
             .header = "X-API-Key"});
  int a = 0;
  int b = 0;
  for (int ms = 0; ms < 60'000; ms += 20) {  // a minute of fake time, 50 req/s per key
    a += f.get({{"X-API-Key", "alice"}}).status == 200 ? 1 : 0;
    b += f.get({{"X-API-Key", "bob"}}).status == 200 ? 1 : 0;
    f.now += 20ms;
  }
  EXPECT_EQ(a, 600);  // 10/s for 60 s, each key on its own
  EXPECT_EQ(b, 600);
}

TEST(RateLimit, KeysAreBoundedLeastRecentlyUsedFirst) {
  guard::KeyedBuckets buckets(1, 1, 2);
  const Time t{1'700'000'000'000ms};
  EXPECT_TRUE(buckets.take("a", t).allowed);
  EXPECT_TRUE(buckets.take("b", t).allowed);
  EXPECT_FALSE(buckets.take("a", t).allowed);  // a is now the most recent
  EXPECT_TRUE(buckets.take("c", t).allowed);   // evicts b
  EXPECT_EQ(buckets.size(), 2U);
  EXPECT_FALSE(buckets.take("a", t).allowed);  // a kept its empty bucket
  EXPECT_TRUE(buckets.take("b", t).allowed);   // b was forgotten: a full bucket again
  EXPECT_THROW(mw::rate_limit({.per_second = 0}), std::invalid_argument);
}

}  // namespace
}  // namespace errand::http
