#include "store/redis_client.hpp"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <algorithm>
#include <condition_variable>
#include <future>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "detail/thread_name.hpp"
#include "errand/detail/thread_annotations.hpp"
#include "errand/store/store.hpp"

namespace errand::store::redis {

namespace asio = boost::asio;
using std::chrono::milliseconds;

namespace {

constexpr milliseconds kFirstBackoff{100};
constexpr milliseconds kMaxBackoff{2000};

Reply copy_reply(const redisReply* r) {
  Reply out;
  switch (r->type) {
    case REDIS_REPLY_STRING: out.type = Reply::Type::string; break;
    case REDIS_REPLY_ARRAY: out.type = Reply::Type::array; break;
    case REDIS_REPLY_INTEGER: out.type = Reply::Type::integer; break;
    case REDIS_REPLY_STATUS: out.type = Reply::Type::status; break;
    case REDIS_REPLY_ERROR: out.type = Reply::Type::error; break;
    default: out.type = Reply::Type::nil; break;
  }
  out.integer = r->integer;
  if (r->str != nullptr) out.str.assign(r->str, r->len);
  out.elements.reserve(r->elements);
  for (std::size_t i = 0; i < r->elements; ++i) out.elements.push_back(copy_reply(r->element[i]));
  return out;
}

std::exception_ptr unavailable(const std::string& message) {
  return std::make_exception_ptr(StoreError(StoreError::Code::unavailable, message));
}

}  // namespace

// One command in flight: its callback, its deadline, and what it needs to be
// sent again as EVAL.
struct Call {
  Call(asio::io_context& io, std::vector<std::string> a, Client::Callback cb, std::string src)
      : args(std::move(a)), done(std::move(cb)), script_source(std::move(src)), timer(io) {}
  std::vector<std::string> args;
  Client::Callback done;
  std::string script_source;
  asio::steady_timer timer;
  bool finished = false;
  bool resent = false;

  void finish(Reply reply, std::exception_ptr error) {
    if (finished) return;
    finished = true;
    timer.cancel();
    const auto callback = std::move(done);
    try {
      callback(std::move(reply), std::move(error));
    } catch (...) {  // callbacks must not throw; one that does must not take the client down
    }
  }
};
using CallPtr = std::shared_ptr<Call>;

struct Connection;

struct Client::Impl {
  Impl(Client& c, const ClientOptions& o) : client(c), options(o) {}

  Client& client;
  const ClientOptions& options;
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> guard = asio::make_work_guard(io);
  std::vector<std::shared_ptr<Connection>> connections;  // the client's thread only
  std::size_t next = 0;                                  // round-robin; the client's thread only
  bool closing = false;                                  // the client's thread only

  errand::detail::Mutex mu;
  std::condition_variable cv;
  std::string last_error ERRAND_GUARDED_BY(mu);

  std::jthread thread;

  void note_error(const std::string& error) {
    const errand::detail::MutexLock lock(mu);
    last_error = error;
  }
  void changed_up(int delta);
  void submit(const CallPtr& call);
  void send(Connection& conn, const CallPtr& call);
};

// One hiredis async context and the stream_descriptor that watches its
// socket. Lives on the client's thread only. `generation` changes whenever
// the context goes, so late Asio handlers of an old context do nothing.
struct Connection : std::enable_shared_from_this<Connection> {
  Connection(Client::Impl& i, std::size_t n) : impl(i), index(n), timer(i.io) {}

  Client::Impl& impl;
  std::size_t index;
  redisAsyncContext* ac = nullptr;
  std::unique_ptr<asio::posix::stream_descriptor> socket;
  bool want_read = false, want_write = false, read_armed = false, write_armed = false;
  bool up = false;
  std::uint64_t generation = 0;
  asio::steady_timer timer;  // the connect deadline, then the reconnect backoff
  milliseconds backoff = kFirstBackoff;

  std::string where() const {
    return fmt::format("redis at {}:{}", impl.options.endpoint.host, impl.options.endpoint.port);
  }

