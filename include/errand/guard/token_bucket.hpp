#pragma once
// A token bucket: `rate` tokens per second refill up to `burst`. Time is passed
// in, so the bucket is exact under a fake clock and never sleeps.
//
// reserve() books the next token even when it is in the future and says when it
// is due (Go's rate.Limiter.Reserve): callers that must wait their turn get
// distinct, evenly spaced turns instead of all retrying at once. Thread-safe.

#include <chrono>
#include <mutex>

#include "errand/detail/thread_annotations.hpp"

namespace errand::guard {

class TokenBucket {
 public:
  using TimePoint = std::chrono::sys_time<std::chrono::milliseconds>;

  // rate > 0 tokens per second; burst >= 1. The bucket starts full.
  TokenBucket(double rate, double burst);

  // Takes a token if one is there now.
  [[nodiscard]] bool try_acquire(TimePoint now);
  // Takes the next token; returns when it may be used (<= now: at once).
  [[nodiscard]] TimePoint reserve(TimePoint now);

  [[nodiscard]] double rate() const { return rate_; }
  [[nodiscard]] double burst() const { return burst_; }

 private:
  void refill(TimePoint now) ERRAND_REQUIRES(mu_);

  errand::detail::Mutex mu_;
  double rate_;
  double burst_;
  double tokens_ ERRAND_GUARDED_BY(mu_);  // negative when future tokens are booked
  TimePoint last_ ERRAND_GUARDED_BY(mu_){};
};

}  // namespace errand::guard
