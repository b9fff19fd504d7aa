#include "errand/tasks/retry_policy.hpp"

#include <algorithm>
#include <cmath>
#include <random>

namespace errand::tasks {

std::chrono::milliseconds RetryPolicy::ceiling(int attempt) const {
  const auto b = std::max<std::int64_t>(base.count(), 0);
  const auto c = std::max<std::int64_t>(cap.count(), 0);
  const int shift = std::clamp(attempt - 1, 0, 62);
  // Doubling stops at the cap, so the shift can never overflow.
  std::int64_t window = b;
  for (int i = 0; i < shift && window < c; ++i) window *= 2;
  return std::chrono::milliseconds(std::min(window, c));
}

std::chrono::milliseconds RetryPolicy::delay(int attempt, double unit) const {
  const auto top = static_cast<double>(ceiling(attempt).count());
  return std::chrono::milliseconds(
      static_cast<std::int64_t>(std::floor(top * std::clamp(unit, 0.0, 1.0))));
}

std::chrono::milliseconds RetryPolicy::delay(int attempt) const {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return delay(attempt, std::uniform_real_distribution<double>(0.0, 1.0)(rng));
}

}  // namespace errand::tasks
