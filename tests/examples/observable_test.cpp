// examples/observable: hooks around every attempt, custom metrics next to the
// task metrics, and the request's trace id on the task's log lines.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "examples/example_process.hpp"
#include "support/wait.hpp"

namespace errand::test {
namespace {

TEST(ObservableExample, HooksMetricsAndTraceIdsAroundATaskType) {
  ExampleProcess app("observable");
  ASSERT_NE(app.port(), 0) << app.log();
  const std::string trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
  const auto r = app.post("/orders", R"({"amount_cents":1250})",
                          {{"traceparent", "00-" + trace_id + "-00f067aa0ba902b7-01"}});
  ASSERT_EQ(r.status, 202) << r.body;
  EXPECT_EQ(r.json().at("trace_id").as_string(), trace_id);

  // The handler counts the order before the attempt ends and is counted: wait for both.
  const std::string executed =
      R"(task_execution_count{type="order.process",queue="default",outcome="succeeded"} 1)";
  std::string metrics;
  ASSERT_TRUE(eventually([&] {
    metrics = app.get("/metrics").body;
    return metrics.find(R"(orders_processed_total{result="ok"} 1)") != std::string::npos &&
           metrics.find(executed) != std::string::npos;
  })) << metrics;
  EXPECT_NE(metrics.find(R"(order_amount_dollars_bucket{le="50"} 1)"), std::string::npos);

  // Each of these lines is there once and carries the trace id.
  ASSERT_TRUE(
      eventually([&] { return app.log().find("\"attempt finished\"") != std::string::npos; }));
  for (const std::string msg :
       {"order accepted", "attempt starting", "charging card", "attempt finished"}) {
    int seen = 0;
    for (const auto& line : app.log_lines()) {
      if (line.find("\"msg\":\"" + msg + "\"") == std::string::npos) continue;
      ++seen;
      EXPECT_EQ(boost::json::parse(line).at("trace_id").as_string(), trace_id) << line;
    }
    EXPECT_EQ(seen, 1) << msg;
  }
  EXPECT_EQ(app.post("/orders", R"({"amount_cents":-5})").status, 400);
  EXPECT_EQ(app.stop(), 0);
}

}  // namespace
}  // namespace errand::test
