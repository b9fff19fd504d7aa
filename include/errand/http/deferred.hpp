#pragma once
// Deferred: a response a handler gives later, from another thread, without
// holding a thread while it waits (Context::defer()). Built for work that
// completes by callback — a store's group commit, an asynchronous client.
//
//   router.post("/v1/things", [&](Context& c) {
//     auto later = c.defer();
//     store.save_async(..., [later = std::move(later)](Result r) mutable {
//       later.resume([r](Context& c) { c.json(201, to_json(r)); });  // any thread
//     });
//   });
//
// Promises:
//  * resume(fn) may be called from any thread, at most once (a second call
//    throws std::logic_error). fn runs on the request's connection, after the
//    handler chain has returned, with the Context to itself: it writes the
//    response as a handler would, and may throw http::Error (mapped as in a
//    handler). Then the middleware's after() hooks run and the response is sent.
//  * A Deferred destroyed without resume() answers 500: a request never hangs
//    because a callback was lost.
//  * Deadlines still hold: under the timeout middleware the request is
//    answered 408 at its deadline whether or not resume() came; a later
//    resume() then runs but its response is dropped.
//  * The Deferred keeps the request (and its connection) alive; it holds no
//    thread. Server::stop() waits for every pending Deferred to be resumed
//    or dropped (logging every 5 s), so resume from something that ends — a
//    store callback, a client with a timeout — or drop the handle.

#include <functional>
#include <memory>

namespace errand::http {

class Context;

class Deferred {
 public:
  Deferred() = default;  // empty: resume() throws
  explicit Deferred(std::shared_ptr<Context> context) : ctx_(std::move(context)) {}
  Deferred(Deferred&&) noexcept = default;
  Deferred& operator=(Deferred&& other) noexcept;
  Deferred(const Deferred&) = delete;
  Deferred& operator=(const Deferred&) = delete;
  ~Deferred();

  void resume(std::function<void(Context&)> respond);
  [[nodiscard]] bool pending() const { return ctx_ != nullptr; }

 private:
  std::shared_ptr<Context> ctx_;
};

}  // namespace errand::http
