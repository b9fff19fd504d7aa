#pragma once
// Internal: a fixed set of threads with a bounded FIFO of jobs, for handlers
// that block. try_submit() never waits: a full queue is the caller's signal to
// shed load (503). shutdown() lets queued jobs run (their stop token is
// requested only when `cancel` is set) and joins every thread.

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <stop_token>
#include <thread>
#include <vector>

#include "errand/detail/thread_annotations.hpp"

namespace errand::http::detail {

class BlockingPool {
 public:
  using Job = std::function<void(std::stop_token)>;

  BlockingPool(unsigned threads, std::size_t capacity);
  ~BlockingPool() { shutdown(true); }
  BlockingPool(const BlockingPool&) = delete;
  BlockingPool& operator=(const BlockingPool&) = delete;

  // False when the queue holds `capacity` waiting jobs or the pool is shut down.
  [[nodiscard]] bool try_submit(Job job);
  // Requests every running job's stop token; does not wait.
  void cancel_running();
  // Stops accepting, runs what is queued (cancelled first if `cancel`), joins.
  void shutdown(bool cancel);

  [[nodiscard]] std::size_t queued() const;
  [[nodiscard]] std::size_t active() const;

 private:
  void work(const std::stop_token& stop);

  mutable errand::detail::Mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_ ERRAND_GUARDED_BY(mu_);
  std::size_t active_ ERRAND_GUARDED_BY(mu_) = 0;
  bool closed_ ERRAND_GUARDED_BY(mu_) = false;
  std::size_t capacity_;
  std::vector<std::jthread> threads_;
};

}  // namespace errand::http::detail
