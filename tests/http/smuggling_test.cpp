// Request smuggling: every framing a front proxy and errand could read
// differently is answered once, with an error, and the connection closed —
// the bytes after it are never parsed as a second request (RFC 9112 §6.3).
#include <gtest/gtest.h>

#include "errand/http/middleware.hpp"
#include "support/http_client.hpp"

namespace errand::http {
namespace smuggling_test {

using test::Client;
using test::TestServer;

// The request a smuggler hides in the body; if errand ever answered it, the
// reply would carry this marker.
constexpr std::string_view smuggled = "GET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n";

struct Shape {
  const char* name;
  std::string head;  // start line and header fields, without the blank line
  std::string body;  // sent after the blank line, followed by `smuggled`
  int status;
};

void PrintTo(const Shape& shape, std::ostream* os) {
  *os << shape.name;
}

class SmugglingTest : public ::testing::TestWithParam<Shape> {
 protected:
  void SetUp() override {
    srv.router().post("/echo", [](Context& c) { c.text(200, "body=" + std::string(c.body())); });
    srv.router().get("/smuggled", [](Context& c) { c.text(200, "SMUGGLED"); });
    srv.start();
  }
  TestServer srv;
};

TEST_P(SmugglingTest, IsAnsweredOnceThenClosed) {
  const auto& shape = GetParam();
  Client c(srv.port());
  c.send(shape.head + "\r\n\r\n" + shape.body + std::string(smuggled));
  const auto r = c.read();
  EXPECT_EQ(r.status, shape.status) << r.body;
  EXPECT_FALSE(r.keep_alive);
  const auto code = r.json().at("error").at("code").as_string();
  EXPECT_EQ(code, shape.status == 501 ? "not_implemented" : "bad_request");
  const auto rest = c.read_until_closed();
  ASSERT_TRUE(rest.has_value()) << "the connection stayed open";
  EXPECT_EQ(*rest, "") << "a second response followed";

  // The server keeps serving other connections.
  Client other(srv.port());
  EXPECT_EQ(other.request("POST", "/echo", "ok").body, "body=ok");
}

const std::string post = "POST /echo HTTP/1.1\r\nHost: t\r\n";
const std::string chunk = "5\r\nhello\r\n0\r\n\r\n";

INSTANTIATE_TEST_SUITE_P(
    Shapes, SmugglingTest,
    ::testing::Values(
        // Transfer-Encoding that does not end in chunked: the body length is unknown.
        Shape{"te_chunked_identity", post + "Transfer-Encoding: chunked, identity", chunk, 400},
        Shape{"te_identity", post + "Transfer-Encoding: identity", "hello", 400},
        Shape{"te_xchunked", post + "Transfer-Encoding: xchunked", chunk, 400},
        Shape{"te_gzip", post + "Transfer-Encoding: gzip", "hello", 400},
        Shape{"te_empty", post + "Transfer-Encoding: ,", chunk, 400},
        Shape{"te_chunked_twice", post + "Transfer-Encoding: chunked, chunked", chunk, 400},
        Shape{"te_two_fields_identity_last",
              post + "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity", chunk, 400},
        Shape{"te_with_parameter", post + "Transfer-Encoding: chunked;q=1", chunk, 400},
        Shape{"te_in_http10", "POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked", chunk, 400},
        // An unsupported coding before chunked: understood, not implemented.
        Shape{"te_gzip_chunked", post + "Transfer-Encoding: gzip, chunked", chunk, 501},
        Shape{"te_two_fields_gzip_then_chunked",
              post + "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked", chunk, 501},
        // Content-Length and Transfer-Encoding together, in both orders.
        Shape{"cl_then_te", post + "Content-Length: 5\r\nTransfer-Encoding: chunked", chunk, 400},
        Shape{"te_then_cl", post + "Transfer-Encoding: chunked\r\nContent-Length: 5", chunk, 400},
        Shape{"te_gzip_then_cl", post + "Transfer-Encoding: gzip\r\nContent-Length: 5", "hello",
              400},
        // Content-Length repeated, listed, signed or not a number.
        Shape{"cl_duplicate_same", post + "Content-Length: 5\r\nContent-Length: 5", "hello", 400},
        Shape{"cl_duplicate_different", post + "Content-Length: 5\r\nContent-Length: 0", "hello",
              400},
        Shape{"cl_list", post + "Content-Length: 5, 5", "hello", 400},
        Shape{"cl_plus", post + "Content-Length: +5", "hello", 400},
        Shape{"cl_minus", post + "Content-Length: -5", "hello", 400},
        Shape{"cl_hex", post + "Content-Length: 0x5", "hello", 400},
        // Obsolete line folding, on framing headers and elsewhere.
        Shape{"fold_te", post + "Transfer-Encoding:\r\n chunked", chunk, 400},
        Shape{"fold_te_tab", post + "Transfer-Encoding: identity\r\n\tchunked", chunk, 400},
        Shape{"fold_cl", post + "Content-Length:\r\n 5", "hello", 400},
        Shape{"fold_other", post + "X-Note: a\r\n b\r\nContent-Length: 5", "hello", 400},
        // Bare LF line endings, a space before the colon, NUL bytes.
        Shape{"bare_lf_header", "POST /echo HTTP/1.1\r\nHost: t\nContent-Length: 5", "hello", 400},
        Shape{"bare_lf_request_line", "POST /echo HTTP/1.1\nHost: t\r\nContent-Length: 5", "hello",
              400},
        Shape{"space_before_colon", post + "Transfer-Encoding : chunked", chunk, 400},
        Shape{"nul_in_value", post + std::string("X-Note: a\0b", 11) + "\r\nContent-Length: 5",
              "hello", 400},
        Shape{"nul_in_cl", post + std::string("Content-Length: 5\0", 18), "hello", 400},
        // A chunk size line that is not hexadecimal.
        Shape{"chunk_size_signed", post + "Transfer-Encoding: chunked", "+5\r\nhello\r\n0\r\n\r\n",
              400},
        Shape{"chunk_size_bare_lf", post + "Transfer-Encoding: chunked", "5\nhello\r\n0\r\n\r\n",
              400}),
    [](const ::testing::TestParamInfo<Shape>& shape) { return std::string(shape.param.name); });

// A fold in a header that arrives in pieces, the parser taking the complete
// lines of the first piece before the second arrives, is found all the same.
TEST(SmugglingPieces, AFoldInALaterPieceOfTheHeaderIsRefused) {
  TestServer srv;
  srv.router().post("/echo", [](Context& c) { c.text(200, "body=" + std::string(c.body())); });
  srv.start();
  for (const std::string second : {" chunked\r\n\r\n", "\tchunked\r\n\r\n"}) {
    Client c(srv.port());
    c.send(post + "Transfer-Encoding: identity\r\n");
    c.send(second + chunk + std::string(smuggled));
    const auto r = c.read();
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_EQ(c.read_until_closed().value_or("(open)"), "");
  }
}

// The sound framings still work, including a chunked body with the coding's
// name in another case and list whitespace.
TEST(SmugglingControls, SoundFramingsAreServed) {
  TestServer srv;
  srv.router().post("/echo", [](Context& c) { c.text(200, "body=" + std::string(c.body())); });
  srv.start();
  Client c(srv.port());
  c.send(post + "Transfer-Encoding:  Chunked \r\n\r\n" + chunk);
  EXPECT_EQ(c.read().body, "body=hello");
  c.send(post + "Transfer-Encoding: ,chunked\r\n\r\n" + chunk);
  EXPECT_EQ(c.read().body, "body=hello");
  c.send(post + "Content-Length: 5\r\n\r\nhello");
  EXPECT_EQ(c.read().body, "body=hello");
  c.send(post + "Content-Length: 005\r\n\r\nhello");
  EXPECT_EQ(c.read().body, "body=hello");
}

}  // namespace smuggling_test
}  // namespace errand::http
