// errand on the Redis store, through real HTTP: tasks enqueued over the API
// run and finish; when Redis goes away the API answers 503 store_unavailable
// (never a 202 for a task that was not stored) and /readyz says not ready;
// when Redis is back both recover without a restart.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "errand/app/builtin_tasks.hpp"
#include "errand/app/task_api.hpp"
#include "errand/errand.hpp"
#include "errand/store/redis_store.hpp"
#include "support/http_client.hpp"
#include "support/redis_server.hpp"
#include "support/wait.hpp"

namespace errand::app {
namespace {

using namespace std::chrono_literals;
using test::RawResponse;

class RedisApp : public ::testing::Test {
 protected:
  void SetUp() override {
    store::RedisOptions r;
    r.endpoint = store::parse_redis_url(redis.url());
    r.command_timeout = 1000ms;
    store = std::make_shared<store::RedisStore>(r);
    AppOptions o;
    o.http.address = "127.0.0.1";
    o.http.port = 0;
    o.http.threads = 2;
    o.store = store;
    o.tasks.queues = {{"default", 2, 1}};
    o.tasks.poll_interval = 10ms;
    o.tasks.shutdown_grace = 50ms;
    // A claim whose reply is lost to the command timeout (Redis slow) leaves
    // its task leased to a worker that does not run it, until the lease
    // expires: 3 s, not 30, so the tests see it run within their deadline.
    o.tasks.lease = 3s;
    o.logger = observe::Logger::null();
    app = std::make_unique<App>(o);
    register_builtin_tasks(app->tasks());
    install_task_api(app->http(), app->tasks());
    app->start();
    client = std::make_unique<test::Client>(app->port());
  }

  RawResponse post(std::string_view body) {
    return client->request("POST", "/v1/tasks", body, {{"Content-Type", "application/json"}});
  }
  RawResponse get(std::string_view target) { return client->request("GET", target); }
  bool reaches(const std::string& id, std::string_view state) {
    return test::eventually([&] {
      const auto r = get("/v1/tasks/" + id);
      return r.status == 200 && r.json().at("state").as_string() == state;
    });
  }

