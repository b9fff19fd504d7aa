// Periodic schedules: every(period) and cron(expression) compute ticks every
// process agrees on; the store fires each tick once across processes.
#include <fmt/format.h>

#include "errand/tasks/cron.hpp"
#include "tasks/runtime/runtime_impl.hpp"

namespace errand::tasks {

// A tick fires once even if maintenance was late; ticks missed while the
// process was down or stalled are not replayed (only the latest fires).
void Runtime::Impl::fire_schedules(TimePoint at) {
  {
    const MutexLock lock(mu);
    if (stopping) return;
  }
  for (auto& s : schedules) {
    if (at < s.next_due) continue;
    const TimePoint tick = s.latest(at);
    s.next_due = s.next(at);
    if (tick <= s.last_tick) continue;
    s.last_tick = tick;
    guarded("fire_schedule", "schedule " + s.name, [&] {
      TaskSpec spec = s.task;
      spec.options.unique_key =
          fmt::format("schedule:{}:{}", s.name, tick.time_since_epoch().count());
      store::NewTask t = prepare(spec, at);
      t.max_waiting = 0;  // a schedule's tick is never refused: it would be lost
      const std::string type = t.type;
      const std::string queue = t.queue;
      if (store->fire_schedule(s.name, tick, std::move(t), at)) {
        if (cfg.hooks.enqueued) cfg.hooks.enqueued(type, queue);
        poke_dispatcher();
      }
    });
  }
}

void Runtime::Impl::add_schedule(Schedule s) {
  {
    const MutexLock lock(mu);
    if (started) throw std::logic_error("runtime: schedules must be added before start()");
  }
  if (!valid_name(s.name)) throw std::invalid_argument("schedule '" + s.name + "': bad name");
  for (const auto& other : schedules) {
    if (other.name == s.name) {
      throw std::invalid_argument("schedule '" + s.name + "' is registered twice");
    }
  }
  (void)prepare(s.task, now());  // refuse a bad task now, not at every tick
  schedules.push_back(std::move(s));
}

void Runtime::every(std::string name, milliseconds period, TaskSpec task) {
  if (period < milliseconds(1))
    throw std::invalid_argument("schedule '" + name + "': period < 1ms");
  const auto p = period.count();
  auto latest = [p](TimePoint t) {
    return TimePoint{milliseconds(t.time_since_epoch().count() / p * p)};
  };
  impl_->add_schedule({std::move(name), latest,
                       [latest, period](TimePoint t) { return latest(t) + period; },
                       std::move(task)});
}

void Runtime::cron(std::string name, std::string_view expression, TaskSpec task) {
  const auto schedule = CronSchedule::parse(expression);
  impl_->add_schedule({std::move(name), [schedule](TimePoint t) { return schedule.latest(t); },
                       [schedule](TimePoint t) { return schedule.next(t); }, std::move(task)});
}
}  // namespace errand::tasks
