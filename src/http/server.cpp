#include "errand/http/server.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/chunk_encode.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/serialize.hpp>

#include "blocking_admission.hpp"
#include "blocking_pool.hpp"
#include "dispatch.hpp"
#include "exchange.hpp"
#include "request_framing.hpp"
#include "wire.hpp"

#include "errand/detail/thread_annotations.hpp"

namespace errand::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

// What the server's registry and shutdown see of a connection, whatever
// executor type its stream has.
class ConnectionBase {
 public:
  ConnectionBase(Server::Impl& server, bool overflow) : server_(server), overflow_(overflow) {}
  ConnectionBase(const ConnectionBase&) = delete;
  ConnectionBase& operator=(const ConnectionBase&) = delete;
  // Leaves the server's registry here, after the derived connection's socket
  // and strand are gone: the last reference may be dropped on another thread
  // (a deferred response's), and once unregistered the server may stop and
  // destroy its io_context.
  virtual ~ConnectionBase();
  // Each posts itself to the connection's executor.
  virtual void post_drain() = 0;
  virtual void post_force_close() = 0;
  virtual void post_abandon() = 0;

 protected:
  Server::Impl& server_;
  bool overflow_;
};

constexpr std::size_t read_chunk = 4096;
// Overflow connections (over max_connections) get a 503 and a short linger;
// past this many at once they are closed without a word.
constexpr std::size_t max_overflow_in_progress = 64;
constexpr auto linger_time = std::chrono::milliseconds(500);
constexpr std::size_t linger_max_bytes = std::size_t{64} * 1024;

}  // namespace

class Server::Impl {
 public:
  Impl(ServerConfig config, observe::Logger logger)
      : config_(std::move(config)),
        logger_(std::move(logger)),
        threads_count_(config_.threads == 0 ? std::max(1U, std::thread::hardware_concurrency())
                                            : config_.threads),
        ioc_(static_cast<int>(threads_count_)),
        acceptor_(asio::make_strand(ioc_)) {
    if (config_.blocking_threads == 0) {
      throw std::invalid_argument("blocking_threads must be at least 1");
    }
    if (config_.max_connections == 0) {
      throw std::invalid_argument("max_connections must be at least 1");
    }
  }

  ~Impl() { stop(); }

  void start();
  bool stop();
  int run();

  void register_connection(ConnectionBase* c, const std::shared_ptr<ConnectionBase>& sp);
  void unregister_connection(ConnectionBase* c);

  // Declaration order is destruction order in reverse: everything a Connection
  // or a pending handler touches in its destructor is declared before ioc_.
  ServerConfig config_;
  observe::Logger logger_;
  Router router_;
  unsigned threads_count_;

  mutable errand::detail::Mutex conn_mu_;
  std::condition_variable conn_cv_;
  std::unordered_map<ConnectionBase*, std::weak_ptr<ConnectionBase>> connections_
      ERRAND_GUARDED_BY(conn_mu_);

  std::atomic<bool> started_{false};
  std::atomic<bool> draining_{false};
  std::atomic<bool> stopped_{false};
  errand::detail::Mutex stop_mu_;  // serialises stop()
  bool stopped_cleanly_ ERRAND_GUARDED_BY(stop_mu_) = true;
  errand::detail::Mutex run_mu_;
  std::condition_variable run_cv_;
  bool run_woken_ ERRAND_GUARDED_BY(run_mu_) = false;
  void wake_run();

  std::atomic<std::size_t> in_flight_{0};
  std::atomic<std::uint64_t> requests_total_{0};
  std::atomic<std::uint64_t> connections_rejected_{0};
  std::atomic<std::uint64_t> blocking_rejected_{0};
  std::atomic<std::size_t> overflow_in_progress_{0};
  std::atomic<std::size_t> stuck_handlers_{0};    // found by abandon()
  std::atomic<std::size_t> dropped_deferred_{0};  // dropped by abandon()

  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
  // adaptive_blocking only; outlives the pool's jobs.
  std::unique_ptr<detail::BlockingAdmission> admission_;
  std::unique_ptr<detail::BlockingPool> pool_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::vector<std::jthread> threads_;

