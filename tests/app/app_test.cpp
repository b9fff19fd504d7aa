// errand::App: a route enqueues a task under the request's trace, over real
// HTTP, and the task runs; enqueue errors become the right HTTP statuses.
#include <gtest/gtest.h>

#include <boost/describe.hpp>

#include "errand/errand.hpp"
#include "support/http_client.hpp"
#include "support/temp_dir.hpp"

namespace errand {

struct Signup {
  std::string email;
};
BOOST_DESCRIBE_STRUCT(Signup, (), (email))

namespace {

using namespace std::chrono_literals;

TEST(App, HandlerEnqueuesUnderTheRequestsTraceAndTheTaskRuns) {
  auto store = std::make_shared<store::MemoryStore>();
  AppOptions o;
  o.http.address = "127.0.0.1";
  o.http.port = 0;
  o.http.threads = 2;
  o.store = store;
  o.tasks.poll_interval = 10ms;
  o.logger = observe::Logger::null();
  App app(o);

  std::mutex mu;
  std::string task_trace;
  std::string task_request;
  const auto welcome =
      app.tasks().handle<Signup>("email.welcome", [&](tasks::TaskContext& t, const Signup& in) {
        const std::lock_guard lock(mu);
        task_trace = t.trace().trace_id;
        task_request = t.request_id();
        return tasks::Outcome::done({{"sent_to", in.email}});
      });
  app.http().post("/register", [&](http::Context& c) {
    const auto e = app.enqueue(c, welcome, c.bind<Signup>());  // typed: checked when compiled
    c.json(202, {{"task_id", e.id}});
  });
  app.http().post("/raw", [&](http::Context& c) {
    const auto e = app.enqueue(c, c.query("type").value_or(""), c.body_json());
    c.json(202, {{"task_id", e.id}});
  });
  app.start();

  test::Client client(app.port());
  const std::string trace_id = "0af7651916cd43dd8448eb211c80319c";
  const auto res = client.request(
      "POST", "/register", R"({"email":"a@b.c"})",
      {{"X-Request-ID", "signup-1"}, {"traceparent", "00-" + trace_id + "-b7ad6b7169203331-01"}});
  ASSERT_EQ(res.status, 202) << res.body;
  const std::string id(res.json().at("task_id").as_string());
  ASSERT_TRUE(test::eventually([&] {
    auto r = store->get(id);
    return r && r->state == store::TaskState::succeeded;
  }));
  {
    const std::lock_guard lock(mu);
    EXPECT_EQ(task_trace, trace_id);
    EXPECT_EQ(task_request, "signup-1");
  }
  EXPECT_EQ(store->get(id)->traceparent.substr(3, 32), trace_id);

  // The metrics saw the request and the task. The attempt's hook counts it
  // just after the commit that made it `succeeded`: wait for it.
  test::RawResponse metrics;
  ASSERT_TRUE(test::eventually([&] {
    metrics = client.request("GET", "/metrics");
    return metrics.body.find(R"(task_execution_count{type="email.welcome",queue="default",)"
                             R"(outcome="succeeded"} 1)") != std::string::npos;
  }));
  ASSERT_EQ(metrics.status, 200);
  EXPECT_EQ(metrics.header("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  for (const char* line : {
           R"(http_requests_total{method="POST",route="/register",status="202"} 1)",
           R"(tasks_enqueued_total{type="email.welcome",queue="default"} 1)",
           R"(task_execution_count{type="email.welcome",queue="default",outcome="succeeded"} 1)",
           R"(task_duration_seconds_count{type="email.welcome",queue="default"} 1)",
           R"(tasks{queue="default",state="succeeded"} 1)",
           R"(workers_busy{queue="default"} 0)",
           "# TYPE process_resident_memory_bytes gauge",
           "# TYPE http_request_duration_seconds histogram",
       }) {
    EXPECT_NE(metrics.body.find(line), std::string::npos) << line << "\n" << metrics.body;
  }

  // Bad input: the right status and the one error shape.
  auto bad = client.request("POST", "/register", R"({"mail":"x"})");
  EXPECT_EQ(bad.status, 400);
  bad = client.request("POST", "/raw?type=nope", "{}");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(bad.json().at("error").at("code").as_string(), "unknown_task_type");
  bad = client.request("POST", "/raw?type=email.welcome", R"({"email":7})");
  EXPECT_EQ(bad.status, 422);
  EXPECT_EQ(bad.json().at("error").at("code").as_string(), "invalid_payload");
  EXPECT_NE(std::string(bad.json().at("error").at("message").as_string()).find("'email'"),
            std::string::npos);
  app.stop();
}

TEST(App, EnqueueThenAnswersAfterTheCommitWithoutBlockingTheIoThread) {
  test::TempDir dir;
  AppOptions o;
  o.http.address = "127.0.0.1";
  o.http.port = 0;
  o.http.threads = 1;
  o.sqlite.path = (dir.path() / "e.db").string();
  o.tasks.poll_interval = 10ms;
  o.logger = observe::Logger::null();
  App app(o);
  std::mutex mu;
  std::string task_trace;
  const auto welcome =
      app.tasks().handle<Signup>("email.welcome", [&](tasks::TaskContext& t, const Signup&) {
        const std::lock_guard lock(mu);
        task_trace = t.trace().trace_id;
        return tasks::Outcome::done();
      });
  app.http().post("/register", [&](http::Context& c) {  // a non-blocking route
    app.enqueue_then(c, welcome, c.bind<Signup>(),
                     [](http::Context& answer, const store::Enqueued& e) {
                       answer.json(202, {{"task_id", e.id}});
                     });
  });
  app.start();

  test::Client client(app.port());
  const std::string trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
  const auto res = client.request("POST", "/register", R"({"email":"a@b.c"})",
                                  {{"traceparent", "00-" + trace_id + "-00f067aa0ba902b7-01"}});
  ASSERT_EQ(res.status, 202) << res.body;
  const std::string id(res.json().at("task_id").as_string());
  EXPECT_TRUE(app.store().get(id).has_value());  // committed before the answer
  ASSERT_TRUE(test::eventually([&] {
    auto r = app.store().get(id);
    return r && r->state == store::TaskState::succeeded;
  }));
  {
    const std::lock_guard lock(mu);
    EXPECT_EQ(task_trace, trace_id);
  }
  // Bad input is answered at once, in the error shape; the connection goes on.
  auto bad = client.request("POST", "/register", R"({"mail":"x"})");
  EXPECT_EQ(bad.status, 400);
  bad = client.request("POST", "/register", "not json");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(bad.json().at("error").at("code").as_string(), "invalid_json");
  app.stop();
}

// A handler that calls the runtime or the store directly, without any
// wrapper, still answers task and store errors with their 4xx/5xx: the App's
// router translates them (and a plain bug stays a 500).
TEST(App, TaskAndStoreErrorsFromAnyHandlerGetTheirStatus) {
  AppOptions o;
  o.http.address = "127.0.0.1";
  o.http.port = 0;
  o.store = std::make_shared<store::MemoryStore>();
  o.logger = observe::Logger::null();
  App app(o);
  app.http().post("/direct", [&](http::Context& c) {
    app.tasks().enqueue(c.query("type").value_or(""), {});
    c.json(202, {{"ok", true}});
  });
  app.http().get("/store", [](http::Context&) {
    throw store::StoreError(store::StoreError::Code::full, "disk full");
  });
  app.http().get("/bug", [](http::Context&) { throw std::logic_error("a bug"); });
  app.start();
  test::Client client(app.port());
  auto r = client.request("POST", "/direct?type=nope");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.json().at("error").at("code"), "unknown_task_type");
  r = client.request("GET", "/store");
  EXPECT_EQ(r.status, 507);
  EXPECT_EQ(r.json().at("error").at("code"), "store_full");
  EXPECT_EQ(client.request("GET", "/bug").status, 500);
}

TEST(App, StoreErrorsMapToStatuses) {
  using C = store::StoreError::Code;
  EXPECT_EQ(to_http_error(store::StoreError(C::full, "x")).status(), 507);
  EXPECT_EQ(to_http_error(store::StoreError(C::busy, "x")).status(), 503);
  EXPECT_EQ(to_http_error(store::StoreError(C::unavailable, "x")).status(), 503);
  EXPECT_EQ(to_http_error(store::StoreError(C::corrupt, "x")).status(), 500);
  using E = tasks::EnqueueError::Code;
  EXPECT_EQ(to_http_error(tasks::EnqueueError(E::payload_too_large, "x")).status(), 413);
  EXPECT_EQ(to_http_error(tasks::EnqueueError(E::invalid_option, "x")).code(), "invalid_option");
}

}  // namespace
}  // namespace errand
