#pragma once
// Circuit breaker (closed / open / half-open), one per downstream target.
//
// closed: calls go through; `failure_threshold` failures in a row open it.
// open: calls fail fast for `open_for`; then it is half-open.
// half-open: one probe call at a time goes through; its success closes the
// breaker, its failure opens it again for another `open_for`.
//
// Time is passed in (fake clocks in tests). Thread-safe.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "errand/detail/thread_annotations.hpp"

namespace errand::guard {

class CircuitBreaker {
 public:
  using TimePoint = std::chrono::sys_time<std::chrono::milliseconds>;
  enum class State : std::uint8_t { closed = 0, open = 1, half_open = 2 };
  struct Options {
    int failure_threshold = 5;
    std::chrono::milliseconds open_for{std::chrono::seconds(30)};
  };

  explicit CircuitBreaker(Options options) : options_(options) {}

  // May a call go now? (In half-open, true for one probe until it reports.)
  [[nodiscard]] bool allow(TimePoint now);
  void success();
  void failure(TimePoint now);
  // The call was abandoned (cancelled) without telling anything about the
  // target: a half-open probe slot is freed, nothing else changes.
  void abandon();
  [[nodiscard]] State state(TimePoint now) const;
  // Failures in a row since the last success or since it last opened.
  [[nodiscard]] int failures() const;
  // While open: how long until a probe may go.
  [[nodiscard]] std::chrono::milliseconds retry_in(TimePoint now) const;

 private:
  Options options_;
  mutable errand::detail::Mutex mu_;
  State state_ ERRAND_GUARDED_BY(mu_) = State::closed;
  int failures_ ERRAND_GUARDED_BY(mu_) = 0;
  TimePoint opened_at_ ERRAND_GUARDED_BY(mu_){};
  bool probing_ ERRAND_GUARDED_BY(mu_) = false;
};

[[nodiscard]] std::string_view to_string(CircuitBreaker::State state);

// Breakers by target (a host), created on first use; at most `max_targets`
// (past that, a new target shares nothing and is always allowed). Thread-safe;
// references stay valid for the lifetime of the set.
class CircuitBreakers {
 public:
  CircuitBreakers(CircuitBreaker::Options options, std::size_t max_targets = 10000)
      : options_(options), max_targets_(max_targets) {}
  // nullptr once max_targets is reached and `target` is new.
  [[nodiscard]] CircuitBreaker* get(std::string_view target);
  struct TargetState {
    std::string target;
    CircuitBreaker::State state = CircuitBreaker::State::closed;
    int failures = 0;                      // in a row, since the last success or opening
    std::chrono::milliseconds retry_in{};  // while open: until the probe
  };
  // Every target seen, by name.
  [[nodiscard]] std::vector<TargetState> states(CircuitBreaker::TimePoint now) const;

 private:
  CircuitBreaker::Options options_;
  std::size_t max_targets_;
  mutable errand::detail::Mutex mu_;
  std::map<std::string, CircuitBreaker, std::less<>> breakers_ ERRAND_GUARDED_BY(mu_);
};

}  // namespace errand::guard
