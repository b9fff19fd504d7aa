#include "errand/app/app.hpp"

#include "errand/app/serve.hpp"
#include "errand/http/middleware.hpp"
#include "errand/store/memory_store.hpp"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <optional>

namespace errand {

namespace {

// Context and RequestSnapshot both offer trace() and request_id().
template <class Request>
tasks::EnqueueOptions with_request(const Request& r, tasks::EnqueueOptions options) {
  if (!options.trace && !r.trace().trace_id.empty()) options.trace = r.trace();
  if (options.request_id.empty()) options.request_id = r.request_id();
  return options;
}

}  // namespace

tasks::EnqueueOptions from_request(const http::Context& c, tasks::EnqueueOptions options) {
  return with_request(c, std::move(options));
}

tasks::EnqueueOptions from_request(const http::RequestSnapshot& s, tasks::EnqueueOptions options) {
  return with_request(s, std::move(options));
}

http::Error to_http_error(const tasks::EnqueueError& e) {
  using C = tasks::EnqueueError::Code;
  switch (e.code()) {
    case C::unknown_type: return {400, "unknown_task_type", e.what()};
    case C::invalid_payload: return {422, "invalid_payload", e.what()};
    case C::payload_too_large: return {413, "payload_too_large", e.what()};
    case C::invalid_option: return {400, "invalid_option", e.what()};
  }
  return {400, "invalid_task", e.what()};
}

http::Error to_http_error(const store::StoreError& e) {
  using C = store::StoreError::Code;
  switch (e.code()) {
    case C::full: return {507, "store_full", e.what()};
    case C::busy: return {503, "store_busy", e.what(), std::chrono::seconds(1)};
    case C::unavailable: return {503, "store_unavailable", e.what(), std::chrono::seconds(1)};
    case C::queue_full: return {503, "queue_full", e.what(), std::chrono::seconds(1)};
    case C::corrupt:
    case C::invalid: break;
  }
  return {500, "store_error", e.what()};
}

namespace {

// Reads one whitespace-separated field of a /proc file; nullopt where /proc is not there.
std::optional<double> proc_number(const char* path, int field) {
  std::ifstream in(path);
  std::string word;
  for (int i = 0; i <= field && in >> word; ++i) {
    if (i == field) return std::stod(word);
  }
  return std::nullopt;
}

void process_metrics(observe::Registry& r) {
  r.gauge_callback("process_resident_memory_bytes", "Resident memory", {}, [] {
    observe::Registry::Samples s;
    if (auto pages = proc_number("/proc/self/statm", 1)) {
      s.push_back({{}, *pages * static_cast<double>(sysconf(_SC_PAGESIZE))});
    }
    return s;
  });
  r.gauge_callback("process_threads", "Threads of this process", {}, [] {
    observe::Registry::Samples s;
    if (auto n = proc_number("/proc/self/stat", 19)) s.push_back({{}, *n});
    return s;
  });
  r.gauge_callback("process_open_fds", "Open file descriptors", {}, [] {
    std::error_code ec;
    double n = 0;
    for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec);
         !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
      ++n;
    }
    return observe::Registry::Samples{{{}, n}};
  });
}

// A recorded trace is a histogram observation's exemplar (OpenMetrics).
std::string_view exemplar(const tasks::AttemptInfo& i) {
  return i.traced ? i.trace_id : std::string_view();
}

