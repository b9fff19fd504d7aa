// Request/response over real connections on 127.0.0.1.
#include <gtest/gtest.h>

#include <future>

#include <boost/describe/class.hpp>

#include "errand/http/middleware.hpp"
#include "support/http_client.hpp"

namespace errand::http {
namespace server_test {

using test::Client;
using test::raw_request;
using test::TestServer;

struct Echo {
  std::string message;
  int n;
};
BOOST_DESCRIBE_STRUCT(Echo, (), (message, n))

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto& r = srv.router();
    r.use(mw::request_id());
    r.use(mw::recovery());
    r.get("/hello", [](Context& c) { c.json(200, {{"hello", "world"}}); });
    r.post("/echo", [](Context& c) { c.json(200, c.bind<Echo>()); });
    r.post("/raw", [](Context& c) { c.text(200, std::string(c.body())); });
    r.get("/boom", [](Context&) { throw std::runtime_error("handler bug"); });
    r.get("/n/:n", [](Context& c) { c.text(200, std::string(c.param("n"))); });
    r.del("/thing", [](Context& c) { c.json(204, {{"ignored", true}}); });
    r.get("/bad-status", [](Context& c) { c.text(1000, "?"); });
    r.get("/inject", [](Context& c) {
      c.set_header("X-Echo", std::string(c.query("v").value_or("")));
      if (auto name = c.query("name")) c.set_header(std::string(*name), "named");
      c.text(200, "ok");
    });
    srv.start();
  }
  TestServer srv;
};

TEST_F(ServerTest, AnswersJson) {
  Client c(srv.port());
  auto r = c.request("GET", "/hello");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("Content-Type"), "application/json");
  EXPECT_EQ(r.json(), boost::json::parse(R"({"hello":"world"})"));
  EXPECT_FALSE(r.header("X-Request-ID").empty());
}

TEST_F(ServerTest, KeepsTheConnectionAliveAcrossRequests) {
  Client c(srv.port());
  for (int i = 0; i < 5; ++i) {
    auto r = c.request("GET", "/n/" + std::to_string(i));
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, std::to_string(i));
    EXPECT_TRUE(r.keep_alive);
  }
  EXPECT_EQ(srv.server().stats().connections, 1U);
}

TEST_F(ServerTest, AnswersPipelinedRequestsInOrder) {
  Client c(srv.port());
  std::string batch;
  for (int i = 0; i < 10; ++i) batch += raw_request("GET", "/n/" + std::to_string(i));
  c.send(batch);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(c.read().body, std::to_string(i));
}

TEST_F(ServerTest, ConnectionCloseIsHonoured) {
  Client c(srv.port());
  auto r = c.request("GET", "/hello", {}, {{"Connection", "close"}});
  EXPECT_EQ(r.status, 200);
  EXPECT_FALSE(r.keep_alive);
  EXPECT_TRUE(c.wait_closed());
}

TEST_F(ServerTest, Http10ClosesUnlessKeepAlive) {
  Client c(srv.port());
  c.send("GET /hello HTTP/1.0\r\n\r\n");  // 1.0 needs no Host
  EXPECT_EQ(c.read().status, 200);
  EXPECT_TRUE(c.wait_closed());
}

TEST_F(ServerTest, HeadHasLengthButNoBody) {
  Client c(srv.port());
  auto get = c.request("GET", "/hello");
  auto head = c.request("HEAD", "/hello");
  EXPECT_EQ(head.status, 200);
  EXPECT_TRUE(head.body.empty());
  EXPECT_EQ(head.header("Content-Length"), std::to_string(get.body.size()));
  // A body sent after HEAD would be read as the start of the next response.
  EXPECT_EQ(c.request("GET", "/n/after").body, "after");
}

TEST_F(ServerTest, BindsJsonBodies) {
  Client c(srv.port());
  auto r = c.request("POST", "/echo", R"({"message":"hi","n":3})",
                     {{"Content-Type", "application/json"}});
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.json(), boost::json::parse(R"({"message":"hi","n":3})"));
  r = c.request("POST", "/echo", R"({"message":"hi"})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.json().at("error").at("message"), "field 'n' is required");
  EXPECT_TRUE(r.keep_alive) << "a client error does not cost the connection";
}

