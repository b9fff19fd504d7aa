// Worker threads: take a claimed task from their queue's buffer, wait for a
// rate-limit turn, run the handler and hand what it answered to outcome.cpp.
#include <typeinfo>

#include <boost/core/demangle.hpp>
#include <boost/json.hpp>

#include "tasks/runtime/runtime_impl.hpp"

namespace errand::tasks {

namespace {

// A group's completion task (payload {"group", "payload", "members": [...]})
// links its attempt's span to each member's producer span: the fan-in.
void link_group_members(observe::Span& span, const std::string& payload) {
  boost::system::error_code ec;
  const auto v = boost::json::parse(payload, ec);
  const auto* o = ec ? nullptr : v.if_object();
  const auto* group = o != nullptr ? o->if_contains("group") : nullptr;
  const auto* members = o != nullptr ? o->if_contains("members") : nullptr;
  if (group == nullptr || !group->is_string() || members == nullptr || !members->is_array()) return;
  span.set("errand.group.id", group->get_string());
  for (const auto& m : members->get_array()) {
    const auto* tp = m.is_object() ? m.get_object().if_contains("traceparent") : nullptr;
    if (tp == nullptr || !tp->is_string()) continue;
    if (auto ctx = observe::TraceContext::parse(tp->get_string())) span.add_link(*ctx);
  }
}

}  // namespace

void Runtime::Impl::work(Queue& q) {
  while (true) {
    std::shared_ptr<detail::Attempt> a;
    {
      MutexLock lock(mu);
      lock.wait(q.cv, [&]() ERRAND_REQUIRES(mu) { return !q.buffer.empty() || workers_exit; });
      if (q.buffer.empty()) return;
      a = std::move(q.buffer.front());
      q.buffer.pop_front();
      ++q.busy;
    }
    const bool completing = run(a);
    {
      const MutexLock lock(mu);
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
void Runtime::Impl::forget(const std::shared_ptr<detail::Attempt>& a) {
  if (auto it = in_flight.find(a->task.id); it != in_flight.end() && it->second == a) {
    in_flight.erase(it);
  }
}

// Rate-limited types take turns from a token bucket. A task whose turn is in
// the future goes back to the store until then, holding its booked turn, so
// waiting tasks neither fail nor occupy workers.
bool Runtime::Impl::wait_for_turn(detail::Attempt& a, TimePoint at) {
  auto bucket = buckets.find(a.task.type);
  if (bucket == buckets.end()) return true;
  TimePoint turn{};
  {
    const MutexLock lock(mu);
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
    store->release(a.task.id, a.owner, turn, at);
  } catch (const std::exception& e) {
    a.log.error("release failed; the task returns when its lease expires", {{"error", e.what()}});
    store_failed("release");
  }
  return false;
}

// True when the outcome is still being committed (complete_async): the
// completion then forgets the attempt, not the worker.
bool Runtime::Impl::run(const std::shared_ptr<detail::Attempt>& ap) {
  auto& a = *ap;
  const TaskType* type = registry.find(a.task.type);
  const TimePoint start = now();
  if (cfg.tracer.enabled() && a.trace.sampled()) {  // otherwise no span, not even its name
    a.span = cfg.tracer.start("process " + a.task.type, observe::SpanKind::consumer, a.trace,
                              a.parent_span_id);
  }
  const AttemptInfo info{
      a.task.id,
      a.task.type,
      a.task.queue,
      a.task.attempt,
      a.task.max_attempts,
      std::max(milliseconds(0), std::chrono::duration_cast<milliseconds>(start - a.task.run_at)),
      a.trace.trace_id,
      a.task.request_id,
      a.span.recording()};
  if (a.span.recording()) {
    a.span.set("messaging.system", "errand")
        .set("messaging.operation.type", "process")
        .set("messaging.destination.name", a.task.queue)
        .set("messaging.message.id", a.task.id)
        .set("errand.task.type", a.task.type)
        .set("errand.task.attempt", a.task.attempt)
        .set("errand.task.max_attempts", a.task.max_attempts)
        .set("errand.node", owner)
        .set("errand.queue_wait_ms", info.waited.count());
    if (a.task.payload.find("\"members\"") != std::string::npos) {
      link_group_members(a.span, a.task.payload);
    }
  }
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
  if (!wait_for_turn(a, start)) {
    a.span.discard();  // not run: back in the store until its turn
    return false;
  }

  {
    const MutexLock lock(mu);
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
    a.span.record_exception(boost::core::demangle(typeid(e).name()), e.what());
    out = Outcome::fail_permanently(e.what());
  } catch (const json::BindError& e) {
    a.span.record_exception(boost::core::demangle(typeid(e).name()), e.what());
    out = Outcome::fail_permanently(std::string("payload: ") + e.what());
  } catch (const std::exception& e) {
    a.span.record_exception(boost::core::demangle(typeid(e).name()), e.what());
    out = Outcome::retry(e.what());
  } catch (...) {
    a.span.record_exception("unknown", "unknown exception");
    out = Outcome::retry("unknown exception");
  }
  const auto took = std::chrono::steady_clock::now() - t0;
  a.returned = true;
  // The last report held back by the interval goes in before the outcome.
  detail::flush_progress(a, now(), true);
  return finish(ap, info, out, took, type);
}
}  // namespace errand::tasks
