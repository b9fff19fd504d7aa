#pragma once
// Per-second task statistics of a recent window (15 minutes by default), per
// queue, for the dashboard's charts (GET /v1/stats).
//
// * Constant memory: a ring of one slot per second per queue, allocated when
//   a queue is first seen; at most `max_queues` queues are kept apart, the
//   rest are counted together under "(other)". A slot holds the attempts
//   that succeeded and failed in that second, and two histograms (queue wait,
//   run time) over fixed log-scale buckets — so that several nodes' figures
//   add up exactly and p50/p95 come from the merged histogram.
// * Thread-safe: record() takes one mutex for a few additions.
// * encode()/merge(): a node's recent seconds as compact JSON (only seconds
//   with attempts, only buckets with counts) that another node can add into
//   its answer — how /v1/stats shows every node.
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/value.hpp>

#include "errand/detail/thread_annotations.hpp"

namespace errand::observe {

class TaskStats {
 public:
  using TimePoint = std::chrono::system_clock::time_point;
  // Bucket i counts durations in [2^(i-1), 2^i) ms (bucket 0: under 1 ms);
  // the last one holds everything from ~4.4 min up.
  static constexpr std::size_t kBuckets = 20;
  using Histogram = std::array<std::uint32_t, kBuckets>;

  struct Second {
    std::uint32_t succeeded = 0;
    std::uint32_t failed = 0;
    Histogram wait{};
    Histogram run{};

    Second& operator+=(const Second& other);
  };
  // Per queue, the window's seconds, oldest first.
  using Window = std::map<std::string, std::vector<Second>, std::less<>>;

  explicit TaskStats(std::chrono::seconds window = std::chrono::minutes(15),
                     std::size_t max_queues = 64);

  // One attempt that ended at `at`: succeeded or failed (others are not
  // recorded), after waiting `waited` in the queue and running `ran`.
  void record(std::string_view queue, TimePoint at, bool succeeded,
              std::chrono::milliseconds waited, std::chrono::nanoseconds ran) ERRAND_EXCLUDES(mu_);

  // The `length` seconds up to and including `now`'s (at most the window).
  [[nodiscard]] Window window(TimePoint now, std::chrono::seconds length) const
      ERRAND_EXCLUDES(mu_);

  // The same as compact JSON text, for another node to merge().
  [[nodiscard]] std::string encode(TimePoint now, std::chrono::seconds length) const;
  // Adds what encode() wrote (at its own node's now) into `into`: `length`
  // seconds up to `now`'s; seconds outside it are left out. Bad text is
  // ignored (a node of another version).
  static void merge(std::string_view encoded, TimePoint now, std::chrono::seconds length,
                    Window& into);

  // The window of `length` seconds up to `now`'s as GET /v1/stats answers
  // it: start, end, window_s and per queue arrays of one value per second —
  // succeeded, failed, and the queue wait and run time p50/p95 in ms (null
  // for a second without attempts).
  [[nodiscard]] static boost::json::object to_json(const Window& window, TimePoint now,
                                                   std::chrono::seconds length);

  [[nodiscard]] std::chrono::seconds span() const { return span_; }

 private:
  struct Ring {
    std::vector<std::int64_t> epoch;  // the second each slot holds
    std::vector<Second> slots;
  };

  std::chrono::seconds span_;
  std::size_t max_queues_;
  mutable errand::detail::Mutex mu_;
  std::map<std::string, Ring, std::less<>> rings_ ERRAND_GUARDED_BY(mu_);
};

}  // namespace errand::observe
