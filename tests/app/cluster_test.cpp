// errand as a cluster: real `errand serve` processes — one api node and three
// worker nodes — on one real redis-server (AOF, fsync always). 20,000 no-op
// tasks enqueued over HTTP all reach `succeeded` although one worker node is
// killed with SIGKILL and Redis is restarted mid-run; a task runs more than
// once only if the killed node held it.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <map>
#include <set>

#include "errand/store/redis_store.hpp"
#include "errand/tasks/runtime.hpp"
#include "support/child_process.hpp"
#include "support/http_client.hpp"
#include "support/redis_server.hpp"
#include "support/temp_dir.hpp"
#include "support/wait.hpp"

namespace errand::app {
namespace {

using namespace std::chrono_literals;

constexpr int kWorkers = 8;
constexpr int kPrefetch = 32;

std::unique_ptr<test::ChildProcess> node(const test::RedisServer& redis, const std::string& id,
                                         const std::string& role, const test::TempDir& dir) {
  return std::make_unique<test::ChildProcess>(
      std::vector<std::string>{
          ERRAND_CLI,
          "serve",
          "--store",
          redis.url(),
          "--node-id",
          id,
          "--role",
          role,
          "--listen",
          "127.0.0.1:0",
          "--threads",
          "1",
          "--queues",
          "default=" + std::to_string(kWorkers) + ":1:" + std::to_string(kPrefetch),
          "--lease",
          "3s",
          "--redis-timeout",
          "1s",
          "--log-level",
          role == "api" ? "info" : "warn",
          "--max-waiting",
          "0"},
      dir.path() / (id + ".log"));
}

std::size_t succeeded(test::Client& api) {
  try {
    const auto r = api.request("GET", "/v1/queues");
    if (r.status != 200) return 0;
    const auto v = r.json();
    for (const auto& q : v.at("queues").as_array()) {
      if (q.at("name").as_string() == "default") {
        return static_cast<std::size_t>(q.at("counts").at("succeeded").to_number<std::int64_t>());
      }
    }
  } catch (const std::exception&) {  // Redis restarting: 503, or a closed connection
  }
  return 0;
}

TEST(Cluster, TwentyThousandTasksSurviveANodeKillAndARedisRestart) {
  test::TempDir dir;
  test::RedisServer redis({.append_only = true});
  auto api = node(redis, "api-1", "api", dir);
  const auto api_port = api->wait_port();
  ASSERT_NE(api_port, 0) << api->log();
  std::vector<std::unique_ptr<test::ChildProcess>> workers;
  for (int i = 1; i <= 3; ++i) {
    workers.push_back(node(redis, "worker-" + std::to_string(i), "worker", dir));
  }
  test::Client client(api_port, 60s);

  // Every node registers; the api node serves the task API, the workers do not.
  ASSERT_TRUE(test::eventually(
      [&] {
        const auto r = client.request("GET", "/v1/nodes");
        return r.status == 200 && r.json().at("nodes").as_array().size() == 4;
      },
      60s));
  {
    const auto nodes = client.request("GET", "/v1/nodes").json().at("nodes").as_array();
    EXPECT_EQ(nodes[0].at("id").as_string(), "api-1");
    EXPECT_EQ(nodes[0].at("role").as_string(), "api");
    EXPECT_TRUE(nodes[0].at("queues").as_array().empty());
    EXPECT_EQ(nodes[1].at("role").as_string(), "worker");
    EXPECT_EQ(nodes[1].at("queues").as_array().at(0).at("workers").as_int64(), kWorkers);
  }

  constexpr int kTasks = 20000;
  constexpr int kBatch = 500;
  std::string batch = R"({"tasks":[)";
  for (int i = 0; i < kBatch; ++i)
    batch += std::string(i > 0 ? "," : "") + R"({"type":"demo.noop"})";
  batch += "]}";
  std::set<std::string> ids;
  for (int sent = 0; sent < kTasks; sent += kBatch) {
    const auto r =
        client.request("POST", "/v1/tasks/batch", batch, {{"Content-Type", "application/json"}});
    ASSERT_EQ(r.status, 202) << r.body;
    const auto v = r.json();
    for (const auto& t : v.at("tasks").as_array()) ids.emplace(t.at("id").as_string());
  }
  ASSERT_EQ(ids.size(), static_cast<std::size_t>(kTasks));

  // SIGKILL one worker node mid-run; its leased tasks come back after 3 s.
  ASSERT_TRUE(test::eventually([&] { return succeeded(client) >= kTasks / 5; }, 120s));
  workers[1]->kill_now();
  // Restart Redis mid-run (AOF with fsync always keeps every write).
  ASSERT_TRUE(test::eventually([&] { return succeeded(client) >= kTasks / 2; }, 120s));
  redis.stop();
  redis.start();

  ASSERT_TRUE(test::eventually([&] { return succeeded(client) == kTasks; }, 300s))
      << "succeeded: " << succeeded(client) << "\n"
      << workers[0]->log();

  // Which tasks took more than one attempt.
  std::vector<std::string> twice;
  std::string cursor;
  std::size_t seen = 0;
  do {
    const auto r = client.request("GET", "/v1/tasks?state=succeeded&limit=1000" +
                                             (cursor.empty() ? "" : "&cursor=" + cursor));
    ASSERT_EQ(r.status, 200) << r.body;
    const auto v = r.json();
    for (const auto& t : v.at("tasks").as_array()) {
      ++seen;
      EXPECT_TRUE(ids.contains(std::string(t.at("id").as_string())));
      EXPECT_NE(t.at("node").as_string(), "api-1");  // the api node runs nothing
      if (t.at("attempt").as_int64() > 1) twice.emplace_back(t.at("id").as_string());
    }
    cursor = v.at("next_cursor").is_null() ? "" : std::string(v.at("next_cursor").as_string());
  } while (!cursor.empty());
  EXPECT_EQ(seen, static_cast<std::size_t>(kTasks));
  // Every task that ran more than once lost its lease first: its history
  // shows each earlier attempt as lost (reclaimed after its lease expired) —
  // those the killed node held, and those a claim left leased to no one when
  // Redis ran it but its reply was lost in the restart. None failed, and
  // none was run twice while its lease held.
  for (const auto& id : twice) {
    const auto t = client.request("GET", "/v1/tasks/" + id).json();
    const auto& past = t.at("past_attempts").as_array();
    EXPECT_EQ(past.size(), static_cast<std::size_t>(t.at("attempt").as_int64() - 1)) << t;
    for (const auto& a : past) EXPECT_EQ(a.at("outcome").as_string(), "lost") << t;
  }
  EXPECT_LE(twice.size(), static_cast<std::size_t>(kTasks / 20));  // lease losses stay rare
  std::cout << "tasks run more than once: " << twice.size() << ", each after a lost lease (the "
            << "killed node held at most " << kWorkers + kPrefetch << ")\n";

  // The live nodes stop cleanly.
  for (std::size_t i = 0; i < workers.size(); ++i) {
    if (i != 1) {
      EXPECT_EQ(workers[i]->terminate(), 0) << workers[i]->log();
    }
  }
  EXPECT_EQ(api->terminate(), 0) << api->log();
}

// A periodic schedule registered on several nodes fires once per tick.
TEST(Cluster, AScheduleFiresOncePerTickAcrossNodes) {
  test::RedisServer redis;
  std::vector<std::unique_ptr<tasks::Runtime>> nodes;
  std::atomic<int> runs{0};
  for (int i = 0; i < 4; ++i) {
    store::RedisOptions o;
    o.endpoint = store::parse_redis_url(redis.url());
    tasks::RuntimeConfig cfg;
    cfg.owner = "n" + std::to_string(i);
    cfg.poll_interval = 20ms;
    cfg.maintenance_tick = 10ms;
    cfg.node_heartbeat = 50ms;
    if (i == 3) cfg.queues.clear();  // an api node: registers no schedule, runs no task
    auto rt = std::make_unique<tasks::Runtime>(std::make_shared<store::RedisStore>(o), cfg);
    rt->handle_raw("tick", [&runs](tasks::TaskContext&) { ++runs; });
    if (i < 3) rt->every("tick-200ms", 200ms, {.type = "tick"});
    nodes.push_back(std::move(rt));
  }
  for (auto& n : nodes) n->start();
  ASSERT_TRUE(test::eventually([&] { return runs.load() >= 10; }, 60s));
  // Any node, the api one too, shows the schedule: who registered it, its last
  // tick (by whichever node fired it) and the next.
  ASSERT_TRUE(test::eventually([&] {
    const auto s = nodes[3]->schedules();
    return s.size() == 1 && s[0].nodes == std::vector<std::string>{"n0", "n1", "n2"};
  }));
  const auto s = nodes[3]->schedules().at(0);
  EXPECT_EQ(s.name, "tick-200ms");
  EXPECT_EQ(s.kind, "every");
  EXPECT_EQ(s.spec, "200");
  EXPECT_EQ(s.type, "tick");
  EXPECT_EQ(s.queue, "default");
  ASSERT_TRUE(s.last_fired && s.next_fire);
  EXPECT_GT(*s.next_fire, *s.last_fired);
  EXPECT_EQ(s.next_fire->time_since_epoch().count() % 200, 0);
  for (auto& n : nodes) n->stop();
  // Each tick's task carries its tick in its unique key: no key twice.
  std::map<std::string, int> per_tick;
  const auto page = nodes[0]->store().list({.type = "tick", .limit = 1000});
  for (const auto& t : page.tasks) ++per_tick[t.unique_key];
  EXPECT_EQ(page.tasks.size(), per_tick.size());
  for (const auto& [key, n] : per_tick) EXPECT_EQ(n, 1) << key;
  // Ticks fired just before the stop may not have run.
  EXPECT_LE(static_cast<std::size_t>(runs.load()), page.tasks.size());
}

}  // namespace
}  // namespace errand::app
