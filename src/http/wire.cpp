#include "wire.hpp"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>
#include <boost/asio/error.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/status.hpp>

namespace errand::http::detail {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

namespace {

// The request line at the front of `buffered` ends in "HTTP/<digit>.<digit>".
bool well_formed_version(std::string_view buffered) {
  const auto end = buffered.find("\r\n");
  if (end == std::string_view::npos) return false;  // a bare LF ends no request line
  const auto line = buffered.substr(0, end);
  const auto v = line.substr(line.rfind(' ') + 1);
  const auto digit = [](char ch) { return ch >= '0' && ch <= '9'; };
  return v.size() == 8 && v.starts_with("HTTP/") && digit(v[5]) && v[6] == '.' && digit(v[7]);
}

HeaderVerdict fail(int status, std::string code, std::string message) {
  return {HeaderVerdict::Kind::fail, {status, std::move(code), std::move(message)}};
}

HeaderVerdict too_large(std::size_t max_body_bytes) {
  return fail(413, "body_too_large", fmt::format("request body exceeds {} bytes", max_body_bytes));
}

bool gone(beast::error_code ec) {
  return ec == beast::error::timeout || ec == bhttp::error::end_of_stream ||
         ec == asio::error::eof || ec == asio::error::operation_aborted ||
         ec == asio::error::connection_reset;
}

// One pass per string: headers are short, and three memchr calls and a
// find_first_of per header cost more than the bytes (~1.5k instructions per
// response of five headers). Most bytes fail the first comparison.
bool has_control(std::string_view v) {
  return std::any_of(v.begin(), v.end(), [](char c) {
    return static_cast<unsigned char>(c) <= '\r' && (c == '\r' || c == '\n' || c == '\0');
  });
}

bool bad_in_name(std::string_view v) {
  return std::any_of(v.begin(), v.end(), [](char c) {
    return static_cast<unsigned char>(c) <= ':' &&
           (c == '\r' || c == '\n' || c == '\0' || c == ' ' || c == ':');
  });
}

}  // namespace

bool safe_header(std::string_view name, std::string_view value) {
  return !name.empty() && !bad_in_name(name) && !has_control(value);
}

HeaderVerdict judge_header(beast::error_code ec, std::size_t header_bytes,
                           const RequestParser& parser, std::string_view buffered,
                           std::size_t max_header_bytes, std::size_t max_body_bytes) {
  // Beast applies header_limit to the fields after the start line; the
  // bytes it consumed make the limit exact for the whole header.
  if (!ec && header_bytes > max_header_bytes) ec = bhttp::error::header_limit;
  if (ec == bhttp::error::body_limit) return too_large(max_body_bytes);  // Content-Length alone
  if (ec == bhttp::error::bad_version) {
    // Beast refuses every version but 1.x the same way; only a well-formed
    // HTTP/<digit>.<digit> is an unsupported version, the rest is garbage.
    if (!well_formed_version(buffered)) {
      return fail(400, "bad_request", "malformed HTTP version in the request line");
    }
    return fail(505, "http_version_not_supported", "only HTTP/1.0 and HTTP/1.1 are served");
  }
  if (ec == bhttp::error::header_limit) {
    return fail(431, "header_too_large",
                fmt::format("request header exceeds {} bytes", max_header_bytes));
  }
  if (gone(ec)) return {};
  if (ec) return fail(400, "bad_request", fmt::format("malformed request: {}", ec.message()));

  const auto& req = parser.get();
  if (auto bad = check_framing(req)) return {HeaderVerdict::Kind::fail, std::move(*bad)};
  if (req.version() != 11 && req.version() != 10) {
    return fail(505, "http_version_not_supported", "only HTTP/1.0 and HTTP/1.1 are served");
  }
  if (req.version() == 11 && req.find(bhttp::field::host) == req.end()) {
    return fail(400, "bad_request", "HTTP/1.1 requests must carry a Host header");
  }
  if (auto len = parser.content_length(); len && *len > max_body_bytes) {
    return too_large(max_body_bytes);
  }
  if (parser.is_done()) return {HeaderVerdict::Kind::dispatch, {}};
  if (beast::iequals(req[bhttp::field::expect], "100-continue")) {
    return {HeaderVerdict::Kind::expect_continue, {}};
  }
  return {HeaderVerdict::Kind::read_body, {}};
}

HeaderVerdict judge_body(beast::error_code ec, std::size_t max_body_bytes) {
  if (ec == bhttp::error::body_limit) return too_large(max_body_bytes);
  // A body that does not arrive in time: the stream has closed the socket
  // already, as for slow headers, so there is nobody left to answer.
  if (gone(ec)) return {};
  if (ec) return fail(400, "bad_request", fmt::format("malformed request body: {}", ec.message()));
  return {HeaderVerdict::Kind::dispatch, {}};
}

void write_head(std::string& out, Response& r, unsigned version, bool keep_alive, bool head_request,
                const observe::Logger& logger) {
  if (r.status < 100 || r.status > 599) {
    logger.error("handler set an invalid status; answering 500", {{"status", r.status}});
    r = error_response(500, "internal", "internal server error");
  }
  const bool bodiless = r.status < 200 || r.status == 204 || r.status == 304;
  auto& h = out;
  h.clear();
  h += version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
  h += std::to_string(r.status);
  h += ' ';
  const auto reason = bhttp::obsolete_reason(static_cast<bhttp::status>(r.status));
  h.append(reason.data(), reason.size());
  h += "\r\nServer: errand\r\n";
  for (const auto& [name, value] : r.headers) {
    if (!safe_header(name, value)) {  // CR/LF would let a value forge headers
      logger.warn("dropped a response header with control characters", {{"header", name}});
      continue;
    }
    // Framing is ours: a handler's Content-Length, Transfer-Encoding or
    // Connection would contradict what we send.
    if (beast::iequals(name, "content-length") || beast::iequals(name, "transfer-encoding") ||
        beast::iequals(name, "connection")) {
      continue;
    }
    h += name;
    h += ": ";
    h += value;
    h += "\r\n";
  }
  if (!keep_alive && version != 10) h += "Connection: close\r\n";
  if (keep_alive && version == 10) h += "Connection: keep-alive\r\n";
  if (bodiless) {
    r.body.clear();
  } else {
    // For HEAD, the length of the body a GET would have had.
    h += "Content-Length: ";
    h += std::to_string(r.body.size());
    h += "\r\n";
  }
  h += "\r\n";
  if (head_request) r.body.clear();
}

}  // namespace errand::http::detail
