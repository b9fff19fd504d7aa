// Durability through the whole stack: many concurrent enqueues over HTTP to a
// real `errand serve` process, SIGKILL mid-stream, restart on the same SQLite
// file: every task that was answered 202 is there and eventually succeeds.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "support/child_process.hpp"
#include "support/http_client.hpp"
#include "support/temp_dir.hpp"

namespace errand::app {
namespace {

using namespace std::chrono_literals;

// `errand serve` as a child process, its stderr in a file. A short lease: the
// killed server's running tasks come back within seconds.
class ServerProcess : public test::ChildProcess {
 public:
  ServerProcess(const std::filesystem::path& db, const std::filesystem::path& log)
      : ChildProcess({ERRAND_CLI, "serve", "--listen", "127.0.0.1:0", "--threads", "2", "--db",
                      db.string(), "--queues", "default=4", "--blocking-threads", "16", "--lease",
                      "2s", "--log-level", "info"},
                     log) {}
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
