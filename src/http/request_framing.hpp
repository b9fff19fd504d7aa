#pragma once
// How a request's body is delimited, checked strictly (RFC 9112 §6): the
// checks that stop request smuggling, where a front proxy and errand would
// disagree on where one request ends and the next begins.
//
// Beast's parser accepts some framings that RFC 9112 says a server must
// refuse (a Transfer-Encoding that does not end in chunked is read as "no
// body", Transfer-Encoding beside Content-Length in one order, repeated
// Content-Length, folded header lines); the connection runs these checks on
// the raw header bytes and on the parsed header before it reads a body. Any
// failure is answered once and the connection closed.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include <boost/beast/http/message.hpp>

namespace errand::http::detail {

struct FramingError {
  int status;  // 400, or 501 for a transfer coding errand does not decode
  std::string code;
  std::string message;
};

// Scans the header bytes in `buffered[from, …)` (up to the blank line that ends
// the header) for a line that starts with SP or HTAB: obsolete line folding,
// which RFC 9112 §5.2 lets a server refuse. Returns true when found, and sets
// `from` to where the next call may resume (the header may still be arriving).
[[nodiscard]] bool find_obs_fold(std::string_view buffered, std::size_t& from);

// The parsed header's framing: Transfer-Encoding must be a list of known
// tokens ending in exactly one "chunked" (a coding before it is 501), never
// beside Content-Length, never in HTTP/1.0; Content-Length appears at most
// once and is 1*DIGIT. nullopt when the framing is sound.
[[nodiscard]] std::optional<FramingError> check_framing(
    const boost::beast::http::request_header<>& header);

}  // namespace errand::http::detail
