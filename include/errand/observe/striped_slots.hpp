#pragma once
// StripedSlots: a row of 8-byte counters that every thread adds to and a
// scrape sums, without the threads sharing a cache line.
//
// Each value is kept once per stripe, and a write goes to the stripe of the
// CPU it runs on (as the kernel's per-CPU counters do), so threads running
// at once on different cores never touch the same cache line; a reader sums
// the stripes. Stripes: the cores, rounded up to a power of two, at most 64.
// Two threads may still write one stripe (a thread moved between reading
// its CPU and writing, more than 64 cores): every write is an atomic
// read-modify-write, so that is correct, and only as slow as one shared
// atomic would always be.
//
// Thread-safety: every member may be called from any thread at once. A sum
// read while others add is some interleaving of their adds; sums of
// different slots are not one snapshot. Memory: stripes x the slots rounded
// up to 64 bytes.

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <thread>

namespace errand::observe::detail {

// Stripes per value in this process.
[[nodiscard]] inline std::size_t stripe_count() noexcept {
  static const std::size_t n =
      std::bit_ceil(std::clamp<std::size_t>(std::thread::hardware_concurrency(), 1, 64));
  return n;
}

// The stripe to write now: the CPU's (glibc reads it from the thread's rseq
// area, no system call), or the thread's turn where the CPU is unknown.
[[nodiscard]] inline std::size_t current_stripe() noexcept {
  const int cpu = sched_getcpu();
  if (cpu >= 0) return static_cast<std::size_t>(cpu) & (stripe_count() - 1);
  static std::atomic<std::size_t> next{0};
  thread_local const std::size_t turn = next.fetch_add(1, std::memory_order_relaxed);
  return turn & (stripe_count() - 1);
}

class StripedSlots {
 public:
  explicit StripedSlots(std::size_t slots)
      : lines_per_stripe_(std::max<std::size_t>((slots + kPerLine - 1) / kPerLine, 1)),
        lines_(std::make_unique<Line[]>(lines_per_stripe_ * stripe_count())) {}

  void add(std::size_t slot, std::uint64_t n) noexcept {
    at(current_stripe(), slot).fetch_add(n, std::memory_order_relaxed);
  }
  // A double kept as its bits: a compare-and-swap that, on a stripe no other
  // core writes, succeeds the first time.
  void add_double(std::size_t slot, double v) noexcept {
    auto& a = at(current_stripe(), slot);
    auto old = a.load(std::memory_order_relaxed);
    while (!a.compare_exchange_weak(old,
                                    std::bit_cast<std::uint64_t>(std::bit_cast<double>(old) + v),
                                    std::memory_order_relaxed)) {
    }
  }

  [[nodiscard]] std::uint64_t sum(std::size_t slot) const noexcept {
    std::uint64_t total = 0;
    for (std::size_t s = 0; s < stripe_count(); ++s) {
      total += at(s, slot).load(std::memory_order_relaxed);
    }
    return total;
  }
  [[nodiscard]] double sum_double(std::size_t slot) const noexcept {
    double total = 0;
    for (std::size_t s = 0; s < stripe_count(); ++s) {
      total += std::bit_cast<double>(at(s, slot).load(std::memory_order_relaxed));
    }
    return total;
  }

 private:
  static constexpr std::size_t kPerLine = 8;
  struct alignas(64) Line {
    std::atomic<std::uint64_t> v[kPerLine]{};
  };
  [[nodiscard]] std::atomic<std::uint64_t>& at(std::size_t stripe,
                                               std::size_t slot) const noexcept {
    return lines_[stripe * lines_per_stripe_ + slot / kPerLine].v[slot % kPerLine];
  }

  std::size_t lines_per_stripe_;
  std::unique_ptr<Line[]> lines_;
};

}  // namespace errand::observe::detail
