#pragma once
// Server: HTTP/1.1 on Boost.Beast with bounded everything.
//
//  * N I/O threads run non-blocking handlers; routes marked blocking run on a
//    bounded pool (full: 503 + Retry-After). Keep-alive, pipelined requests
//    (answered in order), chunked request bodies, HEAD, Expect: 100-continue.
//  * Limits (ServerConfig): header bytes -> 431, body bytes -> 413 (checked
//    against Content-Length before the body is read, and while reading a
//    chunked body), header and body read time -> connection closed (slowloris), idle keep-alive
//    time -> closed, connections -> 503 and closed. Malformed requests get 400 and the connection
//    is closed.
//  * stop(): stop accepting, close idle connections, let in-flight requests
//    finish for `shutdown_grace`, then cancel (stop_token) and close the rest.
//    What still holds a connection `shutdown_abandon` later is named in the
//    log and given up: a deferred response (http::Deferred) not yet resumed is
//    dropped (a later resume() does nothing, even after the Server is gone);
//    a handler that ignores its stop token cannot be, since its thread cannot
//    be joined, so the process exits with status 70 (kStuckExitCode). So
//    stop() returns, or ends the process, within grace + abandon + 2 s.
//
// Threading: configure the router and call start() on one thread; stats(),
// port() and draining() may be called from any thread; stop() from any thread
// except an I/O or blocking-pool thread (it joins them). The destructor stops.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "errand/detail/stuck_exit.hpp"
#include "errand/http/router.hpp"
#include "errand/observe/logger.hpp"

namespace errand::http {

struct ServerConfig {
  std::string address = "127.0.0.1";
  std::uint16_t port = 8080;  // 0: an ephemeral port, see Server::port()
  unsigned threads = 0;       // I/O threads; 0: hardware concurrency
  std::size_t max_header_bytes = std::size_t{16} * 1024;  // request line + fields + blank line
  std::size_t max_body_bytes = std::size_t{1024} * 1024;
  std::chrono::milliseconds header_timeout{std::chrono::seconds(10)};
  std::chrono::milliseconds body_timeout{std::chrono::seconds(30)};
  std::chrono::milliseconds idle_timeout{std::chrono::seconds(60)};
  std::chrono::milliseconds write_timeout{std::chrono::seconds(30)};
  std::size_t max_connections = 10'000;
  unsigned blocking_threads = 16;
  std::size_t blocking_queue = 256;  // waiting requests beyond the running ones
  // Admit blocking requests (running + waiting) up to an adaptive limit, on
  // the I/O thread before they wait for the pool: the limit (between 1 and
  // threads + queue, after Envoy's adaptive concurrency filter) follows their
  // latency from arrival, so under overload the excess is answered 503
  // `overloaded` at once and what is admitted keeps its latency.
  bool adaptive_blocking = false;
  std::chrono::milliseconds shutdown_grace{std::chrono::seconds(10)};
  // After the grace and the cancellation: how long stop() still waits before
  // it gives up what is left (see above).
  std::chrono::milliseconds shutdown_abandon{std::chrono::seconds(5)};
};

struct ServerStats {
  std::size_t connections = 0;         // open, counted against max_connections
  std::size_t requests_in_flight = 0;  // dispatched, response not yet written
  std::size_t blocking_active = 0;
  std::size_t blocking_queued = 0;
  std::size_t blocking_limit = 0;  // the adaptive limit now (0 unless adaptive_blocking)
  std::uint64_t requests_total = 0;
  std::uint64_t connections_rejected = 0;  // over max_connections
  std::uint64_t blocking_rejected = 0;     // blocking queue full (503)
};

class Server {
 public:
  explicit Server(ServerConfig config, observe::Logger logger = observe::Logger::to_stderr());
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Register routes here before start().
  [[nodiscard]] Router& router();

  // Freezes the router, binds, listens and starts the threads. Throws
  // std::system_error when the address cannot be bound.
  void start();
  // The bound port (useful with port 0). Valid after start().
  [[nodiscard]] std::uint16_t port() const;
  // Graceful stop as described above; blocks until every thread has joined.
  // Returns false when a deferred response had to be dropped. Idempotent: a
  // second call, also a concurrent one, waits for the first and returns what
  // it did. Throws std::logic_error when called on an I/O thread.
  bool stop();
  // start() unless started, wait for SIGINT or SIGTERM (or a stop() from
  // another thread), stop(). Returns the process exit code: 0, or 1 when
  // stop() dropped a deferred response.
  int run();

  [[nodiscard]] bool draining() const;
  [[nodiscard]] ServerStats stats() const;
  [[nodiscard]] const ServerConfig& config() const;

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace errand::http
