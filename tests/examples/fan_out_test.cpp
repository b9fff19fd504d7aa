// examples/fan_out: three calls at once, every result and every error, in the
// request and as a durable task group.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "examples/example_process.hpp"
#include "support/wait.hpp"

namespace errand::test {
namespace {

TEST(FanOutExample, InTheRequestEveryResultAndEveryErrorComeBack) {
  ExampleProcess app("fan_out");
  ASSERT_NE(app.port(), 0) << app.log();
  const auto ada = app.get("/profile/ada").json();
  EXPECT_EQ(ada.at("results").as_array().size(), 3U);
  EXPECT_TRUE(ada.at("errors").as_array().empty());

  const auto bob = app.get("/profile/bob").json();
  EXPECT_EQ(bob.at("results").as_array().size(), 2U);
  ASSERT_EQ(bob.at("errors").as_array().size(), 1U);
  EXPECT_EQ(bob.at("errors").at(0).at("part").as_string(), "recommendations");
  EXPECT_NE(std::string(bob.at("errors").at(0).at("error").as_string()).find("no history"),
            std::string::npos);
  EXPECT_EQ(app.stop(), 0);
}

TEST(FanOutExample, AsATaskGroupTheCompletionGetsEveryResultAndError) {
  ExampleProcess app("fan_out");
  ASSERT_NE(app.port(), 0) << app.log();
  const auto r = app.post("/reports/bob", "");
  ASSERT_EQ(r.status, 202) << r.body;
  const std::string completion(r.json().at("completion_id").as_string());
  boost::json::value task;
  ASSERT_TRUE(eventually([&] {
    const auto got = app.get("/v1/tasks/" + completion);
    if (got.status != 200) return false;  // 404 until every member is final
    task = got.json();
    return task.at("state") == "succeeded";
  })) << boost::json::serialize(task);
  const auto& result = task.at("result");
  EXPECT_EQ(result.at("results").as_array().size(), 2U);
  ASSERT_EQ(result.at("errors").as_array().size(), 1U);
  EXPECT_NE(std::string(result.at("errors").at(0).at("error").as_string()).find("no history"),
            std::string::npos);
  EXPECT_EQ(app.stop(), 0);
}

}  // namespace
}  // namespace errand::test
