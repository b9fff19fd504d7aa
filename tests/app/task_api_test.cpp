// The REST task API over real HTTP, against an App on an ephemeral port with a
// SQLite file in a temp dir: every route, every error status it can give.
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
using test::RawResponse;

class TaskApi : public ::testing::Test {
 protected:
  void SetUp() override {
    AppOptions o;
    o.http.address = "127.0.0.1";
    o.http.port = 0;
    o.http.threads = 2;
    o.http.max_body_bytes = 16 * 1024;
    o.sqlite.path = (dir.path() / "errand.db").string();
    o.tasks.queues = {{"default", 2, 1}, {"mail", 1, 1}};
    o.tasks.poll_interval = 10ms;
    o.tasks.queue_max_waiting = {{"limited", 2}};  // not served here: its tasks keep waiting
    o.tasks.shutdown_grace = 50ms;  // demo.sleep tasks still running at the end go back to pending
    o.logger = observe::Logger::null();
    app = std::make_unique<App>(o);
    register_builtin_tasks(app->tasks());
    app->tasks().handle_raw(
        "fail", [](tasks::TaskContext&) { return tasks::Outcome::fail_permanently("always"); });
    install_task_api(app->http(), app->tasks(), {.max_batch = 5, .stats = app->task_stats()});
    app->start();
    client = std::make_unique<test::Client>(app->port());
  }

  RawResponse post(std::string_view target, std::string_view body,
                   std::string content_type = "application/json") {
    std::vector<std::pair<std::string, std::string>> h;
    if (!content_type.empty()) h.emplace_back("Content-Type", content_type);
    return client->request("POST", target, body, h);
  }
  RawResponse get(std::string_view target) { return client->request("GET", target); }
  static std::string code(const RawResponse& r) {
    return std::string(r.json().at("error").at("code").as_string());
  }
  std::string enqueue(std::string_view body) {
    const auto r = post("/v1/tasks", body);
    EXPECT_EQ(r.status, 202) << r.body;
    return std::string(r.json().at("id").as_string());
  }
  bool reaches(const std::string& id, std::string_view state) {
    return test::eventually([&] {
      const auto r = get("/v1/tasks/" + id);
      return r.status == 200 && r.json().at("state").as_string() == state;
    });
  }

  test::TempDir dir;
  std::unique_ptr<App> app;
  std::unique_ptr<test::Client> client;
};

TEST_F(TaskApi, EnqueueRunAndRead) {
  const auto r = post("/v1/tasks", R"({"type":"demo.sleep","payload":{"seconds":0.05,"steps":2},
                                       "queue":"mail","priority":3,"max_attempts":2,"timeout_ms":60000})");
  ASSERT_EQ(r.status, 202) << r.body;
  EXPECT_TRUE(r.json().at("created").as_bool());
  EXPECT_EQ(r.json().at("state").as_string(), "pending");
  const std::string id(r.json().at("id").as_string());
  ASSERT_TRUE(reaches(id, "succeeded"));
  const auto t = get("/v1/tasks/" + id).json();
  EXPECT_EQ(t.at("queue").as_string(), "mail");
  EXPECT_EQ(t.at("priority").as_int64(), 3);
  EXPECT_EQ(t.at("max_attempts").as_int64(), 2);
  EXPECT_EQ(t.at("timeout_ms").as_int64(), 60000);
  EXPECT_EQ(t.at("payload").at("steps").as_int64(), 2);
  EXPECT_EQ(t.at("result").at("steps").as_int64(), 2);
  EXPECT_EQ(t.at("progress").at("percent").as_int64(), 100);
  EXPECT_FALSE(t.at("finished_at").is_null());
}

