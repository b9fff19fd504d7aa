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

// Where a scan for obsolete line folding stands in a header that may still be
// arriving, and that the parser may consume line by line meanwhile.
struct FoldScan {
  std::size_t next = 0;   // the next byte of the buffer to look at
  bool after_lf = false;  // the byte before `next` (perhaps consumed) was LF
  bool done = false;      // the blank line that ends the header was seen
  // The parser consumed `n` bytes from the front of the buffer (all scanned).
  void consumed(std::size_t n) { next -= n < next ? n : next; }
};

// Scans the header bytes buffered since the last call for a line that starts
// with SP or HTAB: obsolete line folding, which RFC 9112 §5.2 lets a server
// refuse. True when found. Stops at the blank line that ends the header (what
// follows is a body or the next request).
[[nodiscard]] bool find_obs_fold(std::string_view buffered, FoldScan& scan);

// The parsed header's framing: Transfer-Encoding must be a list of known
// tokens ending in exactly one "chunked" (a coding before it is 501), never
// beside Content-Length, never in HTTP/1.0; Content-Length appears at most
// once and is 1*DIGIT. nullopt when the framing is sound.
[[nodiscard]] std::optional<FramingError> check_framing(
    const boost::beast::http::request_header<>& header);

}  // namespace errand::http::detail
