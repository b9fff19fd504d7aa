// What only the SQLite backend promises: durability across reopen, group
// commit, clear errors for bad files and a full disk, schema versions.
#include <gtest/gtest.h>

#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <latch>
#include <mutex>
#include <thread>
#include <vector>

#include "errand/store/sqlite_store.hpp"
#include "store/store_contract.hpp"
#include "support/temp_dir.hpp"
#include "support/wait.hpp"

namespace errand::store {
namespace {

using std::chrono::milliseconds;

INSTANTIATE_TEST_SUITE_P(Sqlite, StoreContract,
                         ::testing::Values(contract::Backend{
                             "sqlite",
                             [](const std::filesystem::path& d) {
                               return std::make_unique<SqliteStore>(
                                   SqliteOptions{.path = (d / "e.db").string()});
                             }}),
                         contract::backend_name);

NewTask task(std::string payload = "{}") {
  NewTask t;
  t.id = new_task_id(t0);
  t.type = "t";
  t.payload = std::move(payload);
  return t;
}

StoreError::Code error_code(const std::function<void()>& f) {
  try {
    f();
  } catch (const StoreError& e) {
    return e.code();
  }
  ADD_FAILURE() << "no StoreError thrown";
  return StoreError::Code::unavailable;
}

TEST(SqliteStore, TasksSurviveReopen) {
  test::TempDir dir;
  const auto path = (dir.path() / "sub" / "errand.db").string();  // parent is created
  std::string id;
  {
    SqliteStore s({.path = path});
    id = s.enqueue(task(R"({"keep":true})"), t0).id;
    ASSERT_EQ(s.claim("default", 1, {"w1", t0 + std::chrono::seconds(5)}, t0).size(), 1U);
  }
  SqliteStore s({.path = path, .synchronous = SqliteOptions::Synchronous::full});
  const auto r = s.get(id);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->payload, R"({"keep":true})");
  EXPECT_EQ(r->state, TaskState::active);
  EXPECT_EQ(s.reclaim_expired(t0 + std::chrono::seconds(6)), 1U);  // the old worker is gone
  EXPECT_EQ(s.get(id)->state, TaskState::pending);
}

// A queue's pending tasks behind more than a scan budget of its other tasks
// (a dashboard's view of a queue whose tasks are mostly done, or waiting):
// found on the first page, at once (schema 10 indexes them). The other
// stores answer the same list a budget at a time (a short page and a
// cursor); SQLite used to, and the soak spent most of its CPU there.
TEST(SqliteStore, AQueuesPendingTasksAreFoundAtOnceBehindItsOthers) {
  test::TempDir dir;
  SqliteStore s({.path = (dir.path() / "e.db").string()});
  const auto pending = s.enqueue(task(), t0).id;
  for (std::size_t n = 0; n < kListScanBudget + 50;) {
    std::vector<NewTask> batch;
    for (int i = 0; i < 1000 && n < kListScanBudget + 50; ++i, ++n) {
      batch.push_back(task());
      batch.back().run_at = t0 + std::chrono::seconds(60);
    }
    s.enqueue(std::move(batch), t0);
  }
  const Page page = s.list({.queue = "default", .state = TaskState::pending, .limit = 10});
  ASSERT_EQ(page.tasks.size(), 1U);
  EXPECT_EQ(page.tasks[0].id, pending);
  EXPECT_TRUE(page.next_cursor.empty());
}

TEST(SqliteStore, NotADatabaseIsReportedAsCorrupt) {
  test::TempDir dir;
  const auto path = dir.path() / "junk.db";
  std::ofstream(path) << std::string(8192, 'x');
  EXPECT_EQ(error_code([&] { SqliteStore s({.path = path.string()}); }), StoreError::Code::corrupt);
}

// Runs SQL on a file with the plain SQLite API, as another program would.
void sql(const std::string& path, const char* statements) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  EXPECT_EQ(sqlite3_exec(db, statements, nullptr, nullptr, &err), SQLITE_OK) << err;
  sqlite3_free(err);
  sqlite3_close(db);
}

