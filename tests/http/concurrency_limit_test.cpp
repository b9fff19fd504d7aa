// The concurrency limiter over real sockets: slots, bounded waiting, deadlines.
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <semaphore>
#include <thread>

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

namespace errand::http {
namespace concurrency_limit_test {

// An adaptive limit in front of a handler that can serve 2 at a time (the
// rest queue inside it), under 12 concurrent clients: it sheds with 503 +
// Retry-After, and its limit falls from where it starts (20) toward what the
// handler can take, as the latency of what it admits says.
TEST(AdaptiveConcurrencyLimit, ShedsTheExcessAndLearnsTheCapacity) {
  auto cfg = TestServer::defaults();
  cfg.blocking_threads = 16;
  TestServer srv(cfg);
  observe::Registry metrics;
  std::counting_semaphore<2> capacity(2);
  srv.router().use(mw::concurrency_limit({.max_in_flight = 64,
                                          .name = "adaptive",
                                          .metrics = &metrics,
                                          .adaptive = true,
                                          .min_in_flight = 2}));
  srv.router().get("/work",
                   [&](Context& c) {
                     capacity.acquire();
                     std::this_thread::sleep_for(2ms);  // the work itself
                     capacity.release();
                     c.text(200, "done");
                   },
                   {.blocking = true});
  srv.start();
  std::atomic<int> ok{0}, shed{0}, other{0};
  {
    std::vector<std::jthread> clients;
    for (int t = 0; t < 12; ++t) {
      clients.emplace_back([&] {
        Client c(srv.port());
        for (int i = 0; i < 150; ++i) {
          const auto r = c.request("GET", "/work");
          if (r.status == 200) {
            ++ok;
          } else if (r.status == 503 && r.header("Retry-After") == "1" &&
                     r.json().at("error").at("code").as_string() == "concurrency_limited") {
            ++shed;
          } else {
            ++other;
          }
        }
      });
    }
  }
  EXPECT_EQ(other.load(), 0);
  EXPECT_GT(ok.load(), 0);
  EXPECT_GT(shed.load(), 0) << "12 clients for a handler that takes 2";
  const auto limit = metrics.gauge("concurrency_limit", "", {"limiter"}).with({"adaptive"}).value();
  EXPECT_GE(limit, 2);
  EXPECT_LT(limit, 20) << "learned that latency grows past a few in flight";
}

}  // namespace concurrency_limit_test
}  // namespace errand::http
