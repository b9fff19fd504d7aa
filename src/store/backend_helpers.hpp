#pragma once
// Internal: what every Store backend shares, so that they agree to the byte —
// a NewTask's first record, the backpressure check, the group completion's
// payload, the queue list, and the completion task's own serialisation (a
// backend keeps a group's completion as text until the group finishes).

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

// The completion task of a group, as a backend keeps it until the last member
// is final; new_task_from_json(new_task_to_json(t)) gives back every stored
// field of t (not max_waiting: completions are never refused).
[[nodiscard]] std::string new_task_to_json(const NewTask& t);
[[nodiscard]] NewTask new_task_from_json(std::string_view text);

// A node as every backend stores it (JSON text).
[[nodiscard]] std::string node_to_json(const NodeInfo& n);
[[nodiscard]] NodeInfo node_from_json(std::string_view text);

// A task's past attempts as the SQLite and Redis backends store them (a JSON
// array of {"n","node","s","e","o","err"}, times in Unix ms); text that is
// not such an array gives an empty history.
[[nodiscard]] std::vector<PastAttempt> history_from_json(std::string_view text);
// Appends `a`, dropping the oldest entries beyond kMaxPastAttempts.
void add_past_attempt(std::vector<PastAttempt>& history, PastAttempt a);

// Queue infos keyed by name, as Store::queues() answers them (by name).
[[nodiscard]] std::vector<QueueInfo> queue_list(
    std::map<std::string, QueueInfo, std::less<>>&& by_name);

}  // namespace errand::store::detail
