#include "errand/store/memory_store.hpp"

#include <algorithm>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <tuple>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "errand/detail/thread_annotations.hpp"
#include "errand/store/task_transitions.hpp"
#include "store/backend_helpers.hpp"

namespace errand::store {

namespace {
using Ready = std::tuple<int, TimePoint, std::string>;  // (-priority, run_at, id)
using Timed = std::pair<TimePoint, std::string>;

struct Group {
  std::size_t remaining = 0;
  std::optional<NewTask> completion;  // until it is enqueued
  std::vector<std::string> members;
  std::string completion_id;
  std::optional<TimePoint> finished_at;
};
}  // namespace

struct MemoryStore::State {
  errand::detail::Mutex mu;
  std::map<std::string, TaskRecord, std::less<>> tasks
      ERRAND_GUARDED_BY(mu);  // by id: creation order
  std::map<std::string, std::set<Ready>, std::less<>> ready ERRAND_GUARDED_BY(mu);
  std::set<Timed> due ERRAND_GUARDED_BY(mu);       // scheduled + retrying, by run_at
  std::set<Timed> leases ERRAND_GUARDED_BY(mu);    // active, by lease expiry
  std::set<Timed> finished ERRAND_GUARDED_BY(mu);  // final, by finished_at
  std::map<std::string, std::string, std::less<>> unique
      ERRAND_GUARDED_BY(mu);  // key -> id, unfinished only
  std::map<std::string, Group, std::less<>> groups ERRAND_GUARDED_BY(mu);
  std::map<std::string, std::string, std::less<>> awaiting
      ERRAND_GUARDED_BY(mu);  // completion id -> group, until it is enqueued
  std::map<std::string, TimePoint, std::less<>> schedules ERRAND_GUARDED_BY(mu);
  std::set<std::string, std::less<>> paused ERRAND_GUARDED_BY(mu);
  std::map<std::string, NodeInfo, std::less<>> nodes ERRAND_GUARDED_BY(mu);
  std::map<std::string, QueueInfo, std::less<>> counts
      ERRAND_GUARDED_BY(mu);  // by queue, kept by (un)index

  std::size_t waiting(std::string_view queue) const ERRAND_REQUIRES(mu) {
    auto it = counts.find(queue);
    if (it == counts.end()) return 0;
    return it->second.scheduled + it->second.pending + it->second.retrying;
  }

  // Every change to a record goes unindex → modify → index, so the indexes
  // always describe exactly the records.
  void unindex(const TaskRecord& r) ERRAND_REQUIRES(mu) {
    switch (r.state) {
      case TaskState::pending: {
        auto q = ready.find(r.queue);
        if (q != ready.end()) q->second.erase({-r.priority, r.run_at, r.id});
        break;
      }
      case TaskState::scheduled:
      case TaskState::retrying: due.erase({r.run_at, r.id}); break;
      case TaskState::active: leases.erase({*r.lease_expires_at, r.id}); break;
      default: finished.erase({*r.finished_at, r.id}); break;
    }
    if (!r.unique_key.empty() && !is_final(r.state)) unique.erase(r.unique_key);
    auto c = counts.find(r.queue);
    if (--c->second.count(r.state) == 0) {  // forget queues that have no tasks left
      const auto& q = c->second;
      if (q.scheduled + q.pending + q.active + q.retrying + q.succeeded + q.dead + q.cancelled ==
          0) {
        counts.erase(c);
      }
    }
  }
  void index(const TaskRecord& r) ERRAND_REQUIRES(mu) {
    switch (r.state) {
      case TaskState::pending: ready[r.queue].insert({-r.priority, r.run_at, r.id}); break;
      case TaskState::scheduled:
      case TaskState::retrying: due.insert({r.run_at, r.id}); break;
      case TaskState::active: leases.insert({*r.lease_expires_at, r.id}); break;
      default: finished.insert({*r.finished_at, r.id}); break;
    }
    if (!r.unique_key.empty() && !is_final(r.state)) unique[r.unique_key] = r.id;
    ++counts[r.queue].count(r.state);
  }