// A group has a resource of its own; its completion task's id, before the
// task exists, answers 404 group_pending naming the group, not a bare 404.
TEST_F(TaskApi, AGroupIsReadableAndItsCompletionIdSaysItIsPending) {
  const auto g =
      app->tasks().enqueue_group({{"demo.sleep", {{"seconds", 60}}, {.queue = "limited"}},
                                  {"demo.sleep", {{"seconds", 0}}, {}}},
                                 tasks::TaskSpec{"demo.noop", {}, {}});
  ASSERT_TRUE(reaches(g.members[1].id, "succeeded"));
  auto r = get("/v1/groups/" + g.group_id);
  ASSERT_EQ(r.status, 200) << r.body;
  auto body = r.json();
  EXPECT_EQ(body.at("id").as_string(), g.group_id);
  EXPECT_EQ(body.at("state").as_string(), "waiting");
  EXPECT_EQ(body.at("size").as_int64(), 2);
  EXPECT_EQ(body.at("remaining").as_int64(), 1);
  EXPECT_EQ(body.at("members").at("pending").as_int64(), 1);  // "limited" is not served here
  EXPECT_EQ(body.at("members").at("succeeded").as_int64(), 1);
  EXPECT_EQ(body.at("members").at("dead").as_int64(), 0);
  EXPECT_EQ(body.at("completion_id").as_string(), g.completion_id);
  EXPECT_TRUE(body.at("finished_at").is_null());

  r = get("/v1/tasks/" + g.completion_id);
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(code(r), "group_pending");
  EXPECT_NE(r.json().at("error").at("message").as_string().find(g.group_id), std::string::npos);

  // The last member ends (cancelled): the group finishes, its completion runs.
  ASSERT_EQ(post("/v1/tasks/" + g.members[0].id + "/cancel", "").status, 200);
  ASSERT_TRUE(reaches(g.completion_id, "succeeded"));
  body = get("/v1/groups/" + g.group_id).json();
  EXPECT_EQ(body.at("state").as_string(), "finished");
  EXPECT_EQ(body.at("remaining").as_int64(), 0);
  EXPECT_EQ(body.at("members").at("cancelled").as_int64(), 1);
  EXPECT_FALSE(body.at("finished_at").is_null());

  r = get("/v1/groups/01ARZ3NDEKTSV4RRFFQ69G5FAV");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(code(r), "group_not_found");
  EXPECT_EQ(code(get("/v1/tasks/01ARZ3NDEKTSV4RRFFQ69G5FAV")), "task_not_found");
  r = get("/v1/groups/not-an-id");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(code(r), "invalid_id");
}

TEST_F(TaskApi, TheEnqueuingRequestsTraceIsStored) {
  const std::string trace = "4bf92f3577b34da6a3ce929d0e0e4736";
  const auto r = client->request(
      "POST", "/v1/tasks", R"({"type":"demo.sleep","payload":{"seconds":0}})",
      {{"traceparent", "00-" + trace + "-00f067aa0ba902b7-01"}, {"X-Request-ID", "enqueue-1"}});
  ASSERT_EQ(r.status, 202);
  const auto t = get("/v1/tasks/" + std::string(r.json().at("id").as_string())).json();
  EXPECT_EQ(t.at("trace_id").as_string(), trace);
  EXPECT_EQ(t.at("request_id").as_string(), "enqueue-1");
}

TEST_F(TaskApi, DelayRunAtAndUniqueKey) {
  const auto delayed = post("/v1/tasks", R"({"type":"demo.sleep","delay_ms":3600000})");
  EXPECT_EQ(delayed.json().at("state").as_string(), "scheduled");
  const auto later =
      post("/v1/tasks", R"({"type":"demo.sleep","run_at":"2030-01-01T00:00:00+01:00"})");
  ASSERT_EQ(later.status, 202);
  const auto t = get("/v1/tasks/" + std::string(later.json().at("id").as_string())).json();
  EXPECT_EQ(t.at("run_at").as_string(), "2029-12-31T23:00:00.000Z");

  const auto a = post("/v1/tasks", R"({"type":"demo.sleep","delay_ms":60000,"unique_key":"k1"})");
  const auto b = post("/v1/tasks", R"({"type":"demo.sleep","unique_key":"k1"})");
  EXPECT_EQ(a.status, 202);
  EXPECT_EQ(b.status, 200);  // nothing new was accepted
  EXPECT_FALSE(b.json().at("created").as_bool());
  EXPECT_EQ(a.json().at("id"), b.json().at("id"));
}

