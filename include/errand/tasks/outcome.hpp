#pragma once
// What a task handler returns. A handler may also throw: any exception fails
// the attempt with its message (and is retried); PermanentFailure skips retries.
//
//   return Outcome::done({{"sent", 3}});        // succeeded, result stored
//   return Outcome::retry("smtp busy", 30s);   // failed attempt, retry after 30s
//   return Outcome::fail_permanently("bad address");  // dead, no more attempts
//   return Outcome::cancelled();               // the handler saw its stop token
//   return Outcome::snooze(30s, "circuit open");  // not now: wait, no attempt used

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>

#include <boost/json/value.hpp>

namespace errand::tasks {

class Outcome {
 public:
  enum class Kind : std::uint8_t { done, retry, fail_permanently, cancelled, snooze };

  [[nodiscard]] static Outcome done(boost::json::value result = nullptr) {
    return {Kind::done, std::move(result), {}, std::nullopt};
  }
  // delay: nullopt uses the task's backoff policy.
  [[nodiscard]] static Outcome retry(std::string error,
                                     std::optional<std::chrono::milliseconds> delay = {}) {
    return {Kind::retry, nullptr, std::move(error), delay};
  }
  [[nodiscard]] static Outcome fail_permanently(std::string error) {
    return {Kind::fail_permanently, nullptr, std::move(error), std::nullopt};
  }
  [[nodiscard]] static Outcome cancelled() { return {Kind::cancelled, nullptr, {}, std::nullopt}; }
  // The task could not run now for a reason that is not its fault (a
  // downstream's circuit is open, a quota is spent): it is scheduled again
  // after `delay` (at least 1 s) and this attempt is not counted against
  // max_attempts. The reason is logged, not stored as the task's error. There
  // is no limit on snoozes: a handler that always snoozes never finishes.
  [[nodiscard]] static Outcome snooze(std::chrono::milliseconds delay, std::string reason) {
    return {Kind::snooze, nullptr, std::move(reason), delay};
  }

  [[nodiscard]] Kind kind() const { return kind_; }
  [[nodiscard]] const boost::json::value& result() const { return result_; }
  [[nodiscard]] const std::string& error() const { return error_; }
  [[nodiscard]] std::optional<std::chrono::milliseconds> delay() const { return delay_; }

 private:
  Outcome(Kind kind, boost::json::value result, std::string error,
          std::optional<std::chrono::milliseconds> delay)
      : kind_(kind), result_(std::move(result)), error_(std::move(error)), delay_(delay) {}

  Kind kind_;
  boost::json::value result_;
  std::string error_;
  std::optional<std::chrono::milliseconds> delay_;
};

// Thrown from a handler (or anything it calls): the task goes dead at once.
class PermanentFailure : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace errand::tasks
