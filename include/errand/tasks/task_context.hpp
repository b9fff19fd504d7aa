#pragma once
// TaskContext: what a task handler sees of its task and the world, for one
// attempt. It lives on the worker thread for the duration of the handler call;
// do not keep it past the handler's return (copy what you need).
//
// Cancellation is cooperative: stop_token() is requested when the task is
// cancelled, its deadline passes, the process shuts down, or the lease was
// lost; stop_reason() says which. Long handlers should check it (or use
// sleep_for(), which wakes on it) and return Outcome::cancelled().

#include <chrono>
#include <cstdint>
#include <stop_token>
#include <string>
#include <string_view>

#include <boost/json/value.hpp>

#include "errand/observe/logger.hpp"
#include "errand/observe/span.hpp"
#include "errand/observe/trace_context.hpp"
#include "errand/store/task_record.hpp"

namespace errand::tasks {

enum class StopReason : std::uint8_t { none, cancelled, timeout, shutdown, lease_lost };
[[nodiscard]] std::string_view to_string(StopReason reason);

namespace detail {
struct Attempt;
}

class TaskContext {
 public:
  explicit TaskContext(detail::Attempt& attempt) : a_(&attempt) {}
  TaskContext(const TaskContext&) = delete;
  TaskContext& operator=(const TaskContext&) = delete;

  [[nodiscard]] const std::string& id() const;
  [[nodiscard]] const std::string& type() const;
  [[nodiscard]] const std::string& queue() const;
  [[nodiscard]] const boost::json::value& payload() const;
  [[nodiscard]] int attempt() const;  // 1 for the first attempt
  [[nodiscard]] int max_attempts() const;
  // When the runtime will request stop for taking too long (TimePoint::max(): never).
  [[nodiscard]] store::TimePoint deadline() const;

  [[nodiscard]] std::stop_token stop_token() const;
  [[nodiscard]] bool stop_requested() const { return stop_token().stop_requested(); }
  [[nodiscard]] StopReason stop_reason() const;
  // Sleeps up to `d` of real time; returns false early if stop is requested.
  bool sleep_for(std::chrono::milliseconds d) const;

  // Records progress (0..100 and a short message) in the store, visible to
  // whoever reads the task. Coalesced: at most one store write per
  // RuntimeConfig::progress_interval; a value reported sooner is written when
  // the interval ends or the handler returns (the latest wins), so a chatty
  // handler cannot flood the store's writer. Never throws: a failed write is
  // logged.
  void progress(int percent, std::string_view message = {});

  // The trace of the request that enqueued the task, with a span of this attempt.
  [[nodiscard]] const observe::TraceContext& trace() const;
  // A span under this attempt's span, for the handler's own steps and the
  // calls it makes (send its context() as `traceparent`). Not recording
  // unless tracing is on and the trace is sampled (see observe::Tracer).
  [[nodiscard]] observe::Span start_span(
      std::string_view name, observe::SpanKind kind = observe::SpanKind::internal) const;
  [[nodiscard]] const std::string& request_id() const;
  // Stamps task_id, type, queue, attempt, trace_id, span_id, request_id on every line.
  [[nodiscard]] const observe::Logger& log() const;

 private:
  detail::Attempt* a_;
};

}  // namespace errand::tasks
