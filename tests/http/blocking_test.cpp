// Blocking routes and the timeout middleware over real sockets.
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <vector>

#include "errand/http/middleware.hpp"
#include "support/http_client.hpp"

namespace errand::http {
namespace blocking_test {

using namespace std::chrono_literals;
using test::Client;
using test::Gate;
using test::TestServer;

ServerConfig one_io_thread() {
  auto cfg = TestServer::defaults();
  cfg.threads = 1;  // a handler blocking the I/O thread would stall everything
  cfg.blocking_threads = 1;
  cfg.blocking_queue = 1;
  return cfg;
}

class BlockingTest : public ::testing::Test {
 protected:
  BlockingTest() : srv(one_io_thread()) {
    srv.router().get("/healthz", [](Context& c) { c.text(200, "ok"); });
    srv.router().get("/slow",
                     [this](Context& c) {
                       ++started;
                       gate.wait();
                       c.text(200, "done");
                     },
                     {.blocking = true});
    srv.start();
  }
  ~BlockingTest() override { gate.open(); }

  // Sends GET /slow on its own connection and returns the pending answer.
  std::future<int> slow_request() {
    return std::async(std::launch::async, [port = srv.port()] {
      Client c(port);
      return c.request("GET", "/slow").status;
    });
  }

  TestServer srv;
  Gate gate;
  std::atomic<int> started{0};
};

TEST_F(BlockingTest, ASleepingBlockingRouteDoesNotStallOtherRequests) {
  auto slow = slow_request();
  ASSERT_TRUE(test::eventually([&] { return started.load() == 1; }));
  Client c(srv.port());
  for (int i = 0; i < 5; ++i) EXPECT_EQ(c.request("GET", "/healthz").status, 200);
  EXPECT_EQ(slow.wait_for(0s), std::future_status::timeout) << "still blocked";
  gate.open();
  EXPECT_EQ(slow.get(), 200);
}

TEST_F(BlockingTest, AFullBlockingQueueAnswers503WithRetryAfter) {
  auto running = slow_request();
  ASSERT_TRUE(test::eventually([&] { return srv.server().stats().blocking_active == 1; }));
  auto queued = slow_request();
  ASSERT_TRUE(test::eventually([&] { return srv.server().stats().blocking_queued == 1; }));

  Client c(srv.port());
  auto r = c.request("GET", "/slow");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.header("Retry-After"), "1");
  EXPECT_EQ(r.json().at("error").at("code"), "overloaded");
  EXPECT_EQ(srv.server().stats().blocking_rejected, 1U);

  gate.open();
  EXPECT_EQ(running.get(), 200);
  EXPECT_EQ(queued.get(), 200);
  EXPECT_EQ(c.request("GET", "/slow").status, 200);
}

class TimeoutTest : public ::testing::Test {
 protected:
  TimeoutTest() : srv(one_io_thread()) {
    srv.router().use(mw::timeout({.after = 200ms}));
    // Ignores its stop token: the client is answered anyway at the deadline.
    srv.router().get("/stuck",
                     [this](Context& c) {
                       gate.wait();
                       finished = true;
                       c.text(200, "late");
                     },
                     {.blocking = true});
    // Cooperates: returns as soon as its stop token is requested.
    srv.router().get("/polite",
                     [this](Context& c) {
                       saw_deadline = c.deadline().has_value();
                       Gate never;
                       saw_stop = !never.wait(c.stop_token());
                       c.text(200, "late");
                     },
                     {.blocking = true});
    srv.router().get("/quick", [](Context& c) { c.text(200, "quick"); }, {.blocking = true});
    srv.start();
  }
  ~TimeoutTest() override { gate.open(); }

