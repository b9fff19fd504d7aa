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
#include "detail/thread_name.hpp"
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

struct IoThread;

// What the server's registry and shutdown see of a connection.
class ConnectionBase {
 public:
  // Counts itself (open connections, or overflow ones), as the destructor
  // uncounts it: a connection that fails to be made leaves the counts right.
  ConnectionBase(Server::Impl& server, IoThread& io, bool overflow);
  ConnectionBase(const ConnectionBase&) = delete;
  ConnectionBase& operator=(const ConnectionBase&) = delete;
  // Leaves the server's registry here, after the derived connection's socket
  // is gone: the last reference may be dropped on another thread (a deferred
  // response's), and once unregistered the server may stop and destroy its
  // io_context.
  virtual ~ConnectionBase();
  // Each posts itself to the connection's executor.
  virtual void post_drain() = 0;
  virtual void post_force_close() = 0;
  virtual void post_abandon() = 0;

 protected:
  Server::Impl& server_;
  IoThread& io_;  // the I/O thread that runs every handler of this connection
  bool overflow_;
};

// One I/O thread: its own io_context, so a connection's handlers all run on
// the thread it was given, one after another, with no strand and nothing
// shared with the other I/O threads on the request path; the connections it
// serves (for shutdown); its counters, summed by stats().
struct IoThread {
  // Written only by its own thread (a load and a store, no locked
  // instruction); read by stats() from any thread.
  static void bump(std::atomic<std::uint64_t>& n, std::int64_t by) {
    n.store(n.load(std::memory_order_relaxed) + static_cast<std::uint64_t>(by),
            std::memory_order_relaxed);
  }

