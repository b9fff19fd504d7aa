// The dispatcher and built-in middleware, in memory (http::testing).
#include <gtest/gtest.h>

#include <thread>

#include <fmt/format.h>

#include <boost/describe/class.hpp>

#include "errand/http/middleware.hpp"
#include "errand/http/router.hpp"
#include "errand/http/testing.hpp"
#include "errand/observe/metrics.hpp"

namespace errand::http {
namespace dispatch_test {

using testing::perform;

struct Tenant {
  std::string name;
};
const Key<Tenant> tenant_key{"tenant"};
const Key<int> other_int_key{"int"};

struct Reply {
  std::string name;
  int count;
};
BOOST_DESCRIBE_STRUCT(Reply, (), (name, count))

TEST(Dispatch, MiddlewareRunsInOnionOrder) {
  Router router;
  std::string trace;
  router.use([&](Context& c) {
    trace += "A>";
    c.next();
    trace += "<A";
  });
  auto g = router.group("/g");
  g.use([&](Context& c) {
    trace += "B>";
    c.next();
    trace += "<B";
  });
  g.get("/x", [&](Context& c) {
    trace += "H";
    c.text(200, "ok");
  });
  auto r = perform(router, {"GET", "/g/x"});
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "ok");
  EXPECT_EQ(trace, "A>B>H<B<A");
}

TEST(Dispatch, MiddlewareWithoutNextStillRunsTheChain) {
  Router router;
  int calls = 0;
  router.use([&](Context&) { ++calls; });  // Gin: the chain continues after it returns
  router.get("/", [&](Context& c) {
    ++calls;
    c.text(200, "ok");
  });
  EXPECT_EQ(perform(router, {"GET", "/"}).status, 200);
  EXPECT_EQ(calls, 2);
}

TEST(Dispatch, AbortStopsTheChain) {
  Router router;
  bool handler_ran = false;
  bool after_abort = false;
  router.use([&](Context& c) {
    if (!c.header("Authorization")) {
      c.abort_with_error(401, "unauthorized", "missing credentials");
      return;
    }
    c.next();
  });
  router.use([&](Context& c) {
    after_abort = true;
    c.next();
  });
  router.get("/secret", [&](Context& c) {
    handler_ran = true;
    c.text(200, "s3cret");
  });
  auto r = perform(router, {"GET", "/secret"});
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.json().at("error").at("code"), "unauthorized");
  EXPECT_FALSE(handler_ran);
  EXPECT_FALSE(after_abort);
  r = perform(router, {"GET", "/secret", {{"Authorization", "x"}}});
  EXPECT_EQ(r.status, 200);
}

TEST(Dispatch, TypedValuesFlowFromMiddlewareToHandler) {
  Router router;
  router.use([](Context& c) {
    c.set(tenant_key, Tenant{"acme"});
    c.next();
  });
  router.get("/", [](Context& c) {
    const Tenant* t = c.get(tenant_key);
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(c.get(other_int_key), nullptr);
    c.json(200, Reply{t->name, 1});
  });
  auto r = perform(router, {"GET", "/"});
  EXPECT_EQ(r.json(), boost::json::parse(R"({"name":"acme","count":1})"));
}

TEST(Dispatch, RecoveryTurnsExceptionsInto500AndLogsTheRequestId) {
  Router router;
  std::vector<std::string> lines;
  auto logger = observe::Logger::to_callback([&](std::string_view l) { lines.emplace_back(l); });
  router.use(mw::request_id());
  router.use(mw::recovery());
  router.get("/boom", [](Context&) { throw std::runtime_error("kaboom"); });
  router.get("/teapot", [](Context&) { throw Error(418, "teapot", "short and stout"); });
  auto r = perform(router, {"GET", "/boom", {{"X-Request-ID", "req-1"}}}, logger);
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(r.json().at("error").at("code"), "internal");
  EXPECT_EQ(r.body.find("kaboom"), std::string::npos) << "internals must not leak";
  ASSERT_EQ(lines.size(), 1U);
  auto line = boost::json::parse(lines[0]);
  EXPECT_EQ(line.at("level"), "error");
  EXPECT_EQ(line.at("request_id"), "req-1");
  EXPECT_EQ(line.at("error"), "kaboom");
  r = perform(router, {"GET", "/teapot"}, logger);
  EXPECT_EQ(r.status, 418);
  EXPECT_EQ(r.json().at("error").at("message"), "short and stout");
  EXPECT_EQ(lines.size(), 1U) << "client errors are not logged as errors";
}

