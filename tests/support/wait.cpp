#include "support/wait.hpp"

#include <thread>

namespace errand::test {

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

void Gate::open() {
  {
    const std::lock_guard lock(mu_);
    open_ = true;
  }
  cv_.notify_all();
}

bool Gate::wait(std::stop_token stop) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, stop, 60s, [this] { return open_; });
}

}  // namespace errand::test
