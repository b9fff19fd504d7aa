// Recording an attempt's outcome in the store, then its log line and the
// after_attempt hook. The stop reason decides first (shutdown → requeued,
// cancel → cancelled, timeout → a failed attempt, lease lost → nothing), then
// what the handler answered.
#include <algorithm>
#include <array>
#include <cmath>
#include <iterator>

#include <fmt/format.h>
#include <boost/json.hpp>

#include "errand/json/text.hpp"
#include "tasks/runtime/runtime_impl.hpp"

namespace errand::tasks {

std::string_view to_string(AttemptOutcome outcome) {
  constexpr std::array<std::string_view, 7> names = {"succeeded", "retrying", "dead", "cancelled",
                                                     "requeued",  "snoozed",  "lost"};
  return names.at(static_cast<std::size_t>(outcome));
}

namespace {

// The store call that records `outcome` (for Hooks::store_failed).
std::string_view store_call_of(AttemptOutcome outcome) {
  switch (outcome) {
    case AttemptOutcome::succeeded: return "complete";
    case AttemptOutcome::retrying:
    case AttemptOutcome::dead: return "fail";
    case AttemptOutcome::cancelled: return "finish_cancelled";
    case AttemptOutcome::requeued:
    case AttemptOutcome::snoozed: return "release";
    case AttemptOutcome::lost: break;
  }
  return "none";
}

}  // namespace

// At least a second: a handler snoozing with 0 would spin claim/release.
milliseconds Runtime::Impl::snooze_delay(const Outcome& out) {
  return std::clamp(out.delay().value_or(milliseconds(0)), milliseconds(1000), kMaxHorizon);
}

// Records the outcome. A success is committed without waiting
// (complete_async): the worker goes on to its next task while the store's
// group commit takes this one, and the log line and after_attempt hook
// follow the commit (on the reporter thread, see report_loop). Returns true then.
bool Runtime::Impl::finish(const std::shared_ptr<detail::Attempt>& ap, const AttemptInfo& info,
                           const Outcome& out, std::chrono::nanoseconds took,
                           const TaskType* type) {
  auto& a = *ap;
  const TimePoint at = now();
  const StopReason reason = a.reason.load();
  const auto& id = a.task.id;
  AttemptOutcome recorded_as = AttemptOutcome::lost;
  std::string error = out.error();
  bool ok = true;
  auto fail_or_retry = [&](std::optional<milliseconds> delay) {
    if (a.task.attempt >= a.task.max_attempts) {
      recorded_as = AttemptOutcome::dead;
      ok = retrying_store(a, [&] { return store->fail(id, a.owner, error, std::nullopt, at); });
      return;
    }
    const RetryPolicy policy =
        type != nullptr && type->options.retry ? *type->options.retry : cfg.retry;
    recorded_as = AttemptOutcome::retrying;
    const auto wait =
        std::clamp(delay.value_or(policy.delay(a.task.attempt)), milliseconds(0), kMaxHorizon);
    ok = retrying_store(a, [&] { return store->fail(id, a.owner, error, at + wait, at); });
    if (ok && a.span.recording()) {
      a.span.add_event("errand.retry",
                       {{"errand.retry.reason", error},
                        {"errand.retry.delay_ms", std::int64_t{wait.count()}},
                        {"errand.retry.next_attempt", std::int64_t{a.task.attempt + 1}}});
    }
  };
  if (out.kind() == Outcome::Kind::done) {
    async_started();
    try {
      std::string result = json::to_text(out.result());
      store->complete_async(
          id, a.owner, result, at,
          // `held` is not const (`ap` is a const reference): it moves to the
          // reporter, whose reference is then the attempt's last.
          [this, held = std::shared_ptr<detail::Attempt>(ap), info, took, result, at](
              bool stored, const std::exception_ptr& failure) mutable {
            if (failure && transient(failure)) {
              // The store is away: the maintenance thread tries again while
              // the lease may hold (the attempt stays in flight, so
              // heartbeats keep the lease once the store is back). Up to a
              // lease from when the outcome was reached, not from when the
              // store answered: the lease runs from the former.
              held->log.warn("recording the success failed; retrying while the lease holds",
                             {{"error", describe(failure)}});
              const MutexLock lock(mu);
              const auto now = std::chrono::steady_clock::now();
              retried_completions.push_back(
                  {held, info, took, result, at + cfg.lease, now, milliseconds(50)});
              return;  // still pending_async: stop() waits for the retries
            }
            // Notified under the lock: once the reporter has reported it,
            // stop() may finish and the runtime go, so nothing here may
            // touch it after the lock is released.
            std::string why = failure ? describe(failure) : std::string();
            const MutexLock lock(mu);
            committed.push_back({std::move(held), info, took, stored, std::move(why)});
            if (committed.size() == 1) reporter_cv.notify_one();
          });
      return true;
    } catch (const std::exception& e) {  // it could not even be queued
      {
        const MutexLock lock(mu);
        async_done_locked();
      }
      report(a, info, recorded(a, AttemptOutcome::succeeded, true, e.what()), {}, took,
             std::nullopt);
      return false;
    }
  }
  std::string failure;
  try {
    if (reason == StopReason::shutdown) {
      recorded_as = AttemptOutcome::requeued;
      ok = retrying_store(a, [&] { return store->release(id, a.owner, at, at); });
    } else if (reason == StopReason::lease_lost) {
      recorded_as = AttemptOutcome::lost;
    } else if (reason == StopReason::timeout) {
      error = fmt::format("timed out after {} ms", a.task.timeout.count());
      fail_or_retry(std::nullopt);
    } else if (reason == StopReason::cancelled || out.kind() == Outcome::Kind::cancelled) {
      recorded_as = AttemptOutcome::cancelled;
      ok = retrying_store(a, [&] { return store->finish_cancelled(id, a.owner, at); });
    } else if (out.kind() == Outcome::Kind::snooze) {
      recorded_as = AttemptOutcome::snoozed;
      ok = retrying_store(a,
                          [&] { return store->release(id, a.owner, at + snooze_delay(out), at); });
    } else if (out.kind() == Outcome::Kind::fail_permanently) {
      recorded_as = AttemptOutcome::dead;
      ok = retrying_store(a, [&] { return store->fail(id, a.owner, error, std::nullopt, at); });
    } else {
      fail_or_retry(out.delay());
    }
  } catch (const std::exception& e) {
    failure = e.what();
  }
  report(a, info, recorded(a, recorded_as, ok, failure), error, took,
         out.kind() == Outcome::Kind::snooze ? std::optional(snooze_delay(out)) : std::nullopt);
  return false;
}

void Runtime::Impl::report_loop() {
  std::vector<Committed> batch;
  while (true) {
    {
      MutexLock lock(mu);
      lock.wait(reporter_cv,
                [&]() ERRAND_REQUIRES(mu) { return !committed.empty() || reporter_exit; });
      if (committed.empty()) return;
      batch.swap(committed);
    }
    for (auto& c : batch) {
      // Hooks must not throw; one that does (or a log line out of memory)
      // loses its report, not the forgetting below that stop() waits for.
      try {
        report(*c.attempt, c.info,
               recorded(*c.attempt, AttemptOutcome::succeeded, c.stored, c.failure), {}, c.took,
               std::nullopt);
      } catch (...) {  // NOLINT(bugprone-empty-catch): see above
      }
    }
    {
      const MutexLock lock(mu);
      for (auto& c : batch) {
        forget(c.attempt);
        async_done_locked();
      }
    }
    // The attempts end here, outside the lock: this thread holds their last
    // references, and stop() joins it before the runtime goes.
    batch.clear();
  }
}

// What recording an outcome came to: `outcome`, or lost (and a log line)
// when the store failed (`failure` says how) or the lease was not ours.
AttemptOutcome Runtime::Impl::recorded(detail::Attempt& a, AttemptOutcome outcome, bool ok,
                                       const std::string& failure) const {
  if (!failure.empty()) {
    store_failed(store_call_of(outcome));
    a.log.error("recording the outcome failed; the task returns when its lease expires",
                {{"error", failure}, {"outcome", to_string(outcome)}});
    return AttemptOutcome::lost;
  }
  if (!ok) {
    a.log.warn("the task is no longer leased to this worker; its outcome was not recorded",
               {{"outcome", to_string(outcome)}});
    return AttemptOutcome::lost;
  }
  return outcome;
}

void Runtime::Impl::report(detail::Attempt& a, const AttemptInfo& info, AttemptOutcome outcome,
                           const std::string& error, std::chrono::nanoseconds took,
                           std::optional<milliseconds> snoozed) const {
  // Seconds to the millisecond: what a person or a log query needs.
  const double secs = std::round(std::chrono::duration<double>(took).count() * 1000.0) / 1000.0;
  if (outcome == AttemptOutcome::succeeded) {
    a.log.info("task succeeded", {{"duration_s", secs}});
  } else if (outcome == AttemptOutcome::snoozed) {
    a.log.info("task snoozed",
               {{"reason", error}, {"delay_ms", snoozed.value_or(milliseconds(0)).count()}});
  } else {
    a.log.warn("task " + std::string(to_string(outcome)), {{"duration_s", secs}, {"error", error}});
  }
  if (a.span.recording()) {
    a.span.set("errand.task.outcome", to_string(outcome));
    switch (outcome) {
      case AttemptOutcome::succeeded:
      case AttemptOutcome::snoozed:
      case AttemptOutcome::requeued:
      case AttemptOutcome::cancelled: break;
      case AttemptOutcome::retrying:
      case AttemptOutcome::dead:
      case AttemptOutcome::lost:
        a.span.set_error(error.empty() ? std::string(to_string(outcome)) : error);
        break;
    }
  }
  a.span.end();
  if (cfg.hooks.after_attempt) cfg.hooks.after_attempt(info, outcome, took);
}

std::string Runtime::Impl::describe(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  } catch (...) {
    return "unknown error";
  }
}
bool Runtime::Impl::transient(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const store::StoreError& x) {
    return transient(x.code());
  } catch (...) {
    return false;
  }
}