std::int64_t application_id(const std::string& path) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  std::int64_t id = -1;
  sqlite3_exec(
      db, "PRAGMA application_id",
      [](void* out, int, char** row, char**) {
        *static_cast<std::int64_t*>(out) = std::stoll(row[0]);
        return 0;
      },
      &id, nullptr);
  sqlite3_close(db);
  return id;
}

std::string file_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Another application's database: refused with a message naming what it
// holds, and left byte for byte as it was, with no -wal or -shm beside it.
TEST(SqliteStore, AForeignDatabaseIsRefusedAndLeftUntouched) {
  test::TempDir dir;
  const auto path = dir.path() / "shop.db";
  sql(path.string(),
      "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT);"
      "INSERT INTO customers (name) VALUES ('ada');"
      "CREATE TABLE orders (id INTEGER PRIMARY KEY)");
  const auto before = file_bytes(path);
  try {
    SqliteStore s({.path = path.string()});
    FAIL() << "took over another application's database";
  } catch (const StoreError& e) {
    EXPECT_EQ(e.code(), StoreError::Code::invalid);
    const std::string what = e.what();
    EXPECT_NE(what.find("is not an errand database"), std::string::npos) << what;
    EXPECT_NE(what.find("customers, orders"), std::string::npos) << what;
  }
  EXPECT_EQ(file_bytes(path), before);
  EXPECT_FALSE(std::filesystem::exists(path.string() + "-wal"));
  EXPECT_FALSE(std::filesystem::exists(path.string() + "-shm"));
  EXPECT_EQ(application_id(path.string()), 0);
}

// Even a file with errand's table names is refused when its application_id
// says it belongs to someone else.
TEST(SqliteStore, AnotherApplicationIdIsRefused) {
  test::TempDir dir;
  const auto path = (dir.path() / "other.db").string();
  sql(path,
      "PRAGMA application_id = 1234; CREATE TABLE schema_version (version INTEGER);"
      "CREATE TABLE tasks (id TEXT)");
  try {
    SqliteStore s({.path = path});
    FAIL() << "opened a file with another application_id";
  } catch (const StoreError& e) {
    EXPECT_EQ(e.code(), StoreError::Code::invalid);
    EXPECT_NE(std::string(e.what()).find("0x000004d2"), std::string::npos) << e.what();
  }
  EXPECT_EQ(application_id(path), 1234);
}

// Tables called schema_version and tasks are common: without errand's own
// columns, the file is someone else's.
TEST(SqliteStore, ErrandsTableNamesWithoutItsColumnsAreRefused) {
  test::TempDir dir;
  const auto path = dir.path() / "lookalike.db";
  sql(path.string(),
      "CREATE TABLE schema_version (version INTEGER); INSERT INTO schema_version "
      "VALUES (1); CREATE TABLE tasks (id TEXT, title TEXT)");
  const auto before = file_bytes(path);
  EXPECT_THROW(SqliteStore({.path = path.string()}), StoreError);
  EXPECT_EQ(file_bytes(path), before);
  EXPECT_FALSE(std::filesystem::exists(path.string() + "-wal"));
}

TEST(SqliteStore, NewDatabasesCarryErrandsApplicationId) {
  test::TempDir dir;
  const auto path = (dir.path() / "new.db").string();
  { SqliteStore s({.path = path}); }
  EXPECT_EQ(application_id(path), 0x45524E44);
  // An empty file (touch errand.db) is a new database too.
  const auto empty = dir.path() / "empty.db";
  std::ofstream{empty}.flush();
  { SqliteStore s({.path = empty.string()}); }
  EXPECT_EQ(application_id(empty.string()), 0x45524E44);
}

