#pragma once
// Waiting on conditions instead of sleeping: the machines that run CI are small
// and busy, so every wait has a generous deadline and no test asserts timing.

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <stop_token>

namespace errand::test {

using namespace std::chrono_literals;

// Polls `condition` until it holds or `timeout` passes.
bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout = 20s);

// A gate a test opens to let blocked handlers go on.
class Gate {
 public:
  void open();
  // Waits until opened or `stop` is requested; returns true if opened.
  bool wait(std::stop_token stop = {});

 private:
  std::mutex mu_;
  std::condition_variable_any cv_;
  bool open_ = false;
};

}  // namespace errand::test