 private:
  void do_accept();
  template <class Socket>
  void on_accept(beast::error_code ec, Socket socket);
};

namespace {

// Executor: the io_context's own with one I/O thread, else a strand. A
// concrete type rather than any_io_executor: the type-erased executor was
// copied and moved on every operation, 11% of a small request's instructions.
template <class Executor>
class Connection final : public ConnectionBase,
                         public std::enable_shared_from_this<Connection<Executor>> {
 public:
  using Stream = beast::basic_stream<tcp, Executor, beast::unlimited_rate_policy>;
  using Socket = typename Stream::socket_type;

  Connection(Server::Impl& server, Socket socket, bool overflow)
      : ConnectionBase(server, overflow), stream_(std::move(socket)) {
    beast::error_code ec;
    auto ep = stream_.socket().remote_endpoint(ec);
    if (!ec) remote_ = fmt::format("{}:{}", ep.address().to_string(), ep.port());
  }

  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection() override = default;

  void start() {
    if (overflow_) {
      reject_overflow();
      return;
    }
    request_started_ = Clock::now();
    wait_for_request(true);
  }

  // Called on the strand when the server begins draining.
  void drain() {
    keep_alive_ = false;
    if (idle_) close();
  }

  // Called on the strand when the grace period is over.
  void force_close() { close(); }

  void post_drain() override {
    asio::post(stream_.get_executor(), [self = this->shared_from_this()] { self->drain(); });
  }
  void post_force_close() override {
    asio::post(stream_.get_executor(), [self = this->shared_from_this()] { self->force_close(); });
  }
  void post_abandon() override {
    asio::post(stream_.get_executor(), [self = this->shared_from_this()] { self->abandon(); });
  }

  // Called on the strand when stop() gives up: names each request this
  // connection still has (a running handler, or a deferred response never
  // resumed, which it drops), and closes.
  void abandon() {
    for (const auto& weak : live_) {
      auto ctx = weak.lock();
      if (!ctx) continue;
      const auto what = detail::abandon(*ctx);
      if (what != detail::Abandoned::done) {
        const auto& ex = detail::ContextAccess::exchange(*ctx);
        const bool dropped = what == detail::Abandoned::dropped;
        (dropped ? server_.dropped_deferred_ : server_.stuck_handlers_).fetch_add(1);
        observe::Logger::Fields fields{
            {"method", ctx->method()}, {"route", ex.route}, {"path", ex.path}};
        // Written by the chain: read only once it has returned (abandon()'s
        // lock orders the two); a running chain may still be writing it.
        if (dropped) fields["request_id"] = ctx->request_id();
        server_.logger_.error(dropped
                                  ? "shutdown drops a deferred response that was never resumed"
                                  : "shutdown gives up on a handler that ignores its stop token",
                              std::move(fields));
      }
    }
    close();
  }

  [[nodiscard]] Executor executor() { return stream_.get_executor(); }

 private:
  const ServerConfig& cfg() const { return server_.config_; }

  void wait_for_request(bool first) {
    if (server_.draining_.load() && !first) {
      close();
      return;
    }
    if (buffer_.size() > 0) {  // pipelined: the next request is already here
      request_started_ = Clock::now();
      arrived_ = request_started_;
      read_header();
      return;
    }
    idle_ = true;
    if (first) {
      stream_.expires_at(request_started_ + cfg().header_timeout);
    } else {
      stream_.expires_after(cfg().idle_timeout);
    }
    stream_.async_read_some(buffer_.prepare(read_chunk), [self = this->shared_from_this(), first](
                                                             beast::error_code ec, std::size_t n) {
      self->idle_ = false;
      if (ec) return self->close();
      self->buffer_.commit(n);
      self->arrived_ = Clock::now();
      if (!first) self->request_started_ = self->arrived_;
      self->read_header();
    });
  }

  void read_header() {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(cfg().max_header_bytes));
    parser_->body_limit(cfg().max_body_bytes);
    fold_scan_ = {};
    header_bytes_ = 0;
    stream_.expires_at(request_started_ + cfg().header_timeout);
    parse_header();
  }