// A database errand made before it set application_id (0, with errand's
// schema_version) is recognised, keeps its tasks and gets the id on open.
TEST(SqliteStore, AnErrandDatabaseWithoutTheIdGetsItOnOpen) {
  test::TempDir dir;
  const auto path = (dir.path() / "old.db").string();
  std::string id;
  {
    SqliteStore s({.path = path});
    id = s.enqueue(task(), t0).id;
  }
  sql(path, "PRAGMA application_id = 0");
  ASSERT_EQ(application_id(path), 0);
  SqliteStore s({.path = path});
  EXPECT_TRUE(s.get(id).has_value());
  EXPECT_EQ(application_id(path), 0x45524E44);
}

TEST(SqliteStore, NewerSchemaIsRefused) {
  test::TempDir dir;
  const auto path = (dir.path() / "e.db").string();
  { SqliteStore s({.path = path}); }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "UPDATE schema_version SET version = 99", nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  try {
    SqliteStore s({.path = path});
    FAIL() << "opened a newer schema";
  } catch (const StoreError& e) {
    EXPECT_EQ(e.code(), StoreError::Code::invalid);
    EXPECT_NE(std::string(e.what()).find("99"), std::string::npos);
  }
}

TEST(SqliteStore, Version1FileGainsQueueCountsAndListIndexesOnOpen) {
  test::TempDir dir;
  const auto path = (dir.path() / "e.db").string();
  {
    SqliteStore s({.path = path});
    s.enqueue(task(), t0);
    s.enqueue(task(), t0);
  }
  // Turn the file back into what errand with schema 1 wrote.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "DROP TABLE queue_counts; "
                         "DROP INDEX tasks_listed; DROP INDEX tasks_by_queue; "
                         "DROP INDEX tasks_listed_queue; "
                         "CREATE INDEX tasks_state ON tasks(state, id); "
                         "CREATE INDEX tasks_queue ON tasks(queue, state, id); "
                         "ALTER TABLE tasks DROP COLUMN node; DROP TABLE nodes; "
                         "ALTER TABLE tasks DROP COLUMN attempt_log; "
                         "ALTER TABLE tasks DROP COLUMN tracestate; "
                         "DROP INDEX groups_awaiting; DROP INDEX groups_finished; "
                         "ALTER TABLE groups DROP COLUMN size; "
                         "ALTER TABLE groups DROP COLUMN completion_id; "
                         "ALTER TABLE groups DROP COLUMN finished_at; "
                         "UPDATE schema_version SET version = 1",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  SqliteStore s({.path = path});
  s.enqueue(task(), t0);
  const auto qs = s.queues();
  ASSERT_EQ(qs.size(), 1U);
  EXPECT_EQ(qs[0].pending, 3U);  // the two old tasks counted by the migration, the new one since
  // Version 4: the node column, empty for the old tasks.
  ASSERT_EQ(s.claim("default", 3, {"w~1", t0 + std::chrono::seconds(30), "w"}, t0).size(), 3U);
  // Version 3: the full state indexes are replaced by partial ones.
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  std::vector<std::string> indexes;
  ASSERT_EQ(sqlite3_exec(
                db, "SELECT name FROM sqlite_master WHERE type = 'index' ORDER BY name",
                [](void* out, int, char** row, char**) {
                  static_cast<std::vector<std::string>*>(out)->emplace_back(row[0]);
                  return 0;
                },
                &indexes, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  EXPECT_NE(std::find(indexes.begin(), indexes.end(), "tasks_listed"), indexes.end());
  EXPECT_EQ(std::find(indexes.begin(), indexes.end(), "tasks_state"), indexes.end());
  EXPECT_EQ(std::find(indexes.begin(), indexes.end(), "tasks_queue"), indexes.end());
  // Version 5: the list filters' indexes.
  for (const char* name : {"tasks_by_queue", "tasks_listed_queue"}) {
    EXPECT_NE(std::find(indexes.begin(), indexes.end(), name), indexes.end()) << name;
  }
  // Version 6: an attempt log, empty for the old tasks, kept from now on.
  const auto old = s.list({}).tasks.back();
  EXPECT_TRUE(s.get(old.id)->history.empty());
  ASSERT_TRUE(s.fail(old.id, "w~1", "boom", std::nullopt, t0));
  ASSERT_EQ(s.get(old.id)->history.size(), 1U);
  EXPECT_EQ(s.get(old.id)->history[0].error, "boom");
}

// Schema 10: SQLite evaluates each partial index's WHERE on every write of a
// task; a constant IN list of more than two values there made it build a
// temporary table each time (three per insert, a third of the writer's
// work). Every write must compile without one.
TEST(SqliteStore, WritingATaskBuildsNoTemporaryTable) {
  test::TempDir dir;
  const auto path = (dir.path() / "e.db").string();
  { SqliteStore s({.path = path}); }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  for (const char* sql :
       {"INSERT INTO tasks (id, type, queue, payload, priority, state, max_attempts, run_at, "
        "timeout_ms, unique_key, traceparent, request_id, created_at, updated_at) VALUES ('a', "
        "'t', 'q', '{}', 0, 'pending', 1, 0, 0, 'k', '', '', 0, 0)",
        "UPDATE tasks SET state = 'dead' WHERE id = 'a'", "DELETE FROM tasks WHERE id = 'a'"}) {
    int ephemeral = 0;
    ASSERT_EQ(sqlite3_exec(
                  db, (std::string("EXPLAIN ") + sql).c_str(),
                  [](void* n, int, char** row, char**) {
                    if (std::string_view(row[1]) == "OpenEphemeral") ++*static_cast<int*>(n);
                    return 0;
                  },
                  &ephemeral, nullptr),
              SQLITE_OK);
    EXPECT_EQ(ephemeral, 0) << sql;
  }
  sqlite3_close(db);
}

// Version 8: a group stored before it gains its size and its completion's
// id, so it answers GET /v1/groups and names its completion as awaited.
TEST(SqliteStore, Version7FileGainsGroupColumnsOnOpen) {
  test::TempDir dir;
  const auto path = (dir.path() / "e.db").string();
  NewTask member = task();
  NewTask completion = task();
  {
    SqliteStore s({.path = path});
    s.enqueue_group({"old-grp", completion}, {member}, t0);
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "DROP INDEX groups_awaiting; DROP INDEX groups_finished; "
                         "ALTER TABLE groups DROP COLUMN size; "
                         "ALTER TABLE groups DROP COLUMN completion_id; "
                         "ALTER TABLE groups DROP COLUMN finished_at; "
                         "UPDATE schema_version SET version = 7",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  SqliteStore s({.path = path});
  const auto g = s.group("old-grp");
  ASSERT_TRUE(g.has_value());
  EXPECT_EQ(g->size, 1U);
  EXPECT_EQ(g->remaining, 1U);
  EXPECT_EQ(g->completion_id, completion.id);
  EXPECT_EQ(s.group_awaiting(completion.id), "old-grp");
  ASSERT_EQ(s.claim("default", 1, {"w~1", t0 + std::chrono::seconds(30), "w"}, t0).size(), 1U);
  ASSERT_TRUE(s.complete(member.id, "w~1", "1", t0));
  EXPECT_TRUE(s.get(completion.id).has_value());
  EXPECT_EQ(s.group("old-grp")->finished_at, t0);
}

TEST(SqliteStore, FullDatabaseFailsTheEnqueueAndKeepsWorking) {
  test::TempDir dir;
  SqliteStore s({.path = (dir.path() / "e.db").string(), .max_db_bytes = 256 * 1024});
  const std::string big = "\"" + std::string(64 * 1024, 'a') + "\"";
  // A finished task, deleted later to make room.
  const auto spare = s.enqueue(task(big), t0).id;
  ASSERT_EQ(s.claim("default", 1, {"w~1", t0 + std::chrono::seconds(30), "w"}, t0).size(), 1U);
  ASSERT_TRUE(s.complete(spare, "w~1", "{}", t0));
  const auto kept = s.enqueue(task(), t0).id;
  EXPECT_EQ(error_code([&] {
              for (int i = 0; i < 100; ++i) s.enqueue(task(big), t0);
            }),
            StoreError::Code::full);
  EXPECT_TRUE(s.get(kept).has_value());  // reads still work
  EXPECT_FALSE(s.health().ready);        // /readyz says so
  EXPECT_TRUE(s.health().full);
  EXPECT_EQ(s.purge_final(t0, 10), 0U);  // a write that changes nothing proves nothing
  EXPECT_FALSE(s.health().ready);
  // Room again: a write that commits rows, with room left after it, says so.
  ASSERT_TRUE(s.remove(spare));
  EXPECT_TRUE(s.health().ready);
  EXPECT_FALSE(s.health().full);
  EXPECT_TRUE(s.enqueue(task(), t0).created);
}

TEST(SqliteStore, LockedByAnotherProcessIsBusy) {
  test::TempDir dir;
  const auto path = (dir.path() / "e.db").string();
  SqliteStore s({.path = path, .busy_timeout = milliseconds(50)});
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  EXPECT_EQ(error_code([&] { s.enqueue(task(), t0); }), StoreError::Code::busy);
  ASSERT_EQ(sqlite3_exec(other, "COMMIT", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(other);
  EXPECT_TRUE(s.enqueue(task(), t0).created);
}

TEST(SqliteStore, ConcurrentWritesShareOneCommit) {
  test::TempDir dir;
  std::mutex mu;
  std::vector<std::size_t> batches;
  std::latch first_commit_seen(1);
  std::latch release_writer(1);
  SqliteStore s({.path = (dir.path() / "e.db").string(),
                 .on_commit = [&](std::size_t ops, std::chrono::nanoseconds) {
                   {
                     const std::lock_guard lock(mu);
                     batches.push_back(ops);
                     if (batches.size() != 1) return;
                   }
                   first_commit_seen.count_down();
                   release_writer.wait();  // hold the writer while others queue up
                 }});
  std::jthread first([&] { s.enqueue(task(), t0); });
  first_commit_seen.wait();

  constexpr int kWriters = 8;
  std::vector<std::jthread> writers;
  std::vector<std::string> ids(kWriters);
  for (int i = 0; i < kWriters; ++i) {
    writers.emplace_back([&, i] { ids[i] = s.enqueue(task(), t0).id; });
  }
  ASSERT_TRUE(test::eventually([&] { return s.queued_writes() == kWriters; }));
  release_writer.count_down();
  writers.clear();
  first.join();

  const std::lock_guard lock(mu);
  ASSERT_EQ(batches.size(), 2U);
  EXPECT_EQ(batches[1], static_cast<std::size_t>(kWriters));
  for (const auto& id : ids) EXPECT_TRUE(s.get(id).has_value());
}

TEST(SqliteStore, ManyThreadsEnqueueAndEveryAckIsStored) {
  test::TempDir dir;
  std::atomic<std::size_t> committed{0};
  SqliteStore s(
      {.path = (dir.path() / "e.db").string(),
       .on_commit = [&](std::size_t ops, std::chrono::nanoseconds) { committed += ops; }});
  constexpr int kThreads = 6;
  constexpr int kEach = 150;
  std::vector<std::vector<std::string>> ids(kThreads);
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kEach; ++i) ids[t].push_back(s.enqueue(task(), t0).id);
      });
    }
  }
  EXPECT_EQ(committed.load(), static_cast<std::size_t>(kThreads * kEach));
  for (const auto& per : ids) {
    for (const auto& id : per) ASSERT_TRUE(s.get(id).has_value());
  }
  std::size_t pending = 0;
  for (const auto& q : s.queues()) pending += q.pending;
  EXPECT_EQ(pending, static_cast<std::size_t>(kThreads * kEach));
}

