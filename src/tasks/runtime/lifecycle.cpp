// Start (threads, buckets, schedules' first ticks) and the two-phase stop:
// stop claiming, release what never started, wait shutdown_grace, then stop
// running handlers and wait for every outcome and store callback.
#include "detail/thread_name.hpp"
#include "errand/detail/stuck_exit.hpp"
#include "tasks/runtime/runtime_impl.hpp"

namespace errand::tasks {

void Runtime::Impl::start() {
  {
    const MutexLock lock(mu);
    if (started) throw std::logic_error("runtime: start() called twice");
    started = true;
  }
  registry.freeze();  // workers read it without locks from here on
  for (const auto& [name, type] : registry.types()) {
    if (type.options.rate_limit) {
      buckets.emplace(name,
                      std::make_unique<guard::TokenBucket>(type.options.rate_limit->per_second,
                                                           type.options.rate_limit->burst));
    }
  }
  const TimePoint at = now();
  started_at = at;
  for (auto& s : schedules) {
    // The first tick is the next one: a restart does not fire a tick twice.
    s.last_tick = s.latest(at);
    s.next_due = s.next(at);
  }
  for (auto& q : queues) {
    for (unsigned i = 0; i < q->cfg.concurrency; ++i) {
      q->workers.emplace_back([this, qp = q.get()] { work(*qp); });
      errand::detail::name_thread(q->workers.back(), "errand-worker");
    }
  }
  maintenance = std::jthread([this, at] { maintenance_loop(at); });
  errand::detail::name_thread(maintenance, "errand-upkeep");
  reporter = std::jthread([this] { report_loop(); });
  errand::detail::name_thread(reporter, "errand-report");
  if (!queues.empty()) {
    dispatcher = std::jthread([this] { dispatch_loop(); });
    errand::detail::name_thread(dispatcher, "errand-dispatch");
  }
  cfg.logger.info("task runtime started", {{"owner", owner}, {"queues", queues.size()}});
}

void Runtime::Impl::stop() {
  {
    const MutexLock lock(mu);
    if (!started || stopping) return;
    stopping = true;
  }
  dispatcher_cv.notify_all();
  if (dispatcher.joinable()) dispatcher.join();

  std::vector<std::shared_ptr<detail::Attempt>> unstarted;
  {
    const MutexLock lock(mu);
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
    MutexLock lock(mu);
    if (!lock.wait_for(drained_cv, cfg.shutdown_grace,
                       [&]() ERRAND_REQUIRES(mu) { return in_flight.empty(); })) {
      for (auto& [id, a] : in_flight) running.push_back(a);
    }
  }
  if (!running.empty()) {
    cfg.logger.warn("shutdown grace over; stopping running tasks", {{"tasks", running.size()}});
  }
  for (auto& a : running) a->request_stop(StopReason::shutdown);
  running.clear();
  {
    MutexLock lock(mu);
    const auto drained = [&]() ERRAND_REQUIRES(mu) {
      return in_flight.empty() && pending_async == 0;
    };
    if (!lock.wait_for(drained_cv, cfg.shutdown_abandon, drained)) {
      // A worker thread that never returns cannot be joined, and the runtime
      // cannot go while it runs: the process ends instead. Each such task
      // comes back to another worker when its lease expires.
      std::size_t stuck = 0;
      for (auto& [id, a] : in_flight) {
        if (a->returned.load()) continue;  // only recording its outcome
        ++stuck;
        a->log.error(
            "shutdown gives up on a handler that ignores its stop token; the task "
            "returns when its lease expires");
      }
      if (stuck > 0) {
        errand::detail::exit_stuck(
            cfg.logger, "task runtime cannot stop: handlers ignore their stop token; exiting",
            {{"tasks", stuck}});
      }
      // Outcomes still being written to a store that is away: those retries
      // end with the lease (then the task counts as lost), so wait that long.
      cfg.logger.warn("shutdown waits for the store to record outcomes, up to the lease",
                      {{"tasks", in_flight.size()}, {"store_operations", pending_async}});
      if (!lock.wait_for(drained_cv, cfg.lease + std::chrono::seconds(5), drained)) {
        errand::detail::exit_stuck(
            cfg.logger, "task runtime cannot stop: the store does not answer; exiting",
            {{"tasks", in_flight.size()}, {"store_operations", pending_async}});
      }
    }
    workers_exit = true;
  }
  for (auto& q : queues) {
    q->cv.notify_all();
    q->workers.clear();  // joins
  }
  {
    const MutexLock lock(mu);
    maintenance_exit = true;
  }
  maintenance_cv.notify_all();
  if (maintenance.joinable()) maintenance.join();
  {
    const MutexLock lock(mu);
    reporter_exit = true;  // everything it had to report is reported: pending_async is 0
  }
  reporter_cv.notify_all();
  if (reporter.joinable()) reporter.join();
  try {
    store->remove_node(owner);  // gone at once from /v1/nodes, not after the silence
  } catch (const std::exception& e) {
    cfg.logger.warn("could not remove this node from the registry; it drops out after the silence",
                    {{"error", e.what()}});
  }
  cfg.logger.info("task runtime stopped", {{"owner", owner}});
}

void Runtime::start() {
  impl_->start();
}
bool Runtime::stopping() const {
  const Impl::MutexLock lock(impl_->mu);
  return impl_->stopping;
}

void Runtime::stop() {
  impl_->stop();
}
}  // namespace errand::tasks