  void start() {
    if (impl.closing) return;
    const auto& ep = impl.options.endpoint;
    ac = redisAsyncConnect(ep.host.c_str(), ep.port);
    if (ac == nullptr || ac->err != 0) {
      const std::string why = ac != nullptr ? ac->errstr : "out of memory";
      if (ac != nullptr) redisAsyncFree(ac);
      ac = nullptr;
      failed(why);
      return;
    }
    ++generation;
    ac->data = this;
    socket = std::make_unique<asio::posix::stream_descriptor>(impl.io, ac->c.fd);
    ac->ev.data = this;
    ac->ev.addRead = [](void* p) { static_cast<Connection*>(p)->set_read(true); };
    ac->ev.delRead = [](void* p) { static_cast<Connection*>(p)->set_read(false); };
    ac->ev.addWrite = [](void* p) { static_cast<Connection*>(p)->set_write(true); };
    ac->ev.delWrite = [](void* p) { static_cast<Connection*>(p)->set_write(false); };
    ac->ev.cleanup = [](void* p) { static_cast<Connection*>(p)->detached(); };
    redisAsyncSetConnectCallback(ac, [](const redisAsyncContext* c, int status) {
      if (status != REDIS_OK) static_cast<Connection*>(c->data)->impl.note_error(c->errstr);
    });
    redisAsyncSetDisconnectCallback(ac, [](const redisAsyncContext* c, int status) {
      auto* self = static_cast<Connection*>(c->data);
      if (status != REDIS_OK && self->up) {
        self->impl.options.logger.warn("redis connection lost",
                                       {{"error", c->errstr}, {"connection", self->index}});
      }
    });
    handshake();
    timer.expires_after(impl.options.connect_timeout);
    timer.async_wait([self = shared_from_this(), g = generation](boost::system::error_code ec) {
      if (ec || g != self->generation || self->up || self->ac == nullptr) return;
      self->drop(fmt::format("{}: no connection within {} ms", self->where(),
                             self->impl.options.connect_timeout.count()));
    });
  }

  // AUTH and SELECT, then PING: the connection takes commands once PONG is back.
  void handshake() {
    const auto& ep = impl.options.endpoint;
    auto step = [this](std::vector<std::string> args, bool last) {
      auto call = std::make_shared<Call>(
          impl.io, std::move(args),
          [self = shared_from_this(), g = generation, last](const Reply& r,
                                                            const std::exception_ptr& e) {
            if (g != self->generation) return;
            if (e || r.is_error()) {
              if (r.is_error()) self->impl.note_error(fmt::format("{}: {}", self->where(), r.str));
              self->drop(r.is_error() ? self->where() + ": " + r.str : std::string());
              return;
            }
            if (last) self->became_up();
          },
          std::string());
      impl.send(*this, call);
    };
    if (!ep.password.empty()) {
      if (ep.user.empty()) {
        step({"AUTH", ep.password}, false);
      } else {
        step({"AUTH", ep.user, ep.password}, false);
      }
    }
    if (ep.db != 0) step({"SELECT", std::to_string(ep.db)}, false);
    step({"PING"}, true);
  }

  void became_up() {
    if (up) return;
    up = true;
    backoff = kFirstBackoff;
    timer.cancel();
    impl.changed_up(+1);
  }

  void failed(const std::string& why) {
    impl.note_error(why);
    impl.options.logger.debug("redis connection attempt failed",
                              {{"error", why}, {"connection", index}});
    schedule_reconnect();
  }

