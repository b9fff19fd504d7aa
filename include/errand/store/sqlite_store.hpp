#pragma once
// SqliteStore: the embedded, durable default — one file (plus its -wal and -shm).
//
// * WAL mode; writes go through one writer thread with group commit (concurrent
//   enqueues and state changes share one transaction and one fsync), and each
//   caller returns only after the transaction holding its write committed.
// * Reads (get, list, queues) use a small pool of read-only connections and do
//   not wait for the writer.
// * Durability: `synchronous = full` survives power loss; `normal` (default)
//   survives a process crash, and may lose the last transactions on power loss
//   (SQLite's WAL + NORMAL guarantee).
// * The schema carries a version; opening an older file migrates it forward,
//   opening a newer one fails with StoreError(invalid).
// * Other processes may open the same file (SQLite's locking); a lock held past
//   `busy_timeout` gives StoreError(busy) to the caller.
//
// Thread-safe. Construction throws StoreError when the file cannot be opened,
// is not a database (corrupt) or is from a newer errand.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "errand/store/store.hpp"

namespace errand::store {

struct SqliteOptions {
  std::string path = "data/errand.db";  // parent directories are created
  enum class Synchronous : std::uint8_t { normal, full } synchronous = Synchronous::normal;
  std::size_t max_batch = 1024;                  // operations per group-commit transaction
  std::size_t max_queued_writes = 65536;         // writer queue bound; callers wait for room
  std::chrono::milliseconds busy_timeout{5000};  // lock waits and writer-queue waits
  std::size_t readers = 4;                       // read-only connections
  std::uint64_t max_db_bytes = 0;                // 0: unlimited; beyond it writes fail with `full`
  // The write-ahead log's bound: past it the writer waits (up to
  // busy_timeout) for readers to leave the log, restarts it and truncates
  // the file to this size. Checkpoints below it never wait.
  std::uint64_t wal_limit_bytes = 64ULL << 20U;
  // Called on the writer thread after each commit (metrics): how many
  // operations the transaction held and how long it took.
  std::function<void(std::size_t ops, std::chrono::nanoseconds took)> on_commit{};
};

// Process-wide SQLite settings for a program whose SQLite is errand's: call
// it first thing in main(), before any thread uses SQLite (sqlite3_config is
// not thread-safe, and works only before SQLite initialises; later it does
// nothing). Debian's SQLite has no lookaside, so every statement allocates a
// score of times: this turns off SQLite's memory statistics, which errand
// never reads (each allocation took a global mutex for them), and gives
// SQLite memory methods that keep freed blocks of up to 1 KiB per thread for
// reuse (bounded; docs/architecture.md). The `errand` binary calls it; an
// application that embeds errand may. Returns whether it took.
bool tune_sqlite_for_errand() noexcept;

class SqliteStore final : public Store {
 public:
  explicit SqliteStore(SqliteOptions options);
  ~SqliteStore() override;

  static constexpr int kSchemaVersion = 11;

  // Writes waiting for the next group commit (a gauge for metrics and tests).
  [[nodiscard]] std::size_t queued_writes() const;
  // Not ready while the last transaction failed because the disk (or
  // max_db_bytes) is full or the file cannot be written; the next write that
  // commits (the node heartbeat makes one every few seconds) makes it ready.
  [[nodiscard]] StoreHealth health() const override;

  using Store::enqueue;
  std::vector<Enqueued> enqueue(std::vector<NewTask> tasks, TimePoint now) override;
  // Joins the next group commit; `done` runs on the writer thread.
  void enqueue_async(std::vector<NewTask> tasks, TimePoint now, EnqueueDone done) override;
  // Joins the next group commit; `done` runs on the writer thread.
  void complete_async(std::string_view id, std::string_view owner, std::string result_json,
                      TimePoint now, CompleteDone done) override;
  std::vector<Enqueued> enqueue_group(GroupSpec group, std::vector<NewTask> members,
                                      TimePoint now) override;
  std::vector<TaskRecord> claim(std::string_view queue, std::size_t max, const Lease& lease,
                                TimePoint now) override;
  HeartbeatResult extend_leases(const std::vector<std::string>& ids, const Lease& lease,
                                TimePoint now) override;
  bool complete(std::string_view id, std::string_view owner, std::string result_json,
                TimePoint now) override;
  bool fail(std::string_view id, std::string_view owner, std::string error,
            std::optional<TimePoint> retry_at, TimePoint now) override;
  bool release(std::string_view id, std::string_view owner, TimePoint run_at,
               TimePoint now) override;
  bool finish_cancelled(std::string_view id, std::string_view owner, TimePoint now) override;
  bool set_progress(std::string_view id, std::string_view owner, int percent, std::string message,
                    TimePoint now) override;
  CancelResult cancel(std::string_view id, TimePoint now) override;
  bool retry(std::string_view id, TimePoint now) override;
  bool remove(std::string_view id) override;
  std::optional<TaskRecord> get(std::string_view id) override;
  std::optional<TaskRecord> holder_of(std::string_view unique_key) override;
  std::optional<GroupInfo> group(std::string_view id) override;
  std::optional<std::string> group_awaiting(std::string_view task_id) override;
  Page list(const ListQuery& query) override;
  std::vector<QueueInfo> queues() override;
  std::size_t reclaim_expired(TimePoint now) override;
  std::size_t purge_final(TimePoint cutoff, std::size_t max) override;
  void set_paused(std::string_view queue, bool paused) override;
  bool fire_schedule(std::string_view schedule, TimePoint tick, NewTask task,
                     TimePoint now) override;
  std::vector<std::pair<std::string, TimePoint>> schedule_ticks() override;
  void heartbeat_node(const NodeInfo& node) override;
  void remove_node(std::string_view id) override;
  std::vector<NodeInfo> nodes(TimePoint now, std::chrono::milliseconds silence) override;

 private:
  Page scan(std::string_view index, std::string_view where, std::string_view residual,
            const ListQuery& query);
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace errand::store
