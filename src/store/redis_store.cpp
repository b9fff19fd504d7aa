#include "errand/store/redis_store.hpp"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <map>

#include <fmt/format.h>

#include "errand/detail/thread_annotations.hpp"

#include "store/backend_helpers.hpp"
#include "store/redis_client.hpp"
#include "store/redis_scripts.hpp"

namespace errand::store {

namespace {

using redis::Reply;

std::string ms_text(TimePoint t) {
  return std::to_string(t.time_since_epoch().count());
}

std::int64_t to_i64(std::string_view s) {
  std::int64_t v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

TimePoint to_time(std::string_view s) {
  return TimePoint{std::chrono::milliseconds(to_i64(s))};
}

// A NewTask as the scripts read it (redis_scripts.hpp, kTaskArgs).
void push_task(std::vector<std::string>& a, const NewTask& t, bool with_max_waiting = true) {
  a.push_back(t.id);
  a.push_back(t.type);
  a.push_back(t.queue);
  a.push_back(t.payload);
  a.push_back(std::to_string(t.priority));
  a.push_back(ms_text(t.run_at));
  a.push_back(std::to_string(t.max_attempts));
  a.push_back(std::to_string(t.timeout.count()));
  a.push_back(t.unique_key);
  a.push_back(t.traceparent);
  a.push_back(t.request_id);
  a.push_back(t.group_id);
  a.push_back(t.tracestate);
  if (with_max_waiting) a.push_back(std::to_string(t.max_waiting));
}

// A task hash's field/value pairs, from elements [from, end), into a record.
TaskRecord decode(std::string id, const std::vector<Reply>& e, std::size_t from) {
  TaskRecord r;
  r.id = std::move(id);
  for (std::size_t i = from; i + 1 < e.size(); i += 2) {
    const std::string_view f = e[i].str;
    const std::string& v = e[i + 1].str;
    if (f == "y") {
      r.type = v;
    } else if (f == "q") {
      r.queue = v;
    } else if (f == "p") {
      r.payload = v;
    } else if (f == "pr") {
      r.priority = static_cast<int>(to_i64(v));
    } else if (f == "s") {
      r.state = parse_state(v).value_or(TaskState::pending);
    } else if (f == "a") {
      r.attempt = static_cast<int>(to_i64(v));
    } else if (f == "ma") {
      r.max_attempts = static_cast<int>(to_i64(v));
    } else if (f == "r") {
      r.run_at = to_time(v);
    } else if (f == "to") {
      r.timeout = std::chrono::milliseconds(to_i64(v));
    } else if (f == "u") {
      r.unique_key = v;
    } else if (f == "ts") {
      r.tracestate = v;
    } else if (f == "tp") {
      r.traceparent = v;
    } else if (f == "ri") {
      r.request_id = v;
    } else if (f == "g") {
      r.group_id = v;
    } else if (f == "pg") {
      r.progress = static_cast<int>(to_i64(v));
    } else if (f == "pm") {
      r.progress_message = v;
    } else if (f == "res") {
      r.result = v;
    } else if (f == "err") {
      r.last_error = v;
    } else if (f == "c") {
      r.created_at = to_time(v);
    } else if (f == "up") {
      r.updated_at = to_time(v);
    } else if (f == "hist") {
      r.history = detail::history_from_json(v);
    } else if (f == "st") {
      r.started_at = to_time(v);
    } else if (f == "f") {
      r.finished_at = to_time(v);
    } else if (f == "lo") {
      r.lease_owner = v;
    } else if (f == "le") {
      r.lease_expires_at = to_time(v);
    } else if (f == "cr") {
      r.cancel_requested = v == "1";
    } else if (f == "nd") {
      r.node = v;
    }
  }
  return r;
}

// A record as the scripts reply with it: {id, field, value, ...}.
TaskRecord decode_flat(const Reply& r) {
  if (r.elements.empty()) return {};
  return decode(r.elements[0].str, r.elements, 1);
}

// An error reply as the StoreError a caller expects.
[[noreturn]] void throw_reply_error(const Reply& r) {
  const std::string& m = r.str;
  if (const auto at = m.find("ERRAND "); at != std::string::npos) {
    const std::string_view rest = std::string_view(m).substr(at + 7);
    const auto space = rest.find(' ');
    const std::string_view code = rest.substr(0, space);
    const std::string message(space == std::string_view::npos ? "" : rest.substr(space + 1));
    if (code == "invalid") throw StoreError(StoreError::Code::invalid, message);
    if (code == "queue_full") throw StoreError(StoreError::Code::queue_full, message);
  }
  if (m.starts_with("OOM")) {
    throw StoreError(StoreError::Code::full, "redis is out of memory (maxmemory): " + m);
  }
  if (m.starts_with("LOADING") || m.starts_with("BUSY")) {
    throw StoreError(StoreError::Code::busy, "redis is busy: " + m);
  }
  if (m.starts_with("READONLY")) {
    throw StoreError(StoreError::Code::unavailable,
                     "redis: connected to a read-only replica, not the primary: " + m);
  }
  throw StoreError(StoreError::Code::unavailable, "redis: " + m);
}

// enqueue's reply: id, state, created per task. "queue_full <i> <waiting>"
// becomes check_room's message about task i.
std::vector<Enqueued> enqueued(const Reply& r, const std::vector<NewTask>& tasks) {
  if (r.is_error()) {
    if (const auto at = r.str.find("ERRAND queue_full "); at != std::string::npos) {
      unsigned i = 0;
      std::size_t waiting = 0;
      const char* p = r.str.data() + at + 18;
      const char* end = r.str.data() + r.str.size();
      auto [q, ec] = std::from_chars(p, end, i);
      if (ec == std::errc() && q < end) std::from_chars(q + 1, end, waiting);
      if (i >= 1 && i <= tasks.size()) detail::check_room(tasks[i - 1], waiting);
    }
    throw_reply_error(r);
  }
  std::vector<Enqueued> out;
  out.reserve(r.elements.size() / 3);
  for (std::size_t i = 0; i + 2 < r.elements.size(); i += 3) {
    out.push_back({r.elements[i].str,
                   parse_state(r.elements[i + 1].str).value_or(TaskState::pending),
                   r.elements[i + 2].integer == 1});
  }
  return out;
}

// Runs a caller's callback; what it throws goes no further, so that the
// other callers of its batch are answered and the next batch still goes out.
template <typename F>
void answer(F&& f) noexcept {
  try {
    std::forward<F>(f)();
  } catch (...) {  // NOLINT(bugprone-empty-catch): the callback's own failure
  }
}

// Why a batched script call failed as a whole, if it did: the call's error,
// an error reply, or a reply without one element per request. Each caller
// then gets an exception of its own: one exception_ptr shared by callers on
// several threads is a refcount ThreadSanitizer cannot see.
std::optional<StoreError> batch_error(const Reply& r, std::exception_ptr e, std::size_t requests) {
  if (e) {
    try {
      std::rethrow_exception(std::move(e));
    } catch (const StoreError& x) {
      return StoreError(x.code(), x.what());
    } catch (const std::exception& x) {
      return StoreError(StoreError::Code::unavailable, x.what());
    }
  }
  if (r.is_error()) {
    try {
      throw_reply_error(r);
    } catch (const StoreError& x) {
      return StoreError(x.code(), x.what());
    }
  }
  if (r.elements.size() != requests) {
    return StoreError(StoreError::Code::unavailable,
                      fmt::format("redis: a batched script answered {} of {} requests",
                                  r.elements.size(), requests));
  }
  return std::nullopt;
}

// Requests waiting for a batched script call, the way SQLite's group commit
// batches: one call is in flight; what arrives meanwhile waits and goes out
// together in the next one. Thread-safe. Unbounded only in principle: it
// holds what callers have in flight (a worker's completion, a connection's
// enqueue), which their own limits bound.
template <typename T>
class Batches {
 public:
  // Adds a request; true when no call is in flight and the caller must send.
  bool add(T item) {
    const errand::detail::MutexLock lock(mu_);
    items_.push_back(std::move(item));
    if (sending_) return false;
    sending_ = true;
    return true;
  }

  // The next batch: requests in arrival order while their weights stay
  // within `limit` (at least one). Empty, and no call in flight, when none wait.
  template <typename Weight>
  std::vector<T> take(std::size_t limit, Weight weight) {
    const errand::detail::MutexLock lock(mu_);
    std::size_t n = 0;
    std::size_t total = 0;
    while (n < items_.size() && (n == 0 || total + weight(items_[n]) <= limit)) {
      total += weight(items_[n]);
      ++n;
    }
    if (n == 0) sending_ = false;
    const auto end = items_.begin() + static_cast<std::ptrdiff_t>(n);
    std::vector<T> batch(std::make_move_iterator(items_.begin()), std::make_move_iterator(end));
    items_.erase(items_.begin(), end);
    return batch;
  }

 private:
  errand::detail::Mutex mu_;
  std::vector<T> items_ ERRAND_GUARDED_BY(mu_);
  bool sending_ ERRAND_GUARDED_BY(mu_) = false;
};

}  // namespace

struct RedisStore::Impl {
  // A script and its SHA1 as Redis named it when we loaded it.
  struct Loaded {
    const std::string* source = nullptr;
    std::string sha;
  };

