// redis:// URLs, parsed with Boost.URL.
#include <charconv>
#include <stdexcept>

#include <fmt/format.h>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include "errand/store/redis_store.hpp"

namespace errand::store {

namespace {

[[noreturn]] void refuse(std::string_view url, std::string_view why) {
  throw std::invalid_argument(
      fmt::format("redis URL '{}': {} (expected "
                  "redis://[[user]:password@]host[:port][/db])",
                  url.substr(0, 64), why));
}

}  // namespace

bool is_redis_url(std::string_view spec) {
  return spec.starts_with("redis://") || spec.starts_with("rediss://");
}

RedisEndpoint parse_redis_url(std::string_view url) {
  if (url.starts_with("rediss://")) {
    throw std::invalid_argument(
        "rediss:// (Redis over TLS) is not supported: this build's hiredis (0.14) has no TLS; "
        "reach Redis over a private network or a TLS tunnel (stunnel, spiped) with redis://");
  }
  if (!url.starts_with("redis://")) refuse(url, "not a redis:// URL");
  auto parsed = boost::urls::parse_uri(url);
  if (!parsed) refuse(url, parsed.error().message());
  const boost::urls::url_view u = *parsed;
  RedisEndpoint e;
  if (u.host().empty()) refuse(url, "no host");
  e.host = u.host();  // decoded
  if (e.host.size() > 2 && e.host.front() == '[' && e.host.back() == ']') {
    e.host = e.host.substr(1, e.host.size() - 2);  // hiredis takes an IPv6 address bare
  }
  if (u.has_port()) {
    const auto port = u.port();
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535) {
      refuse(url, "the port must be 1..65535");
    }
    e.port = static_cast<std::uint16_t>(value);
  }
  if (u.has_userinfo()) {
    e.user = u.user();
    if (u.has_password()) e.password = u.password();
    // redis://secret@host (no colon): the password alone, as redis-cli reads it.
    if (!u.has_password()) std::swap(e.user, e.password);
  }
  std::string_view path = u.encoded_path();
  if (!path.empty() && path != "/") {
    path.remove_prefix(1);
    int db = -1;
    const auto [end, ec] = std::from_chars(path.data(), path.data() + path.size(), db);
    if (ec != std::errc() || end != path.data() + path.size() || db < 0) {
      refuse(url, "the database must be a number (redis://host:6379/0)");
    }
    e.db = db;
  }
  if (u.has_query() || u.has_fragment()) refuse(url, "options in the URL are not supported");
  return e;
}

std::string redacted(const RedisEndpoint& e) {
  const bool v6 = e.host.find(':') != std::string::npos;
  std::string auth;
  if (!e.user.empty() || !e.password.empty()) {
    auth = e.user + (e.password.empty() ? "" : ":***") + "@";
  }
  return fmt::format("redis://{}{}{}{}:{}/{}", auth, v6 ? "[" : "", e.host, v6 ? "]" : "", e.port,
                     e.db);
}

}  // namespace errand::store
