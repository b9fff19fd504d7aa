#pragma once
// Configuration of `errand serve`: every flag has an ERRAND_* environment
// equivalent (flags win). Parsing helpers throw std::invalid_argument with a
// message fit for the command line.

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "errand/app/builtin_tasks.hpp"
#include "errand/http/server.hpp"
#include "errand/observe/logger.hpp"
#include "errand/store/sqlite_store.hpp"
#include "errand/tasks/runtime.hpp"

namespace errand::app {

struct Config {
  http::ServerConfig http;
  std::chrono::milliseconds request_timeout{std::chrono::seconds(30)};
  observe::Level log_level = observe::Level::info;

  enum class StoreKind : std::uint8_t { sqlite, memory } store = StoreKind::sqlite;
  store::SqliteOptions sqlite;
  std::vector<tasks::QueueConfig> queues = {tasks::QueueConfig{}};
  std::chrono::milliseconds task_grace{std::chrono::seconds(10)};
  std::chrono::milliseconds lease{std::chrono::seconds(30)};
  std::chrono::milliseconds retention{std::chrono::hours(24 * 7)};
  SmtpOptions smtp;
};

// "default=4,mail=2:3": queue name = workers [: weight]. Throws std::invalid_argument.
[[nodiscard]] std::vector<tasks::QueueConfig> parse_queues(std::string_view text);

// "250ms", "10s", "2m", "1h"; a bare number is seconds.
[[nodiscard]] std::chrono::milliseconds parse_duration(std::string_view text);
// "127.0.0.1:8080", "[::1]:8080", ":8080" (all interfaces), "localhost:80".
[[nodiscard]] std::pair<std::string, std::uint16_t> parse_listen(std::string_view text);

// The `errand` command line: serve, --version, --help. Returns the exit code.
[[nodiscard]] int cli_main(int argc, char** argv);

}  // namespace errand::app
