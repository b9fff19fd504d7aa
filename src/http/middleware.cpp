#include "errand/http/middleware.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <memory>

#include <fmt/format.h>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "dispatch.hpp"
#include "errand/guard/keyed_buckets.hpp"
#include "exchange.hpp"

namespace errand::http::mw {

namespace {

bool valid_request_id(std::string_view id, std::size_t max_length) {
  if (id.empty() || id.size() > max_length) return false;
  return std::all_of(id.begin(), id.end(), [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '_' || ch == '.' || ch == ':';
  });
}

}  // namespace

Handler recovery() {
  return [](Context& c) {
    try {
      c.next();
    } catch (...) {
      detail::respond_to_exception(c, std::current_exception());
      c.abort();
    }
  };
}

Handler request_id(RequestIdOptions options) {
  return [options = std::move(options)](Context& c) {
    auto incoming = c.header(options.header);
    std::string id = incoming && valid_request_id(*incoming, options.max_length)
                         ? std::string(*incoming)
                         : observe::random_hex(16);
    c.set_header(options.header, id);
    c.set_request_id(std::move(id));
    c.next();
  };
}

namespace {

// `method` if it is a standard one, else `other` (spans say "_OTHER", as the
// HTTP semantic conventions ask; metrics say "OTHER"): a bounded label set.
std::string_view known_method(std::string_view method, std::string_view other = "_OTHER") {
  static constexpr std::array<std::string_view, 9> kMethods = {
      "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"};
  return std::find(kMethods.begin(), kMethods.end(), method) != kMethods.end() ? method : other;
}

// What the HTTP semantic conventions ask of a server span, once the response is known.
void end_server_span(observe::Span& span, Context& done) {
  const int status = done.response_status();
  const std::string_view method = known_method(done.method());
  if (!done.route().empty()) {
    span.rename(fmt::format("{} {}", method, done.route()));
    span.set("http.route", done.route());
  }
  span.set("http.response.status_code", status);
  if (status >= 500) span.set_error(fmt::format("HTTP {}", status));
  span.end();
}

}  // namespace

Handler trace(observe::Tracer tracer) {
  // The handler chain outlives every request it serves: contexts point here.
  auto shared = std::make_shared<const observe::Tracer>(std::move(tracer));
  return [shared](Context& c) {
    auto incoming = c.header("traceparent");
    std::optional<observe::TraceContext> parent;
    if (incoming) parent = observe::TraceContext::parse(*incoming);
    // tracestate only with a valid traceparent (W3C: it belongs to that trace).
    if (parent) {
      const auto state = c.header("tracestate");
      if (state) parent->tracestate = observe::TraceContext::parse_tracestate(*state).value_or("");
    }
    auto ours = shared->new_context(parent ? &*parent : nullptr);
    c.set_header("traceparent", ours.to_traceparent());
    if (!shared->enabled()) {
      c.set_trace(std::move(ours));
      c.next();
      return;
    }
    c.set_tracer(shared.get());
    const std::string_view method = known_method(c.method());
    auto span = std::make_shared<observe::Span>(shared->start(
        method, observe::SpanKind::server, ours, parent ? std::string_view(parent->span_id) : ""));
    c.set_trace(std::move(ours));
    if (!span->recording()) {
      c.next();
      return;
    }
    span->set("http.request.method", method);
    if (method != c.method()) span->set("http.request.method_original", c.method());
    span->set("url.path", c.path());
    span->set("url.scheme", "http");
    const std::string& remote = c.remote_address();  // "ip:port", "[v6]:port"
    if (const auto colon = remote.rfind(':'); colon != std::string::npos) {
      std::string_view ip(remote.data(), colon);
      if (ip.size() >= 2 && ip.front() == '[' && ip.back() == ']') ip = ip.substr(1, ip.size() - 2);
      span->set("client.address", ip);
      int port = 0;
      std::from_chars(remote.data() + colon + 1, remote.data() + remote.size(), port);
      span->set("client.port", port);
    }
    if (auto agent = c.header("user-agent")) span->set("user_agent.original", *agent);
    auto end = [span](Context& done) { end_server_span(*span, done); };
    const detail::AfterScope done(c, end);  // ended even if the chain throws
    c.next();
  };
}

Handler access_log(observe::Logger logger) {
  return [logger = std::move(logger)](Context& c) {
    const auto start = std::chrono::steady_clock::now();
    c.next();
    if (!logger.enabled(observe::Level::info)) return;
    c.after([&logger, start](Context& done) {
      const auto elapsed =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start);
      boost::json::object line{{"method", done.method()},
                               {"path", done.path()},
                               {"route", done.route()},
                               {"status", done.response_status()},
                               {"bytes", done.response_body().size()},
                               {"duration_ms", elapsed.count()},
                               {"remote", done.remote_address()}};
      if (!done.request_id().empty()) line.emplace("request_id", done.request_id());
      if (!done.trace().trace_id.empty()) line.emplace("trace_id", done.trace().trace_id);
      logger.info("request", std::move(line));
    });
  };
}

