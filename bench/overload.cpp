// The HTTP load generator of bench/wrk/overload.sh. It tells admitted
// requests from shed ones (wrk mixes the fast 503s of a limiter into its
// percentiles) and has two modes:
//
//  * closed loop, `--connections N`: N keep-alive connections each send a
//    request, wait for its answer and send the next, for SECONDS. Finds the
//    server's capacity.
//  * open loop, `--rate R`: R requests a second arrive on schedule whatever
//    the server does, as users of a public service do (wrk2's model). Each
//    takes an idle keep-alive connection, or opens one (up to
//    `--max-connections`, then it waits for one). Latency runs from the
//    request's scheduled time, so time spent waiting for a connection counts
//    (no coordinated omission). A shed request is not retried: the user went
//    away. After SECONDS no new request is scheduled, and answers are awaited
//    up to 10 s more; what is still unanswered then is counted apart.
//
//   errand_overload PORT PATH SECONDS (--connections N | --rate R
//                   [--max-connections M]) [--body JSON]
//   (POST with a JSON body, else GET) → one line of JSON on stdout: answers
//   per second by kind and the 2xx latency percentiles.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using Clock = std::chrono::steady_clock;

namespace {

struct Tally {
  std::vector<double> ok_ms;
  std::size_t shed = 0;        // 503
  std::size_t other = 0;       // any other status, or a broken connection
  std::size_t unanswered = 0;  // open loop: still waiting when the run ended
};

class Load;

class Conn : public std::enable_shared_from_this<Conn> {
 public:
  Conn(Load& load, asio::io_context& ioc) : load_(load), stream_(ioc) {}
  void connect(Clock::time_point scheduled);
  void send(Clock::time_point scheduled);
  [[nodiscard]] bool busy() const { return busy_; }

 private:
  void on_read(beast::error_code ec);

  Load& load_;
  beast::tcp_stream stream_;
  Clock::time_point scheduled_{};
  bool busy_ = false;
  beast::flat_buffer buf_;
  bhttp::response<bhttp::string_body> res_;
};

class Load {
 public:
  Load(asio::io_context& ioc, asio::ip::tcp::endpoint ep, bhttp::request<bhttp::string_body> req)
      : ioc_(ioc), ep_(ep), req_(std::move(req)), timer_(ioc) {}

  void closed(int connections, Clock::duration length) {
    start_ = Clock::now();
    stop_at_ = start_ + length;
    closed_loop_ = true;
    for (int i = 0; i < connections; ++i) open_connection(Clock::now());
  }

  void open(double rate, std::size_t max_connections, Clock::duration length) {
    start_ = Clock::now();
    stop_at_ = start_ + length;
    rate_ = rate;
    max_connections_ = max_connections;
    tick();
  }

  // Called by a connection with its answer (status 0: the connection broke).
  void answered(const std::shared_ptr<Conn>& c, unsigned status, Clock::time_point scheduled) {
    const auto now = Clock::now();
    if (status >= 200 && status < 300) {
      tally_.ok_ms.push_back(std::chrono::duration<double, std::milli>(now - scheduled).count());
    } else if (status == 503) {
      ++tally_.shed;
    } else {
      ++tally_.other;
    }
    if (status == 0) {
      std::erase(conns_, c);
      if (!backlog_.empty()) {  // a replacement takes the oldest waiting request
        const auto t = backlog_.front();
        backlog_.pop_front();
        open_connection(t);
      }
      finish_if_done();
      return;
    }
    if (closed_loop_) {
      if (now < stop_at_) c->send(now);
      return;
    }
    if (!backlog_.empty()) {
      const auto t = backlog_.front();
      backlog_.pop_front();
      c->send(t);
      return;
    }
    idle_.push_back(c);
    finish_if_done();
  }

  [[nodiscard]] const bhttp::request<bhttp::string_body>& request() const { return req_; }
  [[nodiscard]] const asio::ip::tcp::endpoint& endpoint() const { return ep_; }
  Tally& tally() { return tally_; }
  [[nodiscard]] Clock::time_point start() const { return start_; }
  [[nodiscard]] std::size_t connections() const { return conns_.size(); }

 private:
  void open_connection(Clock::time_point scheduled) {
    auto c = std::make_shared<Conn>(*this, ioc_);
    conns_.push_back(c);
    c->connect(scheduled);
  }

  void issue(Clock::time_point scheduled) {
    if (!idle_.empty()) {
      auto c = idle_.back();
      idle_.pop_back();
      c->send(scheduled);
    } else if (conns_.size() < max_connections_) {
      open_connection(scheduled);
    } else {
      backlog_.push_back(scheduled);
    }
  }

