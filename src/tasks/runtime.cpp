#include "errand/tasks/runtime.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include <fmt/format.h>
#include <boost/json.hpp>

#include "errand/detail/quote.hpp"
#include "errand/guard/token_bucket.hpp"
#include "errand/tasks/cron.hpp"
#include "tasks/attempt.hpp"

namespace errand::tasks {

using std::chrono::milliseconds;

std::string_view to_string(EnqueueError::Code code) {
  constexpr std::array<std::string_view, 4> names = {"unknown_type", "invalid_payload",
                                                     "payload_too_large", "invalid_option"};
  return names.at(static_cast<std::size_t>(code));
}

namespace {

constexpr int kMaxPriority = 1000;
constexpr std::size_t kMaxUniqueKey = 256;
constexpr std::size_t kPurgeBatch = 1000;
// Delays, timeouts and run_at beyond this are refused: far enough for any real
// use, near enough that time arithmetic can never overflow.
constexpr milliseconds kMaxHorizon = std::chrono::hours(24 * 366 * 10);

std::string default_owner() {
  std::array<char, 256> host{};
  if (gethostname(host.data(), host.size() - 1) != 0) host[0] = '\0';
  return fmt::format("{}:{}:{}", host.data(), getpid(), observe::random_hex(4));
}

[[noreturn]] void refuse(EnqueueError::Code code, const std::string& message) {
  throw EnqueueError(code, message);
}

}  // namespace

struct Runtime::Impl {
  struct Queue {
    QueueConfig cfg;
    std::deque<std::shared_ptr<detail::Attempt>> buffer;  // claimed, not yet started
    unsigned busy = 0;                                    // handlers running
    std::condition_variable cv;
    std::vector<std::jthread> workers;
  };
  struct Schedule {
    std::string name;
    std::function<TimePoint(TimePoint)> latest;  // the last tick at or before t
    std::function<TimePoint(TimePoint)> next;    // the first tick after t
    TaskSpec task;
    TimePoint last_tick{};  // fired (or skipped at start)
    TimePoint next_due{};   // when to look again
  };

  std::shared_ptr<store::Store> store;
  RuntimeConfig cfg;
  std::shared_ptr<Clock> clock;
  Registry registry;
  std::string owner;
  std::vector<std::unique_ptr<Queue>> queues;  // fixed at construction
  std::vector<Schedule> schedules;             // fixed at start
  std::map<std::string, std::unique_ptr<guard::TokenBucket>, std::less<>>
      buckets;  // fixed at start

  mutable std::mutex mu;
  std::condition_variable dispatcher_cv;
  std::condition_variable maintenance_cv;
  std::condition_variable drained_cv;
  bool wake = false;                                                               // guarded by mu
  bool started = false;                                                            // guarded by mu
  bool stopping = false;                                                           // guarded by mu
  bool workers_exit = false;                                                       // guarded by mu
  bool maintenance_exit = false;                                                   // guarded by mu
  std::map<std::string, std::shared_ptr<detail::Attempt>, std::less<>> in_flight;  // guarded by mu
  // Store callbacks not yet run (enqueue_async, complete_async): they use this
  // object, so stop() and the destructor wait for them. Guarded by mu.
  std::size_t pending_async = 0;

  void async_started() {
    const std::lock_guard lock(mu);
    ++pending_async;
  }
  // Under mu, the callback's last act: after it the runtime may be destroyed.
  void async_done_locked() {
    --pending_async;
    drained_cv.notify_all();
  }
  void wait_async() {
    std::unique_lock lock(mu);
    while (!drained_cv.wait_for(lock, cfg.stuck_after, [&] { return pending_async == 0; })) {
      cfg.logger.warn("waiting for the store to answer", {{"operations", pending_async}});
    }
  }
  std::map<std::string, TimePoint, std::less<>> reservations;  // rate-limit turns; guarded by mu

  std::jthread dispatcher;
  std::jthread maintenance;

  Impl(std::shared_ptr<store::Store> s, RuntimeConfig c)
      : store(std::move(s)), cfg(std::move(c)), clock(cfg.clock) {
    if (!store) throw std::invalid_argument("runtime: no store");
    if (!clock) clock = SystemClock::shared();
    owner = cfg.owner.empty() ? default_owner() : cfg.owner;
    if (cfg.queues.empty()) throw std::invalid_argument("runtime: at least one queue is needed");
    for (const auto& q : cfg.queues) {
      if (!valid_name(q.name))
        throw std::invalid_argument("runtime: bad queue name '" + q.name + "'");
      if (q.concurrency == 0) {
        throw std::invalid_argument("runtime: queue '" + q.name + "' needs at least one worker");
      }
      if (q.weight == 0)
        throw std::invalid_argument("runtime: queue '" + q.name + "' has weight 0");
      for (const auto& other : queues) {
        if (other->cfg.name == q.name) {
          throw std::invalid_argument("runtime: queue '" + q.name + "' is listed twice");
        }
      }
      auto queue = std::make_unique<Queue>();
      queue->cfg = q;
      queues.push_back(std::move(queue));
    }
    if (cfg.lease < milliseconds(3)) throw std::invalid_argument("runtime: lease too short");
    if (cfg.claim_batch == 0) cfg.claim_batch = 1;
  }

