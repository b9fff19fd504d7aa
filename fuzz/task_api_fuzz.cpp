// The REST API's bodies and queries through the real routes (http::testing:
// the same routing, chain and error mapping as the server, without sockets),
// on a memory store. The first byte picks the route; the rest is the body,
// or the query string, or the id. Every answer is a status the API documents
// — never 500 — and every error is {"error": {"code", "message"}}.
#include <array>
#include <memory>
#include <string>

#include <boost/json/parse.hpp>

#include "errand/app/app.hpp"
#include "errand/app/builtin_tasks.hpp"
#include "errand/app/task_api.hpp"
#include "errand/http/testing.hpp"
#include "errand/store/memory_store.hpp"
#include "errand/tasks/runtime.hpp"
#include "fuzz_check.hpp"

using errand::fuzz::check;
namespace http = errand::http;

namespace {

struct Route {
  const char* method;
  const char* target;  // the rest of the input goes after it, or in the body
  bool body;
};
constexpr std::array<Route, 8> kRoutes{{
    {"POST", "/v1/tasks", true},
    {"POST", "/v1/tasks/batch", true},
    {"POST", "/v1/tasks/bulk", true},
    {"GET", "/v1/tasks?", false},
    {"GET", "/v1/tasks/", false},
    {"POST", "/async-task", true},
    {"GET", "/v1/stats?", false},
    {"GET", "/v1/groups/", false},
}};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const auto& route = kRoutes.at(data[0] % kRoutes.size());
  const auto rest = errand::fuzz::text(data + 1, size - 1);

  // A store and runtime per input: nothing carries over, memory stays flat.
  // The runtime is not started: enqueues are stored and nothing runs.
  errand::tasks::RuntimeConfig cfg;
  cfg.logger = errand::observe::Logger::null();
  errand::tasks::Runtime runtime(std::make_shared<errand::store::MemoryStore>(), cfg);
  (void)errand::app::register_builtin_tasks(runtime);
  http::Router router;
  router.on_exception(errand::task_errors_as_http);  // as an App's router does
  errand::app::install_task_api(router, runtime, {.max_batch = 20, .max_list_limit = 100});

  http::testing::Request req{route.method, route.target, {}, {}};
  if (route.body) {
    req.body = std::string(rest);
    req.headers.emplace_back("Content-Type", "application/json");
  } else {
    req.target += std::string(rest);
  }
  // Only a handler that throws logs at this level: what a 500 comes from.
  static const auto log = errand::observe::Logger::to_stderr(errand::observe::Level::error);
  const auto r = http::testing::perform(router, req, log);
  if (r.status == 500) {
    std::fprintf(stderr, "%s %s -> 500 %s\n", req.method.c_str(), req.target.c_str(),
                 r.body.c_str());
  }
  check(r.status != 500, "no internal error");
  check(r.status >= 200 && r.status < 600, "a status");
  if (r.status >= 400) {
    boost::system::error_code ec;
    const auto body = boost::json::parse(r.body, ec);
    check(!ec && body.is_object(), "an error is a JSON object");
    const auto* error = body.as_object().if_contains("error");
    check(error != nullptr && error->is_object() && error->as_object().contains("code") &&
              error->as_object().contains("message"),
          "an error has a code and a message");
  }
  return 0;
}
