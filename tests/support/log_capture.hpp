#pragma once
// A logger whose lines a test can search: LogCapture::logger() writes into
// it, contains() asks whether some line holds a piece of text. Thread-safe:
// runtimes log from many threads.

#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "errand/observe/logger.hpp"

namespace errand::test {

class LogCapture {
 public:
  // A JSON-lines logger into this capture; it must not outlive the capture.
  [[nodiscard]] observe::Logger logger() {
    return observe::Logger::to_callback([this](std::string_view line) {
      const std::lock_guard lock(mu_);
      lines_.emplace_back(line);
    });
  }
  [[nodiscard]] bool contains(std::string_view needle) const {
    const std::lock_guard lock(mu_);
    for (const auto& l : lines_) {
      if (l.find(needle) != std::string::npos) return true;
    }
    return false;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> lines_;
};

}  // namespace errand::test