  // Beast's async_read_header, by hand, so the raw header bytes can be checked
  // for obsolete line folding before the parser unfolds them.
  void parse_header() {
    const std::string_view buffered(static_cast<const char*>(buffer_.data().data()),
                                    buffer_.size());
    if (detail::find_obs_fold(buffered, fold_scan_)) {
      return fail(400, "bad_request", "obsolete line folding is not accepted in a request header");
    }
    beast::error_code ec = bhttp::error::need_more;
    if (!buffered.empty()) {
      // Beast may take the complete lines of a header still arriving; the
      // scan above has seen them, and keeps its place.
      const auto used = parser_->put(buffer_.data(), ec);
      buffer_.consume(used);
      header_bytes_ += used;
      fold_scan_.consumed(used);
    }
    if (ec != bhttp::error::need_more) return on_header(ec, header_bytes_);
    stream_.async_read_some(buffer_.prepare(read_chunk), [self = this->shared_from_this()](
                                                             beast::error_code rec, std::size_t n) {
      if (rec) return self->on_header(rec, 0);
      self->buffer_.commit(n);
      self->parse_header();
    });
  }

  void on_header(beast::error_code ec, std::size_t header_bytes) {
    const std::string_view buffered(static_cast<const char*>(buffer_.data().data()),
                                    buffer_.size());
    const auto v = detail::judge_header(ec, header_bytes, *parser_, buffered,
                                        cfg().max_header_bytes, cfg().max_body_bytes);
    using Kind = detail::HeaderVerdict::Kind;
    switch (v.kind) {
      case Kind::close: return close();
      case Kind::fail: return fail(v.error.status, v.error.code, v.error.message);
      case Kind::dispatch: return dispatch();
      case Kind::read_body: return read_body();
      case Kind::expect_continue: break;
    }
    auto cont = std::make_shared<bhttp::response<bhttp::empty_body>>(bhttp::status::continue_,
                                                                     parser_->get().version());
    stream_.expires_after(cfg().write_timeout);
    bhttp::async_write(stream_, *cont,
                       [self = this->shared_from_this(), cont](beast::error_code wec, std::size_t) {
                         if (wec) return self->close();
                         self->read_body();
                       });
  }