  // A complete_async waiting for the batch it will go out in.
  struct Completion {
    std::string id;
    std::string owner;
    std::string result;
    TimePoint now{};
    CompleteDone done;
  };
  // One completion script call carries at most this many tasks.
  static constexpr std::size_t kCompleteBatch = 256;
  // An enqueue_async waiting for the script call it will go out in.
  struct Enqueue {
    std::vector<NewTask> tasks;
    TimePoint now{};
    EnqueueDone done;
  };
  // One enqueue script call carries requests until it holds this many tasks.
  static constexpr std::size_t kEnqueueBatch = 512;

  explicit Impl(RedisOptions o)
      : options(std::move(o)),
        prefix("{" + options.key_prefix + "}"),
        client(redis::ClientOptions{.endpoint = options.endpoint,
                                    .connections = options.connections,
                                    .command_timeout = options.command_timeout,
                                    .connect_timeout = options.connect_timeout,
                                    .logger = options.logger}) {}

  RedisOptions options;
  std::string prefix;
  Batches<Enqueue> enqueues;
  Batches<Completion> completions;
  Loaded enqueue, enqueue_group, claim, extend_leases, complete, fail, release, finish_cancelled,
      set_progress, cancel, retry, remove, list, queues, reclaim_expired, purge_final, group,
      fire_schedule, nodes;
  // Last, so destroyed first: it fails what is in flight and joins its thread,
  // and those last callbacks (which send the next batch) still find every
  // member above.
  redis::Client client;

