// The Redis store runs the Store contract against a real redis-server, and
// keeps what only it promises: several stores (nodes) on one Redis, errors
// and recovery when Redis goes away, key prefixes that keep deployments apart.
#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "errand/store/redis_store.hpp"
#include "store/store_contract.hpp"
#include "support/child_process.hpp"
#include "support/redis_server.hpp"
#include "support/wait.hpp"

namespace errand::store {
namespace {

// One redis-server for the whole contract suite; each store gets a prefix of
// its own, so tests never see each other's keys.
test::RedisServer& shared_redis() {
  static test::RedisServer server;
  return server;
}

RedisOptions options_for(const test::RedisServer& server, std::string prefix) {
  RedisOptions o;
  o.endpoint = parse_redis_url(server.url());
  o.key_prefix = std::move(prefix);
  return o;
}

INSTANTIATE_TEST_SUITE_P(Redis, StoreContract,
                         ::testing::Values(contract::Backend{
                             "redis",
                             [](const std::filesystem::path& d) {
                               return std::make_unique<RedisStore>(
                                   options_for(shared_redis(), d.filename().string()));
                             }}),
                         contract::backend_name);

using std::chrono::milliseconds;
using std::chrono::seconds;

NewTask task(std::string queue = "default") {
  NewTask t;
  t.id = new_task_id(t0);
  t.type = "t";
  t.queue = std::move(queue);
  return t;
}

StoreError::Code error_code(const std::function<void()>& f) {
  try {
    f();
  } catch (const StoreError& e) {
    return e.code();
  }
  ADD_FAILURE() << "no StoreError thrown";
  return StoreError::Code::invalid;
}

TEST(RedisUrl, ParsesEveryPart) {
  EXPECT_EQ(parse_redis_url("redis://localhost"), (RedisEndpoint{.host = "localhost"}));
  EXPECT_EQ(parse_redis_url("redis://10.0.0.5:6380/2"),
            (RedisEndpoint{.host = "10.0.0.5", .port = 6380, .db = 2}));
  EXPECT_EQ(
      parse_redis_url("redis://app:s%40cret@redis.internal:7000/"),
      (RedisEndpoint{.host = "redis.internal", .port = 7000, .user = "app", .password = "s@cret"}));
  EXPECT_EQ(parse_redis_url("redis://:pw@h"), (RedisEndpoint{.host = "h", .password = "pw"}));
  EXPECT_EQ(parse_redis_url("redis://pw@h"), (RedisEndpoint{.host = "h", .password = "pw"}));
  EXPECT_EQ(parse_redis_url("redis://[::1]:6379").host, "::1");
  EXPECT_EQ(redacted(parse_redis_url("redis://app:secret@h:1/3")), "redis://app:***@h:1/3");
  EXPECT_TRUE(is_redis_url("redis://h"));
  EXPECT_TRUE(is_redis_url("rediss://h"));
  EXPECT_FALSE(is_redis_url("sqlite"));
}

TEST(RedisUrl, RefusesWhatItCannotServe) {
  const auto message = [](std::string_view url) {
    try {
      (void)parse_redis_url(url);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_NE(message("rediss://h:6380").find("TLS"), std::string::npos);
  EXPECT_NE(message("http://h").find("not a redis:// URL"), std::string::npos);
  EXPECT_NE(message("redis://h:0").find("port"), std::string::npos);
  EXPECT_NE(message("redis://h:99999").find("port"), std::string::npos);
  EXPECT_NE(message("redis://h/x").find("database"), std::string::npos);
  EXPECT_NE(message("redis:///0").find("host"), std::string::npos);
  EXPECT_NE(message("redis://h?timeout=1").find("options"), std::string::npos);
}

TEST(RedisStore, UnreachableRedisIsAClearErrorAtStart) {
  RedisOptions o;
  // Port 1: no test binds it (a free port taken and let go could be bound
  // by another test's Redis, running beside this one).
  o.endpoint.port = 1;
  o.connect_timeout = milliseconds(500);
  try {
    RedisStore s(o);
    FAIL() << "constructed without a Redis";
  } catch (const StoreError& e) {
    EXPECT_EQ(e.code(), StoreError::Code::unavailable);
    EXPECT_NE(std::string(e.what()).find("unreachable"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("redis://127.0.0.1:1/0 is unreachable"), std::string::npos)
        << e.what();
  }
}

TEST(RedisStore, WrongPasswordIsRefusedWithRedisSReason) {
  test::RedisServer server;
  ASSERT_EQ(server.command("CONFIG SET requirepass right"), "OK");
  RedisOptions o = options_for(server, "auth");
  o.connect_timeout = milliseconds(500);
  o.endpoint.password = "wrong";
  try {
    RedisStore s(o);
    FAIL() << "constructed with a wrong password";
  } catch (const StoreError& e) {
    EXPECT_NE(std::string(e.what()).find("WRONGPASS"), std::string::npos) << e.what();
  }
  o.endpoint.password = "right";
  o.connect_timeout = seconds(10);
  RedisStore s(o);
  EXPECT_TRUE(s.enqueue(task(), t0).created);
}

TEST(RedisStore, PrefixesKeepDeploymentsApart) {
  RedisStore a(options_for(shared_redis(), "deploy-a"));
  RedisStore b(options_for(shared_redis(), "deploy-b"));
  const auto id = a.enqueue(task(), t0).id;
  EXPECT_TRUE(a.get(id).has_value());
  EXPECT_FALSE(b.get(id).has_value());
  EXPECT_TRUE(b.queues().empty());
  EXPECT_TRUE(b.claim("default", 10, {"w", t0 + seconds(30)}, t0).empty());
  EXPECT_EQ(a.claim("default", 10, {"w", t0 + seconds(30)}, t0).size(), 1U);
}

TEST(RedisStore, DatabaseNumberIsSelected) {
  test::RedisServer server;
  RedisOptions o = options_for(server, "db");
  o.endpoint.db = 3;
  RedisStore s(o);
  const auto id = s.enqueue(task(), t0).id;
  EXPECT_EQ(server.command("EXISTS {db}:t:" + id), "0");  // the harness reads db 0
  EXPECT_TRUE(s.get(id).has_value());
}

// Two stores on one Redis are two nodes: each task is claimed by one of them.
TEST(RedisStore, NodesClaimEachTaskExactlyOnce) {
  RedisStore a(options_for(shared_redis(), "nodes"));
  RedisStore b(options_for(shared_redis(), "nodes"));
  constexpr int kTasks = 2000;
  std::vector<NewTask> batch;
  for (int i = 0; i < kTasks; ++i) batch.push_back(task());
  ASSERT_EQ(a.enqueue(batch, t0).size(), static_cast<std::size_t>(kTasks));

  std::mutex mu;
  std::map<std::string, int> claims;
  std::atomic<int> total{0};
  auto worker = [&](RedisStore& s, std::string owner) {
    while (total.load() < kTasks) {
      const auto got = s.claim("default", 7, {owner, t0 + seconds(60)}, t0);
      for (const auto& r : got) {
        EXPECT_TRUE(s.complete(r.id, owner, "null", t0));
        const std::lock_guard lock(mu);
        ++claims[r.id];
      }
      total += static_cast<int>(got.size());
      if (got.empty()) std::this_thread::yield();
    }
  };
  {
    std::jthread w1(worker, std::ref(a), "a1");
    std::jthread w2(worker, std::ref(a), "a2");
    std::jthread w3(worker, std::ref(b), "b1");
    std::jthread w4(worker, std::ref(b), "b2");
  }
  EXPECT_EQ(claims.size(), static_cast<std::size_t>(kTasks));
  for (const auto& [id, n] : claims) EXPECT_EQ(n, 1) << id;
  const auto q = b.queues();
  ASSERT_EQ(q.size(), 1U);
  EXPECT_EQ(q[0].succeeded, static_cast<std::size_t>(kTasks));
  EXPECT_EQ(q[0].pending + q[0].active, 0U);
}

// Redis goes away: calls fail at once with `unavailable` (no hang, nothing
// half-done), the store says it is unreachable, and when Redis is back the
// store resumes by itself — the restarted Redis has lost its script cache
// too, so the scripts are sent again.
TEST(RedisStore, RedisRestartFailsCallsThenRecoversAlone) {
  test::RedisServer server({.append_only = true});
  RedisOptions o = options_for(server, "restart");
  o.command_timeout = milliseconds(1000);
  RedisStore s(o);
  const auto kept = s.enqueue(task(), t0).id;
  ASSERT_TRUE(s.reachable());

  server.stop();
  EXPECT_TRUE(test::eventually([&] { return !s.reachable(); }));
  EXPECT_EQ(error_code([&] { s.enqueue(task(), t0); }), StoreError::Code::unavailable);
  EXPECT_EQ(error_code([&] { (void)s.get(kept); }), StoreError::Code::unavailable);
  std::atomic<int> async_calls{0};
  std::exception_ptr async_error;
  s.enqueue_async({task()}, t0, [&](std::vector<Enqueued>, std::exception_ptr e) {
    async_error = e;
    ++async_calls;
  });
  ASSERT_TRUE(test::eventually([&] { return async_calls.load() == 1; }));
  EXPECT_TRUE(async_error);

  server.start();
  ASSERT_TRUE(test::eventually([&] { return s.reachable(); }));
  EXPECT_TRUE(s.get(kept).has_value());  // AOF kept it
  EXPECT_TRUE(s.enqueue(task(), t0).created);
  EXPECT_EQ(s.claim("default", 10, {"w", t0 + seconds(30)}, t0).size(), 2U);
}

TEST(RedisStore, FlushedScriptCacheIsReloaded) {
  RedisStore s(options_for(shared_redis(), "flush"));
  ASSERT_EQ(shared_redis().command("SCRIPT FLUSH"), "OK");
  EXPECT_TRUE(s.enqueue(task(), t0).created);
  EXPECT_EQ(s.claim("default", 1, {"w", t0 + seconds(30)}, t0).size(), 1U);
}

// The number after `field` in an INFO section (0 when it is not there).
int info_number(const test::RedisServer& server, const std::string& section,
                const std::string& field) {
  const auto info = server.command("INFO " + section).value_or("");
  const auto at = info.find(field);
  if (at == std::string::npos) return 0;
  return std::stoi(info.substr(at + field.size()));
}

// How many script calls Redis has run since its stats were reset.
int script_calls(const test::RedisServer& server) {
  return info_number(server, "commandstats", "cmdstat_evalsha:calls=");
}

int blocked_clients(const test::RedisServer& server) {
  return info_number(server, "clients", "blocked_clients:");
}

// Holds every write in Redis (CLIENT PAUSE WRITE: the store's scripts wait,
// this harness's INFO and UNPAUSE do not) until the store's first call is
// seen waiting there: the calls issued after it are then certain to go
// together, however the threads are scheduled. No timer ends the pause early.
void pause_until_the_first_call_waits(const test::RedisServer& server,
                                      const std::function<void()>& first_call) {
  const int before = blocked_clients(server);
  ASSERT_EQ(server.command("CLIENT PAUSE 120000 WRITE"), "OK");
  first_call();
  ASSERT_TRUE(test::eventually([&] { return blocked_clients(server) > before; }, seconds(30)));
}

// Lets Redis go on however the test ends, so that the calls it holds are
// answered before the store and what their callbacks touch go away.
class Unpause {
 public:
  explicit Unpause(const test::RedisServer& server) : server_(server) {}
  Unpause(const Unpause&) = delete;
  Unpause& operator=(const Unpause&) = delete;
  ~Unpause() {
    try {
      (void)server_.command("CLIENT UNPAUSE");
    } catch (const std::exception&) {  // Redis gone: nothing is held
    }
  }

 private:
  const test::RedisServer& server_;
};

// Requests that arrive while an enqueue call is out go together in the next
// call (group commit), and each is still stored or refused on its own. The
// paused Redis holds the first call, so the batching is certain.
TEST(RedisStore, EnqueuesArrivingTogetherShareACallAndAreAnsweredAlone) {
  test::RedisServer server;
  // Before the store: the callbacks of calls still out when it goes write here.
  constexpr int kRequests = 20;
  std::mutex mu;
  std::map<int, std::pair<std::size_t, std::optional<StoreError::Code>>> answers;
  RedisOptions o = options_for(server, "batch");
  o.command_timeout = seconds(60);  // longer than the wait below for a held call
  RedisStore s(o);
  const Unpause unpause{server};
  const auto existing = s.enqueue(task(), t0).id;
  NewTask first_tight = task("tight");
  first_tight.max_waiting = 1;
  ASSERT_TRUE(s.enqueue(first_tight, t0).created);
  ASSERT_EQ(server.command("CONFIG RESETSTAT"), "OK");

  const auto request = [&](int i) {
    std::vector<NewTask> tasks{task()};
    if (i == 5) tasks[0].id = existing;  // a duplicate id: refused
    if (i == 10) {                       // a full queue: refused
      tasks[0].queue = "tight";
      tasks[0].max_waiting = 1;
    }
    if (i == 12 || i == 13) {  // room for one: the first is stored, the second refused
      tasks[0].queue = "room";
      tasks[0].max_waiting = 1;
    }
    if (i == 15) tasks = {task(), task(), task()};
    s.enqueue_async(std::move(tasks), t0, [&, i](std::vector<Enqueued> out, std::exception_ptr e) {
      std::optional<StoreError::Code> code;
      if (e) {
        try {
          std::rethrow_exception(e);
        } catch (const StoreError& x) {
          code = x.code();
        }
      }
      const std::lock_guard lock(mu);
      answers[i] = {out.size(), code};
    });
  };
  ASSERT_NO_FATAL_FAILURE(pause_until_the_first_call_waits(server, [&] { request(0); }));
  for (int i = 1; i < kRequests; ++i) request(i);
  ASSERT_EQ(server.command("CLIENT UNPAUSE"), "OK");
  ASSERT_TRUE(test::eventually(
      [&] {
        const std::lock_guard lock(mu);
        return answers.size() == kRequests;
      },
      seconds(30)));
  for (int i = 0; i < kRequests; ++i) {
    const auto& [stored, code] = answers[i];
    if (i == 5) {
      EXPECT_EQ(code, StoreError::Code::invalid);
    } else if (i == 10 || i == 13) {
      EXPECT_EQ(code, StoreError::Code::queue_full) << i;
    } else {
      EXPECT_FALSE(code) << i;
      EXPECT_EQ(stored, i == 15 ? 3U : 1U) << i;
    }
  }
  // The first request went out alone; the 19 that came while Redis held it, in one call.
  EXPECT_EQ(script_calls(server), 2);
  std::size_t pending = 0;
  for (const auto& q : s.queues()) pending += q.pending;
  EXPECT_EQ(pending, 2U + 16U + 3U);
}

// Completions batch the same way; one whose lease is not the caller's is
// refused alone.
TEST(RedisStore, CompletionsArrivingTogetherShareACallAndAreAnsweredAlone) {
  test::RedisServer server;
  // Before the store: the callbacks of calls still out when it goes write here.
  std::mutex mu;
  std::map<int, bool> answers;
  RedisOptions o = options_for(server, "batch");
  o.command_timeout = seconds(60);  // longer than the wait below for a held call
  RedisStore s(o);
  const Unpause unpause{server};
  constexpr int kTasks = 20;
  std::vector<NewTask> batch;
  for (int i = 0; i < kTasks; ++i) batch.push_back(task());
  ASSERT_EQ(s.enqueue(batch, t0).size(), static_cast<std::size_t>(kTasks));
  const auto claimed = s.claim("default", kTasks, {"w", t0 + seconds(60)}, t0);
  ASSERT_EQ(claimed.size(), static_cast<std::size_t>(kTasks));
  ASSERT_EQ(server.command("CONFIG RESETSTAT"), "OK");

  const auto complete = [&](int i) {
    s.complete_async(claimed[i].id, i == 7 ? "someone-else" : "w",
                     "{\"i\":" + std::to_string(i) + "}", t0,
                     [&, i](bool ok, std::exception_ptr e) {
                       EXPECT_FALSE(e);
                       const std::lock_guard lock(mu);
                       answers[i] = ok;
                     });
  };
  ASSERT_NO_FATAL_FAILURE(pause_until_the_first_call_waits(server, [&] { complete(0); }));
  for (int i = 1; i < kTasks; ++i) complete(i);
  ASSERT_EQ(server.command("CLIENT UNPAUSE"), "OK");
  ASSERT_TRUE(test::eventually(
      [&] {
        const std::lock_guard lock(mu);
        return answers.size() == kTasks;
      },
      seconds(30)));
  for (int i = 0; i < kTasks; ++i) EXPECT_EQ(answers[i], i != 7) << i;
  EXPECT_EQ(script_calls(server), 2);
  const auto q = s.queues();
  ASSERT_EQ(q.size(), 1U);
  EXPECT_EQ(q[0].succeeded, static_cast<std::size_t>(kTasks - 1));
  EXPECT_EQ(q[0].active, 1U);
  EXPECT_EQ(s.get(claimed[3].id)->result, "{\"i\":3}");
  EXPECT_TRUE(s.get(claimed[3].id)->lease_owner.empty());
}

// A caller's callback that throws is that caller's problem: the batch's
// other callers are answered and later batches still go out.
TEST(RedisStore, AThrowingCallbackDoesNotStallLaterBatches) {
  RedisStore s(options_for(shared_redis(), "throwing"));
  std::vector<NewTask> batch{task(), task()};
  ASSERT_EQ(s.enqueue(batch, t0).size(), 2U);
  const auto claimed = s.claim("default", 2, {"w", t0 + seconds(60)}, t0);
  ASSERT_EQ(claimed.size(), 2U);
  std::atomic<int> thrown{0};
  s.enqueue_async({task()}, t0, [&](std::vector<Enqueued>, std::exception_ptr) {
    ++thrown;
    throw std::runtime_error("a careless caller");
  });
  s.complete_async(claimed[0].id, "w", "{}", t0, [&](bool, std::exception_ptr) {
    ++thrown;
    throw std::runtime_error("a careless caller");
  });
  ASSERT_TRUE(test::eventually([&] { return thrown.load() == 2; }));
  std::atomic<int> answered{0};
  s.enqueue_async({task()}, t0, [&](std::vector<Enqueued> out, std::exception_ptr e) {
    if (!e && out.size() == 1) ++answered;
  });
  s.complete_async(claimed[1].id, "w", "{}", t0, [&](bool ok, std::exception_ptr e) {
    if (!e && ok) ++answered;
  });
  EXPECT_TRUE(test::eventually([&] { return answered.load() == 2; }));
}

// A Redis that stops answering (CLIENT PAUSE holds every client's commands):
// a call fails with `unavailable` after the command timeout instead of
// waiting, and the store works again once Redis answers.
TEST(RedisStore, SlowRedisTimesOutThenRecovers) {
  test::RedisServer server;
  RedisOptions o = options_for(server, "slow");
  o.command_timeout = milliseconds(300);
  RedisStore s(o);
  const auto id = s.enqueue(task(), t0).id;
  ASSERT_EQ(server.command("CLIENT PAUSE 3000 ALL"), "OK");
  try {
    (void)s.get(id);
    ADD_FAILURE() << "a paused Redis answered";
  } catch (const StoreError& e) {
    EXPECT_EQ(e.code(), StoreError::Code::unavailable);
    EXPECT_NE(std::string(e.what()).find("no reply within 300 ms"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(test::eventually(
      [&] {
        try {
          return s.get(id).has_value();
        } catch (const StoreError&) {
          return false;
        }
      },
      seconds(30)));
}

TEST(RedisStore, OutOfMemoryRedisRefusesWritesAsFullAndKeepsReads) {
  test::RedisServer server;
  RedisStore s(options_for(server, "oom"));
  const auto id = s.enqueue(task(), t0).id;
  ASSERT_EQ(server.command("CONFIG SET maxmemory 1"), "OK");  // below what it uses already
  EXPECT_EQ(error_code([&] { s.enqueue(task(), t0); }), StoreError::Code::full);
  EXPECT_TRUE(s.get(id).has_value());
  ASSERT_EQ(server.command("CONFIG SET maxmemory 0"), "OK");
  EXPECT_TRUE(s.enqueue(task(), t0).created);
}

TEST(RedisStore, WarnsWhenRedisKeepsNothing) {
  test::RedisServer bare;  // the harness's default: no AOF, no RDB
  RedisStore none(options_for(bare, "d"));
  auto w = none.durability_warnings();
  ASSERT_EQ(w.size(), 1U);
  EXPECT_NE(w[0].find("restart loses every task"), std::string::npos) << w[0];

  test::RedisServer aof({.append_only = true});  // appendfsync always
  RedisStore safe(options_for(aof, "d"));
  EXPECT_TRUE(safe.durability_warnings().empty());
  ASSERT_EQ(aof.command("CONFIG SET appendfsync everysec"), "OK");
  w = safe.durability_warnings();
  ASSERT_EQ(w.size(), 1U);
  EXPECT_NE(w[0].find("a second"), std::string::npos) << w[0];
}

}  // namespace
}  // namespace errand::store