  void read_body() {
    stream_.expires_after(cfg().body_timeout);
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                        self->on_body(ec);
                      });
  }

  void on_body(beast::error_code ec) {
    const auto v = detail::judge_body(ec, cfg().max_body_bytes);
    using Kind = detail::HeaderVerdict::Kind;
    if (v.kind == Kind::close) return close();
    if (v.kind == Kind::fail) return fail(v.error.status, v.error.code, v.error.message);
    dispatch();
  }

  void dispatch() {
    auto ex = std::make_unique<detail::Exchange>();
    ex->request = parser_->release();
    parser_.reset();
    ex->remote = remote_;
    ex->arrived = arrived_;
    ex->logger = server_.logger_;
    ex->executor = stream_.get_executor();
    ex->owner = this->shared_from_this();
    version_ = ex->request.version();
    head_ = ex->request.method() == bhttp::verb::head;
    keep_alive_ = keep_alive_ && ex->request.keep_alive();
    // Inline when the commit happens on the strand already (a non-blocking
    // chain, a deferred finish, the deadline timer): one hand-off fewer.
    ex->on_commit = [self = this->shared_from_this()](detail::Response r) {
      asio::dispatch(self->stream_.get_executor(),
                     [self, r = std::move(r)]() mutable { self->write(std::move(r)); });
    };
    server_.in_flight_.fetch_add(1);
    server_.requests_total_.fetch_add(1);

    auto ctx = std::make_shared<Context>(std::move(ex));
    // What abandon() may have to give up: this request, and earlier ones a
    // deferred handle still holds (a deadline may have answered them).
    std::erase_if(live_, [](const std::weak_ptr<Context>& w) { return w.expired(); });
    live_.push_back(ctx);
    const auto prepared = detail::prepare(server_.router_, *ctx);
    if (!prepared.blocking) {
      detail::run_and_commit(*ctx, *prepared.chain);
      return;
    }
    const auto* chain = prepared.chain;
    auto& exchange = detail::ContextAccess::exchange(*ctx);
    auto* admission = server_.admission_.get();  // null unless adaptive_blocking
    std::optional<std::size_t> admitted;
    std::function<void(detail::Response)> plain_commit;
    if (admission != nullptr) {
      admitted = admission->try_admit();
      if (admitted) {
        // Released as the answer is given, before the client can see it (and
        // send the next request): a deadline's answer or a deferred one too.
        plain_commit = exchange.on_commit;
        exchange.on_commit = [deliver = plain_commit, admission, n = *admitted,
                              arrived = exchange.arrived](detail::Response r) {
          admission->release(Clock::now() - arrived, n);
          deliver(std::move(r));
        };
      }
    }
    const bool accepted =
        (admission == nullptr || admitted) &&
        server_.pool_->try_submit([ctx, chain](const std::stop_token& stop) {
          auto& job = detail::ContextAccess::exchange(*ctx);
          const std::stop_callback forward(stop, [&job] { job.stop.request_stop(); });
          detail::run_and_commit(*ctx, *chain);
        });
    if (admitted && !accepted) {  // the pool refused it: nothing ran, nothing committed
      exchange.on_commit = std::move(plain_commit);
      admission->withdraw();
    }
    if (!accepted) {
      server_.blocking_rejected_.fetch_add(1);
      auto r = detail::error_response(503, "overloaded",
                                      "too many blocking requests in progress; retry later");
      r.headers.emplace_back("Retry-After", "1");
      if (auto id = ctx->header("X-Request-ID")) r.headers.emplace_back("X-Request-ID", *id);
      detail::ContextAccess::exchange(*ctx).commit(std::move(r));
    }
  }

  void write(detail::Response r) {
    if (r.stream && r.status >= 200 && r.status <= 599) return start_stream(std::move(r));
    if (server_.draining_.load()) keep_alive_ = false;
    // The head is serialised by hand into a buffer the connection reuses:
    // Beast's generic serializer cost a third of the instructions of a small
    // request (callgrind), for framing this simple.
    detail::write_head(head_buffer_, r, version_, keep_alive_, head_, server_.logger_);
    body_buffer_ = std::move(r.body);
    const std::array<asio::const_buffer, 2> wire{asio::buffer(head_buffer_),
                                                 asio::buffer(body_buffer_)};
    stream_.expires_after(cfg().write_timeout);
    asio::async_write(stream_, wire,
                      [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                        self->server_.in_flight_.fetch_sub(1);
                        if (ec) return self->close();
                        if (!self->keep_alive_) return self->linger_close();
                        self->wait_for_request(false);
                      });
  }

  // ---- streamed responses (Context::stream) ----
  // Headers first (chunked for HTTP/1.1), then every `interval` one pull of
  // the source on the blocking pool, its piece written as a chunk; the last
  // chunk and a close when the source ends, the client goes, or we drain.

  void start_stream(detail::Response r) {
    auto res = std::make_shared<bhttp::response<bhttp::empty_body>>(
        static_cast<bhttp::status>(r.status), version_);
    res->set(bhttp::field::server, "errand");
    for (auto& [name, value] : r.headers) {
      if (detail::safe_header(name, value)) res->insert(name, value);
    }
    keep_alive_ = false;
    res->keep_alive(false);
    if (version_ >= 11) res->chunked(true);
    stream_source_ = std::move(r.stream);
    stream_interval_ = r.stream_interval;
    stream_timer_.emplace(stream_.get_executor());
    auto sr = std::make_shared<bhttp::response_serializer<bhttp::empty_body>>(*res);
    stream_.expires_after(cfg().write_timeout);
    bhttp::async_write_header(
        stream_, *sr,
        [self = this->shared_from_this(), res, sr](beast::error_code ec, std::size_t) {
          if (ec) return self->end_stream(false);
          if (self->head_) return self->end_stream(true);
          self->stream_pull();  // the first piece at once
        });
  }

  void stream_wait() {
    if (server_.draining_.load()) return end_stream(true);
    stream_timer_->expires_after(stream_interval_);
    stream_timer_->async_wait([self = this->shared_from_this()](beast::error_code ec) {
      if (ec) return self->end_stream(false);
      self->stream_pull();
    });
  }

  void stream_pull() {
    if (server_.draining_.load()) return end_stream(true);
    auto self = this->shared_from_this();
    const bool accepted = server_.pool_->try_submit([self](const std::stop_token& pool_stop) {
      std::optional<std::string> piece;
      if (!pool_stop.stop_requested()) {
        try {
          piece = (*self->stream_source_)(self->stream_stop_.get_token());
        } catch (const std::exception& e) {
          self->server_.logger_.error("stream source threw; ending the stream",
                                      {{"error", e.what()}});
        }
      }
      asio::post(self->stream_.get_executor(), [self, piece = std::move(piece)]() mutable {
        self->stream_push(std::move(piece));
      });
    });
    if (!accepted) stream_wait();  // the pool is busy: try again next tick
  }

  void stream_push(std::optional<std::string> piece) {
    if (!piece) return end_stream(true);
    if (piece->empty()) return stream_wait();
    auto data = std::make_shared<std::string>(std::move(*piece));
    auto done = [self = this->shared_from_this(), data](beast::error_code ec, std::size_t) {
      if (ec) return self->end_stream(false);  // the client went away
      self->stream_wait();
    };
    stream_.expires_after(cfg().write_timeout);
    if (version_ >= 11) {
      asio::async_write(stream_, bhttp::make_chunk(asio::buffer(*data)), std::move(done));
    } else {
      asio::async_write(stream_, asio::buffer(*data), std::move(done));
    }
  }

  void end_stream(bool graceful) {
    if (stream_ended_) return;
    stream_ended_ = true;
    stream_stop_.request_stop();
    if (stream_timer_) stream_timer_->cancel();
    server_.in_flight_.fetch_sub(1);
    if (!graceful || version_ < 11 || head_) {
      return graceful ? linger_close() : close();
    }
    stream_.expires_after(cfg().write_timeout);
    asio::async_write(stream_, bhttp::make_chunk_last(),
                      [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                        if (ec) return self->close();
                        self->linger_close();
                      });
  }

  // Answers an unreadable request directly (no middleware ran) and closes.
  void fail(int status, std::string_view code, const std::string& message) {
    if (!overflow_) {
      server_.logger_.info("request rejected",
                           {{"status", status}, {"code", code}, {"remote", remote_}});
    }
    auto res = std::make_shared<bhttp::response<bhttp::string_body>>(
        static_cast<bhttp::status>(status), 11);
    res->set(bhttp::field::server, "errand");
    res->set(bhttp::field::content_type, "application/json");
    res->keep_alive(false);
    res->body() = boost::json::serialize(error_body(code, message));
    res->prepare_payload();
    keep_alive_ = false;
    stream_.expires_after(cfg().write_timeout);
    bhttp::async_write(stream_, *res,
                       [self = this->shared_from_this(), res](beast::error_code ec, std::size_t) {
                         if (ec) return self->close();
                         self->linger_close();
                       });
  }

  void reject_overflow() {
    fail(503, "too_many_connections", "server is at its connection limit; retry later");
  }

  // Half-closes and reads what the client still sends for a short while, so
  // that the kernel does not answer unread data with a reset that would
  // destroy the response we just wrote.
  void linger_close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    if (ec) return close();
    stream_.expires_after(linger_time);
    linger_read();
  }

  void linger_read() {
    buffer_.clear();
    stream_.async_read_some(buffer_.prepare(read_chunk),
                            [self = this->shared_from_this()](beast::error_code ec, std::size_t n) {
                              self->lingered_ += n;
                              if (ec || self->lingered_ > linger_max_bytes) return self->close();
                              self->linger_read();
                            });
  }

  void close() {
    idle_ = false;
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.close();
  }

  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  detail::FoldScan fold_scan_;    // where find_obs_fold stands in buffer_
  std::size_t header_bytes_ = 0;  // what the parser consumed of this request's header
  std::string remote_;
  std::string head_buffer_;            // the response head being written (capacity reused)
  std::string body_buffer_;            // its body
  Clock::time_point request_started_;  // the header timeout's start (the accept, first)
  Clock::time_point arrived_;          // the request's first bytes
  unsigned version_ = 11;
  bool head_ = false;
  bool keep_alive_ = true;
  bool idle_ = false;
  std::size_t lingered_ = 0;
  // Streamed responses only.
  std::shared_ptr<Context::StreamSource> stream_source_;
  std::chrono::milliseconds stream_interval_{250};
  std::optional<asio::steady_timer> stream_timer_;
  std::stop_source stream_stop_;
  std::vector<std::weak_ptr<Context>> live_;  // requests not yet gone, for abandon()
  bool stream_ended_ = false;
};

}  // namespace

