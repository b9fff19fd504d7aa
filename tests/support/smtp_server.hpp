#pragma once
// A real SMTP server for the duration of a test: Debian's python3-aiosmtpd on
// a free port, storing each message it accepts in a Maildir.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "support/child_process.hpp"

namespace errand::test {

class SmtpServer {
 public:
  explicit SmtpServer(const std::filesystem::path& dir);

  // Accepting connections (waits up to 30 s).
  [[nodiscard]] bool ready() const;
  [[nodiscard]] std::uint16_t port() const { return port_; }
  // Every message received so far, headers and body.
  [[nodiscard]] std::vector<std::string> messages() const;

 private:
  std::filesystem::path maildir_;
  std::uint16_t port_ = 0;
  std::unique_ptr<ChildProcess> process_;
};

}  // namespace errand::test