bool Runtime::Impl::transient(store::StoreError::Code code) {
  return code == store::StoreError::Code::unavailable || code == store::StoreError::Code::busy;
}

// Successes whose commit failed while the store was away, tried again.
void Runtime::Impl::retry_completions() {
  std::vector<RetriedCompletion> due;
  const auto now = std::chrono::steady_clock::now();
  {
    const MutexLock lock(mu);
    auto split = std::partition(retried_completions.begin(), retried_completions.end(),
                                [&](const RetriedCompletion& r) { return r.next_try > now; });
    std::move(split, retried_completions.end(), std::back_inserter(due));
    retried_completions.erase(split, retried_completions.end());
  }
  for (auto& r : due) {
    bool ok = false;
    std::string failure;
    try {
      ok = store->complete(r.attempt->task.id, r.attempt->owner, r.result, this->now());
    } catch (const store::StoreError& e) {
      if (transient(e.code()) && this->now() < r.give_up) {
        r.next_try = now + r.backoff;
        r.backoff = std::min(r.backoff * 2, milliseconds(1000));
        const MutexLock lock(mu);
        retried_completions.push_back(std::move(r));
        continue;
      }
      failure = e.what();
    } catch (const std::exception& e) {
      failure = e.what();
    }
    report(*r.attempt, r.info, recorded(*r.attempt, AttemptOutcome::succeeded, ok, failure), {},
           r.took, std::nullopt);
    const MutexLock lock(mu);
    forget(r.attempt);
    async_done_locked();
  }
}

}  // namespace errand::tasks
