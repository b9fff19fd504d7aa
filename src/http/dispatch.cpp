#include "dispatch.hpp"

#include <fmt/format.h>
#include <boost/asio/post.hpp>
#include <boost/url/parse.hpp>

#include "exchange.hpp"

namespace errand::http::detail {

namespace {

// Splits the request target into its encoded path and query. Accepts
// origin-form ("/a?b") and absolute-form ("http://h/a?b", RFC 9112 3.2.2).
bool split_target(std::string_view target, std::string& path, std::string& query) {
  if (!target.empty() && target.front() == '/') {
    auto u = boost::urls::parse_origin_form(target);
    if (!u) return false;
    path = u->encoded_path();
    query = u->encoded_query();
    return true;
  }
  auto u = boost::urls::parse_absolute_uri(target);
  if (!u) return false;
  path = u->encoded_path();
  if (path.empty()) path = "/";
  query = u->encoded_query();
  return true;
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) {
    if (!out.empty()) out += ", ";
    out += s;
  }
  return out;
}

}  // namespace

Prepared prepare(const Router& router, Context& c) {
  auto& ex = ContextAccess::exchange(c);
  ex.router = &router;
  if (!split_target(ex.request.target(), ex.path, ex.query)) {
    c.error(400, "bad_request", "malformed request target");
    return {&router.fallback_chain(), false};
  }
  auto m = router.match(c.method(), ex.path);
  switch (m.kind) {
    case RouteMatch::Kind::found:
      ex.route = m.route->pattern;
      ex.blocking = m.route->options.blocking;
      ContextAccess::set_params(c, std::move(m.params));
      return {&m.route->chain, m.route->options.blocking};
    case RouteMatch::Kind::method_not_allowed:
      c.set_header("Allow", join(m.allowed));
      c.error(
          405, "method_not_allowed",
          fmt::format("method {} is not allowed here; allowed: {}", c.method(), join(m.allowed)));
      break;
    case RouteMatch::Kind::bad_path:
      c.error(400, "bad_request", "malformed percent-encoding in path");
      break;
    case RouteMatch::Kind::not_found:
      c.error(404, "not_found", fmt::format("no route for {} {}", c.method(), ex.path));
      break;
  }
  return {&router.fallback_chain(), false};
}

namespace {

// Runs the after() hooks a deferred response collected, innermost first.
void run_after_hooks(Context& c) noexcept {
  auto hooks = ContextAccess::take_after(c);
  for (auto& hook : hooks) {
    try {
      hook(c);
    } catch (const std::exception& e) {
      c.log().error("an after() hook threw", {{"error", e.what()}});
    } catch (...) {
      c.log().error("an after() hook threw a non-standard exception");
    }
  }
}

}  // namespace

void respond_to_exception(Context& c, std::exception_ptr error) noexcept {
  // The chain threw after defer() and this is still the chain: the hooks the
  // inner middleware queued while the throw went through them run once the
  // answer is written here, before any outer middleware's (which run at once
  // from now on), so the order stays innermost first.
  bool run_queued_hooks = false;
  if (ContextAccess::deferred(c)) {
    // The chain threw after defer(): this error is the answer, sent when the
    // chain returns; the handle's resume() will be ignored.
    auto& ex = ContextAccess::exchange(c);
    bool in_chain = false;
    {
      const errand::detail::MutexLock lock(ex.mu);
      in_chain = !ex.finished;
      ex.finished = true;
    }
    if (in_chain) {
      ContextAccess::undefer(c);
      ex.release_deferred_work();
      run_queued_hooks = true;
    }
  }
  try {
    // A layer's own errors (the App's: task and store errors) become the
    // HTTP errors its translator says, for every route alike.
    if (const auto* router = ContextAccess::exchange(c).router; router != nullptr) {
      if (auto translated = router->translate(error)) {
        error = std::make_exception_ptr(std::move(*translated));
      }
    }
    try {
      std::rethrow_exception(std::move(error));
    } catch (const Error& e) {
      if (auto after = e.retry_after()) c.set_header("Retry-After", std::to_string(after->count()));
      c.error(e.status(), e.code(), e.what());
    } catch (const std::exception& e) {
      c.log().error("handler threw",
                    {{"method", c.method()}, {"path", c.path()}, {"error", e.what()}});
      c.error(500, "internal", "internal server error");
    } catch (...) {
      c.log().error("handler threw a non-standard exception",
                    {{"method", c.method()}, {"path", c.path()}});
      c.error(500, "internal", "internal server error");
    }
  } catch (...) {
    // Allocation failure while reporting: answer with what we have.
    c.status(500);
  }
  if (run_queued_hooks) run_after_hooks(c);
}