// ---------------------------------------------------------------- Impl

ConnectionBase::~ConnectionBase() {
  if (overflow_) {
    server_.overflow_in_progress_.fetch_sub(1);
  } else {
    server_.unregister_connection(this);
  }
}

void Server::Impl::register_connection(ConnectionBase* c,
                                       const std::shared_ptr<ConnectionBase>& sp) {
  const errand::detail::MutexLock lock(conn_mu_);
  connections_.emplace(c, sp);
}

void Server::Impl::unregister_connection(ConnectionBase* c) {
  {
    const errand::detail::MutexLock lock(conn_mu_);
    connections_.erase(c);
  }
  conn_cv_.notify_all();
}

void Server::Impl::start() {
  if (started_.load()) throw std::logic_error("server already started");
  router_.freeze();
  // Bind before anything starts, so that a failure leaves nothing to stop.
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(config_.address, ec);
  if (ec) {
    throw std::system_error(ec, fmt::format("invalid listen address '{}'", config_.address));
  }
  const tcp::endpoint endpoint(address, config_.port);
  try {
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(asio::socket_base::reuse_address(true));
    acceptor_.bind(endpoint);
    acceptor_.listen(asio::socket_base::max_listen_connections);
  } catch (const boost::system::system_error& e) {
    beast::error_code ignored;
    acceptor_.close(ignored);
    throw std::system_error(e.code(),
                            fmt::format("cannot listen on {}:{}", config_.address, config_.port));
  }
  port_ = acceptor_.local_endpoint().port();
  if (config_.adaptive_blocking) {
    admission_ = std::make_unique<detail::BlockingAdmission>(config_.blocking_threads +
                                                             config_.blocking_queue);
  }
  pool_ = std::make_unique<detail::BlockingPool>(config_.blocking_threads, config_.blocking_queue);
  started_.store(true);

  work_.emplace(ioc_.get_executor());
  do_accept();
  threads_.reserve(threads_count_);
  for (unsigned i = 0; i < threads_count_; ++i) {
    threads_.emplace_back([this] {
      while (true) {
        try {
          ioc_.run();
          return;
        } catch (const std::exception& e) {
          logger_.error("exception escaped an I/O handler", {{"error", e.what()}});
        }
      }
    });
  }
  logger_.info("listening", {{"address", config_.address},
                             {"port", port_},
                             {"threads", threads_count_},
                             {"blocking_threads", config_.blocking_threads}});
}

