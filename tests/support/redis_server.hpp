#pragma once
// A real redis-server for a test: Debian's /usr/bin/redis-server (installed by
// scripts/bootstrap) on a free port of 127.0.0.1, with its data in a temporary
// directory of its own, started by the constructor and killed by the
// destructor. stop()/start() and kill() let a test take Redis away mid-run and
// bring it back on the same port with the same data (as persistence allows).
// Not thread-safe: one test thread drives it.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "support/child_process.hpp"
#include "support/temp_dir.hpp"

namespace errand::test {

class RedisServer {
 public:
  struct Options {
    bool append_only = false;  // AOF with appendfsync always: a restart keeps every write
  };
  // Throws std::runtime_error naming the cause when it cannot start.
  explicit RedisServer(Options options);
  RedisServer() : RedisServer(Options{}) {}
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  [[nodiscard]] std::uint16_t port() const { return port_; }
  [[nodiscard]] std::string url() const;  // redis://127.0.0.1:PORT
  [[nodiscard]] bool running() const { return process_ != nullptr; }

  // Graceful (SIGTERM: Redis saves per its persistence), then waits.
  void stop();
  // SIGKILL: what was not yet persisted is lost.
  void kill();
  // Starts again on the same port and directory; waits until it answers.
  void start();

  // One command over a fresh connection (hiredis); its reply as text
  // ("PONG", "OK", a bulk string; nullopt for a nil reply). Throws
  // std::runtime_error when Redis cannot be reached or answers an error.
  std::optional<std::string> command(const std::string& format_and_args) const;

 private:
  void launch();
  bool answers() const;

  Options options_;
  TempDir dir_;
  std::uint16_t port_ = 0;
  std::unique_ptr<ChildProcess> process_;
};

}  // namespace errand::test