Handler metrics(observe::Registry& registry) {
  auto& total = registry.counter("http_requests_total", "HTTP requests answered",
                                 {"method", "route", "status"});
  auto& duration = registry.histogram("http_request_duration_seconds",
                                      "Time from dispatch to the end of the handler chain (for a "
                                      "deferred response, to its answer)",
                                      {"method", "route"});
  auto& in_flight =
      registry.gauge("http_requests_in_flight", "Requests whose handler chain is running").get();
  struct Series {
    observe::Family<observe::Counter>* total;
    observe::Family<observe::Histogram>* duration;
    observe::Gauge* in_flight;
  };
  auto series = std::make_shared<const Series>(Series{&total, &duration, &in_flight});
  return [series](Context& c) {
    series->in_flight->add(1);
    const auto start = std::chrono::steady_clock::now();
    // Two words, so that a deferred response's copy of it fits in the
    // std::function without an allocation.
    auto record = [s = series.get(), start](Context& done) {
      const std::string_view method = known_method(done.method(), "OTHER");
      const std::string_view route = done.route().empty() ? "unmatched" : done.route();
      // Without std::to_string's allocation: this runs on every request.
      std::array<char, 12> status{};
      const auto end =
          std::to_chars(status.data(), status.data() + status.size(), done.response_status()).ptr;
      s->total->with({method, route, std::string_view(status.data(), end)}).inc();
      // A recorded trace is the observation's exemplar (OpenMetrics).
      s->duration->with({method, route})
          .observe(
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
              done.trace_recorded() ? std::string_view(done.trace().trace_id) : std::string_view());
      s->in_flight->add(-1);
    };
    const detail::AfterScope done(c, record);  // counted even if the chain throws
    c.next();
  };
}

Handler rate_limit(RateLimitOptions options) {
  auto buckets =
      std::make_shared<guard::KeyedBuckets>(options.per_second, options.burst, options.max_keys);
  observe::Family<observe::Counter>* rejected = nullptr;
  if (options.metrics != nullptr) {
    rejected = &options.metrics->counter("ratelimit_rejected_total",
                                         "Requests answered 429 by the rate limiter", {"route"});
  }
  auto clock = options.clock;
  if (!clock) {
    clock = [] {
      return std::chrono::time_point_cast<std::chrono::milliseconds>(
          std::chrono::system_clock::now());
    };
  }
  return [buckets, rejected, clock, opts = std::move(options)](Context& c) {
    std::string key;
    switch (opts.key) {
      case RateLimitOptions::Key::global: break;
      case RateLimitOptions::Key::header:
        if (auto h = c.header(opts.header)) {
          key = "h:" + std::string(*h);
          break;
        }
        [[fallthrough]];
      case RateLimitOptions::Key::client_ip: {
        // "1.2.3.4:5678" / "[::1]:5678": the address without the port.
        const auto& remote = c.remote_address();
        key = "ip:" + remote.substr(0, remote.rfind(':'));
        break;
      }
    }
    const auto t = buckets->take(key, clock());
    const auto reset_s =
        static_cast<long>(std::ceil(std::max(0.0, opts.burst - t.remaining) / opts.per_second));
    c.set_header("RateLimit-Limit", fmt::format("{}", static_cast<long>(opts.burst)));
    c.set_header("RateLimit-Remaining", fmt::format("{}", static_cast<long>(t.remaining)));
    c.set_header("RateLimit-Reset", fmt::format("{}", reset_s));
    if (t.allowed) {
      c.next();
      return;
    }
    const auto retry_s = std::max<long>(
        1, static_cast<long>(std::ceil(std::chrono::duration<double>(t.wait).count())));
    c.set_header("Retry-After", fmt::format("{}", retry_s));
    if (rejected != nullptr) rejected->with({c.route().empty() ? "unmatched" : c.route()}).inc();
    c.abort_with_error(
        429, "rate_limited",
        fmt::format("rate limit of {}/s exceeded; retry in {} s", opts.per_second, retry_s));
  };
}

