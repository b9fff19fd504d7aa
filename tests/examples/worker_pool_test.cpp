// examples/worker_pool: jobs go to a fixed pool of 3 workers; every result is
// collected by id, and the pool never ran more than 3 at once.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "examples/example_process.hpp"
#include "support/wait.hpp"

namespace errand::test {
namespace {

TEST(WorkerPoolExample, AFixedPoolRunsEveryJobAndTheResultsAreCollected) {
  ExampleProcess app("worker_pool");
  ASSERT_NE(app.port(), 0) << app.log();
  boost::json::array numbers;
  for (int i = 1; i <= 30; ++i) numbers.push_back(i);
  const auto r =
      app.post("/jobs", boost::json::serialize(boost::json::object{{"numbers", numbers}}));
  ASSERT_EQ(r.status, 202) << r.body;
  const auto answer = r.json();
  std::string ids;
  for (const auto& id : answer.at("ids").as_array()) {
    if (!ids.empty()) ids += ",";
    ids += id.as_string();
  }

  boost::json::value results;
  ASSERT_TRUE(eventually([&] {
    results = app.get("/results?ids=" + ids).json();
    return results.at("pending").as_int64() == 0;
  }));
  const auto& list = results.at("results").as_array();
  ASSERT_EQ(list.size(), 30U);
  for (std::size_t i = 0; i < list.size(); ++i) {
    const auto n = static_cast<std::int64_t>(i) + 1;
    EXPECT_EQ(list[i].at("n").as_int64(), n);
    EXPECT_EQ(list[i].at("square").as_int64(), n * n);
  }
  const auto stats = app.get("/stats").json();
  EXPECT_GE(stats.at("max_concurrent").as_int64(), 1);
  EXPECT_LE(stats.at("max_concurrent").as_int64(), 3) << "the pool has 3 workers";

  EXPECT_EQ(app.post("/jobs", R"({"numbers":[]})").status, 400);
  EXPECT_EQ(app.get("/results?ids=01ARZ3NDEKTSV4RRFFQ69G5FAV").status, 404);
  EXPECT_EQ(app.stop(), 0);
}

}  // namespace
}  // namespace errand::test
