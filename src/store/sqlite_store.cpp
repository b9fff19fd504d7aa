#include "errand/store/sqlite_store.hpp"

#include <sys/statvfs.h>

#include <sqlite3.h>

#include <algorithm>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <mutex>

#include <fmt/format.h>
#include <boost/json.hpp>

#include "store/backend_helpers.hpp"
#include "store/group_commit.hpp"
#include "store/sqlite_checkpointer.hpp"
#include "store/sqlite_db.hpp"
#include "store/sqlite_memory.hpp"
#include "store/sqlite_queue_counts.hpp"
#include "store/sqlite_schema.hpp"

#include "errand/detail/thread_annotations.hpp"

namespace errand::store {

namespace {

using sqlite::Db;
using sqlite::Query;
using sqlite::QueueCounts;

std::int64_t ms(TimePoint t) {
  return t.time_since_epoch().count();
}
TimePoint at(std::int64_t v) {
  return TimePoint(std::chrono::milliseconds(v));
}
std::optional<TimePoint> at(std::optional<std::int64_t> v) {
  if (!v) return std::nullopt;
  return at(*v);
}

// The column list every record read uses, in TaskRecord's order.
constexpr std::string_view kCols =
    "id, type, queue, payload, priority, state, attempt, max_attempts, run_at, timeout_ms, "
    "unique_key, traceparent, request_id, group_id, progress, progress_message, result, "
    "last_error, created_at, updated_at, started_at, finished_at, lease_owner, "
    "lease_expires_at, cancel_requested, node, tracestate";
// How many columns kCols names: the column after them is the next index.
constexpr int kColCount = static_cast<int>(std::ranges::count(kCols, ',')) + 1;
static_assert(kColCount == 27);

// Pending tasks of a queue listed by sorting them, up to this many (list()).
constexpr std::int64_t kSortPendingAtMost = 1000;

// The states of the partial indexes tasks_unique and tasks_listed(_queue),
// written as in their definitions (schema 10): a query uses a partial index
// only when its WHERE holds the same term. OR chains, not IN lists: SQLite
// evaluates a constant IN list of more than two values by building a
// temporary table, on every execution of a statement that writes a task (three
// per insert, a third of the writer's instructions, callgrind).
constexpr std::string_view kUnfinished =
    "(state = 'scheduled' OR state = 'pending' OR state = 'active' OR state = 'retrying')";
constexpr std::string_view kRare =
    "(state = 'scheduled' OR state = 'retrying' OR state = 'dead' OR state = 'cancelled')";

// The SET term that appends the attempt ending now to attempt_log (schema 6),
// keeping the latest kMaxPastAttempts; `outcome` and `error` are SQL
// expressions over the row as it was (SQLite evaluates every SET term on the
// old row).
// The state a failed attempt leaves its task in (?3: the retry's time, if any).
constexpr std::string_view kFailedState =
    "CASE WHEN cancel_requested THEN 'cancelled' WHEN ?3 IS NOT NULL THEN 'retrying' ELSE 'dead' "
    "END";
constexpr std::string_view kLeaseExpired =
    "'lease expired: the worker holding the task stopped heartbeating'";

std::string log_attempt(std::string_view now, std::string_view outcome, std::string_view error) {
  return fmt::format(
      "attempt_log = json_insert(CASE WHEN json_array_length(attempt_log) >= {} "
      "THEN json_remove(attempt_log, '$[0]') ELSE attempt_log END, '$[#]', "
      "json_object('n', attempt, 'node', node, 's', started_at, 'e', {}, 'o', {}, 'err', {}))",
      kMaxPastAttempts, now, outcome, fmt::format("substr({}, 1, {})", error, kMaxPastError));
}

TaskRecord read_record(const Query& q) {
  TaskRecord r;
  r.id = q.text(0);
  r.type = q.text(1);
  r.queue = q.text(2);
  r.payload = q.text(3);
  r.priority = static_cast<int>(q.i64(4));
  r.state = parse_state(q.text(5)).value_or(TaskState::dead);
  r.attempt = static_cast<int>(q.i64(6));
  r.max_attempts = static_cast<int>(q.i64(7));
  r.run_at = at(q.i64(8));
  r.timeout = std::chrono::milliseconds(q.i64(9));
  r.unique_key = q.text(10);
  r.traceparent = q.text(11);
  r.request_id = q.text(12);
  r.group_id = q.text(13);
  r.progress = static_cast<int>(q.i64(14));
  r.progress_message = q.text(15);
  r.result = q.opt_text(16);
  r.last_error = q.opt_text(17);
  r.created_at = at(q.i64(18));
  r.updated_at = at(q.i64(19));
  r.started_at = at(q.opt_i64(20));
  r.finished_at = at(q.opt_i64(21));
  r.lease_owner = q.text(22);
  r.lease_expires_at = at(q.opt_i64(23));
  r.cancel_requested = q.i64(24) != 0;
  r.node = q.text(25);
  r.tracestate = q.text(26);
  return r;
}

namespace {

// Room for writes again after a full disk: a megabyte free on the file
// system under the file, and, under max_db_bytes, a sixteenth of it free
// among the pages (deleted tasks free pages inside the file).
bool room_for_writes(Db& db, const std::string& path, std::uint64_t max_db_bytes) {
  const auto dir = std::filesystem::absolute(path).parent_path();
  struct statvfs fs {};
  if (statvfs(dir.c_str(), &fs) == 0 &&
      static_cast<std::uint64_t>(fs.f_bavail) * fs.f_frsize < (std::uint64_t{1} << 20)) {
    return false;
  }
  if (max_db_bytes == 0) return true;
  const auto pragma = [&db](const char* sql) {
    auto q = db.query(sql);
    return q.step() ? static_cast<std::uint64_t>(q.i64(0)) : 0;
  };
  const auto used =
      (pragma("PRAGMA page_count") - pragma("PRAGMA freelist_count")) * pragma("PRAGMA page_size");
  return used + max_db_bytes / 16 <= max_db_bytes;
}

}  // namespace

// All writes below run on the writer thread, inside the group-commit
// transaction, so a read-then-write here is atomic.

Enqueued insert(Db& db, QueueCounts& counts, NewTask&& t, TimePoint now) {
  if (!t.unique_key.empty()) {
    auto q = db.query(fmt::format(
        "SELECT id, state FROM tasks WHERE unique_key = ?1 AND unique_key IS NOT NULL AND {}",
        kUnfinished));
    q.bind(1, std::string_view(t.unique_key));
    if (q.step()) return {q.text(0), parse_state(q.text(1)).value_or(TaskState::pending), false};
  }
  if (t.max_waiting > 0) {
    // A CASE, not `state IN (...)` nor an OR of states in the WHERE (which
    // the planner turns into one): either builds a temporary b-tree per
    // execution, here once per enqueue (see kUnfinished).
    auto q = db.query(
        "SELECT coalesce(sum(CASE WHEN state = 'scheduled' OR state = 'pending' OR "
        "state = 'retrying' THEN n END), 0) FROM queue_counts WHERE queue = ?1");
    q.bind(1, std::string_view(t.queue));
    q.step();
    const std::int64_t unwritten = counts.unwritten(t.queue, TaskState::scheduled) +
                                   counts.unwritten(t.queue, TaskState::pending) +
                                   counts.unwritten(t.queue, TaskState::retrying);
    detail::check_room(t,
                       static_cast<std::size_t>(std::max<std::int64_t>(q.i64(0) + unwritten, 0)));
  }
  const TaskRecord r = detail::make_record(std::move(t), now);
  // Made before the write, because nothing may throw after it: a single
  // enqueue runs without a savepoint (GroupCommit's one_write). If the write
  // fails, GroupCommit undoes the count with the operation.
  Enqueued out{r.id, r.state, true};
  counts.add(r.queue, r.state, 1);
  // `r` outlives the statement: its fields are bound without copies.
  db.query(
        "INSERT INTO tasks (id, type, queue, payload, priority, state, max_attempts, run_at, "
        "timeout_ms, unique_key, traceparent, request_id, group_id, created_at, updated_at, "
        "tracestate) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?14, ?15)")
      .bind_borrowed(1, r.id)
      .bind_borrowed(2, r.type)
      .bind_borrowed(3, r.queue)
      .bind_borrowed(4, r.payload)
      .bind(5, std::int64_t{r.priority})
      .bind_borrowed(6, to_string(r.state))  // a static name
      .bind(7, std::int64_t{r.max_attempts})
      .bind(8, ms(r.run_at))
      .bind(9, static_cast<std::int64_t>(r.timeout.count()))
      .bind_or_null(10, r.unique_key)
      .bind_borrowed(11, r.traceparent)
      .bind_borrowed(12, r.request_id)
      .bind_or_null(13, r.group_id)
      .bind(14, ms(now))
      .bind_borrowed(15, r.tracestate)
      .run();
  return out;
}

// A group member became final: count it; the last one enqueues the completion.
void member_final(Db& db, QueueCounts& counts, const std::string& group_id, TimePoint now) {
  if (group_id.empty()) return;
  std::optional<std::string> completion;
  {
    // The last member finishes the group (kept until the purge).
    auto q = db.query(
        "UPDATE groups SET remaining = remaining - 1, "
        "finished_at = CASE WHEN remaining = 1 THEN ?2 END "
        "WHERE id = ?1 AND remaining > 0 AND finished_at IS NULL "
        "RETURNING remaining, completion");
    q.bind(1, std::string_view(group_id));
    q.bind(2, ms(now));
    if (!q.step() || q.i64(0) > 0) return;
    completion = q.opt_text(1);
  }
  if (completion) {
    std::vector<TaskRecord> members;
    {
      auto q = db.query(fmt::format("SELECT {} FROM tasks WHERE group_id = ?1 ORDER BY id", kCols));
      q.bind(1, std::string_view(group_id));
      while (q.step()) members.push_back(read_record(q));
    }
    NewTask c = detail::new_task_from_json(*completion);
    c.payload = detail::completion_payload(group_id, c.payload, members);
    insert(db, counts, std::move(c), now);
  }
}

// Runs an UPDATE ... RETURNING state, group_id, queue on one task that was in
// state `from`; counts it, and reports the group to member_final() when the
// task became final.
bool transition(Db& db, QueueCounts& counts, Query&& q, TaskState from, TimePoint now) {
  if (!q.step()) return false;
  const auto state = parse_state(q.text(0));
  const std::string group = q.text(1);
  if (state) counts.move(q.text(2), from, *state);
  while (q.step()) {
  }
  if (state && is_final(*state)) member_final(db, counts, group, now);
  return true;
}

}  // namespace

namespace {
// What the writer's WAL hook needs: the log's bound and who checkpoints.
struct WalHook {
  int bound_frames = 0;
  sqlite::Checkpointer* checkpointer = nullptr;
};
}  // namespace

struct SqliteStore::Impl {
  SqliteOptions options;
  // Before the writer: they outlive the writer's last commit and its hook.
  WalHook wal_hook;
  sqlite::QueueCounts counts;  // the writer's, for the open transaction
  std::unique_ptr<sqlite::Checkpointer> checkpointer;
  std::unique_ptr<sqlite::GroupCommit> writer;
  errand::detail::Mutex readers_mu;
  std::condition_variable readers_cv;
  std::vector<std::unique_ptr<Db>> readers ERRAND_GUARDED_BY(readers_mu);

