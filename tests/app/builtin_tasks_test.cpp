// The built-in task types against real peers: http.request against a local
// HTTP server (ours, on an ephemeral port), email.send against a real SMTP
// server (Debian's python3-aiosmtpd, started by the test on a free port).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <functional>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/json.hpp>

#include "errand/app/builtin_tasks.hpp"
#include "errand/app/task_api.hpp"
#include "errand/http/testing.hpp"
#include "errand/store/memory_store.hpp"
#include "support/http_client.hpp"
#include "support/smtp_server.hpp"
#include "support/temp_dir.hpp"

namespace errand::app {
namespace {

using namespace std::chrono_literals;
using store::TaskState;

class Builtins : public ::testing::Test {
 protected:
  tasks::Runtime& runtime() {
    if (!rt) {
      tasks::RuntimeConfig cfg;
      cfg.queues = {{"default", 2, 1}};
      cfg.poll_interval = 5ms;
      cfg.retry = {.base = 10ms, .cap = 50ms};
      cfg.shutdown_grace = 100ms;
      rt = std::make_unique<tasks::Runtime>(store, cfg);
    }
    return *rt;
  }
  store::TaskRecord wait_final(const std::string& id) {
    store::TaskRecord r;
    EXPECT_TRUE(test::eventually([&] {
      auto got = store->get(id);
      if (!got || !store::is_final(got->state)) return false;
      r = *got;
      return true;
    }));
    return r;
  }

