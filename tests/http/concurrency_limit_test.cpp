// The concurrency limiter over real sockets: slots, bounded waiting, deadlines.
#include <gtest/gtest.h>

#include <atomic>
#include <future>

#include "errand/http/middleware.hpp"
#include "support/http_client.hpp"

namespace errand::http {
namespace concurrency_limit_test {

using namespace std::chrono_literals;
using test::Client;
using test::Gate;
using test::TestServer;

class ConcurrencyLimitTest : public ::testing::Test {
 protected:
  ConcurrencyLimitTest() {
    auto& r = srv.router();
    // /now: no waiting; /queue: waits for a slot up to 30 s; /deadline shares
    // the slot of /hold and waits for it, but its own deadline (200 ms) ends
    // the wait first.
    const auto slow = [this](Context& c) {
      ++started;
      gate.wait(c.stop_token());
      c.text(200, "done");
    };
    auto now = r.group("/now");
    now.use(mw::concurrency_limit({.max_in_flight = 1, .name = "now", .metrics = &metrics}));
    auto queue = r.group("/queue");
    queue.use(mw::concurrency_limit({.max_in_flight = 1, .max_wait = 30s}));
    auto shared = mw::concurrency_limit({.max_in_flight = 1, .max_wait = 30s});
    auto hold = r.group("/hold");
    hold.use(shared);
    auto deadline = r.group("/deadline");
    deadline.use(mw::timeout({.after = 200ms}));
    deadline.use(shared);
    for (auto* g : {&now, &queue, &hold, &deadline}) g->get("/slow", slow, {.blocking = true});
    srv.start();
  }
  ~ConcurrencyLimitTest() override { gate.open(); }

  std::future<test::RawResponse> request(std::string target) {
    return std::async(std::launch::async, [port = srv.port(), target] {
      Client c(port);
      return c.request("GET", target);
    });
  }

  observe::Registry metrics;
  TestServer srv;
  Gate gate;
  std::atomic<int> started{0};
};

TEST_F(ConcurrencyLimitTest, TheRequestPastTheLimitIs503WithRetryAfter) {
  // (The server has two blocking threads: one runs the holder, the other
  // meets the limiter.)
  auto a = request("/now/slow");
  ASSERT_TRUE(test::eventually([&] { return started.load() == 1; }));
  Client c(srv.port());
  const auto r = c.request("GET", "/now/slow");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.json().at("error").at("code").as_string(), "concurrency_limited");
  EXPECT_EQ(r.header("Retry-After"), "1");
  EXPECT_NE(metrics.expose().find(R"(concurrency_in_flight{limiter="now"} 1)"), std::string::npos)
      << metrics.expose();
  gate.open();
  EXPECT_EQ(a.get().status, 200);
  EXPECT_EQ(c.request("GET", "/now/slow").status, 200);
  EXPECT_NE(metrics.expose().find(R"(concurrency_rejected_total{limiter="now"} 1)"),
            std::string::npos);
}

TEST_F(ConcurrencyLimitTest, AWaitingRequestRunsWhenASlotFrees) {
  auto a = request("/queue/slow");
  ASSERT_TRUE(test::eventually([&] { return started.load() == 1; }));
  auto b = request("/queue/slow");
  ASSERT_TRUE(test::eventually([&] { return srv.server().stats().blocking_active == 2; }));
  EXPECT_EQ(started.load(), 1) << "the second request must wait for the slot";
  gate.open();
  EXPECT_EQ(a.get().status, 200);
  EXPECT_EQ(b.get().status, 200);
  EXPECT_EQ(started.load(), 2);
}

TEST_F(ConcurrencyLimitTest, TheRequestDeadlineEndsTheWait) {
  auto a = request("/hold/slow");
  ASSERT_TRUE(test::eventually([&] { return started.load() == 1; }));
  Client c(srv.port());
  const auto r = c.request("GET", "/deadline/slow");  // waits, then its deadline passes
  EXPECT_EQ(r.status, 408);
  EXPECT_EQ(started.load(), 1) << "the handler behind the limiter never ran";
  gate.open();
  EXPECT_EQ(a.get().status, 200);
}

}  // namespace concurrency_limit_test
}  // namespace errand::http