TEST(SqliteStore, EnqueueAsyncJoinsTheGroupCommitAndAFullQueueRefusesAtOnce) {
  test::TempDir dir;
  std::latch first_commit_seen(1);
  std::latch release_writer(1);
  std::atomic<int> commits{0};
  SqliteStore s({.path = (dir.path() / "e.db").string(),
                 .max_queued_writes = 4,
                 .on_commit = [&](std::size_t, std::chrono::nanoseconds) {
                   if (commits.fetch_add(1) != 0) return;
                   first_commit_seen.count_down();
                   release_writer.wait();  // hold the writer while the queue fills
                 }});
  std::jthread first([&] { s.enqueue(task(), t0); });
  first_commit_seen.wait();

  std::mutex mu;
  std::vector<std::string> stored;
  std::vector<StoreError::Code> refused;
  std::thread::id refused_on;
  const auto done = [&](std::vector<Enqueued> out, std::exception_ptr e) {
    const std::lock_guard lock(mu);
    if (!e) {
      stored.push_back(out.at(0).id);
      return;
    }
    refused_on = std::this_thread::get_id();
    try {
      std::rethrow_exception(e);
    } catch (const StoreError& err) {
      refused.push_back(err.code());
    }
  };
  for (int i = 0; i < 5; ++i) s.enqueue_async({task()}, t0, done);  // never blocks
  {
    const std::lock_guard lock(mu);
    ASSERT_EQ(refused.size(), 1U);  // the fifth: answered inline, on this thread
    EXPECT_EQ(refused[0], StoreError::Code::busy);
    EXPECT_EQ(refused_on, std::this_thread::get_id());
    EXPECT_TRUE(stored.empty());
  }
  release_writer.count_down();
  ASSERT_TRUE(test::eventually([&] {
    const std::lock_guard lock(mu);
    return stored.size() == 4;
  }));
  first.join();
  const std::lock_guard lock(mu);
  for (const auto& id : stored) EXPECT_TRUE(s.get(id).has_value());
}

