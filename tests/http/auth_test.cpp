// Bearer authentication and route scoping, in memory.
#include <gtest/gtest.h>

#include "errand/http/middleware.hpp"
#include "errand/http/router.hpp"
#include "errand/http/testing.hpp"

namespace errand::http {
namespace {

struct AuthFixture {
  AuthFixture() {
    router.use(mw::except_under(
        {"/healthz", "/metrics"},
        mw::bearer_auth({.tokens = {"s3cret-one", "s3cret-two"}, .metrics = &metrics})));
    router.get("/healthz", [](Context& c) { c.text(200, "ok"); });
    router.get("/v1/tasks/:id", [](Context& c) { c.text(200, "task"); });
    router.freeze();
  }
  testing::Response get(std::string target, Headers h = {}) {
    return testing::perform(router, {"GET", std::move(target), std::move(h)});
  }
  observe::Registry metrics;
  Router router;
};

std::string code(const testing::Response& r) {
  return std::string(r.json().at("error").at("code").as_string());
}

TEST(BearerAuth, MissingTokenIs401WithAChallenge) {
  AuthFixture f;
  const auto r = f.get("/v1/tasks/x");
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(code(r), "unauthorized");
  EXPECT_EQ(r.header("WWW-Authenticate").value_or(""), R"(Bearer realm="errand")");
}

TEST(BearerAuth, WrongTokensAndSchemesAre401) {
  AuthFixture f;
  for (const std::string bad :
       {"Bearer s3cret-on", "Bearer s3cret-one2", "Bearer S3CRET-ONE",
        "Basic czNjcmV0LW9uZQ==", "s3cret-one", "Bearer ", "Bearer", "Bearers3cret-one"}) {
    const auto r = f.get("/v1/tasks/x", {{"Authorization", bad}});
    EXPECT_EQ(r.status, 401) << bad;
  }
  const auto r = f.get("/v1/tasks/x", {{"Authorization", "Bearer nope"}});
  EXPECT_EQ(r.header("WWW-Authenticate").value_or(""),
            R"(Bearer realm="errand", error="invalid_token")");
  const auto text = f.metrics.expose();
  EXPECT_NE(text.find(R"(auth_rejected_total{reason="invalid_token"})"), std::string::npos) << text;
}

TEST(BearerAuth, AnyConfiguredTokenIsAccepted) {
  AuthFixture f;
  EXPECT_EQ(f.get("/v1/tasks/x", {{"Authorization", "Bearer s3cret-one"}}).status, 200);
  EXPECT_EQ(f.get("/v1/tasks/x", {{"Authorization", "bearer  s3cret-two "}}).status, 200);
}

TEST(BearerAuth, ExemptRoutesStayOpenAndUnknownRoutesAreProtected) {
  AuthFixture f;
  EXPECT_EQ(f.get("/healthz").status, 200);
  EXPECT_EQ(f.get("/nowhere").status, 401);  // no route map for strangers
  EXPECT_EQ(f.get("/nowhere", {{"Authorization", "Bearer s3cret-one"}}).status, 404);
}

TEST(BearerAuth, RefusesAnEmptyConfiguration) {
  EXPECT_THROW((void)mw::bearer_auth({}), std::invalid_argument);
  EXPECT_THROW((void)mw::bearer_auth({.tokens = {""}}), std::invalid_argument);
}

TEST(RouteScope, PrefixesMatchWholeSegments) {
  EXPECT_TRUE(mw::path_under("/v1/tasks", "/v1/tasks"));
  EXPECT_TRUE(mw::path_under("/v1/tasks/:id", "/v1/tasks"));
  EXPECT_TRUE(mw::path_under("/v1/tasks/:id", "/v1/"));
  EXPECT_TRUE(mw::path_under("/anything", "/"));
  EXPECT_FALSE(mw::path_under("/v1/tasksx", "/v1/tasks"));
  EXPECT_FALSE(mw::path_under("/v1", "/v1/tasks"));
  EXPECT_FALSE(mw::path_under("/healthz", "/v1"));
}

TEST(ConcurrencyLimit, OneTooManyOnAnIoThreadIs503AtOnce) {
  Router router;
  bool nested = false;
  testing::Response inner;
  router.use(mw::concurrency_limit({.max_in_flight = 1, .max_wait = std::chrono::seconds(30)}));
  router.get("/x", [&](Context& c) {
    if (!nested) {
      nested = true;  // a second request while this one holds the only slot
      inner = testing::perform(router, {"GET", "/x"});
    }
    c.text(200, "ok");
  });
  EXPECT_EQ(testing::perform(router, {"GET", "/x"}).status, 200);
  EXPECT_EQ(inner.status, 503);  // not blocking: no waiting, even with max_wait
  EXPECT_EQ(code(inner), "concurrency_limited");
  EXPECT_EQ(inner.header("Retry-After").value_or(""), "1");
  EXPECT_EQ(testing::perform(router, {"GET", "/x"}).status, 200);  // the slot came back
  EXPECT_THROW((void)mw::concurrency_limit({.max_in_flight = 0}), std::invalid_argument);
}

}  // namespace
}  // namespace errand::http