  template <class F>
  void write(F&& f) {
    writer->run(sqlite::GroupCommit::Op(std::forward<F>(f)));
  }

  template <class F>
  auto read(F&& f) {
    std::unique_ptr<Db> db;
    {
      errand::detail::MutexLock lock(readers_mu);
      lock.wait(readers_cv, [&]() ERRAND_REQUIRES(readers_mu) { return !readers.empty(); });
      db = std::move(readers.back());
      readers.pop_back();
    }
    struct Return {
      Impl* self;
      std::unique_ptr<Db>* db;
      ~Return() {
        {
          const errand::detail::MutexLock lock(self->readers_mu);
          self->readers.push_back(std::move(*db));
        }
        self->readers_cv.notify_one();
      }
    } give_back{this, &db};
    return f(*db);
  }
};

namespace {

// Checkpoints of the writer's log. Past 1000 pages a PASSIVE one copies what
// no reader still needs and never waits, on the checkpointer's thread (not in
// the writer's COMMIT, where SQLite's own would stall every enqueue behind
// the copy and its fsync). Under a steady read load one can never finish,
// and the log only grows (seen: 4 MB to 635 MB in ten seconds while the task
// list was polled): past the bound the writer itself waits for the readers
// of the log to leave it (busy timeout; reads are short) and restarts it, and
// journal_size_limit truncates the file to the bound.
int checkpoint_when_due(void* context, sqlite3* db, const char* name, int frames) {
  const auto& hook = *static_cast<const WalHook*>(context);
  if (frames >= hook.bound_frames) {
    sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_RESTART, nullptr, nullptr);
  } else if (frames >= std::min(hook.bound_frames, 1000)) {
    hook.checkpointer->request();
  }
  return SQLITE_OK;
}

// `hook` must outlive the connection's last commit.
void bound_wal(sqlite::Db& db, std::uint64_t limit_bytes, WalHook& hook) {
  auto q = db.query("PRAGMA page_size");
  q.step();
  const auto page = static_cast<std::uint64_t>(std::max<std::int64_t>(q.i64(0), 512));
  limit_bytes = std::max<std::uint64_t>(limit_bytes, 1ULL << 20U);
  db.exec(fmt::format("PRAGMA journal_size_limit = {}", limit_bytes).c_str());
  hook.bound_frames = static_cast<int>(std::min<std::uint64_t>(limit_bytes / page, 1U << 30U));
  sqlite3_wal_hook(db.raw(), &checkpoint_when_due, &hook);
}

}  // namespace

