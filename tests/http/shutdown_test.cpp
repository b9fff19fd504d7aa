// Graceful shutdown over real sockets.
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <mutex>
#include <thread>

#include "errand/http/middleware.hpp"
#include "errand/observe/metrics.hpp"
#include "support/http_client.hpp"

namespace errand::http {
namespace shutdown_test {

using namespace std::chrono_literals;
using test::Client;
using test::Gate;
using test::TestServer;

TEST(Shutdown, DrainsAnInFlightRequestAndRefusesNewConnections) {
  TestServer srv;
  Gate gate;
  std::atomic<bool> started{false};
  srv.router().get("/work",
                   [&](Context& c) {
                     started = true;
                     gate.wait();
                     c.text(200, "finished");
                   },
                   {.blocking = true});
  srv.start();
  const auto port = srv.port();

  Client in_flight(port);
  in_flight.send(test::raw_request("GET", "/work"));
  ASSERT_TRUE(test::eventually([&] { return started.load(); }));

  auto stopped = std::async(std::launch::async, [&] { srv.server().stop(); });
  ASSERT_TRUE(test::eventually([&] { return srv.server().draining(); }));
  ASSERT_TRUE(srv.wait_for_log("shutting down"));
  // The listener is closed: a new connection is refused or closed unanswered.
  EXPECT_TRUE(test::eventually([&] {
    try {
      Client late(port, 2s);
      late.send(test::raw_request("GET", "/work"));
      return late.wait_closed();
    } catch (const std::system_error&) {
      return true;
    }
  }));
  EXPECT_EQ(stopped.wait_for(0s), std::future_status::timeout) << "waits for the request";

  gate.open();
  auto r = in_flight.read();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "finished");
  EXPECT_FALSE(r.keep_alive) << "a draining server closes after the response";
  stopped.get();
  EXPECT_EQ(srv.server().stats().connections, 0U);
}

TEST(Shutdown, ClosesIdleKeepAliveConnectionsAtOnce) {
  auto cfg = TestServer::defaults();
  cfg.shutdown_grace = 120s;  // if idle connections were waited for, the test would time out
  TestServer srv(cfg);
  srv.router().get("/ok", [](Context& c) { c.text(200, "ok"); });
  srv.start();
  Client idle(srv.port());
  EXPECT_EQ(idle.request("GET", "/ok").status, 200);
  auto stopped = std::async(std::launch::async, [&] { srv.server().stop(); });
  EXPECT_TRUE(idle.wait_closed());
  EXPECT_EQ(stopped.wait_for(60s), std::future_status::ready);
}

TEST(Shutdown, CancelsHandlersThatOutliveTheGracePeriod) {
  auto cfg = TestServer::defaults();
  cfg.shutdown_grace = 200ms;
  TestServer srv(cfg);
  std::atomic<bool> started{false};
  std::atomic<bool> cancelled{false};
  srv.router().get("/forever",
                   [&](Context& c) {
                     started = true;
                     Gate never;
                     cancelled = !never.wait(c.stop_token());
                     c.text(200, "cancelled");
                   },
                   {.blocking = true});
  srv.start();
  Client c(srv.port());
  c.send(test::raw_request("GET", "/forever"));
  ASSERT_TRUE(test::eventually([&] { return started.load(); }));
  srv.server().stop();
  EXPECT_TRUE(cancelled.load());
  EXPECT_TRUE(srv.wait_for_log("grace period over"));
}

TEST(Shutdown, StopFromAnotherThreadEndsRun) {
  TestServer srv;
  srv.router().get("/ok", [](Context& c) { c.text(200, "ok"); });
  srv.start();
  auto ran = std::async(std::launch::async, [&] { return srv.server().run(); });
  Client c(srv.port());
  EXPECT_EQ(c.request("GET", "/ok").status, 200);
  srv.server().stop();
  ASSERT_EQ(ran.wait_for(60s), std::future_status::ready);
  EXPECT_EQ(ran.get(), 0);
}

TEST(Shutdown, StopFromAHandlerIsRefused) {
  auto cfg = TestServer::defaults();
  TestServer srv(cfg);
  srv.router().get("/stop", [&](Context& c) {
    try {
      srv.server().stop();
      c.text(200, "stopped?!");
    } catch (const std::logic_error&) {
      c.text(409, "refused");
    }
  });
  srv.start();
  Client c(srv.port());
  EXPECT_EQ(c.request("GET", "/stop").status, 409);
}

TEST(Shutdown, StopIsIdempotentAndSafeBeforeStart) {
  TestServer never_started;
  EXPECT_NO_THROW(never_started.server().stop());
  EXPECT_NO_THROW(never_started.server().stop());

  TestServer srv;
  srv.router().get("/up", [](Context& c) { c.text(200, "up"); });
  srv.start();
  const auto port = srv.port();
  {
    Client c(port);
    EXPECT_EQ(c.request("GET", "/up").status, 200);
  }
  EXPECT_NO_THROW(srv.server().stop());
  EXPECT_TRUE(srv.server().draining());
  EXPECT_THROW(Client{port}, std::system_error);  // the listener is closed
  EXPECT_NO_THROW(srv.server().stop());           // a second stop changes nothing
  EXPECT_THROW(Client{port}, std::system_error);
}

// A deferred response whose resume() never comes is given up after the grace
// and the extra wait: stop() returns (false), the client's connection is
// closed, and a resume() after the server is gone does nothing (ASan would see
// a use of the freed io_context, its strand or the timeout's timer).
TEST(Shutdown, DropsADeferredResponseThatNeverComes) {
  auto cfg = TestServer::defaults();
  cfg.shutdown_grace = 100ms;
  cfg.shutdown_abandon = 200ms;
  auto srv = std::make_unique<TestServer>(cfg);
  observe::Registry metrics;
  std::mutex mu;
  std::vector<Deferred> parked;
  srv->router().use(mw::metrics(metrics));
  srv->router().use(mw::timeout({.after = 60s}));  // its timer lives in an after() hook
  srv->router().get("/later/:n", [&](Context& c) {
    const std::lock_guard lock(mu);
    parked.push_back(c.defer());
  });
  srv->start();
  Client a(srv->port());
  Client b(srv->port());
  a.send(test::raw_request("GET", "/later/1"));
  b.send(test::raw_request("GET", "/later/2"));
  ASSERT_TRUE(test::eventually([&] {
    const std::lock_guard lock(mu);
    return parked.size() == 2;
  }));
  // One resume comes from another thread while the server stops.
  std::thread late;
  {
    const std::lock_guard lock(mu);
    late = std::thread([d = std::move(parked.back())]() mutable {
      // While stop() runs, before or after it gives up: either way the
      // resume() must be safe. (Nothing waits on this sleep.)
      std::this_thread::sleep_for(150ms);
      d.resume([](Context&) {});
    });
    parked.pop_back();
  }
  const auto started = std::chrono::steady_clock::now();
  EXPECT_FALSE(srv->server().stop()) << "a response was dropped";
  EXPECT_LT(std::chrono::steady_clock::now() - started, 60s) << "bounded";
  late.join();
  EXPECT_TRUE(srv->wait_for_log("shutdown drops a deferred response that was never resumed"));
  EXPECT_TRUE(srv->wait_for_log(R"("route":"/later/:n")"));
  EXPECT_TRUE(a.wait_closed());
  EXPECT_TRUE(b.wait_closed());
  srv.reset();
  const std::lock_guard lock(mu);
  ASSERT_EQ(parked.size(), 1U);
  parked.front().resume([](Context& c) { c.text(200, "too late"); });  // does nothing
  parked.clear();
}

// The deadline answered 408 for a deferred response that never came, and the
// connection went on to serve the next request: the old exchange, still held
// by its handle, is given up too (not mistaken for a stuck handler, which
// would end the process).
TEST(Shutdown, DropsADeferredResponseItsDeadlineAnswered) {
  auto cfg = TestServer::defaults();
  cfg.shutdown_grace = 50ms;
  cfg.shutdown_abandon = 50ms;
  TestServer srv(cfg);
  std::mutex mu;
  std::vector<Deferred> parked;
  srv.router().use(mw::timeout({.after = 100ms}));
  srv.router().get("/later", [&](Context& c) {
    const std::lock_guard lock(mu);
    parked.push_back(c.defer());
  });
  srv.router().get("/now", [](Context& c) { c.text(200, "now"); });
  srv.start();
  Client c(srv.port());
  EXPECT_EQ(c.request("GET", "/later").status, 408);
  EXPECT_EQ(c.request("GET", "/now").status, 200);  // the connection goes on
  EXPECT_FALSE(srv.server().stop()) << "the unresumed handle is dropped";
  EXPECT_TRUE(srv.wait_for_log(R"("route":"/later")"));
  const std::lock_guard lock(mu);
  parked.clear();  // after the server stopped: nothing happens
}

TEST(Shutdown, RunExitsNonZeroAfterDroppingAResponse) {
  auto cfg = TestServer::defaults();
  cfg.shutdown_grace = 50ms;
  cfg.shutdown_abandon = 50ms;
  TestServer srv(cfg);
  std::optional<Deferred> parked;
  std::atomic<bool> deferred{false};
  srv.router().get("/later", [&](Context& c) {
    parked.emplace(c.defer());
    deferred = true;
  });
  srv.start();
  auto ran = std::async(std::launch::async, [&] { return srv.server().run(); });
  Client c(srv.port());
  c.send(test::raw_request("GET", "/later"));
  ASSERT_TRUE(test::eventually([&] { return deferred.load(); }));
  srv.server().stop();
  ASSERT_EQ(ran.wait_for(60s), std::future_status::ready);
  EXPECT_EQ(ran.get(), 1);
  parked.reset();  // a dropped handle, after the stop: nothing happens
}

// A blocking handler that ignores its stop token holds a thread that can be
// neither joined nor left running: the process exits with status 70, naming
// the request. (A death test: the statement runs in a child process.)
TEST(ShutdownDeathTest, AHandlerThatIgnoresItsStopTokenEndsTheProcess) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        auto cfg = TestServer::defaults();
        cfg.shutdown_grace = 50ms;
        cfg.shutdown_abandon = 100ms;
        Server srv(cfg, observe::Logger::to_stderr());
        std::atomic<bool> started{false};
        std::atomic<bool> never{false};
        srv.router().get("/stubborn",
                         [&](Context& c) {
                           started = true;
                           while (!never) std::this_thread::sleep_for(10ms);  // no stop token
                           c.text(200, "never");
                         },
                         {.blocking = true});
        srv.start();
        Client c(srv.port());
        c.send(test::raw_request("GET", "/stubborn"));
        while (!started) std::this_thread::sleep_for(1ms);
        srv.stop();
        std::exit(0);  // not reached
      },
      ::testing::ExitedWithCode(kStuckExitCode),
      "gives up on a handler that ignores its stop token.*/stubborn");
}

}  // namespace shutdown_test
}  // namespace errand::http
