// Enqueue: a TaskSpec is checked against its type and the limits, becomes a
// store::NewTask, and is handed to the store (blocking, batched, grouped or by
// callback). Nothing reaches the store unless every check passed.
#include <fmt/format.h>
#include <boost/json.hpp>

#include "errand/detail/quote.hpp"
#include "errand/json/text.hpp"
#include "tasks/runtime/runtime_impl.hpp"

namespace errand::tasks {

namespace {

[[noreturn]] void refuse(EnqueueError::Code code, const std::string& message) {
  throw EnqueueError(code, message);
}

}  // namespace

store::NewTask Runtime::Impl::prepare(const TaskSpec& spec, TimePoint at,
                                      observe::Span* producer) const {
  const TaskType* type = registry.find(spec.type);
  if (type == nullptr) {
    refuse(EnqueueError::Code::unknown_type,
           "unknown task type '" + errand::detail::quote(spec.type) + "'");
  }
  if (type->check) {
    try {
      type->check(spec.payload);
    } catch (const json::BindError& e) {
      refuse(EnqueueError::Code::invalid_payload, std::string("payload: ") + e.what());
    }
  }
  const auto& o = spec.options;
  store::NewTask t;
  t.payload = json::to_text(spec.payload);
  if (t.payload.size() > cfg.max_payload_bytes) {
    refuse(EnqueueError::Code::payload_too_large,
           fmt::format("payload is {} bytes; the limit is {}", t.payload.size(),
                       cfg.max_payload_bytes));
  }
  t.queue = o.queue.value_or(type->options.queue);
  if (!valid_name(t.queue)) {
    refuse(EnqueueError::Code::invalid_option,
           "queue: names are 1-128 characters of A-Z a-z 0-9 . _ : -");
  }
  t.priority = o.priority.value_or(type->options.priority);
  if (t.priority < -kMaxPriority || t.priority > kMaxPriority) {
    refuse(EnqueueError::Code::invalid_option,
           fmt::format("priority must be within [-{0}, {0}]", kMaxPriority));
  }
  t.max_attempts = o.max_attempts.value_or(type->options.max_attempts);
  if (t.max_attempts < 1 || t.max_attempts > cfg.max_attempts_limit) {
    refuse(EnqueueError::Code::invalid_option,
           fmt::format("max_attempts must be within [1, {}]", cfg.max_attempts_limit));
  }
  t.timeout = o.timeout.value_or(type->options.timeout.value_or(cfg.default_timeout));
  if (t.timeout < milliseconds(0) || t.timeout > kMaxHorizon) {
    refuse(EnqueueError::Code::invalid_option, "timeout must be within 0 and 10 years");
  }
  if (o.delay && o.run_at) {
    refuse(EnqueueError::Code::invalid_option, "give delay or run_at, not both");
  }
  if (o.delay && (*o.delay < milliseconds(0) || *o.delay > kMaxHorizon)) {
    refuse(EnqueueError::Code::invalid_option, "delay must be within 0 and 10 years");
  }
  if (o.run_at && (*o.run_at > at + kMaxHorizon || *o.run_at < at - kMaxHorizon)) {
    refuse(EnqueueError::Code::invalid_option, "run_at must be within 10 years of now");
  }
  t.run_at = o.run_at ? *o.run_at : at + o.delay.value_or(milliseconds(0));
  if (o.unique_key.size() > kMaxUniqueKey) {
    refuse(EnqueueError::Code::invalid_option,
           fmt::format("unique_key is longer than {} bytes", kMaxUniqueKey));
  }
  t.unique_key = o.unique_key;
  const auto limit = cfg.queue_max_waiting.find(t.queue);
  t.max_waiting = limit == cfg.queue_max_waiting.end() ? cfg.max_waiting : limit->second;
  t.type = spec.type;
  t.request_id = o.request_id;
  t.id = store::new_task_id(at);
  if (!cfg.tracer.enabled()) {
    // The request's own span is the task's parent, as before tracing. (Not
    // value_or(generate()): that drew two random ids for every request.)
    if (o.trace) {
      t.traceparent = o.trace->to_traceparent();
      t.tracestate = o.trace->tracestate;
    } else {
      t.traceparent = observe::TraceContext::generate().to_traceparent();
    }
    return t;
  }
  // The task's parent is its producer span, a child of the request's.
  auto self = cfg.tracer.new_context(o.trace ? &*o.trace : nullptr);
  t.traceparent = self.to_traceparent();
  t.tracestate = self.tracestate;
  if (producer != nullptr) {
    *producer = cfg.tracer.start("enqueue " + t.type, observe::SpanKind::producer, std::move(self),
                                 o.trace ? std::string_view(o.trace->span_id) : std::string_view());
    if (producer->recording()) {
      producer->set("messaging.system", "errand")
          .set("messaging.operation.type", "send")
          .set("messaging.destination.name", t.queue)
          .set("messaging.message.id", t.id)
          .set("errand.task.type", t.type);
      if (!t.unique_key.empty()) producer->set("errand.task.unique_key", t.unique_key);
    }
  }
  return t;
}

namespace {

// Ends the producer spans of an enqueue with what the store answered.
void end_producers(std::vector<observe::Span>& spans, const std::vector<store::Enqueued>* done,
                   const std::exception_ptr& error) {
  for (std::size_t i = 0; i < spans.size(); ++i) {
    auto& span = spans[i];
    if (!span.recording()) continue;
    if (error) {
      try {
        std::rethrow_exception(error);
      } catch (const std::exception& e) {
        span.set_error(e.what());
      } catch (...) {
        span.set_error("unknown error");
      }
    } else if (done != nullptr && i < done->size() && !(*done)[i].created) {
      // A unique key held by another task: that one's id is the answer.
      span.set("errand.task.duplicate_of", (*done)[i].id);
    }
    span.end();
  }
}

}  // namespace

void Runtime::Impl::after_enqueue(const std::vector<store::NewTask>& tasks,
                                  const std::vector<store::Enqueued>& done) {
  bool local = false;
  for (std::size_t i = 0; i < done.size() && i < tasks.size(); ++i) {
    if (!done[i].created) continue;
    if (cfg.hooks.enqueued) cfg.hooks.enqueued(tasks[i].type, tasks[i].queue);
    local = local || (done[i].state == store::TaskState::pending && find_queue(tasks[i].queue));
  }
  if (local) poke_dispatcher();
}

store::Enqueued Runtime::enqueue(std::string_view type, boost::json::value payload,
                                 EnqueueOptions options) {
  std::vector<TaskSpec> one;
  one.push_back({std::string(type), std::move(payload), std::move(options)});
  return enqueue_batch(one).front();
}

void Runtime::enqueue_async(std::string_view type, boost::json::value payload,
                            EnqueueOptions options, EnqueueDone done) {
  const TimePoint at = impl_->now();
  // What the answer needs, in one allocation (and no producer span unless
  // tracing is on: it was two allocations per enqueue).
  struct State {
    Impl* impl;
    EnqueueDone done;
    std::vector<observe::Span> spans;        // the producer span, when tracing
    std::vector<store::NewTask> type_queue;  // the enqueued hook's type and queue
  };
  auto st = std::make_shared<State>(State{impl_.get(), std::move(done), {}, {}});
  if (impl_->cfg.tracer.enabled()) st->spans.resize(1);
  std::vector<store::NewTask> prepared;
  prepared.push_back(impl_->prepare({std::string(type), std::move(payload), std::move(options)}, at,
                                    st->spans.empty() ? nullptr : &st->spans.front()));
  st->type_queue.resize(1);
  st->type_queue.front().type = prepared.front().type;
  st->type_queue.front().queue = prepared.front().queue;
  impl_->async_started();
  impl_->store->enqueue_async(
      std::move(prepared), at, [st](std::vector<store::Enqueued> out, std::exception_ptr error) {
        auto* impl = st->impl;
        end_producers(st->spans, &out, error);
        if (error || out.empty()) {
          if (!error) error = std::make_exception_ptr(std::logic_error("no answer"));
          st->done({}, std::move(error));  // moved on: see GroupCommit::Done
        } else {
          impl->after_enqueue(st->type_queue, out);
          st->done(std::move(out.front()), nullptr);
        }
        const Impl::MutexLock lock(impl->mu);
        impl->async_done_locked();  // the last touch: the runtime may go now
      });
}

std::vector<store::Enqueued> Runtime::enqueue_batch(const std::vector<TaskSpec>& tasks) {
  const TimePoint at = impl_->now();
  std::vector<store::NewTask> prepared;
  prepared.reserve(tasks.size());
  std::vector<observe::Span> spans(tasks.size());
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    try {
      prepared.push_back(impl_->prepare(tasks[i], at, &spans[i]));
    } catch (const EnqueueError& e) {
      for (auto& span : spans) span.discard();  // nothing was sent
      if (tasks.size() == 1) throw;
      throw EnqueueError(e.code(), fmt::format("tasks[{}]: {}", i, e.what()));
    }
  }
  std::vector<store::Enqueued> done;
  try {
    done = impl_->store->enqueue(prepared, at);
  } catch (...) {
    end_producers(spans, nullptr, std::current_exception());
    throw;
  }
  end_producers(spans, &done, nullptr);
  impl_->after_enqueue(prepared, done);
  return done;
}

