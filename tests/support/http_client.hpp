#pragma once
// Test support: a raw HTTP/1.1 client over a real socket, and a server fixture.
// Every wait has a deadline, so a broken server fails a test instead of hanging it.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/json/value.hpp>

#include "errand/http/server.hpp"
#include "support/wait.hpp"

namespace errand::test {

using namespace std::chrono_literals;

struct RawResponse {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  bool keep_alive = true;

  [[nodiscard]] std::string header(std::string_view name) const;  // "" when absent
  [[nodiscard]] bool has_header(std::string_view name) const;
  [[nodiscard]] boost::json::value json() const;
};

class Client {
 public:
  explicit Client(std::uint16_t port, std::chrono::milliseconds timeout = 15s);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  void send(std::string_view raw);
  // Reads one response; throws std::system_error on timeout, EOF or bad input.
  RawResponse read(bool head_request = false);
  RawResponse request(std::string_view method, std::string_view target, std::string_view body = {},
                      std::vector<std::pair<std::string, std::string>> headers = {});
  // True once the server has closed the connection (EOF or reset), false if it
  // is still open when the timeout passes. Discards anything received.
  bool wait_closed();
  // Everything the server sends after what read() took, up to its close;
  // nullopt if the connection is still open when the timeout passes.
  std::optional<std::string> read_until_closed();

 private:
  boost::asio::io_context ioc_;
  boost::beast::tcp_stream stream_;
  boost::beast::flat_buffer buffer_;
  std::chrono::milliseconds timeout_;
};

// "GET /x HTTP/1.1\r\nHost: t\r\n<extra>\r\n"
[[nodiscard]] std::string raw_request(std::string_view method, std::string_view target,
                                      std::string_view extra_headers = {},
                                      std::string_view body = {});

// A server on 127.0.0.1 with an ephemeral port and captured logs.
class TestServer {
 public:
  explicit TestServer(http::ServerConfig config = defaults());
  ~TestServer();

  static http::ServerConfig defaults();

  http::Router& router() { return server_->router(); }
  http::Server& server() { return *server_; }
  const observe::Logger& logger() const { return logger_; }
  void start() { server_->start(); }
  [[nodiscard]] std::uint16_t port() const { return server_->port(); }
  [[nodiscard]] std::vector<std::string> logs() const;
  [[nodiscard]] bool wait_for_log(std::string_view needle, std::chrono::milliseconds timeout = 20s);

 private:
  mutable std::mutex mu_;
  std::vector<std::string> lines_;
  observe::Logger logger_;
  std::unique_ptr<http::Server> server_;
};

}  // namespace errand::test