  [[nodiscard]] TimePoint now() const { return clock->now(); }

  Queue* find_queue(std::string_view name) {
    for (auto& q : queues) {
      if (q->cfg.name == name) return q.get();
    }
    return nullptr;
  }

  void poke_dispatcher() {
    {
      const std::lock_guard lock(mu);
      wake = true;
    }
    dispatcher_cv.notify_one();
  }

  // ---- enqueue ------------------------------------------------------------

  store::NewTask prepare(const TaskSpec& spec, TimePoint at) const {
    const TaskType* type = registry.find(spec.type);
    if (type == nullptr) {
      refuse(EnqueueError::Code::unknown_type,
             "unknown task type '" + errand::detail::quote(spec.type) + "'");
    }
    if (type->check) {
      try {
        type->check(spec.payload);
      } catch (const json::BindError& e) {
        refuse(EnqueueError::Code::invalid_payload, std::string("payload: ") + e.what());
      }
    }
    const auto& o = spec.options;
    store::NewTask t;
    t.payload = boost::json::serialize(spec.payload);
    if (t.payload.size() > cfg.max_payload_bytes) {
      refuse(EnqueueError::Code::payload_too_large,
             fmt::format("payload is {} bytes; the limit is {}", t.payload.size(),
                         cfg.max_payload_bytes));
    }
    t.queue = o.queue.value_or(type->options.queue);
    if (!valid_name(t.queue)) {
      refuse(EnqueueError::Code::invalid_option,
             "queue: names are 1-128 characters of A-Z a-z 0-9 . _ : -");
    }
    t.priority = o.priority.value_or(type->options.priority);
    if (t.priority < -kMaxPriority || t.priority > kMaxPriority) {
      refuse(EnqueueError::Code::invalid_option,
             fmt::format("priority must be within [-{0}, {0}]", kMaxPriority));
    }
    t.max_attempts = o.max_attempts.value_or(type->options.max_attempts);
    if (t.max_attempts < 1 || t.max_attempts > cfg.max_attempts_limit) {
      refuse(EnqueueError::Code::invalid_option,
             fmt::format("max_attempts must be within [1, {}]", cfg.max_attempts_limit));
    }
    t.timeout = o.timeout.value_or(type->options.timeout.value_or(cfg.default_timeout));
    if (t.timeout < milliseconds(0) || t.timeout > kMaxHorizon) {
      refuse(EnqueueError::Code::invalid_option, "timeout must be within 0 and 10 years");
    }
    if (o.delay && o.run_at) {
      refuse(EnqueueError::Code::invalid_option, "give delay or run_at, not both");
    }
    if (o.delay && (*o.delay < milliseconds(0) || *o.delay > kMaxHorizon)) {
      refuse(EnqueueError::Code::invalid_option, "delay must be within 0 and 10 years");
    }
    if (o.run_at && (*o.run_at > at + kMaxHorizon || *o.run_at < at - kMaxHorizon)) {
      refuse(EnqueueError::Code::invalid_option, "run_at must be within 10 years of now");
    }
    t.run_at = o.run_at ? *o.run_at : at + o.delay.value_or(milliseconds(0));
    if (o.unique_key.size() > kMaxUniqueKey) {
      refuse(EnqueueError::Code::invalid_option,
             fmt::format("unique_key is longer than {} bytes", kMaxUniqueKey));
    }
    t.unique_key = o.unique_key;
    const auto limit = cfg.queue_max_waiting.find(t.queue);
    t.max_waiting = limit == cfg.queue_max_waiting.end() ? cfg.max_waiting : limit->second;
    t.type = spec.type;
    t.traceparent = o.trace.value_or(observe::TraceContext::generate()).to_traceparent();
    t.request_id = o.request_id;
    t.id = store::new_task_id(at);
    return t;
  }

