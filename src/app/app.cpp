#include "errand/app/app.hpp"

#include "errand/app/serve.hpp"
#include "errand/store/memory_store.hpp"

namespace errand {

tasks::EnqueueOptions from_request(const http::Context& c, tasks::EnqueueOptions options) {
  if (!options.trace && !c.trace().trace_id.empty()) options.trace = c.trace();
  if (options.request_id.empty()) options.request_id = c.request_id();
  return options;
}

tasks::EnqueueOptions from_request(const http::RequestSnapshot& s, tasks::EnqueueOptions options) {
  if (!options.trace && !s.trace().trace_id.empty()) options.trace = s.trace();
  if (options.request_id.empty()) options.request_id = s.request_id();
  return options;
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
    case C::busy: return {503, "store_busy", e.what()};
    case C::unavailable: return {503, "store_unavailable", e.what()};
    case C::corrupt:
    case C::invalid: break;
  }
  return {500, "store_error", e.what()};
}

struct App::Impl {
  observe::Logger logger = observe::Logger::null();
  std::shared_ptr<store::Store> store;
  std::unique_ptr<tasks::Runtime> runtime;
  std::unique_ptr<http::Server> server;
  bool started = false;
};

App::App(AppOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->logger = options.logger;
  impl_->store =
      options.store ? options.store : std::make_shared<store::SqliteStore>(options.sqlite);
  options.tasks.logger = options.logger;
  impl_->runtime = std::make_unique<tasks::Runtime>(impl_->store, options.tasks);
  impl_->server = std::make_unique<http::Server>(options.http, options.logger);
  app::install_standard_middleware(impl_->server->router(), options.request_timeout,
                                   options.logger);
  app::install_health_routes(*impl_->server);
}

App::~App() {
  stop();
}

http::Router& App::http() {
  return impl_->server->router();
}
tasks::Runtime& App::tasks() {
  return *impl_->runtime;
}
store::Store& App::store() {
  return *impl_->store;
}

store::Enqueued App::enqueue(const http::Context& c, std::string_view type,
                             boost::json::value payload, tasks::EnqueueOptions options) {
  try {
    return impl_->runtime->enqueue(type, std::move(payload), from_request(c, std::move(options)));
  } catch (const tasks::EnqueueError& e) {
    throw to_http_error(e);
  } catch (const store::StoreError& e) {
    throw to_http_error(e);
  }
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
  impl_->server->stop();   // no new requests, so no new tasks from them
  impl_->runtime->stop();  // then running tasks finish or go back to pending
}

int App::run() {
  impl_->runtime->start();
  impl_->started = true;
  const int code = impl_->server->run();
  impl_->runtime->stop();
  return code;
}

}  // namespace errand
