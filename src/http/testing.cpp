#include "errand/http/testing.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/json/parse.hpp>

#include "dispatch.hpp"
#include "exchange.hpp"
#include "wire.hpp"

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

namespace {

// Runs one parsed request through `router` as the server's dispatcher does,
// on this thread; deferred responses and timers run here after the chain.
detail::Response run(Router& router,
                     boost::beast::http::request<boost::beast::http::string_body> request,
                     const observe::Logger& logger) {
  auto ex = std::make_unique<detail::Exchange>();
  ex->request = std::move(request);
  ex->remote = "127.0.0.1:0";
  ex->logger = logger;
  // Timers and deferred responses run here, on this thread, after the chain.
  // Shared with the exchange: a thread resuming a deferred response is still
  // inside post() when the answer may already have run here.
  auto ioc = std::make_shared<boost::asio::io_context>();
  ex->executor = ioc->get_executor();
  ex->owner = ioc;
  detail::Response out;
  ex->on_commit = [&out](detail::Response r) { out = std::move(r); };
  auto ctx = std::make_shared<Context>(std::move(ex));
  const auto prepared = detail::prepare(router, *ctx);
  detail::run_and_commit(*ctx, *prepared.chain);
  ctx.reset();
  ioc->run();  // returns once no deferred response and no timer is pending
  return out;
}

// What the server writes for a request it refuses before dispatch.
std::string refusal(const detail::FramingError& e, const observe::Logger& logger) {
  auto r = detail::error_response(e.status, e.code, e.message);
  std::string head;
  detail::write_head(head, r, 11, false, false, logger);
  return head + r.body;
}

}  // namespace

Response perform(Router& router, const Request& request, const observe::Logger& logger) {
  router.freeze();
  boost::beast::http::request<boost::beast::http::string_body> req;
  req.method_string(request.method);
  req.target(request.target);
  req.version(11);
  for (const auto& [k, v] : request.headers) req.insert(k, v);
  req.body() = request.body;
  req.prepare_payload();
  auto r = run(router, std::move(req), logger);
  return {r.status, std::move(r.headers), std::move(r.body)};
}

std::string perform_wire(Router& router, std::string_view bytes, const ServerConfig& config,
                         const observe::Logger& logger) {
  namespace bhttp = boost::beast::http;
  using Kind = detail::HeaderVerdict::Kind;
  router.freeze();
  boost::beast::flat_buffer buffer;
  const auto n = boost::asio::buffer_copy(buffer.prepare(bytes.size()),
                                          boost::asio::buffer(bytes.data(), bytes.size()));
  buffer.commit(n);
  const auto buffered = [&buffer] {
    return std::string_view(static_cast<const char*>(buffer.data().data()), buffer.size());
  };
  std::string out;
  bool keep_alive = true;
  while (buffer.size() > 0) {
    detail::RequestParser parser;
    parser.header_limit(static_cast<std::uint32_t>(config.max_header_bytes));
    parser.body_limit(config.max_body_bytes);
    detail::FoldScan scan;
    if (detail::find_obs_fold(buffered(), scan)) {
      out += refusal({400, "bad_request",
                      "obsolete line folding is not accepted in a request "
                      "header"},
                     logger);
      break;
    }
    boost::beast::error_code ec;
    const auto used = parser.put(buffer.data(), ec);
    buffer.consume(used);
    if (ec == bhttp::error::need_more) parser.put_eof(ec);  // the input ends: the client closed
    if (ec == bhttp::error::need_more || ec == bhttp::error::partial_message) {
      ec = bhttp::error::end_of_stream;  // what the connection's read gets: nobody to answer
    }
    auto verdict = detail::judge_header(ec, used, parser, buffered(), config.max_header_bytes,
                                        config.max_body_bytes);
    if (verdict.kind == Kind::expect_continue) {
      out += parser.get().version() == 10 ? "HTTP/1.0 100 Continue\r\n\r\n"
                                          : "HTTP/1.1 100 Continue\r\n\r\n";
      verdict.kind = Kind::read_body;
    }
    if (verdict.kind == Kind::read_body) {
      parser.eager(true);
      ec = {};
      while (!parser.is_done() && !ec) {
        const auto body_used = parser.put(buffer.data(), ec);
        buffer.consume(body_used);
        if (ec == bhttp::error::need_more || (!ec && body_used == 0)) {
          ec = {};
          parser.put_eof(ec);  // the input ends
          if (!ec && !parser.is_done()) ec = bhttp::error::partial_message;
        }
      }
      verdict = detail::judge_body(ec, config.max_body_bytes);
    }
    if (verdict.kind == Kind::close) break;
    if (verdict.kind == Kind::fail) {
      out += refusal(verdict.error, logger);
      break;
    }
    auto request = parser.release();
    const auto version = request.version();
    const bool head = request.method() == bhttp::verb::head;
    keep_alive = keep_alive && request.keep_alive();
    auto r = run(router, std::move(request), logger);
    // A streamed body ends the connection after it: here, its status line
    // and headers without the stream's framing, then nothing more.
    const bool streamed = r.stream != nullptr;
    r.stream.reset();
    if (streamed) keep_alive = false;
    std::string response_head;
    detail::write_head(response_head, r, version, keep_alive, head, logger);
    out += response_head;
    out += r.body;
    if (!keep_alive) break;
  }
  return out;
}

}  // namespace errand::http::testing
