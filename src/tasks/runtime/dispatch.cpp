// The dispatcher thread: in polling order, claims tasks for every queue with
// idle workers (up to workers + prefetch, so the buffer stays bounded) and
// hands them to the queue's workers.
#include <algorithm>

#include <fmt/format.h>

#include "tasks/runtime/runtime_impl.hpp"

namespace errand::tasks {

std::vector<Runtime::Impl::Queue*> Runtime::Impl::polling_order(std::mt19937& rng) {
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

std::shared_ptr<detail::Attempt> Runtime::Impl::make_attempt(store::TaskRecord&& t) {
  auto a = std::make_shared<detail::Attempt>();
  auto parent = observe::TraceContext::parse(t.traceparent);
  if (parent) parent->tracestate = t.tracestate;
  a->trace = cfg.tracer.new_context(parent ? &*parent : nullptr);
  if (parent) a->parent_span_id = parent->span_id;
  a->tracer = &cfg.tracer;
  // The bound fields are a JSON object built (and freed, on the reporter)
  // per attempt: half the dispatcher's work per task. Not for a logger that
  // writes nothing at any level.
  a->log = !cfg.logger.enabled(observe::Level::error)
               ? cfg.logger
               : cfg.logger.with({{"task_id", t.id},
                                  {"type", t.type},
                                  {"queue", t.queue},
                                  {"attempt", t.attempt},
                                  {"trace_id", a->trace.trace_id},
                                  {"span_id", a->trace.span_id},
                                  {"request_id", t.request_id}});
  a->store = store.get();
  a->clock = clock.get();
  a->progress_interval = cfg.progress_interval;
  a->owner = t.lease_owner;  // the claim's fencing token, which every write of the attempt names
  a->task = std::move(t);
  return a;
}

void Runtime::Impl::dispatch_loop() {
  std::mt19937 rng{std::random_device{}()};
  // While claims fail (the store is away), the loop waits longer each time,
  // up to kMaxClaimBackoff, and logs the first failure and the recovery only.
  constexpr std::chrono::milliseconds kMaxClaimBackoff{5000};
  std::chrono::milliseconds backoff{0};
  while (true) {
    bool more = false;
    bool failed = false;
    for (Queue* q : polling_order(rng)) {
      std::size_t free = 0;
      {
        const MutexLock lock(mu);
        if (stopping) return;
        free = q->cfg.concurrency + q->cfg.prefetch - q->busy - q->buffer.size();
      }
      if (free == 0) continue;
      const std::size_t want = std::min(free, cfg.claim_batch);
      std::vector<store::TaskRecord> got;
      const TimePoint at = now();
      try {
        // Each claim's lease owner is new (NODE~LIFE.SEQ): a fencing token,
        // so an attempt of this node whose lease expired cannot write after
        // the task was claimed again, even by this node.
        got = store->claim(
            q->cfg.name, want,
            {fmt::format("{}~{}.{}", owner, life, ++claim_seq), at + cfg.lease, owner}, at);
      } catch (const std::exception& e) {
        if (backoff.count() == 0 && !failed) {
          cfg.logger.error("claim failed; retrying with backoff until the store answers",
                           {{"queue", q->cfg.name}, {"error", e.what()}});
        }
        failed = true;
        store_failed("claim");
        continue;
      }
      if (backoff.count() > 0) {
        cfg.logger.info("claims work again", {{"queue", q->cfg.name}});
        backoff = std::chrono::milliseconds(0);
      }
      if (got.empty()) continue;
      more = more || got.size() == want;
      std::vector<std::shared_ptr<detail::Attempt>> late;
      {
        const MutexLock lock(mu);
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
    if (failed) {
      backoff = std::clamp(backoff * 2, std::max(cfg.poll_interval, std::chrono::milliseconds(50)),
                           kMaxClaimBackoff);
    }
    MutexLock lock(mu);
    if (stopping) return;
    if (failed) {
      // Only a stop ends this wait early: a wake-up is new work, which the
      // store that just failed cannot take either.
      lock.wait_for(dispatcher_cv, backoff, [&]() ERRAND_REQUIRES(mu) { return stopping; });
    } else if (!more) {
      lock.wait_for(dispatcher_cv, cfg.poll_interval,
                    [&]() ERRAND_REQUIRES(mu) { return wake || stopping; });
    }
    wake = false;
  }
}

// Claimed but never started: back to pending, attempt not counted.
void Runtime::Impl::release_all(const std::vector<std::shared_ptr<detail::Attempt>>& attempts) {
  for (const auto& a : attempts) {
    try {
      const TimePoint at = now();
      store->release(a->task.id, a->owner, at, at);
    } catch (const std::exception& e) {
      store_failed("release");
      a->log.error("release failed; the task returns when its lease expires",
                   {{"error", e.what()}});
    }
  }
}
}  // namespace errand::tasks
