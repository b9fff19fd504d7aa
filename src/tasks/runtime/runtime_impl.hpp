#pragma once
// Internal: the state every room of the task runtime shares, and the rooms.
//
//   runtime.cpp      the public Runtime, forwarding here; configuration checks
//   enqueue.cpp      validating a TaskSpec into a store::NewTask; the enqueue calls
//   dispatch.cpp     the dispatcher thread: claims tasks for queues with idle workers
//   worker.cpp       worker threads: rate-limit turns, running a handler
//   outcome.cpp      recording what an attempt came to, its log line and hook
//   maintenance.cpp  the maintenance thread: deadlines, heartbeats, reclaim, purge
//   schedules.cpp    periodic schedules (every, cron) fired by maintenance
//   lifecycle.cpp    start and the two-phase stop
//
// Threads: the dispatcher, one maintenance thread, workers per queue, and the
// store's writer thread (async callbacks). `mu` guards the mutable shared
// state (annotated below and checked by clang -Wthread-safety); what is fixed
// before start() (queues, schedules' definitions, buckets, the registry) is
// read without it.

#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "errand/detail/thread_annotations.hpp"
#include "errand/guard/token_bucket.hpp"
#include "errand/tasks/attempt_outcome.hpp"
#include "errand/tasks/runtime.hpp"
#include "tasks/attempt.hpp"

namespace errand::tasks {

using TimePoint = store::TimePoint;
using std::chrono::milliseconds;

inline constexpr int kMaxPriority = 1000;
// The retention purge: a tick deletes up to kPurgeBatches * kPurgeBatch
// tasks, each batch one write operation. Small batches: the single writer
// holds every enqueue while it deletes one (rows, index entries, counts).
inline constexpr std::size_t kPurgeBatch = 250;
inline constexpr int kPurgeBatches = 40;
// Delays, timeouts and run_at beyond this are refused: far enough for any real
// use, near enough that time arithmetic can never overflow.
inline constexpr milliseconds kMaxHorizon = std::chrono::hours(24 * 366 * 10);

struct Runtime::Impl {
  using Mutex = errand::detail::Mutex;
  using MutexLock = errand::detail::MutexLock;

  struct Queue {
    QueueConfig cfg;
    std::deque<std::shared_ptr<detail::Attempt>> buffer;  // claimed, not yet started; mu
    unsigned busy = 0;                                    // handlers running; mu
    std::condition_variable cv;
    std::vector<std::jthread> workers;
  };
  struct Schedule {
    std::string name;
    std::function<TimePoint(TimePoint)> latest;  // the last tick at or before t
    std::function<TimePoint(TimePoint)> next;    // the first tick after t
    TaskSpec task;
    std::string kind{};     // as published: "every" or "cron"
    std::string spec{};     // the period in ms, or the cron expression
    std::string queue{};    // the task's, resolved when the schedule is added
    TimePoint last_tick{};  // fired (or skipped at start); the maintenance thread's
    TimePoint next_due{};   // when to look again; the maintenance thread's
  };
  // A schedule as the node registry carries it.
  static store::NodeSchedule published(const Schedule& s) {
    return {s.name, s.kind, s.spec, s.task.type, s.queue};
  }

  std::shared_ptr<store::Store> store;
  RuntimeConfig cfg;
  std::shared_ptr<Clock> clock;
  Registry registry;
  std::string owner;                           // the node id
  std::string life = observe::random_hex(4);   // this Runtime's, in lease owners
  std::uint64_t claim_seq = 0;                 // the dispatcher thread's
  TimePoint started_at{};                      // set by start(), before any thread
  std::vector<std::unique_ptr<Queue>> queues;  // fixed at construction
  std::vector<Schedule> schedules;             // fixed at start
  std::map<std::string, std::unique_ptr<guard::TokenBucket>, std::less<>>
      buckets;  // fixed at start

  mutable Mutex mu;
  std::condition_variable dispatcher_cv;
  std::condition_variable maintenance_cv;
  std::condition_variable drained_cv;
  bool wake ERRAND_GUARDED_BY(mu) = false;
  bool started ERRAND_GUARDED_BY(mu) = false;
  bool stopping ERRAND_GUARDED_BY(mu) = false;
  bool workers_exit ERRAND_GUARDED_BY(mu) = false;
  bool maintenance_exit ERRAND_GUARDED_BY(mu) = false;
  // The latest attempt of every task this process holds a lease on.
  std::map<std::string, std::shared_ptr<detail::Attempt>, std::less<>> in_flight
      ERRAND_GUARDED_BY(mu);
  // Store callbacks not yet run (enqueue_async, complete_async): they use this
  // object, so stop() and the destructor wait for them.
  std::size_t pending_async ERRAND_GUARDED_BY(mu) = 0;
  // Successes whose commit failed because the store was away (see outcome.cpp).
  struct RetriedCompletion {
    std::shared_ptr<detail::Attempt> attempt;
    AttemptInfo info;  // views into attempt->task
    std::chrono::nanoseconds took{};
    std::string result;
    TimePoint give_up;  // the runtime's clock: a lease after the first failure
    std::chrono::steady_clock::time_point next_try;
    milliseconds backoff{};
  };
  std::vector<RetriedCompletion> retried_completions ERRAND_GUARDED_BY(mu);
  // Successes the store committed (or refused), waiting for the reporter
  // thread to log them, end their spans, run after_attempt and forget them.
  // The store's callback only queues them: it runs on the store's writer
  // thread, where that work was 15% of the writer's time in a drain (perf)
  // and the writer bounds the drain. Bounded by the tasks in flight; each
  // entry holds a pending_async count until it is reported.
  struct Committed {
    std::shared_ptr<detail::Attempt> attempt;
    AttemptInfo info;  // views into attempt->task
    std::chrono::nanoseconds took{};
    bool stored = false;  // the store recorded it (false: the lease was not ours)
    std::string failure;  // the store's error, if it refused
  };
  std::vector<Committed> committed ERRAND_GUARDED_BY(mu);
  std::condition_variable reporter_cv;
  bool reporter_exit ERRAND_GUARDED_BY(mu) = false;
  // Rate-limit turns booked by tasks sent back to wait for them.
  std::map<std::string, TimePoint, std::less<>> reservations ERRAND_GUARDED_BY(mu);

