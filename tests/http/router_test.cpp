#include <gtest/gtest.h>

#include "errand/http/router.hpp"

namespace errand::http {
namespace {

using Kind = RouteMatch::Kind;

void noop(Context&) {}

class RouterTest : public ::testing::Test {
 protected:
  RouteMatch match(std::string_view method, std::string_view path) {
    router.freeze();
    return router.match(method, path);
  }
  std::string matched(std::string_view method, std::string_view path) {
    auto m = match(method, path);
    return m.kind == Kind::found ? m.route->pattern : "<none>";
  }
  std::string param(const RouteMatch& m, std::string_view name) {
    for (const auto& [k, v] : m.params) {
      if (k == name) return v;
    }
    return "<absent>";
  }
  Router router;
};

TEST_F(RouterTest, MatchesStaticRoutesExactly) {
  router.get("/", noop);
  router.get("/users", noop);
  router.get("/users/all", noop);
  EXPECT_EQ(matched("GET", "/"), "/");
  EXPECT_EQ(matched("GET", "/users"), "/users");
  EXPECT_EQ(matched("GET", "/users/all"), "/users/all");
  EXPECT_EQ(matched("GET", "/users/"), "<none>");  // trailing slash is a different path
  EXPECT_EQ(matched("GET", "/user"), "<none>");
  EXPECT_EQ(match("GET", "/nothing").kind, Kind::not_found);
}

TEST_F(RouterTest, ExtractsNamedParameters) {
  router.get("/users/:id/posts/:post", noop);
  auto m = match("GET", "/users/42/posts/abc");
  ASSERT_EQ(m.kind, Kind::found);
  EXPECT_EQ(param(m, "id"), "42");
  EXPECT_EQ(param(m, "post"), "abc");
  EXPECT_EQ(match("GET", "/users//posts/abc").kind, Kind::not_found);  // empty param
}

TEST_F(RouterTest, CatchAllTakesTheRestWithoutLeadingSlash) {
  router.get("/files/*path", noop);
  auto m = match("GET", "/files/a/b/c.txt");
  ASSERT_EQ(m.kind, Kind::found);
  EXPECT_EQ(param(m, "path"), "a/b/c.txt");
  EXPECT_EQ(param(match("GET", "/files/"), "path"), "");
  EXPECT_EQ(param(match("GET", "/files"), "path"), "");
}

TEST_F(RouterTest, StaticBeatsParamBeatsCatchAll) {
  router.get("/users/new", noop);
  router.get("/users/:id", noop);
  router.get("/users/*rest", noop);
  EXPECT_EQ(matched("GET", "/users/new"), "/users/new");
  EXPECT_EQ(matched("GET", "/users/7"), "/users/:id");
  EXPECT_EQ(matched("GET", "/users/7/x"), "/users/*rest");
}

TEST_F(RouterTest, BacktracksWhenTheStaticBranchDeadEnds) {
  router.get("/users/new/form", noop);
  router.get("/users/:id/edit", noop);
  auto m = match("GET", "/users/new/edit");
  ASSERT_EQ(m.kind, Kind::found);
  EXPECT_EQ(m.route->pattern, "/users/:id/edit");
  EXPECT_EQ(param(m, "id"), "new");
  EXPECT_EQ(m.params.size(), 1U);
}

TEST_F(RouterTest, PercentDecodesSegmentsAfterSplitting) {
  router.get("/files/:name", noop);
  router.get("/a b", noop);
  auto m = match("GET", "/files/x%2Fy%20z");
  ASSERT_EQ(m.kind, Kind::found);
  EXPECT_EQ(param(m, "name"), "x/y z");
  EXPECT_EQ(matched("GET", "/a%20b"), "/a b");
  EXPECT_EQ(match("GET", "/files/%zz").kind, Kind::bad_path);
  EXPECT_EQ(match("GET", "/files/%4").kind, Kind::bad_path);
}

TEST_F(RouterTest, ReportsAllowedMethodsFor405) {
  router.get("/items", noop);
  router.post("/items", noop);
  auto m = match("DELETE", "/items");
  EXPECT_EQ(m.kind, Kind::method_not_allowed);
  EXPECT_EQ(m.allowed, (std::vector<std::string>{"GET", "HEAD", "POST"}));
}

TEST_F(RouterTest, HeadFallsBackToGet) {
  router.get("/items", noop);
  EXPECT_EQ(matched("HEAD", "/items"), "/items");
}

TEST_F(RouterTest, RejectsDuplicateRoutes) {
  router.get("/a/:id", noop);
  try {
    router.get("/a/:id", noop);
    FAIL() << "expected a conflict";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("GET '/a/:id' conflicts"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(router.post("/a/:id", noop));
}

TEST_F(RouterTest, RejectsDifferentParamNamesAtOnePosition) {
  router.get("/users/:id", noop);
  try {
    router.get("/users/:name/posts", noop);
    FAIL() << "expected a conflict";
  } catch (const std::invalid_argument& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("'/users/:id'"), std::string::npos) << what;
    EXPECT_NE(what.find(":name"), std::string::npos) << what;
  }
}

TEST_F(RouterTest, RejectsMalformedPatterns) {
  EXPECT_THROW(router.get("no-slash", noop), std::invalid_argument);
  EXPECT_THROW(router.get("/a/:", noop), std::invalid_argument);
  EXPECT_THROW(router.get("/a/*", noop), std::invalid_argument);
  EXPECT_THROW(router.get("/a/*rest/b", noop), std::invalid_argument);
  EXPECT_THROW(router.get("/a/%zz", noop), std::invalid_argument);
  router.get("/b/*rest", noop);
  EXPECT_THROW(router.get("/b/*other", noop), std::invalid_argument);
  EXPECT_THROW(router.get("/c", Handler{}), std::invalid_argument);
}

TEST_F(RouterTest, GroupsPrefixTheirRoutes) {
  auto v1 = router.group("/v1");
  v1.get("/tasks/:id", noop);
  auto admin = v1.group("/admin/");
  admin.get("/", noop);
  EXPECT_EQ(matched("GET", "/v1/tasks/3"), "/v1/tasks/:id");
  EXPECT_EQ(matched("GET", "/v1/admin"), "/v1/admin");
  EXPECT_THROW((void)router.group("v2"), std::invalid_argument);
  EXPECT_THROW((void)router.group("/:x"), std::invalid_argument);
}

TEST_F(RouterTest, GroupMiddlewareRunsOnlyForItsRoutesAndInOrder) {
  router.use([](Context& c) { c.next(); });
  auto g = router.group("/g");
  g.use([](Context& c) { c.next(); });
  g.get("/x", noop);
  router.get("/y", noop);
  router.freeze();
  EXPECT_EQ(router.match("GET", "/g/x").route->chain.size(), 3U);
  EXPECT_EQ(router.match("GET", "/y").route->chain.size(), 2U);
  EXPECT_EQ(router.fallback_chain().size(), 2U);
}

TEST_F(RouterTest, RefusesRegistrationAfterFreeze) {
  router.freeze();
  EXPECT_THROW(router.get("/late", noop), std::logic_error);
  EXPECT_THROW(router.use(noop), std::logic_error);
}

}  // namespace
}  // namespace errand::http
