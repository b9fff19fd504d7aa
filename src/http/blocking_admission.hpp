#pragma once
// Internal: the blocking pool's door under ServerConfig::adaptive_blocking,
// kept on the I/O thread. A request for a blocking route is admitted when
// fewer than the limit are running on the pool or waiting for it; otherwise
// the caller answers 503 at once, before it waits anywhere. The limit is a
// guard::AdaptiveLimit between 1 and the pool's threads + queue, fed with
// each request's time from its arrival to its answer: queueing for the pool,
// and for the cores, both count. (Without adaptive_blocking there is no
// door: the pool's own bound is the only one, at no cost per request.)
// Thread-safe.

#include <chrono>
#include <cstddef>
#include <optional>

#include "errand/detail/thread_annotations.hpp"
#include "errand/guard/adaptive_limit.hpp"

namespace errand::http::detail {

class BlockingAdmission {
 public:
  explicit BlockingAdmission(std::size_t capacity);

  // The number in flight with this one, or nullopt: refused.
  [[nodiscard]] std::optional<std::size_t> try_admit();
  // One admitted request was answered, `latency` after its arrival.
  void release(std::chrono::nanoseconds latency, std::size_t admitted_with);
  // An admitted request that did not run after all (the pool refused it).
  void withdraw();
  [[nodiscard]] std::size_t limit() const;

 private:
  mutable errand::detail::Mutex mu_;
  std::size_t in_flight_ ERRAND_GUARDED_BY(mu_) = 0;
  guard::AdaptiveLimit adaptive_ ERRAND_GUARDED_BY(mu_);
};

}  // namespace errand::http::detail