  errand::detail::Mutex mu;  // taken per connection, not per request
  std::unordered_map<ConnectionBase*, std::weak_ptr<ConnectionBase>> connections
      ERRAND_GUARDED_BY(mu);
  alignas(64) std::atomic<std::uint64_t> in_flight{0};
  std::atomic<std::uint64_t> requests_total{0};
  // Destroyed before the above (only `work`, which must go first, is
  // declared after it), with the connections its handlers still hold.
  asio::io_context ioc{1};
  // Makes the io_context's reactor (an epoll descriptor and an eventfd) now,
  // at start-up. Asio makes it with the first socket, which here is the
  // first accepted connection's: out of descriptors then, making it threw
  // from inside the accept and stopped accepting for good.
  asio::steady_timer reactor_now{ioc};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
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
        io_(make_io(threads_count_)),
        accept_io_(threads_count_ > 1 ? std::make_unique<IoThread>() : nullptr),
        acceptor_(accept_io_ ? accept_io_->ioc : io_.front()->ioc),
        accept_retry_(acceptor_.get_executor()) {
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

  void unregister_connection(ConnectionBase* c, IoThread& io);
  // True when this thread is one of the I/O threads.
  [[nodiscard]] bool on_io_thread() const;

  // Declaration order is destruction order in reverse: everything a Connection
  // or a pending handler touches in its destructor is declared before io_.
  ServerConfig config_;
  observe::Logger logger_;
  Router router_;
  unsigned threads_count_;

  // Open connections, all I/O threads together (against max_connections);
  // stop() waits on conn_cv_ for none.
  std::atomic<std::size_t> open_connections_{0};
  errand::detail::Mutex conn_mu_;
  std::condition_variable conn_cv_;

  std::atomic<bool> started_{false};
  std::atomic<bool> draining_{false};
  std::atomic<bool> stopped_{false};
  errand::detail::Mutex stop_mu_;  // serialises stop()
  bool stopped_cleanly_ ERRAND_GUARDED_BY(stop_mu_) = true;
  errand::detail::Mutex run_mu_;
  std::condition_variable run_cv_;
  bool run_woken_ ERRAND_GUARDED_BY(run_mu_) = false;
  void wake_run();

  std::atomic<std::uint64_t> connections_rejected_{0};
  std::atomic<std::uint64_t> blocking_rejected_{0};
  std::atomic<std::size_t> overflow_in_progress_{0};
  std::atomic<std::size_t> stuck_handlers_{0};    // found by abandon()
  std::atomic<std::size_t> dropped_deferred_{0};  // dropped by abandon()

  std::vector<std::unique_ptr<IoThread>> io_;
  // With several I/O threads the acceptor has a thread of its own, so that a
  // handler blocking one of them (a bug, but one that happens) stalls that
  // thread's connections and not every new one. With one, it shares it.
  std::unique_ptr<IoThread> accept_io_;
  std::size_t next_io_ = 0;  // the acceptor's: where its search for the least loaded starts
  tcp::acceptor acceptor_;
  // After a failed accept (EMFILE: out of descriptors), the next one waits:
  // the pending connection keeps the listening socket readable, and an
  // immediate retry would spin a core and flood the log. Doubling from 10 ms
  // to 1 s; the first success resets it. The acceptor's thread only.
  asio::steady_timer accept_retry_;
  std::chrono::milliseconds accept_backoff_{0};
  std::uint16_t port_ = 0;
  // adaptive_blocking only; outlives the pool's jobs.
  std::unique_ptr<detail::BlockingAdmission> admission_;
  std::unique_ptr<detail::BlockingPool> pool_;
  std::vector<std::jthread> threads_;

 private:
  static std::vector<std::unique_ptr<IoThread>> make_io(unsigned n) {
    std::vector<std::unique_ptr<IoThread>> io;
    for (unsigned i = 0; i < n; ++i) io.push_back(std::make_unique<IoThread>());
    return io;
  }
  IoThread& least_loaded();
  void do_accept();
  void retry_accept_later(std::string_view error);
  void on_accept(beast::error_code ec,
                 tcp::socket::rebind_executor<asio::io_context::executor_type>::other socket,
                 IoThread& io);
};

namespace {

// The executor is its I/O thread's io_context's own, a concrete type rather
// than any_io_executor: the type-erased executor was copied and moved on every
// operation, 11% of a small request's instructions.
class Connection final : public ConnectionBase, public std::enable_shared_from_this<Connection> {
 public:
  using Executor = asio::io_context::executor_type;
  using Stream = beast::basic_stream<tcp, Executor, beast::unlimited_rate_policy>;
  using Socket = Stream::socket_type;

  Connection(Server::Impl& server, IoThread& io, Socket socket, bool overflow)
      : ConnectionBase(server, io, overflow), stream_(std::move(socket)) {
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

  // Called on the I/O thread when the server begins draining.
  void drain() {
    keep_alive_ = false;
    if (idle_) close();
  }

  // Called on the I/O thread when the grace period is over.
  void force_close() { close(); }

  void post_drain() override {
    asio::post(stream_.get_executor(), [self = shared_from_this()] { self->drain(); });
  }
  void post_force_close() override {
    asio::post(stream_.get_executor(), [self = shared_from_this()] { self->force_close(); });
  }
  void post_abandon() override {
    asio::post(stream_.get_executor(), [self = shared_from_this()] { self->abandon(); });
  }

  // Called on the I/O thread when stop() gives up: names each request this
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
    stream_.async_read_some(buffer_.prepare(read_chunk), [self = shared_from_this(), first](
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
    stream_.async_read_some(buffer_.prepare(read_chunk),
                            [self = shared_from_this()](beast::error_code rec, std::size_t n) {
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
                       [self = shared_from_this(), cont](beast::error_code wec, std::size_t) {
                         if (wec) return self->close();
                         self->read_body();
                       });
  }

  void read_body() {
    stream_.expires_after(cfg().body_timeout);
    bhttp::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_body(ec); });
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
    ex->owner = shared_from_this();
    version_ = ex->request.version();
    head_ = ex->request.method() == bhttp::verb::head;
    keep_alive_ = keep_alive_ && ex->request.keep_alive();
    // Inline when the commit happens on the I/O thread already (a non-blocking
    // chain, a deferred finish, the deadline timer): one hand-off fewer.
    ex->on_commit = [self = shared_from_this()](detail::Response r) {
      asio::dispatch(self->stream_.get_executor(),
                     [self, r = std::move(r)]() mutable { self->write(std::move(r)); });
    };
    IoThread::bump(io_.in_flight, 1);
    IoThread::bump(io_.requests_total, 1);

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
                      [self = shared_from_this()](beast::error_code ec, std::size_t) {
                        IoThread::bump(self->io_.in_flight, -1);
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
        stream_, *sr, [self = shared_from_this(), res, sr](beast::error_code ec, std::size_t) {
          if (ec) return self->end_stream(false);
          if (self->head_) return self->end_stream(true);
          self->stream_pull();  // the first piece at once
        });
  }

  void stream_wait() {
    if (server_.draining_.load()) return end_stream(true);
    stream_timer_->expires_after(stream_interval_);
    stream_timer_->async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec) return self->end_stream(false);
      self->stream_pull();
    });
  }

