#pragma once
// Runtime: runs errands. It owns, per configured queue, a fixed set of worker
// threads, plus one dispatcher thread (claims ready tasks from the store in
// batches, only as many as there are idle workers) and one maintenance thread
// (heartbeats leases, enforces deadlines, reclaims tasks of dead processes,
// purges old results, fires periodic schedules). No thread is detached; all are
// joined by stop().
//
// Bounded everywhere: a queue never holds more claimed tasks in memory than
// its workers plus its prefetch (0 by default); the store's writer queue is bounded; enqueue
// validates size and options and throws EnqueueError rather than storing something that cannot run.
//
// Delivery is at least once. A task whose handler returns is recorded exactly
// once (the lease owner check in the store); a task whose process dies is
// handed to another worker after its lease expires.
//
// Shutdown (stop(), or the destructor): stop claiming; tasks claimed but not
// started go back to pending at once; running handlers get `shutdown_grace` to
// finish, then their stop token is requested; whatever does not succeed goes
// back to pending without using up an attempt. A handler that ignores its stop
// token is waited for `shutdown_abandon` more; then, since its thread can be
// neither joined nor left running, the process exits with kStuckExitCode (70)
// after naming it in the log; the task returns to a worker when its lease
// expires. An outcome still being written to a store that is away is waited
// for up to the lease more (its retries end there), then the process exits 70.
//
// Thread-safety: enqueue*, cancel, pause/resume and the accessors may be called
// from any thread at any time, also before start() (tasks wait in the store).
// Registration (handle*, every) must happen before start().

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/value.hpp>

#include "errand/detail/stuck_exit.hpp"
#include "errand/observe/logger.hpp"
#include "errand/observe/trace_context.hpp"
#include "errand/observe/tracer.hpp"
#include "errand/store/store.hpp"
#include "errand/tasks/attempt_outcome.hpp"
#include "errand/tasks/clock.hpp"
#include "errand/tasks/registry.hpp"

namespace errand::tasks {

struct QueueConfig {
  std::string name = "default";
  unsigned concurrency = 4;  // worker threads
  unsigned weight = 1;       // share of claim turns under weighted polling
  // Tasks claimed ahead and kept ready beyond the busy workers, so a worker
  // that finishes starts the next task without waiting for a claim. They hold
  // a lease like running tasks; on shutdown they go back at once.
  unsigned prefetch = 0;
};

// What a handler-facing hook sees of an attempt.
struct AttemptInfo {
  std::string_view id;
  std::string_view type;
  std::string_view queue;
  int attempt = 0;
  int max_attempts = 0;
  std::chrono::milliseconds waited{0};  // from ready (run_at) to start
  std::string_view trace_id{};          // of the request that enqueued the task
  std::string_view request_id{};
  // The attempt's span is recorded (tracing on, trace sampled): metrics may
  // point at trace_id as an exemplar.
  bool traced = false;
};

// Observation points for metrics and tracing (the observe layer plugs in here).
// Called on worker/dispatcher threads, for successful attempts (recorded
// without waiting) on the runtime's reporter thread once the store committed
// them, and for enqueue_async on the store's writer thread: they must be
// quick, thread-safe, must not throw, and must not write to the store
// synchronously (from the writer thread that throws std::logic_error).
struct Hooks {
  std::function<void(std::string_view type, std::string_view queue)> enqueued{};
  std::function<void(const AttemptInfo&)> before_attempt{};
  // What was recorded for the attempt (see attempt_outcome.hpp).
  std::function<void(const AttemptInfo&, AttemptOutcome outcome, std::chrono::nanoseconds took)>
      after_attempt{};
  // A handler still running `stuck_after` past its deadline, ignoring its stop token.
  std::function<void(const AttemptInfo&)> stuck{};
  // A store call of the runtime's failed (it is logged too): "claim",
  // "extend_leases", "complete", "fail", "release", "finish_cancelled",
  // "reclaim", "purge", "fire_schedule". The runtime goes on; what the call
  // would have recorded is recovered by lease expiry (see docs/architecture.md).
  std::function<void(std::string_view operation)> store_failed{};
};

struct RuntimeConfig {
  // Empty: this node runs no workers (it enqueues, and runs maintenance:
  // reclaim, purge, schedules, the node heartbeat).
  std::vector<QueueConfig> queues = {QueueConfig{}};
  enum class Polling : std::uint8_t {
    strict,    // claim for queues in the order listed
    weighted,  // claim order drawn at random, by weight, each round
  } polling = Polling::weighted;
  // Most tasks claimed per store call; a claim never takes more than the
  // queue's idle workers plus its prefetch room. The dispatcher waits for
  // each claim's commit, so with a deep prefetch a small batch made the claims
  // the drain's limit: 32 → 256 read +31% end to end (prefetch 256, SQLite).
  std::size_t claim_batch = 256;
  std::chrono::milliseconds poll_interval{200};     // idle look for work enqueued elsewhere
  std::chrono::milliseconds maintenance_tick{100};  // deadline / heartbeat check period
  std::chrono::milliseconds lease{std::chrono::seconds(30)};  // heartbeat every lease / 3
  std::chrono::milliseconds shutdown_grace{std::chrono::seconds(10)};
  std::chrono::milliseconds shutdown_abandon{std::chrono::seconds(5)};  // after the grace: above
  std::chrono::milliseconds stuck_after{std::chrono::seconds(5)};
  // TaskContext::progress() writes to the store at most once per interval
  // per task; the latest value reported in between is written when it ends,
  // or when the handler returns, whichever comes first.
  std::chrono::milliseconds progress_interval{std::chrono::seconds(1)};
  std::chrono::milliseconds default_timeout{std::chrono::minutes(30)};
  std::chrono::milliseconds retention{std::chrono::hours(24 * 7)};  // final tasks kept this long
  std::chrono::milliseconds purge_interval{std::chrono::minutes(1)};
  RetryPolicy retry{};
  std::size_t max_payload_bytes = std::size_t{1024} * 1024;
  int max_attempts_limit = 1000;
  // Backpressure: an enqueue into a queue that already holds this many waiting
  // tasks (scheduled + pending + retrying) is refused with
  // store::StoreError{queue_full} and nothing is stored (HTTP: 503 + Retry-After).
  // Checked in the store's transaction, so exact across processes. 0: no limit.
  std::size_t max_waiting = 1'000'000;
  std::map<std::string, std::size_t, std::less<>> queue_max_waiting{};  // per queue, overrides