SqliteStore::SqliteStore(SqliteOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  const auto& o = impl_->options;
  const std::filesystem::path path(o.path);
  if (path.has_parent_path()) {
    std::error_code ec;
    std::filesystem::create_directories(path.parent_path(), ec);
    if (ec) {
      throw StoreError(
          StoreError::Code::unavailable,
          fmt::format("sqlite: cannot create {}: {}", path.parent_path().string(), ec.message()));
    }
  }
  const int busy = static_cast<int>(o.busy_timeout.count());
  auto db = std::make_unique<Db>(o.path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, busy);
  sqlite::check_owner(*db, o.path);  // before WAL: nothing may touch a foreign file
  // journal_mode answers with a row; WAL is persistent in the file.
  {
    auto q = db->query("PRAGMA journal_mode = WAL");
    if (!q.step() || q.text(0) != "wal") {
      throw StoreError(StoreError::Code::unavailable,
                       "sqlite: " + o.path + " cannot use WAL mode (a network file system?)");
    }
  }
  db->exec(o.synchronous == SqliteOptions::Synchronous::full ? "PRAGMA synchronous = FULL"
                                                             : "PRAGMA synchronous = NORMAL");
  db->exec("PRAGMA foreign_keys = OFF");
  if (o.max_db_bytes > 0) {
    auto q = db->query("PRAGMA page_size");
    q.step();
    const auto page = std::max<std::int64_t>(q.i64(0), 512);
    const auto pages =
        std::max<std::uint64_t>(o.max_db_bytes / static_cast<std::uint64_t>(page), 1);
    db->exec(fmt::format("PRAGMA max_page_count = {}", pages).c_str());
  }
  sqlite::migrate(*db, kSchemaVersion);
  impl_->checkpointer = std::make_unique<sqlite::Checkpointer>(
      o.path, busy, o.synchronous == SqliteOptions::Synchronous::full);
  impl_->wal_hook.checkpointer = impl_->checkpointer.get();
  bound_wal(*db, o.wal_limit_bytes, impl_->wal_hook);

  impl_->writer = std::make_unique<sqlite::GroupCommit>(
      std::move(db),
      sqlite::GroupCommit::Options{.max_batch = std::max<std::size_t>(o.max_batch, 1),
                                   .max_queued = std::max<std::size_t>(o.max_queued_writes, 1),
                                   .wait_for_room = o.busy_timeout,
                                   .on_commit = o.on_commit,
                                   .has_room = [path = o.path, max = o.max_db_bytes](
                                                   Db& d) { return room_for_writes(d, path, max); },
                                   .deferred = &impl_->counts});
  for (std::size_t i = 0; i < std::max<std::size_t>(o.readers, 1); ++i) {
    impl_->readers.push_back(std::make_unique<Db>(o.path, SQLITE_OPEN_READONLY, busy));
  }
}

SqliteStore::~SqliteStore() = default;

std::size_t SqliteStore::queued_writes() const {
  return impl_->writer->queued();
}

std::vector<Enqueued> SqliteStore::enqueue(std::vector<NewTask> tasks, TimePoint now) {
  std::vector<Enqueued> out;
  impl_->write([&](Db& db) {
    out.clear();
    out.reserve(tasks.size());
    for (auto& t : tasks) out.push_back(insert(db, impl_->counts, std::move(t), now));
  });
  return out;
}

bool tune_sqlite_for_errand() noexcept {
  return sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0) == SQLITE_OK &&
         sqlite3_config(SQLITE_CONFIG_MALLOC, &sqlite::cached_memory_methods()) == SQLITE_OK;
}

void SqliteStore::enqueue_async(std::vector<NewTask> tasks, TimePoint now, EnqueueDone done) {
  // One allocation shared by the operation and its callback.
  struct State {
    std::vector<NewTask> tasks;
    std::vector<Enqueued> out;
    EnqueueDone done;
  };
  // One task is one INSERT (its unique-key and room checks only read).
  const bool one_write = tasks.size() == 1;
  auto st = std::make_shared<State>(State{std::move(tasks), {}, std::move(done)});
  impl_->writer->submit(
      [st, now, counts = &impl_->counts](Db& db) {
        st->out.clear();
        st->out.reserve(st->tasks.size());
        for (auto& t : st->tasks) st->out.push_back(insert(db, *counts, std::move(t), now));
      },
      [st](std::exception_ptr error) {
        if (error) st->out.clear();
        st->done(std::move(st->out), std::move(error));
      },
      {.one_write = one_write});
}