void Server::Impl::do_accept() {
  // A connection's handlers must not run concurrently: a strand each when
  // there are several I/O threads. With one, the io_context alone already
  // serialises them, and its plain executor is cheaper to copy on every
  // operation than a strand's reference-counted one (about 5% of a small
  // request's instructions under callgrind).
  auto on_socket = [this](beast::error_code ec, auto socket) { on_accept(ec, std::move(socket)); };
  if (threads_count_ == 1) {
    acceptor_.async_accept(ioc_.get_executor(), std::move(on_socket));
  } else {
    acceptor_.async_accept(asio::make_strand(ioc_), std::move(on_socket));
  }
}

template <class Socket>
void Server::Impl::on_accept(beast::error_code ec, Socket socket) {
  using Conn = Connection<typename Socket::executor_type>;
  if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
  if (!ec) {
    bool over = false;
    {
      const errand::detail::MutexLock lock(conn_mu_);
      over = connections_.size() >= config_.max_connections;
    }
    if (!over) {
      auto conn = std::make_shared<Conn>(*this, std::move(socket), false);
      register_connection(conn.get(), conn);
      asio::dispatch(conn->executor(), [conn] { conn->start(); });
    } else {
      connections_rejected_.fetch_add(1);
      if (overflow_in_progress_.fetch_add(1) < max_overflow_in_progress) {
        auto conn = std::make_shared<Conn>(*this, std::move(socket), true);
        asio::dispatch(conn->executor(), [conn] { conn->start(); });
      } else {
        overflow_in_progress_.fetch_sub(1);
        beast::error_code ignored;
        socket.close(ignored);
      }
    }
  } else {
    // EMFILE and friends: keep accepting, but do not spin on a persistent error.
    logger_.warn("accept failed", {{"error", ec.message()}});
  }
  do_accept();
}

