#include "support/smtp_server.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "support/wait.hpp"

namespace errand::test {

SmtpServer::SmtpServer(const std::filesystem::path& dir)
    : maildir_(dir / "mail"), port_(free_port()) {
  std::filesystem::create_directories(dir);
  process_ = std::make_unique<ChildProcess>(
      std::vector<std::string>{"/usr/bin/python3", "-m", "aiosmtpd", "-n", "-l",
                               "127.0.0.1:" + std::to_string(port_), "-c",
                               "aiosmtpd.handlers.Mailbox", maildir_.string()},
      dir / "smtp.log");
}

bool SmtpServer::ready() const {
  const auto accepts = [this] {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port_);
    const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    close(fd);
    return ok;
  };
  return process_->started() && eventually(accepts, 30s);
}

std::vector<std::string> SmtpServer::messages() const {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(maildir_ / "new", ec)) {
    std::ifstream in(e.path());
    std::stringstream s;
    s << in.rdbuf();
    out.push_back(s.str());
  }
  return out;
}

}  // namespace errand::test
