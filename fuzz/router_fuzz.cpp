// Route registration and matching. The input is lines: "+PATTERN" registers
// a GET route (a pattern the router refuses throws std::invalid_argument),
// anything else is a path to match once the routes are in. A match must name
// a registered pattern and give parameters that are all in it; a lookup must
// never throw.
#include <set>
#include <stdexcept>
#include <string>

#include "errand/http/router.hpp"
#include "fuzz_check.hpp"

using errand::fuzz::check;
namespace http = errand::http;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto in = errand::fuzz::text(data, size);
  http::Router router;
  std::set<std::string, std::less<>> patterns;
  std::vector<std::string_view> paths;
  std::size_t at = 0;
  while (at <= in.size()) {
    auto end = in.find('\n', at);
    if (end == std::string_view::npos) end = in.size();
    const auto line = in.substr(at, end - at);
    at = end + 1;
    if (!line.empty() && line.front() == '+') {
      const std::string pattern(line.substr(1));
      try {
        router.get(pattern, [](http::Context&) {});
        patterns.insert(pattern);
      } catch (const std::invalid_argument&) {  // NOLINT(bugprone-empty-catch): refused
      }
    } else {
      paths.push_back(line);
    }
  }
  router.freeze();
  for (const auto path : paths) {
    const auto m = router.match("GET", path);
    if (m.kind == http::RouteMatch::Kind::found) {
      check(m.route != nullptr && patterns.contains(m.route->pattern), "a registered pattern");
      for (const auto& [name, value] : m.params) {
        check(m.route->pattern.find(name) != std::string::npos, "a parameter of the pattern");
      }
    }
    (void)router.match("POST", path);  // 405 or 404, never a throw
  }
  return 0;
}
