#include "errand/http/context.hpp"

#include <algorithm>
#include <stdexcept>

#include <boost/asio/prefer.hpp>

#include <boost/beast/core/string.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/url/params_encoded_view.hpp>
#include <boost/url/parse_query.hpp>

#include "errand/json/text.hpp"
#include "exchange.hpp"

namespace errand::http {

namespace {

bool iequals(std::string_view a, std::string_view b) {
  return boost::beast::iequals(a, b);
}

bool is_credential(std::string_view name) {
  return iequals(name, "authorization") || iequals(name, "proxy-authorization") ||
         iequals(name, "cookie");
}

}  // namespace

boost::json::value error_body(std::string_view code, std::string_view message) {
  return {{"error", {{"code", code}, {"message", message}}}};
}

Context::Context(std::unique_ptr<detail::Exchange> exchange) : ex_(std::move(exchange)) {}
Context::~Context() = default;

std::string_view Context::method() const {
  return ex_->request.method_string();
}
std::string_view Context::target() const {
  return ex_->request.target();
}
std::string_view Context::path() const {
  return ex_->path;
}
std::string_view Context::route() const {
  return ex_->route;
}
std::string_view Context::body() const {
  return ex_->request.body();
}
const std::string& Context::remote_address() const {
  return ex_->remote;
}

std::string_view Context::param(std::string_view name) const {
  for (const auto& [k, v] : params_) {
    if (k == name) return v;
  }
  return {};
}

std::optional<std::string> Context::query(std::string_view name) const {
  auto parsed = boost::urls::parse_query(ex_->query);
  if (!parsed) return std::nullopt;
  boost::urls::encoding_opts opts;
  opts.space_as_plus = true;
  for (const auto& p : *parsed) {
    // (params_view's encoding_opts constructor is not exported by Boost 1.81's library)
    if (p.key.decode(opts) == name) return p.has_value ? p.value.decode(opts) : std::string();
  }
  return std::nullopt;
}

std::optional<std::string_view> Context::header(std::string_view name) const {
  const auto it = ex_->request.find(name);
  if (it == ex_->request.end()) return std::nullopt;
  return it->value();
}

boost::json::value Context::body_json() const {
  if (body().empty()) throw Error(400, "invalid_json", "request body is empty");
  boost::system::error_code ec;
  auto value = boost::json::parse(body(), ec);
  if (ec) throw Error(400, "invalid_json", "request body is not valid JSON: " + ec.message());
  return value;
}

observe::Span Context::start_span(std::string_view name, observe::SpanKind kind) const {
  if (tracer_ == nullptr) return observe::Span(trace_.child());
  return tracer_->start_child(name, kind, trace_);
}

observe::Logger Context::log() const {
  boost::json::object fields;
  if (!request_id_.empty()) fields.emplace("request_id", request_id_);
  if (!trace_.trace_id.empty()) fields.emplace("trace_id", trace_.trace_id);
  return ex_->logger.with(std::move(fields));
}

std::optional<std::chrono::steady_clock::time_point> Context::deadline() const {
  return ex_->deadline;
}

std::stop_token Context::stop_token() const {
  return ex_->stop.get_token();
}

void Context::set_header(std::string name, std::string value) {
  for (auto& [k, v] : response_headers_) {
    if (iequals(k, name)) {
      v = std::move(value);
      return;
    }
  }
  response_headers_.emplace_back(std::move(name), std::move(value));
}

void Context::text(int code, std::string body, std::string content_type) {
  response_status_ = code;
  response_body_ = std::move(body);
  response_stream_.reset();
  set_header("Content-Type", std::move(content_type));
}

void Context::stream(int code, std::string content_type, StreamSource next,
                     std::chrono::milliseconds interval) {
  response_status_ = code;
  response_body_.clear();
  set_header("Content-Type", std::move(content_type));
  set_header("Cache-Control", "no-cache");
  response_stream_ = std::make_shared<StreamSource>(std::move(next));
  stream_interval_ = std::max(interval, std::chrono::milliseconds(1));
}

void Context::json(int code, const boost::json::value& body) {
  text(code, json::to_text(body), "application/json");
}

void Context::error(int code, std::string_view error_code, std::string_view message) {
  json(code, error_body(error_code, message));
}

void Context::next() {
  ++index_;
  while (!aborted_ && index_ >= 0 && static_cast<std::size_t>(index_) < chain_->size()) {
    (*chain_)[static_cast<std::size_t>(index_)](*this);
    ++index_;
  }
}

Deferred Context::defer() {
  if (deferred_) throw std::logic_error("Context::defer() called twice for one request");
  deferred_ = true;
  if (ex_->executor) {
    const errand::detail::MutexLock lock(ex_->mu);
    ex_->deferred_work.emplace(
        boost::asio::prefer(ex_->executor, boost::asio::execution::outstanding_work.tracked));
  }
  return Deferred(shared_from_this());
}

Deferred& Deferred::operator=(Deferred&& other) noexcept {
  if (this != &other) {
    Deferred dropped(std::move(*this));  // an unresumed handle answers 500 as it goes
    ctx_ = std::move(other.ctx_);
  }
  return *this;
}

Deferred::~Deferred() {
  if (!ctx_) return;
  try {
    resume([](Context& c) {
      c.log().error("a deferred response was dropped without an answer",
                    {{"method", c.method()}, {"path", c.path()}});
      c.error(500, "internal", "internal server error");
    });
  } catch (...) {  // NOLINT(bugprone-empty-catch): allocation failure; the deadline answers
  }
}

void Deferred::resume(std::function<void(Context&)> respond) {
  if (!ctx_) throw std::logic_error("Deferred::resume() on an empty or resumed handle");
  auto ctx = std::move(ctx_);
  auto& ex = detail::ContextAccess::exchange(*ctx);
  bool ready = false;
  {
    const errand::detail::MutexLock lock(ex.mu);
    ex.resume = std::move(respond);
    ex.resumed = true;
    ready = ex.chain_returned;
  }
  if (ready) detail::schedule_finish(std::move(ctx));  // else the chain's end schedules it
}

std::shared_ptr<const RequestSnapshot> Context::snapshot(const SnapshotOptions& options) const {
  Headers headers;
  for (const auto& field : ex_->request) {
    const auto name = field.name_string();
    const bool wanted = options.headers.empty()
                            ? !is_credential(name)
                            : std::any_of(options.headers.begin(), options.headers.end(),
                                          [&](const std::string& h) { return iequals(h, name); });
    if (wanted) headers.emplace_back(std::string(name), std::string(field.value()));
  }
  return std::make_shared<const RequestSnapshot>(std::string(method()), ex_->path, params_,
                                                 std::move(headers), request_id_, trace_, values_);
}

std::optional<std::string_view> RequestSnapshot::header(std::string_view name) const {
  for (const auto& [k, v] : headers_) {
    if (iequals(k, name)) return v;
  }
  return std::nullopt;
}

namespace detail {

Response error_response(int status, std::string_view code, std::string_view message) {
  Response r;
  r.status = status;
  r.headers.emplace_back("Content-Type", "application/json");
  r.body = boost::json::serialize(error_body(code, message));
  return r;
}

}  // namespace detail
}  // namespace errand::http
