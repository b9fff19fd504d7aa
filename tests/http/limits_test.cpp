// Every limit at its edge and just past it, over real sockets.
#include <gtest/gtest.h>

#include "support/http_client.hpp"

namespace errand::http {
namespace limits_test {

using namespace std::chrono_literals;
using test::Client;
using test::TestServer;

ServerConfig small_limits() {
  auto cfg = TestServer::defaults();
  cfg.max_header_bytes = 1024;
  cfg.max_body_bytes = 100;
  return cfg;
}

// A GET whose whole header (request line, fields, blank line) is `size` bytes.
std::string request_of_header_size(std::size_t size) {
  const std::string head = "GET /ok HTTP/1.1\r\nHost: t\r\nX-Pad: ";
  const std::string tail = "\r\n\r\n";
  return head + std::string(size - head.size() - tail.size(), 'p') + tail;
}

class LimitsTest : public ::testing::Test {
 protected:
  explicit LimitsTest(ServerConfig cfg = small_limits()) : srv(std::move(cfg)) {
    srv.router().get("/ok", [](Context& c) { c.text(200, "ok"); });
    srv.router().post("/body", [](Context& c) { c.text(200, std::to_string(c.body().size())); });
    srv.start();
  }
  TestServer srv;
};

TEST_F(LimitsTest, HeaderAtTheLimitIsAccepted) {
  Client c(srv.port());
  c.send(request_of_header_size(1024));
  EXPECT_EQ(c.read().status, 200);
}

TEST_F(LimitsTest, HeaderOneBytePastTheLimitIs431) {
  Client c(srv.port());
  c.send(request_of_header_size(1025));
  auto r = c.read();
  EXPECT_EQ(r.status, 431);
  EXPECT_EQ(r.json().at("error").at("code"), "header_too_large");
  EXPECT_TRUE(c.wait_closed());
}

TEST_F(LimitsTest, BodyAtTheLimitIsAccepted) {
  Client c(srv.port());
  auto r = c.request("POST", "/body", std::string(100, 'b'));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "100");
}

TEST_F(LimitsTest, ContentLengthPastTheLimitIs413BeforeTheBodyIsSent) {
  Client c(srv.port());
  // Only the header: the server must answer without waiting for the body.
  c.send("POST /body HTTP/1.1\r\nHost: t\r\nContent-Length: 101\r\n\r\n");
  auto r = c.read();
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(r.json().at("error").at("code"), "body_too_large");
  EXPECT_TRUE(c.wait_closed());
}

TEST_F(LimitsTest, ChunkedBodyPastTheLimitIs413) {
  Client c(srv.port());
  std::string chunk(60, 'c');
  c.send("POST /body HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3c\r\n" + chunk +
         "\r\n3c\r\n" + chunk + "\r\n0\r\n\r\n");
  EXPECT_EQ(c.read().status, 413);
}

TEST_F(LimitsTest, ChunkedBodyAtTheLimitIsAccepted) {
  Client c(srv.port());
  c.send("POST /body HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n32\r\n" +
         std::string(50, 'c') + "\r\n32\r\n" + std::string(50, 'c') + "\r\n0\r\n\r\n");
  auto r = c.read();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "100");
}

class TimeoutLimitsTest : public LimitsTest {
 protected:
  static ServerConfig cfg() {
    auto c = small_limits();
    c.header_timeout = 300ms;
    c.body_timeout = 300ms;
    c.idle_timeout = 300ms;
    return c;
  }
  TimeoutLimitsTest() : LimitsTest(cfg()) {}
};

TEST_F(TimeoutLimitsTest, SlowHeadersGetTheConnectionClosed) {
  Client c(srv.port());
  c.send("GET /ok HTTP/1.1\r\nHost: t\r\n");  // never finishes the header
  EXPECT_TRUE(c.wait_closed());
}

TEST_F(TimeoutLimitsTest, TricklingHeadersDoNotExtendTheDeadline) {
  Client c(srv.port());
  c.send("GET /ok HTTP/1.1\r\n");
  // Keep sending header lines; the deadline counts from the first byte.
  bool closed = false;
  for (int i = 0; i < 400 && !closed; ++i) {
    try {
      c.send("X-Slow: 1\r\n");
    } catch (const std::system_error&) {
      closed = true;
    }
    std::this_thread::sleep_for(10ms);  // pacing the trickle, not waiting for a result
  }
  EXPECT_TRUE(closed || c.wait_closed());
}

TEST_F(TimeoutLimitsTest, SlowBodyGetsTheConnectionClosed) {
  Client c(srv.port());
  c.send("POST /body HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc");
  EXPECT_TRUE(c.wait_closed());
}

TEST_F(TimeoutLimitsTest, IdleKeepAliveConnectionsAreClosed) {
  Client c(srv.port());
  EXPECT_EQ(c.request("GET", "/ok").status, 200);
  EXPECT_TRUE(c.wait_closed());
  EXPECT_TRUE(test::eventually([&] { return srv.server().stats().connections == 0; }));
}

class ConnectionLimitTest : public LimitsTest {
 protected:
  static ServerConfig cfg() {
    auto c = small_limits();
    c.max_connections = 2;
    return c;
  }
  ConnectionLimitTest() : LimitsTest(cfg()) {}
};

TEST_F(ConnectionLimitTest, ConnectionsPastTheLimitGet503AndAreClosed) {
  auto a = std::make_unique<Client>(srv.port());
  Client b(srv.port());
  EXPECT_EQ(a->request("GET", "/ok").status, 200);
  EXPECT_EQ(b.request("GET", "/ok").status, 200);
  ASSERT_EQ(srv.server().stats().connections, 2U);

  Client over(srv.port());
  auto r = over.read();  // answered without sending anything
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.json().at("error").at("code"), "too_many_connections");
  EXPECT_TRUE(over.wait_closed());
  EXPECT_EQ(srv.server().stats().connections_rejected, 1U);

  a.reset();  // frees a slot
  ASSERT_TRUE(test::eventually([&] { return srv.server().stats().connections == 1; }));
  Client again(srv.port());
  EXPECT_EQ(again.request("GET", "/ok").status, 200);
}

}  // namespace limits_test
}  // namespace errand::http