GroupEnqueued Runtime::enqueue_group(const std::vector<TaskSpec>& members,
                                     std::optional<TaskSpec> completion) {
  const TimePoint at = impl_->now();
  std::vector<store::NewTask> prepared;
  prepared.reserve(members.size());
  // The members' producer spans, then the completion's.
  std::vector<observe::Span> spans(members.size() + 1);
  auto discard = [&] {
    for (auto& span : spans) span.discard();
  };
  store::GroupSpec group{store::new_task_id(at), std::nullopt};
  GroupEnqueued out;
  out.group_id = group.id;
  try {
    for (std::size_t i = 0; i < members.size(); ++i) {
      prepared.push_back(impl_->prepare(members[i], at, &spans[i]));
      if (spans[i].recording()) spans[i].set("errand.group.id", group.id);
    }
    if (completion) {
      group.completion = impl_->prepare(*completion, at, &spans.back());
      group.completion->max_waiting = 0;  // runs when the members finish: never refused
      out.completion_id = group.completion->id;
      if (spans.back().recording()) spans.back().set("errand.group.id", group.id);
    }
  } catch (...) {
    discard();
    throw;
  }
  try {
    out.members = impl_->store->enqueue_group(group, prepared, at);
  } catch (...) {
    end_producers(spans, nullptr, std::current_exception());
    throw;
  }
  end_producers(spans, &out.members, nullptr);
  impl_->after_enqueue(prepared, out.members);
  return out;
}
}  // namespace errand::tasks
