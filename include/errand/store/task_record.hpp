#pragma once
// The task record as every store keeps it, and the states it moves through:
//
//   scheduled ──(run_at reached)──► pending ──(claimed)──► active ──► succeeded
//   active ──(attempt failed, attempts left)──► retrying ──(run_at reached)──► pending
//   active ──(last attempt failed, or permanent failure)──► dead
//   any non-final state ──(cancel)──► cancelled   (active: once its handler returns)
//
// Plain values: copy them between threads freely. Times are milliseconds since
// the Unix epoch (what every backend stores), so a record read back compares
// equal to the one written.

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace errand::store {

using TimePoint = std::chrono::sys_time<std::chrono::milliseconds>;

enum class TaskState : std::uint8_t {
  scheduled,  // waits for run_at
  pending,    // ready to be claimed
  active,     // claimed by a worker holding a lease
  succeeded,  // final
  retrying,   // an attempt failed; waits for run_at to run again
  dead,       // final: out of attempts, or failed permanently
  cancelled,  // final
};

// Every state, in the order above.
inline constexpr std::array<TaskState, 7> kAllStates = {
    TaskState::scheduled, TaskState::pending, TaskState::active,   TaskState::succeeded,
    TaskState::retrying,  TaskState::dead,    TaskState::cancelled};

[[nodiscard]] std::string_view to_string(TaskState state);
// nullopt for anything but the names above.
[[nodiscard]] std::optional<TaskState> parse_state(std::string_view name);
[[nodiscard]] constexpr bool is_final(TaskState s) {
  return s == TaskState::succeeded || s == TaskState::dead || s == TaskState::cancelled;
}

// What an enqueuer hands the store. The caller (the runtime) has validated it.
struct NewTask {
  std::string id;  // assigned by the caller: sortable (see new_task_id())
  std::string type;
  std::string queue = "default";
  std::string payload = "{}";  // JSON text
  int priority = 0;            // higher runs first within a queue
  TimePoint run_at{};          // in the future: scheduled; else pending
  int max_attempts = 25;
  std::chrono::milliseconds timeout{0};  // 0: no per-task timeout
  std::string unique_key;                // empty: none
  std::string traceparent;               // of the enqueuing request, W3C format
  std::string tracestate{};              // its tracestate, if any
  std::string request_id;
  std::string group_id;  // empty: not in a group
  // Backpressure: when the queue already holds this many waiting tasks
  // (scheduled + pending + retrying), enqueue throws StoreError{queue_full} and
  // stores nothing. 0: no limit. Not stored with the task; ignored for group
  // completions and schedule firings, which must not be lost. (Store::retry
  // of a dead task is not limited either: an operator asked for it.)
  std::size_t max_waiting = 0;
};

// An attempt that did not succeed, as the task's history keeps it: failed
// (retrying or dead), cancelled while running, or lost (its lease expired).
// Successful attempts need no entry: the record itself says how the last one
// went. Written in the same store transition as the state change.
struct PastAttempt {
  int attempt = 0;
  std::string node{};
  std::optional<TimePoint> started_at{};
  TimePoint ended_at{};
  std::string outcome{};  // retrying, dead, cancelled or lost
  std::string error{};

  friend bool operator==(const PastAttempt&, const PastAttempt&) = default;
};

// A task keeps its latest this many past attempts (max_attempts may be 1000),
// each error cut to kMaxPastError bytes: the history rides along with every
// later write of the row.
inline constexpr std::size_t kMaxPastAttempts = 20;
inline constexpr std::size_t kMaxPastError = 1024;

struct TaskRecord {
  std::string id;
  std::string type;
  std::string queue;
  std::string payload;
  int priority = 0;
  TaskState state = TaskState::pending;
  int attempt = 0;  // attempts started so far (the running one included)
  int max_attempts = 25;
  TimePoint run_at{};
  std::chrono::milliseconds timeout{0};
  std::string unique_key;
  std::string traceparent;
  std::string tracestate;
  std::string request_id;
  std::string group_id;
  int progress = 0;  // 0..100
  std::string progress_message;
  std::optional<std::string> result;  // JSON text, once succeeded
  std::optional<std::string> last_error;
  TimePoint created_at{};
  TimePoint updated_at{};
  std::optional<TimePoint> started_at;   // of the latest attempt
  std::optional<TimePoint> finished_at;  // set when final
  std::string lease_owner;               // empty unless active
  std::optional<TimePoint> lease_expires_at;
  bool cancel_requested = false;
  std::string
      node;  // the node running the task, or that ran its latest attempt; kept after it ends
  // Oldest first, at most kMaxPastAttempts. Store::get() fills it; lists
  // and claims may leave it out.
  std::vector<PastAttempt> history{};

  friend bool operator==(const TaskRecord&, const TaskRecord&) = default;
};

// A new id: 26 characters of Crockford base32, a millisecond timestamp then 80
// random bits, so ids sort by creation time (ULID layout). Thread-safe.
[[nodiscard]] std::string new_task_id(TimePoint now);

}  // namespace errand::store