// A handler that throws after defer(), caught by recovery() in the middle of
// the chain: the hooks of the middleware inside recovery() (queued while the
// throw went through them) run before those outside it, all seeing the
// error, each once.
TEST(Dispatch, AfterHooksKeepTheirOrderWhenRecoveryCatchesAThrowAfterDefer) {
  Router router;
  observe::Registry metrics;
  std::vector<std::string> order;
  const auto hook = [&order](std::string name) {
    return [&order, name = std::move(name)](Context& c) {
      order.push_back(fmt::format("{}:{}", name, c.response_status()));
    };
  };
  router.use([&](Context& c) {  // outside recovery(): its code after next() runs
    c.next();
    c.after(hook("outer"));
  });
  router.use(mw::recovery());
  router.use(mw::metrics(metrics));
  router.use([&](Context& c) {  // inside: its hook is queued as the throw passes
    try {
      c.next();
    } catch (...) {
      c.after(hook("inner"));
      throw;
    }
  });
  router.get("/later", [](Context& c) {
    auto later = c.defer();
    throw Error(409, "conflict", "thrown after defer");
  });
  const auto r = perform(router, {"GET", "/later"});
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(order, (std::vector<std::string>{"inner:409", "outer:409"}));
  EXPECT_EQ(metrics.counter("http_requests_total", "", {"method", "route", "status"})
                .with({"GET", "/later", "409"})
                .value(),
            1);
}

TEST(Dispatch, ExceptionsAreCaughtEvenWithoutRecovery) {
  Router router;
  router.get("/boom", [](Context&) { throw std::logic_error("bug"); });
  EXPECT_EQ(perform(router, {"GET", "/boom"}).status, 500);
}

struct QuotaExceeded : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// One translator per router turns a lower layer's exceptions into HTTP errors
// for every route, with or without recovery(), and for deferred answers too.
TEST(Dispatch, TheRoutersExceptionTranslatorAnswersForEveryRoute) {
  Router router;
  router.on_exception([](const std::exception_ptr& e) -> std::optional<Error> {
    try {
      std::rethrow_exception(e);
    } catch (const QuotaExceeded& q) {
      return Error(429, "quota_exceeded", q.what());
    } catch (...) {
      return std::nullopt;
    }
  });
  router.get("/sync", [](Context&) { throw QuotaExceeded("no more today"); });
  router.get("/bug", [](Context&) { throw std::logic_error("bug"); });
  router.get("/later", [](Context& c) {
    auto later = c.defer();
    std::thread([later = std::move(later)]() mutable {
      later.resume([](Context&) { throw QuotaExceeded("not now either"); });
    }).join();
  });
  auto r = perform(router, {"GET", "/sync"});
  EXPECT_EQ(r.status, 429);
  EXPECT_EQ(r.json().at("error").at("code"), "quota_exceeded");
  EXPECT_EQ(r.json().at("error").at("message"), "no more today");
  r = perform(router, {"GET", "/later"});
  EXPECT_EQ(r.status, 429);
  EXPECT_EQ(r.json().at("error").at("message"), "not now either");
  EXPECT_EQ(perform(router, {"GET", "/bug"}).status, 500);  // not the translator's: a bug
  router.freeze();
  EXPECT_THROW(router.on_exception([](const std::exception_ptr&) { return std::nullopt; }),
               std::logic_error);
}

TEST(Dispatch, NotFoundAndMethodNotAllowedAreJsonAndPassGlobalMiddleware) {
  Router router;
  router.use(mw::request_id());
  router.get("/items", [](Context& c) { c.text(200, "ok"); });
  auto r = perform(router, {"GET", "/nope"});
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.json().at("error").at("code"), "not_found");
  EXPECT_TRUE(r.header("X-Request-ID"));
  r = perform(router, {"PUT", "/items"});
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.header("Allow"), "GET, HEAD");
  EXPECT_EQ(r.json().at("error").at("code"), "method_not_allowed");
  r = perform(router, {"GET", "/items/%zz"});
  EXPECT_EQ(r.status, 400);
}

TEST(Dispatch, ParamsAndQueryAreDecoded) {
  Router router;
  router.get("/u/:name", [](Context& c) {
    c.json(200, {{"name", c.param("name")},
                 {"q", c.query("q").value_or("<none>")},
                 {"empty", c.query("e").value_or("<none>")},
                 {"missing", c.query("m").value_or("<none>")}});
  });
  auto r = perform(router, {"GET", "/u/J%C3%B8rn?q=a+b%26c&e"});
  EXPECT_EQ(r.json(),
            boost::json::parse(R"({"name":"Jørn","q":"a b&c","empty":"","missing":"<none>"})"));
}

TEST(Dispatch, RequestIdIsKeptWhenWellFormedAndReplacedOtherwise) {
  Router router;
  router.use(mw::request_id());
  router.get("/", [](Context& c) { c.text(200, c.request_id()); });
  auto r = perform(router, {"GET", "/", {{"X-Request-ID", "abc-123"}}});
  EXPECT_EQ(r.body, "abc-123");
  EXPECT_EQ(r.header("X-Request-ID"), "abc-123");
  r = perform(router, {"GET", "/", {{"X-Request-ID", "bad id\"with quotes"}}});
  EXPECT_EQ(r.body.size(), 32U);
  EXPECT_EQ(r.header("X-Request-ID"), r.body);
  r = perform(router, {"GET", "/", {{"X-Request-ID", std::string(200, 'a')}}});
  EXPECT_EQ(r.body.size(), 32U);
}

