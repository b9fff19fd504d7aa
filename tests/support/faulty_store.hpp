#pragma once
// A Store that forwards every call to a real one and makes chosen calls fail,
// after Beast's fail_count: `fail_nth(Call::claim, 2)` makes the second claim
// from now throw StoreError{unavailable} (and only it); `fail_from` makes
// every call from the nth on fail until heal(). A failed call changes nothing
// in the real store, as the Store contract promises of a throwing call.
// Thread-safe: the runtime calls it from several threads.

#include <array>
#include <cstddef>
#include <memory>
#include <mutex>

#include "errand/store/store.hpp"

namespace errand::test {

class FaultyStore : public store::Store {
 public:
  enum class Call : std::uint8_t {
    enqueue,
    claim,
    extend_leases,
    complete,
    fail,
    release,
    finish_cancelled,
    set_progress,
    cancel,
    reclaim,
    count_  // the number of calls above
  };

  explicit FaultyStore(std::shared_ptr<store::Store> inner) : inner_(std::move(inner)) {}

  void fail_nth(Call call, std::size_t n);
  void fail_from(Call call, std::size_t n);
  void heal(Call call);
  // Calls of `call` so far, failed ones included.
  [[nodiscard]] std::size_t calls(Call call) const;
  [[nodiscard]] std::size_t failures(Call call) const;
  [[nodiscard]] store::Store& inner() { return *inner_; }

  using store::Store::enqueue;
  std::vector<store::Enqueued> enqueue(std::vector<store::NewTask> tasks,
                                       store::TimePoint now) override;
  std::vector<store::Enqueued> enqueue_group(store::GroupSpec group,
                                             std::vector<store::NewTask> members,
                                             store::TimePoint now) override;
  std::vector<store::TaskRecord> claim(std::string_view queue, std::size_t max,
                                       const store::Lease& lease, store::TimePoint now) override;
  store::HeartbeatResult extend_leases(const std::vector<std::string>& ids,
                                       const store::Lease& lease, store::TimePoint now) override;
  bool complete(std::string_view id, std::string_view owner, std::string result_json,
                store::TimePoint now) override;
  bool fail(std::string_view id, std::string_view owner, std::string error,
            std::optional<store::TimePoint> retry_at, store::TimePoint now) override;
  bool release(std::string_view id, std::string_view owner, store::TimePoint run_at,
               store::TimePoint now) override;
  bool finish_cancelled(std::string_view id, std::string_view owner, store::TimePoint now) override;
  bool set_progress(std::string_view id, std::string_view owner, int percent, std::string message,
                    store::TimePoint now) override;
  store::CancelResult cancel(std::string_view id, store::TimePoint now) override;
  bool retry(std::string_view id, store::TimePoint now) override;
  bool remove(std::string_view id) override;
  std::optional<store::TaskRecord> get(std::string_view id) override;
  std::optional<store::TaskRecord> holder_of(std::string_view unique_key) override;
  std::optional<store::GroupInfo> group(std::string_view id) override;
  std::optional<std::string> group_awaiting(std::string_view task_id) override;
  store::Page list(const store::ListQuery& query) override;
  std::vector<store::QueueInfo> queues() override;
  std::size_t reclaim_expired(store::TimePoint now) override;
  std::size_t purge_final(store::TimePoint cutoff, std::size_t max) override;
  void set_paused(std::string_view queue, bool paused) override;
  bool fire_schedule(std::string_view schedule, store::TimePoint tick, store::NewTask task,
                     store::TimePoint now) override;
  std::vector<std::pair<std::string, store::TimePoint>> schedule_ticks() override;
  void heartbeat_node(const store::NodeInfo& node) override;
  void remove_node(std::string_view id) override;
  std::vector<store::NodeInfo> nodes(store::TimePoint now,
                                     std::chrono::milliseconds silence) override;

 private:
  struct Plan {
    std::size_t calls = 0;
    std::size_t failures = 0;
    std::size_t fail_at = 0;  // 0: never
    bool from_then_on = false;
  };
  // Counts the call; throws StoreError{unavailable} when it is planned to fail.
  void enter(Call call);

  std::shared_ptr<store::Store> inner_;
  mutable std::mutex mu_;
  std::array<Plan, static_cast<std::size_t>(Call::count_)> plans_{};
};

}  // namespace errand::test
