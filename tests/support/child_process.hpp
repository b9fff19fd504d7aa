#pragma once
// A program started by a test: its stderr goes to a file the test can read,
// and the process is killed if the test forgets it. For the example programs
// and `errand serve`, which log a JSON "listening" line with their port.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace errand::test {

using namespace std::chrono_literals;

class ChildProcess {
 public:
  // argv[0] is the program's path; `env` entries ("NAME=value") are added to
  // this process's environment.
  ChildProcess(std::vector<std::string> argv, std::filesystem::path log,
               std::vector<std::string> env = {});
  ~ChildProcess();  // SIGKILL if still running
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  [[nodiscard]] bool started() const { return pid_ > 0; }
  [[nodiscard]] pid_t pid() const { return pid_; }
  // The port of the first `"msg":"listening"` log line; 0 if none came in time.
  [[nodiscard]] std::uint16_t wait_port(std::chrono::milliseconds timeout = 60s) const;
  // Everything it wrote to stderr so far.
  [[nodiscard]] std::string log() const;
  [[nodiscard]] std::vector<std::string> log_lines() const;
  // SIGTERM, then wait: the exit code (128 + signal when killed by one).
  int terminate();
  void kill_now();

 private:
  std::filesystem::path log_;
  pid_t pid_ = 0;
};

// A free TCP port on 127.0.0.1 (for programs that cannot pick their own).
[[nodiscard]] std::uint16_t free_port();

}  // namespace errand::test
