#include "store/sqlite_queue_counts.hpp"

#include <algorithm>

namespace errand::store::sqlite {

namespace {
// Past this many queues in the table, discard() forgets them rather than
// zeroing them: a store with thousands of queues pays a string per queue per
// transaction, not a search through every queue it ever saw.
constexpr std::size_t kQueuesKept = 32;

std::size_t index_of(TaskState s) {
  return static_cast<std::size_t>(s);
}
}  // namespace

QueueCounts::Queue& QueueCounts::entry(std::string_view queue) {
  const auto it =
      std::find_if(queues_.begin(), queues_.end(), [&](const Queue& q) { return q.name == queue; });
  if (it != queues_.end()) return *it;
  queues_.push_back(Queue{std::string(queue), {}});
  return queues_.back();
}

void QueueCounts::add(std::string_view queue, TaskState state, std::int64_t n) {
  if (n == 0) return;
  if (journal_.size() == journal_.capacity()) {
    journal_.reserve(std::max<std::size_t>(64, journal_.capacity() * 2));  // before any change
  }
  Queue& q = entry(queue);
  q.n.at(index_of(state)) += n;
  journal_.push_back(Step{static_cast<std::uint32_t>(&q - queues_.data()), state, n});
}

void QueueCounts::move(std::string_view queue, TaskState from, TaskState to, std::int64_t n) {
  if (from == to) return;
  add(queue, from, -n);
  add(queue, to, n);
}

std::int64_t QueueCounts::unwritten(std::string_view queue, TaskState state) const {
  for (const auto& q : queues_) {
    if (q.name == queue) return q.n.at(index_of(state));
  }
  return 0;
}

void QueueCounts::undo_to(std::size_t mark) noexcept {
  while (journal_.size() > mark) {
    const Step& s = journal_.back();
    queues_[s.queue].n[index_of(s.state)] -= s.n;
    journal_.pop_back();
  }
}

void QueueCounts::flush(Db& db) {
  static const std::string sql =
      "INSERT INTO queue_counts (queue, state, n) VALUES (?1, ?2, ?3) "
      "ON CONFLICT (queue, state) DO UPDATE SET n = n + excluded.n";
  for (const auto& q : queues_) {
    for (const TaskState s : kAllStates) {
      const std::int64_t n = q.n[index_of(s)];
      if (n == 0) continue;
      db.query(sql)
          .bind_borrowed(1, q.name)
          .bind_borrowed(2, to_string(s))  // a static name
          .bind(3, n)
          .run();
    }
  }
}

void QueueCounts::discard() noexcept {
  journal_.clear();
  if (queues_.size() > kQueuesKept) {
    queues_.clear();
    return;
  }
  for (auto& q : queues_) q.n.fill(0);
}

}  // namespace errand::store::sqlite
