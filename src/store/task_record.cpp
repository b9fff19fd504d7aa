#include "errand/store/task_record.hpp"
#include "errand/store/task_transitions.hpp"

#include <array>
#include <mutex>
#include <random>

namespace errand::store {

namespace {
constexpr std::array<std::string_view, 7> kStateNames = {
    "scheduled", "pending", "active", "succeeded", "retrying", "dead", "cancelled"};
constexpr std::string_view kCrockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
}  // namespace

std::string_view to_string(StoreOp op) {
  constexpr std::array<std::string_view, 10> names = {
      "enqueue", "promote",          "claim",  "complete", "fail",
      "release", "finish_cancelled", "cancel", "reclaim",  "retry"};
  return names.at(static_cast<std::size_t>(op));
}

std::string_view to_string(TaskState state) {
  return kStateNames.at(static_cast<int>(state));
}

std::optional<TaskState> parse_state(std::string_view name) {
  for (std::size_t i = 0; i < kStateNames.size(); ++i) {
    if (kStateNames[i] == name) return static_cast<TaskState>(i);
  }
  return std::nullopt;
}

std::string new_task_id(TimePoint now) {
  // Within one millisecond the random part counts up from the last id (ULID's
  // monotonic mode), so ids made by one process sort in the order they were made.
  static std::mutex mu;
  static std::uint64_t last_ms = 0;
  static std::uint64_t hi = 0;  // top 16 of the 80 random bits
  static std::uint64_t lo = 0;  // low 64
  static std::mt19937_64 rng{std::random_device{}()};

  auto ms = static_cast<std::uint64_t>(now.time_since_epoch().count());
  std::uint64_t r_hi = 0;
  std::uint64_t r_lo = 0;
  {
    const std::lock_guard lock(mu);
    if (ms <= last_ms) {
      ms = last_ms;
      if (++lo == 0) hi = (hi + 1) & 0xFFFFU;
    } else {
      last_ms = ms;
      hi = rng() & 0xFFFFU;
      lo = rng() >> 1U;  // leaves room to count up
    }
    r_hi = hi;
    r_lo = lo;
  }
  std::string out(26, '0');
  // 48-bit time: 10 characters (50 bits, top 2 zero).
  for (int i = 9; i >= 0; --i) {
    out[static_cast<std::size_t>(i)] = kCrockford[ms & 31U];
    ms >>= 5U;
  }
  // 80 random bits: 16 characters.
  for (int i = 25; i >= 10; --i) {
    out[static_cast<std::size_t>(i)] = kCrockford[r_lo & 31U];
    r_lo = (r_lo >> 5U) | ((r_hi & 31U) << 59U);
    r_hi >>= 5U;
  }
  return out;
}

}  // namespace errand::store
