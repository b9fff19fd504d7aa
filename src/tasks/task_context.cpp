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

void TaskContext::progress(int percent, std::string_view message) {
  try {
    if (!a_->store->set_progress(a_->task.id, a_->owner, percent, std::string(message),
                                 a_->clock->now())) {
      a_->log.warn("progress not recorded: the task is no longer leased to this worker");
    }
  } catch (const std::exception& e) {
    a_->log.warn("progress not recorded", {{"error", e.what()}});
  }
}

}  // namespace errand::tasks
