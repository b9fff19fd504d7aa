// examples/periodic_sync: a job every 200 ms, and a clean stop on SIGTERM.
#include <gtest/gtest.h>

#include "examples/example_process.hpp"
#include "support/wait.hpp"

namespace errand::test {
namespace {

TEST(PeriodicSyncExample, SyncsOnEveryTickAndStopsCleanly) {
  ExampleProcess app("periodic_sync", {"SYNC_EVERY_MS=200"});
  ASSERT_NE(app.port(), 0) << app.log();
  ASSERT_TRUE(eventually([&] { return app.get("/syncs").json().at("syncs").as_int64() >= 3; }));
  EXPECT_EQ(app.stop(), 0);
  // Nothing synced after the runtime said it stopped.
  const auto lines = app.log_lines();
  bool stopped = false;
  for (const auto& l : lines) {
    if (l.find("\"task runtime stopped\"") != std::string::npos) stopped = true;
    if (stopped) {
      EXPECT_EQ(l.find("\"inventory synced\""), std::string::npos) << l;
    }
  }
  EXPECT_TRUE(stopped) << app.log();
}

}  // namespace
}  // namespace errand::test
