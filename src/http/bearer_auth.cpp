#include <algorithm>
#include <cctype>
#include <stdexcept>

#include <fmt/format.h>

#include "errand/http/middleware.hpp"

namespace errand::http::mw {

namespace {

// Compares every byte of both strings whatever they hold, so the time taken
// tells an attacker nothing about how much of a guess was right. (The
// lengths of the configured tokens are not secret enough to hide.)
bool same(std::string_view a, std::string_view b) {
  const std::size_t n = std::max(a.size(), b.size());
  unsigned diff = a.size() == b.size() ? 0U : 1U;
  for (std::size_t i = 0; i < n; ++i) {
    const auto x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0U;
    const auto y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0U;
    diff |= x ^ y;
  }
  return diff == 0;
}

// The credentials of `Authorization: Bearer <token>`; nullopt for another scheme.
std::optional<std::string_view> bearer(std::string_view value) {
  constexpr std::string_view scheme = "bearer";
  if (value.size() <= scheme.size() || value[scheme.size()] != ' ') return std::nullopt;
  for (std::size_t i = 0; i < scheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(value[i])) != scheme[i]) return std::nullopt;
  }
  value.remove_prefix(scheme.size());
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
  return value;
}

}  // namespace

Handler bearer_auth(BearerAuthOptions options) {
  if (options.tokens.empty()) throw std::invalid_argument("bearer_auth: no token configured");
  if (std::any_of(options.tokens.begin(), options.tokens.end(),
                  [](const std::string& t) { return t.empty(); })) {
    throw std::invalid_argument("bearer_auth: a token is empty");
  }
  observe::Family<observe::Counter>* rejected = nullptr;
  if (options.metrics != nullptr) {
    rejected = &options.metrics->counter(
        "auth_rejected_total", "Requests answered 401 by bearer authentication", {"reason"});
  }
  return [rejected, opts = std::move(options)](Context& c) {
    const auto header = c.header("Authorization");
    const auto token = header ? bearer(*header) : std::nullopt;
    if (token && !token->empty()) {
      bool ok = false;
      for (const auto& t : opts.tokens) ok = same(*token, t) || ok;  // no early exit
      if (ok) {
        c.next();
        return;
      }
    }
    const bool given = token && !token->empty();
    if (rejected != nullptr) rejected->with({given ? "invalid_token" : "missing_token"}).inc();
    c.set_header("WWW-Authenticate",
                 given ? fmt::format(R"(Bearer realm="{}", error="invalid_token")", opts.realm)
                       : fmt::format(R"(Bearer realm="{}")", opts.realm));
    c.abort_with_error(401, "unauthorized",
                       given ? "the bearer token is not valid"
                             : "this route needs an Authorization: Bearer <token> header");
  };
}

}  // namespace errand::http::mw
