#include "support/http_client.hpp"

#include <condition_variable>
#include <system_error>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/json/parse.hpp>

namespace errand::test {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

std::string RawResponse::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (beast::iequals(k, name)) return v;
  }
  return {};
}

bool RawResponse::has_header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (beast::iequals(k, name)) return true;
  }
  return false;
}

boost::json::value RawResponse::json() const {
  return boost::json::parse(body);
}

Client::Client(std::uint16_t port, std::chrono::milliseconds timeout)
    : stream_(ioc_), timeout_(timeout) {
  stream_.expires_after(timeout_);
  beast::error_code result;
  stream_.async_connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port),
                        [&](beast::error_code ec) { result = ec; });
  ioc_.run();
  if (result) throw std::system_error(result, "connect");
}

Client::~Client() {
  beast::error_code ec;
  stream_.socket().close(ec);
}

void Client::send(std::string_view raw) {
  stream_.expires_after(timeout_);
  beast::error_code result;
  asio::async_write(stream_, asio::buffer(raw.data(), raw.size()),
                    [&](beast::error_code ec, std::size_t) { result = ec; });
  ioc_.restart();
  ioc_.run();
  if (result) throw std::system_error(result, "send");
}

RawResponse Client::read(bool head_request) {
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(64U * 1024U * 1024U);
  parser.skip(head_request);
  stream_.expires_after(timeout_);
  beast::error_code result;
  bhttp::async_read(stream_, buffer_, parser,
                    [&](beast::error_code ec, std::size_t) { result = ec; });
  ioc_.restart();
  ioc_.run();
  if (result) throw std::system_error(result, "read response");
  auto msg = parser.release();
  RawResponse out;
  out.status = static_cast<int>(msg.result_int());
  for (const auto& f : msg) out.headers.emplace_back(f.name_string(), f.value());
  out.body = std::move(msg.body());
  out.keep_alive = msg.keep_alive();
  return out;
}

RawResponse Client::request(std::string_view method, std::string_view target, std::string_view body,
                            std::vector<std::pair<std::string, std::string>> headers) {
  std::string extra;
  for (const auto& [k, v] : headers) extra += k + ": " + v + "\r\n";
  send(raw_request(method, target, extra, body));
  return read(method == "HEAD");
}

bool Client::wait_closed() {
  return read_until_closed().has_value();
}

std::optional<std::string> Client::read_until_closed() {
  stream_.expires_after(timeout_);
  while (true) {
    beast::error_code result;
    std::size_t n = 0;
    stream_.async_read_some(buffer_.prepare(4096), [&](beast::error_code ec, std::size_t got) {
      result = ec;
      n = got;
    });
    ioc_.restart();
    ioc_.run();
    if (result == beast::error::timeout) return std::nullopt;
    if (result) {
      std::string rest(static_cast<const char*>(buffer_.data().data()), buffer_.size());
      buffer_.clear();
      return rest;
    }
    buffer_.commit(n);
  }
}

std::string raw_request(std::string_view method, std::string_view target,
                        std::string_view extra_headers, std::string_view body) {
  std::string out;
  out.append(method).append(" ").append(target).append(" HTTP/1.1\r\nHost: test\r\n");
  out.append(extra_headers);
  if (!body.empty() || method == "POST" || method == "PUT") {
    out.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n");
  }
  out.append("\r\n").append(body);
  return out;
}

http::ServerConfig TestServer::defaults() {
  http::ServerConfig c;
  c.port = 0;
  c.threads = 2;
  c.blocking_threads = 2;
  c.shutdown_grace = 10s;
  return c;
}

TestServer::TestServer(http::ServerConfig config)
    : logger_(observe::Logger::to_callback([this](std::string_view line) {
        const std::lock_guard lock(mu_);
        lines_.emplace_back(line);
      })),
      server_(std::make_unique<http::Server>(std::move(config), logger_)) {}

TestServer::~TestServer() {
  server_->stop();
}

std::vector<std::string> TestServer::logs() const {
  const std::lock_guard lock(mu_);
  return lines_;
}

bool TestServer::wait_for_log(std::string_view needle, std::chrono::milliseconds timeout) {
  return eventually(
      [&] {
        const std::lock_guard lock(mu_);
        for (const auto& l : lines_) {
          if (l.find(needle) != std::string::npos) return true;
        }
        return false;
      },
      timeout);
}

}  // namespace errand::test