  void schedule_reconnect() {
    if (impl.closing) return;
    timer.expires_after(backoff);
    backoff = std::min(backoff * 2, kMaxBackoff);
    timer.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (!ec && self->ac == nullptr) self->start();
    });
  }

  // Frees the context: every command in flight on it fails, then detached().
  void drop(const std::string& why) {
    if (!why.empty()) impl.note_error(why);
    if (ac != nullptr) redisAsyncFree(ac);
  }

  // hiredis's cleanup hook: the context is being freed (by drop() or after an
  // error inside hiredis). The socket is hiredis's to close.
  void detached() {
    ac = nullptr;
    ++generation;
    want_read = want_write = read_armed = write_armed = false;
    if (socket) {
      socket->release();  // cancels our waits without closing the fd
      socket.reset();
    }
    if (up) {
      up = false;
      impl.changed_up(-1);
    }
    // Not from inside hiredis's own call stack: start() may free a context.
    asio::post(impl.io, [self = shared_from_this()] {
      if (self->ac == nullptr) self->schedule_reconnect();
    });
  }

  void set_read(bool on) {
    want_read = on;
    arm();
  }
  void set_write(bool on) {
    want_write = on;
    arm();
  }

  void arm() {
    if (ac == nullptr || !socket) return;
    if (want_read && !read_armed) {
      read_armed = true;
      socket->async_wait(asio::posix::stream_descriptor::wait_read,
                         [self = shared_from_this(), g = generation](boost::system::error_code ec) {
                           if (g != self->generation) return;
                           self->read_armed = false;
                           if (ec || !self->want_read) return;
                           redisAsyncHandleRead(self->ac);  // may free the context
                           if (g == self->generation) self->arm();
                         });
    }
    if (want_write && !write_armed) {
      write_armed = true;
      socket->async_wait(asio::posix::stream_descriptor::wait_write,
                         [self = shared_from_this(), g = generation](boost::system::error_code ec) {
                           if (g != self->generation) return;
                           self->write_armed = false;
                           if (ec || !self->want_write) return;
                           redisAsyncHandleWrite(self->ac);  // may free the context
                           if (g == self->generation) self->arm();
                         });
    }
  }
};

namespace {

void on_reply(redisAsyncContext* ac, void* reply, void* privdata) {
  const std::unique_ptr<CallPtr> holder(static_cast<CallPtr*>(privdata));
  const CallPtr& call = *holder;
  if (call->finished) return;
  auto* conn = static_cast<Connection*>(ac->data);
  if (reply == nullptr) {
    const std::string why =
        ac->err != 0 ? std::string(ac->errstr) : std::string("connection closed");
    call->finish({}, unavailable(fmt::format("{}: {}", conn->where(), why)));
    return;
  }
  Reply r = copy_reply(static_cast<const redisReply*>(reply));
  if (r.is_error() && r.str.starts_with("NOSCRIPT") && !call->script_source.empty() &&
      !call->resent && call->args.size() >= 2) {
    // Redis lost its script cache (a restart, SCRIPT FLUSH): send the source.
    call->resent = true;
    call->args[0] = "EVAL";
    call->args[1] = call->script_source;
    conn->impl.send(*conn, call);
    return;
  }
  call->finish(std::move(r), nullptr);
}

}  // namespace