TEST_F(ServerTest, ReadsChunkedBodies) {
  Client c(srv.port());
  c.send(
      "POST /raw HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
  auto r = c.read();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "hello world");
}

TEST_F(ServerTest, SendsContinueForExpect100) {
  Client c(srv.port());
  c.send("POST /raw HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
  EXPECT_EQ(c.read().status, 100);
  c.send("data");
  auto r = c.read();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "data");
}

TEST_F(ServerTest, RecoversFromHandlerExceptionsAndKeepsServing) {
  Client c(srv.port());
  auto r = c.request("GET", "/boom", {}, {{"X-Request-ID", "boom-1"}});
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(r.json().at("error").at("code"), "internal");
  EXPECT_TRUE(srv.wait_for_log(R"("request_id":"boom-1")"));
  EXPECT_EQ(c.request("GET", "/hello").status, 200);
  Client other(srv.port());
  EXPECT_EQ(other.request("GET", "/hello").status, 200);
}

TEST_F(ServerTest, MalformedStartLineGets400AndClose) {
  for (const char* bad :
       {"GARBAGE\r\n\r\n", "GET  HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /x HTTP/1.1\r\nNo colon here\r\n\r\n",
        "GET /x HTTP/1.1\r\n\r\n",  // HTTP/1.1 requires Host
        "GET /x HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n",
        "GET /x HTTP/1.1\r\nHost: a\r\nBad\x01Name: v\r\n\r\n",
        "POST /raw HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"}) {
    Client c(srv.port());
    c.send(bad);
    auto r = c.read();
    EXPECT_EQ(r.status, 400) << bad;
    EXPECT_EQ(r.json().at("error").at("code"), "bad_request") << bad;
    EXPECT_TRUE(c.wait_closed()) << bad;
  }
  Client c(srv.port());
  EXPECT_EQ(c.request("GET", "/hello").status, 200);
}

TEST_F(ServerTest, UnsupportedHttpVersionGets505) {
  Client c(srv.port());
  c.send("GET /hello HTTP/2.0\r\nHost: a\r\n\r\n");
  EXPECT_EQ(c.read().status, 505);
  EXPECT_TRUE(c.wait_closed());
}

TEST_F(ServerTest, NoContentResponsesCarryNoBody) {
  Client c(srv.port());
  auto r = c.request("DELETE", "/thing");
  EXPECT_EQ(r.status, 204);
  EXPECT_TRUE(r.body.empty());
  EXPECT_EQ(c.request("GET", "/hello").status, 200) << "the connection stays in sync";
}

TEST_F(ServerTest, AnInvalidStatusBecomes500) {
  Client c(srv.port());
  EXPECT_EQ(c.request("GET", "/bad-status").status, 500);
  EXPECT_TRUE(srv.wait_for_log("invalid status"));
}

TEST_F(ServerTest, HeaderValuesCannotSplitTheResponse) {
  Client c(srv.port());
  auto r = c.request("GET", "/inject?v=a%0d%0aSet-Cookie:%20x=1");
  EXPECT_EQ(r.status, 200);
  EXPECT_FALSE(r.has_header("Set-Cookie"));
  EXPECT_FALSE(r.has_header("X-Echo"));
  EXPECT_EQ(c.request("GET", "/inject?v=fine").header("X-Echo"), "fine");
  // Nor can names: a colon, a space, CR, LF or NUL in one drops the header.
  for (const char* name : {"X-A:%20b", "X-A%20b", "X-A%0d%0aSet-Cookie", "X-A%00b", "X-A%0a"}) {
    r = c.request("GET", std::string("/inject?v=fine&name=") + name);
    EXPECT_EQ(r.status, 200) << name;
    EXPECT_FALSE(r.has_header("Set-Cookie")) << name;
    EXPECT_EQ(r.body, "ok") << name;
    EXPECT_EQ(r.header("X-Echo"), "fine") << name;
  }
  EXPECT_EQ(c.request("GET", "/inject?v=fine&name=X-Named").header("X-Named"), "named");
}

