// examples/limits: at most 2 reports in flight (the third is 503), and a token
// bucket of 5 on /api/search (the sixth quick request is 429).
#include <gtest/gtest.h>

#include <future>

#include "examples/example_process.hpp"
#include "support/wait.hpp"

namespace errand::test {
namespace {

TEST(LimitsExample, ASemaphoreLimitedRouteAnswers503PastTwoInFlight) {
  ExampleProcess app("limits");
  ASSERT_NE(app.port(), 0) << app.log();
  auto slow = [&] {
    return std::async(std::launch::async, [&] { return app.get("/heavy/report?ms=4000").status; });
  };
  auto a = slow();
  auto b = slow();
  ASSERT_TRUE(eventually([&] {
    return app.get("/metrics").body.find(R"(concurrency_in_flight{limiter="report"} 2)") !=
           std::string::npos;
  }));
  const auto third = app.get("/heavy/report?ms=0");
  EXPECT_EQ(third.status, 503);
  EXPECT_EQ(third.json().at("error").at("code").as_string(), "concurrency_limited");
  EXPECT_EQ(third.header("Retry-After"), "1");
  EXPECT_EQ(a.get(), 200);
  EXPECT_EQ(b.get(), 200);
  EXPECT_EQ(app.get("/heavy/report?ms=0").status, 200);  // slots came back
  EXPECT_EQ(app.get("/heavy/report?ms=lots").status, 400);
  EXPECT_EQ(app.stop(), 0);
}

TEST(LimitsExample, ATokenBucketRouteAnswers429PastItsBurst) {
  ExampleProcess app("limits");
  ASSERT_NE(app.port(), 0) << app.log();
  int ok = 0;
  int limited = 0;
  // 10 requests in far less than the 5 s the bucket needs to refill 5 tokens.
  for (int i = 0; i < 10; ++i) {
    const auto r = app.get("/api/search");
    if (r.status == 200) ++ok;
    if (r.status == 429) {
      ++limited;
      EXPECT_FALSE(r.header("Retry-After").empty());
      EXPECT_EQ(r.header("RateLimit-Limit"), "5");
    }
  }
  EXPECT_GE(ok, 5);
  EXPECT_GE(limited, 1);
  EXPECT_EQ(ok + limited, 10);
  EXPECT_NE(app.get("/metrics").body.find(R"(ratelimit_rejected_total{route="/api/search"})"),
            std::string::npos);
  EXPECT_EQ(app.stop(), 0);
}

}  // namespace
}  // namespace errand::test
