#pragma once
// Store: where tasks live. One interface, several backends (memory, SQLite; Redis
// later), all held to the same contract suite (tests/store/store_contract_test.cpp).
//
// Error model (docs/architecture.md): answers that are a normal part of the
// protocol come back as values — a task that is not there (nullopt), a lease
// that was lost (false), a cancel of a final task (CancelResult). A store that
// cannot do its job — disk full, file locked by another process, corrupt file,
// closed — throws StoreError. A call that throws changed nothing.
//
// Every method is thread-safe. Writes return only once they are durable to the
// backend's promise (SQLite: committed). The store never reads a clock: callers
// pass `now`, so every transition is testable with a fake clock.
//
// Lease protocol: claim() makes a task active under a lease owned by a worker
// process; that owner heartbeats with extend_leases(); complete(), fail(),
// release(), finish_cancelled() and set_progress() succeed only for the current
// owner of an active task. reclaim_expired() hands tasks of dead owners back.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "errand/store/task_record.hpp"

namespace errand::store {

class StoreError : public std::runtime_error {
 public:
  enum class Code : std::uint8_t {
    unavailable,  // closed, or an I/O error
    busy,         // locked by another process past the busy timeout, or the writer is saturated
    full,         // disk full or the configured size limit reached
    corrupt,      // not a database, or a damaged one
    invalid,      // the caller broke the contract (duplicate id ...)
    queue_full,   // NewTask::max_waiting reached: backpressure, try again later
  };
  StoreError(Code code, const std::string& message) : std::runtime_error(message), code_(code) {}
  [[nodiscard]] Code code() const noexcept { return code_; }

 private:
  Code code_;
};

[[nodiscard]] std::string_view to_string(StoreError::Code code);

struct Enqueued {
  std::string id;       // the stored task's id: an earlier one's when deduplicated
  TaskState state;      // its state now
  bool created = true;  // false: an unfinished task with the same unique_key exists

  friend bool operator==(const Enqueued&, const Enqueued&) = default;
};

// `owner` is the lease's fencing token: unique per claim (the runtime makes
// it NODE~LIFE.SEQ), and every later write of the attempt must present it, so
// an attempt whose lease expired and was claimed again — by another node, or
// by the same node, or by a restarted node with the same id — can no longer
// record anything. `node` names the process, for people (TaskRecord::node).
struct Lease {
  std::string owner;
  TimePoint expires_at;
  std::string node{};  // empty: the owner
};

struct HeartbeatResult {
  std::vector<std::string> cancel_requested;  // ids whose handlers should stop
  std::vector<std::string> lost;              // ids no longer leased to this owner
};

enum class CancelResult : std::uint8_t {
  cancelled,  // was scheduled/pending/retrying: now cancelled
  requested,  // was active: its owner will stop it (seen on its next heartbeat)
  final,      // already succeeded/dead/cancelled: nothing changed
  not_found,
};

struct ListQuery {
  std::optional<std::string> queue{};
  std::optional<TaskState> state{};
  std::optional<std::string> type{};
  std::string cursor{};  // from the previous page's next_cursor; empty: first page
  std::size_t limit = 50;
};

// A list examines at most this many tasks per page where no index selects
// its filter (SQLite: a type, a pending or succeeded state; Redis: a type or
// any state; the memory store: any filter): a page may then hold fewer than
// `limit` tasks, even none, with a next_cursor to go on from the last task
// examined. Pages neither skip nor repeat tasks either way.
inline constexpr std::size_t kListScanBudget = 10'000;

// Newest first (ids sort by creation time).
struct Page {
  std::vector<TaskRecord> tasks;
  std::string next_cursor;  // empty: no more
};

struct QueueInfo {
  std::string queue;
  bool paused = false;
  std::size_t scheduled = 0, pending = 0, active = 0, succeeded = 0, retrying = 0, dead = 0,
              cancelled = 0;