  void after_enqueue(const std::vector<store::NewTask>& tasks,
                     const std::vector<store::Enqueued>& done) {
    bool local = false;
    for (std::size_t i = 0; i < done.size() && i < tasks.size(); ++i) {
      if (!done[i].created) continue;
      if (cfg.hooks.enqueued) cfg.hooks.enqueued(tasks[i].type, tasks[i].queue);
      local = local || (done[i].state == store::TaskState::pending && find_queue(tasks[i].queue));
    }
    if (local) poke_dispatcher();
  }

  // ---- dispatcher ---------------------------------------------------------

  std::vector<Queue*> polling_order(std::mt19937& rng) {
    std::vector<Queue*> order;
    order.reserve(queues.size());
    for (auto& q : queues) order.push_back(q.get());
    if (cfg.polling == RuntimeConfig::Polling::weighted && order.size() > 1) {
      // Weighted draw without replacement: a queue of weight 3 goes first three
      // times as often as one of weight 1.
      std::vector<Queue*> drawn;
      drawn.reserve(order.size());
      while (!order.empty()) {
        unsigned total = 0;
        for (const Queue* q : order) total += q->cfg.weight;
        unsigned pick = std::uniform_int_distribution<unsigned>(0, total - 1)(rng);
        auto it = order.begin();
        while (pick >= (*it)->cfg.weight) {
          pick -= (*it)->cfg.weight;
          ++it;
        }
        drawn.push_back(*it);
        order.erase(it);
      }
      return drawn;
    }
    return order;
  }

  std::shared_ptr<detail::Attempt> make_attempt(store::TaskRecord&& t) {
    auto a = std::make_shared<detail::Attempt>();
    auto parent = observe::TraceContext::parse(t.traceparent);
    a->trace = parent ? parent->child() : observe::TraceContext::generate();
    a->log = cfg.logger.with({{"task_id", t.id},
                              {"type", t.type},
                              {"queue", t.queue},
                              {"attempt", t.attempt},
                              {"trace_id", a->trace.trace_id},
                              {"span_id", a->trace.span_id},
                              {"request_id", t.request_id}});
    a->store = store.get();
    a->clock = clock.get();
    a->owner = owner;
    a->task = std::move(t);
    return a;
  }

  void dispatch_loop() {
    std::mt19937 rng{std::random_device{}()};
    while (true) {
      bool more = false;
      for (Queue* q : polling_order(rng)) {
        std::size_t free = 0;
        {
          const std::lock_guard lock(mu);
          if (stopping) return;
          free = q->cfg.concurrency + q->cfg.prefetch - q->busy - q->buffer.size();
        }
        if (free == 0) continue;
        const std::size_t want = std::min(free, cfg.claim_batch);
        std::vector<store::TaskRecord> got;
        const TimePoint at = now();
        try {
          got = store->claim(q->cfg.name, want, {owner, at + cfg.lease}, at);
        } catch (const std::exception& e) {
          cfg.logger.error("claim failed", {{"queue", q->cfg.name}, {"error", e.what()}});
          continue;
        }
        if (got.empty()) continue;
        more = more || got.size() == want;
        std::vector<std::shared_ptr<detail::Attempt>> late;
        {
          const std::lock_guard lock(mu);
          for (auto& t : got) {
            auto a = make_attempt(std::move(t));
            if (stopping) {
              late.push_back(std::move(a));
              continue;
            }
            // Replaces a previous attempt of the same task that is still
            // finishing here (its outcome is recorded; it only logs now):
            // heartbeats, deadlines and cancels must follow the new one.
            in_flight.insert_or_assign(a->task.id, a);
            q->buffer.push_back(std::move(a));
          }
        }
        q->cv.notify_all();
        release_all(late);
      }
      std::unique_lock lock(mu);
      if (stopping) return;
      if (!more) dispatcher_cv.wait_for(lock, cfg.poll_interval, [&] { return wake || stopping; });
      wake = false;
    }
  }

  // Claimed but never started: back to pending, attempt not counted.
  void release_all(const std::vector<std::shared_ptr<detail::Attempt>>& attempts) {
    for (const auto& a : attempts) {
      try {
        const TimePoint at = now();
        store->release(a->task.id, owner, at, at);
      } catch (const std::exception& e) {
        a->log.error("release failed; the task returns when its lease expires",
                     {{"error", e.what()}});
      }
    }
  }

  // ---- workers ------------------------------------------------------------

