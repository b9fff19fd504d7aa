#include "errand/guard/token_bucket.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace errand::guard {

TokenBucket::TokenBucket(double rate, double burst) : rate_(rate), burst_(burst), tokens_(burst) {
  if (!(rate > 0) || !std::isfinite(rate)) {
    throw std::invalid_argument("token bucket: rate must be a positive number");
  }
  if (!(burst >= 1) || !std::isfinite(burst)) {
    throw std::invalid_argument("token bucket: burst must be at least 1");
  }
}

void TokenBucket::refill(TimePoint now) {
  if (last_ == TimePoint{}) last_ = now;
  if (now > last_) {
    const double secs = std::chrono::duration<double>(now - last_).count();
    tokens_ = std::min(burst_, tokens_ + secs * rate_);
    last_ = now;
  }
}

bool TokenBucket::try_acquire(TimePoint now) {
  const errand::detail::MutexLock lock(mu_);
  refill(now);
  if (tokens_ < 1.0) return false;
  tokens_ -= 1.0;
  return true;
}

TokenBucket::TimePoint TokenBucket::reserve(TimePoint now) {
  const errand::detail::MutexLock lock(mu_);
  refill(now);
  tokens_ -= 1.0;
  if (tokens_ >= 0.0) return now;
  const double wait_s = -tokens_ / rate_;
  return now + std::chrono::milliseconds(static_cast<std::int64_t>(std::ceil(wait_s * 1000.0)));
}

}  // namespace errand::guard
