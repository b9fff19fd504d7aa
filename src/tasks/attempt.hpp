#pragma once
// Internal: one attempt of one task in this process, from claim to outcome.
// Shared (shared_ptr) between the worker running it and the maintenance thread
// that heartbeats it and enforces its deadline.

#include <atomic>
#include <chrono>
#include <optional>
#include <stop_token>
#include <string>

#include <boost/json/value.hpp>

#include "errand/observe/logger.hpp"
#include "errand/observe/trace_context.hpp"
#include "errand/observe/tracer.hpp"
#include "errand/store/store.hpp"
#include "errand/tasks/clock.hpp"
#include "errand/tasks/task_context.hpp"

#include "errand/detail/thread_annotations.hpp"

namespace errand::tasks::detail {

struct Attempt {
  store::TaskRecord task;
  boost::json::value payload;
  observe::TraceContext trace;  // this attempt's span: the consumer span's ids
  std::string parent_span_id;   // the producer span's
  const observe::Tracer* tracer = nullptr;
  observe::Span span;  // recording when tracing is on and the trace sampled
  observe::Logger log = observe::Logger::null();
  store::Store* store = nullptr;
  const Clock* clock = nullptr;
  std::string owner;

  std::stop_source stop;
  std::atomic<StopReason> reason{StopReason::none};
  // The handler has returned (its outcome may still be being recorded).
  std::atomic<bool> returned{false};

  // Guarded by the runtime's mutex.
  bool started = false;
  store::TimePoint deadline = store::TimePoint::max();
  bool stuck_reported = false;

  // Progress: at most one store write per `progress_interval`. A value
  // reported sooner waits in `progress_pending` (the latest wins) until the
  // next report after the interval, or the maintenance thread's next tick
  // after it (flush_progress), whichever comes first.
  std::chrono::milliseconds progress_interval{0};
  errand::detail::Mutex progress_mu;  // held across the write: writes stay in order
  struct Progress {
    int percent = 0;
    std::string message;
  };
  std::optional<Progress> progress_pending ERRAND_GUARDED_BY(progress_mu);
  std::optional<store::TimePoint> progress_written ERRAND_GUARDED_BY(progress_mu);
  std::atomic<bool> progress_waiting{false};  // progress_pending is set: a cheap check

  // The first reason wins: a task cancelled during shutdown stays "cancelled".
  void request_stop(StopReason why) {
    StopReason none = StopReason::none;
    reason.compare_exchange_strong(none, why);
    stop.request_stop();
  }
};

// Writes `a`'s pending progress if its interval has passed at `at` (the
// maintenance thread, every tick), or whenever `now` (the handler returned).
// Never throws: a failed write is logged.
void flush_progress(Attempt& a, store::TimePoint at, bool now = false);

}  // namespace errand::tasks::detail
