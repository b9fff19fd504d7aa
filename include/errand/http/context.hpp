#pragma once
// Context: one HTTP request and its response, as handlers and middleware see it.
//
// Threading: a Context is used by one thread at a time, the one running its
// handler chain (an I/O thread, or a blocking-pool thread for blocking routes)
// and, for a deferred response, then the connection's I/O thread (deferred.hpp).
// Do not keep a reference to it past the handler: hand background work a
// snapshot() instead. The only cross-thread operation is the response commit,
// which is serialised internally (a timeout may answer 408 while a blocking
// handler is still running; the first commit wins, later ones are dropped).
//
// Errors: bind<T>() and handlers throw http::Error for client errors; see error.hpp.

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/value.hpp>
#include <boost/json/value_from.hpp>

#include "errand/http/bind.hpp"
#include "errand/http/deferred.hpp"
#include "errand/http/error.hpp"
#include "errand/http/snapshot.hpp"
#include "errand/http/values.hpp"
#include "errand/observe/logger.hpp"
#include "errand/observe/trace_context.hpp"
#include "errand/observe/tracer.hpp"

namespace errand::http {

class Context;
using Handler = std::function<void(Context&)>;

namespace detail {
struct Exchange;
struct ContextAccess;
}  // namespace detail

struct SnapshotOptions {
  // Headers to copy (case-insensitive). Empty: every header except credentials
  // (Authorization, Proxy-Authorization, Cookie), which background work should
  // never carry by accident.
  std::vector<std::string> headers;
};

class Context : public std::enable_shared_from_this<Context> {
 public:
  explicit Context(std::unique_ptr<detail::Exchange> exchange);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  // --- request ---
  [[nodiscard]] std::string_view method() const;
  [[nodiscard]] std::string_view target() const;  // as received: path and query
  [[nodiscard]] std::string_view path() const;    // percent-encoded path, no query
  [[nodiscard]] std::string_view route() const;   // matched pattern, "" when none
  // Route parameter (":id", "*rest"), percent-decoded; "" when absent.
  [[nodiscard]] std::string_view param(std::string_view name) const;
  [[nodiscard]] const Params& params() const { return params_; }
  // First value of a query parameter, percent-decoded ('+' is a space).
  [[nodiscard]] std::optional<std::string> query(std::string_view name) const;
  // Case-insensitive header lookup.
  [[nodiscard]] std::optional<std::string_view> header(std::string_view name) const;
  [[nodiscard]] std::string_view body() const;
  [[nodiscard]] const std::string& remote_address() const;

  // Parses the body as JSON and binds it to a described struct (see bind.hpp).
  // Like Gin's BindJSON, the Content-Type is not checked (`curl -d` sends
  // form-urlencoded). Throws http::Error: 400 invalid_json / invalid_field.
  // Fields T does not have are ignored, unless `unknown` is Unknown::reject
  // (strict: each is a 400 invalid_field naming it).
  template <class T>
  [[nodiscard]] T bind(json::Unknown unknown = json::Unknown::ignore) const {
    return detail::bind_value<T>(body_json(), unknown);
  }
  // The same without throwing, for handlers that answer bad input their own
  // way: `auto in = c.try_bind<Signup>(); if (!in) { c.json(422, {{"why",
  // in.error->what()}}); return; } use(*in);`
  template <class T>
  [[nodiscard]] Bound<T> try_bind(json::Unknown unknown = json::Unknown::ignore) const {
    try {
      return {bind<T>(unknown), std::nullopt};
    } catch (const Error& e) {
      return {std::nullopt, e};
    }
  }
  [[nodiscard]] boost::json::value body_json() const;

  // --- typed per-request values ---
  template <class T>
  void set(const Key<T>& key, T value) {
    values_.set(key, std::move(value));
  }
  template <class T>
  [[nodiscard]] const T* get(const Key<T>& key) const {
    return values_.get(key);
  }

