#pragma once
// Internal: an asynchronous Redis client for RedisStore — hiredis 0.14's async
// API driven by an Asio io_context that runs on one thread of the client's own
// (hiredis's ev hooks → posix::stream_descriptor::async_wait).
//
// * A small pool of connections; commands go round-robin to the connections
//   that are up and pipeline on them (hiredis matches replies in order).
// * Every command has a deadline (an Asio timer: hiredis 0.14 has none). A
//   command past it fails with StoreError{unavailable}, and its connection is
//   dropped and reconnected, since a reply that never came leaves the
//   connection's order of replies unknown.
// * A lost connection fails its commands with StoreError{unavailable} and is
//   reconnected with backoff (100 ms doubling to 2 s), forever. While no
//   connection is up, commands fail at once: callers see 503, not a wait.
// * Scripts: EVALSHA, and on NOSCRIPT (a restarted or flushed Redis) EVAL of
//   the source, which loads it again.
//
// Thread-safe. Callbacks run on the client's thread, exactly once each; they
// must be quick and must not throw. call() blocks its caller and must not be
// used on the client's thread.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "errand/observe/logger.hpp"
#include "errand/store/redis_store.hpp"

namespace errand::store::redis {

// A reply as plain values, copied out of hiredis's.
struct Reply {
  enum class Type : std::uint8_t { string, array, integer, nil, status, error };
  Type type = Type::nil;
  long long integer = 0;
  std::string str;  // string, status, error
  std::vector<Reply> elements;

  [[nodiscard]] bool is_error() const { return type == Type::error; }
};

using Endpoint = RedisEndpoint;

struct ClientOptions {
  Endpoint endpoint{};
  std::size_t connections = 2;
  std::chrono::milliseconds command_timeout{2000};
  std::chrono::milliseconds connect_timeout{2000};
  observe::Logger logger = observe::Logger::null();
};

class Client {
 public:
  using Callback = std::function<void(Reply reply, std::exception_ptr error)>;

  // Starts the thread and begins connecting; does not wait (wait_connected()).
  explicit Client(ClientOptions options);
  // Fails what is still in flight with StoreError{unavailable}, then joins.
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // True once some connection is up, false after `timeout` without one.
  bool wait_connected(std::chrono::milliseconds timeout);
  [[nodiscard]] bool connected() const { return up_.load(std::memory_order_relaxed) > 0; }
  // Why the last connection attempt or connection failed ("" if none did).
  [[nodiscard]] std::string last_error() const;

  // One command (argv form). `script_source`, when not empty, is the source of
  // the script an EVALSHA in `args` runs: sent as EVAL on NOSCRIPT.
  void command(std::vector<std::string> args, Callback done, std::string script_source = {});
  // The same, waited for. Throws StoreError{unavailable}; an error reply is
  // returned as a Reply, not thrown.
  Reply call(std::vector<std::string> args, std::string script_source = {});

  [[nodiscard]] const Endpoint& endpoint() const { return options_.endpoint; }

  struct Impl;  // named here for the .cpp's connection type

 private:
  ClientOptions options_;
  std::atomic<int> up_{0};
  std::unique_ptr<Impl> impl_;
};

}  // namespace errand::store::redis
