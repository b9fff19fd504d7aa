#include "errand/guard/keyed_buckets.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace errand::guard {

KeyedBuckets::KeyedBuckets(double rate, double burst, std::size_t max_keys)
    : rate_(rate), burst_(burst), max_keys_(std::max<std::size_t>(max_keys, 1)) {
  (void)TokenBucket(rate, burst);  // the same validation, the same message
}

KeyedBuckets::Take KeyedBuckets::take(std::string_view key, TokenBucket::TimePoint now) {
  const errand::detail::MutexLock lock(mu_);
  auto it = entries_.find(std::string(key));
  if (it == entries_.end()) {
    if (entries_.size() >= max_keys_) {
      entries_.erase(lru_.back());
      lru_.pop_back();
    }
    lru_.emplace_front(key);
    it = entries_.emplace(std::string(key), Entry{burst_, now, lru_.begin()}).first;
  } else {
    lru_.splice(lru_.begin(), lru_, it->second.lru);
  }
  Entry& e = it->second;
  if (now > e.last) {
    e.tokens =
        std::min(burst_, e.tokens + std::chrono::duration<double>(now - e.last).count() * rate_);
    e.last = now;
  }
  Take t;
  if (e.tokens >= 1.0) {
    e.tokens -= 1.0;
    t.allowed = true;
    t.remaining = e.tokens;
    return t;
  }
  t.remaining = e.tokens;
  t.wait = std::chrono::milliseconds(
      static_cast<std::int64_t>(std::ceil((1.0 - e.tokens) / rate_ * 1000.0)));
  return t;
}

std::size_t KeyedBuckets::size() const {
  const errand::detail::MutexLock lock(mu_);
  return entries_.size();
}

}  // namespace errand::guard