TEST_F(TaskApi, BadEnqueuesGetClearErrors) {
  auto r = post("/v1/tasks", "{not json");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(code(r), "invalid_json");
  r = post("/v1/tasks", R"({"payload":{}})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(code(r), "invalid_field");
  EXPECT_NE(r.body.find("'type'"), std::string::npos);
  r = post("/v1/tasks", R"({"type":"nope"})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(code(r), "unknown_task_type");
  r = post("/v1/tasks", R"({"type":"demo.sleep","payload":{"seconds":"soon"}})");
  EXPECT_EQ(r.status, 422);
  EXPECT_EQ(code(r), "invalid_payload");
  r = post("/v1/tasks", R"({"type":"demo.sleep","delay_ms":-5})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(code(r), "invalid_option");
  r = post("/v1/tasks", R"({"type":"demo.sleep","max_attempts":99999999})");
  EXPECT_EQ(code(r), "invalid_option");
  r = post("/v1/tasks", R"({"type":"demo.sleep","run_at":"tomorrow"})");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("run_at"), std::string::npos);
  for (const char* body : {R"({"type":"demo.sleep","run_at":"2026-01-01T-1:00:00Z"})",
                           R"({"type":"demo.sleep","run_at":"2026-01-01T10:00:00+-1:00"})",
                           R"({"type":"demo.sleep","run_at":"-001-01-01T10:00:00Z"})",
                           R"({"type":"demo.sleep","run_at":"3026-01-01T00:00:00Z"})",
                           R"({"type":"demo.sleep","timeout_ms":9223372036854775807})",
                           R"({"type":"demo.sleep","delay_ms":9223372036854775807})"}) {
    r = post("/v1/tasks", body);
    EXPECT_EQ(r.status, 400) << body;  // absurd times are refused, never wrapped around
  }
  r = post("/v1/tasks", R"({"type":"demo.sleep"})", "text/plain");
  EXPECT_EQ(r.status, 415);
  EXPECT_EQ(code(r), "unsupported_media_type");
  EXPECT_EQ(post("/v1/tasks", R"({"type":"demo.sleep"})", "application/json; charset=utf-8").status,
            202);
  EXPECT_EQ(
      post("/v1/tasks", R"({"type":"demo.sleep"})", " Application/JSON ;charset=utf-8").status,
      202);
  for (const char* type : {"application/jsonx", "application/js", "application/json-seq"}) {
    EXPECT_EQ(post("/v1/tasks", R"({"type":"demo.sleep"})", type).status, 415) << type;
  }
  {
    // Over --max-body-bytes: answered before the body is read, and closed; on
    // a connection of its own, which is closed here so the server need not linger.
    test::Client other(app->port());
    r = other.request("POST", "/v1/tasks",
                      R"({"type":"demo.sleep","payload":")" + std::string(20 * 1024, 'x') + "\"}",
                      {{"Content-Type", "application/json"}});
    EXPECT_EQ(r.status, 413);
  }
}

// A typo is an error, not a silently dropped option: unknown top-level fields
// of every task body, and fields a typed payload does not have, are refused
// by name; nothing is stored.
TEST_F(TaskApi, UnknownFieldsAreRefusedByName) {
  auto r = post("/v1/tasks", R"({"type":"demo.sleep","priorty":5})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(code(r), "invalid_field");
  EXPECT_NE(r.body.find("unknown field 'priorty'"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("priority"), std::string::npos) << r.body;  // the known fields are listed
  r = post("/v1/tasks", R"({"type":"demo.sleep","a":1,"b":2})");
  EXPECT_NE(r.body.find("unknown fields 'a', 'b'"), std::string::npos) << r.body;
  r = post("/v1/tasks/batch",
           R"({"tasks":[{"type":"demo.sleep"},{"type":"demo.sleep","qeue":"x"}]})");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("tasks[1].qeue"), std::string::npos) << r.body;
  r = post("/v1/tasks/batch", R"({"tasks":[{"type":"demo.sleep"}],"atomic":true})");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("'atomic'"), std::string::npos) << r.body;
  r = post("/async-task", R"({"task_type":"demo.sleep","task_params":{}})", "");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("'task_params'"), std::string::npos) << r.body;
  // demo.sleep has `seconds`, not `ms`: it would have slept its default.
  r = post("/v1/tasks", R"({"type":"demo.sleep","payload":{"ms":5}})");
  EXPECT_EQ(r.status, 422);
  EXPECT_EQ(code(r), "invalid_payload");
  EXPECT_NE(r.body.find("unknown field 'ms'"), std::string::npos) << r.body;
  // Raw handlers take any JSON.
  EXPECT_EQ(post("/v1/tasks", R"({"type":"demo.noop","payload":{"anything":[1,2]}})").status, 202);
  EXPECT_EQ(get("/v1/tasks?limit=100").json().at("tasks").as_array().size(), 1U);
}

