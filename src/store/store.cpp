#include "errand/store/store.hpp"

#include <array>

#include <fmt/format.h>
#include <boost/json.hpp>

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

}  // namespace errand::store
