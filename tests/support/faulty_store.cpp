#include "support/faulty_store.hpp"

#include <string>

namespace errand::test {

using store::StoreError;

void FaultyStore::fail_nth(Call call, std::size_t n) {
  const std::lock_guard lock(mu_);
  auto& p = plans_.at(static_cast<std::size_t>(call));
  p.fail_at = p.calls + n;
  p.from_then_on = false;
}

void FaultyStore::fail_from(Call call, std::size_t n) {
  const std::lock_guard lock(mu_);
  auto& p = plans_.at(static_cast<std::size_t>(call));
  p.fail_at = p.calls + n;
  p.from_then_on = true;
}

void FaultyStore::heal(Call call) {
  const std::lock_guard lock(mu_);
  plans_.at(static_cast<std::size_t>(call)).fail_at = 0;
}

std::size_t FaultyStore::calls(Call call) const {
  const std::lock_guard lock(mu_);
  return plans_.at(static_cast<std::size_t>(call)).calls;
}

std::size_t FaultyStore::failures(Call call) const {
  const std::lock_guard lock(mu_);
  return plans_.at(static_cast<std::size_t>(call)).failures;
}

void FaultyStore::enter(Call call) {
  const std::lock_guard lock(mu_);
  auto& p = plans_.at(static_cast<std::size_t>(call));
  ++p.calls;
  const bool fails =
      p.fail_at != 0 && (p.calls == p.fail_at || (p.from_then_on && p.calls > p.fail_at));
  if (!fails) return;
  ++p.failures;
  throw StoreError(StoreError::Code::unavailable,
                   "injected failure of call " + std::to_string(p.calls));
}

std::vector<store::Enqueued> FaultyStore::enqueue(std::vector<store::NewTask> tasks,
                                                  store::TimePoint now) {
  enter(Call::enqueue);
  return inner_->enqueue(std::move(tasks), now);
}
std::vector<store::Enqueued> FaultyStore::enqueue_group(store::GroupSpec group,
                                                        std::vector<store::NewTask> members,
                                                        store::TimePoint now) {
  enter(Call::enqueue);
  return inner_->enqueue_group(std::move(group), std::move(members), now);
}
std::vector<store::TaskRecord> FaultyStore::claim(std::string_view queue, std::size_t max,
                                                  const store::Lease& lease, store::TimePoint now) {
  enter(Call::claim);
  return inner_->claim(queue, max, lease, now);
}
store::HeartbeatResult FaultyStore::extend_leases(const std::vector<std::string>& ids,
                                                  const store::Lease& lease, store::TimePoint now) {
  enter(Call::extend_leases);
  return inner_->extend_leases(ids, lease, now);
}
bool FaultyStore::complete(std::string_view id, std::string_view owner, std::string result_json,
                           store::TimePoint now) {
  enter(Call::complete);
  return inner_->complete(id, owner, std::move(result_json), now);
}
bool FaultyStore::fail(std::string_view id, std::string_view owner, std::string error,
                       std::optional<store::TimePoint> retry_at, store::TimePoint now) {
  enter(Call::fail);
  return inner_->fail(id, owner, std::move(error), retry_at, now);
}
bool FaultyStore::release(std::string_view id, std::string_view owner, store::TimePoint run_at,
                          store::TimePoint now) {
  enter(Call::release);
  return inner_->release(id, owner, run_at, now);
}
bool FaultyStore::finish_cancelled(std::string_view id, std::string_view owner,
                                   store::TimePoint now) {
  enter(Call::finish_cancelled);
  return inner_->finish_cancelled(id, owner, now);
}
bool FaultyStore::set_progress(std::string_view id, std::string_view owner, int percent,
                               std::string message, store::TimePoint now) {
  enter(Call::set_progress);
  return inner_->set_progress(id, owner, percent, std::move(message), now);
}
store::CancelResult FaultyStore::cancel(std::string_view id, store::TimePoint now) {
  enter(Call::cancel);
  return inner_->cancel(id, now);
}
bool FaultyStore::retry(std::string_view id, store::TimePoint now) {
  return inner_->retry(id, now);
}
bool FaultyStore::remove(std::string_view id) {
  return inner_->remove(id);
}
std::optional<store::TaskRecord> FaultyStore::get(std::string_view id) {
  return inner_->get(id);
}
std::optional<store::GroupInfo> FaultyStore::group(std::string_view id) {
  return inner_->group(id);
}
std::optional<std::string> FaultyStore::group_awaiting(std::string_view task_id) {
  return inner_->group_awaiting(task_id);
}
std::optional<store::TaskRecord> FaultyStore::holder_of(std::string_view unique_key) {
  return inner_->holder_of(unique_key);
}
store::Page FaultyStore::list(const store::ListQuery& query) {
  return inner_->list(query);
}
std::vector<store::QueueInfo> FaultyStore::queues() {
  return inner_->queues();
}
std::size_t FaultyStore::reclaim_expired(store::TimePoint now) {
  enter(Call::reclaim);
  return inner_->reclaim_expired(now);
}
std::size_t FaultyStore::purge_final(store::TimePoint cutoff, std::size_t max) {
  return inner_->purge_final(cutoff, max);
}
void FaultyStore::set_paused(std::string_view queue, bool paused) {
  inner_->set_paused(queue, paused);
}
bool FaultyStore::fire_schedule(std::string_view schedule, store::TimePoint tick,
                                store::NewTask task, store::TimePoint now) {
  return inner_->fire_schedule(schedule, tick, std::move(task), now);
}
std::vector<std::pair<std::string, store::TimePoint>> FaultyStore::schedule_ticks() {
  return inner_->schedule_ticks();
}
void FaultyStore::heartbeat_node(const store::NodeInfo& node) {
  inner_->heartbeat_node(node);
}
void FaultyStore::remove_node(std::string_view id) {
  inner_->remove_node(id);
}
std::vector<store::NodeInfo> FaultyStore::nodes(store::TimePoint now,
                                                std::chrono::milliseconds silence) {
  return inner_->nodes(now, silence);
}

}  // namespace errand::test