TEST(Dispatch, TraceparentIsContinuedOrStarted) {
  Router router;
  router.use(mw::trace());
  router.get("/", [](Context& c) { c.text(200, c.trace().trace_id); });
  const std::string parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  auto r = perform(router, {"GET", "/", {{"traceparent", parent}}});
  EXPECT_EQ(r.body, "4bf92f3577b34da6a3ce929d0e0e4736");
  auto echoed = observe::TraceContext::parse(r.header("traceparent").value_or(""));
  ASSERT_TRUE(echoed);
  EXPECT_EQ(echoed->trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_NE(echoed->span_id, "00f067aa0ba902b7");
  r = perform(router, {"GET", "/", {{"traceparent", "garbage"}}});
  EXPECT_EQ(r.body.size(), 32U);
  EXPECT_NE(r.body, "4bf92f3577b34da6a3ce929d0e0e4736");
}

TEST(Dispatch, AccessLogWritesOneJsonLinePerRequest) {
  Router router;
  std::vector<std::string> lines;
  auto logger = observe::Logger::to_callback([&](std::string_view l) { lines.emplace_back(l); });
  router.use(mw::request_id());
  router.use(mw::trace());
  router.use(mw::access_log(logger));
  router.get("/items/:id", [](Context& c) { c.text(201, "made"); });
  (void)perform(router, {"GET", "/items/9", {{"X-Request-ID", "r-9"}}});
  ASSERT_EQ(lines.size(), 1U);
  auto line = boost::json::parse(lines[0]).as_object();
  EXPECT_EQ(line.at("msg"), "request");
  EXPECT_EQ(line.at("status"), 201);
  EXPECT_EQ(line.at("route"), "/items/:id");
  EXPECT_EQ(line.at("path"), "/items/9");
  EXPECT_EQ(line.at("request_id"), "r-9");
  EXPECT_EQ(line.at("bytes"), 4);
  EXPECT_TRUE(line.contains("trace_id"));
  EXPECT_TRUE(line.contains("duration_ms"));
}

TEST(Dispatch, TimeoutReplacesALateResponse) {
  Router router;
  router.use(mw::timeout({.after = std::chrono::milliseconds(0)}));
  bool saw_deadline = false;
  router.get("/slow", [&](Context& c) {
    saw_deadline = c.deadline().has_value();
    c.text(200, "too late");
  });
  auto r = perform(router, {"GET", "/slow"});
  EXPECT_EQ(r.status, 408);
  EXPECT_EQ(r.json().at("error").at("code"), "timeout");
  EXPECT_TRUE(saw_deadline);
}

TEST(Dispatch, TimeoutStatusIsConfigurable) {
  Router router;
  router.use(mw::timeout({.after = std::chrono::milliseconds(0), .status = 503}));
  router.get("/slow", [](Context& c) { c.text(200, "x"); });
  EXPECT_EQ(perform(router, {"GET", "/slow"}).status, 503);
}

TEST(Dispatch, FastHandlerIsNotTimedOut) {
  Router router;
  router.use(mw::timeout({.after = std::chrono::hours(1)}));
  router.get("/fast", [](Context& c) {
    EXPECT_FALSE(c.stop_requested());
    c.text(200, "x");
  });
  EXPECT_EQ(perform(router, {"GET", "/fast"}).status, 200);
}

TEST(Dispatch, SnapshotCopiesRequestButNotCredentials) {
  Router router;
  router.use(mw::request_id());
  router.use([](Context& c) {
    c.set(tenant_key, Tenant{"acme"});
    c.next();
  });
  std::shared_ptr<const RequestSnapshot> snap;
  std::shared_ptr<const RequestSnapshot> selected;
  router.post("/t/:id", [&](Context& c) {
    snap = c.snapshot();
    selected = c.snapshot({.headers = {"x-tenant"}});
    c.status(202);
  });
  auto r = perform(router, {"POST",
                            "/t/7?x=1",
                            {{"Authorization", "Bearer s3cret"},
                             {"Cookie", "a=b"},
                             {"X-Tenant", "acme"},
                             {"X-Request-ID", "rid"}},
                            "{}"});
  EXPECT_EQ(r.status, 202);
  ASSERT_TRUE(snap);
  EXPECT_EQ(snap->method(), "POST");
  EXPECT_EQ(snap->path(), "/t/7");
  EXPECT_EQ(snap->param("id"), "7");
  EXPECT_EQ(snap->request_id(), "rid");
  EXPECT_EQ(snap->header("x-tenant"), "acme");
  EXPECT_FALSE(snap->header("authorization"));
  EXPECT_FALSE(snap->header("cookie"));
  ASSERT_NE(snap->get(tenant_key), nullptr);
  EXPECT_EQ(snap->get(tenant_key)->name, "acme");
  EXPECT_EQ(selected->headers().size(), 1U);
}

}  // namespace dispatch_test
}  // namespace errand::http