bool Server::Impl::stop() {
  if (ioc_.get_executor().running_in_this_thread()) {
    // It would wait for the very thread it runs on.
    throw std::logic_error("Server::stop() called from an I/O thread");
  }
  wake_run();
  const errand::detail::MutexLock stop_lock(stop_mu_);
  if (!started_.load()) return true;
  if (stopped_.exchange(true)) return stopped_cleanly_;  // what the first stop() found
  draining_.store(true);
  logger_.info("shutting down", {{"grace_ms", config_.shutdown_grace.count()}});

  // 1. Stop accepting.
  std::promise<void> closed;
  asio::post(acceptor_.get_executor(), [this, &closed] {
    beast::error_code ec;
    acceptor_.close(ec);
    closed.set_value();
  });
  // Every I/O thread stuck in a handler would never run this: bounded too.
  if (closed.get_future().wait_for(config_.shutdown_grace + config_.shutdown_abandon +
                                   std::chrono::seconds(2)) != std::future_status::ready) {
    errand::detail::exit_stuck(logger_,
                               "shutdown cannot finish: every I/O thread is stuck in a "
                               "handler; exiting");
  }

  // 2. Close idle connections; busy ones close after their current response.
  auto for_each_connection = [this](auto fn) {
    std::vector<std::shared_ptr<ConnectionBase>> live;
    {
      const errand::detail::MutexLock lock(conn_mu_);
      for (auto& [ptr, weak] : connections_) {
        if (auto sp = weak.lock()) live.push_back(std::move(sp));
      }
    }
    for (auto& c : live) fn(*c);
  };
  for_each_connection([](ConnectionBase& c) { c.post_drain(); });

  // 3. Wait for in-flight work within the grace period.
  {
    errand::detail::MutexLock lock(conn_mu_);
    const bool drained =
        lock.wait_for(conn_cv_, config_.shutdown_grace,
                      [this]() ERRAND_REQUIRES(conn_mu_) { return connections_.empty(); });
    if (!drained) {
      logger_.warn("grace period over; cancelling in-flight requests",
                   {{"connections", connections_.size()}});
    }
  }

  // 4. Force: cancel blocking handlers, close what is left, stop the loop.
  pool_->cancel_running();
  for_each_connection([](ConnectionBase& c) { c.post_force_close(); });
  const auto all_closed = [this](std::chrono::milliseconds within) {
    errand::detail::MutexLock lock(conn_mu_);
    return lock.wait_for(conn_cv_, within,
                         [this]() ERRAND_REQUIRES(conn_mu_) { return connections_.empty(); });
  };
  // What remains holds a handler on the blocking pool or a deferred response
  // (http::Deferred) whose callback has not come yet. Both usually end soon
  // (a store answers or fails every operation); neither may outlive the I/O
  // threads.
  if (!all_closed(config_.shutdown_abandon)) {
    logger_.warn("requests still in progress after the grace period; giving them up",
                 {{"abandon_ms", config_.shutdown_abandon.count()}});
    for_each_connection([](ConnectionBase& c) { c.post_abandon(); });
    // Each connection names and drops its request on its own strand at once;
    // an I/O thread stuck in a handler never gets there.
    if (!all_closed(std::chrono::seconds(2))) {
      errand::detail::exit_stuck(
          logger_, "shutdown cannot finish: handlers ignore their stop token; exiting",
          {{"stuck_handlers", stuck_handlers_.load()}});
    }
  }
  pool_->shutdown(true);
  work_.reset();
  ioc_.stop();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
  const auto dropped = dropped_deferred_.load();
  logger_.info("stopped", {{"dropped_responses", dropped}});
  stopped_cleanly_ = dropped == 0;
  return stopped_cleanly_;
}

