#include "errand/tasks/task_context.hpp"

#include <array>
#include <condition_variable>
#include <mutex>

#include "tasks/attempt.hpp"

namespace errand::tasks {

std::string_view to_string(StopReason reason) {
  constexpr std::array<std::string_view, 5> names = {"none", "cancelled", "timeout", "shutdown",
                                                     "lease_lost"};
  return names.at(static_cast<std::size_t>(reason));
}

const std::string& TaskContext::id() const {
  return a_->task.id;
}
const std::string& TaskContext::type() const {
  return a_->task.type;
}
const std::string& TaskContext::queue() const {
  return a_->task.queue;
}
const boost::json::value& TaskContext::payload() const {
  return a_->payload;
}
int TaskContext::attempt() const {
  return a_->task.attempt;
}
int TaskContext::max_attempts() const {
  return a_->task.max_attempts;
}
store::TimePoint TaskContext::deadline() const {
  return a_->deadline;
}
std::stop_token TaskContext::stop_token() const {
  return a_->stop.get_token();
}
StopReason TaskContext::stop_reason() const {
  return a_->reason.load();
}
const observe::TraceContext& TaskContext::trace() const {
  return a_->trace;
}
observe::Span TaskContext::start_span(std::string_view name, observe::SpanKind kind) const {
  if (a_->tracer == nullptr) return observe::Span(a_->trace.child());
  return a_->tracer->start_child(name, kind, a_->trace);
}
const std::string& TaskContext::request_id() const {
  return a_->task.request_id;
}
const observe::Logger& TaskContext::log() const {
  return a_->log;
}

bool TaskContext::sleep_for(std::chrono::milliseconds d) const {
  std::mutex mu;
  std::condition_variable_any cv;
  std::unique_lock lock(mu);
  cv.wait_for(lock, a_->stop.get_token(), d, [] { return false; });
  return !a_->stop.stop_requested();
}

namespace detail {
namespace {

// Under a.progress_mu.
void write_progress(Attempt& a, store::TimePoint at, Attempt::Progress p)
    ERRAND_REQUIRES(a.progress_mu) {
  a.progress_written = at;
  try {
    if (!a.store->set_progress(a.task.id, a.owner, p.percent, std::move(p.message), at)) {
      a.log.warn("progress not recorded: the task is no longer leased to this worker");
    }
  } catch (const std::exception& e) {
    a.log.warn("progress not recorded", {{"error", e.what()}});
  }
}

}  // namespace

void flush_progress(Attempt& a, store::TimePoint at, bool now) {
  if (!a.progress_waiting.load()) return;
  const errand::detail::MutexLock lock(a.progress_mu);
  if (!a.progress_pending) return;
  if (!now && a.progress_written && at < *a.progress_written + a.progress_interval) return;
  auto p = std::move(*a.progress_pending);
  a.progress_pending.reset();
  a.progress_waiting = false;
  write_progress(a, at, std::move(p));
}

}  // namespace detail

void TaskContext::progress(int percent, std::string_view message) {
  const auto at = a_->clock->now();
  const errand::detail::MutexLock lock(a_->progress_mu);
  detail::Attempt::Progress p{percent, std::string(message)};
  if (a_->progress_written && at < *a_->progress_written + a_->progress_interval) {
    a_->progress_pending = std::move(p);  // written at the next slot
    a_->progress_waiting = true;
    return;
  }
  a_->progress_pending.reset();
  a_->progress_waiting = false;
  detail::write_progress(*a_, at, std::move(p));
}

}  // namespace errand::tasks
