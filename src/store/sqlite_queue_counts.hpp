#pragma once
// Internal: what a write transaction changes in the queue_counts table (the
// number of tasks per queue and state), kept in memory by the statements that
// change a task's state and written once per queue just before COMMIT.
//
// Triggers kept the table until schema 11: an upsert per inserted task and two
// per state change, ~15k instructions each (callgrind), a quarter of the
// writer's work per enqueue. A transaction of a hundred enqueues to one queue
// now writes one row.
//
// Owned by the writer thread; not thread-safe. An operation adds its share
// as it writes (insert() adds before its INSERT, so that nothing throws after
// it); GroupCommit undoes an operation's share when that operation fails or is
// rolled back (mark / undo_to) and drops everything when the transaction ends
// (discard).
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "errand/store/task_record.hpp"
#include "store/group_commit.hpp"

namespace errand::store::sqlite {

class QueueCounts final : public TransactionBuffer {
 public:
  // `n` tasks of `queue` entered `state` (negative: left it).
  void add(std::string_view queue, TaskState state, std::int64_t n);
  // `n` tasks of `queue` went from one state to another.
  void move(std::string_view queue, TaskState from, TaskState to, std::int64_t n = 1);
  // What this transaction changed and has not written yet: reads of
  // queue_counts inside the transaction add it.
  [[nodiscard]] std::int64_t unwritten(std::string_view queue, TaskState state) const;

  [[nodiscard]] std::size_t mark() const noexcept override { return journal_.size(); }
  void undo_to(std::size_t mark) noexcept override;
  void flush(Db& db) override;
  void discard() noexcept override;

 private:
  struct Queue {
    std::string name;
    std::array<std::int64_t, kAllStates.size()> n{};
  };
  Queue& entry(std::string_view queue);

  // One per queue touched; kept across transactions (zeroed) while few, so a
  // steady load allocates nothing here.
  std::vector<Queue> queues_;
  // (index in queues_, state, n) per add(), so an operation's share can be undone.
  struct Step {
    std::uint32_t queue;
    TaskState state;
    std::int64_t n;
  };
  std::vector<Step> journal_;
};

}  // namespace errand::store::sqlite