// What an error message repeats of the client's input is bounded.
TEST_F(TaskApi, ErrorsQuoteABoundedPrefixOfTheInput) {
  const std::string huge(10 * 1024, 'q');
  auto r = post("/v1/tasks", R"({"type":")" + huge + R"("})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(code(r), "unknown_task_type");
  EXPECT_LT(r.body.size(), 400U) << r.body.size();
  EXPECT_NE(r.body.find("(10240 bytes)"), std::string::npos) << r.body;
  r = post("/v1/tasks", R"({"type":"demo.sleep",")" + huge + R"(":1})");
  EXPECT_EQ(r.status, 400);
  EXPECT_LT(r.body.size(), 600U) << r.body.size();
  r = post("/v1/tasks", R"({"type":"demo.sleep"})", huge);
  EXPECT_EQ(r.status, 415);
  EXPECT_LT(r.body.size(), 400U) << r.body.size();
}

TEST_F(TaskApi, BatchIsAtomicAndBounded) {
  auto r = post("/v1/tasks/batch", R"({"tasks":[{"type":"demo.sleep","payload":{"seconds":0}},
                                                 {"type":"demo.sleep","queue":"mail"}]})");
  ASSERT_EQ(r.status, 202) << r.body;
  EXPECT_EQ(r.json().at("tasks").as_array().size(), 2U);
  r = post("/v1/tasks/batch", R"({"tasks":[{"type":"demo.sleep"},{"type":"nope"}]})");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("tasks[1]"), std::string::npos) << r.body;
  r = post("/v1/tasks/batch", R"({"tasks":[{"type":"demo.sleep"},{"type":7}]})");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("tasks[1].type"), std::string::npos) << r.body;
  r = post("/v1/tasks/batch", R"({"tasks":[]})");
  EXPECT_EQ(r.status, 400);
  std::string six = R"({"tasks":[)";
  for (int i = 0; i < 6; ++i) six += std::string(i ? "," : "") + R"({"type":"demo.sleep"})";
  r = post("/v1/tasks/batch", six + "]}");
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(code(r), "batch_too_large");
  const auto list = get("/v1/tasks?limit=100").json();
  EXPECT_EQ(list.at("tasks").as_array().size(), 2U);  // only the first batch
}

TEST_F(TaskApi, ListPagesWithACursorAndFilters) {
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    ids.push_back(enqueue(R"({"type":"demo.sleep","delay_ms":600000,"queue":"mail"})"));
  }
  enqueue(R"({"type":"demo.sleep","delay_ms":600000})");
  std::vector<std::string> seen;
  std::string cursor;
  for (int page = 0; page < 10; ++page) {
    const auto r = get("/v1/tasks?queue=mail&state=scheduled&limit=2" +
                       (cursor.empty() ? "" : "&cursor=" + cursor));
    ASSERT_EQ(r.status, 200) << r.body;
    const auto body = r.json();
    for (const auto& t : body.at("tasks").as_array()) {
      seen.emplace_back(t.at("id").as_string());
      EXPECT_FALSE(t.as_object().contains("payload"));  // lists leave bodies out
    }
    if (body.at("next_cursor").is_null()) break;
    cursor = std::string(body.at("next_cursor").as_string());
  }
  EXPECT_EQ(seen, std::vector<std::string>(ids.rbegin(), ids.rend()));  // newest first, no gaps
  EXPECT_EQ(get("/v1/tasks?type=demo.sleep&limit=100").json().at("tasks").as_array().size(), 6U);

  for (const char* bad :
       {"limit=0", "limit=1001", "limit=x", "state=running", "cursor=../../etc"}) {
    const auto r = get(std::string("/v1/tasks?") + bad);
    EXPECT_EQ(r.status, 400) << bad;
    EXPECT_EQ(code(r), "invalid_query") << bad;
  }
}

// ?unique_key= finds the unfinished task holding the key (with the other
// filters applied to it); a finished one holds none.
TEST_F(TaskApi, ListFindsTheHolderOfAUniqueKey) {
  const auto id =
      enqueue(R"({"type":"demo.sleep","delay_ms":600000,"queue":"mail","unique_key":"order-42"})");
  enqueue(R"({"type":"demo.sleep","delay_ms":600000,"queue":"mail"})");  // newer, no key
  auto found = get("/v1/tasks?unique_key=order-42").json();
  ASSERT_EQ(found.at("tasks").as_array().size(), 1U);
  EXPECT_EQ(found.at("tasks").at(0).at("id").as_string(), id);
  EXPECT_TRUE(found.at("next_cursor").is_null());
  EXPECT_EQ(get("/v1/tasks?unique_key=order-42&queue=mail&state=scheduled")
                .json()
                .at("tasks")
                .as_array()
                .size(),
            1U);
  EXPECT_TRUE(
      get("/v1/tasks?unique_key=order-42&queue=default").json().at("tasks").as_array().empty());
  EXPECT_TRUE(get("/v1/tasks?unique_key=order-43").json().at("tasks").as_array().empty());
  EXPECT_EQ(post("/v1/tasks/" + id + "/cancel", "").status, 200);
  EXPECT_TRUE(get("/v1/tasks?unique_key=order-42").json().at("tasks").as_array().empty());
  for (const std::string& bad :
       {std::string("unique_key="), "unique_key=" + std::string(257, 'k')}) {
    const auto r = get("/v1/tasks?" + bad);
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(code(r), "invalid_query");
  }
}