  // The node id (--node-id): names this process in /v1/nodes and in each
  // task's `node`; each claim's lease owner (its fencing token) is
  // NODE~LIFE.SEQ. Empty: host:pid:random.
  std::string owner{};
  // The node registry: this node writes what it runs every `node_heartbeat`;
  // nodes not heard from for `node_silence` are dropped from Runtime::nodes().
  std::string role = "all";  // as /v1/nodes shows it: all | api | worker
  std::chrono::milliseconds node_heartbeat{std::chrono::seconds(5)};
  std::chrono::milliseconds node_silence{std::chrono::seconds(30)};
  // What the node publishes with each heartbeat as its recent task
  // statistics (App: observe::TaskStats::encode); called on the maintenance
  // thread. Empty: none.
  std::function<std::string()> node_stats{};
  observe::Logger logger = observe::Logger::null();
  // Spans (when on): a producer span per enqueue, child of the enqueuing
  // request's span, whose context the task stores as its traceparent; a
  // consumer span per attempt, child of that producer span.
  observe::Tracer tracer{};
  std::shared_ptr<Clock> clock{};  // null: SystemClock
  Hooks hooks{};
};

// A periodic schedule as GET /v1/schedules shows it.
struct ScheduleStatus {
  std::string name;
  std::string kind;  // "every" or "cron"
  std::string spec;  // every: the period in ms; cron: the expression
  std::string type;
  std::string queue;
  std::optional<std::int64_t> every_ms{};        // kind every, when spec reads as one
  std::optional<store::TimePoint> last_fired{};  // the last tick fired (by any node)
  std::optional<store::TimePoint> next_fire{};   // the next tick after now
  std::vector<std::string> nodes{};              // the live nodes that registered it
};

// Per-task overrides of the type's TaskOptions.
// A unique_key longer than this is refused (enqueue: invalid_option; the
// API's ?unique_key= lookup: 400).
inline constexpr std::size_t kMaxUniqueKey = 256;

struct EnqueueOptions {
  std::optional<std::string> queue{};
  std::optional<int> priority{};
  std::optional<int> max_attempts{};
  std::optional<std::chrono::milliseconds> timeout{};
  std::optional<std::chrono::milliseconds> delay{};  // or run_at; not both
  std::optional<store::TimePoint> run_at{};
  std::string unique_key{};  // enqueue is idempotent while a task with this key is unfinished
  // From the enqueuing request (RequestSnapshot): the task runs under its trace.
  std::optional<observe::TraceContext> trace{};
  std::string request_id{};
};

// Why an enqueue was refused. Nothing was stored.
class EnqueueError : public std::invalid_argument {
 public:
  enum class Code : std::uint8_t {
    unknown_type,
    invalid_payload,
    payload_too_large,
    invalid_option
  };
  EnqueueError(Code code, const std::string& message)
      : std::invalid_argument(message), code_(code) {}
  [[nodiscard]] Code code() const noexcept { return code_; }