  // The counter of `state`.
  std::size_t& count(TaskState state);
};

// A group's completion task is enqueued, in the same transaction as the last
// member becoming final, with payload
//   {"group": id, "payload": <completion payload>,
//    "members": [{"id","type","state","result","error","traceparent"}, ...]}
// (a member's traceparent: its producer span, which the completion's
// consumer span links to when tracing is on).
// A node: one errand process sharing the store, as it describes itself.
struct NodeQueue {
  std::string name;
  unsigned workers = 0;
  unsigned busy = 0;  // handlers running at the last heartbeat

  friend bool operator==(const NodeQueue&, const NodeQueue&) = default;
};
// A periodic schedule a node registered (Runtime::every / Runtime::cron).
struct NodeSchedule {
  std::string name;
  std::string kind;  // "every" or "cron"
  std::string spec;  // every: the period in ms; cron: the expression
  std::string type;  // the task it enqueues
  std::string queue;

  friend bool operator==(const NodeSchedule&, const NodeSchedule&) = default;
};
struct NodeInfo {
  std::string id;            // --node-id
  std::string role = "all";  // all | api | worker
  std::string version{};     // errand's
  TimePoint started_at{};
  TimePoint last_seen{};            // the heartbeat's `now`
  std::vector<NodeQueue> queues{};  // empty: runs no workers
  std::vector<NodeSchedule> schedules{};
  std::string stats{};  // its recent task statistics (observe::TaskStats::encode), opaque here

  friend bool operator==(const NodeInfo&, const NodeInfo&) = default;
};

// Whether the store can take writes now, for /readyz.
struct StoreHealth {
  bool ready = true;
  std::string reason{};  // why not, for operators
  bool full = false;     // not ready because the disk or the size limit is full
};

struct GroupSpec {
  std::string id;
  std::optional<NewTask> completion{};
};

// A group (enqueue_group) as it stands. Kept after its members are all final
// until the retention purge, like a final task.
struct GroupInfo {
  std::string id;
  std::size_t size = 0;       // members enqueued
  std::size_t remaining = 0;  // members not final yet (a retried member counts again)
  std::string completion_id;  // empty: the group has no completion task
  // When the last member became final (and the completion task was enqueued).
  std::optional<TimePoint> finished_at{};
  // Stored members by state; a deleted or purged member is not counted.
  std::map<TaskState, std::size_t> members{};

  friend bool operator==(const GroupInfo&, const GroupInfo&) = default;
};

class Store {
 public:
  virtual ~Store() = default;
  Store() = default;
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Cheap (no I/O): what the store last saw of its backend. The default:
  // always ready (a store in this process).
  [[nodiscard]] virtual StoreHealth health() const { return {}; }

  // Atomic: all stored or none. Order of the answer = order of `tasks`.
  virtual std::vector<Enqueued> enqueue(std::vector<NewTask> tasks, TimePoint now) = 0;
  Enqueued enqueue(NewTask task, TimePoint now);
  // The same without blocking the caller, for I/O threads. `done` is called
  // exactly once, with the answer or the error (the same errors as enqueue()):
  // on the store's writer thread, or before enqueue_async returns (a store
  // without a writer thread, or a refusal such as a full write queue). It
  // must be quick and must not throw. The default runs enqueue() inline.
  using EnqueueDone = std::function<void(std::vector<Enqueued>, std::exception_ptr)>;
  virtual void enqueue_async(std::vector<NewTask> tasks, TimePoint now, EnqueueDone done);
  // Atomic: the members (each gets group_id = group.id) and the group itself.
  virtual std::vector<Enqueued> enqueue_group(GroupSpec group, std::vector<NewTask> members,
                                              TimePoint now) = 0;

  // Up to `max` ready tasks of `queue` (highest priority, then earliest run_at),
  // now active under `lease` with attempt + 1. Scheduled and retrying tasks whose
  // run_at has come are made pending first. A paused queue yields nothing.
  virtual std::vector<TaskRecord> claim(std::string_view queue, std::size_t max, const Lease& lease,
                                        TimePoint now) = 0;
  virtual HeartbeatResult extend_leases(const std::vector<std::string>& ids, const Lease& lease,
                                        TimePoint now) = 0;