  std::shared_ptr<store::MemoryStore> store = std::make_shared<store::MemoryStore>();
  std::unique_ptr<tasks::Runtime> rt;
};

TEST_F(Builtins, HttpRequestDeliversRetriesAndGivesUp) {
  test::TestServer peer;
  std::mutex mu;
  std::string seen_traceparent;
  std::string seen_task_id;
  std::string seen_body;
  std::atomic<int> flaky_calls{0};
  peer.router().post("/hook", [&](http::Context& c) {
    const std::lock_guard lock(mu);
    seen_traceparent = std::string(c.header("traceparent").value_or(""));
    seen_task_id = std::string(c.header("X-Errand-Task-Id").value_or(""));
    seen_body = std::string(c.body());
    c.json(200, {{"ok", true}});
  });
  peer.router().get("/flaky", [&](http::Context& c) {
    if (++flaky_calls == 1) {
      c.error(500, "down", "try later");
      return;
    }
    c.text(200, "recovered");
  });
  peer.router().get("/missing", [](http::Context& c) { c.error(404, "not_found", "gone"); });
  peer.start();
  const std::string base = "http://127.0.0.1:" + std::to_string(peer.port());

  auto& r = runtime();
  register_http_request(r);
  r.start();

  const auto trace = observe::TraceContext::generate();
  const auto hook = r.enqueue("http.request",
                              {{"url", base + "/hook"},
                               {"body", R"({"event":"signup"})"},
                               {"headers", {{"X-Signature", "abc"}}}},
                              {.trace = trace});
  auto done = wait_final(hook.id);
  ASSERT_EQ(done.state, TaskState::succeeded) << done.last_error.value_or("");
  const auto result = boost::json::parse(*done.result);
  EXPECT_EQ(result.at("status").as_int64(), 200);
  EXPECT_EQ(result.at("body").as_string(), R"({"ok":true})");
  {
    const std::lock_guard lock(mu);
    EXPECT_EQ(seen_body, R"({"event":"signup"})");
    EXPECT_EQ(seen_traceparent.substr(3, 32), trace.trace_id);  // one trace, request to webhook
    EXPECT_EQ(seen_task_id, hook.id);
  }

  const auto flaky = r.enqueue("http.request", {{"method", "GET"}, {"url", base + "/flaky"}});
  done = wait_final(flaky.id);
  EXPECT_EQ(done.state, TaskState::succeeded);
  EXPECT_EQ(done.attempt, 2);  // 500, then a retry that worked

  const auto missing = r.enqueue("http.request", {{"method", "GET"}, {"url", base + "/missing"}});
  done = wait_final(missing.id);
  EXPECT_EQ(done.state, TaskState::dead);  // 4xx: permanent
  EXPECT_EQ(done.attempt, 1);
  EXPECT_NE(done.last_error->find("404"), std::string::npos) << *done.last_error;

  const auto refused =
      r.enqueue("http.request", {{"url", "http://127.0.0.1:1/x"}}, {.max_attempts = 2});
  done = wait_final(refused.id);
  EXPECT_EQ(done.state, TaskState::dead);
  EXPECT_EQ(done.attempt, 2);  // connection errors are retried
}

TEST_F(Builtins, HttpRequestCircuitOpensForAFailingHost) {
  test::TestServer peer;
  std::atomic<int> calls{0};
  peer.router().get("/down", [&](http::Context& c) {
    ++calls;
    c.error(503, "down", "maintenance");
  });
  peer.start();
  const std::string host = "127.0.0.1:" + std::to_string(peer.port());
  observe::Registry metrics;
  auto& r = runtime();
  auto circuits = register_http_request(r, &metrics, {.failure_threshold = 2, .open_for = 1h});
  r.start();
  // Credentials in the URL never become part of the circuit's name (it is
  // shown by /metrics and /v1/circuits).
  const auto id = r.enqueue("http.request",
                            {{"method", "GET"}, {"url", "http://user:secret@" + host + "/down"}},
                            {.max_attempts = 10})
                      .id;
  ASSERT_TRUE(test::eventually([&] {
    const auto t = store->get(id);
    return t && t->state == TaskState::scheduled;  // snoozed by the open circuit
  }));
  const auto t = *store->get(id);
  EXPECT_GT(t.run_at - t.updated_at, 30min);  // until the breaker lets a probe through
  EXPECT_EQ(t.attempt, 2);                    // the snoozed turn used no attempt
  EXPECT_EQ(calls.load(), 2);                 // and never reached the host
  EXPECT_NE(metrics.expose().find("circuit_state{target=\"" + host + "\"} 1"), std::string::npos)
      << metrics.expose();
  EXPECT_EQ(metrics.expose().find("secret"), std::string::npos);

  // The REST API shows it too.
  http::Router api;
  install_task_api(api, r, {.circuits = circuits});
  const auto listed = http::testing::perform(api, {"GET", "/v1/circuits"}).json();
  const auto& c = listed.at("circuits").at(0);
  EXPECT_EQ(c.at("target").as_string(), host);
  EXPECT_EQ(c.at("state").as_string(), "open");
  EXPECT_GT(c.at("retry_in_ms").as_int64(), 30 * 60 * 1000);
}

// A downstream that accepts connections and never answers: each attempt
// ends at its timeout_ms, the circuit opens after the threshold, and the rest
// wait without calling. Nothing piles up: connections stay bounded by the
// attempts made, and no worker stays busy.
TEST_F(Builtins, HttpRequestToAPeerThatNeverAnswersTimesOutAndOpensTheCircuit) {
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::acceptor acceptor(ioc, {boost::asio::ip::make_address("127.0.0.1"), 0});
  std::vector<boost::asio::ip::tcp::socket> held;  // accepted, never read nor answered
  std::atomic<int> accepted{0};
  std::function<void()> accept_next = [&] {
    acceptor.async_accept([&](boost::system::error_code ec, boost::asio::ip::tcp::socket s) {
      if (ec) return;
      held.push_back(std::move(s));
      ++accepted;
      accept_next();
    });
  };
  accept_next();
  std::jthread io([&] { ioc.run(); });
  struct StopOnExit {  // before `io` joins, however the test ends
    boost::asio::io_context& ioc;
    ~StopOnExit() { ioc.stop(); }
  } stop_io{ioc};
  const auto url = "http://127.0.0.1:" + std::to_string(acceptor.local_endpoint().port()) + "/x";

  observe::Registry metrics;
  auto& r = runtime();
  register_http_request(r, &metrics, {.failure_threshold = 2, .open_for = 1h});
  r.start();
  std::vector<std::string> ids;
  for (int i = 0; i < 6; ++i) {
    ids.push_back(r.enqueue("http.request", {{"method", "POST"}, {"url", url}, {"timeout_ms", 300}},
                            {.max_attempts = 10})
                      .id);
  }
  // Every task either failed an attempt at its timeout or waits for the circuit.
  ASSERT_TRUE(test::eventually([&] {
    return std::all_of(ids.begin(), ids.end(), [&](const std::string& id) {
      const auto t = store->get(id);
      return t && t->state == TaskState::scheduled &&
             (t->attempt >= 1 || t->run_at - t->updated_at > 30min);
    });
  }));
  for (const auto& id : ids) {
    const auto t = *store->get(id);
    if (t.last_error) {
      EXPECT_NE(t.last_error->find("Timeout"), std::string::npos) << *t.last_error;
    }
  }
  EXPECT_LE(accepted.load(), 2 + 2) << "the threshold, plus what the two workers had started";
  EXPECT_TRUE(test::eventually([&] { return r.busy("default") == 0; }));
  EXPECT_NE(metrics.expose().find(R"(circuit_state{target="127.0.0.1:)"), std::string::npos);
  r.stop();
}

TEST_F(Builtins, HttpRequestRefusesHostileInputAtEnqueue) {
  auto& r = runtime();
  register_http_request(r);
  const std::vector<boost::json::value> bad = {
      {{"url", "file:///etc/passwd"}},
      {{"url", "http://x/ y"}},
      {{"method", "TRACE"}, {"url", "http://x/"}},
      {{"url", "http://x/"}, {"headers", {{"X-A", "b\r\nX-Injected: 1"}}}},
      {{"url", "http://x/"}, {"headers", {{"Bad Name", "v"}}}},
      {{"url", "http://x/"}, {"timeout_ms", 0}},
      {{"method", "GET"}},
  };
  for (const auto& payload : bad) {
    try {
      (void)r.enqueue("http.request", payload);
      ADD_FAILURE() << "accepted " << payload;
    } catch (const tasks::EnqueueError& e) {
      EXPECT_EQ(e.code(), tasks::EnqueueError::Code::invalid_payload) << payload;
    }
  }
  EXPECT_TRUE(store->queues().empty());
}

using test::SmtpServer;

TEST_F(Builtins, EmailSendDeliversToARealSmtpServer) {
  test::TempDir dir;
  SmtpServer smtp(dir.path());
  ASSERT_TRUE(smtp.ready()) << "python3-aiosmtpd did not start (scripts/bootstrap installs it)";

  auto& r = runtime();
  register_email_send(r, {.host = "127.0.0.1", .port = smtp.port(), .from = "errand@example.org"});
  r.start();
  const auto trace = observe::TraceContext::generate();
  const auto id = r.enqueue("email.send",
                            {{"to", {"ada@example.org", "bob@example.org"}},
                             {"subject", "Welcome"},
                             {"body", "Hello Ada,\n.\nwelcome aboard.\n"}},
                            {.trace = trace})
                      .id;
  const auto done = wait_final(id);
  ASSERT_EQ(done.state, TaskState::succeeded) << done.last_error.value_or("");
  ASSERT_TRUE(test::eventually([&] { return smtp.messages().size() == 1; }));
  const auto mail = smtp.messages().front();
  EXPECT_NE(mail.find("Subject: Welcome"), std::string::npos) << mail;
  EXPECT_NE(mail.find("To: ada@example.org, bob@example.org"), std::string::npos) << mail;
  EXPECT_NE(mail.find("From: errand@example.org"), std::string::npos) << mail;
  EXPECT_NE(mail.find("traceparent: 00-" + trace.trace_id), std::string::npos) << mail;
  EXPECT_NE(mail.find("\n.\n"), std::string::npos) << mail;  // dot-stuffing undone by the server
}

TEST_F(Builtins, EmailSendRetriesWhenTheServerIsDownAndRefusesBadAddresses) {
  auto& r = runtime();
  register_email_send(r, {.host = "127.0.0.1", .port = 1, .from = "errand@example.org"});
  EXPECT_THROW(
      (void)r.enqueue("email.send", {{"to", {"not-an-address"}}, {"subject", "x"}, {"body", ""}}),
      tasks::EnqueueError);
  EXPECT_THROW((void)r.enqueue("email.send",
                               {{"to", {"a@b.c"}}, {"subject", "x\r\nBcc: evil@x"}, {"body", ""}}),
               tasks::EnqueueError);
  r.start();
  const auto id = r.enqueue("email.send", {{"to", {"a@b.c"}}, {"subject", "x"}, {"body", "y"}},
                            {.max_attempts = 2})
                      .id;
  const auto done = wait_final(id);
  EXPECT_EQ(done.state, TaskState::dead);
  EXPECT_EQ(done.attempt, 2);
  EXPECT_NE(done.last_error->find("SMTP"), std::string::npos);
}

}  // namespace
}  // namespace errand::app
