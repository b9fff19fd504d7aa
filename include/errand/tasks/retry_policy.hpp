#pragma once
// Exponential backoff with full jitter (AWS Architecture Blog, "Exponential
// Backoff And Jitter"): the n-th retry waits a uniformly random time in
// [0, min(cap, base * 2^(n-1))]. Full jitter spreads a burst of failures over
// the whole window, so a recovering downstream is not hit by synchronized
// retries. A plain value; delay() is thread-safe (per-thread generator).

#include <chrono>

namespace errand::tasks {

struct RetryPolicy {
  std::chrono::milliseconds base{std::chrono::seconds(1)};
  std::chrono::milliseconds cap{std::chrono::hours(1)};

  // attempt: the attempt that just failed, 1-based. `unit` in [0, 1) is the
  // random draw; the overload without it draws one.
  [[nodiscard]] std::chrono::milliseconds delay(int attempt, double unit) const;
  [[nodiscard]] std::chrono::milliseconds delay(int attempt) const;
  // The upper bound of the window for `attempt` (what delay() never exceeds).
  [[nodiscard]] std::chrono::milliseconds ceiling(int attempt) const;
};

}  // namespace errand::tasks
