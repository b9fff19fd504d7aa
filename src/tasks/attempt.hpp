#pragma once
// Internal: one attempt of one task in this process, from claim to outcome.
// Shared (shared_ptr) between the worker running it and the maintenance thread
// that heartbeats it and enforces its deadline.

#include <atomic>
#include <stop_token>
#include <string>

#include <boost/json/value.hpp>

#include "errand/observe/logger.hpp"
#include "errand/observe/trace_context.hpp"
#include "errand/observe/tracer.hpp"
#include "errand/store/store.hpp"
#include "errand/tasks/clock.hpp"
#include "errand/tasks/task_context.hpp"

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

  // Guarded by the runtime's mutex.
  bool started = false;
  store::TimePoint deadline = store::TimePoint::max();
  bool stuck_reported = false;

  // The first reason wins: a task cancelled during shutdown stays "cancelled".
  void request_stop(StopReason why) {
    StopReason none = StopReason::none;
    reason.compare_exchange_strong(none, why);
    stop.request_stop();
  }
};

}  // namespace errand::tasks::detail
