#pragma once
// In-memory requests for tests: runs a request through a Router exactly as the
// server's dispatcher does (same routing, chain, error mapping), without
// sockets or threads. Blocking routes run inline; the timeout middleware can
// only check a blocking handler's deadline when it returns. A deferred response
// (Context::defer) is waited for: perform() returns once its handle has been
// resumed (or dropped) and the answer finished; a timeout middleware's 408
// still wins if the deadline came first.

#include <optional>
#include <string>
#include <string_view>

#include <boost/json/value.hpp>

#include "errand/http/router.hpp"
#include "errand/http/server.hpp"
#include "errand/observe/logger.hpp"

namespace errand::http::testing {

// An aggregate: perform(router, {.method = "POST", .target = "/x", .body = "{}"})
// or positionally, {"POST", "/x", {}, "{}"}.
struct Request {
  std::string method = "GET";
  std::string target = "/";
  Headers headers{};
  std::string body{};
};

struct Response {
  int status = 0;
  Headers headers;
  std::string body;

  [[nodiscard]] std::optional<std::string> header(std::string_view name) const;
  // Parses the body; throws std::system_error when it is not JSON.
  [[nodiscard]] boost::json::value json() const;
};

// Freezes `router` if needed.
[[nodiscard]] Response perform(Router& router, const Request& request,
                               const observe::Logger& logger = observe::Logger::null());

// The bytes a server with `config`'s limits writes back when `bytes` arrive
// on one connection and the client then closes its side: each request read
// as a connection reads it (Beast's parser, the same limits, framing checks
// and refusals), run through `router` as perform() runs it, its response
// written as the server writes it (a streamed one is not: its status and
// headers only, without the chunked framing, and the connection ends). Stops
// where the server would close: a refused request (after its error
// response), a response without keep-alive, or the end of the input. Freezes
// `router` if needed. For tests of the wire format, and the HTTP fuzz target.
[[nodiscard]] std::string perform_wire(Router& router, std::string_view bytes,
                                       const ServerConfig& config = {},
                                       const observe::Logger& logger = observe::Logger::null());

}  // namespace errand::http::testing
