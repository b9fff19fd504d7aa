// Bytes as they arrive on a connection, through what the server does with
// them: Beast's parser under the server's limits and framing checks, the
// router, errand's standard middleware (request id, trace, access log,
// recovery, timeout) and a few handlers (parameters, a bound JSON body, a
// query, a deferred answer, a thrown error), and the server's response
// writer — http::testing::perform_wire, checked byte for byte against a real
// server in tests/http/perform_wire_test.cpp. Whatever comes in, what goes
// out is HTTP responses, and nothing is logged as an error (a handler that
// threw, an invalid status, a dropped deferred answer: what a 500 comes from;
// no handler here fails).
#include <boost/describe/class.hpp>

#include <string>

#include "errand/app/serve.hpp"
#include "errand/http/middleware.hpp"
#include "errand/http/testing.hpp"
#include "fuzz_check.hpp"

using errand::fuzz::check;
namespace http = errand::http;

namespace {

struct Item {
  std::string name;
  int count = 0;
  std::vector<std::string> tags;
};
BOOST_DESCRIBE_STRUCT(Item, (), (name, count, tags))

// Error lines of this input; any is a failure.
std::string& errors() {
  static std::string lines;
  return lines;
}

errand::observe::Logger error_log() {
  return errand::observe::Logger::to_callback(
      [](std::string_view line) {
        errors() += line;
        errors() += '\n';
      },
      errand::observe::Level::error);
}

http::Router& router() {
  static http::Router* r = [] {
    auto* router = new http::Router();  // NOLINT(cppcoreguidelines-owning-memory): for the process
    errand::app::install_standard_middleware(*router, std::chrono::seconds(5), error_log());
    router->use(http::mw::concurrency_limit({.max_in_flight = 4}));
    router->get("/items/:id", [](http::Context& c) {
      c.json(200, {{"id", c.param("id")}, {"q", c.query("q").value_or("")}});
    });
    router->post("/items", [](http::Context& c) {
      const auto item = c.bind<Item>();
      c.json(201, {{"name", item.name}, {"count", item.count}});
    });
    router->put("/raw/*rest", [](http::Context& c) { c.text(200, std::string(c.body())); });
    router->get("/later", [](http::Context& c) {
      c.defer().resume([](http::Context& done) { done.json(202, {{"later", true}}); });
    });
    router->get("/teapot", [](http::Context&) { throw http::Error(418, "teapot", "no coffee"); });
    router->get("/slow", [](http::Context& c) { c.text(200, "slow"); }, {.blocking = true});
    return router;
  }();
  return *r;
}

http::ServerConfig limits() {
  http::ServerConfig cfg;
  cfg.max_header_bytes = 1024;
  cfg.max_body_bytes = 512;
  return cfg;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const auto cfg = limits();
  static const auto log = error_log();
  errors().clear();
  const auto out = http::testing::perform_wire(router(), errand::fuzz::text(data, size), cfg, log);
  check(out.empty() || out.starts_with("HTTP/1."), "responses only");
  if (!errors().empty()) std::fputs(errors().c_str(), stderr);
  check(errors().empty(), "no internal error");
  return 0;
}