void Client::Impl::send(Connection& conn, const CallPtr& call) {
  std::vector<const char*> argv;
  std::vector<std::size_t> lens;
  argv.reserve(call->args.size());
  lens.reserve(call->args.size());
  for (const auto& a : call->args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  auto holder = std::make_unique<CallPtr>(call);
  if (conn.ac == nullptr ||
      redisAsyncCommandArgv(conn.ac, &on_reply, holder.get(), static_cast<int>(argv.size()),
                            argv.data(), lens.data()) != REDIS_OK) {
    call->finish({}, unavailable(conn.where() + ": connection closing"));
    return;
  }
  (void)holder.release();    // on_reply owns it now
  if (call->resent) return;  // keeps its first deadline
  call->timer.expires_after(options.command_timeout);
  call->timer.async_wait([call, conn = conn.weak_from_this(), g = conn.generation,
                          timeout = options.command_timeout](boost::system::error_code ec) {
    if (ec || call->finished) return;
    auto c = conn.lock();
    const std::string where = c ? c->where() : std::string("redis");
    call->finish({}, unavailable(fmt::format("{}: no reply within {} ms", where, timeout.count())));
    // Its reply may still come, out of step with what we expect next: start afresh.
    if (c && c->generation == g) c->drop(where + ": a command timed out");
  });
}

void Client::Impl::submit(const CallPtr& call) {
  for (std::size_t tried = 0; tried < connections.size(); ++tried) {
    auto& conn = *connections[next++ % connections.size()];
    if (conn.up) {
      send(conn, call);
      return;
    }
  }
  std::string why;
  {
    const errand::detail::MutexLock lock(mu);
    why = last_error;
  }
  call->finish({},
               unavailable(fmt::format("redis at {}:{} is unreachable{}{}", options.endpoint.host,
                                       options.endpoint.port, why.empty() ? "" : ": ", why)));
}

void Client::Impl::changed_up(int delta) {
  const int before = client.up_.fetch_add(delta, std::memory_order_relaxed);
  if (before == 0 && delta > 0) {
    options.logger.info("redis reachable",
                        {{"host", options.endpoint.host}, {"port", options.endpoint.port}});
  } else if (before + delta == 0 && delta < 0 && !closing) {
    options.logger.warn("redis unreachable: commands fail until it is back",
                        {{"host", options.endpoint.host}, {"port", options.endpoint.port}});
  }
  const errand::detail::MutexLock lock(mu);
  cv.notify_all();
}

Client::Client(ClientOptions options)
    : options_(std::move(options)), impl_(std::make_unique<Impl>(*this, options_)) {
  if (options_.connections == 0) options_.connections = 1;
  for (std::size_t i = 0; i < options_.connections; ++i) {
    impl_->connections.push_back(std::make_shared<Connection>(*impl_, i));
  }
  asio::post(impl_->io, [impl = impl_.get()] {
    for (auto& c : impl->connections) c->start();
  });
  impl_->thread = std::jthread([impl = impl_.get()] { impl->io.run(); });
  errand::detail::name_thread(impl_->thread, "errand-redis");
}

Client::~Client() {
  asio::post(impl_->io, [impl = impl_.get()] {
    impl->closing = true;
    for (auto& c : impl->connections) {
      c->timer.cancel();
      c->drop({});
    }
    impl->guard.reset();
  });
  impl_->thread.join();
  impl_->connections.clear();
}

bool Client::wait_connected(milliseconds timeout) {
  errand::detail::MutexLock lock(impl_->mu);
  return lock.wait_for(impl_->cv, timeout, [this] { return connected(); });
}

std::string Client::last_error() const {
  const errand::detail::MutexLock lock(impl_->mu);
  return impl_->last_error;
}

void Client::command(std::vector<std::string> args, Callback done, std::string script_source) {
  auto call =
      std::make_shared<Call>(impl_->io, std::move(args), std::move(done), std::move(script_source));
  asio::post(impl_->io, [impl = impl_.get(), call = std::move(call)] { impl->submit(call); });
}

Reply Client::call(std::vector<std::string> args, std::string script_source) {
  if (std::this_thread::get_id() == impl_->thread.get_id()) {
    throw std::logic_error("redis client: call() on the client's own thread would never return");
  }
  // The error crosses threads as a value and is thrown here: an exception_ptr
  // released on the client's thread after this one caught its exception looks
  // like a race to ThreadSanitizer (libstdc++'s refcount is not instrumented).
  struct Answer {
    Reply reply;
    std::optional<StoreError> error;
  };
  std::promise<Answer> answer;
  auto future = answer.get_future();
  command(
      std::move(args),
      [&answer](Reply r, std::exception_ptr e) {
        Answer a{std::move(r), std::nullopt};
        if (e) {
          try {
            std::rethrow_exception(std::move(e));
          } catch (const StoreError& x) {
            a.error.emplace(x.code(), x.what());
          } catch (const std::exception& x) {
            a.error.emplace(StoreError::Code::unavailable, x.what());
          }
        }
        answer.set_value(std::move(a));
      },
      std::move(script_source));
  Answer a = future.get();
  if (a.error) throw StoreError(a.error->code(), a.error->what());
  return std::move(a.reply);
}

}  // namespace errand::store::redis
