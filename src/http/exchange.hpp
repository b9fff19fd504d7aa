#pragma once
// Internal: the state one request shares between its connection, its handler
// chain and a timeout timer. The request fields are written once, before the
// chain runs; the commit fields are guarded by `mu`.

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "errand/http/context.hpp"
#include "errand/observe/logger.hpp"

#include "errand/detail/thread_annotations.hpp"

namespace errand::http {
class Router;
}  // namespace errand::http

namespace errand::http::detail {

struct Response {
  int status = 200;
  Headers headers;
  std::string body;
  std::shared_ptr<Context::StreamSource> stream;  // set: a streamed body (Context::stream)
  std::chrono::milliseconds stream_interval{250};
};

struct Exchange {
  // The connection, kept alive (and counted by the server's shutdown) as
  // long as this exchange: a deferred response may outlive its answer.
  // First, so released last: everything below may use its executor.
  std::shared_ptr<void> owner;

  boost::beast::http::request<boost::beast::http::string_body> request;
  std::string path;                // percent-encoded, no query
  std::string query;               // percent-encoded, without '?'
  std::string route;               // matched pattern
  const Router* router = nullptr;  // its exception translators; outlives the exchange
  bool blocking = false;           // the chain runs on the blocking pool
  std::string remote;
  observe::Logger logger = observe::Logger::null();
  // Executor for timers that belong to this request (the connection's I/O thread's).
  boost::asio::any_io_executor executor;
  std::stop_source stop;
  std::optional<std::chrono::steady_clock::time_point> deadline;
  // When the request's first bytes were read: what it waited for before its
  // chain ran (the I/O thread, the blocking pool's queue) counts from here.
  std::chrono::steady_clock::time_point arrived = std::chrono::steady_clock::now();

  // Delivers the response to whoever sends it; called at most once, never under `mu`.
  std::function<void(Response)> on_commit;

  // Returns false if a response was committed before (the first commit wins).
  bool commit(Response response) {
    std::function<void(Response)> deliver;
    {
      const errand::detail::MutexLock lock(mu);
      if (committed) return false;
      committed = true;
      deliver = std::move(on_commit);
    }
    if (deliver) deliver(std::move(response));
    return true;
  }

  // For the timeout middleware: the chain finished before the deadline timer.
  void disarm_deadline() {
    const errand::detail::MutexLock lock(mu);
    deadline_disarmed = true;
  }
  // For the deadline timer: stop the handler and answer now unless the chain
  // already finished. Returns true when it committed `response`.
  bool expire(Response response) {
    {
      const errand::detail::MutexLock lock(mu);
      if (deadline_disarmed || committed) return false;
      stop.request_stop();
    }
    return commit(std::move(response));
  }

  // Lets a deferred request's io_context stop waiting for it (testing's own).
  // Only once it is finished: until then timers and posts may still use it.
  void release_deferred_work() {
    const errand::detail::MutexLock lock(mu);
    deferred_work.reset();
  }

  errand::detail::Mutex mu;
  bool committed ERRAND_GUARDED_BY(mu) = false;
  bool deadline_disarmed ERRAND_GUARDED_BY(mu) = false;

  // A deferred response (Context::defer). The end of the chain and the
  // handle's resume() may come in either order, on different threads; the
  // second of the two schedules the finish on `executor`. Guarded by `mu`.
  bool chain_returned ERRAND_GUARDED_BY(mu) = false;
  // The handler chain has returned, deferred or not (release: what the chain
  // wrote is visible to whoever sees it set; abandon() reads it).
  std::atomic<bool> chain_done{false};
  bool finished ERRAND_GUARDED_BY(mu) = false;                 // the response was finished
  std::function<void(Context&)> resume ERRAND_GUARDED_BY(mu);  // from Deferred::resume
  bool resumed ERRAND_GUARDED_BY(mu) = false;  // resume() came (even with an empty function)
  // Keeps `executor`'s io_context running until the deferred response is
  // finished (http::testing runs its own until then).
  std::optional<boost::asio::any_io_executor> deferred_work;
};

struct ContextAccess {
  static Exchange& exchange(Context& c) { return *c.ex_; }
  static const Exchange& exchange(const Context& c) { return *c.ex_; }
  static void set_params(Context& c, Params params) { c.params_ = std::move(params); }
  static void set_chain(Context& c, const std::vector<Handler>& chain) {
    c.chain_ = &chain;
    c.index_ = -1;
  }
  static bool deferred(const Context& c) { return c.deferred_; }
  // The chain threw after defer(): the response is given now, the handle's
  // resume() is ignored, and after() hooks run at once from here on.
  static void undefer(Context& c) { c.deferred_ = false; }
  static std::vector<std::function<void(Context&)>> take_after(Context& c) {
    return std::move(c.after_);
  }
  static Response take_response(Context& c) {
    Response r;
    r.status = c.response_status_;
    r.headers = std::move(c.response_headers_);
    r.body = std::move(c.response_body_);
    r.stream = std::move(c.response_stream_);
    r.stream_interval = c.stream_interval_;
    return r;
  }
};

// Hands `fn` to Context::after when the scope ends — also when the chain
// throws — for middleware whose bookkeeping must see the final answer.
template <class Fn>
class AfterScope {
 public:
  AfterScope(Context& c, Fn& fn) : c_(c), fn_(fn) {}
  AfterScope(const AfterScope&) = delete;
  AfterScope& operator=(const AfterScope&) = delete;
  ~AfterScope() { c_.after(fn_); }

 private:
  Context& c_;
  Fn& fn_;
};

// Schedules the finish of a deferred response on the request's executor
// (inline when it has none): runs the resume function, the after() hooks, and
// commits. Does nothing if the response was finished already.
void schedule_finish(std::shared_ptr<Context> ctx);

// Server::stop() gives up a deferred response whose chain has returned and
// whose resume() has not come: it will never be answered, and the Context
// lets go of everything tied to the server's io_context (its connection,
// executor, work guard, after() hooks and their timers), so a resume() or a
// dropped handle later, even after the server is gone, does nothing. Call on
// the request's executor. Changes nothing unless it says `dropped`.
enum class Abandoned {
  dropped,  // a deferred response, given up
  running,  // the handler chain still runs (a blocking handler, say)
  done,     // answered already
};
Abandoned abandon(Context& c) noexcept;

// Builds a JSON error response (the same shape Context::error writes).
Response error_response(int status, std::string_view code, std::string_view message);

}  // namespace errand::http::detail
