// http::testing::perform_wire: raw bytes in, the server's bytes out, without
// sockets. Its answers are checked byte for byte against a real server's for
// the same input, so the HTTP fuzz target (fuzz/http_request_fuzz.cpp), which
// drives it, fuzzes what the server does.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "errand/http/middleware.hpp"
#include "errand/http/testing.hpp"
#include "support/http_client.hpp"

namespace errand::http {
namespace perform_wire_test {

using testing::perform_wire;

void routes(Router& r) {
  r.use(mw::recovery());
  r.get("/items/:id", [](Context& c) { c.text(200, "item " + std::string(c.param("id"))); });
  r.post("/echo", [](Context& c) { c.text(200, std::string(c.body())); });
  r.get("/later", [](Context& c) {
    c.defer().resume([](Context& done) { done.json(202, {{"later", true}}); });
  });
  r.get("/teapot", [](Context&) { throw Error(418, "teapot", "short and stout"); });
}

ServerConfig small_limits() {
  auto cfg = test::TestServer::defaults();
  cfg.max_body_bytes = 64;
  cfg.max_header_bytes = 512;
  return cfg;
}

const std::vector<std::string>& inputs() {
  static const std::vector<std::string> all = {
      // Pipelined, the last one closing.
      "GET /items/1 HTTP/1.1\r\nHost: t\r\n\r\nGET /items/2 HTTP/1.1\r\nHost: t\r\n"
      "Connection: close\r\n\r\n",
      // A body, chunked, then HEAD and a deferred answer and an error.
      "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
      "HEAD /items/3 HTTP/1.1\r\nHost: t\r\n\r\nGET /later HTTP/1.1\r\nHost: t\r\n\r\n"
      "GET /teapot HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
      // HTTP/1.0 closes by default; 404 and 405 on the way.
      "GET /nope HTTP/1.1\r\nHost: t\r\n\r\nDELETE /echo HTTP/1.1\r\nHost: t\r\n\r\n"
      "GET /items/4 HTTP/1.0\r\n\r\n",
      // Refusals: each answered once, then the connection closes.
      "GET /items/5 HTTP/1.1\r\nHost: t\r\nX-Folded: a\r\n b\r\n\r\n",
      "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 65\r\n\r\n",
      "GET /items/6 HTTP/1.1\r\n\r\n",
      "GET /items/7 HTTP/2.0\r\nHost: t\r\n\r\n",
      "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
      "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
      "GET /items/8 HTTP/1.1\r\nHost: t\r\nX-Big: " + std::string(600, 'x') + "\r\n\r\n",
      "garbage\r\n\r\n",
  };
  return all;
}

TEST(PerformWire, AnswersAsTheServerDoesByteForByte) {
  test::TestServer srv(small_limits());
  routes(srv.router());
  srv.start();
  Router router;
  routes(router);
  for (const auto& in : inputs()) {
    test::Client c(srv.port());
    c.send(in);
    const auto served = c.read_until_closed();
    ASSERT_TRUE(served.has_value()) << in;
    EXPECT_EQ(perform_wire(router, in, small_limits()), *served) << in;
  }
}

TEST(PerformWire, StopsWhereTheServerWouldClose) {
  Router router;
  routes(router);
  // Keep-alive, then the input ends: both answered.
  auto out = perform_wire(router,
                          "GET /items/1 HTTP/1.1\r\nHost: t\r\n\r\n"
                          "GET /items/2 HTTP/1.1\r\nHost: t\r\n\r\n");
  EXPECT_NE(out.find("item 1"), std::string::npos);
  EXPECT_NE(out.find("item 2"), std::string::npos);
  // A request after a refused one is never read.
  out =
      perform_wire(router, "GET /items/1 HTTP/1.1\r\n\r\nGET /items/2 HTTP/1.1\r\nHost: t\r\n\r\n");
  EXPECT_TRUE(out.starts_with("HTTP/1.1 400 Bad Request\r\n")) << out;
  EXPECT_EQ(out.find("item 2"), std::string::npos);
  // A request cut short gets nothing: the client went away.
  EXPECT_EQ(perform_wire(router, "GET /items/1 HTTP/1.1\r\nHost:"), "");
  // Expect: 100-continue, then the body.
  out = perform_wire(router,
                     "POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
                     "Content-Length: 2\r\n\r\nhi");
  EXPECT_TRUE(out.starts_with("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n")) << out;
  EXPECT_TRUE(out.ends_with("\r\n\r\nhi")) << out;
}

}  // namespace perform_wire_test
}  // namespace errand::http
