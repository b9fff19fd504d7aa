// The test harness's own redis-server: it starts on a free port, answers,
// keeps its data across a graceful or a hard restart with AOF (appendfsync
// always), and loses it without persistence. The Redis store's tests build
// on these promises.
#include <gtest/gtest.h>

#include "support/redis_server.hpp"

namespace errand::test {
namespace {

TEST(RedisServerHarness, StartsAnswersAndStopsOnItsOwnPort) {
  RedisServer redis;
  EXPECT_NE(redis.port(), 0);
  EXPECT_EQ(redis.url(), "redis://127.0.0.1:" + std::to_string(redis.port()));
  EXPECT_EQ(redis.command("PING"), "PONG");
  EXPECT_EQ(redis.command("SET k v"), "OK");
  EXPECT_EQ(redis.command("GET k"), "v");
  EXPECT_EQ(redis.command("GET missing"), std::nullopt);
  redis.stop();
  EXPECT_FALSE(redis.running());
  EXPECT_THROW((void)redis.command("PING"), std::runtime_error);
}

TEST(RedisServerHarness, TwoServersDoNotShareData) {
  RedisServer a;
  RedisServer b;
  EXPECT_NE(a.port(), b.port());
  (void)a.command("SET only-in-a 1");
  EXPECT_EQ(b.command("GET only-in-a"), std::nullopt);
}

TEST(RedisServerHarness, AppendOnlyDataSurvivesAKillAndRestart) {
  RedisServer redis({.append_only = true});
  EXPECT_EQ(redis.command("SET kept yes"), "OK");
  redis.kill();  // SIGKILL: only what is in the AOF comes back
  redis.start();
  EXPECT_EQ(redis.command("GET kept"), "yes");
}

TEST(RedisServerHarness, WithoutPersistenceARestartForgets) {
  RedisServer redis;
  EXPECT_EQ(redis.command("SET gone soon"), "OK");
  redis.stop();
  redis.start();
  EXPECT_EQ(redis.command("GET gone"), std::nullopt);
}

}  // namespace
}  // namespace errand::test