std::vector<Enqueued> SqliteStore::enqueue_group(GroupSpec group, std::vector<NewTask> members,
                                                 TimePoint now) {
  std::vector<Enqueued> out;
  impl_->write([&](Db& db) {
    out.clear();
    db.query(
          "INSERT INTO groups (id, remaining, completion, size, completion_id) "
          "VALUES (?1, ?2, ?3, ?2, ?4)")
        .bind(1, std::string_view(group.id))
        .bind(2, static_cast<std::int64_t>(members.size()))
        .bind(3, group.completion
                     ? std::optional<std::string>(detail::new_task_to_json(*group.completion))
                     : std::nullopt)
        .bind(4, group.completion ? std::optional<std::string>(group.completion->id) : std::nullopt)
        .run();
    for (const auto& m : members) {
      NewTask t = m;
      t.group_id = group.id;
      t.unique_key.clear();  // a member must belong to this group, not to an earlier task
      out.push_back(insert(db, impl_->counts, std::move(t), now));
    }
    if (members.empty()) {
      db.query("UPDATE groups SET remaining = 1 WHERE id = ?1")
          .bind(1, std::string_view(group.id))
          .run();
      member_final(db, impl_->counts, group.id, now);
    }
  });
  return out;
}

std::vector<TaskRecord> SqliteStore::claim(std::string_view queue, std::size_t max,
                                           const Lease& lease, TimePoint now) {
  std::vector<TaskRecord> out;
  if (max == 0) return out;
  impl_->write([&](Db& db) {
    out.clear();
    auto& counts = impl_->counts;
    {
      // What the promotion below moves, counted first: an UPDATE's RETURNING
      // sees the new state only. Same transaction, same rows.
      std::int64_t due = 0;
      auto q = db.query(
          "SELECT state, count(*) FROM tasks "
          "WHERE queue = ?2 AND state IN ('scheduled', 'retrying') AND run_at <= ?1 GROUP BY "
          "state");
      q.bind(1, ms(now)).bind(2, queue);
      while (q.step()) {
        const auto from = parse_state(q.text(0));
        if (from) counts.move(queue, *from, TaskState::pending, q.i64(1));
        due += q.i64(1);
      }
      if (due > 0) {
        db.query(
              "UPDATE tasks SET state = 'pending', updated_at = ?1 "
              "WHERE queue = ?2 AND state IN ('scheduled', 'retrying') AND run_at <= ?1")
            .bind(1, ms(now))
            .bind(2, queue)
            .run();
      }
    }
    {
      auto q = db.query("SELECT paused FROM queues WHERE name = ?1");
      q.bind(1, queue);
      if (q.step() && q.i64(0) != 0) return;
    }
    // Read in the claim index's order, then each row updated by its rowid:
    // one UPDATE ... WHERE id IN (SELECT ...) RETURNING made SQLite build two
    // temporary b-trees per claim (the IN list and RETURNING's rows) and left
    // the rows unordered. The row is read before it is written, so the record
    // takes the claim's changes here, as the UPDATE makes them.
    static const std::string pick = fmt::format(
        "SELECT {}, rowid FROM tasks WHERE queue = ?1 AND state = 'pending' "
        "ORDER BY priority DESC, run_at, id LIMIT ?2",
        kCols);
    std::vector<std::int64_t> rowids;
    {
      auto q = db.query(pick);
      q.bind(1, queue).bind(2, static_cast<std::int64_t>(max));
      while (q.step()) {
        out.push_back(read_record(q));
        rowids.push_back(q.i64(kColCount));
      }
    }
    const std::string_view node = lease.node.empty() ? lease.owner : lease.node;
    for (std::size_t i = 0; i < out.size(); ++i) {
      db.query(
            "UPDATE tasks SET state = 'active', attempt = attempt + 1, started_at = ?1, "
            "updated_at = ?1, lease_owner = ?2, lease_expires_at = ?3, node = ?4 "
            "WHERE rowid = ?5")
          .bind(1, ms(now))
          .bind_borrowed(2, lease.owner)
          .bind(3, ms(lease.expires_at))
          .bind_borrowed(4, node)
          .bind(5, rowids[i])
          .run();
      auto& r = out[i];
      r.state = TaskState::active;
      r.attempt += 1;
      r.started_at = now;
      r.updated_at = now;
      r.lease_owner = lease.owner;
      r.lease_expires_at = lease.expires_at;
      r.node = node;
    }
    counts.move(queue, TaskState::pending, TaskState::active,
                static_cast<std::int64_t>(out.size()));
  });
  return out;
}

HeartbeatResult SqliteStore::extend_leases(const std::vector<std::string>& ids, const Lease& lease,
                                           TimePoint now) {
  HeartbeatResult out;
  if (ids.empty()) return out;
  impl_->write([&](Db& db) {
    out = {};
    for (const auto& id : ids) {
      auto q = db.query(
          "UPDATE tasks SET lease_expires_at = ?1, updated_at = ?2 "
          "WHERE id = ?3 AND state = 'active' AND lease_owner = ?4 RETURNING cancel_requested");
      q.bind(1, ms(lease.expires_at))
          .bind(2, ms(now))
          .bind(3, std::string_view(id))
          .bind(4, std::string_view(lease.owner));
      if (!q.step()) {
        out.lost.push_back(id);
      } else if (q.i64(0) != 0) {
        out.cancel_requested.push_back(id);
      }
    }
  });
  return out;
}

