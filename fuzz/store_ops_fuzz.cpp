// Sequences of store operations run against the memory store, SQLite and,
// when ERRAND_FUZZ_REDIS_URL names a Redis (fuzz/run-with-redis starts one),
// Redis side by side: the memory store is the oracle. Every operation must
// answer the same in all (or fail with the same error code), and after the
// sequence every task, every group and every queue count must read the same.
// Each input gets a Redis key prefix of its own.
#include <fuzzer/FuzzedDataProvider.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include <fmt/format.h>

#include "errand/store/memory_store.hpp"
#include "errand/store/redis_store.hpp"
#include "errand/store/sqlite_store.hpp"
#include "fuzz_check.hpp"

using errand::fuzz::check;
using namespace errand::store;  // NOLINT(google-build-using-namespace): a test driver

namespace {

const std::filesystem::path& db_dir() {
  static const std::filesystem::path dir = [] {
    const std::filesystem::path shm = "/dev/shm";
    auto d = (std::filesystem::exists(shm) ? shm : std::filesystem::temp_directory_path()) /
             fmt::format("errand-store-fuzz-{}", getpid());
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

std::unique_ptr<RedisStore> redis_store() {
  static const char* url = std::getenv("ERRAND_FUZZ_REDIS_URL");
  static int input = 0;
  if (url == nullptr || *url == '\0') return nullptr;
  return std::make_unique<RedisStore>(RedisOptions{.endpoint = parse_redis_url(url),
                                                   .key_prefix = fmt::format("f{}", input++),
                                                   .connections = 1});
}

// The stores, the ids made so far and the clock, for one input.
struct Pair {
  MemoryStore oracle;
  SqliteStore sqlite;
  std::unique_ptr<RedisStore> redis = redis_store();  // null: no Redis to compare
  std::vector<std::string> ids;
  std::vector<std::string> groups;
  TimePoint now{std::chrono::milliseconds(1'796'298'137'000)};
  int next_id = 0;

  explicit Pair(const std::string& path) : sqlite(SqliteOptions{.path = path, .readers = 1}) {}

  // Ids sort as they are made: a claim's tie-break by id is the same in both.
  std::string make_id() { return fmt::format("01J{:0>23}", next_id++); }

  template <class Fn>
  void both(const char* what, Fn fn) {
    using R = decltype(fn(static_cast<Store&>(oracle)));
    std::optional<R> expected;
    std::optional<StoreError::Code> expected_error;
    try {
      expected = fn(static_cast<Store&>(oracle));
    } catch (const StoreError& e) {
      expected_error = e.code();
    }
    const auto against = [&](Store& store, const char* name) {
      std::optional<R> got;
      std::optional<StoreError::Code> got_error;
      try {
        got = fn(store);
      } catch (const StoreError& e) {
        got_error = e.code();
      }
      if (expected_error != got_error || expected != got) {
        fmt::print(stderr, "store_ops: {} differs in {}\n", what, name);
        if constexpr (std::is_same_v<R, std::string>) {
          fmt::print(stderr, "  memory: {}\n  {}: {}\n", expected.value_or("(threw)"), name,
                     got.value_or("(threw)"));
        }
        check(false, what);
      }
    };
    against(sqlite, "sqlite");
    if (redis) against(*redis, "redis");
  }
};

NewTask new_task(Pair& p, FuzzedDataProvider& in) {
  NewTask t;
  t.id = p.make_id();
  t.type = "t";
  t.queue = in.ConsumeBool() ? "a" : "b";
  t.priority = in.ConsumeIntegralInRange(0, 3);
  t.run_at = p.now + std::chrono::seconds(in.ConsumeIntegralInRange(0, 2));
  t.max_attempts = in.ConsumeIntegralInRange(1, 3);
  if (in.ConsumeBool()) t.unique_key = fmt::format("k{}", in.ConsumeIntegralInRange(0, 2));
  t.max_waiting = in.ConsumeIntegralInRange<std::size_t>(0, 4);
  return t;
}

std::string ms(std::optional<TimePoint> t) {
  return t ? std::to_string(t->time_since_epoch().count()) : "-";
}

// Every field of a record, so a difference shows which.
std::string describe(const std::optional<TaskRecord>& r) {
  if (!r) return "(none)";
  std::string past;
  for (const auto& a : r->history) {
    past += fmt::format("[{} {} {} {} {} {}]", a.attempt, a.node, ms(a.started_at), ms(a.ended_at),
                        a.outcome, a.error);
  }
  return fmt::format(
      "{} q={} state={} attempt={}/{} prio={} run_at={} unique={} group={} progress={} {} "
      "result={} error={} created={} updated={} started={} finished={} lease={} until {} "
      "cancel={} node={} history={}",
      r->id, r->queue, to_string(r->state), r->attempt, r->max_attempts, r->priority, ms(r->run_at),
      r->unique_key, r->group_id, r->progress, r->progress_message, r->result.value_or("-"),
      r->last_error.value_or("-"), ms(r->created_at), ms(r->updated_at), ms(r->started_at),
      ms(r->finished_at), r->lease_owner, ms(r->lease_expires_at), r->cancel_requested, r->node,
      past);
}

const std::string& pick(const std::vector<std::string>& v, FuzzedDataProvider& in) {
  static const std::string none = "01J00000000000000000000zzz";
  if (v.empty()) return none;
  return v[in.ConsumeIntegralInRange<std::size_t>(0, v.size() - 1)];
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  const auto path = (db_dir() / "e.db").string();
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
  Pair p(path);
  for (int step = 0; step < 64 && in.remaining_bytes() > 0; ++step) {
    switch (in.ConsumeIntegralInRange(0, 15)) {
      case 0: {
        auto t = new_task(p, in);
        p.ids.push_back(t.id);
        p.both("enqueue", [&](Store& s) { return s.enqueue(t, p.now); });
        break;
      }
      case 1: {
        std::vector<NewTask> batch;
        for (int i = in.ConsumeIntegralInRange(1, 3); i > 0; --i) {
          batch.push_back(new_task(p, in));
          p.ids.push_back(batch.back().id);
        }
        p.both("enqueue batch", [&](Store& s) { return s.enqueue(batch, p.now); });
        break;
      }
      case 2: {
        const std::string q = in.ConsumeBool() ? "a" : "b";
        const auto max = in.ConsumeIntegralInRange<std::size_t>(1, 3);
        const Lease l{"w", p.now + std::chrono::seconds(10), "node"};
        p.both("claim", [&](Store& s) {
          // Which tasks, in which order (a claim may leave the history out).
          std::vector<std::pair<std::string, int>> claimed;
          for (const auto& r : s.claim(q, max, l, p.now)) claimed.emplace_back(r.id, r.attempt);
          return claimed;
        });
        break;
      }
      case 3: {
        const auto& id = pick(p.ids, in);
        p.both("complete", [&](Store& s) { return s.complete(id, "w", R"({"ok":1})", p.now); });
        break;
      }
      case 4: {
        const auto& id = pick(p.ids, in);
        std::optional<TimePoint> at;
        if (in.ConsumeBool()) at = p.now + std::chrono::seconds(1);
        p.both("fail", [&](Store& s) { return s.fail(id, "w", "broke", at, p.now); });
        break;
      }
      case 5: {
        const auto& id = pick(p.ids, in);
        p.both("release", [&](Store& s) { return s.release(id, "w", p.now, p.now); });
        break;
      }
      case 6: {
        const auto& id = pick(p.ids, in);
        p.both("cancel", [&](Store& s) { return s.cancel(id, p.now); });
        break;
      }
      case 7: {
        const auto& id = pick(p.ids, in);
        p.both("retry", [&](Store& s) { return s.retry(id, p.now); });
        break;
      }
      case 8: {
        const auto& id = pick(p.ids, in);
        p.both("remove", [&](Store& s) { return s.remove(id); });
        break;
      }
      case 9: p.now += std::chrono::milliseconds(in.ConsumeIntegralInRange(0, 20'000)); break;
      case 10: p.both("reclaim", [&](Store& s) { return s.reclaim_expired(p.now); }); break;
      case 11:
        p.both("purge",
               [&](Store& s) { return s.purge_final(p.now - std::chrono::seconds(5), 10); });
        break;
      case 12: {
        std::vector<NewTask> members;
        for (int i = in.ConsumeIntegralInRange(0, 2); i > 0; --i) {
          members.push_back(new_task(p, in));
          p.ids.push_back(members.back().id);
        }
        GroupSpec g{p.make_id(), std::nullopt};
        if (in.ConsumeBool()) {
          g.completion = new_task(p, in);
          p.ids.push_back(g.completion->id);
        }
        p.groups.push_back(g.id);
        p.both("enqueue group", [&](Store& s) { return s.enqueue_group(g, members, p.now); });
        break;
      }
      case 13: {
        const auto& id = pick(p.ids, in);
        const int pct = in.ConsumeIntegralInRange(0, 100);
        p.both("progress", [&](Store& s) { return s.set_progress(id, "w", pct, "m", p.now); });
        break;
      }
      case 14: {
        const auto& id = pick(p.ids, in);
        p.both("finish cancelled", [&](Store& s) { return s.finish_cancelled(id, "w", p.now); });
        break;
      }
      default: {
        const std::string q = in.ConsumeBool() ? "a" : "b";
        const bool paused = in.ConsumeBool();
        p.both("pause", [&](Store& s) {
          s.set_paused(q, paused);
          return 0;
        });
        break;
      }
    }
  }
  for (const auto& id : p.ids) {
    p.both("get", [&](Store& s) { return describe(s.get(id)); });
  }
  for (const auto& g : p.groups) {
    p.both("group", [&](Store& s) { return s.group(g); });
  }
  p.both("queues", [&](Store& s) {
    std::string counts;
    for (const auto& q : s.queues()) {
      counts += fmt::format("{}: {} {} {} {} {} {} {} paused={}; ", q.queue, q.scheduled, q.pending,
                            q.active, q.succeeded, q.retrying, q.dead, q.cancelled, q.paused);
    }
    return counts;
  });
  return 0;
}
