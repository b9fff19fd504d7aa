#include "errand/store/store.hpp"

#include <array>

#include <fmt/format.h>
#include <boost/json.hpp>

#include "store/group_completion.hpp"

namespace errand::store {

std::string_view to_string(StoreError::Code code) {
  constexpr std::array<std::string_view, 6> names = {"unavailable", "busy",    "full",
                                                     "corrupt",     "invalid", "queue_full"};
  return names.at(static_cast<std::size_t>(code));
}

std::size_t& QueueInfo::count(TaskState state) {
  switch (state) {
    case TaskState::scheduled: return scheduled;
    case TaskState::pending: return pending;
    case TaskState::active: return active;
    case TaskState::succeeded: return succeeded;
    case TaskState::retrying: return retrying;
    case TaskState::dead: return dead;
    case TaskState::cancelled: break;
  }
  return cancelled;
}

Enqueued Store::enqueue(NewTask task, TimePoint now) {
  std::vector<NewTask> one;
  one.push_back(std::move(task));
  return enqueue(std::move(one), now).front();
}

void Store::enqueue_async(std::vector<NewTask> tasks, TimePoint now, EnqueueDone done) {
  std::vector<Enqueued> out;
  std::exception_ptr error;
  try {
    out = enqueue(std::move(tasks), now);
  } catch (...) {
    error = std::current_exception();
  }
  const auto callback = std::move(done);
  callback(std::move(out), std::move(error));
}

void Store::complete_async(std::string_view id, std::string_view owner, std::string result_json,
                           TimePoint now, CompleteDone done) {
  bool ok = false;
  std::exception_ptr error;
  try {
    ok = complete(id, owner, std::move(result_json), now);
  } catch (...) {
    error = std::current_exception();
  }
  const auto callback = std::move(done);
  callback(ok, std::move(error));
}

namespace detail {

TaskRecord make_record(NewTask&& t, TimePoint now) {
  TaskRecord r;
  r.id = std::move(t.id);
  r.type = std::move(t.type);
  r.queue = std::move(t.queue);
  r.payload = std::move(t.payload);
  r.priority = t.priority;
  r.state = t.run_at > now ? TaskState::scheduled : TaskState::pending;
  r.max_attempts = t.max_attempts;
  r.run_at = t.run_at > now ? t.run_at : now;
  r.timeout = t.timeout;
  r.unique_key = std::move(t.unique_key);
  r.traceparent = std::move(t.traceparent);
  r.request_id = std::move(t.request_id);
  r.group_id = std::move(t.group_id);
  r.created_at = now;
  r.updated_at = now;
  return r;
}

void check_room(const NewTask& t, std::size_t waiting) {
  if (t.max_waiting == 0 || waiting < t.max_waiting) return;
  throw StoreError(
      StoreError::Code::queue_full,
      fmt::format("queue '{}' has {} waiting tasks, its limit; try again later", t.queue, waiting));
}

std::string completion_payload(std::string_view group_id, std::string_view payload,
                               const std::vector<TaskRecord>& members) {
  boost::json::array list;
  list.reserve(members.size());
  for (const auto& m : members) {
    boost::json::object o;
    o["id"] = m.id;
    o["type"] = m.type;
    o["state"] = to_string(m.state);
    boost::system::error_code ec;
    o["result"] = m.result ? boost::json::parse(*m.result, ec) : boost::json::value();
    if (ec) o["result"] = *m.result;
    o["error"] = m.last_error ? boost::json::value(*m.last_error) : boost::json::value();
    list.push_back(std::move(o));
  }
  boost::system::error_code ec;
  boost::json::value inner = boost::json::parse(payload, ec);
  if (ec) inner = boost::json::string(payload);
  boost::json::object out;
  out["group"] = group_id;
  out["payload"] = std::move(inner);
  out["members"] = std::move(list);
  return boost::json::serialize(out);
}

std::vector<QueueInfo> queue_list(std::map<std::string, QueueInfo, std::less<>>&& by_name) {
  std::vector<QueueInfo> out;
  out.reserve(by_name.size());
  for (auto& [name, info] : by_name) {
    info.queue = name;
    out.push_back(std::move(info));
  }
  return out;
}

}  // namespace detail
}  // namespace errand::store
