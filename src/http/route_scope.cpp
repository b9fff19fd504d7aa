#include <algorithm>

#include "errand/http/middleware.hpp"

namespace errand::http::mw {

bool path_under(std::string_view path, std::string_view prefix) {
  if (prefix.empty() || prefix == "/") return true;
  if (prefix.back() == '/') prefix.remove_suffix(1);
  if (!path.starts_with(prefix)) return false;
  return path.size() == prefix.size() || path[prefix.size()] == '/';
}

namespace {

bool under_any(const Context& c, const std::vector<std::string>& prefixes) {
  const auto path = c.route().empty() ? c.path() : c.route();
  return std::any_of(prefixes.begin(), prefixes.end(),
                     [&](const std::string& p) { return path_under(path, p); });
}

}  // namespace

Handler only_under(std::vector<std::string> prefixes, Handler middleware) {
  return [prefixes = std::move(prefixes), middleware = std::move(middleware)](Context& c) {
    if (under_any(c, prefixes)) {
      middleware(c);
    } else {
      c.next();
    }
  };
}

Handler except_under(std::vector<std::string> prefixes, Handler middleware) {
  return [prefixes = std::move(prefixes), middleware = std::move(middleware)](Context& c) {
    if (under_any(c, prefixes)) {
      c.next();
    } else {
      middleware(c);
    }
  };
}

}  // namespace errand::http::mw
