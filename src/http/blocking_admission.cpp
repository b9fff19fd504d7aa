#include "blocking_admission.hpp"

#include <algorithm>

namespace errand::http::detail {

BlockingAdmission::BlockingAdmission(bool adaptive, std::size_t capacity) {
  if (!adaptive) return;
  const auto cap = std::max<std::size_t>(capacity, 1);
  adaptive_.emplace(guard::AdaptiveLimit::Options{
      .min_limit = 1, .max_limit = cap, .initial_limit = std::min<std::size_t>(cap, 4)});
}

std::optional<std::size_t> BlockingAdmission::try_admit() {
  const errand::detail::MutexLock lock(mu_);
  if (adaptive_ && in_flight_ >= adaptive_->limit()) return std::nullopt;
  return ++in_flight_;
}

void BlockingAdmission::release(std::chrono::nanoseconds latency, std::size_t admitted_with) {
  const errand::detail::MutexLock lock(mu_);
  --in_flight_;
  if (adaptive_) (void)adaptive_->sample(latency, admitted_with);
}

void BlockingAdmission::withdraw() {
  const errand::detail::MutexLock lock(mu_);
  --in_flight_;
}

std::size_t BlockingAdmission::limit() const {
  const errand::detail::MutexLock lock(mu_);
  return adaptive_ ? adaptive_->limit() : 0;
}

}  // namespace errand::http::detail
