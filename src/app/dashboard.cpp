#include "errand/app/dashboard.hpp"

#include <algorithm>
#include <cctype>
#include <optional>
#include <string>

#include <boost/json.hpp>

#include "app/dashboard_assets.hpp"
#include "errand/http/context.hpp"

namespace errand::app {

namespace {

using detail::DashboardAsset;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) ==
           std::tolower(static_cast<unsigned char>(y));
  });
}

// Calls f with each trimmed item of a comma-separated header value.
// (Iterators, not string_view::find: GCC 12 at -O2 reports a false
// stringop-overread for find() after remove_prefix().)
template <class F>
void for_each_item(std::string_view list, F&& f) {
  auto it = list.begin();
  while (it != list.end()) {
    const auto comma = std::find(it, list.end(), ',');
    f(trim(list.substr(static_cast<std::size_t>(it - list.begin()),
                       static_cast<std::size_t>(comma - it))));
    it = comma == list.end() ? comma : comma + 1;
  }
}

// Whether an Accept-Encoding header admits gzip (RFC 9110 12.5.3): listed,
// or covered by "*", with a q-value above 0.
bool accepts_gzip(std::string_view header) {
  std::optional<bool> gzip;
  std::optional<bool> any;
  for_each_item(header, [&](std::string_view item) {
    const auto semi =
        static_cast<std::size_t>(std::find(item.begin(), item.end(), ';') - item.begin());
    const std::string_view coding = trim(item.substr(0, semi));
    bool allowed = true;
    if (semi < item.size()) {
      std::string_view param = trim(item.substr(semi + 1));
      if (param.size() > 2 && (param[0] == 'q' || param[0] == 'Q') && param[1] == '=') {
        param.remove_prefix(2);
        // q=0, q=0.0, q=0.000: refused; anything else admits it.
        allowed = param.find_first_not_of("0.") != std::string_view::npos;
      }
    }
    if (iequals(coding, "gzip") || iequals(coding, "x-gzip")) gzip = allowed;
    if (coding == "*") any = allowed;
  });
  return gzip.value_or(any.value_or(false));
}

// If-None-Match lists `etag` (or is "*"): the client's copy is current.
// Weak comparison (RFC 9110 13.1.2), as for GET.
bool matches(std::string_view header, std::string_view etag) {
  bool found = false;
  for_each_item(header, [&](std::string_view tag) {
    if (tag.starts_with("W/")) tag.remove_prefix(2);
    found = found || tag == "*" || tag == etag;
  });
  return found;
}

// The pages may only load what this server serves (data: images for icons);
// nothing may frame them. The dashboard sets styles only through the CSSOM;
// Swagger UI needs inline style elements, so its page allows them.
constexpr std::string_view kPagePolicy =
    "default-src 'self'; img-src 'self' data:; style-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";
constexpr std::string_view kApiPagePolicy =
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

void serve(http::Context& c, const DashboardAsset& a) {
  const auto encoding = c.header("Accept-Encoding");
  const bool gzip = encoding && accepts_gzip(*encoding);
  // Each encoding is its own representation, so its own validator.
  std::string etag = "\"" + std::string(a.hash) + (gzip ? "-gz\"" : "\"");
  c.set_header("Vary", "Accept-Encoding");
  c.set_header("Cache-Control", a.immutable ? "public, max-age=31536000, immutable" : "no-cache");
  c.set_header("X-Content-Type-Options", "nosniff");
  if (a.content_type.starts_with("text/html")) {
    c.set_header("Content-Security-Policy",
                 std::string(a.path.ends_with("/api.html") ? kApiPagePolicy : kPagePolicy));
    c.set_header("Referrer-Policy", "no-referrer");
  }
  const auto known = c.header("If-None-Match");
  const bool current = known && matches(*known, etag);
  c.set_header("ETag", std::move(etag));
  if (current) {
    c.text(304, "", std::string(a.content_type));
    return;
  }
  if (gzip) c.set_header("Content-Encoding", "gzip");
  c.text(200, std::string(gzip ? a.gzip.view() : a.plain.view()), std::string(a.content_type));
}

}  // namespace

bool dashboard_built() {
  return !detail::dashboard_assets().empty();
}

void install_dashboard(http::Router& router, DashboardOptions options) {
  const auto assets = detail::dashboard_assets();
  if (assets.empty()) {
    router.get("/ui/", [](http::Context& c) {
      c.error(404, "dashboard_not_built",
              "this errand was built without its dashboard (-DERRAND_DASHBOARD=OFF); the REST "
              "API and the errand CLI show the same");
    });
    return;
  }
  for (const auto& asset : assets) {
    router.get(std::string(asset.path), [&asset](http::Context& c) { serve(c, asset); });
  }
  const auto redirect = [](http::Context& c) {
    c.set_header("Location", "/ui/");
    c.text(302, "");
  };
  router.get("/", redirect);
  router.get("/ui", redirect);
  const std::string config = boost::json::serialize(
      boost::json::object{{"trace_url", options.trace_url}, {"version", ERRAND_VERSION}});
  router.get("/ui/config.json", [config](http::Context& c) {
    c.set_header("Cache-Control", "no-cache");
    c.text(200, config, "application/json");
  });
}

}  // namespace errand::app
