#include "errand/guard/circuit_breaker.hpp"

#include <array>

namespace errand::guard {

std::string_view to_string(CircuitBreaker::State state) {
  constexpr std::array<std::string_view, 3> names = {"closed", "open", "half_open"};
  return names.at(static_cast<std::size_t>(state));
}

bool CircuitBreaker::allow(TimePoint now) {
  const errand::detail::MutexLock lock(mu_);
  if (state_ == State::closed) return true;
  if (state_ == State::open) {
    if (now - opened_at_ < options_.open_for) return false;
    state_ = State::half_open;
    probing_ = false;
  }
  if (probing_) return false;  // half-open: one probe at a time
  probing_ = true;
  return true;
}

void CircuitBreaker::success() {
  const errand::detail::MutexLock lock(mu_);
  state_ = State::closed;
  failures_ = 0;
  probing_ = false;
}

void CircuitBreaker::abandon() {
  const errand::detail::MutexLock lock(mu_);
  probing_ = false;
}

void CircuitBreaker::failure(TimePoint now) {
  const errand::detail::MutexLock lock(mu_);
  probing_ = false;
  if (state_ == State::half_open || ++failures_ >= options_.failure_threshold) {
    state_ = State::open;
    opened_at_ = now;
    failures_ = 0;
  }
}

CircuitBreaker::State CircuitBreaker::state(TimePoint now) const {
  const errand::detail::MutexLock lock(mu_);
  if (state_ == State::open && now - opened_at_ >= options_.open_for) return State::half_open;
  return state_;
}

int CircuitBreaker::failures() const {
  const errand::detail::MutexLock lock(mu_);
  return failures_;
}

std::chrono::milliseconds CircuitBreaker::retry_in(TimePoint now) const {
  const errand::detail::MutexLock lock(mu_);
  if (state_ != State::open) return std::chrono::milliseconds(0);
  const auto left = options_.open_for - (now - opened_at_);
  return left > std::chrono::milliseconds(0) ? left : std::chrono::milliseconds(0);
}

CircuitBreaker* CircuitBreakers::get(std::string_view target) {
  const errand::detail::MutexLock lock(mu_);
  if (auto it = breakers_.find(target); it != breakers_.end()) return &it->second;
  if (breakers_.size() >= max_targets_) return nullptr;
  return &breakers_.try_emplace(std::string(target), options_).first->second;
}

std::vector<CircuitBreakers::TargetState> CircuitBreakers::states(
    CircuitBreaker::TimePoint now) const {
  const errand::detail::MutexLock lock(mu_);
  std::vector<TargetState> out;
  out.reserve(breakers_.size());
  for (const auto& [target, b] : breakers_) {
    out.push_back({target, b.state(now), b.failures(), b.retry_in(now)});
  }
  return out;
}

}  // namespace errand::guard