// A single enqueue runs without a savepoint of its own: when its INSERT fails
// after it has written (here a trigger aborts it once the row is in), SQLite
// must undo that statement alone, GroupCommit the count it added, and the
// other enqueues of the same transaction commit. A two-task enqueue runs in a
// savepoint: when its second task fails, its first is rolled back with it,
// and its counts too.
TEST(SqliteStore, AFailedEnqueueInABatchIsUndoneAloneWithoutASavepoint) {
  test::TempDir dir;
  const auto path = (dir.path() / "e.db").string();
  std::latch first_commit_seen(1);
  std::latch release_writer(1);
  std::atomic<int> commits{0};
  std::atomic<std::size_t> biggest_batch{0};
  SqliteStore s({.path = path, .on_commit = [&](std::size_t n, std::chrono::nanoseconds) {
                   if (n > biggest_batch) biggest_batch = n;
                   if (commits.fetch_add(1) != 0) return;
                   first_commit_seen.count_down();
                   release_writer.wait();  // hold the writer while the batch gathers
                 }});
  sql(path,
      "CREATE TRIGGER boom AFTER INSERT ON tasks WHEN NEW.type = 'boom' "
      "BEGIN SELECT RAISE(ABORT, 'boom refused'); END");
  std::jthread first([&] { s.enqueue(task(), t0); });
  first_commit_seen.wait();

  std::mutex mu;
  std::vector<std::string> stored;
  std::vector<std::string> failed;
  const auto done = [&](std::vector<Enqueued> out, std::exception_ptr e) {
    const std::lock_guard lock(mu);
    if (!e) {
      stored.push_back(out.at(0).id);
      return;
    }
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& err) {
      failed.emplace_back(err.what());
    }
  };
  auto boom = task();
  boom.type = "boom";
  auto second_boom = task();
  second_boom.type = "boom";
  s.enqueue_async({task()}, t0, done);
  s.enqueue_async({std::move(boom)}, t0, done);
  s.enqueue_async({task(), std::move(second_boom)}, t0, done);
  s.enqueue_async({task()}, t0, done);
  release_writer.count_down();
  ASSERT_TRUE(test::eventually([&] {
    const std::lock_guard lock(mu);
    return stored.size() + failed.size() == 4;
  }));
  first.join();
  EXPECT_EQ(biggest_batch.load(), 4U);  // the four shared one transaction
  const std::lock_guard lock(mu);
  ASSERT_EQ(failed.size(), 2U);
  for (const auto& why : failed) EXPECT_NE(why.find("boom refused"), std::string::npos) << why;
  ASSERT_EQ(stored.size(), 2U);
  for (const auto& id : stored) EXPECT_TRUE(s.get(id).has_value());
  const auto queues = s.queues();
  ASSERT_EQ(queues.size(), 1U);
  // The first enqueue and the batch's two single ones; not the aborted one, nor the two-task
  // enqueue whose first task was in (its count undone with its savepoint).
  EXPECT_EQ(queues[0].pending, 3U);
  EXPECT_EQ(s.list({.queue = "default"}).tasks.size(), 3U);
}

