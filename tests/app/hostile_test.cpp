// A battery of hostile requests against the task API of a real server: each is
// refused with a clear 4xx in the one error shape, and the server is unharmed.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "errand/app/builtin_tasks.hpp"
#include "errand/app/task_api.hpp"
#include "errand/errand.hpp"
#include "support/http_client.hpp"
#include "support/temp_dir.hpp"

namespace errand::app {
namespace {

using namespace std::chrono_literals;

struct Case {
  std::string name;
  std::string method;
  std::string target;
  std::string body;
  int status;
  std::string code;
};

void PrintTo(const Case& c, std::ostream* os) {
  *os << c.name;
}

std::string nested(std::size_t depth) {
  return std::string(depth, '[') + std::string(depth, ']');
}

std::string task(std::string_view rest) {
  return "{" + std::string(rest) + "}";
}

const std::vector<Case>& cases() {
  static const std::vector<Case> all = {
      // Malformed and hostile JSON.
      {"deep_nesting", "POST", "/v1/tasks", nested(5000), 400, "invalid_json"},
      {"deep_payload", "POST", "/v1/tasks", task(R"("type":"demo.noop","payload":)" + nested(100)),
       400, "invalid_json"},
      {"invalid_utf8", "POST", "/v1/tasks",
       task("\"type\":\"demo.noop\",\"payload\":{\"x\":\"\xff\xfe\xfd\"}"), 400, "invalid_json"},
      {"overlong_utf8", "POST", "/v1/tasks", task("\"type\":\"demo.no\xc0\xafop\""), 400,
       "invalid_json"},
      {"truncated", "POST", "/v1/tasks", R"({"type":"demo.noop")", 400, "invalid_json"},
      {"not_an_object", "POST", "/v1/tasks", R"("demo.noop")", 400, "invalid_field"},
      {"empty_body", "POST", "/v1/tasks", "", 400, "invalid_json"},
      {"nul_in_type", "POST", "/v1/tasks", task(R"("type":"demo.noop\u0000")"), 400,
       "unknown_task_type"},
      {"type_not_string", "POST", "/v1/tasks", task(R"("type":5)"), 400, "invalid_field"},
      // Absurd numbers.
      {"huge_exponent", "POST", "/v1/tasks", task(R"("type":"demo.noop","priority":1e999999)"), 400,
       "invalid_field"},
      {"priority_1e308", "POST", "/v1/tasks", task(R"("type":"demo.noop","priority":1e308)"), 400,
       "invalid_field"},
      {"priority_past_int64", "POST", "/v1/tasks",
       task(R"("type":"demo.noop","priority":99999999999999999999999)"), 400, "invalid_field"},
      {"priority_fraction", "POST", "/v1/tasks", task(R"("type":"demo.noop","priority":1.5)"), 400,
       "invalid_field"},
      {"priority_out_of_range", "POST", "/v1/tasks",
       task(R"("type":"demo.noop","priority":2147483647)"), 400, "invalid_option"},
      {"negative_delay", "POST", "/v1/tasks", task(R"("type":"demo.noop","delay_ms":-1)"), 400,
       "invalid_option"},
      {"delay_past_ten_years", "POST", "/v1/tasks",
       task(R"("type":"demo.noop","delay_ms":9223372036854775807)"), 400, "invalid_option"},
      {"max_attempts_zero", "POST", "/v1/tasks", task(R"("type":"demo.noop","max_attempts":0)"),
       400, "invalid_option"},
      {"timeout_negative", "POST", "/v1/tasks",
       task(R"("type":"demo.noop","timeout_ms":-9223372036854775808)"), 400, "invalid_option"},
      {"run_at_year_9999", "POST", "/v1/tasks",
       task(R"("type":"demo.noop","run_at":"9999-12-31T23:59:59Z")"), 400, "invalid_option"},
      {"run_at_garbage", "POST", "/v1/tasks",
       task(R"("type":"demo.noop","run_at":"2026-13-45T99:99:99Z")"), 400, "invalid_field"},
      {"sleep_seconds_nan_like", "POST", "/v1/tasks",
       task(R"("type":"demo.sleep","payload":{"seconds":1e308})"), 422, "invalid_payload"},
      {"sleep_steps_negative", "POST", "/v1/tasks",
       task(R"("type":"demo.sleep","payload":{"seconds":1,"steps":-3})"), 422, "invalid_payload"},
      // Names and ids that try to escape.
      {"queue_traversal", "POST", "/v1/tasks", task(R"("type":"demo.noop","queue":"../../etc")"),
       400, "invalid_option"},
      {"queue_newline", "POST", "/v1/tasks", task(R"("type":"demo.noop","queue":"a\nb")"), 400,
       "invalid_option"},
      {"id_traversal_encoded", "GET", "/v1/tasks/..%2F..%2Fetc%2Fpasswd", "", 400, "invalid_id"},
      {"id_nul", "GET", "/v1/tasks/%00", "", 400, "invalid_id"},
      {"id_sql", "POST", "/v1/tasks/'%20OR%201=1--/cancel", "", 400, "invalid_id"},
      {"id_too_long", "DELETE", "/v1/tasks/" + std::string(300, 'A'), "", 400, "invalid_id"},
      {"id_bad_escape", "GET", "/v1/tasks/%zz", "", 400, "bad_request"},
      {"queue_name_traversal", "POST", "/v1/queues/..%2Fx/pause", "", 400, "invalid_queue"},
      {"cursor_sql", "GET", "/v1/tasks?cursor=%27%20OR%201%3D1%20--", "", 400, "invalid_query"},
      {"limit_negative", "GET", "/v1/tasks?limit=-1", "", 400, "invalid_query"},
      {"limit_huge", "GET", "/v1/tasks?limit=99999999999999999999", "", 400, "invalid_query"},
      {"state_unknown", "GET", "/v1/tasks?state=..%2F", "", 400, "invalid_query"},
      // http.request: no header injection, no other schemes.
      {"header_crlf_value", "POST", "/v1/tasks",
       task(R"("type":"http.request","payload":{"url":"http://127.0.0.1:9/",)"
            R"("headers":{"X-A":"v\r\nInjected: 1"}})"),
       422, "invalid_payload"},
      {"header_crlf_name", "POST", "/v1/tasks",
       task(R"("type":"http.request","payload":{"url":"http://127.0.0.1:9/",)"
            R"("headers":{"X-A\r\nInjected":"v"}})"),
       422, "invalid_payload"},
      {"header_name_colon", "POST", "/v1/tasks",
       task(R"("type":"http.request","payload":{"url":"http://127.0.0.1:9/",)"
            R"("headers":{"Host: evil":"v"}})"),
       422, "invalid_payload"},
      {"header_nul", "POST", "/v1/tasks",
       task(R"("type":"http.request","payload":{"url":"http://127.0.0.1:9/",)"
            R"("headers":{"X-A":"a\u0000b"}})"),
       422, "invalid_payload"},
      {"url_file_scheme", "POST", "/v1/tasks",
       task(R"("type":"http.request","payload":{"url":"file:///etc/passwd"})"), 422,
       "invalid_payload"},
      {"url_gopher", "POST", "/v1/tasks",
       task(R"("type":"http.request","payload":{"url":"gopher://127.0.0.1:70/_x"})"), 422,
       "invalid_payload"},
      {"url_crlf", "POST", "/v1/tasks",
       task(R"("type":"http.request","payload":{"url":"http://127.0.0.1:9/\r\nX: y"})"), 422,
       "invalid_payload"},
      {"method_injection", "POST", "/v1/tasks",
       task(R"("type":"http.request","payload":{"url":"http://127.0.0.1:9/",)"
            R"("method":"GET / HTTP/1.1\r\nX:"})"),
       422, "invalid_payload"},
  };
  return all;
}

class Hostile : public ::testing::TestWithParam<Case> {
 protected:
  static void SetUpTestSuite() {
    dir = new test::TempDir();
    AppOptions o;
    o.http.address = "127.0.0.1";
    o.http.port = 0;
    o.http.threads = 2;
    o.http.max_body_bytes = 64 * 1024;
    o.http.max_header_bytes = 8 * 1024;
    o.sqlite.path = (dir->path() / "errand.db").string();
    o.tasks.poll_interval = 10ms;
    o.tasks.shutdown_grace = 50ms;
    o.logger = observe::Logger::null();
    app = new App(o);
    register_builtin_tasks(app->tasks());
    install_task_api(app->http(), app->tasks());
    app->start();
  }
  static void TearDownTestSuite() {
    delete app;
    delete dir;
  }

  static test::TempDir* dir;
  static App* app;
};
test::TempDir* Hostile::dir = nullptr;
App* Hostile::app = nullptr;

TEST_P(Hostile, IsRefusedWithAClear4xx) {
  const Case& c = GetParam();
  test::Client client(app->port());
  const auto r = client.request(c.method, c.target, c.body, {{"Content-Type", "application/json"}});
  EXPECT_EQ(r.status, c.status) << r.body;
  const auto body = r.json();
  ASSERT_TRUE(body.is_object() && body.as_object().contains("error")) << r.body;
  EXPECT_EQ(body.at("error").at("code").as_string(), c.code) << r.body;
  EXPECT_FALSE(body.at("error").at("message").as_string().empty());
  // Nothing was stored by a refused enqueue.
  EXPECT_EQ(client.request("GET", "/v1/tasks?limit=1").json().at("tasks").as_array().size(), 0U);
  EXPECT_EQ(client.request("GET", "/healthz").status, 200);
}

INSTANTIATE_TEST_SUITE_P(Battery, Hostile, ::testing::ValuesIn(cases()),
                         [](const auto& param_info) { return param_info.param.name; });

TEST_F(Hostile, OversizedHeadersAndBodiesAndSmugglingAttempts) {
  {
    test::Client c(app->port());
    const auto r = c.request("GET", "/v1/queues", "", {{"X-Big", std::string(9000, 'a')}});
    EXPECT_EQ(r.status, 431);
  }
  {
    test::Client c(app->port());
    const auto r = c.request("POST", "/v1/tasks", std::string(70 * 1024, ' '),
                             {{"Content-Type", "application/json"}});
    EXPECT_EQ(r.status, 413);
  }
  {
    test::Client c(app->port());  // Content-Length and chunked together: refused, not guessed
    c.send(test::raw_request("POST", "/v1/tasks",
                             "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n"));
    EXPECT_EQ(c.read().status, 400);
  }
  {
    test::Client c(app->port());  // a header with a bare CR in its value
    c.send("GET /v1/queues HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n");
    EXPECT_EQ(c.read().status, 400);
  }
  {
    test::Client c(app->port());  // a request line with a space-smuggled second request
    c.send("GET /v1/queues HTTP/1.1 GET /x\r\nHost: x\r\n\r\n");
    EXPECT_EQ(c.read().status, 400);
  }
  // Still serving, and real work still runs.
  test::Client c(app->port());
  EXPECT_EQ(c.request("GET", "/healthz").status, 200);
  const auto r = c.request("POST", "/v1/tasks", R"({"type":"demo.noop"})",
                           {{"Content-Type", "application/json"}});
  ASSERT_EQ(r.status, 202) << r.body;
  const std::string id(r.json().at("id").as_string());
  EXPECT_TRUE(test::eventually([&] {
    return c.request("GET", "/v1/tasks/" + id).json().at("state").as_string() == "succeeded";
  }));
  EXPECT_EQ(c.request("DELETE", "/v1/tasks/" + id).status, 204);
}

}  // namespace
}  // namespace errand::app