  void work(Queue& q) {
    while (true) {
      std::shared_ptr<detail::Attempt> a;
      {
        std::unique_lock lock(mu);
        q.cv.wait(lock, [&] { return !q.buffer.empty() || workers_exit; });
        if (q.buffer.empty()) return;
        a = std::move(q.buffer.front());
        q.buffer.pop_front();
        ++q.busy;
      }
      const bool completing = run(a);
      {
        const std::lock_guard lock(mu);
        --q.busy;
        if (!completing) forget(a);
        wake = true;
      }
      dispatcher_cv.notify_one();
      drained_cv.notify_all();
    }
  }

  // Under mu: the attempt's outcome is recorded; heartbeats and shutdown stop
  // following it (unless a newer attempt of the task replaced it already).
  void forget(const std::shared_ptr<detail::Attempt>& a) {
    if (auto it = in_flight.find(a->task.id); it != in_flight.end() && it->second == a) {
      in_flight.erase(it);
    }
  }

  // Rate-limited types take turns from a token bucket. A task whose turn is in
  // the future goes back to the store until then, holding its booked turn, so
  // waiting tasks neither fail nor occupy workers.
  bool wait_for_turn(detail::Attempt& a, TimePoint at) {
    auto bucket = buckets.find(a.task.type);
    if (bucket == buckets.end()) return true;
    TimePoint turn{};
    {
      const std::lock_guard lock(mu);
      auto booked = reservations.find(a.task.id);
      if (booked != reservations.end()) {
        turn = booked->second;
        reservations.erase(booked);
      } else {
        turn = bucket->second->reserve(at);
      }
      if (turn <= at) return true;
      reservations.insert_or_assign(a.task.id, turn);
    }
    try {
      store->release(a.task.id, owner, turn, at);
    } catch (const std::exception& e) {
      a.log.error("release failed; the task returns when its lease expires", {{"error", e.what()}});
    }
    return false;
  }

  // True when the outcome is still being committed (complete_async): the
  // completion then forgets the attempt, not the worker.
  bool run(const std::shared_ptr<detail::Attempt>& ap) {
    auto& a = *ap;
    const TaskType* type = registry.find(a.task.type);
    const TimePoint start = now();
    const AttemptInfo info{
        a.task.id,
        a.task.type,
        a.task.queue,
        a.task.attempt,
        a.task.max_attempts,
        std::max(milliseconds(0), std::chrono::duration_cast<milliseconds>(start - a.task.run_at)),
        a.trace.trace_id,
        a.task.request_id};
    if (type == nullptr) {
      // Enqueued by another process that knows the type: this one cannot run it.
      return finish(ap, info,
                    Outcome::retry("task type '" + a.task.type + "' is not registered here"),
                    std::chrono::nanoseconds(0), nullptr);
    }
    if (a.reason.load() != StopReason::none) {
      // Cancelled (or its lease lost) while it waited for a worker: do not start it.
      return finish(ap, info, Outcome::cancelled(), std::chrono::nanoseconds(0), type);
    }
    if (!wait_for_turn(a, start)) return false;

    {
      const std::lock_guard lock(mu);
      a.started = true;
      if (a.task.timeout > milliseconds(0)) a.deadline = start + a.task.timeout;
    }
    if (cfg.hooks.before_attempt) cfg.hooks.before_attempt(info);
    const auto t0 = std::chrono::steady_clock::now();
    Outcome out = Outcome::done();
    try {
      boost::system::error_code ec;
      a.payload = boost::json::parse(a.task.payload, ec);
      if (ec) throw PermanentFailure("payload is not valid JSON: " + ec.message());
      TaskContext ctx(a);
      out = type->handler(ctx);
    } catch (const PermanentFailure& e) {
      out = Outcome::fail_permanently(e.what());
    } catch (const json::BindError& e) {
      out = Outcome::fail_permanently(std::string("payload: ") + e.what());
    } catch (const std::exception& e) {
      out = Outcome::retry(e.what());
    } catch (...) {
      out = Outcome::retry("unknown exception");
    }
    return finish(ap, info, out, std::chrono::steady_clock::now() - t0, type);
  }

  // At least a second: a handler snoozing with 0 would spin claim/release.
  static milliseconds snooze_delay(const Outcome& out) {
    return std::clamp(out.delay().value_or(milliseconds(0)), milliseconds(1000), kMaxHorizon);
  }

