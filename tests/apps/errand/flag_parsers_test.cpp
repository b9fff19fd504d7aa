// The text forms of errand serve's flags, config file and environment.
#include <gtest/gtest.h>

#include "flag_parsers.hpp"

namespace errand::cli {
namespace {

using std::chrono::milliseconds;

TEST(FlagParsers, ParsesDurations) {
  EXPECT_EQ(parse_duration("250ms"), milliseconds(250));
  EXPECT_EQ(parse_duration("10s"), milliseconds(10'000));
  EXPECT_EQ(parse_duration("10"), milliseconds(10'000));
  EXPECT_EQ(parse_duration("2m"), milliseconds(120'000));
  EXPECT_EQ(parse_duration("1h"), milliseconds(3'600'000));
  for (const char* bad : {"", "s", "-1s", "1.5s", "10x", "ms10", "99999999999999999999s"}) {
    EXPECT_THROW((void)parse_duration(bad), std::invalid_argument) << bad;
  }
}

TEST(FlagParsers, ParsesSchedules) {
  auto s = parse_schedule("tick=every:30s:demo.noop");
  EXPECT_EQ(s.name, "tick");
  EXPECT_EQ(s.kind, "every");
  EXPECT_EQ(s.every, milliseconds(30'000));
  EXPECT_EQ(s.type, "demo.noop");
  EXPECT_EQ(s.queue, "");
  EXPECT_EQ(s.payload, "{}");
  s = parse_schedule(R"(nightly=cron:0 3 * * *:http.request:hooks:{"url":"http://x:1/a"})");
  EXPECT_EQ(s.kind, "cron");
  EXPECT_EQ(s.cron, "0 3 * * *");
  EXPECT_EQ(s.type, "http.request");
  EXPECT_EQ(s.queue, "hooks");
  EXPECT_EQ(s.payload, R"({"url":"http://x:1/a"})");  // colons and all
  for (const char* bad : {"", "tick", "=every:1s:t", "tick=every:1s", "tick=hourly:1:t",
                          "tick=every:soon:t", "tick=every:1s:"}) {
    EXPECT_THROW((void)parse_schedule(bad), std::invalid_argument) << bad;
  }
}

TEST(FlagParsers, ParsesQueues) {
  const auto q = parse_queues("default=4,mail=2:3");
  ASSERT_EQ(q.size(), 2U);
  EXPECT_EQ(q[0].name, "default");
  EXPECT_EQ(q[0].concurrency, 4U);
  EXPECT_EQ(q[0].weight, 1U);
  EXPECT_EQ(q[1].name, "mail");
  EXPECT_EQ(q[1].concurrency, 2U);
  EXPECT_EQ(q[1].weight, 3U);
  EXPECT_EQ(q[1].prefetch, 0U);
  const auto p = parse_queues("bulk=16:1:32");
  EXPECT_EQ(p[0].prefetch, 32U);
  for (const char* bad : {"", "default", "default=0", "a=1,a=2", "a b=1", "x=2:0", "x=two", "x=1,",
                          "x=5000", "x=1:1:", "x=1:1:9999", "x=1:1:1:1"}) {
    EXPECT_THROW((void)parse_queues(bad), std::invalid_argument) << bad;
  }
}

TEST(FlagParsers, ParsesRateLimitRules) {
  using Key = http::mw::RateLimitOptions::Key;
  auto r = parse_rate_limit("/v1/tasks=100:200");
  EXPECT_EQ(r.prefix, "/v1/tasks");
  EXPECT_EQ(r.options.per_second, 100);
  EXPECT_EQ(r.options.burst, 200);
  EXPECT_EQ(r.options.key, Key::client_ip);
  r = parse_rate_limit("/=0.5:1:global");
  EXPECT_EQ(r.prefix, "/");
  EXPECT_EQ(r.options.per_second, 0.5);
  EXPECT_EQ(r.options.key, Key::global);
  r = parse_rate_limit("/v1=5:10:header:X-API-Key");
  EXPECT_EQ(r.options.key, Key::header);
  EXPECT_EQ(r.options.header, "X-API-Key");
  for (const char* bad :
       {"", "/v1", "v1=1:1", "/v1=1", "/v1=0:1", "/v1=1:0", "/v1=x:1", "/v1=1:1:user",
        "/v1=1:1:header", "/v1=1:1:header:", "/v1=1:1:ip:x", "=1:1", "/v1=-1:5"}) {
    EXPECT_THROW((void)parse_rate_limit(bad), std::invalid_argument) << bad;
  }
}

TEST(FlagParsers, ParsesConcurrencyRulesAndQueueLimits) {
  auto c = parse_concurrency_limit("/v1=32:2s");
  EXPECT_EQ(c.prefix, "/v1");
  EXPECT_EQ(c.options.name, "/v1");
  EXPECT_EQ(c.options.max_in_flight, 32U);
  EXPECT_EQ(c.options.max_wait, milliseconds(2000));
  c = parse_concurrency_limit("/x=1");
  EXPECT_EQ(c.options.max_wait, milliseconds(0));
  EXPECT_FALSE(c.options.adaptive);
  c = parse_concurrency_limit("/v1=adaptive");
  EXPECT_TRUE(c.options.adaptive);
  EXPECT_EQ(c.options.max_in_flight, 1000U);
  EXPECT_EQ(c.options.min_in_flight, 4U);
  c = parse_concurrency_limit("/v1=adaptive:200");
  EXPECT_EQ(c.options.max_in_flight, 200U);
  EXPECT_EQ(parse_concurrency_limit("/v1=adaptive:2").options.min_in_flight, 2U);
  for (const char* bad : {"/v1=0", "/v1=", "/v1=2:forever", "/v1=1:1s:x", "v1=3", "/v1=adaptive:0",
                          "/v1=adaptive:x", "/v1=adaptive:5:1s"}) {
    EXPECT_THROW((void)parse_concurrency_limit(bad), std::invalid_argument) << bad;
  }
  const auto q = parse_queue_limits("mail=1000,default=0");
  EXPECT_EQ(q.at("mail"), 1000U);
  EXPECT_EQ(q.at("default"), 0U);
  for (const char* bad : {"", "mail", "mail=", "mail=x", "a b=1", "mail=-1", "a=1,a=2"}) {
    EXPECT_THROW((void)parse_queue_limits(bad), std::invalid_argument) << bad;
  }
}

TEST(FlagParsers, ParsesListenAddresses) {
  using P = std::pair<std::string, std::uint16_t>;
  EXPECT_EQ(parse_listen("127.0.0.1:8080"), (P{"127.0.0.1", 8080}));
  EXPECT_EQ(parse_listen("[::1]:9"), (P{"::1", 9}));
  EXPECT_EQ(parse_listen(":80"), (P{"0.0.0.0", 80}));
  EXPECT_EQ(parse_listen("localhost:0"), (P{"127.0.0.1", 0}));
  for (const char* bad : {"", "8080", "host:", "h:65536", "h:80x", "h:-1"}) {
    EXPECT_THROW((void)parse_listen(bad), std::invalid_argument) << bad;
  }
}

}  // namespace
}  // namespace errand::cli
