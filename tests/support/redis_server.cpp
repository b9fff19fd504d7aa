#include "support/redis_server.hpp"

#include <hiredis/hiredis.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <vector>

#include "support/wait.hpp"

namespace errand::test {

namespace {

constexpr const char* kRedisServer = "/usr/bin/redis-server";

struct ContextDeleter {
  void operator()(redisContext* c) const { redisFree(c); }
};
struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};

}  // namespace

RedisServer::RedisServer(Options options) : options_(options) {
  if (!std::filesystem::exists(kRedisServer)) {
    throw std::runtime_error("redis-server is not installed (scripts/bootstrap installs it)");
  }
  // A free port may be taken between our look and Redis's bind: try a few.
  for (int attempt = 0; attempt < 5 && !process_; ++attempt) {
    port_ = free_port();
    try {
      launch();
    } catch (const std::runtime_error&) {
      if (attempt == 4) throw;
    }
  }
}

RedisServer::~RedisServer() {
  if (process_) process_->kill_now();
}

std::string RedisServer::url() const {
  return "redis://127.0.0.1:" + std::to_string(port_);
}

void RedisServer::launch() {
  std::vector<std::string> argv = {kRedisServer, "--port", std::to_string(port_), "--bind",
                                   "127.0.0.1", "--dir", dir_.path().string(), "--logfile",
                                   (dir_.path() / "redis.log").string(), "--save",
                                   "",  // no RDB snapshots: tests choose AOF or nothing
                                   "--daemonize", "no", "--protected-mode", "yes",
                                   // DEBUG SLEEP: a Redis that stops answering for a while
                                   "--enable-debug-command", "local"};
  if (options_.append_only) {
    argv.insert(argv.end(), {"--appendonly", "yes", "--appendfsync", "always"});
  }
  process_ = std::make_unique<ChildProcess>(argv, dir_.path() / "redis.stderr");
  if (!process_->started() || !eventually([this] { return answers(); }, 30s)) {
    std::ifstream in(dir_.path() / "redis.log");
    const std::string log((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    process_.reset();
    throw std::runtime_error("redis-server did not start on port " + std::to_string(port_) + ": " +
                             log);
  }
}

bool RedisServer::answers() const {
  timeval timeout{1, 0};
  std::unique_ptr<redisContext, ContextDeleter> c(
      redisConnectWithTimeout("127.0.0.1", port_, timeout));
  if (!c || c->err != 0) return false;
  std::unique_ptr<redisReply, ReplyDeleter> r(
      static_cast<redisReply*>(redisCommand(c.get(), "PING")));
  return r && r->type == REDIS_REPLY_STATUS && std::string(r->str, r->len) == "PONG";
}

void RedisServer::stop() {
  if (!process_) return;
  (void)process_->terminate();
  process_.reset();
}

void RedisServer::kill() {
  if (!process_) return;
  process_->kill_now();
  process_.reset();
}

void RedisServer::start() {
  if (process_) return;
  launch();
}

std::optional<std::string> RedisServer::command(const std::string& format_and_args) const {
  timeval timeout{5, 0};
  std::unique_ptr<redisContext, ContextDeleter> c(
      redisConnectWithTimeout("127.0.0.1", port_, timeout));
  if (!c || c->err != 0) {
    throw std::runtime_error("redis at port " + std::to_string(port_) + " is unreachable" +
                             (c ? std::string(": ") + c->errstr : std::string()));
  }
  std::unique_ptr<redisReply, ReplyDeleter> r(
      static_cast<redisReply*>(redisCommand(c.get(), format_and_args.c_str())));
  if (!r) throw std::runtime_error(std::string("redis: ") + c->errstr);
  switch (r->type) {
    case REDIS_REPLY_NIL: return std::nullopt;
    case REDIS_REPLY_ERROR: throw std::runtime_error("redis: " + std::string(r->str, r->len));
    case REDIS_REPLY_INTEGER: return std::to_string(r->integer);
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS: return std::string(r->str, r->len);
    default: return std::string("(") + std::to_string(r->elements) + " elements)";
  }
}

}  // namespace errand::test