TEST_F(TaskApi, CancelARunningTaskThenRetryAndDelete) {
  const auto id = enqueue(R"({"type":"demo.sleep","payload":{"seconds":600,"steps":600}})");
  ASSERT_TRUE(reaches(id, "active"));
  auto r = post("/v1/tasks/" + id + "/cancel", "");
  EXPECT_EQ(r.status, 202);
  EXPECT_TRUE(r.json().at("cancel_requested").as_bool());
  ASSERT_TRUE(reaches(id, "cancelled"));  // demo.sleep honours its stop token
  EXPECT_EQ(post("/v1/tasks/" + id + "/cancel", "").status, 409);

  r = post("/v1/tasks/" + id + "/retry", "");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.json().at("state").as_string(), "pending");
  ASSERT_TRUE(reaches(id, "active"));
  r = post("/v1/tasks/" + id + "/retry", "");
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(code(r), "task_not_retryable");
  r = client->request("DELETE", "/v1/tasks/" + id);
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(code(r), "task_not_final");
  EXPECT_EQ(post("/v1/tasks/" + id + "/cancel", "").status, 202);
  ASSERT_TRUE(reaches(id, "cancelled"));
  EXPECT_EQ(client->request("DELETE", "/v1/tasks/" + id).status, 204);
  EXPECT_EQ(get("/v1/tasks/" + id).status, 404);

  const auto waiting = enqueue(R"({"type":"demo.sleep","delay_ms":600000})");
  r = post("/v1/tasks/" + waiting + "/cancel", "");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.json().at("state").as_string(), "cancelled");
}

TEST_F(TaskApi, EventsStreamStateAndProgressUntilFinal) {
  // A step a second: each intermediate percent stays in the store for a
  // second, several of the stream's polls, however late the stream opens.
  const auto id = enqueue(R"({"type":"demo.sleep","payload":{"seconds":3,"steps":3}})");
  test::Client events(app->port(), 30s);
  events.send("GET /v1/tasks/" + id + "/events HTTP/1.1\r\nHost: t\r\n\r\n");
  const auto r = events.read();  // the stream ends when the task is final
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("Content-Type"), "text/event-stream");
  EXPECT_EQ(r.header("Cache-Control"), "no-cache");
  std::vector<boost::json::value> seen;
  std::size_t pos = 0;
  const std::string_view marker = "event: task\ndata: ";
  while ((pos = r.body.find(marker, pos)) != std::string::npos) {
    pos += marker.size();
    seen.push_back(boost::json::parse(r.body.substr(pos, r.body.find('\n', pos) - pos)));
  }
  ASSERT_GE(seen.size(), 2U) << r.body;
  EXPECT_EQ(seen.back().at("state").as_string(), "succeeded");
  EXPECT_EQ(seen.back().at("result").at("steps").as_int64(), 3);
  EXPECT_EQ(seen.back().at("progress").at("percent").as_int64(), 100);
  bool progressed = false;
  for (const auto& e : seen) {
    const auto p = e.at("progress").at("percent").as_int64();
    progressed = progressed || (p > 0 && p < 100);
  }
  EXPECT_TRUE(progressed) << r.body;  // intermediate steps were streamed

  EXPECT_EQ(get("/v1/tasks/01ARZ3NDEKTSV4RRFFQ69G5FAV/events").status, 404);
}

