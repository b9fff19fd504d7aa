#pragma once
// Internal helpers every backend shares, so they agree to the byte.

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "errand/store/store.hpp"

namespace errand::store::detail {

// The record a NewTask becomes at `now`: scheduled if run_at is later, else
// pending with run_at = now.
[[nodiscard]] TaskRecord make_record(NewTask&& t, TimePoint now);

// Throws StoreError{queue_full} when `waiting` tasks leave no room for `t`
// under its max_waiting.
void check_room(const NewTask& t, std::size_t waiting);

// The payload of a group's completion task (see GroupSpec).
[[nodiscard]] std::string completion_payload(std::string_view group_id, std::string_view payload,
                                             const std::vector<TaskRecord>& members);

// Queue infos keyed by name, as Store::queues() answers them (by name).
[[nodiscard]] std::vector<QueueInfo> queue_list(
    std::map<std::string, QueueInfo, std::less<>>&& by_name);

}  // namespace errand::store::detail
