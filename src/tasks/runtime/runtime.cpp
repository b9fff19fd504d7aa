// The public Runtime: construction (configuration checks), the calls that
// forward to one room, and what is shared by all of them. See runtime_impl.hpp
// for the map of the rooms.
#include "errand/tasks/runtime.hpp"

#include <unistd.h>

#include <array>
#include <stdexcept>

#include <fmt/format.h>

#include "tasks/runtime/runtime_impl.hpp"

namespace errand::tasks {

std::string_view to_string(EnqueueError::Code code) {
  constexpr std::array<std::string_view, 4> names = {"unknown_type", "invalid_payload",
                                                     "payload_too_large", "invalid_option"};
  return names.at(static_cast<std::size_t>(code));
}

std::string Runtime::default_owner() {
  std::array<char, 256> host{};
  if (gethostname(host.data(), host.size() - 1) != 0) host[0] = '\0';
  return fmt::format("{}:{}:{}", host.data(), getpid(), observe::random_hex(4));
}

Runtime::Impl::Impl(std::shared_ptr<store::Store> s, RuntimeConfig c)
    : store(std::move(s)), cfg(std::move(c)), clock(cfg.clock) {
  if (!store) throw std::invalid_argument("runtime: no store");
  if (!clock) clock = SystemClock::shared();
  owner = cfg.owner.empty() ? Runtime::default_owner() : cfg.owner;
  for (const auto& q : cfg.queues) {
    if (!valid_name(q.name))
      throw std::invalid_argument("runtime: bad queue name '" + q.name + "'");
    if (q.concurrency == 0) {
      throw std::invalid_argument("runtime: queue '" + q.name + "' needs at least one worker");
    }
    if (q.weight == 0) throw std::invalid_argument("runtime: queue '" + q.name + "' has weight 0");
    for (const auto& other : queues) {
      if (other->cfg.name == q.name) {
        throw std::invalid_argument("runtime: queue '" + q.name + "' is listed twice");
      }
    }
    auto queue = std::make_unique<Queue>();
    queue->cfg = q;
    queues.push_back(std::move(queue));
  }
  if (cfg.lease < milliseconds(3)) throw std::invalid_argument("runtime: lease too short");
  if (cfg.claim_batch == 0) cfg.claim_batch = 1;
}

void Runtime::Impl::async_started() {
  const MutexLock lock(mu);
  ++pending_async;
}

// The callback's last act: after it the runtime may be destroyed.
void Runtime::Impl::async_done_locked() {
  --pending_async;
  drained_cv.notify_all();
}

void Runtime::Impl::wait_async() {
  MutexLock lock(mu);
  while (!lock.wait_for(drained_cv, cfg.stuck_after,
                        [&]() ERRAND_REQUIRES(mu) { return pending_async == 0; })) {
    cfg.logger.warn("waiting for the store to answer", {{"operations", pending_async}});
  }
}

Runtime::Impl::Queue* Runtime::Impl::find_queue(std::string_view name) {
  for (auto& q : queues) {
    if (q->cfg.name == name) return q.get();
  }
  return nullptr;
}

void Runtime::Impl::poke_dispatcher() {
  {
    const MutexLock lock(mu);
    wake = true;
  }
  dispatcher_cv.notify_one();
}

Runtime::Runtime(std::shared_ptr<store::Store> store, RuntimeConfig config)
    : impl_(std::make_unique<Impl>(std::move(store), std::move(config))) {}

Runtime::~Runtime() {
  stop();
  impl_->wait_async();  // enqueue_async callbacks may come without a start()
}

Registry& Runtime::registry() {
  return impl_->registry;
}

store::CancelResult Runtime::cancel(std::string_view id) {
  const auto result = impl_->store->cancel(id, impl_->now());
  if (result == store::CancelResult::requested) {
    impl_->stop_local({std::string(id)}, StopReason::cancelled);
  }
  return result;
}

bool Runtime::retry(std::string_view id) {
  const bool ok = impl_->store->retry(id, impl_->now());
  if (ok) impl_->poke_dispatcher();
  return ok;
}

const std::vector<QueueConfig>& Runtime::queues() const {
  return impl_->cfg.queues;
}

void Runtime::pause(std::string_view queue) {
  impl_->store->set_paused(queue, true);
}
void Runtime::resume(std::string_view queue) {
  impl_->store->set_paused(queue, false);
  impl_->poke_dispatcher();
}

store::Store& Runtime::store() {
  return *impl_->store;
}
const std::string& Runtime::owner() const {
  return impl_->owner;
}

std::vector<store::NodeInfo> Runtime::nodes() const {
  return impl_->store->nodes(impl_->now(), impl_->cfg.node_silence);
}

store::NodeInfo Runtime::Impl::node_info(TimePoint at) const {
  store::NodeInfo n{.id = owner,
                    .role = cfg.role,
                    .version = ERRAND_VERSION,
                    .started_at = started_at,
                    .last_seen = at};
  if (cfg.node_stats) n.stats = cfg.node_stats();
  // Schedules are fixed at start, before the maintenance thread runs.
  for (const auto& s : schedules) n.schedules.push_back(published(s));
  const MutexLock lock(mu);
  for (const auto& q : queues) n.queues.push_back({q->cfg.name, q->cfg.concurrency, q->busy});
  return n;
}

std::size_t Runtime::busy(std::string_view queue) const {
  const Impl::MutexLock lock(impl_->mu);
  for (const auto& q : impl_->queues) {
    if (q->cfg.name == queue) return q->busy;
  }
  return 0;
}

}  // namespace errand::tasks