  void tick() {
    const auto now = Clock::now();
    const auto until = std::min(now, stop_at_);
    for (;; ++issued_) {
      const auto scheduled =
          start_ + std::chrono::duration_cast<Clock::duration>(
                       std::chrono::duration<double>(static_cast<double>(issued_) / rate_));
      if (scheduled > until || scheduled >= stop_at_) break;
      issue(scheduled);
    }
    if (now >= stop_at_) {
      // Wait for what is in flight, then give up on it.
      timer_.expires_after(std::chrono::seconds(10));
      timer_.async_wait([this](beast::error_code ec) {
        if (ec) return;
        for (const auto& c : conns_) tally_.unanswered += c->busy() ? 1 : 0;
        tally_.unanswered += backlog_.size();
        ioc_.stop();
      });
      draining_ = true;
      finish_if_done();
      return;
    }
    timer_.expires_after(std::chrono::microseconds(500));
    timer_.async_wait([this](beast::error_code ec) {
      if (!ec) tick();
    });
  }

  void finish_if_done() {
    if (!draining_ || !backlog_.empty()) return;
    if (std::ranges::any_of(conns_, [](const auto& c) { return c->busy(); })) return;
    ioc_.stop();
  }

  asio::io_context& ioc_;
  asio::ip::tcp::endpoint ep_;
  bhttp::request<bhttp::string_body> req_;
  asio::steady_timer timer_;
  Tally tally_;
  bool closed_loop_ = false;
  bool draining_ = false;
  double rate_ = 0;
  std::size_t max_connections_ = 0;
  std::size_t issued_ = 0;
  Clock::time_point start_{};
  Clock::time_point stop_at_{};
  std::vector<std::shared_ptr<Conn>> conns_;
  std::vector<std::shared_ptr<Conn>> idle_;
  std::deque<Clock::time_point> backlog_;
};

void Conn::connect(Clock::time_point scheduled) {
  busy_ = true;
  scheduled_ = scheduled;
  stream_.async_connect(load_.endpoint(), [self = shared_from_this()](beast::error_code ec) {
    if (ec) {
      self->busy_ = false;
      return self->load_.answered(self, 0, self->scheduled_);
    }
    self->send(self->scheduled_);
  });
}

void Conn::send(Clock::time_point scheduled) {
  busy_ = true;
  scheduled_ = scheduled;
  bhttp::async_write(
      stream_, load_.request(), [self = shared_from_this()](beast::error_code ec, std::size_t) {
        if (ec) {
          self->busy_ = false;
          return self->load_.answered(self, 0, self->scheduled_);
        }
        self->res_ = {};
        bhttp::async_read(self->stream_, self->buf_, self->res_,
                          [self](beast::error_code rec, std::size_t) { self->on_read(rec); });
      });
}

void Conn::on_read(beast::error_code ec) {
  busy_ = false;
  load_.answered(shared_from_this(), ec ? 0U : res_.result_int(), scheduled_);
}

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  const auto k = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

int usage() {
  std::fprintf(stderr,
               "usage: errand_overload PORT PATH SECONDS (--connections N | --rate R "
               "[--max-connections M]) [--body JSON]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) return usage();
  const auto port = static_cast<unsigned short>(std::stoi(argv[1]));
  const std::string path = argv[2];
  const double seconds = std::stod(argv[3]);
  int connections = 0;
  double rate = 0;
  std::size_t max_connections = 1000;
  std::string body;
  bool has_body = false;
  for (int i = 4; i + 1 < argc; i += 2) {
    const std::string_view flag = argv[i];
    if (flag == "--connections") {
      connections = std::stoi(argv[i + 1]);
    } else if (flag == "--rate") {
      rate = std::stod(argv[i + 1]);
    } else if (flag == "--max-connections") {
      max_connections = std::stoul(argv[i + 1]);
    } else if (flag == "--body") {
      body = argv[i + 1];
      has_body = true;
    } else {
      return usage();
    }
  }
  if ((connections > 0) == (rate > 0)) return usage();

  bhttp::request<bhttp::string_body> req{has_body ? bhttp::verb::post : bhttp::verb::get, path, 11};
  req.set(bhttp::field::host, "127.0.0.1");
  if (has_body) {
    req.set(bhttp::field::content_type, "application/json");
    req.body() = body;
  }
  req.prepare_payload();

  asio::io_context ioc;
  Load load(ioc, {asio::ip::make_address("127.0.0.1"), port}, std::move(req));
  const auto length =
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  if (connections > 0) {
    load.closed(connections, length);
  } else {
    load.open(rate, max_connections, length);
  }
  ioc.run();
  // Rates are over the scheduled length: in the open loop, answers that came
  // after it belong to requests sent within it.
  auto& t = load.tally();
  const auto ok = t.ok_ms.size();
  const double p50 = percentile(t.ok_ms, 0.50);
  const double p99 = percentile(t.ok_ms, 0.99);
  fmt::print(
      "{{\"connections\":{},\"rate\":{:.0f},\"ok_per_s\":{:.0f},\"shed_per_s\":{:.0f},"
      "\"other\":{},\"unanswered\":{},\"ok_p50_ms\":{:.2f},\"ok_p99_ms\":{:.2f}}}\n",
      connections > 0 ? static_cast<std::size_t>(connections) : load.connections(), rate,
      static_cast<double>(ok) / seconds, static_cast<double>(t.shed) / seconds, t.other,
      t.unanswered, p50, p99);
  return 0;
}