namespace {

// A SELECT, then an UPDATE of that row, not one UPDATE ... RETURNING: SQLite
// gathers RETURNING's rows in a temporary b-tree that it opens (a pager and a
// page buffer) and frees at every execution, and a completion is half of
// every drain's writes. Same transaction, so the row cannot change between.
bool complete_in(Db& db, QueueCounts& counts, std::string_view id, std::string_view owner,
                 std::string_view result_json, TimePoint now) {
  std::int64_t rowid = 0;
  std::string queue;
  std::string group;
  {
    auto q = db.query(
        "SELECT rowid, queue, group_id FROM tasks "
        "WHERE id = ?1 AND state = 'active' AND lease_owner = ?2");
    q.bind_borrowed(1, id).bind_borrowed(2, owner);
    if (!q.step()) return false;
    rowid = q.i64(0);
    queue = q.text(1);
    group = q.text(2);
  }
  db.query(
        "UPDATE tasks SET state = 'succeeded', result = ?1, progress = 100, finished_at = ?2, "
        "updated_at = ?2, lease_owner = NULL, lease_expires_at = NULL WHERE rowid = ?3")
      .bind_borrowed(1, result_json)
      .bind(2, ms(now))
      .bind(3, rowid)
      .run();
  counts.move(queue, TaskState::active, TaskState::succeeded);
  member_final(db, counts, group, now);
  return true;
}

}  // namespace

bool SqliteStore::complete(std::string_view id, std::string_view owner, std::string result_json,
                           TimePoint now) {
  bool ok = false;
  impl_->write([&](Db& db) { ok = complete_in(db, impl_->counts, id, owner, result_json, now); });
  return ok;
}

void SqliteStore::complete_async(std::string_view id, std::string_view owner,
                                 std::string result_json, TimePoint now, CompleteDone done) {
  struct State {
    std::string id;
    std::string owner;
    std::string result;
    CompleteDone done;
    bool ok = false;
  };
  auto st = std::make_shared<State>(
      State{std::string(id), std::string(owner), std::move(result_json), std::move(done)});
  impl_->writer->submit(
      [st, now, counts = &impl_->counts](Db& db) {
        st->ok = complete_in(db, *counts, st->id, st->owner, st->result, now);
      },
      [st](std::exception_ptr error) {
        const bool ok = !error && st->ok;
        st->done(ok, std::move(error));
      },
      {.may_wait = true});  // a worker thread, not an I/O thread: it may wait for room
}

bool SqliteStore::fail(std::string_view id, std::string_view owner, std::string error,
                       std::optional<TimePoint> retry_at, TimePoint now) {
  bool ok = false;
  impl_->write([&](Db& db) {
    static const std::string sql = fmt::format(
        "UPDATE tasks SET last_error = ?1, updated_at = ?2, lease_owner = NULL, "
        "lease_expires_at = NULL, state = {0}, "
        "run_at = CASE WHEN ?3 IS NOT NULL AND NOT cancel_requested THEN ?3 ELSE run_at END, "
        "finished_at = CASE WHEN ?3 IS NULL OR cancel_requested THEN ?2 END, {1} "
        "WHERE id = ?4 AND state = 'active' AND lease_owner = ?5 RETURNING state, group_id, queue",
        kFailedState, log_attempt("?2", kFailedState, "?1"));
    auto q = db.query(sql);
    q.bind(1, std::string_view(error))
        .bind(2, ms(now))
        .bind(3, retry_at ? std::optional<std::int64_t>(ms(*retry_at)) : std::nullopt)
        .bind(4, id)
        .bind(5, owner);
    ok = transition(db, impl_->counts, std::move(q), TaskState::active, now);
  });
  return ok;
}

bool SqliteStore::release(std::string_view id, std::string_view owner, TimePoint run_at,
                          TimePoint now) {
  bool ok = false;
  impl_->write([&](Db& db) {
    // Cancelled meanwhile: it ends cancelled instead of running again.
    auto q = db.query(
        "UPDATE tasks SET attempt = attempt - 1, lease_owner = NULL, "
        "lease_expires_at = NULL, updated_at = ?1, "
        "run_at = CASE WHEN cancel_requested THEN run_at ELSE max(?1, ?2) END, "
        "state = CASE WHEN cancel_requested THEN 'cancelled' "
        "             WHEN ?2 > ?1 THEN 'scheduled' ELSE 'pending' END, "
        "finished_at = CASE WHEN cancel_requested THEN ?1 END "
        "WHERE id = ?3 AND state = 'active' AND lease_owner = ?4 "
        "RETURNING state, group_id, queue");
    q.bind(1, ms(now)).bind(2, ms(run_at)).bind(3, id).bind(4, owner);
    ok = transition(db, impl_->counts, std::move(q), TaskState::active, now);
  });
  return ok;
}

bool SqliteStore::finish_cancelled(std::string_view id, std::string_view owner, TimePoint now) {
  bool ok = false;
  impl_->write([&](Db& db) {
    static const std::string sql = fmt::format(
        "UPDATE tasks SET state = 'cancelled', finished_at = ?1, updated_at = ?1, "
        "lease_owner = NULL, lease_expires_at = NULL, {} "
        "WHERE id = ?2 AND state = 'active' AND lease_owner = ?3 RETURNING state, group_id, queue",
        log_attempt("?1", "'cancelled'", "''"));
    auto q = db.query(sql);
    q.bind(1, ms(now)).bind(2, id).bind(3, owner);
    ok = transition(db, impl_->counts, std::move(q), TaskState::active, now);
  });
  return ok;
}

bool SqliteStore::set_progress(std::string_view id, std::string_view owner, int percent,
                               std::string message, TimePoint now) {
  bool ok = false;
  impl_->write([&](Db& db) {
    ok = db.query(
               "UPDATE tasks SET progress = ?1, progress_message = ?2, updated_at = ?3 "
               "WHERE id = ?4 AND state = 'active' AND lease_owner = ?5")
             .bind(1, std::int64_t{std::clamp(percent, 0, 100)})
             .bind(2, std::string_view(message))
             .bind(3, ms(now))
             .bind(4, id)
             .bind(5, owner)
             .run() > 0;
  });
  return ok;
}

