#include <gtest/gtest.h>

#include "errand/app/config.hpp"

namespace errand::app {
namespace {

using std::chrono::milliseconds;

TEST(Config, ParsesDurations) {
  EXPECT_EQ(parse_duration("250ms"), milliseconds(250));
  EXPECT_EQ(parse_duration("10s"), milliseconds(10'000));
  EXPECT_EQ(parse_duration("10"), milliseconds(10'000));
  EXPECT_EQ(parse_duration("2m"), milliseconds(120'000));
  EXPECT_EQ(parse_duration("1h"), milliseconds(3'600'000));
  for (const char* bad : {"", "s", "-1s", "1.5s", "10x", "ms10", "99999999999999999999s"}) {
    EXPECT_THROW((void)parse_duration(bad), std::invalid_argument) << bad;
  }
}

TEST(Config, ParsesQueues) {
  const auto q = parse_queues("default=4,mail=2:3");
  ASSERT_EQ(q.size(), 2U);
  EXPECT_EQ(q[0].name, "default");
  EXPECT_EQ(q[0].concurrency, 4U);
  EXPECT_EQ(q[0].weight, 1U);
  EXPECT_EQ(q[1].name, "mail");
  EXPECT_EQ(q[1].concurrency, 2U);
  EXPECT_EQ(q[1].weight, 3U);
  for (const char* bad :
       {"", "default", "default=0", "a=1,a=2", "a b=1", "x=2:0", "x=two", "x=1,", "x=5000"}) {
    EXPECT_THROW((void)parse_queues(bad), std::invalid_argument) << bad;
  }
}

TEST(Config, ParsesListenAddresses) {
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
}  // namespace errand::app
