#include "blocking_admission.hpp"

#include <algorithm>

namespace errand::http::detail {

namespace {

guard::AdaptiveLimit::Options options(std::size_t capacity) {
  const auto cap = std::max<std::size_t>(capacity, 1);
  return {.min_limit = 1, .max_limit = cap, .initial_limit = std::min<std::size_t>(cap, 4)};
}

}  // namespace

BlockingAdmission::BlockingAdmission(std::size_t capacity) : adaptive_(options(capacity)) {}

std::optional<std::size_t> BlockingAdmission::try_admit() {
  const errand::detail::MutexLock lock(mu_);
  if (in_flight_ >= adaptive_.limit()) return std::nullopt;
  return ++in_flight_;
}

void BlockingAdmission::release(std::chrono::nanoseconds latency, std::size_t admitted_with) {
  const errand::detail::MutexLock lock(mu_);
  --in_flight_;
  (void)adaptive_.sample(latency, admitted_with);
}

void BlockingAdmission::withdraw() {
  const errand::detail::MutexLock lock(mu_);
  --in_flight_;
}

std::size_t BlockingAdmission::limit() const {
  const errand::detail::MutexLock lock(mu_);
  return adaptive_.limit();
}

}  // namespace errand::http::detail
