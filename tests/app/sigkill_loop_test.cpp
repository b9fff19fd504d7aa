// SIGKILL, again and again: `errand serve` on one SQLite file is killed at a
// random moment of a mix of enqueues and task completions, then restarted,
// ERRAND_SIGKILL_CYCLES times (6 in CI, where it takes about a minute under
// ASan; docs/operations.md reports a 20-cycle run). The tasks are http.request
// calls to an endpoint here that counts each task's calls (by its
// X-Errand-Task-Id). After the last restart: every acknowledged task is
// stored and succeeds; a task ran more than once only after a lost lease
// (each extra call matches a `lost` attempt in its history). The figures go
// to the test's output.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include <fmt/format.h>

#include "support/child_process.hpp"
#include "support/http_client.hpp"
#include "support/temp_dir.hpp"

namespace errand::app {
namespace {

using namespace std::chrono_literals;

int cycles() {
  const char* v = std::getenv("ERRAND_SIGKILL_CYCLES");
  return v != nullptr ? std::max(1, std::atoi(v)) : 6;
}

// Counts calls per task; answers 200 at once.
class Endpoint {
 public:
  Endpoint() {
    srv_.router().post("/hook", [this](http::Context& c) {
      const std::string id(c.header("X-Errand-Task-Id").value_or(""));
      {
        const std::lock_guard lock(mu_);
        ++calls_[id];
      }
      c.text(200, "ok");
    });
    srv_.start();
  }
  [[nodiscard]] std::uint16_t port() const { return srv_.port(); }
  [[nodiscard]] std::map<std::string, int> calls() const {
    const std::lock_guard lock(mu_);
    return calls_;
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, int> calls_;
  test::TestServer srv_;
};

class Server : public test::ChildProcess {
 public:
  Server(const std::filesystem::path& db, const std::filesystem::path& log)
      : ChildProcess({ERRAND_CLI, "serve", "--listen", "127.0.0.1:0", "--threads", "2", "--db",
                      db.string(), "--queues", "default=4", "--lease", "2s", "--log-level",
                      "info"},  // wait_port() reads the "listening" line
                     log) {}
};

TEST(SigkillLoop, AcknowledgedTasksSurviveAndRunTwiceOnlyAfterALostLease) {
  test::TempDir dir;
  Endpoint endpoint;
  const auto db = dir.path() / "errand.db";
  const auto body = fmt::format(
      R"({{"type":"http.request","payload":{{"method":"POST","url":"http://127.0.0.1:{}/hook"}}}})",
      endpoint.port());
  std::mt19937 rng(std::random_device{}());
  std::vector<std::string> acked;
  std::size_t refused = 0;
  const int n = cycles();
  for (int cycle = 0; cycle < n; ++cycle) {
    Server server(db, dir.path() / fmt::format("cycle-{}.log", cycle));
    const auto port = server.wait_port();
    ASSERT_NE(port, 0) << "errand serve did not start, cycle " << cycle << ":\n" << server.log();
    std::atomic<bool> stop{false};
    std::mutex mu;
    std::vector<std::jthread> clients;
    for (int t = 0; t < 2; ++t) {
      clients.emplace_back([&] {
        try {
          test::Client c(port, 10s);
          while (!stop.load()) {
            const auto r =
                c.request("POST", "/v1/tasks", body, {{"Content-Type", "application/json"}});
            const std::lock_guard lock(mu);
            if (r.status == 202) {
              acked.emplace_back(r.json().at("id").as_string());
            } else {
              ++refused;  // an honest refusal (503 under load), never stored
            }
          }
        } catch (const std::exception&) {  // NOLINT(bugprone-empty-catch): killed under it
        }
      });
    }
    // A random moment: enqueues in flight, tasks running, commits queued.
    std::this_thread::sleep_for(std::chrono::milliseconds(
        std::uniform_int_distribution<int>(100, 1500)(rng)));  // the kill point, not a wait
    server.kill_now();
    stop = true;
    clients.clear();
  }
  ASSERT_FALSE(acked.empty());

  Server last(db, dir.path() / "last.log");
  const auto port = last.wait_port();
  ASSERT_NE(port, 0) << last.log();
  test::Client c(port, 30s);
  std::size_t next = 0;
  std::size_t reran = 0;
  std::size_t lost_attempts = 0;
  ASSERT_TRUE(test::eventually(
      [&] {
        while (next < acked.size()) {
          const auto r = c.request("GET", "/v1/tasks/" + acked[next]);
          if (r.status != 200) {
            ADD_FAILURE() << "acknowledged task " << acked[next] << " is gone: " << r.status;
            return true;
          }
          const auto t = r.json().as_object();
          if (t.at("state").as_string() != "succeeded") return false;
          std::size_t lost = 0;
          for (const auto& a : t.at("past_attempts").as_array()) {
            if (a.at("outcome").as_string() == "lost") ++lost;
          }
          const int calls = endpoint.calls()[acked[next]];
          EXPECT_GE(calls, 1) << acked[next] << " succeeded without running";
          EXPECT_LE(static_cast<std::size_t>(calls), lost + 1)
              << acked[next] << " ran " << calls << " times with " << lost << " lost leases";
          if (calls > 1) ++reran;
          lost_attempts += lost;
          ++next;
        }
        return true;
      },
      240s))
      << next << " of " << acked.size() << " succeeded";
  EXPECT_EQ(last.terminate(), 0);
  std::cout << fmt::format(
      "sigkill loop: {} cycles, {} tasks acknowledged (all stored and succeeded), {} refused, {} "
      "lost leases, {} tasks ran twice (each after a lost lease)\n",
      n, acked.size(), refused, lost_attempts, reran);
}

}  // namespace
}  // namespace errand::app
