// Deferred responses over real sockets: answered from another thread, before
// or after the chain returns, dropped, thrown over, timed out, and holding a
// concurrency slot until the answer; and the same through http::testing.
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <mutex>
#include <thread>

#include "errand/http/middleware.hpp"
#include "errand/http/testing.hpp"
#include "errand/observe/metrics.hpp"
#include "support/http_client.hpp"

namespace errand::http {
namespace deferred_test {

using namespace std::chrono_literals;
using test::Client;
using test::TestServer;

// Handles parked by handlers until the test resumes them on its own thread.
class Parked {
 public:
  void put(Deferred d) {
    const std::lock_guard lock(mu_);
    parked_.push_back(std::move(d));
  }
  [[nodiscard]] std::size_t size() {
    const std::lock_guard lock(mu_);
    return parked_.size();
  }
  Deferred take() {
    const std::lock_guard lock(mu_);
    auto d = std::move(parked_.front());
    parked_.erase(parked_.begin());
    return d;
  }

 private:
  std::mutex mu_;
  std::vector<Deferred> parked_;
};

class DeferredTest : public ::testing::Test {
 protected:
  DeferredTest() {
    auto& r = srv.router();
    r.use(mw::metrics(metrics));
    r.use(mw::access_log(srv.logger()));
    // Parks the handle: the test answers it from its own thread.
    r.get("/parked", [this](Context& c) { parked.put(c.defer()); });
    // Answers from a thread of its own, maybe before the chain has returned.
    r.get("/thread", [](Context& c) {
      auto later = std::make_shared<Deferred>(c.defer());
      std::thread([later] {
        later->resume([](Context& done) { done.json(201, {{"from", "thread"}}); });
      }).join();  // resumed before the chain returns: sent after it does
    });
    r.get("/inline", [](Context& c) {
      auto later = c.defer();
      later.resume([](Context& done) { done.text(200, "inline"); });
    });
    r.get("/dropped", [](Context& c) { (void)c.defer(); });
    r.get("/empty", [](Context& c) {  // an empty function sends what was set
      c.text(200, "set before");
      c.defer().resume({});
    });
    r.get("/throws", [this](Context& c) {
      parked.put(c.defer());
      throw Error(409, "conflict", "thrown after defer");
    });
    r.get("/resume-throws", [](Context& c) {
      c.defer().resume([](Context&) { throw Error(422, "late_error", "thrown while answering"); });
    });
    r.get("/twice", [](Context& c) {
      auto later = c.defer();
      try {
        (void)c.defer();
      } catch (const std::logic_error&) {
        later.resume([](Context& done) { done.text(200, "refused"); });
      }
    });
    auto timed = r.group("/timed");
    timed.use(mw::timeout({.after = 300ms}));
    timed.get("/parked", [this](Context& c) { parked.put(c.defer()); });
    auto limited = r.group("/limited");
    limited.use(mw::concurrency_limit({.max_in_flight = 1}));
    limited.get("/parked", [this](Context& c) { parked.put(c.defer()); });
    srv.start();
  }

  std::future<test::RawResponse> request(std::string target) {
    return std::async(std::launch::async, [port = srv.port(), target] {
      Client c(port);
      return c.request("GET", target);
    });
  }

  double count(std::string_view route, int status) {
    return metrics.counter("http_requests_total", "", {"method", "route", "status"})
        .with({"GET", route, std::to_string(status)})
        .value();
  }

  observe::Registry metrics;
  TestServer srv;
  Parked parked;
};

TEST_F(DeferredTest, AnsweredFromAnotherThreadAfterTheChainReturned) {
  auto pending = request("/parked");
  ASSERT_TRUE(test::eventually([&] { return parked.size() == 1; }));
  EXPECT_EQ(pending.wait_for(100ms), std::future_status::timeout);  // nothing sent yet
  std::thread([d = parked.take()]() mutable {
    d.resume([](Context& c) { c.json(202, {{"answer", 42}}); });
  }).join();
  const auto r = pending.get();
  EXPECT_EQ(r.status, 202);
  EXPECT_EQ(r.json().at("answer").as_int64(), 42);
  // The middleware saw the final answer, once.
  EXPECT_TRUE(test::eventually([&] { return count("/parked", 202) == 1; }));
  EXPECT_TRUE(srv.wait_for_log("\"status\":202"));
}

TEST_F(DeferredTest, ResumedBeforeTheChainReturnsIsSentAfterIt) {
  Client c(srv.port());
  auto r = c.request("GET", "/thread");
  EXPECT_EQ(r.status, 201);
  EXPECT_EQ(r.json().at("from").as_string(), "thread");
  r = c.request("GET", "/inline");  // the same connection goes on serving
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "inline");
}

TEST_F(DeferredTest, ADroppedHandleAnswers500AndLogs) {
  Client c(srv.port());
  const auto r = c.request("GET", "/dropped");
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(r.json().at("error").at("code").as_string(), "internal");
  EXPECT_TRUE(srv.wait_for_log("a deferred response was dropped"));
}

TEST_F(DeferredTest, AnEmptyResumeSendsWhatTheHandlerSet) {
  Client c(srv.port());
  const auto r = c.request("GET", "/empty");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "set before");
}

