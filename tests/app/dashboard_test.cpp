// The embedded dashboard's routes, in memory: every asset served, gzip when
// the client takes it, ETags and 304s, cache lifetimes, the redirects and
// the config the page reads.
#include "errand/app/dashboard.hpp"

#include <gtest/gtest.h>

#include <string>

#include <boost/json.hpp>

#include "errand/http/testing.hpp"

namespace errand::app {
namespace {

using http::testing::perform;
using http::testing::Response;

class Dashboard : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(dashboard_built()) << "built with -DERRAND_DASHBOARD=OFF";
    install_dashboard(router, {.trace_url = "http://jaeger:16686/trace/{trace_id}"});
  }
  Response get(const std::string& target, http::Headers headers = {}) {
    return perform(router, {.method = "GET", .target = target, .headers = std::move(headers)});
  }
  // The hashed script the index page loads.
  std::string script() {
    const auto page = get("/ui/").body;
    const auto at = page.find("src=\"assets/app-");
    EXPECT_NE(at, std::string::npos) << page;
    const auto from = at + 5;
    return "/ui/" + page.substr(from, page.find('"', from) - from);
  }
  http::Router router;
};

TEST_F(Dashboard, RootAndUiRedirectToTheIndex) {
  for (const char* target : {"/", "/ui"}) {
    const auto r = get(target);
    EXPECT_EQ(r.status, 302) << target;
    EXPECT_EQ(r.header("Location"), "/ui/");
  }
}

TEST_F(Dashboard, TheIndexIsRevalidatedAndLocksItsSourcesDown) {
  const auto r = get("/ui/");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.header("Content-Type"), "text/html; charset=utf-8");
  EXPECT_EQ(r.header("Cache-Control"), "no-cache");
  EXPECT_EQ(r.header("Content-Encoding"), std::nullopt);  // not asked for
  EXPECT_NE(r.body.find("<div id=\"app\">"), std::string::npos);
  EXPECT_NE(r.header("Content-Security-Policy").value_or("").find("default-src 'self'"),
            std::string::npos);
  const auto etag = r.header("ETag");
  ASSERT_TRUE(etag.has_value());
  const auto again = get("/ui/", {{"If-None-Match", *etag}});
  EXPECT_EQ(again.status, 304);
  EXPECT_TRUE(again.body.empty());
  EXPECT_EQ(get("/ui/", {{"If-None-Match", "\"other\", W/" + *etag}}).status, 304);
  EXPECT_EQ(get("/ui/", {{"If-None-Match", "\"other\""}}).status, 200);
}

TEST_F(Dashboard, GzipOnlyForClientsThatTakeIt) {
  const auto target = script();
  const auto plain = get(target);
  ASSERT_EQ(plain.status, 200);
  EXPECT_EQ(plain.header("Content-Type"), "text/javascript; charset=utf-8");
  EXPECT_EQ(plain.header("Cache-Control"), "public, max-age=31536000, immutable");
  EXPECT_EQ(plain.header("Vary"), "Accept-Encoding");
  const auto gz = get(target, {{"Accept-Encoding", "br, gzip;q=0.8"}});
  EXPECT_EQ(gz.header("Content-Encoding"), "gzip");
  ASSERT_GE(gz.body.size(), 2U);
  EXPECT_EQ(static_cast<unsigned char>(gz.body[0]), 0x1f);  // gzip's magic bytes
  EXPECT_EQ(static_cast<unsigned char>(gz.body[1]), 0x8b);
  EXPECT_LT(gz.body.size(), plain.body.size());
  // Each encoding has its own validator.
  EXPECT_NE(gz.header("ETag"), plain.header("ETag"));
  EXPECT_EQ(get(target, {{"Accept-Encoding", "gzip;q=0"}}).header("Content-Encoding"),
            std::nullopt);
  EXPECT_EQ(get(target, {{"Accept-Encoding", "*"}}).header("Content-Encoding"), "gzip");
  EXPECT_EQ(get(target, {{"Accept-Encoding", "gzip;q=0, *"}}).header("Content-Encoding"),
            std::nullopt);
  EXPECT_EQ(get(target, {{"Accept-Encoding", "identity"}}).header("Content-Encoding"),
            std::nullopt);
}

TEST_F(Dashboard, TheApiPageAndItsRendererAreThere) {
  const auto page = get("/ui/api.html");
  ASSERT_EQ(page.status, 200);
  const auto at = page.body.find("assets/swagger-ui-bundle-");
  ASSERT_NE(at, std::string::npos);
  const auto bundle = "/ui/" + page.body.substr(at, page.body.find('"', at) - at);
  EXPECT_EQ(get(bundle).status, 200);
}

TEST_F(Dashboard, ConfigCarriesTheTraceLink) {
  const auto r = get("/ui/config.json");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.json().at("trace_url").as_string(), "http://jaeger:16686/trace/{trace_id}");
}

TEST_F(Dashboard, AnUnknownAssetIsNotFound) {
  const auto r = get("/ui/assets/app-000000000000.js");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.json().at("error").at("code").as_string(), "not_found");
}

}  // namespace
}  // namespace errand::app
