// One trace from the HTTP call to the webhook: the trace id of the request
// that enqueued an http.request task is in the task record, in every log line
// of every attempt, and in the traceparent header each attempt sends.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <mutex>
#include <set>

#include "errand/app/builtin_tasks.hpp"
#include "errand/app/task_api.hpp"
#include "errand/errand.hpp"
#include "support/http_client.hpp"
#include "support/otlp_collector.hpp"
#include "support/smtp_server.hpp"
#include "support/temp_dir.hpp"

namespace errand::app {
namespace {

using namespace std::chrono_literals;

TEST(Trace, FromTheEnqueuingRequestThroughEveryAttemptToTheWebhook) {
  // The webhook receiver: fails the first delivery, accepts the second, and
  // keeps the traceparent of each.
  test::TestServer peer;
  std::mutex mu;
  std::vector<std::string> received;
  std::vector<std::string> states;
  peer.router().post("/hook", [&](http::Context& c) {
    const std::lock_guard lock(mu);
    received.emplace_back(c.header("traceparent").value_or(""));
    states.emplace_back(c.header("tracestate").value_or(""));
    if (received.size() == 1) {
      c.error(503, "busy", "try again");
    } else {
      c.json(200, {{"ok", true}});
    }
  });
  peer.start();

  std::vector<std::string> lines;
  test::TempDir dir;
  AppOptions o;
  o.http.address = "127.0.0.1";
  o.http.port = 0;
  o.http.threads = 2;
  o.sqlite.path = (dir.path() / "errand.db").string();
  o.tasks.poll_interval = 10ms;
  o.tasks.retry = {.base = 10ms, .cap = 20ms};
  o.logger = observe::Logger::to_callback(
      [&](std::string_view l) {
        const std::lock_guard lock(mu);
        lines.emplace_back(l);
      },
      observe::Level::debug);
  App app(o);
  register_builtin_tasks(app.tasks());
  install_task_api(app.http(), app.tasks());
  app.start();

  const std::string trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
  const std::string caller_span = "00f067aa0ba902b7";
  test::Client client(app.port());
  const auto body = boost::json::serialize(boost::json::object{
      {"type", "http.request"},
      {"payload",
       {{"url", "http://127.0.0.1:" + std::to_string(peer.port()) + "/hook"}, {"body", "{}"}}}});
  const auto res = client.request("POST", "/v1/tasks", body,
                                  {{"Content-Type", "application/json"},
                                   {"traceparent", "00-" + trace_id + "-" + caller_span + "-01"},
                                   {"tracestate", "congo=t61rcWkgMzE, rojo=00f067aa0ba902b7"}});
  ASSERT_EQ(res.status, 202) << res.body;
  EXPECT_EQ(res.header("traceparent").substr(3, 32), trace_id);  // the answer continues it too
  const std::string id(res.json().at("id").as_string());
  ASSERT_TRUE(test::eventually([&] {
    return client.request("GET", "/v1/tasks/" + id).json().at("state").as_string() == "succeeded";
  }));

  // The task record.
  const auto task = client.request("GET", "/v1/tasks/" + id).json();
  EXPECT_EQ(task.at("trace_id").as_string(), trace_id);
  EXPECT_EQ(task.at("tracestate").as_string(), "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7");
  EXPECT_EQ(task.at("attempt").as_int64(), 2);
  app.stop();

  const std::lock_guard lock(mu);
  // The webhook: both deliveries carry the trace, each from its own span.
  ASSERT_EQ(received.size(), 2U);
  std::set<std::string> spans;
  for (const auto& tp : received) {
    ASSERT_EQ(tp.size(), 55U) << tp;
    EXPECT_EQ(tp.substr(3, 32), trace_id) << tp;
    spans.insert(tp.substr(36, 16));
  }
  EXPECT_EQ(spans.size(), 2U);
  EXPECT_FALSE(spans.contains(caller_span));
  // And the caller's tracestate, unchanged, with each.
  for (const auto& ts : states) EXPECT_EQ(ts, "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7");

  // The logs: the request's line and every line of both attempts.
  bool request_line = false;
  std::set<std::int64_t> attempts;
  for (const auto& l : lines) {
    const auto v = boost::json::parse(l).as_object();
    const auto text = [&](std::string_view key) -> std::string {
      const auto* f = v.if_contains(key);
      return f != nullptr && f->is_string() ? std::string(f->as_string()) : std::string();
    };
    if (text("path") == "/v1/tasks" && text("msg") == "request") {
      request_line = true;
      EXPECT_EQ(text("trace_id"), trace_id) << l;
    }
    if (text("task_id") != id) continue;
    EXPECT_EQ(text("trace_id"), trace_id) << l;
    EXPECT_TRUE(v.contains("span_id")) << l;
    attempts.insert(v.at("attempt").as_int64());
  }
  EXPECT_TRUE(request_line);
  EXPECT_EQ(attempts, (std::set<std::int64_t>{1, 2}));
}

// An App on a fresh SQLite file, exporting its spans to `collector` at once.
AppOptions traced_options(const test::TempDir& dir, const test::Collector& collector) {
  AppOptions o;
  o.http.address = "127.0.0.1";
  o.http.port = 0;
  o.sqlite.path = (dir.path() / "errand.db").string();
  o.tasks.poll_interval = 10ms;
  o.tracing.endpoint = collector.url();
  o.tracing.batch_delay = 10ms;
  o.logger = observe::Logger::null();
  return o;
}

// With tracing on, a group's completion task's attempt links to each
// member's enqueue (producer) span: the fan-in in the trace.
TEST(Trace, AGroupsCompletionLinksToEveryMembersEnqueue) {
  test::Collector collector;
  test::TempDir dir;
  App app(traced_options(dir, collector));
  app.tasks().handle_raw("part", [](tasks::TaskContext&) {});
  app.tasks().handle_raw("summary", [](tasks::TaskContext&) {});
  app.start();

  tasks::EnqueueOptions traced;
  traced.trace = observe::TraceContext::generate();
  const auto group = app.tasks().enqueue_group(
      {{"part", boost::json::object{}, traced}, {"part", boost::json::object{}, traced}},
      tasks::TaskSpec{"summary", boost::json::object{}, traced});
  ASSERT_FALSE(group.completion_id.empty());
  ASSERT_TRUE(test::eventually([&] {
    const auto t = app.store().get(group.completion_id);
    return t && t->state == store::TaskState::succeeded;
  }));

  const auto named = [&](std::string_view name) {
    std::vector<boost::json::object> out;
    for (auto& s : collector.spans()) {
      if (s.at("name").as_string() == name) out.push_back(s);
    }
    return out;
  };
  ASSERT_TRUE(test::eventually([&] { return named("process summary").size() == 1; }));
  ASSERT_EQ(named("enqueue part").size(), 2U);
  std::set<std::string> producers;
  for (const auto& p : named("enqueue part"))
    producers.insert(std::string(p.at("spanId").as_string()));
  std::set<std::string> linked;
  const auto consumer = named("process summary").front();
  for (const auto& l : consumer.at("links").as_array()) {
    EXPECT_EQ(l.at("traceId").as_string(), traced.trace->trace_id);
    linked.insert(std::string(l.at("spanId").as_string()));
  }
  EXPECT_EQ(linked, producers);
  EXPECT_EQ(test::attribute(consumer, "errand.group.id").at("stringValue").as_string(),
            group.group_id);
  app.stop();
}

// email.send's delivery is a client span under its attempt, and the message
// carries that span's traceparent.
TEST(Trace, AnEmailIsAClientSpanWhoseTraceparentTheMessageCarries) {
  test::Collector collector;
  test::TempDir dir;
  test::SmtpServer smtp(dir.path());
  ASSERT_TRUE(smtp.ready()) << "python3-aiosmtpd did not start (scripts/bootstrap installs it)";
  App app(traced_options(dir, collector));
  register_email_send(app.tasks(),
                      {.host = "127.0.0.1", .port = smtp.port(), .from = "errand@example.org"});
  app.start();
  app.tasks().enqueue("email.send", {{"to", {"a@example.org"}}, {"subject", "hi"}, {"body", "x"}});
  ASSERT_TRUE(test::eventually([&] { return smtp.messages().size() == 1; }));

  const auto find = [&](std::string_view name) -> std::optional<boost::json::object> {
    for (auto& s : collector.spans()) {
      if (s.at("name").as_string() == name) return s;
    }
    return std::nullopt;
  };
  ASSERT_TRUE(test::eventually([&] { return find("smtp send") && find("process email.send"); }));
  const auto send = *find("smtp send");
  const auto attempt = *find("process email.send");
  EXPECT_EQ(send.at("kind").as_int64(), 3);  // CLIENT
  EXPECT_EQ(send.at("parentSpanId").as_string(), attempt.at("spanId").as_string());
  EXPECT_EQ(test::attribute(send, "server.port").at("intValue").as_string(),
            std::to_string(smtp.port()));
  const std::string traceparent = "traceparent: 00-" + std::string(send.at("traceId").as_string()) +
                                  "-" + std::string(send.at("spanId").as_string()) + "-01";
  EXPECT_NE(smtp.messages().front().find(traceparent), std::string::npos)
      << smtp.messages().front();
  app.stop();
}

}  // namespace
}  // namespace errand::app