namespace {

// Runs the hooks a deferred response collected, then sends it.
void finish_and_commit(Context& c) noexcept {
  run_after_hooks(c);
  ContextAccess::exchange(c).commit(ContextAccess::take_response(c));
}

void finish_deferred(Context& c) noexcept {
  auto& ex = ContextAccess::exchange(c);
  std::function<void(Context&)> respond;
  {
    const errand::detail::MutexLock lock(ex.mu);
    if (ex.finished) return;  // answered already, by whoever set `finished`
    ex.finished = true;
    respond = std::move(ex.resume);
  }
  try {
    if (respond) respond(c);
  } catch (...) {
    respond_to_exception(c, std::current_exception());
  }
  finish_and_commit(c);
  ex.release_deferred_work();
}

}  // namespace

void schedule_finish(std::shared_ptr<Context> ctx) {
  auto& ex = ContextAccess::exchange(*ctx);
  {
    // Under the lock: abandon() may take the executor away (the server that
    // owns it is stopping), and then nothing may be posted to it.
    const errand::detail::MutexLock lock(ex.mu);
    if (ex.finished) return;  // answered, or abandoned
    if (ex.executor) {
      // Held until post() has returned: the handler may run and release
      // `ctx` on another thread before post() is done.
      const auto keep = ctx;
      boost::asio::post(ex.executor, [ctx = std::move(ctx)] { finish_deferred(*ctx); });
      return;
    }
  }
  finish_deferred(*ctx);
}

Abandoned abandon(Context& c) noexcept {
  auto& ex = ContextAccess::exchange(c);
  std::shared_ptr<void> owner;
  std::function<void(Response)> deliver;
  std::optional<boost::asio::any_io_executor> work;
  boost::asio::any_io_executor executor;
  {
    const errand::detail::MutexLock lock(ex.mu);
    if (ex.finished) return Abandoned::done;
    // Still running, even if a deadline answered for it already.
    if (!ex.chain_done.load(std::memory_order_acquire)) return Abandoned::running;
    if (!ContextAccess::deferred(c)) return Abandoned::done;  // its chain answered
    // A deferred response never resumed, whether or not its deadline has
    // answered the client meanwhile.
    ex.finished = true;
    ex.committed = true;
    owner = std::move(ex.owner);
    deliver = std::move(ex.on_commit);
    work = std::move(ex.deferred_work);
    executor = std::move(ex.executor);
    ex.deferred_work.reset();
    ex.executor = {};
  }
  // `finished` is ours, so nothing else touches the hooks now; they may hold
  // timers of the connection's executor, which must go before it does.
  auto hooks = ContextAccess::take_after(c);
  hooks.clear();
  ContextAccess::take_response(c);
  return Abandoned::dropped;
}

void run_and_commit(Context& c, const std::vector<Handler>& chain) noexcept {
  ContextAccess::set_chain(c, chain);
  try {
    c.next();
  } catch (...) {
    respond_to_exception(c, std::current_exception());
  }
  ContextAccess::exchange(c).chain_done.store(true, std::memory_order_release);
  if (ContextAccess::deferred(c)) {
    auto& ex = ContextAccess::exchange(c);
    bool resumed = false;
    {
      const errand::detail::MutexLock lock(ex.mu);
      ex.chain_returned = true;
      resumed = ex.resumed;
    }
    if (resumed) schedule_finish(c.shared_from_this());
    return;  // the Deferred finishes the response
  }
  finish_and_commit(c);  // hooks are there only when a deferral was called off
}

}  // namespace errand::http::detail