// Schema 11: the writer keeps queue_counts (no triggers). After every kind of
// change the table must say what a count of the tasks says (failed
// operations in a batch: AFailedEnqueueInABatchIsUndoneAloneWithoutASavepoint).
std::vector<std::string> rows(const std::string& path, const char* query) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  std::vector<std::string> out;
  EXPECT_EQ(sqlite3_exec(
                db, query,
                [](void* o, int n, char** row, char**) {
                  std::string line;
                  for (int i = 0; i < n; ++i) line += std::string(row[i]) + " ";
                  static_cast<std::vector<std::string>*>(o)->push_back(line);
                  return 0;
                },
                &out, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  return out;
}

TEST(SqliteStore, QueueCountsMatchTheTasksAfterEveryKindOfChange) {
  test::TempDir dir;
  const auto path = (dir.path() / "e.db").string();
  SqliteStore s({.path = path});
  const auto counts_match = [&](const char* after) {
    const auto kept =
        rows(path, "SELECT queue, state, n FROM queue_counts WHERE n != 0 ORDER BY 1, 2");
    const auto counted =
        rows(path, "SELECT queue, state, count(*) FROM tasks GROUP BY 1, 2 ORDER BY 1, 2");
    EXPECT_EQ(kept, counted) << "after " << after;
    EXPECT_FALSE(counted.empty()) << "after " << after;
  };
  const auto in = [](std::string queue, TimePoint run_at = t0) {
    auto t = task();
    t.queue = std::move(queue);
    t.run_at = run_at;
    return t;
  };
  using std::chrono::seconds;
  const Lease lease{"w~1", t0 + seconds(30), "w"};

  std::vector<NewTask> batch;
  for (int i = 0; i < 4; ++i) batch.push_back(in("a"));
  batch.push_back(in("a", t0 + seconds(60)));  // scheduled
  batch.push_back(in("b"));
  s.enqueue(std::move(batch), t0);
  auto keyed = in("b");
  keyed.unique_key = "k";
  s.enqueue(keyed, t0);
  keyed.id = new_task_id(t0);
  s.enqueue(keyed, t0);  // the holder answers; nothing is stored
  GroupSpec group{"g1", in("b")};
  s.enqueue_group(group, {in("b"), in("b")}, t0);
  counts_match("enqueues");

  auto a = s.claim("a", 3, lease, t0);
  ASSERT_EQ(a.size(), 3U);
  counts_match("a claim");
  ASSERT_TRUE(s.complete(a[0].id, "w~1", "{}", t0));
  ASSERT_TRUE(s.fail(a[1].id, "w~1", "boom", t0 + seconds(5), t0));  // retrying
  ASSERT_TRUE(s.release(a[2].id, "w~1", t0, t0));                    // pending again
  counts_match("complete, fail, release");

  auto b = s.claim("b", 10, lease, t0);
  ASSERT_EQ(b.size(), 4U);
  for (const auto& t : b) {
    if (!t.group_id.empty()) {
      ASSERT_TRUE(s.complete(t.id, "w~1", "{}", t0));  // the last one enqueues the completion
    }
  }
  ASSERT_TRUE(b[0].group_id.empty());  // the batch's task, claimed first
  ASSERT_TRUE(s.fail(b[0].id, "w~1", "x", std::nullopt, t0));
  counts_match("a group's completion, a dead task");

  // Promotion: the scheduled and retrying tasks fall due.
  auto due = s.claim("a", 10, lease, t0 + seconds(61));
  EXPECT_EQ(due.size(), 4U);  // released, its neighbour, the retried, the scheduled
  counts_match("promotion and claim");
  ASSERT_TRUE(s.finish_cancelled(due[0].id, "w~1", t0));
  EXPECT_EQ(s.cancel(due[1].id, t0), CancelResult::requested);  // active: asked
  EXPECT_EQ(s.reclaim_expired(t0 + seconds(120)), 4U);  // a's other active tasks, b's keyed one
  counts_match("cancel and reclaim");

  for (const auto& t : s.list({.queue = "b"}).tasks) {
    if (t.state == TaskState::pending) {
      EXPECT_EQ(s.cancel(t.id, t0), CancelResult::cancelled);
    } else if (t.state == TaskState::dead) {
      EXPECT_TRUE(s.retry(t.id, t0));
    }
  }
  counts_match("cancel and retry");
  EXPECT_TRUE(s.remove(a[0].id));
  EXPECT_TRUE(s.fire_schedule("tick", t0, in("c"), t0));
  counts_match("remove, schedule");
  EXPECT_GT(s.purge_final(t0 + seconds(3600), 100), 0U);
  counts_match("purge");
  EXPECT_TRUE(rows(path, "SELECT name FROM sqlite_master WHERE type = 'trigger'").empty());
}

TEST(SqliteStore, TuningSqliteTakesOnlyBeforeItStartsAndTheStoreWorksEitherWay) {
  test::TempDir dir;
  ASSERT_EQ(sqlite3_shutdown(), SQLITE_OK);  // no connection is open between tests
  sqlite3_mem_methods original{};
  ASSERT_EQ(sqlite3_config(SQLITE_CONFIG_GETMALLOC, &original), SQLITE_OK);
  EXPECT_TRUE(tune_sqlite_for_errand());
  {
    SqliteStore s({.path = (dir.path() / "t.db").string()});
    const auto id = s.enqueue(task(), t0).id;
    EXPECT_TRUE(s.get(id).has_value());
    EXPECT_FALSE(tune_sqlite_for_errand());  // SQLite has started: nothing changes
  }
  // Back to SQLite's defaults for the tests after this one.
  ASSERT_EQ(sqlite3_shutdown(), SQLITE_OK);
  EXPECT_EQ(sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 1), SQLITE_OK);
  EXPECT_EQ(sqlite3_config(SQLITE_CONFIG_MALLOC, &original), SQLITE_OK);
}

TEST(SqliteStore, ASynchronousWriteFromTheWriterThreadIsALogicErrorNotAHang) {
  test::TempDir dir;
  SqliteStore s({.path = (dir.path() / "e.db").string()});
  std::mutex mu;
  std::string refused;
  bool called = false;
  s.enqueue_async({task()}, t0, [&](std::vector<Enqueued>, const std::exception_ptr&) {
    std::string what;
    try {
      s.enqueue(task(), t0);  // on the writer thread: would wait for itself
    } catch (const std::logic_error& e) {
      what = e.what();
    }
    const std::lock_guard lock(mu);
    refused = what;
    called = true;
  });
  ASSERT_TRUE(test::eventually([&] {
    const std::lock_guard lock(mu);
    return called;
  }));
  const std::lock_guard lock(mu);
  EXPECT_NE(refused.find("writer thread"), std::string::npos) << refused;
}

}  // namespace
}  // namespace errand::store