TEST_F(TaskApi, UnknownAndMalformedIds) {
  const std::string missing = "01ARZ3NDEKTSV4RRFFQ69G5FAV";
  for (const auto& [method, target] : std::vector<std::pair<std::string, std::string>>{
           {"GET", "/v1/tasks/" + missing},
           {"POST", "/v1/tasks/" + missing + "/cancel"},
           {"POST", "/v1/tasks/" + missing + "/retry"},
           {"DELETE", "/v1/tasks/" + missing}}) {
    const auto r = client->request(method, target);
    EXPECT_EQ(r.status, 404) << method << " " << target;
    EXPECT_EQ(code(r), "task_not_found");
  }
  const auto r = get("/v1/tasks/not-an-id");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(code(r), "invalid_id");
  EXPECT_EQ(get("/v1/tasks/%2e%2e%2fetc").status, 400);
  EXPECT_EQ(client->request("PUT", "/v1/tasks/" + missing).status, 405);
}

// One call acts on several tasks, each on its own, and says what happened to
// each, in order, with a count per outcome.
TEST_F(TaskApi, BulkActionsAnswerForEachTask) {
  const auto dead1 = enqueue(R"({"type":"fail","max_attempts":1})");
  const auto dead2 = enqueue(R"({"type":"fail","max_attempts":1})");
  ASSERT_TRUE(reaches(dead1, "dead"));
  ASSERT_TRUE(reaches(dead2, "dead"));
  const auto waiting = enqueue(R"({"type":"demo.noop","queue":"limited"})");  // never served
  const std::string missing = "01ARZ3NDEKTSV4RRFFQ69G5FAV";

  auto bulk = [&](std::string_view action, const std::vector<std::string>& ids) {
    boost::json::array a;
    for (const auto& id : ids) a.emplace_back(id);
    return post("/v1/tasks/bulk",
                boost::json::serialize(boost::json::object{{"action", action}, {"ids", a}}));
  };
  auto outcomes = [](const RawResponse& r) {
    std::vector<std::string> out;
    const auto v = r.json();
    for (const auto& x : v.at("results").as_array()) {
      out.emplace_back(x.at("outcome").as_string());
    }
    return out;
  };

  auto r = bulk("retry", {dead1, waiting, missing, dead2});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(outcomes(r), (std::vector<std::string>{"retried", "task_not_retryable",
                                                   "task_not_found", "retried"}));
  EXPECT_EQ(r.json().at("counts").at("retried").as_int64(), 2);
  EXPECT_EQ(r.json().at("results").at(0).at("id").as_string(), dead1);
  ASSERT_TRUE(reaches(dead1, "dead"));  // ran again, failed again

  r = bulk("cancel", {waiting, waiting});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(outcomes(r), (std::vector<std::string>{"cancelled", "task_final"}));

  r = bulk("delete", {waiting, dead1, missing});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(outcomes(r), (std::vector<std::string>{"deleted", "deleted", "task_not_found"}));
  EXPECT_EQ(get("/v1/tasks/" + waiting).status, 404);

  const auto pending = enqueue(R"({"type":"demo.noop","queue":"limited"})");
  EXPECT_EQ(outcomes(bulk("delete", {pending})), std::vector<std::string>{"task_not_final"});

  // Bad requests are refused whole, before any task is touched.
  EXPECT_EQ(code(bulk("archive", {pending})), "invalid_field");
  EXPECT_EQ(code(bulk("cancel", {})), "invalid_field");
  EXPECT_EQ(code(bulk("cancel", {pending, "not-an-id"})), "invalid_id");
  r = bulk("cancel", std::vector<std::string>(6, pending));  // max_batch is 5 here
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(code(r), "batch_too_large");
  EXPECT_EQ(code(post("/v1/tasks/bulk", R"({"action":"cancel","ids":[],"extra":1})")),
            "invalid_field");  // "unknown field extra"
  EXPECT_TRUE(reaches(pending, "pending"));
}