// Task metrics through the runtime's hooks (the user's own hooks still run).
void task_metrics(observe::Registry& r, tasks::Hooks& hooks) {
  auto& enqueued = r.counter("tasks_enqueued_total", "Tasks stored by enqueue", {"type", "queue"});
  // A histogram named without a unit so that its _count series is
  // task_execution_count{type,queue,outcome}, the name users look for, while
  // staying valid Prometheus (a counter must end in _total, and only a
  // histogram or summary may end in _count).
  auto& executions = r.histogram("task_execution",
                                 "Task attempts by outcome; observations are run times in seconds",
                                 {"type", "queue", "outcome"});
  auto& duration =
      r.histogram("task_duration_seconds", "Handler run time of an attempt", {"type", "queue"});
  auto& retries = r.counter("task_retries_total", "Attempts that failed and will be retried",
                            {"type", "queue"});
  auto& wait =
      r.histogram("task_queue_wait_seconds", "From ready (run_at) to the attempt's start",
                  {"queue"}, {0.001, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600});
  auto& stuck = r.counter("task_stuck_total",
                          "Handlers still running past deadline + grace, ignoring their stop token",
                          {"type", "queue"});
  auto& store_errors =
      r.counter("task_store_errors_total",
                "Store calls of the task runtime that failed (the runtime carries on; leases "
                "recover what they would have recorded)",
                {"operation"});
  auto user = hooks;
  hooks.enqueued = [&enqueued, user](std::string_view type, std::string_view queue) {
    enqueued.with({type, queue}).inc();
    if (user.enqueued) user.enqueued(type, queue);
  };
  hooks.before_attempt = [&wait, user](const tasks::AttemptInfo& i) {
    wait.with({i.queue}).observe(std::chrono::duration<double>(i.waited).count(), exemplar(i));
    if (user.before_attempt) user.before_attempt(i);
  };
  hooks.after_attempt = [&executions, &duration, &retries, user](const tasks::AttemptInfo& i,
                                                                 tasks::AttemptOutcome outcome,
                                                                 std::chrono::nanoseconds took) {
    const double seconds = std::chrono::duration<double>(took).count();
    executions.with({i.type, i.queue, tasks::to_string(outcome)}).observe(seconds, exemplar(i));
    duration.with({i.type, i.queue}).observe(seconds, exemplar(i));
    if (outcome == tasks::AttemptOutcome::retrying) retries.with({i.type, i.queue}).inc();
    if (user.after_attempt) user.after_attempt(i, outcome, took);
  };
  hooks.store_failed = [&store_errors, user](std::string_view operation) {
    store_errors.with({operation}).inc();
    if (user.store_failed) user.store_failed(operation);
  };
  hooks.stuck = [&stuck, user](const tasks::AttemptInfo& i) {
    stuck.with({i.type, i.queue}).inc();
    if (user.stuck) user.stuck(i);
  };
}

}  // namespace

std::optional<http::Error> task_errors_as_http(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const tasks::EnqueueError& e) {
    return to_http_error(e);
  } catch (const store::StoreError& e) {
    return to_http_error(e);
  } catch (...) {
    return std::nullopt;
  }
}

struct App::Impl {
  observe::Registry metrics;  // first: the store and runtime report into it
  std::shared_ptr<observe::TaskStats> stats = std::make_shared<observe::TaskStats>();
  observe::Logger logger = observe::Logger::null();
  std::shared_ptr<store::Store> store;
  observe::Tracer tracer;
  std::chrono::milliseconds grace{0};  // the runtime's shutdown grace: the flush's too
  std::unique_ptr<tasks::Runtime> runtime;
  std::unique_ptr<http::Server> server;
  bool started = false;
};

