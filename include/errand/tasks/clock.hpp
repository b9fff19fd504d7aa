#pragma once
// Clock: where the task runtime reads the time, so tests can move it by hand.
// Everything the runtime decides from time — when a retry is due, whether a
// lease expired, when a deadline passed, which tasks are past retention —
// comes from Clock::now(). Waiting itself uses real time (short polls), so a
// test advances a ManualClock and then waits on a condition.
//
// Both implementations are thread-safe.

#include <atomic>
#include <chrono>
#include <memory>

#include "errand/store/task_record.hpp"

namespace errand::tasks {

using store::TimePoint;

class Clock {
 public:
  virtual ~Clock() = default;
  [[nodiscard]] virtual TimePoint now() const = 0;
};

class SystemClock final : public Clock {
 public:
  [[nodiscard]] TimePoint now() const override {
    return std::chrono::time_point_cast<std::chrono::milliseconds>(
        std::chrono::system_clock::now());
  }
  [[nodiscard]] static std::shared_ptr<Clock> shared() { return std::make_shared<SystemClock>(); }
};

class ManualClock final : public Clock {
 public:
  explicit ManualClock(TimePoint start) : ms_(start.time_since_epoch().count()) {}
  [[nodiscard]] TimePoint now() const override {
    return TimePoint(std::chrono::milliseconds(ms_.load()));
  }
  void advance(std::chrono::milliseconds by) { ms_ += by.count(); }

 private:
  std::atomic<std::int64_t> ms_;
};

}  // namespace errand::tasks
