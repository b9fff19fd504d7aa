#pragma once
// Internal: the Lua scripts of RedisStore — every transition that touches more
// than one key is one script, so Redis runs it atomically. Each script is a
// shared prelude (keys, the task hash's fields, indexing, the transition
// table generated from task_transitions.hpp) followed by its own body.
//
// Calling convention: KEYS[1] is the deployment's prefix with its hash tag
// ("{errand}"), so every key a script touches hashes to one Redis Cluster
// slot; ARGV[1] is `now` in ms; the rest is the script's own. Errors a caller
// must see are error replies starting "ERRAND <code> ": invalid, queue_full.
//
// Field names of a task hash (short: they are stored once per task):
//   y type, q queue, p payload, pr priority, s state, a attempt,
//   ma max_attempts, r run_at, to timeout, u unique_key, tp traceparent,
//   ri request_id, g group_id, pg progress, pm progress_message, res result,
//   err last_error, c created_at, up updated_at, st started_at,
//   f finished_at, lo lease_owner, le lease_expires_at, cr cancel_requested,
//   nd node.
// Empty strings and zero defaults are not stored.

#include <string>

namespace errand::store::redis {

struct Scripts {
  std::string enqueue;
  std::string enqueue_group;
  std::string claim;
  std::string extend_leases;
  std::string complete;
  std::string fail;
  std::string release;
  std::string finish_cancelled;
  std::string set_progress;
  std::string cancel;
  std::string retry;
  std::string remove;
  std::string list;
  std::string queues;
  std::string reclaim_expired;
  std::string purge_final;
  std::string group;
  std::string fire_schedule;
  std::string nodes;
};

// The sources, each a whole script.
[[nodiscard]] const Scripts& scripts();

// How many ARGV entries one NewTask takes in enqueue, enqueue_group and
// fire_schedule: id, type, queue, payload, priority, run_at, max_attempts,
// timeout, unique_key, traceparent, request_id, group_id, max_waiting.
inline constexpr int kTaskArgs = 14;
// At most this many tasks are moved per call by the sweeping scripts
// (promotion inside claim, reclaim_expired), so Redis is never held long.
inline constexpr int kSweepBatch = 500;

}  // namespace errand::store::redis