TEST_F(DeferredTest, AThrowAfterDeferIsTheAnswerAndALaterResumeIsIgnored) {
  Client c(srv.port());
  auto r = c.request("GET", "/throws");
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(r.json().at("error").at("code").as_string(), "conflict");
  ASSERT_EQ(parked.size(), 1U);
  parked.take().resume([](Context& late) { late.text(200, "too late"); });
  r = c.request("GET", "/inline");  // no second response went out on this connection
  EXPECT_EQ(r.body, "inline");
  EXPECT_TRUE(test::eventually([&] { return count("/throws", 409) == 1; }));
  EXPECT_EQ(count("/throws", 200), 0);
}

TEST_F(DeferredTest, AnErrorThrownWhileAnsweringIsMappedAsInAHandler) {
  Client c(srv.port());
  const auto r = c.request("GET", "/resume-throws");
  EXPECT_EQ(r.status, 422);
  EXPECT_EQ(r.json().at("error").at("code").as_string(), "late_error");
}

TEST_F(DeferredTest, DeferringTwiceIsALogicError) {
  Client c(srv.port());
  EXPECT_EQ(c.request("GET", "/twice").body, "refused");
}

TEST_F(DeferredTest, TheDeadlineAnswers408WhenTheHandleIsNotResumedInTime) {
  auto pending = request("/timed/parked");
  const auto r = pending.get();  // nobody resumes: the timer answers
  EXPECT_EQ(r.status, 408);
  ASSERT_EQ(parked.size(), 1U);
  parked.take().resume([](Context& late) { late.text(200, "late"); });
  // Counted once, as the timeout, when the late answer finished the request.
  EXPECT_TRUE(test::eventually([&] { return count("/timed/parked", 408) == 1; }));
  EXPECT_EQ(count("/timed/parked", 200), 0);
}

TEST_F(DeferredTest, AConcurrencySlotIsHeldUntilTheAnswer) {
  auto first = request("/limited/parked");
  ASSERT_TRUE(test::eventually([&] { return parked.size() == 1; }));
  Client c(srv.port());
  EXPECT_EQ(c.request("GET", "/limited/parked").status, 503);  // the slot is still held
  parked.take().resume([](Context& done) { done.text(200, "first"); });
  EXPECT_EQ(first.get().body, "first");
  auto second = request("/limited/parked");  // the slot is free again
  ASSERT_TRUE(test::eventually([&] { return parked.size() == 1; }));
  parked.take().resume([](Context& done) { done.text(200, "second"); });
  EXPECT_EQ(second.get().body, "second");
}

// One I/O thread: connections use the io_context's executor, not a strand.
TEST(DeferredOneIoThread, AnsweredFromAnotherThreadAndTheConnectionGoesOn) {
  auto cfg = TestServer::defaults();
  cfg.threads = 1;
  TestServer srv(cfg);
  Parked parked;
  srv.router().get("/parked", [&parked](Context& c) { parked.put(c.defer()); });
  srv.router().get("/now", [](Context& c) { c.text(200, "now"); });
  srv.start();
  Client c(srv.port());
  c.send(test::raw_request("GET", "/parked"));
  ASSERT_TRUE(test::eventually([&] { return parked.size() == 1; }));
  Client other(srv.port());  // the I/O thread is free while the answer is pending
  EXPECT_EQ(other.request("GET", "/now").body, "now");
  std::thread([d = parked.take()]() mutable {
    d.resume([](Context& done) { done.text(200, "later"); });
  }).join();
  EXPECT_EQ(c.read().body, "later");
  EXPECT_EQ(c.request("GET", "/now").body, "now");  // keep-alive
}

TEST(DeferredInMemory, PerformWaitsForTheAnswerFromAnotherThread) {
  Router r;
  std::jthread answering;
  std::atomic<bool> chain_returned{false};
  // The resume comes after the chain has returned (the other order is tested
  // above): the answering thread waits, bounded, for this middleware's signal.
  r.use([&chain_returned](Context& c) {
    c.next();
    chain_returned = true;
  });
  r.get("/later", [&answering, &chain_returned](Context& c) {
    answering = std::jthread([later = std::make_shared<Deferred>(c.defer()), &chain_returned] {
      EXPECT_TRUE(test::eventually([&] { return chain_returned.load(); }));
      later->resume([](Context& done) { done.text(200, "later"); });
    });
  });
  const auto res = testing::perform(r, {"GET", "/later"});
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.body, "later");
}

TEST(DeferredInMemory, AnAnswerPastTheDeadlineIsTheTimeout) {
  Router r;
  std::jthread answering;
  r.use(mw::timeout({.after = 20ms}));
  r.get("/late", [&answering](Context& c) {
    answering =
        std::jthread([later = std::make_shared<Deferred>(c.defer()), stop = c.stop_token()] {
          // The deadline requests the request's stop token as it answers 408:
          // resume only after that (a bounded wait), whichever thread is faster.
          EXPECT_TRUE(test::eventually([&stop] { return stop.stop_requested(); }));
          later->resume([](Context& done) { done.text(200, "late"); });
        });
  });
  const auto res = testing::perform(r, {"GET", "/late"});
  EXPECT_EQ(res.status, 408);
}

}  // namespace deferred_test
}  // namespace errand::http
