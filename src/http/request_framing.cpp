#include "request_framing.hpp"

#include <algorithm>
#include <cctype>
#include <vector>

#include <fmt/format.h>
#include <boost/beast/core/string.hpp>

#include "errand/detail/quote.hpp"

namespace errand::http::detail {

namespace bhttp = boost::beast::http;

namespace {

bool is_tchar(char ch) {
  const auto u = static_cast<unsigned char>(ch);
  if (std::isalnum(u) != 0) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(ch) != std::string_view::npos;
}

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

FramingError bad(std::string message) {
  return {400, "bad_request", std::move(message)};
}

}  // namespace

bool find_obs_fold(std::string_view buffered, FoldScan& scan) {
  while (!scan.done) {
    if (scan.after_lf) {
      if (scan.next >= buffered.size()) return false;  // the line start has not arrived
      const char first = buffered[scan.next];
      if (first == ' ' || first == '\t') return true;
      if (first == '\r' || first == '\n') {
        scan.done = true;
        return false;
      }
      scan.after_lf = false;
    }
    const auto lf = buffered.find('\n', scan.next);
    if (lf == std::string_view::npos) {
      scan.next = buffered.size();
      return false;
    }
    scan.next = lf + 1;
    scan.after_lf = true;
  }
  return false;
}

std::optional<FramingError> check_framing(const bhttp::request_header<>& header) {
  std::vector<std::string_view> codings;
  std::size_t te_fields = 0;
  std::size_t cl_fields = 0;
  std::string_view content_length;
  for (const auto& f : header) {
    if (f.name() == bhttp::field::transfer_encoding) {
      ++te_fields;
      std::string_view list = f.value();
      while (!list.empty()) {
        const auto comma = list.find(',');
        const auto item = trim_ows(list.substr(0, comma));
        // Empty list elements are allowed (RFC 9110 §5.6.1) and mean nothing.
        if (!item.empty()) codings.push_back(item);
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
      }
    } else if (f.name() == bhttp::field::content_length) {
      ++cl_fields;
      content_length = f.value();
    }
  }

  if (cl_fields > 1) return bad("more than one Content-Length header");
  if (cl_fields == 1) {
    const bool digits =
        !content_length.empty() && std::all_of(content_length.begin(), content_length.end(),
                                               [](char ch) { return ch >= '0' && ch <= '9'; });
    if (!digits) {
      return bad(fmt::format("Content-Length must be a decimal number, got \"{}\"",
                             errand::detail::quote(content_length)));
    }
  }
  if (te_fields == 0) return std::nullopt;

  if (cl_fields > 0)
    return bad("a request may not carry both Content-Length and Transfer-Encoding");
  if (header.version() < 11) return bad("HTTP/1.0 requests may not carry Transfer-Encoding");
  if (codings.empty()) return bad("Transfer-Encoding names no transfer coding");
  for (const auto c : codings) {
    if (!std::all_of(c.begin(), c.end(), is_tchar)) {
      return bad(fmt::format("malformed transfer coding \"{}\"", errand::detail::quote(c)));
    }
  }
  const auto is_chunked = [](std::string_view c) { return boost::beast::iequals(c, "chunked"); };
  if (!is_chunked(codings.back())) {
    return bad(fmt::format("the last transfer coding must be chunked, got \"{}\"",
                           errand::detail::quote(codings.back())));
  }
  if (std::count_if(codings.begin(), codings.end(), is_chunked) > 1) {
    return bad("chunked may be applied only once");
  }
  if (codings.size() > 1) {
    return FramingError{501, "not_implemented",
                        fmt::format("transfer coding \"{}\" is not supported (only chunked is)",
                                    errand::detail::quote(codings.front()))};
  }
  return std::nullopt;
}

}  // namespace errand::http::detail
