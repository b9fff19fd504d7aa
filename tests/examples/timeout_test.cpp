// examples/timeout: a request past its deadline is answered 408; a long task
// stops when cancelled.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "examples/example_process.hpp"
#include "support/wait.hpp"

namespace errand::test {
namespace {

TEST(TimeoutExample, OverrunningWorkIs408AndQuickWorkIs200) {
  ExampleProcess app("timeout");
  ASSERT_NE(app.port(), 0) << app.log();
  EXPECT_EQ(app.get("/slow/work?ms=10").status, 200);
  const auto late = app.get("/slow/work?ms=30000");  // the deadline is 500 ms
  EXPECT_EQ(late.status, 408);
  EXPECT_EQ(late.json().at("error").at("code").as_string(), "timeout");
  EXPECT_EQ(app.stop(), 0);  // the handler saw its stop token: nothing left running
}

TEST(TimeoutExample, ALongTaskStopsWhenCancelled) {
  ExampleProcess app("timeout");
  ASSERT_NE(app.port(), 0) << app.log();
  const auto r = app.post("/crunch", "");
  ASSERT_EQ(r.status, 202) << r.body;
  const std::string id(r.json().at("id").as_string());
  ASSERT_TRUE(
      eventually([&] { return app.get("/v1/tasks/" + id).json().at("state") == "active"; }));
  const auto cancel = app.post("/v1/tasks/" + id + "/cancel", "");
  EXPECT_EQ(cancel.status, 202) << cancel.body;
  ASSERT_TRUE(
      eventually([&] { return app.get("/v1/tasks/" + id).json().at("state") == "cancelled"; }));
  EXPECT_NE(app.log().find("\"crunch stopped\""), std::string::npos);
  EXPECT_EQ(app.stop(), 0);
}

}  // namespace
}  // namespace errand::test