  template <class F>
  void mutate(TaskRecord& r, TimePoint now, F&& f) ERRAND_REQUIRES(mu) {
    const TaskState before = r.state;
    const bool was_final = is_final(r.state);
    unindex(r);
    f(r);
    if (r.state != before && !allowed(before, r.state)) {
      // A bug in this store, caught where it happens (task_transitions.hpp);
      // the indexes still describe the record.
      index(r);
      throw std::logic_error(fmt::format("memory store: {} -> {} is not a task transition",
                                         to_string(before), to_string(r.state)));
    }
    r.updated_at = now;
    if (is_final(r.state)) {
      r.finished_at = now;
      r.lease_owner.clear();
      r.lease_expires_at.reset();
    }
    index(r);
    if (!was_final && is_final(r.state) && !r.group_id.empty()) member_final(r.group_id, now);
  }

  void member_final(const std::string& group_id, TimePoint now) ERRAND_REQUIRES(mu) {
    auto g = groups.find(group_id);
    if (g == groups.end() || g->second.remaining == 0) return;
    if (--g->second.remaining > 0) return;
    if (g->second.completion) {
      std::vector<TaskRecord> members;
      members.reserve(g->second.members.size());
      for (const auto& id : g->second.members) {
        // A finished member may have been deleted or purged since: left out.
        if (auto it = tasks.find(id); it != tasks.end()) members.push_back(it->second);
      }
      std::sort(members.begin(), members.end(),
                [](const TaskRecord& a, const TaskRecord& b) { return a.id < b.id; });
      NewTask c = std::move(*g->second.completion);
      g->second.completion.reset();
      c.payload = detail::completion_payload(group_id, c.payload, members);
      c.group_id.clear();
      awaiting.erase(c.id);
      insert(std::move(c), now);
    }
    g->second.finished_at = now;  // kept for GET /v1/groups until the purge
  }

  // Validates before anything changes, so a batch is all-or-nothing.
  void check_new(const std::vector<NewTask>& batch) const ERRAND_REQUIRES(mu) {
    std::set<std::string_view> ids;
    for (const auto& t : batch) {
      if (tasks.contains(t.id) || !ids.insert(t.id).second) {
        throw StoreError(StoreError::Code::invalid, "duplicate task id " + t.id);
      }
    }
    // Backpressure, for the tasks that would be stored (not deduplicated).
    std::map<std::string_view, std::size_t> added;
    std::set<std::string_view> keys;
    for (const auto& t : batch) {
      if (!t.unique_key.empty() &&
          (unique.contains(t.unique_key) || !keys.insert(t.unique_key).second)) {
        continue;
      }
      const auto before = added[t.queue]++;
      if (t.max_waiting > 0) detail::check_room(t, waiting(t.queue) + before);
    }
  }

  Enqueued insert(NewTask&& t, TimePoint now) ERRAND_REQUIRES(mu) {
    if (!t.unique_key.empty()) {
      if (auto u = unique.find(t.unique_key); u != unique.end()) {
        return {u->second, tasks.at(u->second).state, false};
      }
    }
    TaskRecord r = detail::make_record(std::move(t), now);
    Enqueued e{r.id, r.state, true};
    index(r);
    const std::string id = r.id;
    tasks.emplace(id, std::move(r));
    return e;
  }

  TaskRecord* find(std::string_view id) ERRAND_REQUIRES(mu) {
    auto it = tasks.find(id);
    return it == tasks.end() ? nullptr : &it->second;
  }
  TaskRecord* owned(std::string_view id, std::string_view owner) ERRAND_REQUIRES(mu) {
    TaskRecord* r = find(id);
    if (r == nullptr || r->state != TaskState::active || r->lease_owner != owner) return nullptr;
    return r;
  }