  void load_scripts() {
    const auto& s = redis::scripts();
    const std::pair<Loaded*, const std::string*> all[] = {
        {&enqueue, &s.enqueue},
        {&enqueue_group, &s.enqueue_group},
        {&claim, &s.claim},
        {&extend_leases, &s.extend_leases},
        {&complete, &s.complete},
        {&fail, &s.fail},
        {&release, &s.release},
        {&finish_cancelled, &s.finish_cancelled},
        {&set_progress, &s.set_progress},
        {&cancel, &s.cancel},
        {&retry, &s.retry},
        {&remove, &s.remove},
        {&list, &s.list},
        {&queues, &s.queues},
        {&reclaim_expired, &s.reclaim_expired},
        {&purge_final, &s.purge_final},
        {&group, &s.group},
        {&fire_schedule, &s.fire_schedule},
        {&nodes, &s.nodes},
    };
    for (const auto& [loaded, source] : all) {
      loaded->source = source;
      loaded->sha = call({"SCRIPT", "LOAD", *source}).str;
    }
  }

  // EVALSHA sha 1 prefix now args...
  std::vector<std::string> args(const Loaded& s, TimePoint now, std::size_t extra = 0) const {
    std::vector<std::string> a;
    a.reserve(5 + extra);
    a.insert(a.end(), {"EVALSHA", s.sha, "1", prefix, ms_text(now)});
    return a;
  }