// Per-second counts and latencies of the last minutes, per queue, for charts.
TEST_F(TaskApi, StatsCountEachSecondsAttemptsPerQueue) {
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) ids.push_back(enqueue(R"({"type":"demo.noop"})"));
  ids.push_back(enqueue(R"({"type":"fail","max_attempts":1})"));
  for (std::size_t i = 0; i < ids.size(); ++i)
    ASSERT_TRUE(reaches(ids[i], i < 3 ? "succeeded" : "dead"));

  const auto r = get("/v1/stats?window=2m");
  ASSERT_EQ(r.status, 200) << r.body;
  const auto v = r.json();
  EXPECT_EQ(v.at("window_s").as_int64(), 120);
  EXPECT_EQ(v.at("end").as_int64() - v.at("start").as_int64(), 119);
  EXPECT_EQ(v.at("nodes").as_array().size(), 1U);
  const auto& queues = v.at("queues").as_array();
  ASSERT_EQ(queues.size(), 1U);
  const auto& q = queues[0];
  EXPECT_EQ(q.at("name").as_string(), "default");
  std::int64_t succeeded = 0;
  std::int64_t failed = 0;
  std::size_t timed = 0;
  ASSERT_EQ(q.at("succeeded").as_array().size(), 120U);
  for (std::size_t i = 0; i < 120; ++i) {
    succeeded += q.at("succeeded").at(i).as_int64();
    failed += q.at("failed").at(i).as_int64();
    if (!q.at("run_p95_ms").at(i).is_null()) ++timed;
  }
  EXPECT_EQ(succeeded, 3);
  EXPECT_EQ(failed, 1);
  EXPECT_GE(timed, 1U);
  EXPECT_EQ(get("/v1/stats").json().at("window_s").as_int64(), 900);  // the default: 15 min
  for (const char* bad : {"0s", "16m", "abc", "5h", "-1"}) {
    const auto e = get(std::string("/v1/stats?window=") + bad);
    EXPECT_EQ(e.status, 400) << bad;
    EXPECT_EQ(code(e), "invalid_query") << bad;
  }
}

TEST_F(TaskApi, QueuesPauseAndResume) {
  auto r = post("/v1/queues/mail/pause", "");
  ASSERT_EQ(r.status, 200);
  const auto id = enqueue(R"({"type":"demo.sleep","queue":"mail","payload":{"seconds":0}})");
  auto queues = get("/v1/queues").json().at("queues").as_array();
  ASSERT_EQ(queues.size(), 2U);
  EXPECT_EQ(queues[1].at("name").as_string(), "mail");
  EXPECT_TRUE(queues[1].at("paused").as_bool());
  EXPECT_EQ(queues[1].at("counts").at("pending").as_int64(), 1);
  EXPECT_EQ(queues[1].at("workers").as_int64(), 1);
  EXPECT_EQ(queues[0].at("name").as_string(), "default");  // served, even while empty
  EXPECT_EQ(post("/v1/queues/mail/resume", "").status, 200);
  ASSERT_TRUE(reaches(id, "succeeded"));
  r = post("/v1/queues/bad%20name/pause", "");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(code(r), "invalid_queue");
}

TEST_F(TaskApi, AFullQueueAnswers503WithRetryAfter) {
  const std::string body = R"({"type":"demo.noop","queue":"limited"})";
  enqueue(body);
  enqueue(body);  // the second: at the limit
  const auto full = post("/v1/tasks", body);
  EXPECT_EQ(full.status, 503) << full.body;
  EXPECT_EQ(code(full), "queue_full");
  EXPECT_EQ(full.header("Retry-After"), "1");
  const auto batch =
      post("/v1/tasks/batch", R"({"tasks":[{"type":"demo.noop","queue":"limited"}]})");
  EXPECT_EQ(batch.status, 503) << batch.body;
  // Other queues are untouched, and the full one takes tasks again once room is made.
  enqueue(R"({"type":"demo.noop"})");
  const auto page = get("/v1/tasks?queue=limited").json();
  const std::string id(page.at("tasks").at(0).at("id").as_string());
  EXPECT_EQ(post("/v1/tasks/" + id + "/cancel", "").status, 200);
  enqueue(body);
}

TEST_F(TaskApi, GinTutorialRoute) {
  auto r = post("/async-task", R"({"task_type":"demo.sleep","task_param":{"seconds":0}})", "");
  ASSERT_EQ(r.status, 202);
  EXPECT_EQ(r.json().at("message").as_string(), "Task started");
  ASSERT_TRUE(reaches(std::string(r.json().at("id").as_string()), "succeeded"));
  r = post("/async-task", R"({"task_type":"resize_image","task_param":"x.png"})", "");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(code(r), "unknown_task_type");
}

TEST_F(TaskApi, FailedTaskShowsItsError) {
  const auto id = enqueue(R"({"type":"fail"})");
  ASSERT_TRUE(reaches(id, "dead"));
  EXPECT_EQ(get("/v1/tasks/" + id).json().at("last_error").as_string(), "always");
}

