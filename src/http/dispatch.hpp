#pragma once
// Internal: routing a request and running its chain, shared by the server and
// http::testing so that both behave the same.

#include <exception>
#include <vector>

#include "errand/http/context.hpp"
#include "errand/http/router.hpp"

namespace errand::http::detail {

struct Prepared {
  const std::vector<Handler>* chain = nullptr;
  bool blocking = false;
};

// Parses the target, matches the route and fills params; for no match it
// writes the 404/405/400 error on the context and returns the fallback chain.
Prepared prepare(const Router& router, Context& c);

// Runs the chain and commits the response. Never throws: an escaping exception
// becomes its error response (see respond_to_exception).
void run_and_commit(Context& c, const std::vector<Handler>& chain) noexcept;

// The router's translators first (Router::on_exception); then http::Error ->
// its status and code; anything else -> 500 "internal" plus one error log
// line with the request id. Used by recovery() and as the last resort.
void respond_to_exception(Context& c, std::exception_ptr error) noexcept;

}  // namespace errand::http::detail