TEST(ServerStart, APortInUseThrowsAndLeavesNothingToStop) {
  TestServer first;
  first.start();
  auto cfg = TestServer::defaults();
  cfg.port = first.port();
  TestServer second(cfg);
  EXPECT_THROW(second.start(), std::system_error);
  // ~TestServer stops `second`: it must return at once, not wait on threads
  // that never started.
}

TEST(ServerStart, AnInvalidAddressThrows) {
  auto cfg = TestServer::defaults();
  cfg.address = "not-an-ip";
  TestServer srv(cfg);
  EXPECT_THROW(srv.start(), std::system_error);
}

TEST_F(ServerTest, UnknownRoutesAre404Json) {
  Client c(srv.port());
  auto r = c.request("GET", "/missing");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.json().at("error").at("code"), "not_found");
  r = c.request("DELETE", "/hello");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.header("Allow"), "GET, HEAD");
}

// The snapshot outlives the request and is read on another thread after the
// response was sent; run under ThreadSanitizer this proves it shares nothing
// mutable with the connection.
TEST(ServerSnapshot, IsSafeToUseFromAnotherThreadAfterTheResponse) {
  TestServer srv;
  std::promise<std::shared_ptr<const RequestSnapshot>> handed_over;
  srv.router().use(mw::request_id());
  srv.router().get("/work/:id", [&](Context& c) {
    handed_over.set_value(c.snapshot());
    c.json(202, {{"accepted", true}});
  });
  srv.start();
  Client c(srv.port());
  auto r = c.request("GET", "/work/77", {}, {{"X-Request-ID", "snap-1"}, {"X-Tenant", "t1"}});
  ASSERT_EQ(r.status, 202);
  // More traffic on the same connection reuses its buffers while we read.
  std::jthread background([snap = handed_over.get_future().get()] {
    EXPECT_EQ(snap->param("id"), "77");
    EXPECT_EQ(snap->request_id(), "snap-1");
    EXPECT_EQ(snap->header("X-Tenant"), "t1");
    EXPECT_EQ(snap->method(), "GET");
  });
  for (int i = 0; i < 20; ++i) EXPECT_EQ(c.request("GET", "/missing").status, 404);
}

}  // namespace server_test
}  // namespace errand::http

namespace errand::http::server_test {

TEST(Streaming, PiecesArriveAsChunksThenTheStreamEnds) {
  TestServer srv;
  srv.router().get("/count", [](Context& c) {
    c.stream(
        200, "text/plain",
        [n = std::make_shared<int>(0)](const std::stop_token&) -> std::optional<std::string> {
          ++*n;
          if (*n == 2) return std::string();  // nothing this time
          if (*n > 4) return std::nullopt;
          return "piece " + std::to_string(*n) + "\n";
        },
        std::chrono::milliseconds(1));
  });
  srv.start();
  test::Client client(srv.port());
  const auto r = client.request("GET", "/count");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("Transfer-Encoding"), "chunked");
  EXPECT_EQ(r.body, "piece 1\npiece 3\npiece 4\n");
  EXPECT_FALSE(r.keep_alive);
  EXPECT_TRUE(client.wait_closed());
}

TEST(Streaming, DrainEndsAnEndlessStream) {
  TestServer srv;
  auto pulls = std::make_shared<std::atomic<int>>(0);
  srv.router().get("/forever", [pulls](Context& c) {
    c.stream(
        200, "text/event-stream",
        [pulls](const std::stop_token&) -> std::optional<std::string> {
          ++*pulls;
          return std::string(": ping\n\n");
        },
        std::chrono::milliseconds(5));
  });
  srv.start();
  test::Client client(srv.port());
  client.send(raw_request("GET", "/forever"));
  ASSERT_TRUE(test::eventually([&] { return pulls->load() >= 3; }));
  std::jthread stopper([&] { srv.server().stop(); });
  const auto r = client.read();  // returns once the server ends the stream
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find(": ping"), std::string::npos);
}

}  // namespace errand::http::server_test
