// 10,000 keep-alive connections held open beside a load of enqueues and status
// reads, against a real `errand serve` (--max-connections 10,500: above the
// default of 10,000): every held connection is served and stays usable, the
// load gets nothing but 202/200 and deliberate 503s, and the server's
// resident memory stays bounded (reported). The client side holds plain
// sockets (one descriptor each); the test raises its open-file limit, which
// the server inherits and raises itself if needed.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <thread>

#include <fmt/format.h>

#include "support/child_process.hpp"
#include "support/http_client.hpp"
#include "support/temp_dir.hpp"

namespace errand::app {
namespace {

using namespace std::chrono_literals;

constexpr int kHeld = 10'000;

// One blocking socket: connect, one request, read its (small) response.
class Held {
 public:
  explicit Held(std::uint16_t port) : fd_(socket(AF_INET, SOCK_STREAM, 0)) {
    timeval tv{10, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    // NOLINTNEXTLINE(*-reinterpret-cast): the sockets API
    ok_ = fd_ >= 0 && connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~Held() {
    if (fd_ >= 0) close(fd_);
  }
  Held(const Held&) = delete;
  Held& operator=(const Held&) = delete;
  Held(Held&& o) noexcept : fd_(std::exchange(o.fd_, -1)), ok_(o.ok_) {}

  // GET /healthz on this connection; true when a 200 came back.
  bool ping() {
    static constexpr std::string_view req = "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n";
    if (!ok_ ||
        send(fd_, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
      return false;
    }
    std::string got;
    char buf[1024];
    while (got.find("\r\n\r\n") == std::string::npos || !got.ends_with("}")) {
      const auto n = recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return false;
      got.append(buf, static_cast<std::size_t>(n));
    }
    return got.starts_with("HTTP/1.1 200 ");
  }

 private:
  int fd_;
  bool ok_ = false;
};

std::size_t rss_kib(pid_t pid) {
  std::ifstream in(fmt::format("/proc/{}/status", pid));
  std::string key;
  while (in >> key) {
    if (key == "VmRSS:") {
      std::size_t kib = 0;
      in >> kib;
      return kib;
    }
    in.ignore(4096, '\n');
  }
  return 0;
}

TEST(ManyConnections, TenThousandHeldBesideTheLoad) {
  rlimit lim{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &lim), 0);
  if (lim.rlim_max != RLIM_INFINITY && lim.rlim_max < kHeld + 512) {
    GTEST_SKIP() << "the hard open-file limit (" << lim.rlim_max << ") is below " << kHeld + 512;
  }
  lim.rlim_cur = lim.rlim_max == RLIM_INFINITY ? kHeld + 4096 : lim.rlim_max;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &lim), 0);

  test::TempDir dir;
  test::ChildProcess server(
      {ERRAND_CLI, "serve", "--listen", "127.0.0.1:0", "--db", (dir.path() / "errand.db").string(),
       "--max-connections", "10500", "--queues", "default=4", "--log-level", "info"},
      dir.path() / "server.log");
  const auto port = server.wait_port();
  ASSERT_NE(port, 0) << server.log();
  const auto idle_rss = rss_kib(server.pid());

  std::vector<Held> held;
  held.reserve(kHeld);
  int served = 0;
  for (int i = 0; i < kHeld; ++i) {
    held.emplace_back(port);
    if (held.back().ping()) ++served;
  }
  EXPECT_EQ(served, kHeld) << "every held connection is served";
  const auto held_rss = rss_kib(server.pid());

  // The load beside them: enqueues and status reads from 4 clients.
  std::atomic<int> ok{0}, refused{0}, other{0};
  {
    std::vector<std::jthread> load;
    const auto until = std::chrono::steady_clock::now() + 5s;
    for (int t = 0; t < 4; ++t) {
      load.emplace_back([&] {
        test::Client c(port, 30s);
        std::string last;
        while (std::chrono::steady_clock::now() < until) {
          const auto r = c.request("POST", "/v1/tasks", R"({"type":"demo.noop"})",
                                   {{"Content-Type", "application/json"}});
          if (r.status == 202) {
            last = std::string(r.json().at("id").as_string());
            ++ok;
          } else if (r.status == 503) {
            ++refused;
          } else {
            ++other;
          }
          if (!last.empty()) {
            const auto s = c.request("GET", "/v1/tasks/" + last);
            (s.status == 200 ? ok : s.status == 503 ? refused : other)++;
          }
        }
      });
    }
  }
  EXPECT_EQ(other.load(), 0) << "only 202/200 and deliberate 503s";
  EXPECT_GT(ok.load(), 0);
  const auto loaded_rss = rss_kib(server.pid());

  // The held connections are still there, and still served.
  int still = 0;
  for (int i = 0; i < kHeld; i += 100) still += held[static_cast<std::size_t>(i)].ping() ? 1 : 0;
  EXPECT_EQ(still, kHeld / 100);
  // Bounded: under 64 KiB per held connection, plus room for ASan's
  // quarantine of freed memory (256 MiB) in the sanitizer builds CI runs.
  EXPECT_LT(loaded_rss, idle_rss + kHeld * 64 + 256 * 1024) << "KiB";
  std::cout << fmt::format(
      "many connections: {} held and served; load: {} answered, {} refused (503); server RSS "
      "{} MiB idle, {} MiB with the connections held, {} MiB after the load\n",
      served, ok.load(), refused.load(), idle_rss / 1024, held_rss / 1024, loaded_rss / 1024);
  held.clear();
  EXPECT_EQ(server.terminate(), 0);
}

}  // namespace
}  // namespace errand::app
