// The maintenance thread, every tick: deadlines (stop tokens) and stuck
// handlers, held-back progress, lease heartbeats (cancel requests from other
// processes arrive here), reclaim of expired leases, periodic schedules,
// retention purge.
#include "tasks/runtime/runtime_impl.hpp"

namespace errand::tasks {

void Runtime::Impl::maintenance_loop(TimePoint begin) {
  // Anchored at start(), not at whenever this thread first runs: leases were
  // granted from then on, and a clock that moved before the thread ran must
  // not push the first heartbeat past them.
  TimePoint next_heartbeat = begin + cfg.lease / 3;
  TimePoint next_reclaim = begin;
  TimePoint next_purge = begin;
  TimePoint next_node = begin;
  while (true) {
    {
      MutexLock lock(mu);
      if (lock.wait_for(maintenance_cv, cfg.maintenance_tick,
                        [&]() ERRAND_REQUIRES(mu) { return maintenance_exit; })) {
        return;
      }
    }
    const TimePoint at = now();
    watchdog(at);
    retry_completions();
    flush_progress(at);
    if (at >= next_heartbeat) {
      heartbeat(at);
      next_heartbeat = at + cfg.lease / 3;
    }
    if (at >= next_reclaim) {
      guarded("reclaim", "reclaim", [&] {
        if (const auto n = store->reclaim_expired(at); n > 0) {
          cfg.logger.warn("reclaimed tasks whose worker stopped heartbeating", {{"tasks", n}});
          poke_dispatcher();
        }
      });
      next_reclaim = at + cfg.lease / 2;
    }
    fire_schedules(at);
    if (at >= next_node) {
      publish_node(at);
      next_node = at + cfg.node_heartbeat;
    }
    if (at >= next_purge) {
      bool behind = false;
      guarded("purge", "purge", [&] {
        std::size_t n = 0;
        for (int round = 0; round < kPurgeBatches; ++round) {
          const auto k = store->purge_final(at - cfg.retention, kPurgeBatch);
          n += k;
          if (k < kPurgeBatch) break;
          behind = round == kPurgeBatches - 1;
        }
        if (n > 0) cfg.logger.debug("purged final tasks past retention", {{"tasks", n}});
      });
      // kPurgeBatches a tick at most (each is a write that shares the writer
      // with the foreground); more due: go on next tick rather than
      // next interval, so a store finishing more tasks per interval than
      // one tick purges does not grow without bound (bench/soak.sh found it
      // did).
      next_purge = behind ? at : at + cfg.purge_interval;
      const MutexLock lock(mu);
      std::erase_if(reservations, [&](const auto& r) { return r.second + cfg.lease < at; });
    }
  }
}

// Progress held back by the interval, written once it has passed: at most
// kProgressPerTick a tick, so a slow store delays the deadlines and
// heartbeats of this thread by a bounded amount (the rest waits a tick; the
// handler's return writes its own last report anyway).
void Runtime::Impl::flush_progress(TimePoint at) {
  constexpr std::size_t kProgressPerTick = 8;
  std::vector<std::shared_ptr<detail::Attempt>> waiting;
  {
    const MutexLock lock(mu);
    for (const auto& [id, a] : in_flight) {
      if (waiting.size() == kProgressPerTick) break;
      if (a->progress_waiting.load()) waiting.push_back(a);
    }
  }
  for (auto& a : waiting) detail::flush_progress(*a, at);
}

void Runtime::Impl::publish_node(TimePoint at) {
  guarded("heartbeat_node", "node heartbeat", [&] { store->heartbeat_node(node_info(at)); });
}

void Runtime::Impl::watchdog(TimePoint at) {
  std::vector<std::shared_ptr<detail::Attempt>> overdue;
  std::vector<std::shared_ptr<detail::Attempt>> stuck;
  {
    const MutexLock lock(mu);
    for (auto& [id, a] : in_flight) {
      // A handler that returned is neither overdue nor stuck: only its
      // outcome is still being recorded (the store may be away a while).
      if (!a->started || a->returned.load() || at < a->deadline) continue;
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

// One extend_leases per lease owner (each claim has its own: the fencing
// token), usually a handful.
void Runtime::Impl::heartbeat(TimePoint at) {
  std::map<std::string, std::vector<std::string>, std::less<>> by_owner;
  {
    const MutexLock lock(mu);
    for (const auto& [id, a] : in_flight) by_owner[a->owner].push_back(id);
  }
  for (const auto& [lease_owner, ids] : by_owner) {
    store::HeartbeatResult hb;
    try {
      hb = store->extend_leases(ids, {lease_owner, at + cfg.lease, owner}, at);
    } catch (const std::exception& e) {
      cfg.logger.error("heartbeat failed", {{"error", e.what()}, {"tasks", ids.size()}});
      store_failed("extend_leases");
      return;
    }
    stop_local(hb.cancel_requested, StopReason::cancelled);
    stop_local(hb.lost, StopReason::lease_lost);
  }
}

void Runtime::Impl::stop_local(const std::vector<std::string>& ids, StopReason why) {
  for (const auto& id : ids) {
    std::shared_ptr<detail::Attempt> a;
    {
      const MutexLock lock(mu);
      auto it = in_flight.find(id);
      if (it == in_flight.end()) continue;
      a = it->second;
    }
    a->request_stop(why);
  }
}
}  // namespace errand::tasks