App::App(AppOptions options) : impl_(std::make_unique<Impl>()) {
  auto& m = impl_->metrics;
  impl_->logger = options.logger;
  if (options.store) {
    impl_->store = options.store;
  } else {
    auto& batch = m.histogram("store_commit_batch_size", "Operations per group commit", {},
                              {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024});
    auto& took =
        m.histogram("store_commit_duration_seconds", "Time of one group-commit transaction", {});
    auto user = options.sqlite.on_commit;
    options.sqlite.on_commit = [&batch, &took, user](std::size_t ops, std::chrono::nanoseconds d) {
      batch.get().observe(static_cast<double>(ops));
      took.get().observe(std::chrono::duration<double>(d).count());
      if (user) user(ops, d);
    };
    impl_->store = std::make_shared<store::SqliteStore>(options.sqlite);
  }
  options.tasks.logger = options.logger;
  if (options.tasks.owner.empty()) options.tasks.owner = tasks::Runtime::default_owner();
  {
    auto tracing = options.tracing.with_environment();
    tracing.metrics = &m;
    tracing.logger = options.logger;
    if (tracing.service_instance.empty()) tracing.service_instance = options.tasks.owner;
    impl_->tracer = observe::Tracer(tracing);
    options.tasks.tracer = impl_->tracer;
    impl_->grace = options.tasks.shutdown_grace;
  }
  task_metrics(m, options.tasks.hooks);
  {
    auto user = options.tasks.hooks.after_attempt;
    auto stats = impl_->stats;
    options.tasks.hooks.after_attempt = [stats, user](const tasks::AttemptInfo& i,
                                                      tasks::AttemptOutcome outcome,
                                                      std::chrono::nanoseconds took) {
      using O = tasks::AttemptOutcome;
      if (outcome == O::succeeded || outcome == O::retrying || outcome == O::dead) {
        stats->record(i.queue, std::chrono::system_clock::now(), outcome == O::succeeded, i.waited,
                      took);
      }
      if (user) user(i, outcome, took);
    };
    options.tasks.node_stats = [stats] {
      return stats->encode(std::chrono::system_clock::now(), stats->span());
    };
  }
  impl_->runtime = std::make_unique<tasks::Runtime>(impl_->store, options.tasks);
  auto* rt = impl_->runtime.get();
  m.gauge_callback("workers_busy", "Task handlers running now", {"queue"}, [rt] {
    observe::Registry::Samples s;
    for (const auto& q : rt->queues()) {
      s.push_back({{q.name}, static_cast<double>(rt->busy(q.name))});
    }
    return s;
  });
  auto* st = impl_->store.get();
  m.gauge_callback("tasks", "Tasks in the store per queue and state", {"queue", "state"}, [st] {
    observe::Registry::Samples s;
    for (auto& q : st->queues()) {
      for (const auto state :
           {store::TaskState::scheduled, store::TaskState::pending, store::TaskState::active,
            store::TaskState::retrying, store::TaskState::succeeded, store::TaskState::dead,
            store::TaskState::cancelled}) {
        s.push_back(
            {{q.queue, std::string(store::to_string(state))}, static_cast<double>(q.count(state))});
      }
    }
    return s;
  });
  process_metrics(m);

  impl_->server = std::make_unique<http::Server>(options.http, options.logger);
  auto* server = impl_->server.get();
  m.gauge_callback("http_blocking",
                   "Blocking requests running, waiting for a thread, and the "
                   "adaptive limit on both (0 unless --adaptive-blocking)",
                   {"what"}, [server] {
                     const auto now = server->stats();
                     return observe::Registry::Samples{
                         {{"running"}, static_cast<double>(now.blocking_active)},
                         {{"waiting"}, static_cast<double>(now.blocking_queued)},
                         {{"limit"}, static_cast<double>(now.blocking_limit)}};
                   });
  auto& router = impl_->server->router();
  router.on_exception(task_errors_as_http);
  router.use(http::mw::metrics(m));
  app::install_standard_middleware(router, options.request_timeout, options.logger, impl_->tracer);
  app::install_health_routes(*impl_->server, impl_->store.get());
  router.get("/metrics", app::metrics_handler(m),
             {.blocking = true});  // the tasks gauge reads the store
}

App::~App() {
  stop();
}

http::Router& App::http() {
  return impl_->server->router();
}
std::shared_ptr<const observe::TaskStats> App::task_stats() const {
  return impl_->stats;
}
tasks::Runtime& App::tasks() {
  return *impl_->runtime;
}
store::Store& App::store() {
  return *impl_->store;
}
observe::Registry& App::metrics() {
  return impl_->metrics;
}

store::Enqueued App::enqueue(const http::Context& c, std::string_view type,
                             boost::json::value payload, tasks::EnqueueOptions options) {
  return impl_->runtime->enqueue(type, std::move(payload), from_request(c, std::move(options)));
}

void enqueue_deferred(tasks::Runtime& runtime, http::Context& c, std::string_view type,
                      boost::json::value payload, tasks::EnqueueOptions options,
                      std::function<void(http::Context&, const store::Enqueued&)> respond) {
  // Bad input throws here, on the handler's thread; a store refusal is
  // rethrown by the deferred answer. The router translates both.
  runtime.enqueue_async(
      type, std::move(payload), std::move(options),
      [later = std::make_shared<http::Deferred>(c.defer()), respond = std::move(respond)](
          store::Enqueued e, std::exception_ptr error) {
        later->resume([e = std::move(e), error = std::move(error), respond](http::Context& answer) {
          if (error) std::rethrow_exception(error);
          respond(answer, e);
        });
      });
}

void App::enqueue_then(http::Context& c, std::string_view type, boost::json::value payload,
                       Respond respond, tasks::EnqueueOptions options) {
  enqueue_deferred(*impl_->runtime, c, type, std::move(payload),
                   from_request(c, std::move(options)), std::move(respond));
}

void App::start() {
  if (impl_->started) return;
  impl_->started = true;
  impl_->runtime->start();
  impl_->server->start();
}

std::uint16_t App::port() const {
  return impl_->server->port();
}

void App::stop() {
  if (!impl_->started) return;
  impl_->server->stop();                 // no new requests, so no new tasks from them
  impl_->runtime->stop();                // then running tasks finish or go back to pending
  impl_->tracer.shutdown(impl_->grace);  // then what they traced is sent
}

int App::run() {
  impl_->runtime->start();
  impl_->started = true;
  const int code = impl_->server->run();
  impl_->runtime->stop();
  impl_->tracer.shutdown(impl_->grace);
  return code;
}

}  // namespace errand