  // One command, waited for; an error reply is thrown as its StoreError.
  Reply call(std::vector<std::string> a, std::string script_source = {}) {
    Reply r = client.call(std::move(a), std::move(script_source));
    if (r.is_error()) throw_reply_error(r);
    return r;
  }

  Reply run(const Loaded& s, std::vector<std::string> a) { return call(std::move(a), *s.source); }

  bool run_bool(const Loaded& s, std::vector<std::string> a) {
    return run(s, std::move(a)).integer == 1;
  }

  std::string key(std::string_view name) const { return prefix + ":" + std::string(name); }

  void add_enqueue(Enqueue e) {
    if (enqueues.add(std::move(e))) send_enqueues();
  }

  // Sends the next batch of requests, if any wait.
  void send_enqueues() {
    auto batch = enqueues.take(kEnqueueBatch, [](const Enqueue& e) { return e.tasks.size(); });
    if (batch.empty()) return;
    TimePoint now{};
    std::size_t tasks = 0;
    for (const auto& e : batch) {
      now = std::max(now, e.now);
      tasks += e.tasks.size();
    }
    auto a = args(enqueue, now, 1 + batch.size() + tasks * redis::kTaskArgs);
    a.push_back(std::to_string(batch.size()));
    for (const auto& e : batch) {
      a.push_back(std::to_string(e.tasks.size()));
      for (const auto& t : e.tasks) push_task(a, t);
    }
    client.command(
        std::move(a),
        [this, batch = std::move(batch)](const Reply& r, std::exception_ptr e) {
          const auto error = batch_error(r, std::move(e), batch.size());
          for (std::size_t i = 0; i < batch.size(); ++i) {
            if (error) {
              answer([&] { batch[i].done({}, std::make_exception_ptr(*error)); });
              continue;
            }
            std::vector<Enqueued> out;
            std::optional<StoreError> refused;
            try {
              out = enqueued(r.elements[i], batch[i].tasks);
            } catch (const StoreError& x) {
              refused.emplace(x.code(), x.what());
            }
            if (refused) {
              answer([&] { batch[i].done({}, std::make_exception_ptr(*refused)); });
            } else {
              answer([&] { batch[i].done(std::move(out), nullptr); });
            }
          }
          send_enqueues();
        },
        *enqueue.source);
  }

  void add_completion(Completion c) {
    if (completions.add(std::move(c))) send_completions();
  }