  // Transitions of an active task by its lease owner; false if it is not active
  // under that owner any more (reclaimed, or never was).
  virtual bool complete(std::string_view id, std::string_view owner, std::string result_json,
                        TimePoint now) = 0;
  // complete() without waiting for it, for workers that should go on to the
  // next task while the commit happens. `done` gets what complete() returns,
  // or the error, exactly once: on the store's writer thread, or before this
  // returns (the default runs complete() inline). Quick, must not throw.
  using CompleteDone = std::function<void(bool ok, std::exception_ptr error)>;
  virtual void complete_async(std::string_view id, std::string_view owner, std::string result_json,
                              TimePoint now, CompleteDone done);
  // retry_at set: retrying until then; nullopt: dead.
  virtual bool fail(std::string_view id, std::string_view owner, std::string error,
                    std::optional<TimePoint> retry_at, TimePoint now) = 0;
  // Back to pending (or scheduled at run_at) without counting the attempt:
  // shutdown, rate limits.
  virtual bool release(std::string_view id, std::string_view owner, TimePoint run_at,
                       TimePoint now) = 0;
  // The handler stopped after cancel(): cancelled.
  virtual bool finish_cancelled(std::string_view id, std::string_view owner, TimePoint now) = 0;
  virtual bool set_progress(std::string_view id, std::string_view owner, int percent,
                            std::string message, TimePoint now) = 0;

  virtual CancelResult cancel(std::string_view id, TimePoint now) = 0;
  // Dead or cancelled → pending with a fresh set of attempts; false otherwise.
  virtual bool retry(std::string_view id, TimePoint now) = 0;
  // Deletes a final task; false if missing or not final.
  virtual bool remove(std::string_view id) = 0;

  [[nodiscard]] virtual std::optional<TaskRecord> get(std::string_view id) = 0;
  // The unfinished task holding `unique_key` (a finished one holds none):
  // one index lookup in every backend.
  [[nodiscard]] virtual std::optional<TaskRecord> holder_of(std::string_view unique_key) = 0;
  [[nodiscard]] virtual Page list(const ListQuery& query) = 0;
  // One lookup by id, then one count of the members by state (at most the
  // members of one group: an index walk in every backend).
  [[nodiscard]] virtual std::optional<GroupInfo> group(std::string_view id) = 0;
  // The group whose completion task will be `task_id`, while that group still
  // waits for members (so the task does not exist yet); nullopt otherwise.
  [[nodiscard]] virtual std::optional<std::string> group_awaiting(std::string_view task_id) = 0;
  // Every queue that has tasks or was paused, by name.
  [[nodiscard]] virtual std::vector<QueueInfo> queues() = 0;

  // Active tasks whose lease expired: back to pending, or dead when that was
  // their last attempt. Returns how many.
  virtual std::size_t reclaim_expired(TimePoint now) = 0;
  // Deletes final tasks that finished before `cutoff`, at most `max` per call
  // (the count returned), and finished groups (GroupInfo) as old.
  virtual std::size_t purge_final(TimePoint cutoff, std::size_t max) = 0;
  virtual void set_paused(std::string_view queue, bool paused) = 0;

  // The node registry. Each node writes its info (last_seen = its now) every
  // few seconds; nodes() answers those seen after `now - silence`, by id,
  // and forgets the others. remove_node: a node that stops says goodbye.
  virtual void heartbeat_node(const NodeInfo& node) = 0;
  virtual void remove_node(std::string_view id) = 0;
  [[nodiscard]] virtual std::vector<NodeInfo> nodes(TimePoint now,
                                                    std::chrono::milliseconds silence) = 0;

  // Periodic schedules: enqueues `task` for `tick` unless that schedule already
  // fired for `tick` or a later one — so several processes never double-fire.
  virtual bool fire_schedule(std::string_view schedule, TimePoint tick, NewTask task,
                             TimePoint now) = 0;
  // The last tick each schedule fired for, by name (schedules that never
  // fired are absent).
  [[nodiscard]] virtual std::vector<std::pair<std::string, TimePoint>> schedule_ticks() = 0;
};

}  // namespace errand::store
