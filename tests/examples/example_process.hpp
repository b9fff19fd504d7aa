#pragma once
// Runs one of the programs in examples/ as its own process on a free port,
// with its tasks in a temp dir, and talks to it over HTTP — as a user would.
// Under the sanitizer builds the example is instrumented too: a race or a
// leak makes it exit non-zero, which stop() reports.

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "support/child_process.hpp"
#include "support/http_client.hpp"
#include "support/temp_dir.hpp"

namespace errand::test {

class ExampleProcess {
 public:
  explicit ExampleProcess(const std::string& name, std::vector<std::string> env = {}) {
    env.push_back("PORT=0");
    env.push_back("DB=" + (dir_.path() / "tasks.db").string());
    process_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{std::string(ERRAND_EXAMPLES_DIR) + "/errand_example_" + name},
        dir_.path() / "stderr.log", std::move(env));
    port_ = process_->wait_port();
  }

  [[nodiscard]] std::uint16_t port() const { return port_; }
  [[nodiscard]] const std::filesystem::path& dir() const { return dir_.path(); }
  [[nodiscard]] std::vector<std::string> log_lines() const { return process_->log_lines(); }
  [[nodiscard]] std::string log() const { return process_->log(); }

  RawResponse request(std::string_view method, std::string_view target, std::string_view body = {},
                      std::vector<std::pair<std::string, std::string>> headers = {}) const {
    Client c(port_, 30s);
    return c.request(method, target, body, std::move(headers));
  }
  RawResponse get(std::string_view target) const { return request("GET", target); }
  RawResponse post(std::string_view target, std::string_view body,
                   std::vector<std::pair<std::string, std::string>> headers = {}) const {
    headers.emplace_back("Content-Type", "application/json");
    return request("POST", target, body, std::move(headers));
  }

  // SIGTERM and wait: 0 after a clean, graceful exit.
  int stop() { return process_->terminate(); }

 private:
  TempDir dir_;
  std::unique_ptr<ChildProcess> process_;
  std::uint16_t port_ = 0;
};

}  // namespace errand::test
