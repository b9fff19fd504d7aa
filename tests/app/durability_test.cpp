// Durability through the whole stack: many concurrent enqueues over HTTP to a
// real `errand serve` process, SIGKILL mid-stream, restart on the same SQLite
// file: every task that was answered 202 is there and eventually succeeds.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <atomic>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "support/http_client.hpp"
#include "support/temp_dir.hpp"

extern char** environ;

namespace errand::app {
namespace {

using namespace std::chrono_literals;

// `errand serve` as a child process, its stderr in a file.
class ServerProcess {
 public:
  ServerProcess(const std::filesystem::path& db, const std::filesystem::path& log) : log_(log) {
    // A short lease: the killed server's running tasks come back within seconds.
    std::vector<std::string> args = {
        ERRAND_CLI, "serve",     "--listen",    "127.0.0.1:0", "--threads",          "2",
        "--db",     db.string(), "--queues",    "default=4",   "--blocking-threads", "16",
        "--lease",  "2s",        "--log-level", "info"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t files;
    posix_spawn_file_actions_init(&files);
    posix_spawn_file_actions_addopen(&files, 2, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (posix_spawn(&pid_, argv[0], &files, nullptr, argv.data(), environ) != 0) pid_ = 0;
    posix_spawn_file_actions_destroy(&files);
  }
  ~ServerProcess() { kill_now(); }
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  // The port from the "listening" log line; 0 if it never came.
  std::uint16_t wait_port() {
    std::uint16_t port = 0;
    const std::regex listening(R"re("msg":"listening".*"port":(\d+))re");
    (void)test::eventually(
        [&] {
          std::ifstream in(log_);
          std::stringstream s;
          s << in.rdbuf();
          const std::string text = s.str();
          std::smatch m;
          if (std::regex_search(text, m, listening))
            port = static_cast<std::uint16_t>(std::stoi(m[1]));
          return port != 0;
        },
        60s);
    return port;
  }
  void kill_now() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = 0;
  }
  int terminate() {
    kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = 0;
    return status;
  }

 private:
  std::filesystem::path log_;
  pid_t pid_ = 0;
};

TEST(Durability, EveryAcknowledgedEnqueueSurvivesSigkill) {
  test::TempDir dir;
  const auto db = dir.path() / "errand.db";
  std::vector<std::string> acked;
  std::mutex mu;
  {
    ServerProcess server(db, dir.path() / "first.log");
    const auto port = server.wait_port();
    ASSERT_NE(port, 0) << "errand serve did not start";

    constexpr int kThreads = 8;
    constexpr int kEach = 625;  // 5,000 enqueues in all, unless the kill stops them
    std::atomic<std::size_t> count{0};
    std::atomic<bool> killed{false};
    std::vector<std::jthread> clients;
    for (int t = 0; t < kThreads; ++t) {
      clients.emplace_back([&, t] {
        try {
          test::Client c(port, 30s);
          for (int i = 0; i < kEach && !killed.load(); ++i) {
            const auto r = c.request("POST", "/v1/tasks",
                                     R"({"type":"demo.sleep","payload":{"seconds":0,"steps":1}})",
                                     {{"Content-Type", "application/json"}});
            if (r.status != 202) continue;  // 503 under load is an honest refusal
            const std::lock_guard lock(mu);
            acked.emplace_back(r.json().at("id").as_string());
            ++count;
          }
        } catch (const std::exception&) {
          // the server was killed under this client: stop
        }
        (void)t;
      });
    }
    // Mid-stream: about half of them acknowledged, the rest still coming.
    ASSERT_TRUE(test::eventually([&] { return count.load() >= 2500; }, 120s));
    killed = true;
    server.kill_now();
  }
  ASSERT_GE(acked.size(), 2500U);

  ServerProcess again(db, dir.path() / "second.log");
  const auto port = again.wait_port();
  ASSERT_NE(port, 0) << "errand serve did not restart";
  test::Client c(port, 30s);
  std::size_t next = 0;  // acked ids are checked in order; each one until it succeeded
  ASSERT_TRUE(test::eventually(
      [&] {
        while (next < acked.size()) {
          const auto r = c.request("GET", "/v1/tasks/" + acked[next]);
          if (r.status != 200) {
            ADD_FAILURE() << "acknowledged task " << acked[next] << " is gone: " << r.status;
            return true;
          }
          if (r.json().at("state").as_string() != "succeeded") return false;
          ++next;
        }
        return true;
      },
      180s))
      << next << " of " << acked.size() << " succeeded";
  EXPECT_EQ(next, acked.size());
  EXPECT_EQ(again.terminate(), 0);
}

}  // namespace
}  // namespace errand::app