  // A claim makes due its own queue's tasks only, as the other stores do.
  void promote_due(std::string_view queue, TimePoint now) ERRAND_REQUIRES(mu) {
    std::vector<std::string> ids;
    for (auto it = due.begin(); it != due.end() && it->first <= now; ++it) {
      if (tasks.at(it->second).queue == queue) ids.push_back(it->second);
    }
    for (const auto& id : ids) {
      mutate(tasks.at(id), now, [](TaskRecord& x) { x.state = TaskState::pending; });
    }
  }
};

MemoryStore::MemoryStore() : s_(std::make_unique<State>()) {}
MemoryStore::~MemoryStore() = default;

std::vector<Enqueued> MemoryStore::enqueue(std::vector<NewTask> tasks, TimePoint now) {
  const errand::detail::MutexLock lock(s_->mu);
  s_->check_new(tasks);
  std::vector<Enqueued> out;
  out.reserve(tasks.size());
  for (auto& t : tasks) out.push_back(s_->insert(std::move(t), now));
  return out;
}

std::vector<Enqueued> MemoryStore::enqueue_group(GroupSpec group, std::vector<NewTask> members,
                                                 TimePoint now) {
  const errand::detail::MutexLock lock(s_->mu);
  if (s_->groups.contains(group.id)) {
    throw StoreError(StoreError::Code::invalid, "duplicate group id " + group.id);
  }
  for (auto& t : members) {
    t.group_id = group.id;
    t.unique_key.clear();  // a member must belong to this group, not to an earlier task
  }
  s_->check_new(members);
  Group g{0, std::move(group.completion), {}, {}, {}};
  if (g.completion) g.completion_id = g.completion->id;
  std::vector<Enqueued> out;
  out.reserve(members.size());
  for (auto& t : members) {
    out.push_back(s_->insert(std::move(t), now));
    g.members.push_back(out.back().id);
  }
  g.remaining = members.size();
  if (!g.completion_id.empty()) s_->awaiting.emplace(g.completion_id, group.id);
  s_->groups.emplace(group.id, std::move(g));
  if (members.empty()) {
    s_->groups[group.id].remaining = 1;
    s_->member_final(group.id, now);
  }
  return out;
}

std::vector<TaskRecord> MemoryStore::claim(std::string_view queue, std::size_t max,
                                           const Lease& lease, TimePoint now) {
  const errand::detail::MutexLock lock(s_->mu);
  s_->promote_due(queue, now);
  std::vector<TaskRecord> out;
  if (s_->paused.contains(queue)) return out;
  auto q = s_->ready.find(queue);
  if (q == s_->ready.end()) return out;
  while (out.size() < max && !q->second.empty()) {
    TaskRecord& r = s_->tasks.at(std::get<2>(*q->second.begin()));
    s_->mutate(r, now, [&](TaskRecord& x) {
      x.state = TaskState::active;
      ++x.attempt;
      x.started_at = now;
      x.lease_owner = lease.owner;
      x.lease_expires_at = lease.expires_at;
      x.node = lease.node.empty() ? lease.owner : lease.node;
    });
    out.push_back(r);
  }
  return out;
}

HeartbeatResult MemoryStore::extend_leases(const std::vector<std::string>& ids, const Lease& lease,
                                           TimePoint now) {
  const errand::detail::MutexLock lock(s_->mu);
  HeartbeatResult out;
  for (const auto& id : ids) {
    TaskRecord* r = s_->owned(id, lease.owner);
    if (r == nullptr) {
      out.lost.push_back(id);
      continue;
    }
    s_->mutate(*r, now, [&](TaskRecord& x) { x.lease_expires_at = lease.expires_at; });
    if (r->cancel_requested) out.cancel_requested.push_back(id);
  }
  return out;
}

bool MemoryStore::complete(std::string_view id, std::string_view owner, std::string result_json,
                           TimePoint now) {
  const errand::detail::MutexLock lock(s_->mu);
  TaskRecord* r = s_->owned(id, owner);
  if (r == nullptr) return false;
  s_->mutate(*r, now, [&](TaskRecord& x) {
    x.state = TaskState::succeeded;
    x.result = std::move(result_json);
    x.progress = 100;
  });
  return true;
}

bool MemoryStore::fail(std::string_view id, std::string_view owner, std::string error,
                       std::optional<TimePoint> retry_at, TimePoint now) {
  const errand::detail::MutexLock lock(s_->mu);
  TaskRecord* r = s_->owned(id, owner);
  if (r == nullptr) return false;
  s_->mutate(*r, now, [&](TaskRecord& x) {
    x.lease_owner.clear();
    x.lease_expires_at.reset();
    if (retry_at && !x.cancel_requested) {
      x.state = TaskState::retrying;
      x.run_at = *retry_at;
    } else {
      x.state = x.cancel_requested ? TaskState::cancelled : TaskState::dead;
    }
    detail::add_past_attempt(
        x.history, {x.attempt, x.node, x.started_at, now, std::string(to_string(x.state)), error});
    x.last_error = std::move(error);
  });
  return true;
}

bool MemoryStore::release(std::string_view id, std::string_view owner, TimePoint run_at,
                          TimePoint now) {
  const errand::detail::MutexLock lock(s_->mu);
  TaskRecord* r = s_->owned(id, owner);
  if (r == nullptr) return false;
  s_->mutate(*r, now, [&](TaskRecord& x) {
    --x.attempt;
    x.lease_owner.clear();
    x.lease_expires_at.reset();
    if (x.cancel_requested) {  // cancelled meanwhile: do not run it again
      x.state = TaskState::cancelled;
      return;
    }
    x.run_at = std::max(run_at, now);
    x.state = run_at > now ? TaskState::scheduled : TaskState::pending;
  });
  return true;
}

bool MemoryStore::finish_cancelled(std::string_view id, std::string_view owner, TimePoint now) {
  const errand::detail::MutexLock lock(s_->mu);
  TaskRecord* r = s_->owned(id, owner);
  if (r == nullptr) return false;
  s_->mutate(*r, now, [now](TaskRecord& x) {
    x.state = TaskState::cancelled;
    detail::add_past_attempt(x.history, {x.attempt, x.node, x.started_at, now, "cancelled", ""});
  });
  return true;
}

bool MemoryStore::set_progress(std::string_view id, std::string_view owner, int percent,
                               std::string message, TimePoint now) {
  const errand::detail::MutexLock lock(s_->mu);
  TaskRecord* r = s_->owned(id, owner);
  if (r == nullptr) return false;
  s_->mutate(*r, now, [&](TaskRecord& x) {
    x.progress = std::clamp(percent, 0, 100);
    x.progress_message = std::move(message);
  });
  return true;
}

CancelResult MemoryStore::cancel(std::string_view id, TimePoint now) {
  const errand::detail::MutexLock lock(s_->mu);
  TaskRecord* r = s_->find(id);
  if (r == nullptr) return CancelResult::not_found;
  if (is_final(r->state)) return CancelResult::final;
  if (r->state == TaskState::active) {
    s_->mutate(*r, now, [](TaskRecord& x) { x.cancel_requested = true; });
    return CancelResult::requested;
  }
  s_->mutate(*r, now, [](TaskRecord& x) { x.state = TaskState::cancelled; });
  return CancelResult::cancelled;
}

bool MemoryStore::retry(std::string_view id, TimePoint now) {
  const errand::detail::MutexLock lock(s_->mu);
  TaskRecord* r = s_->find(id);
  if (r == nullptr || (r->state != TaskState::dead && r->state != TaskState::cancelled)) {
    return false;
  }
  if (!r->unique_key.empty() && s_->unique.contains(r->unique_key)) return false;
  // A member of a group still waiting for its members counts as unfinished again.
  if (auto g = s_->groups.find(r->group_id);
      !r->group_id.empty() && g != s_->groups.end() && !g->second.finished_at) {
    ++g->second.remaining;
  }
  s_->mutate(*r, now, [&](TaskRecord& x) {
    x.state = TaskState::pending;
    x.attempt = 0;
    x.run_at = now;
    x.cancel_requested = false;
    x.finished_at.reset();
  });
  return true;
}

bool MemoryStore::remove(std::string_view id) {
  const errand::detail::MutexLock lock(s_->mu);
  auto it = s_->tasks.find(id);
  if (it == s_->tasks.end() || !is_final(it->second.state)) return false;
  s_->unindex(it->second);
  s_->tasks.erase(it);
  return true;
}

std::optional<TaskRecord> MemoryStore::get(std::string_view id) {
  const errand::detail::MutexLock lock(s_->mu);
  const TaskRecord* r = s_->find(id);
  if (r == nullptr) return std::nullopt;
  return *r;
}

std::optional<TaskRecord> MemoryStore::holder_of(std::string_view unique_key) {
  const errand::detail::MutexLock lock(s_->mu);
  const auto it = s_->unique.find(unique_key);
  if (it == s_->unique.end()) return std::nullopt;
  const TaskRecord* r = s_->find(it->second);
  if (r == nullptr) return std::nullopt;
  return *r;
}

Page MemoryStore::list(const ListQuery& query) {
  const errand::detail::MutexLock lock(s_->mu);
  Page page;
  auto it = query.cursor.empty() ? s_->tasks.end() : s_->tasks.lower_bound(query.cursor);
  std::size_t examined = 0;
  while (it != s_->tasks.begin()) {
    --it;
    const TaskRecord& r = it->second;
    // The other backends' bound on a page's cost, so that pages are alike.
    if (++examined > kListScanBudget) {
      page.next_cursor = std::next(it)->first;
      break;
    }
    if (query.queue && r.queue != *query.queue) continue;
    if (query.state && r.state != *query.state) continue;
    if (query.type && r.type != *query.type) continue;
    if (page.tasks.size() == query.limit) {
      page.next_cursor = page.tasks.back().id;
      break;
    }
    page.tasks.push_back(r);
    page.tasks.back().history.clear();  // as the other backends' lists
  }
  return page;
}

std::vector<QueueInfo> MemoryStore::queues() {
  const errand::detail::MutexLock lock(s_->mu);
  auto by_name = s_->counts;
  for (const auto& name : s_->paused) by_name[name].paused = true;
  return detail::queue_list(std::move(by_name));
}

std::size_t MemoryStore::reclaim_expired(TimePoint now) {
  const errand::detail::MutexLock lock(s_->mu);
  std::size_t n = 0;
  while (!s_->leases.empty() && s_->leases.begin()->first < now) {
    TaskRecord& r = s_->tasks.at(s_->leases.begin()->second);
    s_->mutate(r, now, [now](TaskRecord& x) {
      x.last_error = "lease expired: the worker holding the task stopped heartbeating";
      detail::add_past_attempt(x.history,
                               {x.attempt, x.node, x.started_at, now, "lost", *x.last_error});
      x.lease_owner.clear();
      x.lease_expires_at.reset();
      if (x.cancel_requested) {
        x.state = TaskState::cancelled;
      } else {
        x.state = x.attempt >= x.max_attempts ? TaskState::dead : TaskState::pending;
      }
    });
    ++n;
  }
  return n;
}

std::size_t MemoryStore::purge_final(TimePoint cutoff, std::size_t max) {
  const errand::detail::MutexLock lock(s_->mu);
  std::size_t n = 0;
  while (n < max && !s_->finished.empty() && s_->finished.begin()->first < cutoff) {
    const std::string id = s_->finished.begin()->second;
    auto it = s_->tasks.find(id);
    s_->unindex(it->second);  // also drops it from `finished` and from the counts
    s_->tasks.erase(it);
    ++n;
  }
  // At most `max` finished groups too, the oldest first (ties by id), as the
  // SQLite and Redis stores purge them: all at once, this store disagreed
  // with them after more than `max` groups finished (found by store_ops_fuzz).
  std::vector<std::pair<TimePoint, std::string>> due;
  for (const auto& [id, g] : s_->groups) {
    if (g.finished_at && *g.finished_at < cutoff) due.emplace_back(*g.finished_at, id);
  }
  const auto keep = std::min(max, due.size());
  std::partial_sort(due.begin(), due.begin() + static_cast<std::ptrdiff_t>(keep), due.end());
  for (std::size_t i = 0; i < keep; ++i) s_->groups.erase(due[i].second);
  return n;
}

std::optional<GroupInfo> MemoryStore::group(std::string_view id) {
  const errand::detail::MutexLock lock(s_->mu);
  auto g = s_->groups.find(id);
  if (g == s_->groups.end()) return std::nullopt;
  GroupInfo out{.id = std::string(id),
                .size = g->second.members.size(),
                .remaining = g->second.remaining,
                .completion_id = g->second.completion_id,
                .finished_at = g->second.finished_at};
  for (const auto& m : g->second.members) {
    if (auto it = s_->tasks.find(m); it != s_->tasks.end()) ++out.members[it->second.state];
  }
  return out;
}

std::optional<std::string> MemoryStore::group_awaiting(std::string_view task_id) {
  const errand::detail::MutexLock lock(s_->mu);
  auto it = s_->awaiting.find(task_id);
  if (it == s_->awaiting.end()) return std::nullopt;
  return it->second;
}

void MemoryStore::set_paused(std::string_view queue, bool paused) {
  const errand::detail::MutexLock lock(s_->mu);
  if (paused) {
    s_->paused.emplace(queue);
  } else if (auto it = s_->paused.find(queue); it != s_->paused.end()) {
    s_->paused.erase(it);
  }
}

bool MemoryStore::fire_schedule(std::string_view schedule, TimePoint tick, NewTask task,
                                TimePoint now) {
  const errand::detail::MutexLock lock(s_->mu);
  auto it = s_->schedules.find(schedule);
  if (it != s_->schedules.end() && it->second >= tick) return false;
  std::vector<NewTask> one;
  one.push_back(std::move(task));
  one.front().max_waiting = 0;  // a tick is never refused: it would be lost
  s_->check_new(one);
  s_->insert(std::move(one.front()), now);
  s_->schedules.insert_or_assign(std::string(schedule), tick);
  return true;
}

std::vector<std::pair<std::string, TimePoint>> MemoryStore::schedule_ticks() {
  const errand::detail::MutexLock lock(s_->mu);
  return {s_->schedules.begin(), s_->schedules.end()};
}

void MemoryStore::heartbeat_node(const NodeInfo& node) {
  const errand::detail::MutexLock lock(s_->mu);
  s_->nodes.insert_or_assign(node.id, node);
}

void MemoryStore::remove_node(std::string_view id) {
  const errand::detail::MutexLock lock(s_->mu);
  if (auto it = s_->nodes.find(id); it != s_->nodes.end()) s_->nodes.erase(it);
}

std::vector<NodeInfo> MemoryStore::nodes(TimePoint now, std::chrono::milliseconds silence) {
  const errand::detail::MutexLock lock(s_->mu);
  std::erase_if(s_->nodes, [&](const auto& n) { return n.second.last_seen < now - silence; });
  std::vector<NodeInfo> out;
  out.reserve(s_->nodes.size());
  for (const auto& [id, n] : s_->nodes) out.push_back(n);
  return out;
}

}  // namespace errand::store
