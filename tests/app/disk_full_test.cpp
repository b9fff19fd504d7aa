// A disk that fills up under the SQLite file: a 4 MiB tmpfs mounted for the
// test (it needs CAP_SYS_ADMIN, which CI's root has; elsewhere it skips,
// saying so). `errand serve` answers enqueues 507 `store_full` once the disk
// is full, keeps serving reads, says so on /readyz, and recovers by itself
// when space returns (the tmpfs grown to 64 MiB): /readyz ready again and
// enqueues 202, without a restart.
#include <gtest/gtest.h>
#include <sys/mount.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "support/child_process.hpp"
#include "support/http_client.hpp"
#include "support/temp_dir.hpp"

namespace errand::app {
namespace {

using namespace std::chrono_literals;

// A tmpfs at `dir` for the test's life; unmounted (lazily) at the end.
class Tmpfs {
 public:
  explicit Tmpfs(std::filesystem::path dir) : dir_(std::move(dir)) {
    std::filesystem::create_directories(dir_);
    mounted_ = mount("tmpfs", dir_.c_str(), "tmpfs", 0, "size=4m") == 0;
    if (!mounted_) error_ = std::strerror(errno);
  }
  ~Tmpfs() {
    if (mounted_) umount2(dir_.c_str(), MNT_DETACH);
  }
  Tmpfs(const Tmpfs&) = delete;
  Tmpfs& operator=(const Tmpfs&) = delete;
  [[nodiscard]] bool mounted() const { return mounted_; }
  [[nodiscard]] const std::string& error() const { return error_; }
  bool grow() { return mount("tmpfs", dir_.c_str(), "tmpfs", MS_REMOUNT, "size=64m") == 0; }

 private:
  std::filesystem::path dir_;
  bool mounted_ = false;
  std::string error_;
};

TEST(DiskFull, EnqueuesAre507ReadsWorkAndTheServerRecoversAlone) {
  test::TempDir dir;
  Tmpfs disk(dir.path() / "disk");
  if (!disk.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here: " << disk.error();
  test::ChildProcess server({ERRAND_CLI, "serve", "--listen", "127.0.0.1:0", "--db",
                             (dir.path() / "disk" / "errand.db").string(), "--queues", "default=1",
                             "--log-level", "info"},
                            dir.path() / "server.log");  // the log is not on the small disk
  const auto port = server.wait_port();
  ASSERT_NE(port, 0) << server.log();
  test::Client c(port, 30s);
  // Tasks that wait an hour: they stay on the disk.
  const auto body =
      fmt::format(R"({{"type":"demo.noop","delay_ms":3600000,"payload":{{"pad":"{}"}}}})",
                  std::string(64 * 1024, 'x'));
  const auto enqueue = [&] {
    return c.request("POST", "/v1/tasks", body, {{"Content-Type", "application/json"}});
  };
  std::string stored;
  int full_at = 0;
  for (int i = 1; i <= 400 && full_at == 0; ++i) {
    const auto r = enqueue();
    if (r.status == 202) {
      stored = std::string(r.json().at("id").as_string());
      continue;
    }
    ASSERT_EQ(r.status, 507) << r.body;
    EXPECT_EQ(r.json().at("error").at("code").as_string(), "store_full");
    full_at = i;
  }
  ASSERT_GT(full_at, 1) << "the disk never filled, or filled at once";
  // Full: reads work, the process serves, /readyz says why it is not ready.
  EXPECT_EQ(c.request("GET", "/v1/tasks/" + stored).status, 200);
  EXPECT_EQ(c.request("GET", "/healthz").status, 200);
  const auto ready = c.request("GET", "/readyz");
  EXPECT_EQ(ready.status, 503);
  EXPECT_EQ(ready.json().at("error").at("code").as_string(), "store_full");
  EXPECT_EQ(enqueue().status, 507) << "still full";

  // Space returns: the node heartbeat's next write succeeds, and with it the store.
  ASSERT_TRUE(disk.grow());
  ASSERT_TRUE(test::eventually([&] { return c.request("GET", "/readyz").status == 200; }, 60s))
      << "did not recover by itself";
  EXPECT_EQ(enqueue().status, 202);
  EXPECT_EQ(server.terminate(), 0);
}

}  // namespace
}  // namespace errand::app
