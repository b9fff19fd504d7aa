#include "store/sqlite_schema.hpp"

#include <array>
#include <string>
#include <vector>

#include <fmt/format.h>

namespace errand::store::sqlite {

namespace {

// Indexes are partial where a state selects the rows, so a task touches only
// the indexes that matter for its current state:
//   tasks_ready    claim: the next pending task of a queue by priority, run_at
//   tasks_due      promotion of scheduled/retrying tasks whose time has come
//   tasks_lease    reclaim of expired leases
//   tasks_finished retention purge
//   tasks_unique   idempotent enqueue: one unfinished task per unique_key
//   tasks_state, tasks_queue   listing newest first, and counts per queue/state
//                              (both replaced in version 3, below)
//   tasks_group    a group's members, when the last one finishes
//
// Version 2: queue_counts holds the number of tasks per (queue, state), kept
// in the same transaction as every change (by triggers until version 11, by
// the writer since), so queue statistics and the enqueue backpressure check
// cost O(queues), not a scan of the tasks.
//
// Version 3: the full indexes tasks_state (state, id) and tasks_queue (queue,
// state, id) are gone. Every task moves pending → active → succeeded, so each
// cost five index writes per task: together they halved the end-to-end task
// rate (22k vs 42k no-op tasks/s, measured). Listing finds the states
// operators look for (scheduled, retrying, dead, cancelled) through one
// partial index (a queue filter walks it: those sets are small), pending and
// active through the claim and lease indexes, succeeded by walking ids (most
// rows are). Even a partial index costs the hot path ~15% (SQLite maintains it
// on every state change), so there is one, not one per queue.
constexpr std::array<const char*, 11> kMigrations = {
    R"sql(
CREATE TABLE tasks (
  id               TEXT    NOT NULL PRIMARY KEY,
  type             TEXT    NOT NULL,
  queue            TEXT    NOT NULL,
  payload          TEXT    NOT NULL,
  priority         INTEGER NOT NULL,
  state            TEXT    NOT NULL,
  attempt          INTEGER NOT NULL DEFAULT 0,
  max_attempts     INTEGER NOT NULL,
  run_at           INTEGER NOT NULL,
  timeout_ms       INTEGER NOT NULL,
  unique_key       TEXT,
  traceparent      TEXT    NOT NULL,
  request_id       TEXT    NOT NULL,
  group_id         TEXT,
  progress         INTEGER NOT NULL DEFAULT 0,
  progress_message TEXT    NOT NULL DEFAULT '',
  result           TEXT,
  last_error       TEXT,
  created_at       INTEGER NOT NULL,
  updated_at       INTEGER NOT NULL,
  started_at       INTEGER,
  finished_at      INTEGER,
  lease_owner      TEXT,
  lease_expires_at INTEGER,
  cancel_requested INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX tasks_ready ON tasks(queue, priority DESC, run_at, id) WHERE state = 'pending';
CREATE INDEX tasks_due ON tasks(run_at) WHERE state IN ('scheduled', 'retrying');
CREATE INDEX tasks_lease ON tasks(lease_expires_at) WHERE state = 'active';
CREATE INDEX tasks_finished ON tasks(finished_at) WHERE finished_at IS NOT NULL;
CREATE UNIQUE INDEX tasks_unique ON tasks(unique_key)
  WHERE unique_key IS NOT NULL AND state IN ('scheduled', 'pending', 'active', 'retrying');
CREATE INDEX tasks_state ON tasks(state, id);
CREATE INDEX tasks_queue ON tasks(queue, state, id);
CREATE INDEX tasks_group ON tasks(group_id) WHERE group_id IS NOT NULL;

CREATE TABLE queues (
  name   TEXT    NOT NULL PRIMARY KEY,
  paused INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

CREATE TABLE groups (
  id         TEXT    NOT NULL PRIMARY KEY,
  remaining  INTEGER NOT NULL,
  completion TEXT
) WITHOUT ROWID;

CREATE TABLE schedules (
  name      TEXT    NOT NULL PRIMARY KEY,
  last_tick INTEGER NOT NULL
) WITHOUT ROWID;
)sql",
    R"sql(
CREATE TABLE queue_counts (
  queue TEXT    NOT NULL,
  state TEXT    NOT NULL,
  n     INTEGER NOT NULL,
  PRIMARY KEY (queue, state)
) WITHOUT ROWID;
INSERT INTO queue_counts (queue, state, n)
  SELECT queue, state, count(*) FROM tasks GROUP BY queue, state;
CREATE TRIGGER queue_counts_insert AFTER INSERT ON tasks BEGIN
  INSERT INTO queue_counts (queue, state, n) VALUES (NEW.queue, NEW.state, 1)
    ON CONFLICT (queue, state) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER queue_counts_update AFTER UPDATE OF state, queue ON tasks
  WHEN OLD.state IS NOT NEW.state OR OLD.queue IS NOT NEW.queue BEGIN
  UPDATE queue_counts SET n = n - 1 WHERE queue = OLD.queue AND state = OLD.state;
  INSERT INTO queue_counts (queue, state, n) VALUES (NEW.queue, NEW.state, 1)
    ON CONFLICT (queue, state) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER queue_counts_delete AFTER DELETE ON tasks BEGIN
  UPDATE queue_counts SET n = n - 1 WHERE queue = OLD.queue AND state = OLD.state;
END;
)sql",
    R"sql(
DROP INDEX tasks_state;
DROP INDEX tasks_queue;
CREATE INDEX tasks_listed ON tasks(state, id)
  WHERE state IN ('scheduled', 'retrying', 'dead', 'cancelled');
)sql",
    // 4: the node that runs (or last ran) a task, kept after its lease ends;
    // the node registry.
    R"sql(
ALTER TABLE tasks ADD COLUMN node TEXT NOT NULL DEFAULT '';
CREATE TABLE nodes (id TEXT PRIMARY KEY, info TEXT NOT NULL, last_seen INTEGER NOT NULL);
)sql",
    // 5: what the task list's filters need to stay cheap at any size: a
    // queue's tasks newest first (written once per task: the queue never
    // changes, so claims and completions pay nothing), and the rarer states
    // per queue (written only on entering or leaving one).
    R"sql(
CREATE INDEX tasks_by_queue ON tasks(queue, id);
CREATE INDEX tasks_listed_queue ON tasks(queue, state, id)
  WHERE state IN ('scheduled', 'retrying', 'dead', 'cancelled');
)sql",
    // 6: each task's attempts that did not succeed (a JSON array, the latest
    // 20), written by the statement that records the failure.
    R"sql(