CancelResult SqliteStore::cancel(std::string_view id, TimePoint now) {
  CancelResult out = CancelResult::not_found;
  impl_->write([&](Db& db) {
    std::optional<TaskState> state;
    {
      auto q = db.query("SELECT state FROM tasks WHERE id = ?1");
      q.bind(1, id);
      if (q.step()) state = parse_state(q.text(0));
    }
    if (!state) {
      out = CancelResult::not_found;
    } else if (is_final(*state)) {
      out = CancelResult::final;
    } else if (*state == TaskState::active) {
      db.query("UPDATE tasks SET cancel_requested = 1, updated_at = ?1 WHERE id = ?2")
          .bind(1, ms(now))
          .bind(2, id)
          .run();
      out = CancelResult::requested;
    } else {
      auto q = db.query(
          "UPDATE tasks SET state = 'cancelled', finished_at = ?1, updated_at = ?1 "
          "WHERE id = ?2 RETURNING state, group_id, queue");
      q.bind(1, ms(now)).bind(2, id);
      transition(db, impl_->counts, std::move(q), *state, now);
      out = CancelResult::cancelled;
    }
  });
  return out;
}

bool SqliteStore::retry(std::string_view id, TimePoint now) {
  bool ok = false;
  impl_->write([&](Db& db) {
    ok = false;
    std::string key;
    std::string queue;
    TaskState from = TaskState::dead;
    {
      auto q = db.query(
          "SELECT unique_key, queue, state FROM tasks "
          "WHERE id = ?1 AND state IN ('dead', 'cancelled')");
      q.bind(1, id);
      if (!q.step()) return;
      key = q.text(0);
      queue = q.text(1);
      from = parse_state(q.text(2)).value_or(TaskState::dead);
    }
    if (!key.empty()) {
      auto q = db.query(
          fmt::format("SELECT 1 FROM tasks WHERE unique_key = ?1 AND unique_key IS NOT NULL AND {}",
                      kUnfinished));
      q.bind(1, std::string_view(key));
      if (q.step()) return;
    }
    // A member of a group still waiting for its members counts as unfinished again.
    db.query(
          "UPDATE groups SET remaining = remaining + 1 "
          "WHERE id = (SELECT group_id FROM tasks WHERE id = ?1) AND finished_at IS NULL")
        .bind(1, id)
        .run();
    ok = db.query(
               "UPDATE tasks SET state = 'pending', attempt = 0, run_at = ?1, updated_at = ?1, "
               "cancel_requested = 0, finished_at = NULL WHERE id = ?2")
             .bind(1, ms(now))
             .bind(2, id)
             .run() > 0;
    if (ok) impl_->counts.move(queue, from, TaskState::pending);
  });
  return ok;
}

bool SqliteStore::remove(std::string_view id) {
  bool ok = false;
  impl_->write([&](Db& db) {
    auto q = db.query(
        "DELETE FROM tasks WHERE id = ?1 AND "
        "(state = 'succeeded' OR state = 'dead' OR state = 'cancelled') RETURNING queue, state");
    q.bind(1, id);
    ok = q.step();
    if (ok) {
      const auto state = parse_state(q.text(1));
      if (state) impl_->counts.add(q.text(0), *state, -1);
      while (q.step()) {
      }
    }
  });
  return ok;
}

std::optional<TaskRecord> SqliteStore::get(std::string_view id) {
  return impl_->read([&](Db& db) -> std::optional<TaskRecord> {
    auto q = db.query(fmt::format("SELECT {}, attempt_log FROM tasks WHERE id = ?1", kCols));
    q.bind(1, id);
    if (!q.step()) return std::nullopt;
    auto r = read_record(q);
    r.history = detail::history_from_json(q.text(27));
    return r;
  });
}

std::optional<TaskRecord> SqliteStore::holder_of(std::string_view unique_key) {
  return impl_->read([&](Db& db) -> std::optional<TaskRecord> {
    // The state terms literally: so the partial index tasks_unique serves it.
    auto q = db.query(
        fmt::format("SELECT {} FROM tasks WHERE unique_key = ?1 AND {}", kCols, kUnfinished));
    q.bind(1, unique_key);
    if (!q.step()) return std::nullopt;
    return read_record(q);
  });
}

StoreHealth SqliteStore::health() const {
  const auto h = impl_->writer->health();
  return {h.ready, h.reason, h.full};
}

std::optional<GroupInfo> SqliteStore::group(std::string_view id) {
  return impl_->read([&](Db& db) -> std::optional<GroupInfo> {
    GroupInfo g;
    {
      auto q =
          db.query("SELECT size, remaining, completion_id, finished_at FROM groups WHERE id = ?1");
      q.bind(1, id);
      if (!q.step()) return std::nullopt;
      g.id = std::string(id);
      g.size = static_cast<std::size_t>(q.i64(0));
      g.remaining = static_cast<std::size_t>(q.i64(1));
      g.completion_id = q.opt_text(2).value_or("");
      if (!q.is_null(3)) g.finished_at = TimePoint(std::chrono::milliseconds(q.i64(3)));
    }
    // tasks_group: the members only.
    auto q = db.query("SELECT state, count(*) FROM tasks WHERE group_id = ?1 GROUP BY state");
    q.bind(1, id);
    while (q.step()) {
      if (auto state = parse_state(q.text(0)))
        g.members[*state] = static_cast<std::size_t>(q.i64(1));
    }
    return g;
  });
}

std::optional<std::string> SqliteStore::group_awaiting(std::string_view task_id) {
  return impl_->read([&](Db& db) -> std::optional<std::string> {
    // The literal terms: so the partial index groups_awaiting serves it.
    auto q = db.query(
        "SELECT id FROM groups WHERE completion_id = ?1 AND completion_id IS NOT NULL "
        "AND finished_at IS NULL");
    q.bind(1, task_id);
    if (!q.step()) return std::nullopt;
    return q.text(0);
  });
}

