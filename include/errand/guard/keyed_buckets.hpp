#pragma once
// One token bucket per key (client IP, API key ...), with bounded memory: at
// most `max_keys` buckets; taking one for a new key past that evicts the key
// used least recently (its client starts again with a full bucket, which errs
// on the side of letting traffic through). Thread-safe.

#include <chrono>
#include <cstddef>
#include <list>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "errand/guard/token_bucket.hpp"

#include "errand/detail/thread_annotations.hpp"

namespace errand::guard {

class KeyedBuckets {
 public:
  KeyedBuckets(double rate, double burst, std::size_t max_keys);

  struct Take {
    bool allowed = false;
    double remaining = 0;               // tokens left after this request
    std::chrono::milliseconds wait{0};  // until the next token, when not allowed
  };
  [[nodiscard]] Take take(std::string_view key, TokenBucket::TimePoint now);
  [[nodiscard]] std::size_t size() const;

 private:
  struct Entry {
    double tokens;
    TokenBucket::TimePoint last;
    std::list<std::string>::iterator lru;
  };
  double rate_;
  double burst_;
  std::size_t max_keys_;
  mutable errand::detail::Mutex mu_;
  std::unordered_map<std::string, Entry> entries_ ERRAND_GUARDED_BY(mu_);
  std::list<std::string> lru_ ERRAND_GUARDED_BY(mu_);
};

}  // namespace errand::guard
