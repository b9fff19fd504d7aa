#include "errand/guard/adaptive_limit.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace errand::guard {

AdaptiveLimit::AdaptiveLimit(Options options) : opts_(options) {
  if (opts_.min_limit == 0 || opts_.min_limit > opts_.max_limit) {
    throw std::invalid_argument("adaptive limit: need 1 <= min_limit <= max_limit");
  }
  if (opts_.buffer < 0.0 || !(opts_.smoothing > 0.0 && opts_.smoothing <= 1.0) ||
      opts_.window == 0 || opts_.remeasure_every == 0) {
    throw std::invalid_argument(
        "adaptive limit: buffer >= 0, smoothing in (0, 1], non-empty windows");
  }
  limit_ = static_cast<double>(std::clamp(opts_.initial_limit, opts_.min_limit, opts_.max_limit));
}

std::size_t AdaptiveLimit::limit() const {
  return holding_ ? opts_.min_limit : static_cast<std::size_t>(limit_);
}

std::size_t AdaptiveLimit::sample(std::chrono::nanoseconds latency, std::size_t in_flight) {
  // While measuring, only requests admitted with at most min_limit in flight
  // count. Light traffic gives them by itself; after four windows' worth of
  // others, the limit is held at min_limit so they come. If even then
  // hardly any come (long requests hold the measuring slots), the
  // measurement ends after four windows' worth more, keeping what was
  // learned before.
  if (measuring_ && in_flight > opts_.min_limit) {
    if (++skipped_ >= 4 * opts_.window) {
      skipped_ = 0;
      if (!holding_) {
        holding_ = true;
        return limit();
      }
      measuring_ = false;
      holding_ = false;
      windows_ = 0;
      sum_ = 0;
      count_ = 0;
      peak_in_flight_ = 0;
    }
    return limit();
  }
  sum_ += std::chrono::duration<double>(latency).count();
  ++count_;
  peak_in_flight_ = std::max(peak_in_flight_, in_flight);
  if (count_ < opts_.window) return limit();

  const double measured = sum_ / static_cast<double>(count_);
  const auto peak = static_cast<double>(peak_in_flight_);
  sum_ = 0;
  count_ = 0;
  peak_in_flight_ = 0;
  if (measuring_) {
    unloaded_ = measured;
    measuring_ = false;
    holding_ = false;
    skipped_ = 0;
    windows_ = 0;
    return limit();
  }
  if (++windows_ >= opts_.remeasure_every) {
    measuring_ = true;
    return limit();
  }
  if (measured <= 0 || unloaded_ <= 0 || peak < limit_ / 2) return limit();
  const double gradient = std::clamp(unloaded_ * (1.0 + opts_.buffer) / measured, 0.5, 2.0);
  // Headroom only while latency is within the buffer (see the header): it
  // makes the limit probe upward, and never holds a queue in place.
  const double target = limit_ * gradient + (gradient >= 1.0 ? std::sqrt(limit_) : 0.0);
  limit_ = std::clamp(limit_ * (1.0 - opts_.smoothing) + target * opts_.smoothing,
                      static_cast<double>(opts_.min_limit), static_cast<double>(opts_.max_limit));
  return limit();
}

}  // namespace errand::guard