Page SqliteStore::list(const ListQuery& query) {
  // One statement text per combination of filters, each prepared once per
  // connection, so every filter can use its index.
  std::string where;
  auto add = [&](std::string_view cond) {
    where += where.empty() ? " WHERE " : " AND ";
    where += cond;
  };
  // What the index walked does not select is checked row by row (a
  // residual filter): a pending or succeeded state, a type.
  std::string residual;
  auto check = [&](std::string_view cond) {
    residual += residual.empty() ? "" : " AND ";
    residual += cond;
  };
  if (query.queue) add("queue = ?1");
  bool rare = false;
  bool pending_of_queue = false;
  if (query.state) {
    // The state goes into the text (it is one of our own names, never user
    // text): a partial index serves a query only when its terms are there
    // literally (schema version 3).
    const auto s = to_string(*query.state);
    rare = s == "scheduled" || s == "retrying" || s == "dead" || s == "cancelled";
    pending_of_queue = query.queue && *query.state == TaskState::pending;
    if (rare || *query.state == TaskState::active) {
      add(fmt::format("state = '{}'", s));
      if (rare) add(std::string(kRare));  // tasks_listed
    } else {
      check(fmt::format("state = '{}'", s));
    }
  }
  if (query.type) check("type = ?3");
  if (!query.cursor.empty()) add("id < ?4");
  // A queue or a rarer state walks its index in id order, newest first, so a
  // page costs its rows, not the store's size (schema 5); named, because the
  // planner prefers tasks_ready for a queue's pending tasks and then sorts
  // them all. Active tasks are few (at most every worker's): the lease
  // index, sorted. A type alone walks every id, newest first: cheap for a
  // type that is common among the newest tasks (docs/operations.md).
  const char* index = "";
  if (query.state && *query.state == TaskState::active) {
    index = " INDEXED BY tasks_lease";
  } else if (rare) {
    index = query.queue ? " INDEXED BY tasks_listed_queue" : " INDEXED BY tasks_listed";
  } else if (query.queue) {
    index = " INDEXED BY tasks_by_queue";
  }
  // A queue's pending tasks, when they are few, from the claim index, sorted:
  // walking the queue's tasks newest first would examine a whole scan
  // budget of finished ones to find them (bench/soak.sh: 5 ms a call, most
  // of a dashboard-like load's CPU, and reads long enough to keep the WAL
  // from restarting). Many pending are the newest tasks too: then the walk
  // finds a page at once, and the sort would be the cost. No index more to
  // write on every enqueue and claim (one measured 10% off the enqueue).
  if (pending_of_queue && !query.type) {
    const auto few = impl_->read([&](Db& db) {
      auto q = db.query(
          "SELECT coalesce(sum(n), 0) FROM queue_counts WHERE queue = ?1 AND state = 'pending'");
      q.bind(1, std::string_view(*query.queue));
      return q.step() && q.i64(0) <= kSortPendingAtMost;
    });
    if (few) {
      index = " INDEXED BY tasks_ready";
      where = fmt::format(" WHERE queue = ?1 AND state = 'pending'{}",
                          query.cursor.empty() ? "" : " AND id < ?4");
      residual.clear();
    }
  }
  if (!residual.empty()) return scan(index, where, residual, query);
  const std::string text =
      fmt::format("SELECT {} FROM tasks{}{} ORDER BY id DESC LIMIT ?5", kCols, index, where);
  return impl_->read([&](Db& db) {
    Page page;
    auto q = db.query(text);
    if (query.queue) q.bind(1, std::string_view(*query.queue));
    if (query.type) q.bind(3, std::string_view(*query.type));
    if (!query.cursor.empty()) q.bind(4, std::string_view(query.cursor));
    q.bind(5, static_cast<std::int64_t>(query.limit) + 1);
    while (q.step()) {
      if (page.tasks.size() == query.limit) {
        page.next_cursor = page.tasks.empty() ? std::string() : page.tasks.back().id;
        break;
      }
      page.tasks.push_back(read_record(q));
    }
    return page;
  });
}

// A list whose filter its index does not fully select: walks the index
// newest first, checking the residual filter on at most kListScanBudget rows,
// then reads the matching rows. When the budget runs out first, the page is
// short (even empty) and its cursor is the last row examined, so the next
// page goes on from there: pages still neither skip nor repeat, and each
// costs a bounded time at any store size (a rare type among 1M tasks, the
// succeeded tasks behind a backlog of pending ones).
Page SqliteStore::scan(std::string_view index, std::string_view where, std::string_view residual,
                       const ListQuery& query) {
  const std::string text =
      fmt::format("SELECT id, ({}) FROM tasks{}{} ORDER BY id DESC", residual, index, where);
  return impl_->read([&](Db& db) {
    Page page;
    std::vector<std::string> hits;
    std::string last;
    std::size_t examined = 0;
    {
      auto q = db.query(text);
      if (query.queue) q.bind(1, std::string_view(*query.queue));
      if (query.type) q.bind(3, std::string_view(*query.type));
      if (!query.cursor.empty()) q.bind(4, std::string_view(query.cursor));
      while (q.step()) {
        last = q.text(0);
        if (q.i64(1) != 0) {
          if (hits.size() == query.limit) {
            page.next_cursor = hits.back();
            break;
          }
          hits.push_back(last);
        }
        if (++examined == kListScanBudget) {
          page.next_cursor = last;
          break;
        }
      }
    }  // the walk's statement is reset here, before the rows are read
    // Each its own snapshot, so the filter is checked again: a task that
    // changed state since the walk is left out, not shown in the wrong list.
    const std::string by_id =
        fmt::format("SELECT {} FROM tasks WHERE id = ?4 AND ({})", kCols, residual);
    for (const auto& id : hits) {
      auto row = db.query(by_id);
      row.bind(4, std::string_view(id));
      if (query.type) row.bind(3, std::string_view(*query.type));
      if (row.step()) page.tasks.push_back(read_record(row));
    }
    return page;
  });
}

std::vector<QueueInfo> SqliteStore::queues() {
  return impl_->read([&](Db& db) {
    std::map<std::string, QueueInfo, std::less<>> by_name;
    {
      auto q = db.query("SELECT name, paused FROM queues");
      while (q.step()) by_name[q.text(0)].paused = q.i64(1) != 0;
    }
    auto q = db.query("SELECT queue, state, n FROM queue_counts WHERE n > 0");
    while (q.step()) {
      const auto state = parse_state(q.text(1));
      if (state) by_name[q.text(0)].count(*state) = static_cast<std::size_t>(q.i64(2));
    }
    return detail::queue_list(std::move(by_name));
  });
}