  test::RedisServer redis{{.append_only = true}};
  std::shared_ptr<store::RedisStore> store;
  std::unique_ptr<App> app;
  std::unique_ptr<test::Client> client;
};

TEST_F(RedisApp, TasksEnqueuedOverHttpRunToSucceeded) {
  std::vector<std::string> ids;
  for (int i = 0; i < 20; ++i) {
    const auto r = post(R"({"type":"demo.sleep","payload":{"seconds":0.01}})");
    ASSERT_EQ(r.status, 202) << r.body;
    ids.emplace_back(r.json().at("id").as_string());
  }
  for (const auto& id : ids) ASSERT_TRUE(reaches(id, "succeeded")) << id;
  const auto q = get("/v1/queues");
  ASSERT_EQ(q.status, 200) << q.body;
  EXPECT_NE(q.body.find("\"succeeded\":20"), std::string::npos) << q.body;
  EXPECT_EQ(get("/readyz").status, 200);
}

// An api node runs nothing, yet its /v1/stats shows what a worker node ran:
// each node publishes its recent figures with its heartbeat.
TEST_F(RedisApp, StatsOfEveryNodeAreServedByAny) {
  store::RedisOptions r;
  r.endpoint = store::parse_redis_url(redis.url());
  AppOptions o;
  o.http.address = "127.0.0.1";
  o.http.port = 0;
  o.store = std::make_shared<store::RedisStore>(r);
  o.tasks.queues.clear();  // an api node
  o.tasks.owner = "api-1";
  o.tasks.node_heartbeat = 100ms;
  o.logger = observe::Logger::null();
  App api(o);
  register_builtin_tasks(api.tasks());
  install_task_api(api.http(), api.tasks(), {.stats = api.task_stats()});
  api.start();
  test::Client api_client(api.port());

  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    const auto e = post(R"({"type":"demo.noop"})");
    ASSERT_EQ(e.status, 202) << e.body;
    ids.emplace_back(e.json().at("id").as_string());
  }
  for (const auto& id : ids) ASSERT_TRUE(reaches(id, "succeeded")) << id;
  // The worker (the fixture's app) heartbeats every 5 s by default.
  std::int64_t succeeded = 0;
  ASSERT_TRUE(test::eventually(
      [&] {
        const auto v = api_client.request("GET", "/v1/stats?window=5m").json();
        succeeded = 0;
        for (const auto& q : v.at("queues").as_array()) {
          for (const auto& n : q.at("succeeded").as_array()) succeeded += n.as_int64();
        }
        return v.at("nodes").as_array().size() == 2 && succeeded == 5;
      },
      30s));
  api.stop();
}

TEST_F(RedisApp, RedisKilledIs503AndNotReadyThenBothRecover) {
  const auto before = post(R"({"type":"demo.sleep","payload":{"seconds":0.01}})");
  ASSERT_EQ(before.status, 202) << before.body;
  redis.kill();  // SIGKILL: the AOF (fsync always) keeps every acknowledged write
  ASSERT_TRUE(test::eventually([&] { return get("/readyz").status == 503; }));
  const auto ready = get("/readyz");
  EXPECT_EQ(ready.json().at("error").at("code").as_string(), "store_unavailable");
  for (int i = 0; i < 3; ++i) {
    const auto r = post(R"({"type":"demo.sleep","payload":{"seconds":0.01}})");
    EXPECT_EQ(r.status, 503) << r.body;
    EXPECT_EQ(r.json().at("error").at("code").as_string(), "store_unavailable") << r.body;
    EXPECT_FALSE(r.header("Retry-After").empty());
  }
  EXPECT_EQ(get("/healthz").status, 200);  // the process is fine; only its store is away

  redis.start();
  ASSERT_TRUE(test::eventually([&] { return get("/readyz").status == 200; }));
  const auto after = post(R"({"type":"demo.sleep","payload":{"seconds":0.01}})");
  ASSERT_EQ(after.status, 202) << after.body;
  // Workers resume by themselves: both tasks finish (the first one survived in the AOF).
  EXPECT_TRUE(reaches(std::string(after.json().at("id").as_string()), "succeeded"));
  EXPECT_TRUE(reaches(std::string(before.json().at("id").as_string()), "succeeded"));
}

// Redis that stops answering (DEBUG SLEEP 3, longer than the 1 s command
// timeout): each enqueue meanwhile answers within a bounded time, 202 or an
// honest 503, and once Redis answers again there is no stall: enqueues are
// 202 and the tasks run.
TEST_F(RedisApp, SlowRedisGivesBounded503sAndNoStallAfter) {
  std::jthread sleeper([this] { (void)redis.command("DEBUG SLEEP 3"); });
  std::vector<std::string> stored;
  int refused = 0;
  const auto until = std::chrono::steady_clock::now() + 3s;
  while (std::chrono::steady_clock::now() < until) {
    const auto started = std::chrono::steady_clock::now();
    const auto r = post(R"({"type":"demo.sleep","payload":{"seconds":0}})");
    const auto took = std::chrono::steady_clock::now() - started;
    // Bounded: the command timeout (1 s) and a retry, never the whole sleep
    // times the requests queued behind it.
    EXPECT_LT(took, 10s);
    if (r.status == 202) {
      stored.emplace_back(r.json().at("id").as_string());
    } else {
      EXPECT_EQ(r.status, 503) << r.body;
      ++refused;
    }
  }
  sleeper.join();
  EXPECT_GT(refused, 0) << "Redis never looked slow";
  ASSERT_TRUE(test::eventually(
      [&] { return post(R"({"type":"demo.sleep","payload":{"seconds":0}})").status == 202; }));
  const auto after = post(R"({"type":"demo.sleep","payload":{"seconds":0}})");
  ASSERT_EQ(after.status, 202) << after.body;
  stored.emplace_back(after.json().at("id").as_string());
  for (const auto& id : stored) EXPECT_TRUE(reaches(id, "succeeded")) << id;
}

}  // namespace
}  // namespace errand::app
