#pragma once
// Router: a radix tree over path segments with static segments, ":param" and a
// final "*rest", plus Gin-style route groups and middleware.
//
//  * Precedence: static beats :param beats *rest, with backtracking, so
//    "/users/new" and "/users/:id" coexist and "/users/new/x" still reaches
//    "/users/:id/x" when no static route matches.
//  * Matching is on percent-decoded segments ("%2F" inside a segment does not
//    split it); parameters are handed out decoded. "*rest" captures the rest of
//    the path without its leading slash ("" is allowed).
//  * Conflicts are rejected when a route is added, by throwing
//    std::invalid_argument with both patterns in the message: a duplicate
//    method+pattern, two parameter names at one position, a "*rest" that is not
//    last. Register routes at start-up, before the server runs.
//  * Middleware added with use() applies to every route of that group and its
//    subgroups, whenever the route was added (unlike Gin, order of use() and
//    get() does not matter); chains are built once, by freeze().
//
// Threading: build on one thread; after freeze() a Router is read-only and
// match() may be called from any number of threads.

#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "errand/http/context.hpp"
#include "errand/http/error.hpp"

namespace errand::http {

struct RouteOptions {
  // Run the chain on the bounded blocking pool instead of an I/O thread, for
  // handlers that block (file I/O, a synchronous client, sleeping).
  bool blocking = false;
};

struct Route {
  std::string method;
  std::string pattern;
  RouteOptions options;
  std::vector<Handler> chain;  // middleware..., handler; filled by freeze()
};

struct RouteMatch {
  enum class Kind { found, not_found, method_not_allowed, bad_path };
  Kind kind = Kind::not_found;
  const Route* route = nullptr;
  Params params;
  std::vector<std::string> allowed;  // for method_not_allowed, sorted
};

class Router;

class RouteGroup {
 public:
  void use(Handler middleware);
  RouteGroup group(std::string_view prefix);

  void add(std::string_view method, std::string_view pattern, Handler handler,
           RouteOptions options = {});
  void get(std::string_view p, Handler h, RouteOptions o = {}) { add("GET", p, std::move(h), o); }
  void post(std::string_view p, Handler h, RouteOptions o = {}) { add("POST", p, std::move(h), o); }
  void put(std::string_view p, Handler h, RouteOptions o = {}) { add("PUT", p, std::move(h), o); }
  void patch(std::string_view p, Handler h, RouteOptions o = {}) {
    add("PATCH", p, std::move(h), o);
  }
  void del(std::string_view p, Handler h, RouteOptions o = {}) {
    add("DELETE", p, std::move(h), o);
  }
  void head(std::string_view p, Handler h, RouteOptions o = {}) { add("HEAD", p, std::move(h), o); }
  void options(std::string_view p, Handler h, RouteOptions o = {}) {
    add("OPTIONS", p, std::move(h), o);
  }

  struct State;

 protected:
  RouteGroup(Router* router, std::shared_ptr<State> state)
      : router_(router), state_(std::move(state)) {}

  Router* router_;
  std::shared_ptr<State> state_;
};

// Turns an exception a handler let escape into an HTTP error, or nullopt to
// leave it to the next translator and, last, to the 500 "internal" answer.
// Runs on the thread that caught the exception; must not throw.
using ExceptionTranslator = std::function<std::optional<Error>(const std::exception_ptr&)>;

class Router : public RouteGroup {
 public:
  Router();
  ~Router();
  Router(const Router&) = delete;
  Router& operator=(const Router&) = delete;

  // Builds every route's chain; no route or middleware may be added afterwards
  // (std::logic_error). Called by the server at start; idempotent.
  void freeze();
  [[nodiscard]] bool frozen() const { return frozen_; }

  // One place where the errors of a layer below become HTTP errors for every
  // route (the App adds one for task and store errors): translators run in
  // the order added, for an exception escaping any handler or middleware and
  // for one thrown by a deferred answer (Deferred::resume). Before freeze().
  void on_exception(ExceptionTranslator translate);
  // The first translator's answer; nullopt when none knows the exception.
  [[nodiscard]] std::optional<Error> translate(const std::exception_ptr& error) const noexcept;

  // A HEAD request falls back to the GET route. `path` is the percent-encoded
  // path without query; an invalid percent-escape gives Kind::bad_path.
  [[nodiscard]] RouteMatch match(std::string_view method, std::string_view path) const;

  // Chain for requests that match no route (404/405/400): global middleware,
  // then a handler answering with the JSON error set on the context.
  [[nodiscard]] const std::vector<Handler>& fallback_chain() const { return fallback_chain_; }
  [[nodiscard]] const std::vector<std::unique_ptr<Route>>& routes() const { return routes_; }

 private:
  friend class RouteGroup;
  struct Node;

  void insert(std::string method, std::string pattern, Handler handler, RouteOptions options,
              std::shared_ptr<State> group);

  std::unique_ptr<Node> root_;
  std::vector<std::unique_ptr<Route>> routes_;
  struct Pending {
    Route* route;
    Handler handler;
    std::shared_ptr<State> group;
  };
  std::vector<Pending> pending_;  // routes whose chain freeze() has yet to build
  std::vector<Handler> fallback_chain_;
  std::vector<ExceptionTranslator> translators_;
  bool frozen_ = false;
};

}  // namespace errand::http