  // Records the outcome. A success is committed without waiting
  // (complete_async): the worker goes on to its next task while the store's
  // group commit takes this one, and the log line and after_attempt hook
  // follow the commit (on the store's writer thread). Returns true then.
  bool finish(const std::shared_ptr<detail::Attempt>& ap, const AttemptInfo& info,
              const Outcome& out, std::chrono::nanoseconds took, const TaskType* type) {
    auto& a = *ap;
    const TimePoint at = now();
    const StopReason reason = a.reason.load();
    const auto& id = a.task.id;
    std::string_view label;
    std::string error = out.error();
    bool ok = true;
    auto fail_or_retry = [&](std::optional<milliseconds> delay) {
      if (a.task.attempt >= a.task.max_attempts) {
        label = "dead";
        ok = store->fail(id, owner, error, std::nullopt, at);
        return;
      }
      const RetryPolicy policy =
          type != nullptr && type->options.retry ? *type->options.retry : cfg.retry;
      label = "retrying";
      const auto wait =
          std::clamp(delay.value_or(policy.delay(a.task.attempt)), milliseconds(0), kMaxHorizon);
      ok = store->fail(id, owner, error, at + wait, at);
    };
    if (out.kind() == Outcome::Kind::done) {
      async_started();
      try {
        store->complete_async(
            id, owner, boost::json::serialize(out.result()), at,
            [this, ap, info, took](bool committed, const std::exception_ptr& failure) {
              report(*ap, info,
                     recorded(*ap, "succeeded", committed, failure ? describe(failure) : ""), {},
                     took, std::nullopt);
              // Notified under the lock: once stop() sees in_flight empty the
              // runtime may be destroyed, so nothing here may touch it after.
              const std::lock_guard lock(mu);
              forget(ap);
              async_done_locked();
            });
        return true;
      } catch (const std::exception& e) {  // it could not even be queued
        {
          const std::lock_guard lock(mu);
          async_done_locked();
        }
        report(a, info, recorded(a, "succeeded", true, e.what()), {}, took, std::nullopt);
        return false;
      }
    }
    std::string failure;
    try {
      if (reason == StopReason::shutdown) {
        label = "requeued";
        ok = store->release(id, owner, at, at);
      } else if (reason == StopReason::lease_lost) {
        label = "lost";
      } else if (reason == StopReason::timeout) {
        error = fmt::format("timed out after {} ms", a.task.timeout.count());
        fail_or_retry(std::nullopt);
      } else if (reason == StopReason::cancelled || out.kind() == Outcome::Kind::cancelled) {
        label = "cancelled";
        ok = store->finish_cancelled(id, owner, at);
      } else if (out.kind() == Outcome::Kind::snooze) {
        label = "snoozed";
        ok = store->release(id, owner, at + snooze_delay(out), at);
      } else if (out.kind() == Outcome::Kind::fail_permanently) {
        label = "dead";
        ok = store->fail(id, owner, error, std::nullopt, at);
      } else {
        fail_or_retry(out.delay());
      }
    } catch (const std::exception& e) {
      failure = e.what();
    }
    report(a, info, recorded(a, label, ok, failure), error, took,
           out.kind() == Outcome::Kind::snooze ? std::optional(snooze_delay(out)) : std::nullopt);
    return false;
  }

  // What recording an outcome came to: `label`, or "lost" (and a log line)
  // when the store failed (`failure` says how) or the lease was not ours.
  static std::string_view recorded(detail::Attempt& a, std::string_view label, bool ok,
                                   const std::string& failure) {
    if (!failure.empty()) {
      a.log.error("recording the outcome failed; the task returns when its lease expires",
                  {{"error", failure}, {"outcome", label}});
      return "lost";
    }
    if (!ok) {
      a.log.warn("the task is no longer leased to this worker; its outcome was not recorded",
                 {{"outcome", label}});
      return "lost";
    }
    return label;
  }

  void report(detail::Attempt& a, const AttemptInfo& info, std::string_view label,
              const std::string& error, std::chrono::nanoseconds took,
              std::optional<milliseconds> snoozed) const {
    const double secs = std::chrono::duration<double>(took).count();
    if (label == "succeeded") {
      a.log.info("task succeeded", {{"duration_s", secs}});
    } else if (label == "snoozed") {
      a.log.info("task snoozed",
                 {{"reason", error}, {"delay_ms", snoozed.value_or(milliseconds(0)).count()}});
    } else {
      a.log.warn("task " + std::string(label), {{"duration_s", secs}, {"error", error}});
    }
    if (cfg.hooks.after_attempt) cfg.hooks.after_attempt(info, label, took);
  }

  static std::string describe(const std::exception_ptr& e) {
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      return x.what();
    } catch (...) {
      return "unknown error";
    }
  }

  // ---- maintenance --------------------------------------------------------

