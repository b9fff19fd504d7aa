#pragma once
// Internal: what a connection decides from the bytes it reads and what it
// writes back, as pure functions, shared by the server's connections and by
// http::testing::perform_wire (which the HTTP fuzz target drives): the same
// limits, the same refusals, the same response head.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include <boost/beast/core/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include "errand/observe/logger.hpp"
#include "exchange.hpp"
#include "request_framing.hpp"

namespace errand::http::detail {

using RequestParser = boost::beast::http::request_parser<boost::beast::http::string_body>;

// What to do once the parser has a whole header (or failed to).
struct HeaderVerdict {
  enum class Kind {
    close,            // slow, gone or shut down: nobody to answer
    fail,             // answer `error`, then close
    dispatch,         // no body: run the handlers
    expect_continue,  // send 100 Continue, then read the body
    read_body,
  } kind = Kind::close;
  FramingError error{};
};

// `ec` and `header_bytes` are what parsing the header gave; `buffered` the
// bytes still in the read buffer (for telling a malformed version from an
// unsupported one).
[[nodiscard]] HeaderVerdict judge_header(boost::beast::error_code ec, std::size_t header_bytes,
                                         const RequestParser& parser, std::string_view buffered,
                                         std::size_t max_header_bytes, std::size_t max_body_bytes);

// What to do once the body is read (or failed to be): close, fail or dispatch.
[[nodiscard]] HeaderVerdict judge_body(boost::beast::error_code ec, std::size_t max_body_bytes);

// A response header that can go on the wire: a token-ish name, and neither
// name nor value holding CR, LF or NUL (which would let it forge headers).
[[nodiscard]] bool safe_header(std::string_view name, std::string_view value);

// Serialises the head of `r` into `out` (cleared first) for a request of
// HTTP/1.`version` (0 or 1): status line, `Server`, the handler's headers
// but those with control characters (logged) and the framing ones (ours),
// Connection as `keep_alive` says, Content-Length. An invalid status becomes
// a 500 (logged). Leaves in r.body what goes after the head: nothing for a
// HEAD request or a bodiless status.
void write_head(std::string& out, Response& r, unsigned version, bool keep_alive, bool head_request,
                const observe::Logger& logger);

}  // namespace errand::http::detail
