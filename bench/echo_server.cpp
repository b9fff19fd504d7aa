// The server the wrk scripts load: GET /healthz and a JSON echo route.
// Usage: errand_echo_server [io_threads=1] [stack=full|bare]
//   full: errand's standard middleware (request id, trace, access log at level
//         warn so nothing is written, recovery, timeout);
//   bare: recovery only, like the Gin baseline's gin.New() + Recovery().
#include <cstdio>
#include <string>

#include <boost/describe/class.hpp>

#include "errand/app/config.hpp"
#include "errand/app/serve.hpp"
#include "errand/http/middleware.hpp"
#include "errand/http/server.hpp"

namespace {

struct Echo {
  std::string message;
  int n;
};
BOOST_DESCRIBE_STRUCT(Echo, (), (message, n))

}  // namespace

int main(int argc, char** argv) {
  errand::app::Config config;
  config.app.http.port = 0;
  config.app.http.threads = argc > 1 ? static_cast<unsigned>(std::stoul(argv[1])) : 1;
  config.log_level = errand::observe::Level::warn;  // no access log lines under load
  auto logger = errand::observe::Logger::to_stderr(config.log_level);
  errand::http::Server server(config.app.http, logger);
  const std::string stack = argc > 2 ? argv[2] : "full";
  if (stack == "bare") {
    server.router().use(errand::http::mw::recovery());
  } else {
    errand::app::install_standard_middleware(server.router(), config.app.request_timeout, logger);
  }
  errand::app::install_health_routes(server);
  server.router().post("/echo", [](errand::http::Context& c) { c.json(200, c.bind<Echo>()); });
  server.start();
  std::fprintf(stderr, "port %u\n", static_cast<unsigned>(server.port()));
  return server.run();
}
