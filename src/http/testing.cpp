#include "errand/http/testing.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/json/parse.hpp>

#include "dispatch.hpp"
#include "exchange.hpp"

namespace errand::http::testing {

std::optional<std::string> Response::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (boost::beast::iequals(k, name)) return v;
  }
  return std::nullopt;
}

boost::json::value Response::json() const {
  return boost::json::parse(body);
}

Response perform(Router& router, const Request& request, const observe::Logger& logger) {
  router.freeze();
  auto ex = std::make_unique<detail::Exchange>();
  ex->request.method_string(request.method);
  ex->request.target(request.target);
  ex->request.version(11);
  for (const auto& [k, v] : request.headers) ex->request.insert(k, v);
  ex->request.body() = request.body;
  ex->request.prepare_payload();
  ex->remote = "127.0.0.1:0";
  ex->logger = logger;
  // Timers and deferred responses run here, on this thread, after the chain.
  // Shared with the exchange: a thread resuming a deferred response is still
  // inside post() when the answer may already have run here.
  auto ioc = std::make_shared<boost::asio::io_context>();
  ex->executor = ioc->get_executor();
  ex->owner = ioc;
  Response out;
  ex->on_commit = [&out](detail::Response r) {
    out.status = r.status;
    out.headers = std::move(r.headers);
    out.body = std::move(r.body);
  };
  auto ctx = std::make_shared<Context>(std::move(ex));
  const auto prepared = detail::prepare(router, *ctx);
  detail::run_and_commit(*ctx, *prepared.chain);
  ctx.reset();
  ioc->run();  // returns once no deferred response and no timer is pending
  return out;
}

}  // namespace errand::http::testing