  void maintenance_loop() {
    TimePoint next_heartbeat = now() + cfg.lease / 3;
    TimePoint next_reclaim = now();
    TimePoint next_purge = now();
    while (true) {
      {
        std::unique_lock lock(mu);
        if (maintenance_cv.wait_for(lock, cfg.maintenance_tick, [&] { return maintenance_exit; })) {
          return;
        }
      }
      const TimePoint at = now();
      watchdog(at);
      if (at >= next_heartbeat) {
        heartbeat(at);
        next_heartbeat = at + cfg.lease / 3;
      }
      if (at >= next_reclaim) {
        guarded("reclaim", [&] {
          if (const auto n = store->reclaim_expired(at); n > 0) {
            cfg.logger.warn("reclaimed tasks whose worker stopped heartbeating", {{"tasks", n}});
            poke_dispatcher();
          }
        });
        next_reclaim = at + cfg.lease / 2;
      }
      fire_schedules(at);
      if (at >= next_purge) {
        guarded("purge", [&] {
          std::size_t n = 0;
          for (int round = 0; round < 10; ++round) {
            const auto k = store->purge_final(at - cfg.retention, kPurgeBatch);
            n += k;
            if (k < kPurgeBatch) break;
          }
          if (n > 0) cfg.logger.info("purged final tasks past retention", {{"tasks", n}});
        });
        next_purge = at + cfg.purge_interval;
        const std::lock_guard lock(mu);
        std::erase_if(reservations, [&](const auto& r) { return r.second + cfg.lease < at; });
      }
    }
  }

  template <class F>
  void guarded(std::string_view what, F&& f) {
    try {
      f();
    } catch (const std::exception& e) {
      cfg.logger.error(std::string(what) + " failed", {{"error", e.what()}});
    }
  }

  void watchdog(TimePoint at) {
    std::vector<std::shared_ptr<detail::Attempt>> overdue;
    std::vector<std::shared_ptr<detail::Attempt>> stuck;
    {
      const std::lock_guard lock(mu);
      for (auto& [id, a] : in_flight) {
        if (!a->started || at < a->deadline) continue;
        if (a->reason.load() == StopReason::none) overdue.push_back(a);
        if (!a->stuck_reported && at >= a->deadline + cfg.stuck_after) {
          a->stuck_reported = true;
          stuck.push_back(a);
        }
      }
    }
    for (auto& a : overdue) {
      a->log.warn("deadline passed; stop requested", {{"timeout_ms", a->task.timeout.count()}});
      a->request_stop(StopReason::timeout);
    }
    for (auto& a : stuck) {
      a->log.error("handler ignores its stop token past its deadline; its worker stays busy",
                   {{"timeout_ms", a->task.timeout.count()}});
      if (cfg.hooks.stuck) {
        cfg.hooks.stuck({a->task.id, a->task.type, a->task.queue, a->task.attempt,
                         a->task.max_attempts, milliseconds(0)});
      }
    }
  }

  void heartbeat(TimePoint at) {
    std::vector<std::string> ids;
    {
      const std::lock_guard lock(mu);
      ids.reserve(in_flight.size());
      for (const auto& [id, a] : in_flight) ids.push_back(id);
    }
    if (ids.empty()) return;
    store::HeartbeatResult hb;
    try {
      hb = store->extend_leases(ids, {owner, at + cfg.lease}, at);
    } catch (const std::exception& e) {
      cfg.logger.error("heartbeat failed", {{"error", e.what()}, {"tasks", ids.size()}});
      return;
    }
    stop_local(hb.cancel_requested, StopReason::cancelled);
    stop_local(hb.lost, StopReason::lease_lost);
  }

  void stop_local(const std::vector<std::string>& ids, StopReason why) {
    for (const auto& id : ids) {
      std::shared_ptr<detail::Attempt> a;
      {
        const std::lock_guard lock(mu);
        auto it = in_flight.find(id);
        if (it == in_flight.end()) continue;
        a = it->second;
      }
      a->request_stop(why);
    }
  }

  // A tick fires once even if maintenance was late; ticks missed while the
  // process was down or stalled are not replayed (only the latest fires).
  void fire_schedules(TimePoint at) {
    {
      const std::lock_guard lock(mu);
      if (stopping) return;
    }
    for (auto& s : schedules) {
      if (at < s.next_due) continue;
      const TimePoint tick = s.latest(at);
      s.next_due = s.next(at);
      if (tick <= s.last_tick) continue;
      s.last_tick = tick;
      guarded("schedule " + s.name, [&] {
        TaskSpec spec = s.task;
        spec.options.unique_key =
            fmt::format("schedule:{}:{}", s.name, tick.time_since_epoch().count());
        store::NewTask t = prepare(spec, at);
        t.max_waiting = 0;  // a schedule's tick is never refused: it would be lost
        const std::string type = t.type;
        const std::string queue = t.queue;
        if (store->fire_schedule(s.name, tick, std::move(t), at)) {
          if (cfg.hooks.enqueued) cfg.hooks.enqueued(type, queue);
          poke_dispatcher();
        }
      });
    }
  }