  std::jthread dispatcher;
  std::jthread maintenance;
  std::jthread reporter;

  Impl(std::shared_ptr<store::Store> s, RuntimeConfig c);

  [[nodiscard]] TimePoint now() const { return clock->now(); }
  Queue* find_queue(std::string_view name);
  void poke_dispatcher() ERRAND_EXCLUDES(mu);
  void async_started() ERRAND_EXCLUDES(mu);
  // The callback's last act: after it the runtime may be destroyed.
  void async_done_locked() ERRAND_REQUIRES(mu);
  void wait_async() ERRAND_EXCLUDES(mu);

  // enqueue.cpp
  // With `producer`, the enqueue's span (started; the caller ends it once
  // the store answered) when tracing is on.
  [[nodiscard]] store::NewTask prepare(const TaskSpec& spec, TimePoint at,
                                       observe::Span* producer = nullptr) const;
  void after_enqueue(const std::vector<store::NewTask>& tasks,
                     const std::vector<store::Enqueued>& done);

  // dispatch.cpp
  std::vector<Queue*> polling_order(std::mt19937& rng);
  std::shared_ptr<detail::Attempt> make_attempt(store::TaskRecord&& t);
  store::NodeInfo node_info(TimePoint at) const;
  void publish_node(TimePoint at);
  void dispatch_loop() ERRAND_EXCLUDES(mu);
  void release_all(const std::vector<std::shared_ptr<detail::Attempt>>& attempts);

  // worker.cpp
  void work(Queue& q) ERRAND_EXCLUDES(mu);
  void forget(const std::shared_ptr<detail::Attempt>& a) ERRAND_REQUIRES(mu);
  bool wait_for_turn(detail::Attempt& a, TimePoint at) ERRAND_EXCLUDES(mu);
  bool run(const std::shared_ptr<detail::Attempt>& ap) ERRAND_EXCLUDES(mu);

  // outcome.cpp
  static milliseconds snooze_delay(const Outcome& out);
  bool finish(const std::shared_ptr<detail::Attempt>& ap, const AttemptInfo& info,
              const Outcome& out, std::chrono::nanoseconds took, const TaskType* type)
      ERRAND_EXCLUDES(mu);
  AttemptOutcome recorded(detail::Attempt& a, AttemptOutcome outcome, bool ok,
                          const std::string& failure) const;
  // The reporter thread: reports what `committed` holds, until stop().
  void report_loop() ERRAND_EXCLUDES(mu);
  void report(detail::Attempt& a, const AttemptInfo& info, AttemptOutcome outcome,
              const std::string& error, std::chrono::nanoseconds took,
              std::optional<milliseconds> snoozed) const;
  static std::string describe(const std::exception_ptr& e);
  // A store error worth waiting out: unavailable or busy.
  static bool transient(const std::exception_ptr& e);
  static bool transient(store::StoreError::Code code);
  void retry_completions() ERRAND_EXCLUDES(mu);
  // Runs a store write of an attempt's outcome; while the store is away
  // (transient errors) tries again with backoff for up to a lease, so a short
  // outage does not make the task run twice. On the calling worker thread.
  template <class F>
  auto retrying_store(detail::Attempt& a, F&& f) {
    const TimePoint give_up = now() + cfg.lease;
    milliseconds backoff{50};
    bool logged = false;
    while (true) {
      try {
        return f();
      } catch (const store::StoreError& e) {
        if (!transient(e.code()) || now() >= give_up) throw;
        if (!logged) {
          a.log.warn("the store is away; retrying the outcome while the lease holds",
                     {{"error", e.what()}});
          logged = true;
        }
      }
      std::this_thread::sleep_for(backoff);
      backoff = std::min(backoff * 2, milliseconds(1000));
    }
  }

  // maintenance.cpp
  void maintenance_loop(TimePoint begin) ERRAND_EXCLUDES(mu);
  // A store call failed: counted (Hooks::store_failed); the caller logs it.
  void store_failed(std::string_view operation) const {
    if (cfg.hooks.store_failed) cfg.hooks.store_failed(operation);
  }
  template <class F>
  void guarded(std::string_view operation, std::string_view what, F&& f) {
    try {
      f();
    } catch (const store::StoreError& e) {
      cfg.logger.error(std::string(what) + " failed", {{"error", e.what()}});
      store_failed(operation);
    } catch (const std::exception& e) {
      cfg.logger.error(std::string(what) + " failed", {{"error", e.what()}});
    }
  }
  void watchdog(TimePoint at) ERRAND_EXCLUDES(mu);
  void flush_progress(TimePoint at) ERRAND_EXCLUDES(mu);
  void heartbeat(TimePoint at) ERRAND_EXCLUDES(mu);
  void stop_local(const std::vector<std::string>& ids, StopReason why) ERRAND_EXCLUDES(mu);

  // schedules.cpp
  void fire_schedules(TimePoint at) ERRAND_EXCLUDES(mu);
  void add_schedule(Schedule s) ERRAND_EXCLUDES(mu);

  // lifecycle.cpp
  void start() ERRAND_EXCLUDES(mu);
  void stop() ERRAND_EXCLUDES(mu);
};

}  // namespace errand::tasks
