#include "blocking_pool.hpp"

#include "detail/thread_name.hpp"

namespace errand::http::detail {

BlockingPool::BlockingPool(unsigned threads, std::size_t capacity) : capacity_(capacity) {
  threads_.reserve(threads);
  for (unsigned i = 0; i < threads; ++i) {
    threads_.emplace_back([this](const std::stop_token& stop) { work(stop); });
    errand::detail::name_thread(threads_.back(), "errand-blocking");
  }
}

bool BlockingPool::try_submit(Job job) {
  {
    const errand::detail::MutexLock lock(mu_);
    if (closed_ || queue_.size() >= capacity_) return false;
    queue_.push_back(std::move(job));
  }
  cv_.notify_one();
  return true;
}

void BlockingPool::cancel_running() {
  for (auto& t : threads_) t.request_stop();
}

void BlockingPool::shutdown(bool cancel) {
  {
    const errand::detail::MutexLock lock(mu_);
    if (closed_ && threads_.empty()) return;
    closed_ = true;
  }
  if (cancel) cancel_running();
  cv_.notify_all();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

std::size_t BlockingPool::queued() const {
  const errand::detail::MutexLock lock(mu_);
  return queue_.size();
}

std::size_t BlockingPool::active() const {
  const errand::detail::MutexLock lock(mu_);
  return active_;
}

void BlockingPool::work(const std::stop_token& stop) {
  while (true) {
    Job job;
    {
      errand::detail::MutexLock lock(mu_);
      lock.wait(cv_, [&]() ERRAND_REQUIRES(mu_) { return !queue_.empty() || closed_; });
      if (queue_.empty()) return;  // closed and drained
      job = std::move(queue_.front());
      queue_.pop_front();
      ++active_;
    }
    job(stop);  // jobs never throw: the dispatcher catches everything
    const errand::detail::MutexLock lock(mu_);
    --active_;
  }
}

}  // namespace errand::http::detail