  void add_schedule(Schedule s) {
    {
      const std::lock_guard lock(mu);
      if (started) throw std::logic_error("runtime: schedules must be added before start()");
    }
    if (!valid_name(s.name)) throw std::invalid_argument("schedule '" + s.name + "': bad name");
    for (const auto& other : schedules) {
      if (other.name == s.name) {
        throw std::invalid_argument("schedule '" + s.name + "' is registered twice");
      }
    }
    (void)prepare(s.task, now());  // refuse a bad task now, not at every tick
    schedules.push_back(std::move(s));
  }

  // ---- lifecycle ----------------------------------------------------------

  void start() {
    {
      const std::lock_guard lock(mu);
      if (started) throw std::logic_error("runtime: start() called twice");
      started = true;
    }
    for (const auto& [name, type] : registry.types()) {
      if (type.options.rate_limit) {
        buckets.emplace(name,
                        std::make_unique<guard::TokenBucket>(type.options.rate_limit->per_second,
                                                             type.options.rate_limit->burst));
      }
    }
    const TimePoint at = now();
    for (auto& s : schedules) {
      // The first tick is the next one: a restart does not fire a tick twice.
      s.last_tick = s.latest(at);
      s.next_due = s.next(at);
    }
    for (auto& q : queues) {
      for (unsigned i = 0; i < q->cfg.concurrency; ++i) {
        q->workers.emplace_back([this, qp = q.get()] { work(*qp); });
      }
    }
    maintenance = std::jthread([this] { maintenance_loop(); });
    dispatcher = std::jthread([this] { dispatch_loop(); });
    cfg.logger.info("task runtime started", {{"owner", owner}, {"queues", queues.size()}});
  }

  void stop() {
    {
      const std::lock_guard lock(mu);
      if (!started || stopping) return;
      stopping = true;
    }
    dispatcher_cv.notify_all();
    if (dispatcher.joinable()) dispatcher.join();

    std::vector<std::shared_ptr<detail::Attempt>> unstarted;
    {
      const std::lock_guard lock(mu);
      for (auto& q : queues) {
        for (auto& a : q->buffer) {
          in_flight.erase(a->task.id);
          unstarted.push_back(std::move(a));
        }
        q->buffer.clear();
      }
    }
    release_all(unstarted);

    std::vector<std::shared_ptr<detail::Attempt>> running;
    {
      std::unique_lock lock(mu);
      if (!drained_cv.wait_for(lock, cfg.shutdown_grace, [&] { return in_flight.empty(); })) {
        for (auto& [id, a] : in_flight) running.push_back(a);
      }
    }
    if (!running.empty()) {
      cfg.logger.warn("shutdown grace over; stopping running tasks", {{"tasks", running.size()}});
    }
    for (auto& a : running) a->request_stop(StopReason::shutdown);
    running.clear();
    {
      std::unique_lock lock(mu);
      while (!drained_cv.wait_for(lock, cfg.stuck_after,
                                  [&] { return in_flight.empty() && pending_async == 0; })) {
        for (auto& [id, a] : in_flight) {
          a->log.error("shutdown waits for a handler that ignores its stop token");
        }
      }
      workers_exit = true;
    }
    for (auto& q : queues) {
      q->cv.notify_all();
      q->workers.clear();  // joins
    }
    {
      const std::lock_guard lock(mu);
      maintenance_exit = true;
    }
    maintenance_cv.notify_all();
    if (maintenance.joinable()) maintenance.join();
    cfg.logger.info("task runtime stopped", {{"owner", owner}});
  }
};

Runtime::Runtime(std::shared_ptr<store::Store> store, RuntimeConfig config)
    : impl_(std::make_unique<Impl>(std::move(store), std::move(config))) {}

Runtime::~Runtime() {
  stop();
  impl_->wait_async();  // enqueue_async callbacks may come without a start()
}

Registry& Runtime::registry() {
  return impl_->registry;
}

void Runtime::every(std::string name, milliseconds period, TaskSpec task) {
  if (period < milliseconds(1))
    throw std::invalid_argument("schedule '" + name + "': period < 1ms");
  const auto p = period.count();
  auto latest = [p](TimePoint t) {
    return TimePoint{milliseconds(t.time_since_epoch().count() / p * p)};
  };
  impl_->add_schedule({std::move(name), latest,
                       [latest, period](TimePoint t) { return latest(t) + period; },
                       std::move(task)});
}