ALTER TABLE tasks ADD COLUMN attempt_log TEXT NOT NULL DEFAULT '[]';
)sql",
    // 7: the enqueuing request's W3C tracestate, carried with its traceparent.
    R"sql(
ALTER TABLE tasks ADD COLUMN tracestate TEXT NOT NULL DEFAULT '';
)sql",
    // 8: a group is kept once its members are final (finished_at), until the
    // retention purge, for GET /v1/groups/{id}; its completion task's id is
    // indexed while the group waits, so that id can answer "group_pending".
    // A resumed queue no longer keeps a row (queues() listed it forever).
    R"sql(
ALTER TABLE groups ADD COLUMN size INTEGER NOT NULL DEFAULT 0;
ALTER TABLE groups ADD COLUMN completion_id TEXT;
ALTER TABLE groups ADD COLUMN finished_at INTEGER;
UPDATE groups SET completion_id = json_extract(completion, '$.id') WHERE completion IS NOT NULL;
UPDATE groups SET size = (SELECT count(*) FROM tasks WHERE tasks.group_id = groups.id);
CREATE INDEX groups_awaiting ON groups(completion_id)
  WHERE completion_id IS NOT NULL AND finished_at IS NULL;
CREATE INDEX groups_finished ON groups(finished_at) WHERE finished_at IS NOT NULL;
DELETE FROM queues WHERE paused = 0;
)sql",
    // 9: a claim makes due only its own queue's scheduled and retrying tasks
    // (as the other stores do): their index leads with the queue.
    R"sql(
DROP INDEX tasks_due;
CREATE INDEX tasks_due ON tasks(queue, run_at) WHERE state IN ('scheduled', 'retrying');
)sql",
    // 10: the partial indexes' state lists as OR chains. SQLite evaluates a
    // constant IN list of more than two values by building a temporary table,
    // and it evaluates every partial index's WHERE on each insert and each
    // state change: three such tables per insert (a third of the writer's
    // instructions under callgrind). Two values (tasks_due) are compared
    // directly already. The queries that use these indexes hold the same terms.
    R"sql(
DROP INDEX tasks_unique;
CREATE UNIQUE INDEX tasks_unique ON tasks(unique_key)
  WHERE unique_key IS NOT NULL
    AND (state = 'scheduled' OR state = 'pending' OR state = 'active' OR state = 'retrying');
DROP INDEX tasks_listed;
CREATE INDEX tasks_listed ON tasks(state, id)
  WHERE (state = 'scheduled' OR state = 'retrying' OR state = 'dead' OR state = 'cancelled');