namespace {

using TimerPtr = std::shared_ptr<boost::asio::steady_timer>;

// On the request's I/O thread: at `at`, stop the handler and answer the timeout
// response unless the chain or its deferred response finished first.
TimerPtr arm_deadline(Context& c, std::chrono::steady_clock::time_point at,
                      const std::shared_ptr<const TimeoutOptions>& opts) {
  auto timer =
      std::make_shared<boost::asio::steady_timer>(detail::ContextAccess::exchange(c).executor, at);
  timer->async_wait([weak = c.weak_from_this(), opts](boost::system::error_code ec) {
    if (ec) return;
    if (auto ctx = weak.lock()) {
      detail::ContextAccess::exchange(*ctx).expire(
          detail::error_response(opts->status, opts->code, opts->message));
    }
  });
  return timer;
}

// Decides "finished in time" once, under the commit lock, and stops the timer.
void disarm(detail::Exchange& ex, const TimerPtr& timer) {
  ex.disarm_deadline();
  // A timer may only be touched on its executor; the posted lambda also
  // keeps it alive until the cancellation has run.
  if (timer) boost::asio::post(ex.executor, [timer] { timer->cancel(); });
}

// The chain (or its deferred response) is done: disarm, and replace a late
// answer by the timeout's.
void finish_deadline(Context& c, const TimerPtr& timer, std::chrono::steady_clock::time_point at,
                     const TimeoutOptions& opts) {
  disarm(detail::ContextAccess::exchange(c), timer);
  if (c.stop_requested() || std::chrono::steady_clock::now() >= at) {
    // The timer answered already, or the handler came back late: either way
    // this request timed out, and the access log should say so.
    c.error(opts.status, opts.code, opts.message);
  }
}

}  // namespace

Handler timeout(TimeoutOptions options) {
  auto opts = std::make_shared<const TimeoutOptions>(std::move(options));
  return [opts](Context& c) {
    auto& ex = detail::ContextAccess::exchange(c);
    const auto deadline = std::chrono::steady_clock::now() + opts->after;
    if (ex.deadline && *ex.deadline <= deadline) {
      c.next();  // an outer, earlier deadline already governs
      return;
    }
    ex.deadline = deadline;
    // Only a chain on the blocking pool can be answered while it runs: a
    // non-blocking chain holds the connection's I/O thread, so its timer could
    // not fire before the chain returns. There the check after next() suffices.
    TimerPtr timer;
    if (ex.executor && ex.blocking) timer = arm_deadline(c, deadline, opts);
    try {
      c.next();
    } catch (...) {
      disarm(ex, timer);
      throw;
    }
    // A deferred response leaves the I/O thread free: a timer can answer at the
    // deadline whatever the route.
    if (c.deferred() && !timer && ex.executor) timer = arm_deadline(c, deadline, opts);
    c.after(
        [timer, deadline, opts](Context& done) { finish_deadline(done, timer, deadline, *opts); });
  };
}

}  // namespace errand::http::mw
