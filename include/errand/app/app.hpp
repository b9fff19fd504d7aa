#pragma once
// errand::App: the library's front door — an HTTP server and a task runtime over
// one store, wired together and started and stopped together.
//
//   errand::App app({.http = {.port = 8080}});
//   auto welcome = app.tasks().handle<Welcome>("email.welcome", send_welcome, {.queue = "mail"});
//   app.http().post("/register", [&](errand::http::Context& c) {
//     auto id = app.enqueue(c, welcome, c.bind<Welcome>()).id;  // durable, traced, type-checked
//     c.json(202, {{"task_id", id}});
//   });
//   return app.run();  // SIGTERM: drain HTTP, then finish or requeue tasks
//
// The App installs the standard middleware (request id, trace, metrics, access
// log, recovery, timeout), /healthz, /readyz and GET /metrics (Prometheus). Register routes and
// task types before run()/start(). enqueue() may be called from any handler thread.

#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>

#include <boost/json/value.hpp>

#include "errand/http/context.hpp"
#include "errand/http/error.hpp"
#include "errand/http/server.hpp"
#include "errand/observe/logger.hpp"
#include "errand/observe/metrics.hpp"
#include "errand/observe/task_stats.hpp"
#include "errand/observe/tracer.hpp"
#include "errand/store/sqlite_store.hpp"
#include "errand/tasks/runtime.hpp"

namespace errand {

struct AppOptions {
  http::ServerConfig http{};
  tasks::RuntimeConfig tasks{};           // its logger is replaced by `logger`
  std::shared_ptr<store::Store> store{};  // null: a SqliteStore configured by `sqlite`
  store::SqliteOptions sqlite{};
  std::chrono::milliseconds request_timeout{std::chrono::seconds(30)};
  observe::Logger logger = observe::Logger::to_stderr();
  // Span export (off unless an endpoint is set here or in OTEL_EXPORTER_OTLP_
  // ENDPOINT: the OpenTelemetry environment is applied, see
  // TracingOptions::with_environment). The App fills in the metrics, the
  // logger and the node id, traces every request, enqueue and attempt, and
  // flushes what is queued when it stops.
  observe::TracingOptions tracing{};
};

// Enqueue options that carry a request's trace and id into the task, so the
// task's log lines and outgoing calls continue the request's trace.
[[nodiscard]] tasks::EnqueueOptions from_request(const http::Context& c,
                                                 tasks::EnqueueOptions options = {});
[[nodiscard]] tasks::EnqueueOptions from_request(const http::RequestSnapshot& s,
                                                 tasks::EnqueueOptions options = {});

// How task-layer errors become HTTP errors:
//   EnqueueError unknown_type / invalid_option → 400, invalid_payload → 422,
//   payload_too_large → 413; StoreError full → 507, busy / unavailable → 503,
//   queue_full → 503 (backpressure; both 503s with Retry-After: 1), others → 500.
[[nodiscard]] http::Error to_http_error(const tasks::EnqueueError& e);
[[nodiscard]] http::Error to_http_error(const store::StoreError& e);

// The App's exception translator (http::Router::on_exception): EnqueueError
// and StoreError escaping any handler, or a deferred answer, become the HTTP
// errors above; anything else is left to the next translator.
[[nodiscard]] std::optional<http::Error> task_errors_as_http(const std::exception_ptr& error);

// Enqueues through `runtime` with the response deferred until the task is
// committed; App::enqueue_then and POST /v1/tasks share it. `options` are
// used as given (App::enqueue_then adds the request's trace first).
void enqueue_deferred(tasks::Runtime& runtime, http::Context& c, std::string_view type,
                      boost::json::value payload, tasks::EnqueueOptions options,
                      std::function<void(http::Context&, const store::Enqueued&)> respond);

class App {
 public:
  // Opens the store (throws store::StoreError if it cannot) and builds the
  // server and runtime; nothing runs until start() or run().
  explicit App(AppOptions options = {});
  ~App();  // stop()
  App(const App&) = delete;
  App& operator=(const App&) = delete;

  [[nodiscard]] http::Router& http();
  [[nodiscard]] tasks::Runtime& tasks();
  [[nodiscard]] store::Store& store();
  // Everything GET /metrics shows: HTTP, tasks, the store's commits, the process.
  [[nodiscard]] observe::Registry& metrics();
  // Per-second task statistics of the last 15 minutes (GET /v1/stats); the
  // node publishes them with its heartbeat so that every node shows all.
  [[nodiscard]] std::shared_ptr<const observe::TaskStats> task_stats() const;

  // Enqueues under the request's trace. Throws tasks::EnqueueError or
  // store::StoreError; a handler that lets them escape answers the right
  // status (the App's router translates them, see to_http_error).
  store::Enqueued enqueue(const http::Context& c, std::string_view type, boost::json::value payload,
                          tasks::EnqueueOptions options = {});
  template <class T>
  requires(!std::is_convertible_v<const T&, boost::json::value>) store::Enqueued
      enqueue(const http::Context& c, std::string_view type, const T& payload,
              tasks::EnqueueOptions options = {}) {
    return enqueue(c, type, json::to_json(payload), std::move(options));
  }
  // Typed: the task handle handle<T>() returned; name and payload type are
  // checked by the compiler.
  template <class T>
  store::Enqueued enqueue(const http::Context& c, const tasks::Task<T>& task, const T& payload,
                          tasks::EnqueueOptions options = {}) {
    return enqueue(c, task.name(), json::to_json(payload), std::move(options));
  }

  // The same without blocking the handler's thread, for non-blocking routes:
  // the response is deferred (http::Deferred) until the task is committed,
  // then `respond` writes it on the request's connection. Bad input throws
  // http::Error at once (400/413/422); a store refusal is answered as
  // enqueue() would throw it (503/507). Holds no thread while the store
  // commits: this is how POST /v1/tasks enqueues.
  using Respond = std::function<void(http::Context&, const store::Enqueued&)>;
  void enqueue_then(http::Context& c, std::string_view type, boost::json::value payload,
                    Respond respond, tasks::EnqueueOptions options = {});
  template <class T>
  void enqueue_then(http::Context& c, const tasks::Task<T>& task, const T& payload, Respond respond,
                    tasks::EnqueueOptions options = {}) {
    enqueue_then(c, task.name(), json::to_json(payload), std::move(respond), std::move(options));
  }

  // Starts the runtime, then the server (for tests and embedding).
  void start();
  [[nodiscard]] std::uint16_t port() const;
  // Drains HTTP, then stops the runtime (see tasks::Runtime). Idempotent.
  void stop();
  // start(), wait for SIGINT/SIGTERM, stop(). Returns the process exit code.
  int run();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace errand
