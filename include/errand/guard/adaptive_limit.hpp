#pragma once
// An adaptive concurrency limit, after Envoy's adaptive concurrency filter
// (and Netflix's concurrency-limits): the limit follows the latency of what it
// admits.
//
//  * It learns the unloaded latency from one window of requests admitted
//    with at most `min_limit` in flight (at start, then every
//    `remeasure_every` windows, so a latency that changed for good is
//    learned again). Light traffic gives those by itself, and nothing is
//    shed for it; under load, after four windows' worth of others, it holds
//    the limit at `min_limit` until it has them (meanwhile whatever exceeds
//    `min_limit` is shed).
//  * Then, every window of `window` samples, it compares the window's average
//    latency with the unloaded one plus a `buffer` (25%): the gradient
//    (unloaded + buffer) / measured, within [0.5, 2], scales the limit; while
//    latency is within the buffer, a headroom of its square root is added so
//    the limit keeps probing upward. Latency at the unloaded level grows the
//    limit; latency above it shrinks the limit in proportion, so requests no
//    longer queue inside the server and the excess is shed at the door
//    instead. It settles where latency is about (1 + buffer) times unloaded.
//    (Envoy and Netflix add the headroom always; at small limits that settles
//    where the gradient pays for it, at 2.5 times the unloaded latency.)
//  * A window whose peak in-flight count stayed under half the limit teaches
//    nothing (the limit is not what bounds it) and leaves the limit alone.
//
// Not thread-safe: the caller serialises (the concurrency limiter calls it
// under its lock). It reads no clock: samples carry their latency.

#include <chrono>
#include <cstddef>

namespace errand::guard {

class AdaptiveLimit {
 public:
  struct Options {
    std::size_t min_limit = 4;
    std::size_t max_limit = 1000;
    std::size_t initial_limit = 20;     // after the first measurement
    double buffer = 0.25;               // latency allowed above the unloaded, as a fraction of it
    double smoothing = 0.5;             // how far each window moves the limit toward its target
    std::size_t window = 32;            // samples per update
    std::size_t remeasure_every = 250;  // windows between measurements of the unloaded latency
  };

  // Throws std::invalid_argument for min_limit 0, min > max, a negative
  // buffer, smoothing outside (0, 1], or empty windows.
  explicit AdaptiveLimit(Options options);

  // One admitted request's latency, and how many were in flight when it was
  // admitted (itself included). Returns the limit now.
  std::size_t sample(std::chrono::nanoseconds latency, std::size_t in_flight);

  [[nodiscard]] std::size_t limit() const;
  // The unloaded latency learned, in seconds (0 before the first measurement).
  [[nodiscard]] double unloaded_latency() const { return unloaded_; }
  [[nodiscard]] bool measuring() const { return measuring_; }
  // Measuring, and holding the limit at min_limit to get the samples.
  [[nodiscard]] bool holding() const { return holding_; }

 private:
  Options opts_;
  double limit_;
  double unloaded_ = 0;      // seconds
  bool measuring_ = true;    // learning `unloaded_`
  bool holding_ = false;     // ... with the limit held at min_limit
  std::size_t windows_ = 0;  // since the last measurement
  double sum_ = 0;           // this window's latencies, seconds
  std::size_t count_ = 0;
  std::size_t peak_in_flight_ = 0;  // this window's
  std::size_t skipped_ = 0;         // samples a measurement could not use
};

}  // namespace errand::guard
