#include "support/child_process.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <regex>
#include <sstream>

#include "support/wait.hpp"

extern char** environ;

namespace errand::test {

ChildProcess::ChildProcess(std::vector<std::string> argv, std::filesystem::path log,
                           std::vector<std::string> env)
    : log_(std::move(log)) {
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  std::vector<std::string> vars;
  for (char** e = environ; *e != nullptr; ++e) vars.emplace_back(*e);
  for (auto& e : env) vars.push_back(std::move(e));
  std::vector<char*> envp;
  for (auto& v : vars) envp.push_back(v.data());
  envp.push_back(nullptr);
  posix_spawn_file_actions_t files;
  posix_spawn_file_actions_init(&files);
  posix_spawn_file_actions_addopen(&files, 2, log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (posix_spawn(&pid_, args[0], &files, nullptr, args.data(), envp.data()) != 0) pid_ = 0;
  posix_spawn_file_actions_destroy(&files);
}

ChildProcess::~ChildProcess() {
  kill_now();
}

std::string ChildProcess::log() const {
  std::ifstream in(log_);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::string> ChildProcess::log_lines() const {
  std::vector<std::string> out;
  std::istringstream in(log());
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

std::uint16_t ChildProcess::wait_port(std::chrono::milliseconds timeout) const {
  std::uint16_t port = 0;
  const std::regex listening(R"re("msg":"listening".*"port":(\d+))re");
  (void)eventually(
      [&] {
        const std::string text = log();
        std::smatch m;
        if (std::regex_search(text, m, listening)) {
          port = static_cast<std::uint16_t>(std::stoi(m[1]));
        }
        return port != 0;
      },
      timeout);
  return port;
}

int ChildProcess::terminate() {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGTERM);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = 0;
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WEXITSTATUS(status);
}

void ChildProcess::kill_now() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = 0;
}

std::uint16_t free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  std::uint16_t port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  close(fd);
  return port;
}

}  // namespace errand::test
