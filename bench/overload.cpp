// A closed-loop HTTP load generator that tells admitted requests from shed
// ones, for bench/wrk/overload.sh: `connections` keep-alive connections each
// send one request, wait for its answer, and send the next, for `seconds`.
// It reports answers per second by status class and the latency percentiles
// of the 2xx answers alone (wrk mixes in the fast 503s of a limiter).
//
//   errand_overload PORT PATH CONNECTIONS SECONDS [BODY]
//   (POST with a JSON BODY, else GET) → one line of JSON on stdout.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <boost/asio/connect.hpp>
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
  std::size_t shed = 0;   // 503
  std::size_t other = 0;  // anything else, or a broken connection
};

class Conn : public std::enable_shared_from_this<Conn> {
 public:
  Conn(asio::io_context& ioc, const bhttp::request<bhttp::string_body>& req, Tally& tally,
       Clock::time_point until)
      : stream_(ioc), req_(req), tally_(tally), until_(until) {}

  void start(const asio::ip::tcp::endpoint& ep) {
    stream_.async_connect(ep, [self = shared_from_this()](beast::error_code ec) {
      if (ec) {
        ++self->tally_.other;
        return;
      }
      self->send();
    });
  }

 private:
  void send() {
    if (Clock::now() >= until_) return;
    sent_ = Clock::now();
    bhttp::async_write(
        stream_, req_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
          if (ec) {
            ++self->tally_.other;
            return;
          }
          self->res_ = {};
          bhttp::async_read(self->stream_, self->buf_, self->res_,
                            [self](beast::error_code rec, std::size_t) { self->on_read(rec); });
        });
  }
  void on_read(beast::error_code ec) {
    if (ec) {
      ++tally_.other;
      return;
    }
    const auto status = res_.result_int();
    if (status >= 200 && status < 300) {
      tally_.ok_ms.push_back(
          std::chrono::duration<double, std::milli>(Clock::now() - sent_).count());
    } else if (status == 503) {
      ++tally_.shed;
    } else {
      ++tally_.other;
    }
    send();
  }

  beast::tcp_stream stream_;
  const bhttp::request<bhttp::string_body>& req_;
  Tally& tally_;
  Clock::time_point until_;
  Clock::time_point sent_{};
  beast::flat_buffer buf_;
  bhttp::response<bhttp::string_body> res_;
};

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  const auto k = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: errand_overload PORT PATH CONNECTIONS SECONDS [BODY]\n");
    return 2;
  }
  const auto port = static_cast<unsigned short>(std::stoi(argv[1]));
  const std::string path = argv[2];
  const int connections = std::stoi(argv[3]);
  const double seconds = std::stod(argv[4]);
  bhttp::request<bhttp::string_body> req{argc > 5 ? bhttp::verb::post : bhttp::verb::get, path, 11};
  req.set(bhttp::field::host, "127.0.0.1");
  if (argc > 5) {
    req.set(bhttp::field::content_type, "application/json");
    req.body() = argv[5];
  }
  req.prepare_payload();

  asio::io_context ioc;
  Tally tally;
  const auto start = Clock::now();
  const auto until =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  const asio::ip::tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), port);
  for (int i = 0; i < connections; ++i) std::make_shared<Conn>(ioc, req, tally, until)->start(ep);
  ioc.run();
  const double took = std::chrono::duration<double>(Clock::now() - start).count();
  const auto ok = tally.ok_ms.size();
  const double p50 = percentile(tally.ok_ms, 0.50);
  const double p99 = percentile(tally.ok_ms, 0.99);
  fmt::print(
      "{{\"connections\":{},\"ok_per_s\":{:.0f},\"shed_per_s\":{:.0f},\"other\":{},"
      "\"ok_p50_ms\":{:.2f},\"ok_p99_ms\":{:.2f}}}\n",
      connections, static_cast<double>(ok) / took, static_cast<double>(tally.shed) / took,
      tally.other, p50, p99);
  return 0;
}
