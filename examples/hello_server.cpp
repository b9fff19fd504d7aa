// The README's tour, compiled with every build so it stays true.
#include <chrono>
#include <optional>
#include <string>
#include <thread>

#include <boost/describe/class.hpp>

#include "errand/http/middleware.hpp"
#include "errand/http/server.hpp"

struct Welcome {
  std::string email;
  std::optional<std::string> name;
};
BOOST_DESCRIBE_STRUCT(Welcome, (), (email, name))

// A typed per-request value: set by middleware, read by handlers.
const errand::http::Key<std::string> tenant{"tenant"};

int main() {
  errand::http::Server server({.port = 8080, .blocking_threads = 4});
  auto& r = server.router();
  r.use(errand::http::mw::request_id());
  r.use(errand::http::mw::trace());
  r.use(errand::http::mw::access_log(errand::observe::Logger::to_stderr()));
  r.use(errand::http::mw::recovery());
  r.use(errand::http::mw::timeout({.after = std::chrono::seconds(5)}));

  auto api = r.group("/api");
  api.use([](errand::http::Context& c) {
    c.set(tenant, std::string(c.header("X-Tenant").value_or("public")));
    c.next();
  });
  api.post("/register", [](errand::http::Context& c) {
    auto in = c.bind<Welcome>();  // 400 naming the field on bad input
    auto snap = c.snapshot();     // immutable: safe to hand to background work
    c.log().info("registered", {{"email", in.email}, {"tenant", *snap->get(tenant)}});
    c.json(202, {{"accepted", in.email}, {"request_id", snap->request_id()}});
  });
  api.get("/users/:id", [](errand::http::Context& c) {
    c.json(200, {{"id", c.param("id")}, {"verbose", c.query("verbose").has_value()}});
  });
  api.get("/report",
          [](errand::http::Context& c) {
            // Runs on the blocking pool: sleeping here stalls no other request.
            for (int i = 0; i < 20 && !c.stop_requested(); ++i) {
              std::this_thread::sleep_for(std::chrono::milliseconds(100));
            }
            c.text(200, "report ready\n");
          },
          {.blocking = true});
  return server.run();  // SIGINT/SIGTERM: drain, then exit 0
}