  TestServer srv;
  Gate gate;
  std::atomic<bool> finished{false};
  std::atomic<bool> saw_deadline{false};
  std::atomic<bool> saw_stop{false};
};

TEST_F(TimeoutTest, AnswersAtTheDeadlineWhileTheHandlerIsStillRunning) {
  Client c(srv.port());
  auto r = c.request("GET", "/stuck");
  EXPECT_EQ(r.status, 408);
  EXPECT_EQ(r.json().at("error").at("code"), "timeout");
  EXPECT_FALSE(finished.load()) << "the answer did not wait for the handler";
  gate.open();
  ASSERT_TRUE(test::eventually([&] { return finished.load(); }));
  // The same connection carries on; the late response was dropped.
  EXPECT_EQ(c.request("GET", "/quick").body, "quick");
}

TEST_F(TimeoutTest, TheHandlerSeesItsDeadlineAndStopToken) {
  Client c(srv.port());
  auto r = c.request("GET", "/polite");
  EXPECT_EQ(r.status, 408);
  ASSERT_TRUE(test::eventually([&] { return saw_stop.load(); }));
  EXPECT_TRUE(saw_deadline.load());
}

TEST_F(TimeoutTest, FastRequestsAreUntouched) {
  Client c(srv.port());
  for (int i = 0; i < 5; ++i) EXPECT_EQ(c.request("GET", "/quick").status, 200);
}

// --adaptive-blocking: the door is on the I/O thread, so what is over the
// limit (4 at first) is refused at once, not queued, while pool threads are
// free. Light traffic then teaches it the unloaded latency without a refusal.
TEST(AdaptiveBlocking, RefusesAtTheDoorWhatIsOverTheLimitThenLearns) {
  auto cfg = TestServer::defaults();
  cfg.blocking_threads = 8;
  cfg.blocking_queue = 8;
  cfg.adaptive_blocking = true;
  TestServer srv(cfg);
  Gate gate;
  std::atomic<bool> hold{true};
  srv.router().get("/slow",
                   [&](Context& c) {
                     if (hold.load()) gate.wait(c.stop_token());
                     c.text(200, "done");
                   },
                   {.blocking = true});
  srv.start();
  EXPECT_EQ(srv.server().stats().blocking_limit, 4U);

  std::vector<std::future<int>> running;
  for (int i = 0; i < 4; ++i) {
    running.push_back(std::async(std::launch::async, [port = srv.port()] {
      return Client(port).request("GET", "/slow").status;
    }));
  }
  ASSERT_TRUE(test::eventually([&] { return srv.server().stats().blocking_active == 4; }));
  Client c(srv.port());
  const auto r = c.request("GET", "/slow");
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_EQ(r.header("Retry-After"), "1");
  EXPECT_EQ(r.json().at("error").at("code"), "overloaded");
  const auto st = srv.server().stats();
  EXPECT_EQ(st.blocking_queued, 0U) << "refused, not queued";
  EXPECT_EQ(st.blocking_active, 4U) << "four threads stay free";
  EXPECT_EQ(st.blocking_rejected, 1U);

  hold = false;
  gate.open();
  for (auto& f : running) EXPECT_EQ(f.get(), 200);
  // One request at a time: every one admitted (the limit is released as the
  // answer is given, before the client sees it), and after a window of 32
  // the unloaded latency is learnt; the limit, never reached, stays at 4.
  for (int i = 0; i < 40; ++i) ASSERT_EQ(c.request("GET", "/slow").status, 200) << i;
  EXPECT_EQ(srv.server().stats().blocking_limit, 4U);
  EXPECT_EQ(srv.server().stats().blocking_rejected, 1U);
}

// Without it, the pool's own bound is the only one: limit 0, and a second
// request waits for a free thread instead of being refused.
TEST(AdaptiveBlocking, IsOffByDefault) {
  auto cfg = TestServer::defaults();
  cfg.blocking_threads = 2;
  TestServer srv(cfg);
  Gate gate;
  srv.router().get("/slow",
                   [&](Context& c) {
                     gate.wait(c.stop_token());
                     c.text(200, "done");
                   },
                   {.blocking = true});
  srv.start();
  EXPECT_EQ(srv.server().stats().blocking_limit, 0U);
  auto first = std::async(std::launch::async, [port = srv.port()] {
    return Client(port).request("GET", "/slow").status;
  });
  auto second = std::async(std::launch::async, [port = srv.port()] {
    return Client(port).request("GET", "/slow").status;
  });
  ASSERT_TRUE(test::eventually([&] { return srv.server().stats().blocking_active == 2; }));
  gate.open();
  EXPECT_EQ(first.get(), 200);
  EXPECT_EQ(second.get(), 200);
}

}  // namespace blocking_test
}  // namespace errand::http