TEST_F(TaskApi, OpenApiDocumentListsEveryRoute) {
  const auto r = get("/v1/openapi.json");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.header("Content-Type"), "application/json");
  const auto doc = r.json();
  EXPECT_EQ(doc.at("openapi").as_string(), "3.0.3");
  const auto& paths = doc.at("paths").as_object();
  // Every route the server has, with its method, ":param" written "{param}".
  std::size_t checked = 0;
  for (const auto& route : app->http().routes()) {
    std::string path;
    std::string_view rest = route->pattern;
    while (!rest.empty()) {
      const auto colon = rest.find(':');
      path += rest.substr(0, colon);
      if (colon == std::string_view::npos) break;
      rest.remove_prefix(colon + 1);
      const auto end = std::min(rest.find('/'), rest.size());
      path += "{" + std::string(rest.substr(0, end)) + "}";
      rest.remove_prefix(end);
    }
    std::string method = route->method;
    std::transform(method.begin(), method.end(), method.begin(),
                   [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    ASSERT_TRUE(paths.contains(path)) << path;
    EXPECT_TRUE(paths.at(path).as_object().contains(method)) << method << " " << path;
    ++checked;
  }
  EXPECT_GE(checked, 16U);
}

// Schedules are registered before start; GET /v1/schedules shows each with
// its last tick (once one fired) and its next, and /v1/nodes with its node.
TEST(TaskApiSchedules, ListsEachScheduleWithItsLastAndNextTick) {
  test::TempDir dir;
  AppOptions o;
  o.http.address = "127.0.0.1";
  o.http.port = 0;
  o.sqlite.path = (dir.path() / "errand.db").string();
  o.tasks.queues = {{"default", 1, 1}, {"mail", 1, 1}};
  o.tasks.poll_interval = 10ms;
  o.tasks.maintenance_tick = 10ms;
  o.tasks.owner = "node-a";
  o.tasks.node_heartbeat = 100ms;
  o.logger = observe::Logger::null();
  App app(o);
  register_builtin_tasks(app.tasks());
  app.tasks().every("tick", 1s, {.type = "demo.noop"});
  tasks::TaskSpec nightly{.type = "demo.noop"};
  nightly.options.queue = "mail";
  app.tasks().cron("nightly", "0 3 * * *", nightly);
  install_task_api(app.http(), app.tasks());
  app.start();
  test::Client client(app.port());

  ASSERT_TRUE(test::eventually([&] {
    const auto r = client.request("GET", "/v1/schedules");
    return r.status == 200 &&
           !r.json().at("schedules").as_array().at(1).at("last_fired_at").is_null();
  }));
  const auto list = client.request("GET", "/v1/schedules").json().at("schedules").as_array();
  ASSERT_EQ(list.size(), 2U);
  const auto& cron = list[0].as_object();  // by name
  EXPECT_EQ(cron.at("name").as_string(), "nightly");
  EXPECT_EQ(cron.at("kind").as_string(), "cron");
  EXPECT_EQ(cron.at("cron").as_string(), "0 3 * * *");
  EXPECT_EQ(cron.at("type").as_string(), "demo.noop");
  EXPECT_EQ(cron.at("queue").as_string(), "mail");
  EXPECT_TRUE(cron.at("last_fired_at").is_null());  // 03:00 has not come while it ran
  EXPECT_TRUE(std::string(cron.at("next_fire_at").as_string()).ends_with("T03:00:00.000Z"));
  EXPECT_EQ(cron.at("nodes"), boost::json::array{"node-a"});
  const auto& every = list[1].as_object();
  EXPECT_EQ(every.at("name").as_string(), "tick");
  EXPECT_EQ(every.at("every_ms").as_int64(), 1000);
  EXPECT_EQ(every.at("queue").as_string(), "default");
  EXPECT_TRUE(std::string(every.at("next_fire_at").as_string()).ends_with(".000Z"));
  EXPECT_LT(every.at("last_fired_at").as_string(), every.at("next_fire_at").as_string());

  ASSERT_TRUE(test::eventually([&] {
    const auto nodes = client.request("GET", "/v1/nodes").json().at("nodes").as_array();
    return nodes.size() == 1 && nodes[0].at("schedules").as_array().size() == 2;
  }));
  const auto node = client.request("GET", "/v1/nodes").json().at("nodes").at(0);
  EXPECT_EQ(node.at("schedules").at(0).at("spec").as_string(), "1000");  // as registered
  EXPECT_EQ(node.at("schedules").at(1).at("spec").as_string(), "0 3 * * *");
  app.stop();
}

}  // namespace
}  // namespace errand::app