  void stream_pull() {
    if (server_.draining_.load()) return end_stream(true);
    auto self = shared_from_this();
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
    auto done = [self = shared_from_this(), data](beast::error_code ec, std::size_t) {
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
    IoThread::bump(io_.in_flight, -1);
    if (!graceful || version_ < 11 || head_) {
      return graceful ? linger_close() : close();
    }
    stream_.expires_after(cfg().write_timeout);
    asio::async_write(stream_, bhttp::make_chunk_last(),
                      [self = shared_from_this()](beast::error_code ec, std::size_t) {
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
                       [self = shared_from_this(), res](beast::error_code ec, std::size_t) {
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
                            [self = shared_from_this()](beast::error_code ec, std::size_t n) {
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

ConnectionBase::ConnectionBase(Server::Impl& server, IoThread& io, bool overflow)
    : server_(server), io_(io), overflow_(overflow) {
  (overflow_ ? server_.overflow_in_progress_ : server_.open_connections_).fetch_add(1);
}

ConnectionBase::~ConnectionBase() {
  if (overflow_) {
    server_.overflow_in_progress_.fetch_sub(1);
  } else {
    server_.unregister_connection(this, io_);
  }
}

void Server::Impl::unregister_connection(ConnectionBase* c, IoThread& io) {
  {
    const errand::detail::MutexLock lock(io.mu);
    io.connections.erase(c);
  }
  // Under stop()'s mutex, the count and the wake-up both: a stop() that saw
  // zero (even on a spurious wake-up) cannot return and destroy the condition
  // variable while this thread, perhaps not an I/O thread, still notifies it.
  // Once per connection, not per request.
  const errand::detail::MutexLock lock(conn_mu_);
  if (open_connections_.fetch_sub(1) == 1) conn_cv_.notify_all();
}

bool Server::Impl::on_io_thread() const {
  return (accept_io_ && accept_io_->ioc.get_executor().running_in_this_thread()) ||
         std::any_of(io_.begin(), io_.end(), [](const auto& io) {
           return io->ioc.get_executor().running_in_this_thread();
         });
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

  std::vector<IoThread*> all;
  for (auto& io : io_) all.push_back(io.get());
  if (accept_io_) all.push_back(accept_io_.get());
  for (auto* io : all) io->work.emplace(io->ioc.get_executor());
  do_accept();
  threads_.reserve(all.size());
  for (std::size_t i = 0; i < all.size(); ++i) {
    threads_.emplace_back([this, &ioc = all[i]->ioc] {
      while (true) {
        try {
          ioc.run();
          return;
        } catch (const std::exception& e) {
          logger_.error("exception escaped an I/O handler", {{"error", e.what()}});
        }
      }
    });
  }
  for (std::size_t i = 0; i < all.size(); ++i) {
    errand::detail::name_thread(threads_[i], all[i] == accept_io_.get()
                                                 ? std::string("errand-accept")
                                                 : "errand-io-" + std::to_string(i));
  }
  logger_.info("listening", {{"address", config_.address},
                             {"port", port_},
                             {"threads", threads_count_},
                             {"blocking_threads", config_.blocking_threads}});
}

// The I/O thread with the fewest open connections (the first of equals
// after the last choice). A connection stays on the thread it is given.
// One lock per thread and per accepted connection, none per request.
IoThread& Server::Impl::least_loaded() {
  const std::size_t n = io_.size();
  const auto open = [this](std::size_t i) {
    const errand::detail::MutexLock lock(io_[i]->mu);
    return io_[i]->connections.size();
  };
  std::size_t best = next_io_ % n;
  std::size_t fewest = open(best);
  for (std::size_t k = 1; k < n; ++k) {
    const std::size_t i = (next_io_ + k) % n;
    if (const std::size_t c = open(i); c < fewest) {
      best = i;
      fewest = c;
    }
  }
  next_io_ = best + 1;
  return *io_[best];
}

void Server::Impl::do_accept() {
  // One acceptor hands each connection to an I/O thread: its socket is made
  // on that thread's io_context. SO_REUSEPORT (an acceptor per thread) would
  // spare the hand-off, but the kernel then spreads connections by a hash,
  // not by load, and a second server started on the same port would share it
  // silently instead of failing to bind.
  // Chosen as the accept is armed, not as the connection arrives: after a
  // quiet spell the counts may be stale by the connections closed since.
  IoThread& io = least_loaded();
  try {
    acceptor_.async_accept(io.ioc.get_executor(),
                           [this, &io](beast::error_code ec, Connection::Socket socket) {
                             on_accept(ec, std::move(socket), io);
                           });
  } catch (const std::exception& e) {  // arming failed: never leave the acceptor unarmed
    retry_accept_later(e.what());
  }
}

// EMFILE and friends: keep accepting, but do not spin on a persistent error.
void Server::Impl::retry_accept_later(std::string_view error) {
  accept_backoff_ = std::clamp(accept_backoff_ * 2, std::chrono::milliseconds(10),
                               std::chrono::milliseconds(1000));
  logger_.warn("accept failed", {{"error", error}, {"retry_in_ms", accept_backoff_.count()}});
  accept_retry_.expires_after(accept_backoff_);
  accept_retry_.async_wait([this](beast::error_code ec) {
    if (ec || !acceptor_.is_open()) return;  // cancelled: the server stops
    do_accept();
  });
}

void Server::Impl::on_accept(
    beast::error_code ec,
    tcp::socket::rebind_executor<asio::io_context::executor_type>::other socket, IoThread& io) {
  if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
  if (!ec) {
    accept_backoff_ = std::chrono::milliseconds(0);
    // Only this thread adds to the counts (a connection counts itself as it
    // is made, here): neither can pass its limit between check and add.
    try {
      if (open_connections_.load() < config_.max_connections) {
        auto conn = std::make_shared<Connection>(*this, io, std::move(socket), false);
        {
          const errand::detail::MutexLock lock(io.mu);
          io.connections.emplace(conn.get(), conn);
        }
        asio::dispatch(conn->executor(), [conn] { conn->start(); });
      } else {
        connections_rejected_.fetch_add(1);
        if (overflow_in_progress_.load() < max_overflow_in_progress) {
          auto conn = std::make_shared<Connection>(*this, io, std::move(socket), true);
          asio::dispatch(conn->executor(), [conn] { conn->start(); });
        } else {
          beast::error_code ignored;
          socket.close(ignored);
        }
      }
    } catch (const std::exception& e) {
      // Out of memory making it: this connection closes (its socket goes
      // with the exception); the acceptor goes on.
      logger_.error("could not take a connection", {{"error", e.what()}});
    }
  } else {
    retry_accept_later(ec.message());
    return;
  }
  do_accept();
}

bool Server::Impl::stop() {
  if (on_io_thread()) {
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
    accept_retry_.cancel();
    closed.set_value();
  });
  // An acceptor's thread stuck in a handler would never run this: bounded too.
  if (closed.get_future().wait_for(config_.shutdown_grace + config_.shutdown_abandon +
                                   std::chrono::seconds(2)) != std::future_status::ready) {
    errand::detail::exit_stuck(logger_,
                               "shutdown cannot finish: the acceptor's I/O thread is stuck in "
                               "a handler; exiting");
  }

  // 2. Close idle connections; busy ones close after their current response.
  auto for_each_connection = [this](auto fn) {
    std::vector<std::shared_ptr<ConnectionBase>> live;
    for (auto& io : io_) {
      const errand::detail::MutexLock lock(io->mu);
      for (auto& [ptr, weak] : io->connections) {
        if (auto sp = weak.lock()) live.push_back(std::move(sp));
      }
    }
    for (auto& c : live) fn(*c);
  };
  for_each_connection([](ConnectionBase& c) { c.post_drain(); });

  // 3. Wait for in-flight work within the grace period.
  {
    errand::detail::MutexLock lock(conn_mu_);
    const bool drained = lock.wait_for(conn_cv_, config_.shutdown_grace,
                                       [this] { return open_connections_.load() == 0; });
    if (!drained) {
      logger_.warn("grace period over; cancelling in-flight requests",
                   {{"connections", open_connections_.load()}});
    }
  }

  // 4. Force: cancel blocking handlers, close what is left, stop the loop.
  pool_->cancel_running();
  for_each_connection([](ConnectionBase& c) { c.post_force_close(); });
  const auto all_closed = [this](std::chrono::milliseconds within) {
    errand::detail::MutexLock lock(conn_mu_);
    return lock.wait_for(conn_cv_, within, [this] { return open_connections_.load() == 0; });
  };
  // What remains holds a handler on the blocking pool or a deferred response
  // (http::Deferred) whose callback has not come yet. Both usually end soon
  // (a store answers or fails every operation); neither may outlive the I/O
  // threads.
  if (!all_closed(config_.shutdown_abandon)) {
    logger_.warn("requests still in progress after the grace period; giving them up",
                 {{"abandon_ms", config_.shutdown_abandon.count()}});
    for_each_connection([](ConnectionBase& c) { c.post_abandon(); });
    // Each connection names and drops its request on its own I/O thread at once;
    // an I/O thread stuck in a handler never gets there.
    if (!all_closed(std::chrono::seconds(2))) {
      errand::detail::exit_stuck(
          logger_, "shutdown cannot finish: handlers ignore their stop token; exiting",
          {{"stuck_handlers", stuck_handlers_.load()}});
    }
  }
  pool_->shutdown(true);
  for (auto& io : io_) {
    io->work.reset();
    io->ioc.stop();
  }
  if (accept_io_) {
    accept_io_->work.reset();
    accept_io_->ioc.stop();
  }
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
  asio::signal_set signals(acceptor_.get_executor(), SIGINT, SIGTERM);
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
  s.connections = impl_->open_connections_.load();
  for (const auto& io : impl_->io_) {
    s.requests_in_flight += io->in_flight.load(std::memory_order_relaxed);
    s.requests_total += io->requests_total.load(std::memory_order_relaxed);
  }
  if (impl_->pool_) {
    s.blocking_active = impl_->pool_->active();
    s.blocking_queued = impl_->pool_->queued();
    s.blocking_limit = impl_->admission_ ? impl_->admission_->limit() : 0;
  }
  s.connections_rejected = impl_->connections_rejected_.load();
  s.blocking_rejected = impl_->blocking_rejected_.load();
  return s;
}

}  // namespace errand::http