 private:
  Code code_;
};
[[nodiscard]] std::string_view to_string(EnqueueError::Code code);

struct TaskSpec {
  std::string type;
  boost::json::value payload = boost::json::object();
  EnqueueOptions options{};
};

// A typed TaskSpec, for enqueue_batch and enqueue_group.
template <class T>
[[nodiscard]] TaskSpec spec(const Task<T>& task, const T& payload, EnqueueOptions options = {}) {
  return {task.name(), json::to_json(payload), std::move(options)};
}

struct GroupEnqueued {
  std::string group_id;
  std::vector<store::Enqueued> members;
  std::string completion_id;  // empty without a completion task
};

class Runtime {
 public:
  // Throws std::invalid_argument for a bad config (no queues, zero workers ...).
  Runtime(std::shared_ptr<store::Store> store, RuntimeConfig config);
  ~Runtime();  // stop()
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  [[nodiscard]] Registry& registry();
  // Returns the typed handle enqueue(task, payload) takes: name and payload
  // type checked at compile time (see task.hpp).
  template <class T, class F>
  Task<T> handle(std::string type, F handler, TaskOptions options = {}) {
    return registry().handle<T>(std::move(type), std::move(handler), std::move(options));
  }
  template <class F>
  void handle_raw(std::string type, F handler, TaskOptions options = {}) {
    registry().handle_raw(std::move(type), std::move(handler), std::move(options));
  }

  // A periodic schedule: enqueues `task` once per `period`, on ticks aligned to
  // the Unix epoch, so every process computes the same ticks; the store lets
  // exactly one of them fire each tick. Before start() only.
  void every(std::string name, std::chrono::milliseconds period, TaskSpec task);
  // The same, on a cron expression (UTC; see CronSchedule): "*/15 * * * *", "@daily".
  // Throws std::invalid_argument for a bad expression.
  void cron(std::string name, std::string_view expression, TaskSpec task);

  // Durable when it returns. Throws EnqueueError (bad input) or
  // store::StoreError (the store could not take it).
  store::Enqueued enqueue(std::string_view type, boost::json::value payload,
                          EnqueueOptions options = {});
  template <class T>
  store::Enqueued enqueue(const Task<T>& task, const T& payload, EnqueueOptions options = {}) {
    return enqueue(task.name(), json::to_json(payload), std::move(options));
  }
  template <class T>
  store::Enqueued enqueue_typed(std::string_view type, const T& payload,
                                const EnqueueOptions& options = {}) {
    return enqueue(type, json::to_json(payload), options);
  }
  // The same without blocking, for I/O threads (see http::Deferred): bad input
  // throws EnqueueError here, at once; the store's answer goes to `done`,
  // exactly once — on the store's writer thread, or inline before this
  // returns (an in-memory store; a refusal such as a full write queue). `done`
  // gets nullptr or the store::StoreError; it must be quick and must not
  // throw. The enqueued hook runs before it, on the same thread.
  using EnqueueDone = std::function<void(store::Enqueued, std::exception_ptr)>;
  void enqueue_async(std::string_view type, boost::json::value payload, EnqueueOptions options,
                     EnqueueDone done);
  // Atomic: all or none. An EnqueueError names the task: "tasks[3]: ...".
  std::vector<store::Enqueued> enqueue_batch(const std::vector<TaskSpec>& tasks);
  // Fan-out / fan-in: the members run independently; once every one is final,
  // `completion` runs with all their results and errors in its payload (see
  // store::GroupSpec).
  GroupEnqueued enqueue_group(const std::vector<TaskSpec>& members,
                              std::optional<TaskSpec> completion = std::nullopt);

  // Pending tasks are cancelled at once; a running one has its stop token
  // requested (here at once; in other processes on their next heartbeat).
  store::CancelResult cancel(std::string_view id);
  // Dead or cancelled → pending with fresh attempts; false otherwise.
  bool retry(std::string_view id);
  void pause(std::string_view queue);
  void resume(std::string_view queue);

  void start();
  // Graceful, see above. Idempotent; safe to call from any thread but a worker.
  void stop();
  // True once stop() has begun (no more claims; running tasks have the grace).
  [[nodiscard]] bool stopping() const;

  [[nodiscard]] store::Store& store();
  [[nodiscard]] const std::string& owner() const;  // the node id
  // The node id of a runtime configured without one: host:pid:random.
  [[nodiscard]] static std::string default_owner();
  // Every node that shares the store and heartbeats (this one included).
  [[nodiscard]] std::vector<store::NodeInfo> nodes() const;
  // Every periodic schedule this node or a live node registered, by name,
  // with the last tick the store fired and the next one.
  [[nodiscard]] std::vector<ScheduleStatus> schedules() const;
  // The queues this runtime serves, as configured.
  [[nodiscard]] const std::vector<QueueConfig>& queues() const;
  // Handlers running now, per queue name.
  [[nodiscard]] std::size_t busy(std::string_view queue) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace errand::tasks