int Server::Impl::run() {
  // The handlers go in before start() logs "listening": a supervisor that
  // sends SIGTERM as soon as it reads that line must get a clean shutdown,
  // not the default action (seen: killed by the signal, exit status null).
  asio::signal_set signals(ioc_, SIGINT, SIGTERM);
  signals.async_wait([this](beast::error_code ec, int sig) {
    if (ec) return;  // cancelled: the server is being destroyed
    logger_.info("signal received", {{"signal", sig}});
    wake_run();
  });
  if (!started_.load()) start();
  {
    // Woken by a signal, or by a stop() from another thread.
    errand::detail::MutexLock lock(run_mu_);
    lock.wait(run_cv_, [this]() ERRAND_REQUIRES(run_mu_) { return run_woken_; });
  }
  return stop() ? 0 : 1;
}

void Server::Impl::wake_run() {
  {
    const errand::detail::MutexLock lock(run_mu_);
    run_woken_ = true;
  }
  run_cv_.notify_all();
}

// ---------------------------------------------------------------- Server

Server::Server(ServerConfig config, observe::Logger logger)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(logger))) {}
Server::~Server() = default;
Router& Server::router() {
  return impl_->router_;
}
void Server::start() {
  impl_->start();
}
std::uint16_t Server::port() const {
  return impl_->port_;
}
bool Server::stop() {
  return impl_->stop();
}
int Server::run() {
  return impl_->run();
}
bool Server::draining() const {
  return impl_->draining_.load();
}
const ServerConfig& Server::config() const {
  return impl_->config_;
}

ServerStats Server::stats() const {
  ServerStats s;
  {
    const errand::detail::MutexLock lock(impl_->conn_mu_);
    s.connections = impl_->connections_.size();
  }
  s.requests_in_flight = impl_->in_flight_.load();
  if (impl_->pool_) {
    s.blocking_active = impl_->pool_->active();
    s.blocking_queued = impl_->pool_->queued();
    s.blocking_limit = impl_->admission_ ? impl_->admission_->limit() : 0;
  }
  s.requests_total = impl_->requests_total_.load();
  s.connections_rejected = impl_->connections_rejected_.load();
  s.blocking_rejected = impl_->blocking_rejected_.load();
  return s;
}

}  // namespace errand::http