  // --- identity and tracing (filled by the request_id / trace middleware) ---
  [[nodiscard]] const std::string& request_id() const { return request_id_; }
  void set_request_id(std::string id) { request_id_ = std::move(id); }
  [[nodiscard]] const observe::TraceContext& trace() const { return trace_; }
  void set_trace(observe::TraceContext trace) { trace_ = std::move(trace); }
  // A span of this request's trace, child of its server span: for the
  // handler's own steps. Not recording unless tracing is on and the trace
  // is sampled (see observe::Tracer).
  [[nodiscard]] observe::Span start_span(
      std::string_view name, observe::SpanKind kind = observe::SpanKind::internal) const;
  // The tracer the trace middleware uses (it must outlive the request).
  void set_tracer(const observe::Tracer* tracer) { tracer_ = tracer; }
  // This request's trace is being recorded (tracing on, sampled).
  [[nodiscard]] bool trace_recorded() const {
    return tracer_ != nullptr && tracer_->enabled() && trace_.sampled();
  }
  // The server's logger with this request's request_id and trace_id bound.
  [[nodiscard]] observe::Logger log() const;

  // --- deadline and cancellation (the timeout middleware sets them) ---
  [[nodiscard]] std::optional<std::chrono::steady_clock::time_point> deadline() const;
  [[nodiscard]] std::stop_token stop_token() const;
  [[nodiscard]] bool stop_requested() const { return stop_token().stop_requested(); }

  // --- response (buffered; sent when the chain returns) ---
  void status(int code) { response_status_ = code; }
  void set_header(std::string name, std::string value);
  void text(int code, std::string body, std::string content_type = "text/plain; charset=utf-8");
  void json(int code, const boost::json::value& body);
  template <class T>
  requires(!std::is_convertible_v<const T&, boost::json::value>) void json(int code,
                                                                           const T& body) {
    json(code, boost::json::value_from(body));
  }
  // Writes {"error":{"code":..,"message":..}}.
  void error(int code, std::string_view error_code, std::string_view message);

  // A streamed response (server-sent events and the like): after the headers,
  // the server calls `next` every `interval` on the blocking pool. It must
  // return promptly: the next piece of the body, "" for nothing yet, or
  // nullopt to end the response. The stream also ends when the client goes
  // away (the token passed to `next` is requested) or the server drains. The
  // connection closes at the end. Replaces any buffered body.
  using StreamSource = std::function<std::optional<std::string>(const std::stop_token&)>;
  void stream(int code, std::string content_type, StreamSource next,
              std::chrono::milliseconds interval = std::chrono::milliseconds(250));
  [[nodiscard]] int response_status() const { return response_status_; }
  [[nodiscard]] const std::string& response_body() const { return response_body_; }
  [[nodiscard]] const Headers& response_headers() const { return response_headers_; }

  // --- chain control (Gin semantics) ---
  // Runs the rest of the chain now; returns when it has finished.
  void next();
  // Stops the chain after the current handler; handlers already running finish.
  void abort() { aborted_ = true; }
  void abort_with_error(int code, std::string_view error_code, std::string_view message) {
    error(code, error_code, message);
    abort();
  }
  [[nodiscard]] bool aborted() const { return aborted_; }

  // --- answering later (see deferred.hpp) ---
  // The chain returns without answering; the response is given when the
  // returned handle is resumed. At most once per request (std::logic_error).
  [[nodiscard]] Deferred defer();
  [[nodiscard]] bool deferred() const { return deferred_; }
  // For middleware code that must see the final response (logs, metrics,
  // slots held until the answer): runs `fn` at once, or, when the chain has
  // deferred its response, once that response is given, just before it is
  // sent. Deferred hooks run in the order they were added (innermost
  // middleware first, as its code after next() would). Must not throw.
  template <class Fn>
  void after(Fn&& fn) {
    if (deferred_) {
      if (after_.empty()) after_.reserve(4);  // the standard chain's hooks, in one allocation
      after_.emplace_back(std::forward<Fn>(fn));
    } else {
      fn(*this);
    }
  }

  // An immutable copy for background work; see snapshot.hpp.
  [[nodiscard]] std::shared_ptr<const RequestSnapshot> snapshot(
      const SnapshotOptions& options = {}) const;

 private:
  friend struct detail::ContextAccess;

  std::unique_ptr<detail::Exchange> ex_;
  const std::vector<Handler>* chain_ = nullptr;
  std::ptrdiff_t index_ = -1;
  bool aborted_ = false;
  bool deferred_ = false;
  std::vector<std::function<void(Context&)>> after_;  // hooks of a deferred response
  Params params_;
  Values values_;
  std::string request_id_;
  observe::TraceContext trace_;
  const observe::Tracer* tracer_ = nullptr;
  int response_status_ = 200;
  Headers response_headers_;
  std::string response_body_;
  std::shared_ptr<StreamSource> response_stream_;
  std::chrono::milliseconds stream_interval_{250};
};

}  // namespace errand::http
