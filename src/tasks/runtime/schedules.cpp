// Periodic schedules: every(period) and cron(expression) compute ticks every
// process agrees on; the store fires each tick once across processes.
#include <algorithm>
#include <charconv>
#include <map>

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
      observe::Span producer;  // a new trace for each tick
      store::NewTask t = prepare(spec, at, &producer);
      t.max_waiting = 0;  // a schedule's tick is never refused: it would be lost
      const std::string type = t.type;
      const std::string queue = t.queue;
      if (producer.recording()) producer.set("errand.schedule", s.name);
      bool fired = false;
      try {
        fired = store->fire_schedule(s.name, tick, std::move(t), at);
      } catch (const std::exception& e) {
        producer.set_error(e.what());
        throw;  // ended (as failed) by its destructor; guarded() logs and counts it
      }
      if (fired) {
        producer.end();
        if (cfg.hooks.enqueued) cfg.hooks.enqueued(type, queue);
        poke_dispatcher();
      } else {
        producer.discard();  // another node fired this tick
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
  s.queue = prepare(s.task, now()).queue;  // refuses a bad task now, not at every tick
  schedules.push_back(std::move(s));
}

void Runtime::every(std::string name, milliseconds period, TaskSpec task) {
  if (period < milliseconds(1))
    throw std::invalid_argument("schedule '" + name + "': period < 1ms");
  const auto p = period.count();
  auto latest = [p](TimePoint t) {
    return TimePoint{milliseconds(t.time_since_epoch().count() / p * p)};
  };
  impl_->add_schedule({.name = std::move(name),
                       .latest = latest,
                       .next = [latest, period](TimePoint t) { return latest(t) + period; },
                       .task = std::move(task),
                       .kind = "every",
                       .spec = std::to_string(p)});
}

void Runtime::cron(std::string name, std::string_view expression, TaskSpec task) {
  const auto schedule = CronSchedule::parse(expression);
  impl_->add_schedule({.name = std::move(name),
                       .latest = [schedule](TimePoint t) { return schedule.latest(t); },
                       .next = [schedule](TimePoint t) { return schedule.next(t); },
                       .task = std::move(task),
                       .kind = "cron",
                       .spec = std::string(expression)});
}

namespace {

// The period of an `every` schedule another node may have published; none
// when this version cannot read it.
std::optional<std::int64_t> period_ms(const store::NodeSchedule& s) {
  std::int64_t p = 0;
  const char* end = s.spec.data() + s.spec.size();
  const auto [at, ec] = std::from_chars(s.spec.data(), end, p);
  if (s.kind != "every" || ec != std::errc{} || at != end || p <= 0) return std::nullopt;
  return p;
}

// The first tick after `at`.
std::optional<TimePoint> next_tick(const store::NodeSchedule& s, TimePoint at) {
  if (const auto p = period_ms(s)) {
    return TimePoint{milliseconds((at.time_since_epoch().count() / *p + 1) * *p)};
  }
  if (s.kind != "cron") return std::nullopt;
  try {
    return CronSchedule::parse(s.spec).next(at);
  } catch (const std::exception&) {  // an expression this version does not read
    return std::nullopt;
  }
}

}  // namespace

std::vector<ScheduleStatus> Runtime::schedules() const {
  const TimePoint at = impl_->now();
  std::map<std::string, ScheduleStatus, std::less<>> by_name;
  auto add = [&](const store::NodeSchedule& s, const std::string& node) {
    auto [it, fresh] = by_name.try_emplace(s.name);
    auto& out = it->second;
    if (fresh) {
      out.name = s.name;
      out.kind = s.kind;
      out.spec = s.spec;
      out.type = s.type;
      out.queue = s.queue;
      out.every_ms = period_ms(s);
      out.next_fire = next_tick(s, at);
    }
    if (std::find(out.nodes.begin(), out.nodes.end(), node) == out.nodes.end()) {
      out.nodes.push_back(node);
    }
  };
  // This node's own first (it may not have published yet), then every live node's.
  for (const auto& s : impl_->schedules) add(Impl::published(s), impl_->owner);
  for (const auto& n : nodes()) {
    for (const auto& s : n.schedules) add(s, n.id);
  }
  for (const auto& [name, tick] : impl_->store->schedule_ticks()) {
    if (auto it = by_name.find(name); it != by_name.end()) it->second.last_fired = tick;
  }
  std::vector<ScheduleStatus> out;
  out.reserve(by_name.size());
  for (auto& [name, s] : by_name) {
    std::sort(s.nodes.begin(), s.nodes.end());
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace errand::tasks