DROP INDEX tasks_listed_queue;
CREATE INDEX tasks_listed_queue ON tasks(queue, state, id)
  WHERE (state = 'scheduled' OR state = 'retrying' OR state = 'dead' OR state = 'cancelled');
)sql",
    // 11: queue_counts is kept by the writer (QueueCounts, sqlite_queue_counts.hpp),
    // which adds up a transaction's changes and writes one row per queue and
    // state before COMMIT: the triggers' upsert per inserted task and two per
    // state change were a quarter of an enqueue's writing. The counts they kept
    // so far stay.
    R"sql(
DROP TRIGGER IF EXISTS queue_counts_insert;
DROP TRIGGER IF EXISTS queue_counts_update;
DROP TRIGGER IF EXISTS queue_counts_delete;
)sql",
};

}  // namespace

void check_owner(Db& db, const std::string& path) {
  std::int64_t id = 0;
  {
    auto q = db.query("PRAGMA application_id");
    if (q.step()) id = q.i64(0);
  }
  if (id == kApplicationId) return;
  if (id != 0) {
    throw StoreError(StoreError::Code::invalid,
                     fmt::format("sqlite: {} belongs to another application (its application_id "
                                 "is {:#010x}, errand's is {:#010x}); errand leaves it untouched: "
                                 "point --db at a new file",
                                 path, static_cast<std::uint32_t>(id),
                                 static_cast<std::uint32_t>(kApplicationId)));
  }
  // application_id 0: a new file, an errand database made before the id was
  // set (recognised by its schema_version and tasks tables), or someone else's.
  std::vector<std::string> tables;
  bool has_version = false;
  bool has_tasks = false;
  {
    auto q = db.query(
        "SELECT name FROM sqlite_schema WHERE type IN ('table', 'view') AND name NOT LIKE "
        "'sqlite\\_%' ESCAPE '\\' ORDER BY name");
    while (q.step()) {
      auto name = std::string(q.text(0));
      has_version = has_version || name == "schema_version";
      has_tasks = has_tasks || name == "tasks";
      tables.push_back(std::move(name));
    }
  }
  if (tables.empty()) return;
  if (has_version && has_tasks) {
    // Common table names: errand's only with errand's own columns.
    auto q = db.query(
        "SELECT count(*) FROM pragma_table_info('tasks') WHERE name IN ('lease_owner', "
        "'lease_expires_at', 'cancel_requested', 'traceparent', 'progress_message')");
    if (q.step() && q.i64(0) == 5) return;
  }
  std::string listed;
  for (std::size_t i = 0; i < tables.size() && i < 5; ++i) {
    listed += (i > 0 ? ", " : "") + tables[i];
  }
  if (tables.size() > 5) listed += fmt::format(" and {} more", tables.size() - 5);
  throw StoreError(StoreError::Code::invalid,
                   fmt::format("sqlite: {} is not an errand database (it holds {}); errand leaves "
                               "it untouched: point --db at a new file",
                               path, listed));
}

void migrate(Db& db, int latest) {
  if (latest > static_cast<int>(kMigrations.size())) {
    throw StoreError(StoreError::Code::invalid, "sqlite: schema version has no migration");
  }
  db.exec("BEGIN IMMEDIATE");
  try {
    db.exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)");
    int version = 0;
    {
      auto q = db.query("SELECT version FROM schema_version");
      if (q.step()) version = static_cast<int>(q.i64(0));
    }
    if (version > latest) {
      throw StoreError(StoreError::Code::invalid,
                       fmt::format("sqlite: the database has schema version {}, newer than this "
                                   "errand's {}; upgrade errand",
                                   version, latest));
    }
    for (int v = version; v < latest; ++v) db.exec(kMigrations.at(static_cast<std::size_t>(v)));
    // In the same transaction: a file is marked errand's exactly when it holds
    // errand's schema (files made before the id get it here).
    db.exec(fmt::format("PRAGMA application_id = {}", kApplicationId).c_str());
    if (version == 0) {
      db.query("INSERT INTO schema_version (version) VALUES (?1)").bind(1, latest).run();
    } else if (version < latest) {
      db.query("UPDATE schema_version SET version = ?1").bind(1, latest).run();
    }
    db.exec("COMMIT");
  } catch (...) {
    try {
      db.exec("ROLLBACK");
    } catch (...) {  // NOLINT(bugprone-empty-catch): the first error is the one to report
    }
    throw;
  }
}

}  // namespace errand::store::sqlite
