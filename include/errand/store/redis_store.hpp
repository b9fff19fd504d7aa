#pragma once
// RedisStore: tasks in Redis, shared by several errand processes (nodes).
//
// * Every transition that touches more than one key is one Lua script
//   (EVALSHA; sent again as EVAL when Redis lost its script cache), so each is
//   atomic, and several nodes may claim, complete and cancel side by side.
// * Every key of a deployment carries one hash tag, "{<key_prefix>}": the
//   scripts span queues (ids, unique keys, groups, schedules), so a
//   deployment lives in one Redis Cluster slot. Several deployments share a
//   Redis (or spread over a Cluster) through different prefixes.
// * Connections: a small pool on a thread of the store's own, driven by Asio;
//   commands pipeline. enqueue_async and complete_async never block their
//   caller; the other methods wait for Redis's answer, which comes within
//   `command_timeout` or fails.
// * Errors: Redis unreachable, a reply past `command_timeout`, a replica
//   (READONLY) → StoreError{unavailable}; Redis out of memory (OOM) →
//   StoreError{full}; Redis still loading its data → StoreError{busy}. The
//   connections come back by themselves when Redis does (backoff up to 2 s).
// * Durability is Redis's: a write is acknowledged once Redis applied it; with
//   `appendfsync always` it is on disk, with `everysec` up to a second of
//   acknowledged writes can be lost on a power cut, with no AOF a restart
//   loses everything since the last RDB snapshot (docs/operations.md).
//
// Thread-safe. Construction throws StoreError{unavailable} when Redis cannot
// be reached within `connect_timeout` (or refuses AUTH/SELECT).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "errand/observe/logger.hpp"
#include "errand/store/store.hpp"

namespace errand::store {

// Where Redis is: redis://[[user]:password@]host[:port][/db].
struct RedisEndpoint {
  std::string host = "127.0.0.1";
  std::uint16_t port = 6379;
  std::string user{};  // empty: AUTH with the password alone (or none)
  std::string password{};
  int db = 0;

  friend bool operator==(const RedisEndpoint&, const RedisEndpoint&) = default;
};

// Parses a redis:// URL (percent-escapes in user and password are decoded).
// Throws std::invalid_argument naming what is wrong; rediss:// is refused:
// this build's hiredis (0.14) has no TLS.
[[nodiscard]] RedisEndpoint parse_redis_url(std::string_view url);
// True when `spec` names a Redis store (redis:// or rediss://).
[[nodiscard]] bool is_redis_url(std::string_view spec);
// The URL without its password, for logs.
[[nodiscard]] std::string redacted(const RedisEndpoint& endpoint);

struct RedisOptions {
  RedisEndpoint endpoint{};
  // Prefix of every key; one deployment's. Several deployments on one Redis
  // use different prefixes.
  std::string key_prefix = "errand";
  std::size_t connections = 2;  // pooled connections (each pipelines)
  std::chrono::milliseconds command_timeout{2000};
  std::chrono::milliseconds connect_timeout{2000};
  observe::Logger logger = observe::Logger::null();  // connection losses and returns
};

class RedisStore final : public Store {
 public:
  explicit RedisStore(RedisOptions options);
  ~RedisStore() override;

  // True while some connection to Redis is up.
  [[nodiscard]] bool reachable() const;
  // Not ready while no connection to Redis is up, with the last error.
  [[nodiscard]] StoreHealth health() const override;
  // What Redis's persistence settings mean for acknowledged tasks, as
  // warnings for the operator (empty when AOF with fsync always is on).
  [[nodiscard]] std::vector<std::string> durability_warnings();

  using Store::enqueue;
  std::vector<Enqueued> enqueue(std::vector<NewTask> tasks, TimePoint now) override;
  // Batched like complete_async (up to 512 tasks per script call); each
  // request is stored or refused on its own. `done` runs on the store's
  // connection thread.
  void enqueue_async(std::vector<NewTask> tasks, TimePoint now, EnqueueDone done) override;
  // Batched like SQLite's group commit: one script call in flight at a time
  // carries every completion that arrived while the last one was out (up to
  // 256). `done` runs on the store's connection thread.
  void complete_async(std::string_view id, std::string_view owner, std::string result_json,
                      TimePoint now, CompleteDone done) override;
  std::vector<Enqueued> enqueue_group(GroupSpec group, std::vector<NewTask> members,
                                      TimePoint now) override;
  std::vector<TaskRecord> claim(std::string_view queue, std::size_t max, const Lease& lease,
                                TimePoint now) override;
  HeartbeatResult extend_leases(const std::vector<std::string>& ids, const Lease& lease,
                                TimePoint now) override;
  bool complete(std::string_view id, std::string_view owner, std::string result_json,
                TimePoint now) override;
  bool fail(std::string_view id, std::string_view owner, std::string error,
            std::optional<TimePoint> retry_at, TimePoint now) override;
  bool release(std::string_view id, std::string_view owner, TimePoint run_at,
               TimePoint now) override;
  bool finish_cancelled(std::string_view id, std::string_view owner, TimePoint now) override;
  bool set_progress(std::string_view id, std::string_view owner, int percent, std::string message,
                    TimePoint now) override;
  CancelResult cancel(std::string_view id, TimePoint now) override;
  bool retry(std::string_view id, TimePoint now) override;
  bool remove(std::string_view id) override;
  std::optional<TaskRecord> get(std::string_view id) override;
  std::optional<TaskRecord> holder_of(std::string_view unique_key) override;
  std::optional<GroupInfo> group(std::string_view id) override;
  std::optional<std::string> group_awaiting(std::string_view task_id) override;
  Page list(const ListQuery& query) override;
  std::vector<QueueInfo> queues() override;
  std::size_t reclaim_expired(TimePoint now) override;
  std::size_t purge_final(TimePoint cutoff, std::size_t max) override;
  void set_paused(std::string_view queue, bool paused) override;
  bool fire_schedule(std::string_view schedule, TimePoint tick, NewTask task,
                     TimePoint now) override;
  std::vector<std::pair<std::string, TimePoint>> schedule_ticks() override;
  void heartbeat_node(const NodeInfo& node) override;
  void remove_node(std::string_view id) override;
  std::vector<NodeInfo> nodes(TimePoint now, std::chrono::milliseconds silence) override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace errand::store
