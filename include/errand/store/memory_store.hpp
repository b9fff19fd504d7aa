#pragma once
// MemoryStore: the Store contract kept in process memory, for tests and for
// users who want no persistence (everything is lost when the process exits).
// One mutex guards it all; claim and the due/lease/retention scans are
// O(log n) per task through ordered indexes. Thread-safe; never throws
// StoreError except `invalid` for a duplicate id.

#include <memory>

#include "errand/store/store.hpp"

namespace errand::store {

class MemoryStore final : public Store {
 public:
  MemoryStore();
  ~MemoryStore() override;

  using Store::enqueue;
  std::vector<Enqueued> enqueue(std::vector<NewTask> tasks, TimePoint now) override;
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
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace errand::store