std::size_t SqliteStore::reclaim_expired(TimePoint now) {
  std::size_t n = 0;
  impl_->write([&](Db& db) {
    n = 0;
    std::vector<std::string> finished_groups;
    {
      static const std::string sql = fmt::format(
          "UPDATE tasks SET lease_owner = NULL, lease_expires_at = NULL, updated_at = ?1, "
          "last_error = {0}, "
          "state = CASE WHEN cancel_requested THEN 'cancelled' "
          "             WHEN attempt >= max_attempts THEN 'dead' ELSE 'pending' END, "
          "finished_at = CASE WHEN cancel_requested OR attempt >= max_attempts THEN ?1 END, {1} "
          "WHERE state = 'active' AND lease_expires_at < ?1 RETURNING state, group_id, queue",
          kLeaseExpired, log_attempt("?1", "'lost'", kLeaseExpired));
      auto q = db.query(sql);
      q.bind(1, ms(now));
      while (q.step()) {
        ++n;
        const auto state = parse_state(q.text(0));
        if (state) impl_->counts.move(q.text(2), TaskState::active, *state);
        if (state && is_final(*state) && !q.is_null(1)) finished_groups.push_back(q.text(1));
      }
    }
    for (const auto& g : finished_groups) member_final(db, impl_->counts, g, now);
  });
  return n;
}

std::size_t SqliteStore::purge_final(TimePoint cutoff, std::size_t max) {
  std::size_t n = 0;
  impl_->write([&](Db& db) {
    n = 0;
    // Read, then delete each row by rowid: one DELETE ... WHERE id IN
    // (SELECT ...) RETURNING built two temporary b-trees per call and looked
    // each row up again by id.
    std::vector<std::int64_t> rowids;
    {
      auto q = db.query(
          "SELECT rowid, queue, state FROM tasks WHERE finished_at IS NOT NULL "
          "AND finished_at < ?1 ORDER BY finished_at LIMIT ?2");
      q.bind(1, ms(cutoff)).bind(2, static_cast<std::int64_t>(max));
      while (q.step()) {
        rowids.push_back(q.i64(0));
        const auto state = parse_state(q.text(2));
        if (state) impl_->counts.add(q.text(1), *state, -1);
      }
    }
    for (const std::int64_t rowid : rowids) {
      db.query("DELETE FROM tasks WHERE rowid = ?1").bind(1, rowid).run();
    }
    n = rowids.size();
    db.query(
          "DELETE FROM groups WHERE id IN (SELECT id FROM groups WHERE finished_at IS NOT NULL "
          "AND finished_at < ?1 ORDER BY finished_at LIMIT ?2)")
        .bind(1, ms(cutoff))
        .bind(2, static_cast<std::int64_t>(max))
        .run();
  });
  return n;
}

void SqliteStore::set_paused(std::string_view queue, bool paused) {
  impl_->write([&](Db& db) {
    if (!paused) {
      // No row, as for a queue never paused: queues() lists a queue that has
      // tasks or is paused, as every store does.
      db.query("DELETE FROM queues WHERE name = ?1").bind(1, queue).run();
      return;
    }
    db.query(
          "INSERT INTO queues (name, paused) VALUES (?1, 1) "
          "ON CONFLICT (name) DO UPDATE SET paused = excluded.paused")
        .bind(1, queue)
        .run();
  });
}

bool SqliteStore::fire_schedule(std::string_view schedule, TimePoint tick, NewTask task,
                                TimePoint now) {
  bool fired = false;
  impl_->write([&](Db& db) {
    fired = false;
    {
      auto q = db.query("SELECT last_tick FROM schedules WHERE name = ?1");
      q.bind(1, schedule);
      if (q.step() && q.i64(0) >= ms(tick)) return;
    }
    db.query(
          "INSERT INTO schedules (name, last_tick) VALUES (?1, ?2) "
          "ON CONFLICT (name) DO UPDATE SET last_tick = excluded.last_tick")
        .bind(1, schedule)
        .bind(2, ms(tick))
        .run();
    task.max_waiting = 0;  // a tick is never refused: it would be lost
    insert(db, impl_->counts, std::move(task), now);
    fired = true;
  });
  return fired;
}

std::vector<std::pair<std::string, TimePoint>> SqliteStore::schedule_ticks() {
  return impl_->read([&](Db& db) {
    std::vector<std::pair<std::string, TimePoint>> out;
    auto q = db.query("SELECT name, last_tick FROM schedules ORDER BY name");
    while (q.step()) out.emplace_back(q.text(0), TimePoint{std::chrono::milliseconds(q.i64(1))});
    return out;
  });
}

void SqliteStore::heartbeat_node(const NodeInfo& node) {
  const std::string info = detail::node_to_json(node);
  impl_->write([&](Db& db) {
    db.query(
          "INSERT INTO nodes (id, info, last_seen) VALUES (?1, ?2, ?3) "
          "ON CONFLICT (id) DO UPDATE SET info = excluded.info, last_seen = excluded.last_seen")
        .bind(1, std::string_view(node.id))
        .bind(2, std::string_view(info))
        .bind(3, ms(node.last_seen))
        .run();
  });
}

void SqliteStore::remove_node(std::string_view id) {
  impl_->write([&](Db& db) { db.query("DELETE FROM nodes WHERE id = ?1").bind(1, id).run(); });
}

std::vector<NodeInfo> SqliteStore::nodes(TimePoint now, std::chrono::milliseconds silence) {
  std::vector<NodeInfo> out;
  impl_->write([&](Db& db) {
    out.clear();
    db.query("DELETE FROM nodes WHERE last_seen < ?1").bind(1, ms(now - silence)).run();
    auto q = db.query("SELECT info FROM nodes ORDER BY id");
    while (q.step()) out.push_back(detail::node_from_json(q.text(0)));
  });
  return out;
}

}  // namespace errand::store