void Runtime::cron(std::string name, std::string_view expression, TaskSpec task) {
  const auto schedule = CronSchedule::parse(expression);
  impl_->add_schedule({std::move(name), [schedule](TimePoint t) { return schedule.latest(t); },
                       [schedule](TimePoint t) { return schedule.next(t); }, std::move(task)});
}

store::Enqueued Runtime::enqueue(std::string_view type, boost::json::value payload,
                                 EnqueueOptions options) {
  std::vector<TaskSpec> one;
  one.push_back({std::string(type), std::move(payload), std::move(options)});
  return enqueue_batch(one).front();
}

void Runtime::enqueue_async(std::string_view type, boost::json::value payload,
                            EnqueueOptions options, EnqueueDone done) {
  const TimePoint at = impl_->now();
  std::vector<store::NewTask> prepared;
  prepared.push_back(
      impl_->prepare({std::string(type), std::move(payload), std::move(options)}, at));
  // The hook needs the type and queue after the store has taken the task.
  std::vector<store::NewTask> type_queue(1);
  type_queue.front().type = prepared.front().type;
  type_queue.front().queue = prepared.front().queue;
  impl_->async_started();
  impl_->store->enqueue_async(
      std::move(prepared), at,
      [impl = impl_.get(), type_queue = std::move(type_queue), done = std::move(done)](
          std::vector<store::Enqueued> out, std::exception_ptr error) {
        if (error || out.empty()) {
          if (!error) error = std::make_exception_ptr(std::logic_error("no answer"));
          done({}, std::move(error));  // moved on: see GroupCommit::Done
        } else {
          impl->after_enqueue(type_queue, out);
          done(std::move(out.front()), nullptr);
        }
        const std::lock_guard lock(impl->mu);
        impl->async_done_locked();  // the last touch: the runtime may go now
      });
}

std::vector<store::Enqueued> Runtime::enqueue_batch(const std::vector<TaskSpec>& tasks) {
  const TimePoint at = impl_->now();
  std::vector<store::NewTask> prepared;
  prepared.reserve(tasks.size());
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    try {
      prepared.push_back(impl_->prepare(tasks[i], at));
    } catch (const EnqueueError& e) {
      if (tasks.size() == 1) throw;
      throw EnqueueError(e.code(), fmt::format("tasks[{}]: {}", i, e.what()));
    }
  }
  auto done = impl_->store->enqueue(prepared, at);
  impl_->after_enqueue(prepared, done);
  return done;
}

GroupEnqueued Runtime::enqueue_group(const std::vector<TaskSpec>& members,
                                     std::optional<TaskSpec> completion) {
  const TimePoint at = impl_->now();
  std::vector<store::NewTask> prepared;
  prepared.reserve(members.size());
  for (const auto& t : members) prepared.push_back(impl_->prepare(t, at));
  store::GroupSpec group{store::new_task_id(at), std::nullopt};
  GroupEnqueued out;
  out.group_id = group.id;
  if (completion) {
    group.completion = impl_->prepare(*completion, at);
    group.completion->max_waiting = 0;  // runs when the members finish: never refused
    out.completion_id = group.completion->id;
  }
  out.members = impl_->store->enqueue_group(group, prepared, at);
  impl_->after_enqueue(prepared, out.members);
  return out;
}

store::CancelResult Runtime::cancel(std::string_view id) {
  const auto result = impl_->store->cancel(id, impl_->now());
  if (result == store::CancelResult::requested) {
    impl_->stop_local({std::string(id)}, StopReason::cancelled);
  }
  return result;
}

bool Runtime::retry(std::string_view id) {
  const bool ok = impl_->store->retry(id, impl_->now());
  if (ok) impl_->poke_dispatcher();
  return ok;
}

const std::vector<QueueConfig>& Runtime::queues() const {
  return impl_->cfg.queues;
}

void Runtime::pause(std::string_view queue) {
  impl_->store->set_paused(queue, true);
}
void Runtime::resume(std::string_view queue) {
  impl_->store->set_paused(queue, false);
  impl_->poke_dispatcher();
}

void Runtime::start() {
  impl_->start();
}
void Runtime::stop() {
  impl_->stop();
}
store::Store& Runtime::store() {
  return *impl_->store;
}
const std::string& Runtime::owner() const {
  return impl_->owner;
}

std::size_t Runtime::busy(std::string_view queue) const {
  const std::lock_guard lock(impl_->mu);
  for (const auto& q : impl_->queues) {
    if (q->cfg.name == queue) return q->busy;
  }
  return 0;
}

}  // namespace errand::tasks