  // Sends the next batch of completions, if any wait.
  void send_completions() {
    auto batch = completions.take(kCompleteBatch, [](const Completion&) { return std::size_t{1}; });
    if (batch.empty()) return;
    TimePoint now{};
    for (const auto& c : batch) now = std::max(now, c.now);
    auto a = args(complete, now, 1 + batch.size() * 3);
    a.push_back(std::to_string(batch.size()));
    for (auto& c : batch) {
      a.push_back(c.id);
      a.push_back(c.owner);
      a.push_back(std::move(c.result));
    }
    client.command(
        std::move(a),
        [this, batch = std::move(batch)](const Reply& r, std::exception_ptr e) {
          const auto error = batch_error(r, std::move(e), batch.size());
          for (std::size_t i = 0; i < batch.size(); ++i) {
            if (error) {
              answer([&] { batch[i].done(false, std::make_exception_ptr(*error)); });
            } else {
              answer([&] { batch[i].done(r.elements[i].integer == 1, nullptr); });
            }
          }
          send_completions();
        },
        *complete.source);
  }
};

RedisStore::RedisStore(RedisOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {
  if (!impl_->client.wait_connected(impl_->options.connect_timeout)) {
    const auto why = impl_->client.last_error();
    throw StoreError(StoreError::Code::unavailable,
                     fmt::format("redis at {} is unreachable{}{}",
                                 redacted(impl_->options.endpoint), why.empty() ? "" : ": ", why));
  }
  impl_->load_scripts();
  // Earlier builds of this store kept a deployment-wide id index (~115 B a
  // task); nothing reads or trims it now.
  impl_->call({"UNLINK", impl_->key("ids")});
}

RedisStore::~RedisStore() = default;

bool RedisStore::reachable() const {
  return impl_->client.connected();
}

StoreHealth RedisStore::health() const {
  if (impl_->client.connected()) return {};
  const auto why = impl_->client.last_error();
  return {false, fmt::format("redis at {} is unreachable{}{}", redacted(impl_->options.endpoint),
                             why.empty() ? "" : ": ", why)};
}

std::vector<std::string> RedisStore::durability_warnings() {
  std::vector<std::string> out;
  const Reply info = impl_->client.call({"INFO", "persistence"});
  if (info.is_error()) return out;
  const bool aof = info.str.find("aof_enabled:1") != std::string::npos;
  std::string fsync;
  std::string save;
  const Reply c1 = impl_->client.call({"CONFIG", "GET", "appendfsync"});
  if (!c1.is_error() && c1.elements.size() == 2) fsync = c1.elements[1].str;
  const Reply c2 = impl_->client.call({"CONFIG", "GET", "save"});
  const bool save_known = !c2.is_error() && c2.elements.size() == 2;
  if (save_known) save = c2.elements[1].str;
  if (!aof && save_known && save.empty()) {
    out.emplace_back(
        "redis has no persistence (appendonly no, save \"\"): a Redis restart loses every task");
  } else if (!aof) {
    out.emplace_back(
        "redis has no AOF (appendonly no): a Redis crash loses the tasks acknowledged since its "
        "last RDB snapshot; set appendonly yes");
  } else if (fsync == "everysec") {
    out.emplace_back(
        "redis AOF fsyncs every second (appendfsync everysec): a power cut may lose up to a "
        "second of acknowledged tasks; appendfsync always closes that window");
  } else if (fsync == "no") {
    out.emplace_back(
        "redis AOF leaves fsync to the OS (appendfsync no): a power cut may lose the last ~30 s "
        "of acknowledged tasks");
  }
  return out;
}

std::vector<Enqueued> RedisStore::enqueue(std::vector<NewTask> tasks, TimePoint now) {
  if (tasks.empty()) return {};
  auto a = impl_->args(impl_->enqueue, now, 2 + tasks.size() * redis::kTaskArgs);
  a.emplace_back("1");
  a.push_back(std::to_string(tasks.size()));
  for (const auto& t : tasks) push_task(a, t);
  const Reply r = impl_->run(impl_->enqueue, std::move(a));
  if (r.elements.size() != 1) throw_reply_error(r);
  return enqueued(r.elements[0], tasks);
}

void RedisStore::enqueue_async(std::vector<NewTask> tasks, TimePoint now, EnqueueDone done) {
  if (tasks.empty()) {
    done({}, nullptr);
    return;
  }
  impl_->add_enqueue({std::move(tasks), now, std::move(done)});
}

std::vector<Enqueued> RedisStore::enqueue_group(GroupSpec group, std::vector<NewTask> members,
                                                TimePoint now) {
  auto a = impl_->args(impl_->enqueue_group, now, 16 + members.size() * redis::kTaskArgs);
  a.push_back(group.id);
  a.emplace_back(group.completion ? "1" : "0");
  NewTask completion = group.completion.value_or(NewTask{});
  completion.group_id.clear();
  push_task(a, completion, false);
  a.push_back(std::to_string(members.size()));
  for (auto& t : members) {
    t.group_id = group.id;
    t.unique_key.clear();  // a member must belong to this group, not to an earlier task
    push_task(a, t);
  }
  const Reply r = impl_->client.call(std::move(a), *impl_->enqueue_group.source);
  return enqueued(r, members);
}

std::vector<TaskRecord> RedisStore::claim(std::string_view queue, std::size_t max,
                                          const Lease& lease, TimePoint now) {
  auto a = impl_->args(impl_->claim, now, 5);
  a.emplace_back(queue);
  a.push_back(std::to_string(max));
  a.push_back(lease.owner);
  a.push_back(ms_text(lease.expires_at));
  a.push_back(lease.node.empty() ? lease.owner : lease.node);
  const Reply r = impl_->run(impl_->claim, std::move(a));
  std::vector<TaskRecord> out;
  out.reserve(r.elements.size());
  for (const auto& e : r.elements) out.push_back(decode_flat(e));
  return out;
}

HeartbeatResult RedisStore::extend_leases(const std::vector<std::string>& ids, const Lease& lease,
                                          TimePoint now) {
  HeartbeatResult out;
  if (ids.empty()) return out;
  auto a = impl_->args(impl_->extend_leases, now, 2 + ids.size());
  a.push_back(lease.owner);
  a.push_back(ms_text(lease.expires_at));
  a.insert(a.end(), ids.begin(), ids.end());
  const Reply r = impl_->run(impl_->extend_leases, std::move(a));
  if (r.elements.size() == 2) {
    for (const auto& e : r.elements[0].elements) out.cancel_requested.push_back(e.str);
    for (const auto& e : r.elements[1].elements) out.lost.push_back(e.str);
  }
  return out;
}

bool RedisStore::complete(std::string_view id, std::string_view owner, std::string result_json,
                          TimePoint now) {
  auto a = impl_->args(impl_->complete, now, 4);
  a.emplace_back("1");
  a.emplace_back(id);
  a.emplace_back(owner);
  a.push_back(std::move(result_json));
  const Reply r = impl_->run(impl_->complete, std::move(a));
  return !r.elements.empty() && r.elements[0].integer == 1;
}

void RedisStore::complete_async(std::string_view id, std::string_view owner,
                                std::string result_json, TimePoint now, CompleteDone done) {
  impl_->add_completion(
      {std::string(id), std::string(owner), std::move(result_json), now, std::move(done)});
}

bool RedisStore::fail(std::string_view id, std::string_view owner, std::string error,
                      std::optional<TimePoint> retry_at, TimePoint now) {
  auto a = impl_->args(impl_->fail, now, 4);
  a.emplace_back(id);
  a.emplace_back(owner);
  a.push_back(std::move(error));
  a.push_back(retry_at ? ms_text(*retry_at) : std::string());
  return impl_->run_bool(impl_->fail, std::move(a));
}

bool RedisStore::release(std::string_view id, std::string_view owner, TimePoint run_at,
                         TimePoint now) {
  auto a = impl_->args(impl_->release, now, 3);
  a.emplace_back(id);
  a.emplace_back(owner);
  a.push_back(ms_text(run_at));
  return impl_->run_bool(impl_->release, std::move(a));
}

bool RedisStore::finish_cancelled(std::string_view id, std::string_view owner, TimePoint now) {
  auto a = impl_->args(impl_->finish_cancelled, now, 2);
  a.emplace_back(id);
  a.emplace_back(owner);
  return impl_->run_bool(impl_->finish_cancelled, std::move(a));
}

bool RedisStore::set_progress(std::string_view id, std::string_view owner, int percent,
                              std::string message, TimePoint now) {
  auto a = impl_->args(impl_->set_progress, now, 4);
  a.emplace_back(id);
  a.emplace_back(owner);
  a.push_back(std::to_string(std::clamp(percent, 0, 100)));
  a.push_back(std::move(message));
  return impl_->run_bool(impl_->set_progress, std::move(a));
}

CancelResult RedisStore::cancel(std::string_view id, TimePoint now) {
  auto a = impl_->args(impl_->cancel, now, 1);
  a.emplace_back(id);
  const std::string s = impl_->run(impl_->cancel, std::move(a)).str;
  if (s == "cancelled") return CancelResult::cancelled;
  if (s == "requested") return CancelResult::requested;
  if (s == "final") return CancelResult::final;
  return CancelResult::not_found;
}

bool RedisStore::retry(std::string_view id, TimePoint now) {
  auto a = impl_->args(impl_->retry, now, 1);
  a.emplace_back(id);
  return impl_->run_bool(impl_->retry, std::move(a));
}

bool RedisStore::remove(std::string_view id) {
  auto a = impl_->args(impl_->remove, TimePoint{}, 1);
  a.emplace_back(id);
  return impl_->run_bool(impl_->remove, std::move(a));
}

std::optional<TaskRecord> RedisStore::get(std::string_view id) {
  const Reply r = impl_->call({"HGETALL", impl_->key("t:") + std::string(id)});
  if (r.elements.empty()) return std::nullopt;
  return decode(std::string(id), r.elements, 0);
}

std::optional<TaskRecord> RedisStore::holder_of(std::string_view unique_key) {
  const Reply id = impl_->call({"HGET", impl_->key("unique"), std::string(unique_key)});
  if (id.str.empty()) return std::nullopt;
  // The task may have finished (and let go of the key) between the calls.
  auto r = get(id.str);
  if (!r || r->unique_key != unique_key || is_final(r->state)) return std::nullopt;
  return r;
}

std::optional<GroupInfo> RedisStore::group(std::string_view id) {
  auto a = impl_->args(impl_->group, TimePoint{}, 1);
  a.emplace_back(id);
  const Reply r = impl_->run(impl_->group, std::move(a));
  if (r.type != Reply::Type::array || r.elements.size() < 4) return std::nullopt;
  const auto number = [](const Reply& e) {
    return static_cast<std::size_t>(std::strtoull(e.str.c_str(), nullptr, 10));
  };
  GroupInfo g{.id = std::string(id),
              .size = number(r.elements[0]),
              .remaining = number(r.elements[1]),
              .completion_id = r.elements[2].str};
  if (!r.elements[3].str.empty()) {
    g.finished_at = TimePoint(std::chrono::milliseconds(std::stoll(r.elements[3].str)));
  }
  for (std::size_t i = 4; i + 1 < r.elements.size(); i += 2) {
    if (auto state = parse_state(r.elements[i].str)) g.members[*state] = number(r.elements[i + 1]);
  }
  return g;
}

std::optional<std::string> RedisStore::group_awaiting(std::string_view task_id) {
  const Reply r = impl_->call({"HGET", impl_->key("awaiting"), std::string(task_id)});
  if (r.str.empty()) return std::nullopt;
  return r.str;
}

Page RedisStore::list(const ListQuery& query) {
  // The script scans a bounded number of ids per call, so a sparse filter
  // never holds Redis long; we call it again from where it stopped.
  constexpr std::size_t kScanBudget = 2000;
  Page page;
  std::vector<TaskRecord> found;
  std::string from = query.cursor;
  const std::size_t wanted = query.limit + 1;  // one more tells whether there is a next page
  constexpr std::size_t kCalls = kListScanBudget / kScanBudget;  // calls a page may take
  std::size_t calls = 0;
  while (found.size() < wanted) {
    auto a = impl_->args(impl_->list, TimePoint{}, 6);
    a.push_back(query.queue.value_or(""));
    a.push_back(query.state ? std::string(to_string(*query.state)) : std::string());
    a.push_back(query.type.value_or(""));
    a.push_back(from);
    a.push_back(std::to_string(wanted - found.size()));
    a.push_back(std::to_string(kScanBudget));
    const Reply r = impl_->run(impl_->list, std::move(a));
    if (r.elements.empty()) break;
    for (std::size_t i = 1; i < r.elements.size(); ++i) found.push_back(decode_flat(r.elements[i]));
    from = r.elements[0].str;
    if (from.empty()) break;  // the index is exhausted
    if (++calls == kCalls && found.size() < wanted) {
      // As SQLite's: a bounded page; the next goes on from the last id seen.
      page.tasks = std::move(found);
      page.next_cursor = from;
      return page;
    }
  }
  if (found.size() > query.limit) {
    found.resize(query.limit);
    if (!found.empty()) page.next_cursor = found.back().id;
  }
  page.tasks = std::move(found);
  return page;
}

std::vector<QueueInfo> RedisStore::queues() {
  const Reply r = impl_->run(impl_->queues, impl_->args(impl_->queues, TimePoint{}));
  std::map<std::string, QueueInfo, std::less<>> by_name;
  for (const auto& row : r.elements) {
    if (row.elements.size() < 2) continue;
    QueueInfo& q = by_name[row.elements[0].str];
    q.paused = row.elements[1].integer == 1;
    for (std::size_t i = 2; i + 1 < row.elements.size(); i += 2) {
      if (const auto s = parse_state(row.elements[i].str)) {
        q.count(*s) =
            static_cast<std::size_t>(std::max<std::int64_t>(0, to_i64(row.elements[i + 1].str)));
      }
    }
  }
  return detail::queue_list(std::move(by_name));
}

std::size_t RedisStore::reclaim_expired(TimePoint now) {
  std::size_t total = 0;
  for (;;) {
    const auto n = static_cast<std::size_t>(
        impl_->run(impl_->reclaim_expired, impl_->args(impl_->reclaim_expired, now)).integer);
    total += n;
    if (n < static_cast<std::size_t>(redis::kSweepBatch)) return total;
  }
}

std::size_t RedisStore::purge_final(TimePoint cutoff, std::size_t max) {
  if (max == 0) return 0;
  auto a = impl_->args(impl_->purge_final, TimePoint{}, 2);
  a.push_back(ms_text(cutoff));
  a.push_back(std::to_string(max));
  return static_cast<std::size_t>(impl_->run(impl_->purge_final, std::move(a)).integer);
}

void RedisStore::set_paused(std::string_view queue, bool paused) {
  impl_->call({paused ? "SADD" : "SREM", impl_->key("paused"), std::string(queue)});
}

bool RedisStore::fire_schedule(std::string_view schedule, TimePoint tick, NewTask task,
                               TimePoint now) {
  auto a = impl_->args(impl_->fire_schedule, now, 2 + redis::kTaskArgs);
  a.emplace_back(schedule);
  a.push_back(ms_text(tick));
  push_task(a, task);
  return impl_->run_bool(impl_->fire_schedule, std::move(a));
}

std::vector<std::pair<std::string, TimePoint>> RedisStore::schedule_ticks() {
  const Reply r = impl_->call({"HGETALL", impl_->key("schedules")});
  std::vector<std::pair<std::string, TimePoint>> out;
  for (std::size_t i = 0; i + 1 < r.elements.size(); i += 2) {
    out.emplace_back(r.elements[i].str, to_time(r.elements[i + 1].str));
  }
  std::sort(out.begin(), out.end());
  return out;
}

void RedisStore::heartbeat_node(const NodeInfo& node) {
  // Two keys, one small script (atomic): the info and the time it was seen.
  constexpr const char* kScript =
      "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])";
  impl_->call({"EVAL", kScript, "2", impl_->key("nodes"), impl_->key("nodes:seen"), node.id,
               detail::node_to_json(node), ms_text(node.last_seen)});
}

void RedisStore::remove_node(std::string_view id) {
  constexpr const char* kRemoveScript =
      "redis.call('HDEL', KEYS[1], ARGV[1]) redis.call('ZREM', KEYS[2], ARGV[1])";
  impl_->call(
      {"EVAL", kRemoveScript, "2", impl_->key("nodes"), impl_->key("nodes:seen"), std::string(id)});
}

std::vector<NodeInfo> RedisStore::nodes(TimePoint now, std::chrono::milliseconds silence) {
  auto a = impl_->args(impl_->nodes, now, 1);
  a.push_back(ms_text(now - silence));
  const Reply r = impl_->run(impl_->nodes, std::move(a));
  std::vector<NodeInfo> out;
  for (const auto& e : r.elements) {
    if (e.type == Reply::Type::string) out.push_back(detail::node_from_json(e.str));
  }
  return out;
}

}  // namespace errand::store
